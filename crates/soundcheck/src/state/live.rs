//! Incremental evaluation as facts arrive: for each (entity, scope) only the checks that read
//! the incoming facts are re-evaluated, then only the tracks containing a check whose state
//! changed are re-certified. Changes, transitions and events are written in one transaction
//! and the events service is woken.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use soundcheck_core::model::{CheckState, FactRef};
use soundcheck_core::rules::compiled::SlotFacts;
use soundcheck_core::{CheckView, Engine};

use super::pipeline::{Held, Writer};
use crate::events::EventsService;
use crate::store::{
    CatalogStore, CertificationChange, FactRecord, ResultChange, StateChanges, StateStore,
    StoreError, StoreResult, StoredCertification, StoredResult,
};
use crate::store::{EntitySnapshot, FactNeeds, NeededFact, SnapshotMap};

/// The built-in catalog collector's fact.
const ENTITY_DESCRIPTOR: &str = crate::batch::ENTITY_DESCRIPTOR;

/// Entities evaluated between two turns given to other tasks (see `submit_facts`).
const YIELD_EVERY: usize = 16;

/// What one submission did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitOutcome {
    /// Facts stored.
    pub facts: usize,
    /// (entity, scope) pairs evaluated.
    pub evaluated: usize,
    /// Facts about entities that are not in the catalog (stored, not evaluated).
    pub unknown_entities: usize,
    /// Check results that changed.
    pub result_changes: usize,
    /// Certification levels that changed.
    pub certification_changes: usize,
    /// Events written.
    pub events: i64,
}

/// One entity in one scope, with what is stored about it.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub entity_ref: &'a str,
    pub scope: &'a str,
    pub entity: &'a Value,
    pub snapshot: &'a EntitySnapshot,
}

/// The live evaluator over a store.
pub struct LiveState<S> {
    pub(crate) engine: Arc<Engine>,
    pub(crate) store: S,
    pub(crate) events: Option<EventsService<S>>,
    /// Orders fact submissions that share it: each reads the state the previous one leaves
    /// (see `state::pipeline`).
    pub(crate) writer: Option<Arc<Writer>>,
}

impl<S: StateStore + CatalogStore + Clone + 'static> LiveState<S> {
    /// An evaluator; `events` is `Some` when `soundcheck.events.enabled`.
    pub fn new(engine: Arc<Engine>, store: S, events: Option<EventsService<S>>) -> Self {
        Self {
            engine,
            store,
            events,
            writer: None,
        }
    }

    /// After a commit: counts the events written and wakes the events service.
    pub(crate) fn committed(&self, applied: crate::store::Applied) {
        announce(self.events.as_ref(), applied);
    }

    /// Shares a writer lock: submissions through it read what the previous ones leave, and
    /// other writers holding it see no submission in progress.
    pub fn with_writer(mut self, writer: Arc<Writer>) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Stores facts and evaluates what they affect: one read of each (entity, scope)'s stored
    /// state, then one transaction holding every fact, state change, transition and event of
    /// the submission. Submissions through one `LiveState` family (sharing a writer) are
    /// applied in order, each reading the state the previous one leaves; with a writer the
    /// next one is evaluated while this one commits (see `state::pipeline`).
    pub async fn submit_facts(&self, facts: Vec<FactRecord>) -> StoreResult<SubmitOutcome> {
        let stage = match &self.writer {
            Some(writer) => Some(writer.evaluation().await),
            None => None,
        };
        let mut outcome = SubmitOutcome {
            facts: facts.len(),
            ..Default::default()
        };
        let mut groups: BTreeMap<(String, String), Vec<FactRecord>> = BTreeMap::new();
        for f in facts {
            groups
                .entry((f.entity_ref.clone(), f.scope.clone()))
                .or_default()
                .push(f);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut all = StateChanges {
            now_ms: now,
            ..Default::default()
        };
        let keys: Vec<(String, String)> = groups.keys().cloned().collect();
        // The checks each group affects, in the groups' order.
        let affected: Vec<Vec<usize>> = groups
            .values()
            .map(|group| self.checks_reading_facts(group))
            .collect();
        let needs: HashMap<(String, String), Vec<NeededFact>> = groups
            .iter()
            .zip(&affected)
            .map(|((key, group), checks)| (key.clone(), self.facts_needed(group, checks)))
            .collect();
        let t0 = std::time::Instant::now();
        let pending = self.writer.as_ref().map(|w| w.pending_for(&keys));
        let mut snapshots = self
            .store
            .snapshots(&keys, now, FactNeeds::Only(&needs))
            .await?;
        let generation = pending.map(|p| p.lay_over(&mut snapshots));
        let t_snap = t0.elapsed();
        let mut unchanged = 0;
        for (n, (((entity_ref, scope), group), affected)) in
            groups.into_iter().zip(affected).enumerate()
        {
            // Evaluating a large submission takes milliseconds of CPU: other tasks on this
            // worker (the previous submission's commit waiting to send its next statement,
            // other requests) get a turn every few entities.
            if n % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            let snapshot = snapshots
                .remove(&(entity_ref.clone(), scope.clone()))
                .unwrap_or_default();
            let Some(entity) = &snapshot.entity else {
                outcome.unknown_entities += 1;
                all.facts.extend(group);
                continue;
            };
            outcome.evaluated += 1;
            let (changes, _) = self.evaluate(
                Target {
                    entity_ref: &entity_ref,
                    scope: &scope,
                    entity,
                    snapshot: &snapshot,
                },
                &group,
                &affected,
                false,
            );
            all.results.extend(changes.results);
            all.certifications.extend(changes.certifications);
            // Unchanged results are not rewritten: they were checked when the facts stored
            // with this write arrived (see `state::checked`).
            unchanged += changes.touched_checks.len();
            all.facts.extend(group);
        }
        outcome.result_changes = all.results.len();
        outcome.certification_changes = all.certifications.len();
        let t_eval = t0.elapsed();
        let applied = match (&self.writer, generation) {
            (Some(writer), Some(generation)) => {
                // Encoded before taking the place in the commit order: the previous
                // submission may still be committing.
                let encoded = self.store.encode(&all);
                let t_hold = std::time::Instant::now();
                let held = writer.hold(&all, generation).await?;
                tracing::debug!(waited = ?t_hold.elapsed(), "took the place in the commit order");
                // The next submission evaluates while this one commits.
                drop(stage);
                self.commit_in_order(held, all, encoded, outcome).await?
            }
            _ => {
                let applied = self.store.apply(&all, self.events.is_some()).await?;
                counted(outcome);
                self.committed(applied);
                applied
            }
        };
        tracing::debug!(read = ?t_snap, evaluated = ?t_eval, total = ?t0.elapsed(), results = outcome.result_changes, certifications = outcome.certification_changes, unchanged, "fact submission evaluated and stored");
        outcome.events = applied.events();
        Ok(outcome)
    }

    /// Commits a held submission in a task of its own, so it completes (and announces its
    /// events) even when the caller goes away: later submissions were evaluated on top of it.
    async fn commit_in_order(
        &self,
        held: Held,
        changes: StateChanges,
        encoded: S::Encoded,
        outcome: SubmitOutcome,
    ) -> StoreResult<crate::store::Applied> {
        let store = self.store.clone();
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            held.check()?;
            let t_apply = std::time::Instant::now();
            let applied = store
                .apply_encoded(&changes, &encoded, events.is_some())
                .await?;
            tracing::debug!(took = ?t_apply.elapsed(), "fact submission committed");
            held.stored();
            counted(outcome);
            announce(events.as_ref(), applied);
            Ok::<_, StoreError>(applied)
        });
        task.await
            .map_err(|e| StoreError::Interrupted(format!("the commit task stopped: {e}")))?
    }

    /// The checks (by position) that read any of these facts.
    pub(crate) fn checks_reading_facts(&self, facts: &[FactRecord]) -> Vec<usize> {
        let table = self.engine.fact_table();
        let mut affected: Vec<usize> = facts
            .iter()
            .filter_map(|f| table.get_str(&f.fact_ref))
            .flat_map(|s| self.engine.checks_reading(s).to_vec())
            .collect();
        affected.sort_unstable();
        affected.dedup();
        affected
    }

    /// The stored facts evaluating `affected` reads, each with the newest timestamp of the
    /// same fact among `incoming` (the entity descriptor comes from the entity itself).
    fn facts_needed(&self, incoming: &[FactRecord], affected: &[usize]) -> Vec<NeededFact> {
        let table = self.engine.fact_table();
        let mut slots: Vec<_> = affected
            .iter()
            .flat_map(|c| self.engine.slots_read_by(*c).iter().copied())
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
            .into_iter()
            .map(|slot| table.fact_ref(slot).as_str())
            .filter(|fact_ref| *fact_ref != ENTITY_DESCRIPTOR)
            .map(|fact_ref| NeededFact {
                fact_ref: fact_ref.to_string(),
                incoming_ms: incoming
                    .iter()
                    .filter(|f| f.fact_ref == fact_ref)
                    .map(|f| f.timestamp_ms)
                    .max(),
            })
            .collect()
    }

    /// Re-evaluates the checks at `affected` for one entity and scope (with `incoming` facts
    /// on top of the stored ones) and re-certifies the tracks containing a changed check, or
    /// every track when `all_tracks`. Returns the changes and the state of each evaluated
    /// check (`None`: not reported).
    pub(crate) fn evaluate(
        &self,
        target: Target<'_>,
        incoming: &[FactRecord],
        affected: &[usize],
        all_tracks: bool,
    ) -> (StateChanges, Vec<(usize, Option<CheckState>)>) {
        let Target {
            entity_ref,
            scope,
            entity,
            snapshot,
        } = target;
        let engine = &self.engine;
        let table = engine.fact_table();
        let mut data: Vec<Option<&Value>> = vec![None; table.len()];
        let mut stamps: Vec<i64> = vec![i64::MIN; table.len()];
        let facts = snapshot.facts.iter().map(|(r, d, t)| (r.as_str(), d, *t));
        // Incoming facts are stored in the same transaction; the newest timestamp wins.
        for (fact_ref, value, timestamp) in facts.chain(
            incoming
                .iter()
                .map(|f| (f.fact_ref.as_str(), &f.data, f.timestamp_ms)),
        ) {
            if let Some(slot) = table
                .get_str(fact_ref)
                .filter(|_| fact_ref != ENTITY_DESCRIPTOR)
                && timestamp >= stamps[slot.index()]
            {
                data[slot.index()] = Some(value);
                stamps[slot.index()] = timestamp;
            }
        }
        if let Some(slot) = FactRef::parse(ENTITY_DESCRIPTOR)
            .ok()
            .and_then(|r| table.get(&r))
        {
            data[slot.index()] = Some(entity);
        }
        let view = SlotFacts { table, data: &data };
        let admissions = engine.admissions(entity);
        let mut states: SnapshotMap<usize, Option<CheckState>> = SnapshotMap::default();
        let mut changes = StateChanges {
            now_ms: chrono::Utc::now().timestamp_millis(),
            ..Default::default()
        };
        let mut changed_checks = Vec::new();
        let mut evaluated = Vec::with_capacity(affected.len());
        for &check in affected {
            let new = engine.evaluate_check(check, &admissions, &view);
            evaluated.push((check, new));
            // Rule-less checks (manual, external) evaluate to `None`: their stored result stands.
            if new.is_some() {
                states.insert(check, new);
            }
            let id = engine.check_id(check);
            let previous = snapshot.results.get(id).copied();
            match new {
                Some(state) if previous != Some(state) => {
                    changed_checks.push(check);
                    changes.results.push(ResultChange {
                        result: StoredResult {
                            check_id: id.to_string(),
                            entity_ref: entity_ref.to_string(),
                            scope: scope.to_string(),
                            state,
                        },
                        previous,
                        details: None,
                        message: None,
                        submitted_by: None,
                    });
                }
                Some(_) => changes.touched_checks.push((
                    entity_ref.to_string(),
                    scope.to_string(),
                    id.to_string(),
                )),
                None => {}
            }
        }
        if all_tracks || !changed_checks.is_empty() {
            let tracks = if all_tracks {
                (0..engine.track_count()).collect()
            } else {
                self.tracks_containing(&changed_checks)
            };
            let view = |c: usize| CheckView {
                state: states
                    .get(&c)
                    .copied()
                    .unwrap_or_else(|| snapshot.results.get(engine.check_id(c)).copied()),
                exempt: snapshot.exempt.iter().any(|e| e == engine.check_id(c)),
            };
            self.certify(
                Target {
                    entity_ref,
                    scope,
                    entity,
                    snapshot,
                },
                &admissions,
                &tracks,
                view,
                &mut changes,
            );
        }
        (changes, evaluated)
    }

    /// The tracks (by position) with any of these checks in a level.
    pub(crate) fn tracks_containing(&self, checks: &[usize]) -> Vec<usize> {
        let mut tracks: Vec<usize> = checks
            .iter()
            .flat_map(|c| self.engine.tracks_with_check(*c).to_vec())
            .collect();
        tracks.sort_unstable();
        tracks.dedup();
        tracks
    }

    /// Re-certifies the tracks at `tracks`; adds the levels that changed.
    pub(crate) fn certify(
        &self,
        target: Target<'_>,
        admissions: &soundcheck_core::Admissions,
        tracks: &[usize],
        view: impl Fn(usize) -> CheckView,
        changes: &mut StateChanges,
    ) {
        let Target {
            entity_ref,
            scope,
            snapshot,
            ..
        } = target;
        let engine = &self.engine;
        for &track in tracks {
            let Some(levels) = engine.certify(track, admissions, &view) else {
                continue;
            };
            let track_id = engine.track_id(track);
            let mut key: (Arc<str>, u32) = (Arc::from(track_id), 0);
            for level in levels {
                key.1 = level.level_ordinal;
                let previous = snapshot.certifications.get(&key).copied();
                if previous != Some((level.state, level.cumulative_state)) {
                    changes.certifications.push(CertificationChange {
                        certification: StoredCertification {
                            track_id: track_id.to_string(),
                            entity_ref: entity_ref.to_string(),
                            level_ordinal: level.level_ordinal,
                            scope: scope.to_string(),
                            state: level.state,
                            cumulative_state: level.cumulative_state,
                        },
                        previous_state: previous.map(|p| p.0),
                        previous_cumulative: previous.map(|p| p.1),
                    });
                }
            }
        }
    }
}

/// After a submission's commit: counts its facts and evaluations.
fn counted(outcome: SubmitOutcome) {
    metrics::counter!("soundcheck_facts_received_total").increment(outcome.facts as u64);
    metrics::counter!("soundcheck_evaluations_total").increment(outcome.evaluated as u64);
}

/// After a commit: counts the events written and wakes the events service.
fn announce<S: StateStore + Clone + 'static>(
    events: Option<&EventsService<S>>,
    applied: crate::store::Applied,
) {
    metrics::counter!("soundcheck_events_written_total")
        .increment(u64::try_from(applied.events()).unwrap_or(0));
    if let Some(events) = events {
        events.notify_committed(applied.last_seq);
    }
}
