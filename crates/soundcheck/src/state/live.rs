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

use crate::events::EventsService;
use crate::store::EntitySnapshot;
use crate::store::{
    CatalogStore, CertificationChange, FactRecord, ResultChange, StateChanges, StateStore,
    StoreResult, StoredCertification, StoredResult,
};

/// The built-in catalog collector's fact.
const ENTITY_DESCRIPTOR: &str = crate::batch::ENTITY_DESCRIPTOR;

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
}

impl<S: StateStore + CatalogStore + Clone + 'static> LiveState<S> {
    /// An evaluator; `events` is `Some` when `soundcheck.events.enabled`.
    pub fn new(engine: Arc<Engine>, store: S, events: Option<EventsService<S>>) -> Self {
        Self {
            engine,
            store,
            events,
        }
    }

    /// Stores facts and evaluates what they affect; each (entity, scope) is one read of its
    /// stored state and one transaction holding its facts, state changes, transitions and
    /// events.
    pub async fn submit_facts(&self, facts: Vec<FactRecord>) -> StoreResult<SubmitOutcome> {
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
        for ((entity_ref, scope), group) in groups {
            let now = chrono::Utc::now().timestamp_millis();
            let snapshot = self.store.snapshot(&entity_ref, &scope, now).await?;
            let Some(entity) = &snapshot.entity else {
                outcome.unknown_entities += 1;
                self.store.upsert_facts(&group, now).await?;
                continue;
            };
            outcome.evaluated += 1;
            let affected = self.checks_reading_facts(&group);
            let (mut changes, _) = self.evaluate(
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
            outcome.result_changes += changes.results.len();
            outcome.certification_changes += changes.certifications.len();
            changes.facts = group;
            let applied = self.store.apply(&changes, self.events.is_some()).await?;
            outcome.events += applied.events();
            if let Some(events) = &self.events {
                events.notify_committed(applied.last_seq);
            }
        }
        Ok(outcome)
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
        let mut states: HashMap<usize, Option<CheckState>> = HashMap::new();
        let mut changes = StateChanges {
            now_ms: chrono::Utc::now().timestamp_millis(),
            ..Default::default()
        };
        let mut changed_checks = Vec::new();
        let mut evaluated = Vec::with_capacity(affected.len());
        for &check in affected {
            let new = engine.evaluate_check(check, &admissions, &view);
            evaluated.push((check, new));
            states.insert(check, new);
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
            for level in levels {
                let previous = snapshot
                    .certifications
                    .get(&(track_id.to_string(), level.level_ordinal))
                    .copied();
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
