//! Re-evaluation on demand: `POST /checks/execute` (some checks, some entities, optionally a
//! dry run) and `POST /certify_world` (every check and track for every entity), each entity
//! from its stored facts, written like any other evaluation.

use soundcheck_core::model::CheckState;

use super::live::{LiveState, Target};
use crate::store::{CatalogStore, QueryStore, StateStore, StoreResult};

/// The state of one check for one entity after an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// The scope.
    pub scope: String,
    /// The new state; `None` when none of the rule's facts exist (not reported).
    pub state: Option<CheckState>,
}

/// What a world re-certification did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorldOutcome {
    /// Entities evaluated.
    pub entities: usize,
    /// Check results that changed.
    pub result_changes: usize,
    /// Certification levels that changed.
    pub certification_changes: usize,
    /// Events written.
    pub events: i64,
}

impl<S: StateStore + CatalogStore + QueryStore + Clone + 'static> LiveState<S> {
    /// Evaluates the checks at `checks` (all when `None`) for one entity from its stored
    /// facts and, unless `dry_run`, stores the changes with their events; certification runs
    /// over every track when all checks are evaluated. `None` when the entity is unknown.
    pub async fn execute(
        &self,
        entity_ref: &str,
        scope: &str,
        checks: Option<&[usize]>,
        dry_run: bool,
    ) -> StoreResult<Option<(Vec<Executed>, WorldOutcome)>> {
        let _writer = match (&self.writer, dry_run) {
            (Some(lock), false) => Some(lock.lock().await),
            _ => None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let snapshot = self.store.snapshot(entity_ref, scope, now).await?;
        let Some(entity) = &snapshot.entity else {
            return Ok(None);
        };
        let all: Vec<usize>;
        let (affected, all_tracks) = match checks {
            Some(list) => (list, false),
            None => {
                all = (0..self.engine.check_count()).collect();
                (all.as_slice(), true)
            }
        };
        let target = Target {
            entity_ref,
            scope,
            entity,
            snapshot: &snapshot,
        };
        let (changes, evaluated) = self.evaluate(target, &[], affected, all_tracks);
        let executed = evaluated
            .into_iter()
            .map(|(check, state)| Executed {
                check_id: self.engine.check_id(check).to_string(),
                entity_ref: entity_ref.to_string(),
                scope: scope.to_string(),
                state,
            })
            .collect();
        let mut outcome = WorldOutcome {
            entities: 1,
            result_changes: changes.results.len(),
            certification_changes: changes.certifications.len(),
            events: 0,
        };
        if !dry_run {
            let applied = self.store.apply(&changes, self.events.is_some()).await?;
            outcome.events = applied.events();
            self.committed(applied);
        }
        Ok(Some((executed, outcome)))
    }

    /// Re-certifies every track for one entity from its stored results (after an exemption
    /// changed); false when the entity is unknown.
    pub async fn recertify(&self, entity_ref: &str, scope: &str) -> StoreResult<bool> {
        let _writer = match &self.writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let snapshot = self.store.snapshot(entity_ref, scope, now).await?;
        let Some(entity) = &snapshot.entity else {
            return Ok(false);
        };
        let target = Target {
            entity_ref,
            scope,
            entity,
            snapshot: &snapshot,
        };
        let (changes, _) = self.evaluate(target, &[], &[], true);
        let applied = self.store.apply(&changes, self.events.is_some()).await?;
        self.committed(applied);
        Ok(true)
    }

    /// Re-evaluates every check and re-certifies every track for every stored entity in
    /// `scope`, writing only what changed: 500 entities per read and per transaction.
    pub async fn certify_world(&self, scope: &str) -> StoreResult<WorldOutcome> {
        let mut total = WorldOutcome::default();
        let entities = self.store.entities().await?;
        let all_checks: Vec<usize> = (0..self.engine.check_count()).collect();
        for chunk in entities.chunks(500) {
            let _writer = match &self.writer {
                Some(lock) => Some(lock.lock().await),
                None => None,
            };
            let now = chrono::Utc::now().timestamp_millis();
            let keys: Vec<(String, String)> = chunk
                .iter()
                .map(|(r, _)| (r.clone(), scope.to_string()))
                .collect();
            let snapshots = self
                .store
                .snapshots(&keys, now, crate::store::FactNeeds::All)
                .await?;
            let mut all = crate::store::StateChanges {
                now_ms: now,
                ..Default::default()
            };
            for (entity_ref, _) in chunk {
                let Some(snapshot) = snapshots.get(&(entity_ref.clone(), scope.to_string())) else {
                    continue;
                };
                let Some(entity) = &snapshot.entity else {
                    continue;
                };
                let target = Target {
                    entity_ref,
                    scope,
                    entity,
                    snapshot,
                };
                let (changes, _) = self.evaluate(target, &[], &all_checks, true);
                all.results.extend(changes.results);
                all.certifications.extend(changes.certifications);
                total.entities += 1;
            }
            total.result_changes += all.results.len();
            total.certification_changes += all.certifications.len();
            let applied = self.store.apply(&all, self.events.is_some()).await?;
            total.events += applied.events();
            self.committed(applied);
        }
        Ok(total)
    }
}
