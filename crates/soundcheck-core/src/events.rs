//! The two events of the seed's contract (decisions.md §5): topics and exact payloads, in
//! Backstage's `EventParams` envelope. Extra information travels in `metadata`, never in the
//! payload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{CertState, CheckState};

/// Topic of check result changes.
pub const CHECK_STATUS_CHANGE_TOPIC: &str = "soundcheck-check-status-change";
/// Topic of certification changes.
pub const CERTIFICATION_CHANGE_TOPIC: &str = "soundcheck-certification-change";

/// Metadata key of the unique event id (for de-duplication).
pub const METADATA_EVENT_ID: &str = "eventId";
/// Metadata key of a certification event's previous cumulative state.
pub const METADATA_PREVIOUS_CUMULATIVE_STATE: &str = "previousCumulativeState";

/// Payload of `soundcheck-check-status-change`, fields in the contract's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatusChange {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The new state.
    pub state: CheckState,
    /// The earlier state; omitted (not `null`) when there was none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_state: Option<CheckState>,
    /// When the new state was stored, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The scope.
    pub scope: String,
}

/// Payload of `soundcheck-certification-change`, fields in the contract's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificationChange {
    /// The track.
    pub track_id: String,
    /// The entity.
    pub entity_ref: String,
    /// This level on its own.
    pub state: CertState,
    /// This level and every level below it.
    pub cumulative_state: CertState,
    /// The level.
    pub level_ordinal: u32,
    /// When the new state was stored, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The level's earlier `state`; omitted when there was none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_state: Option<CertState>,
    /// The scope.
    pub scope: String,
}

/// A metadata value: Backstage allows a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetadataValue {
    /// One string.
    One(String),
    /// Several strings.
    Many(Vec<String>),
}

/// Backstage's `EventParams`: `{topic, eventPayload, metadata?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventParams {
    /// The topic.
    pub topic: String,
    /// The payload, any JSON.
    pub event_payload: serde_json::Value,
    /// Extra information (de-duplication id, previous cumulative state, headers).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<BTreeMap<String, MetadataValue>>,
}

impl EventParams {
    /// The `eventId` metadata, when present.
    pub fn event_id(&self) -> Option<&str> {
        match self.metadata.as_ref()?.get(METADATA_EVENT_ID)? {
            MetadataValue::One(id) => Some(id),
            MetadataValue::Many(_) => None,
        }
    }
}

impl CheckStatusChange {
    /// The envelope, with `eventId` in metadata.
    pub fn into_params(self, event_id: &str) -> EventParams {
        EventParams {
            topic: CHECK_STATUS_CHANGE_TOPIC.to_string(),
            event_payload: serde_json::to_value(self).unwrap_or_default(),
            metadata: Some(BTreeMap::from([(
                METADATA_EVENT_ID.to_string(),
                MetadataValue::One(event_id.to_string()),
            )])),
        }
    }

    /// The key events of one (check, entity, scope) are ordered by.
    pub fn ordering_key(&self) -> String {
        format!("check|{}|{}|{}", self.check_id, self.entity_ref, self.scope)
    }
}

impl CertificationChange {
    /// The envelope, with `eventId` and (when there was one) `previousCumulativeState`.
    pub fn into_params(
        self,
        event_id: &str,
        previous_cumulative: Option<CertState>,
    ) -> EventParams {
        let mut metadata = BTreeMap::from([(
            METADATA_EVENT_ID.to_string(),
            MetadataValue::One(event_id.to_string()),
        )]);
        if let Some(prev) = previous_cumulative {
            metadata.insert(
                METADATA_PREVIOUS_CUMULATIVE_STATE.to_string(),
                MetadataValue::One(prev.as_str().to_string()),
            );
        }
        EventParams {
            topic: CERTIFICATION_CHANGE_TOPIC.to_string(),
            event_payload: serde_json::to_value(self).unwrap_or_default(),
            metadata: Some(metadata),
        }
    }

    /// The key events of one (track, entity, level, scope) are ordered by.
    pub fn ordering_key(&self) -> String {
        format!(
            "cert|{}|{}|{}|{}",
            self.track_id, self.entity_ref, self.level_ordinal, self.scope
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_state_is_omitted_not_null() {
        let first = CheckStatusChange {
            check_id: "c".into(),
            entity_ref: "component:default/a".into(),
            state: CheckState::NotApplicable,
            previous_state: None,
            timestamp_ms: 1_743_777_961_000,
            scope: "default".into(),
        };
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            r#"{"checkId":"c","entityRef":"component:default/a","state":"not-applicable","timestampMs":1743777961000,"scope":"default"}"#
        );
    }
}
