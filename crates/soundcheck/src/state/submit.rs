//! Results submitted from outside (`POST /results`): external and manual checks. Each
//! (entity, scope) is one transaction holding the new states, their transitions and events,
//! the certification levels they change and the audit rows of the submission.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use soundcheck_core::CheckView;
use soundcheck_core::model::CheckState;

use super::live::{LiveState, Target};
use crate::store::{
    CatalogStore, ResultChange, ResultUpdate, StateChanges, StateStore, StoreResult, StoredResult,
    Submission,
};

/// One submitted result, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmittedResult {
    /// The check (position in the engine).
    pub check: usize,
    /// The check's id.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The state.
    pub state: CheckState,
    /// Free-form details.
    pub details: Option<Value>,
    /// Why (manual checks).
    pub justification: Option<String>,
}

/// What a submission did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitResultsOutcome {
    /// Results whose state changed.
    pub result_changes: usize,
    /// Results kept with new details (same state, or an error under `preserveStateOnError`).
    pub kept: usize,
    /// Certification levels that changed.
    pub certification_changes: usize,
    /// Events written.
    pub events: i64,
    /// Results for entities that are not in the catalog (not stored).
    pub unknown_entities: usize,
}

impl<S: StateStore + CatalogStore + Clone + 'static> LiveState<S> {
    /// Stores submitted results; with `preserve_on_error` an `error` never replaces an earlier
    /// non-error state (only details and times move).
    pub async fn submit_results(
        &self,
        results: Vec<SubmittedResult>,
        preserve_on_error: bool,
        submitted_by: &str,
    ) -> StoreResult<SubmitResultsOutcome> {
        let _writer = match &self.writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let mut outcome = SubmitResultsOutcome::default();
        let mut groups: BTreeMap<(String, String), Vec<SubmittedResult>> = BTreeMap::new();
        for r in results {
            groups
                .entry((r.entity_ref.clone(), r.scope.clone()))
                .or_default()
                .push(r);
        }
        for ((entity_ref, scope), group) in groups {
            let now = chrono::Utc::now().timestamp_millis();
            let snapshot = self.store.snapshot(&entity_ref, &scope, now).await?;
            let Some(entity) = &snapshot.entity else {
                outcome.unknown_entities += group.len();
                continue;
            };
            let mut changes = StateChanges {
                now_ms: now,
                ..Default::default()
            };
            let mut states: HashMap<usize, CheckState> = HashMap::new();
            let mut changed = Vec::new();
            for r in group {
                let check_id = self.engine.check_id(r.check).to_string();
                let previous = snapshot.results.get(check_id.as_str()).copied();
                let keep = preserve_on_error
                    && r.state == CheckState::Error
                    && previous.is_some_and(|p| p != CheckState::Error);
                let stored = if keep {
                    previous.unwrap_or(r.state)
                } else {
                    r.state
                };
                changes.submissions.push(Submission {
                    check_id: check_id.clone(),
                    entity_ref: entity_ref.clone(),
                    scope: scope.clone(),
                    state: r.state,
                    stored_state: stored,
                    details: r.details.clone(),
                    submitted_by: submitted_by.to_string(),
                    justification: r.justification.clone(),
                });
                states.insert(r.check, stored);
                if previous == Some(stored) {
                    outcome.kept += 1;
                    changes.result_updates.push(ResultUpdate {
                        check_id,
                        entity_ref: entity_ref.clone(),
                        scope: scope.clone(),
                        details: r.details,
                        submitted_by: Some(submitted_by.to_string()),
                    });
                    continue;
                }
                changed.push(r.check);
                changes.results.push(ResultChange {
                    result: StoredResult {
                        check_id,
                        entity_ref: entity_ref.clone(),
                        scope: scope.clone(),
                        state: stored,
                    },
                    previous,
                    details: r.details,
                    message: None,
                    submitted_by: Some(submitted_by.to_string()),
                });
            }
            if !changed.is_empty() {
                let engine = &self.engine;
                let admissions = engine.admissions(entity);
                let tracks = self.tracks_containing(&changed);
                let view = |c: usize| CheckView {
                    state: states
                        .get(&c)
                        .copied()
                        .or_else(|| snapshot.results.get(engine.check_id(c)).copied()),
                    exempt: snapshot.exempt.iter().any(|e| e == engine.check_id(c)),
                };
                let target = Target {
                    entity_ref: &entity_ref,
                    scope: &scope,
                    entity,
                    snapshot: &snapshot,
                };
                self.certify(target, &admissions, &tracks, view, &mut changes);
            }
            outcome.result_changes += changes.results.len();
            outcome.certification_changes += changes.certifications.len();
            let applied = self.store.apply(&changes, self.events.is_some()).await?;
            outcome.events += applied.events();
            self.committed(applied);
        }
        Ok(outcome)
    }
}
