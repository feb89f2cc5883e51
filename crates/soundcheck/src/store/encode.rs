//! State changes encoded as the JSON arrays the dialect's bulk statements expand (see
//! `store::dialect` for the row layouts). Encoding is separate from the transaction so a
//! pipelined fact submission encodes while the previous one commits.

use soundcheck_core::model::{CertState, CheckState};

use super::{FactRecord, StateChanges, Touch};

/// The changes of one `apply`, ready to bind; `None` where there is nothing to write.
#[derive(Debug, Default)]
pub struct EncodedChanges {
    /// Latest facts (the newest per key, in key order; empty when the store writes the
    /// latest table from the history rows) and the history (every fact, in order).
    pub(super) facts: Option<(String, String)>,
    pub(super) results: Option<String>,
    pub(super) certifications: Option<String>,
    pub(super) touched_results: Option<String>,
    pub(super) touched_certifications: Option<String>,
    /// Unchanged results re-evaluated, across entities: `[entity, scope, check]` rows.
    pub(super) touched_checks: Option<String>,
    /// The same when they are all of one entity and scope: (entity, scope, check ids).
    pub(super) touched_entity_checks: Option<(String, String, String)>,
}

impl EncodedChanges {
    /// Encodes what `changes` writes; `latest`: whether the newest facts per key are needed
    /// apart from the history.
    pub fn of(changes: &StateChanges, latest: bool) -> Self {
        let one_entity = match changes.touched_checks.as_slice() {
            [(e, s, _), rest @ ..] if rest.iter().all(|(e2, s2, _)| e2 == e && s2 == s) => {
                Some((e, s))
            }
            _ => None,
        };
        let touched_entity_checks = one_entity.map(|(e, s)| {
            let ids: Vec<&str> = changes
                .touched_checks
                .iter()
                .map(|(_, _, c)| c.as_str())
                .collect();
            (e.clone(), s.clone(), to_json(&ids))
        });
        Self {
            facts: (!changes.facts.is_empty()).then(|| fact_rows(&changes.facts, latest)),
            results: (!changes.results.is_empty()).then(|| result_rows(changes)),
            certifications: (!changes.certifications.is_empty())
                .then(|| certification_rows(changes)),
            touched_results: (!changes.touched_results.is_empty())
                .then(|| touch_rows(&changes.touched_results)),
            touched_certifications: (!changes.touched_certifications.is_empty())
                .then(|| touch_rows(&changes.touched_certifications)),
            touched_checks: (!changes.touched_checks.is_empty() && one_entity.is_none())
                .then(|| to_json(&changes.touched_checks)),
            touched_entity_checks,
        }
    }
}

/// Rows of strings, numbers and nulls always serialise.
fn to_json<T: serde::Serialize + ?Sized>(rows: &T) -> String {
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
}

/// `[entity, fact ref, scope, data as JSON text, timestamp]`.
type FactRow<'a> = (&'a str, &'a str, &'a str, String, i64);

/// The newest per (entity, fact ref, scope) for the latest table (a statement may not update
/// one row twice), in key order so the table's B-tree is walked forwards; and every fact, in
/// order, for the history.
fn fact_rows(facts: &[FactRecord], latest: bool) -> (String, String) {
    let history: Vec<FactRow<'_>> = facts
        .iter()
        .map(|f| {
            (
                f.entity_ref.as_str(),
                f.fact_ref.as_str(),
                f.scope.as_str(),
                f.data.to_string(),
                f.timestamp_ms,
            )
        })
        .collect();
    if !latest {
        return (String::new(), to_json(&history));
    }
    let mut newest: std::collections::BTreeMap<(&str, &str, &str), usize> =
        std::collections::BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        let key = (f.entity_ref.as_str(), f.fact_ref.as_str(), f.scope.as_str());
        match newest.get(&key) {
            Some(kept) if facts[*kept].timestamp_ms > f.timestamp_ms => {}
            _ => {
                newest.insert(key, i);
            }
        }
    }
    let latest: Vec<&FactRow<'_>> = newest.values().map(|i| &history[*i]).collect();
    (to_json(&latest), to_json(&history))
}

/// `[checkId, entityRef, scope, state, previousState, null, details, message, submittedBy]`.
fn result_rows(changes: &StateChanges) -> String {
    let rows: Vec<_> = changes
        .results
        .iter()
        .map(|c| {
            (
                &c.result.check_id,
                &c.result.entity_ref,
                &c.result.scope,
                c.result.state.as_str(),
                c.previous.map(CheckState::as_str),
                Option::<&str>::None,
                c.details.as_ref().map(ToString::to_string),
                &c.message,
                &c.submitted_by,
            )
        })
        .collect();
    to_json(&rows)
}

/// `[trackId, entityRef, levelOrdinal, scope, state, cumulativeState, previousState,
/// previousCumulativeState, null]`.
fn certification_rows(changes: &StateChanges) -> String {
    let rows: Vec<_> = changes
        .certifications
        .iter()
        .map(|c| {
            let s = &c.certification;
            (
                &s.track_id,
                &s.entity_ref,
                s.level_ordinal,
                &s.scope,
                s.state.as_str(),
                s.cumulative_state.as_str(),
                c.previous_state.map(CertState::as_str),
                c.previous_cumulative.map(CertState::as_str),
                Option::<&str>::None,
            )
        })
        .collect();
    to_json(&rows)
}

/// `[entity, scope]`.
fn touch_rows(touches: &[Touch]) -> String {
    let rows: Vec<[&str; 2]> = touches
        .iter()
        .map(|t| [t.entity_ref.as_str(), t.scope.as_str()])
        .collect();
    to_json(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fact(entity: &str, timestamp_ms: i64, n: i64) -> FactRecord {
        FactRecord {
            entity_ref: entity.into(),
            fact_ref: "ci:default/pipeline".into(),
            scope: "default".into(),
            data: json!({ "n": n }),
            timestamp_ms,
        }
    }

    #[test]
    fn latest_facts_are_the_newest_per_key_in_key_order_and_history_keeps_all() {
        let changes = StateChanges {
            facts: vec![
                fact("component:default/b", 5, 1),
                fact("component:default/a", 7, 2),
                fact("component:default/b", 4, 3),
                fact("component:default/b", 5, 4),
            ],
            ..Default::default()
        };
        assert_eq!(EncodedChanges::of(&changes, false).facts.unwrap().0, "");
        let (latest, history) = EncodedChanges::of(&changes, true).facts.unwrap();
        let latest: Value = serde_json::from_str(&latest).unwrap();
        assert_eq!(
            latest,
            json!([
                [
                    "component:default/a",
                    "ci:default/pipeline",
                    "default",
                    "{\"n\":2}",
                    7
                ],
                [
                    "component:default/b",
                    "ci:default/pipeline",
                    "default",
                    "{\"n\":4}",
                    5
                ],
            ])
        );
        let history: Value = serde_json::from_str(&history).unwrap();
        let ns: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[3].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
    }

    #[test]
    fn nothing_to_write_encodes_nothing() {
        let encoded = EncodedChanges::of(&StateChanges::default(), true);
        assert!(encoded.facts.is_none() && encoded.results.is_none());
        assert!(encoded.certifications.is_none() && encoded.touched_checks.is_none());
        assert!(encoded.touched_entity_checks.is_none());
    }
}
