//! The JSON shapes the REST API returns (api.md §3), with their OpenAPI schemas.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::rfc3339;
use crate::store::{ExemptionRow, ResultRow};

/// A stored check result.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResultView {
    /// `kind:namespace/name`.
    pub entity_ref: String,
    /// The check.
    pub check_id: String,
    /// `passed`, `failed`, `warning`, `not-applicable` or `error`.
    pub state: String,
    /// The result scope.
    pub scope: String,
    /// Free-form details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Who submitted the result (absent for results Soundcheck evaluated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Last evaluation or submission: for evaluated checks, the later of the result's last
    /// write and the last arrival of a fact the check reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<String>,
    /// Last change of state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
}

impl From<&ResultRow> for CheckResultView {
    fn from(r: &ResultRow) -> Self {
        let details = match (&r.details, &r.message) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(m)) => Some(serde_json::json!({ "message": m })),
            (None, None) => None,
        };
        Self {
            entity_ref: r.entity_ref.clone(),
            check_id: r.check_id.clone(),
            state: r.state.as_str().to_string(),
            scope: r.scope.clone(),
            details,
            submitted_by: r.submitted_by.clone(),
            last_checked: Some(rfc3339(r.last_checked)),
            last_changed: Some(rfc3339(r.last_changed)),
        }
    }
}

/// Counts of result states of one check (all required).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStateCounts {
    /// Passed.
    pub passed: i64,
    /// Failed.
    pub failed: i64,
    /// Warning.
    pub warning: i64,
    /// Covered by an active exemption.
    pub exempt: i64,
    /// Not applicable.
    pub not_applicable: i64,
    /// Error.
    pub error: i64,
    /// No stored result.
    pub not_reported: i64,
}

/// `CheckStatus`: the aggregate status of one check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// The check.
    pub id: String,
    /// Entities counted.
    pub number_of_entities: i64,
    /// The counts.
    #[serde(flatten)]
    pub counts: CheckStateCounts,
}

/// One day of a check's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckHistoryDay {
    /// The day (midnight UTC).
    pub date: String,
    /// The counts that day.
    #[serde(flatten)]
    pub counts: CheckStateCounts,
}

/// A check's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatusHistory {
    /// The check.
    pub id: String,
    /// Entities counted on the newest day.
    pub number_of_entities: i64,
    /// Oldest first.
    pub history: Vec<CheckHistoryDay>,
}

/// `LevelStatus`: one level's aggregate over a track's entities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelStatus {
    /// The level.
    pub ordinal: u32,
    /// Entities passing this level alone.
    pub passed: i64,
    /// Entities failing this level alone.
    pub failed: i64,
    /// Entities passing this level and all below.
    pub cumulatively_passed: i64,
    /// Entities failing this level or one below.
    pub cumulatively_failed: i64,
    /// Entities with no certification of this level.
    pub not_reported: i64,
}

/// `CertificationStatus`: a track's aggregate.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificationStatus {
    /// The track.
    pub id: String,
    /// Entities the track applies to.
    pub number_of_entities: i64,
    /// Per level, in ordinal order.
    pub status_by_level: Vec<LevelStatus>,
}

/// One day of a track's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackHistoryDay {
    /// The day (midnight UTC).
    pub date: String,
    /// Per level.
    pub status_by_level: Vec<LevelStatus>,
}

/// A track's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackStatusHistory {
    /// The track.
    pub id: String,
    /// Entities counted on the newest day.
    pub number_of_entities: i64,
    /// Oldest first.
    pub history: Vec<TrackHistoryDay>,
}

/// An exemption.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExemptionView {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// Who created it.
    pub user_ref: String,
    /// Why.
    pub justification: String,
    /// When it was created.
    pub timestamp: String,
    /// When it expires, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Who revoked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&ExemptionRow> for ExemptionView {
    fn from(e: &ExemptionRow) -> Self {
        Self {
            check_id: e.check_id.clone(),
            entity_ref: e.entity_ref.clone(),
            user_ref: e.created_by.clone(),
            justification: e.justification.clone(),
            timestamp: rfc3339(e.created_at),
            expires_at: e.expires_at.map(rfc3339),
            revoked_by: e.revoked_by.clone(),
            revoked_at: e.revoked_at.map(rfc3339),
            reason: e.revoke_reason.clone(),
        }
    }
}

/// One check of a certification level.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificationCheck {
    /// The check.
    pub id: String,
    /// Its name (the id when it has none).
    pub name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The entity.
    pub entity_ref: String,
    /// The state: a result state, `exempt`, or `not-reported`.
    pub state: String,
    /// When the result last changed (absent when not reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The result's details.
    pub details: Value,
}

/// One level of a certification.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificationLevel {
    /// The level.
    pub ordinal: u32,
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The entity.
    pub entity_ref: String,
    /// True when this level and all below pass.
    pub certified: bool,
    /// This level alone: `passed` or `failed` (`not-reported` before the first evaluation).
    pub state: String,
    /// This level and all below.
    pub cumulative_state: String,
    /// The level's checks that apply to the entity.
    pub checks: Vec<CertificationCheck>,
}

/// The track of a certification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrackRef {
    /// The track id.
    pub id: String,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One entity's certification on one track.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certification {
    /// The entity.
    pub entity_ref: String,
    /// The track.
    pub track: TrackRef,
    /// The scope.
    pub scope: String,
    /// Levels in ordinal order.
    pub levels: Vec<CertificationLevel>,
    /// The highest certified level, absent when none is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest_level: Option<CertificationLevel>,
}
