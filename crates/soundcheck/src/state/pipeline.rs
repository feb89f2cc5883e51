//! The writer lock of a service, with fact submissions pipelined: one submission reads and
//! evaluates while the previous one commits. Each submission must see the state the previous
//! one leaves, so a submission that is evaluated but not yet committed lays its changes over
//! what later submissions read ("pending" changes). Commits keep the order of evaluation. If a
//! commit fails, every submission evaluated on top of it is abandoned and nothing of it is
//! stored: its caller gets an error and can submit again.
//!
//! Every other writer ([`Writer::lock`]) waits for the submission being evaluated and for
//! every pending commit, so it reads only committed state, as before pipelining.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use soundcheck_core::model::{CertState, CheckState};

use crate::store::{EntitySnapshot, StateChanges, StoreError, StoreResult};

/// What one pending submission changes for one (entity, scope).
#[derive(Debug, Default)]
struct KeyChanges {
    results: Vec<(String, CheckState)>,
    certifications: Vec<((String, u32), (CertState, CertState))>,
    facts: Vec<(String, Value, i64)>,
}

/// An (entity, scope).
type Key = (String, String);

#[derive(Default)]
struct Pending {
    /// Moves on every failed or abandoned commit; a submission evaluated under an older
    /// generation may have read changes that will never be stored.
    generation: u64,
    next_id: u64,
    /// Per (entity, scope): the pending submissions' changes, oldest first.
    by_key: HashMap<Key, Vec<(u64, Arc<KeyChanges>)>>,
}

/// The pending changes of some (entity, scope) pairs, taken before their stored state is read.
pub(crate) struct Overlay {
    generation: u64,
    by_key: Vec<(Key, Vec<Arc<KeyChanges>>)>,
}

/// The writer lock: evaluation stage, commit order and pending changes.
#[derive(Default)]
pub struct Writer {
    evaluate: tokio::sync::Mutex<()>,
    commit: Arc<tokio::sync::Mutex<()>>,
    pending: Mutex<Pending>,
}

/// Held by a writer other than a fact submission: nothing is being evaluated or committed.
pub struct WriterGuard<'a> {
    _evaluate: tokio::sync::MutexGuard<'a, ()>,
    _commit: tokio::sync::MutexGuard<'a, ()>,
}

/// A submission's place in the commit order, with its pending changes: released (the
/// changes dropped, and on failure every later submission abandoned) when it goes.
pub(crate) struct Held {
    writer: Arc<Writer>,
    id: u64,
    generation: u64,
    stored: bool,
    _commit: tokio::sync::OwnedMutexGuard<()>,
}

/// The error of a submission evaluated on top of one whose commit failed.
fn abandoned() -> StoreError {
    StoreError::Abandoned(
        "an earlier fact submission, evaluated before this one, failed to commit".into(),
    )
}

impl Writer {
    /// A writer with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until nothing is evaluated or pending, and keeps it so while held.
    pub async fn lock(&self) -> WriterGuard<'_> {
        let evaluate = self.evaluate.lock().await;
        let commit = self.commit.lock().await;
        WriterGuard {
            _evaluate: evaluate,
            _commit: commit,
        }
    }

    /// The evaluation stage of a fact submission: one at a time, in arrival order.
    pub(crate) async fn evaluation(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.evaluate.lock().await
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pending changes of `keys`, with the generation they belong to. Taken **before**
    /// the stored state is read: a pending submission that commits during the read has then
    /// either been read from the store or is in the copy. Laying committed changes over
    /// again changes nothing: the writers that change the same rows (results, levels,
    /// facts) in this process wait for the writer lock.
    pub(crate) fn pending_for(&self, keys: &[(String, String)]) -> Overlay {
        let pending = self.pending();
        let by_key = keys
            .iter()
            .filter_map(|key| {
                let batches = pending.by_key.get(key)?;
                Some((
                    key.clone(),
                    batches.iter().map(|(_, c)| Arc::clone(c)).collect(),
                ))
            })
            .collect();
        Overlay {
            generation: pending.generation,
            by_key,
        }
    }

    /// Takes the next place in the commit order (waiting for the previous submission's
    /// commit to end) and makes `changes` pending, unless a commit failed since `generation`
    /// was read.
    pub(crate) async fn hold(
        self: &Arc<Self>,
        changes: &StateChanges,
        generation: u64,
    ) -> StoreResult<Held> {
        // Grouped before the wait: the time between two commits is the pipeline's period.
        let by_key = changes_by_key(changes);
        let commit = Arc::clone(&self.commit).lock_owned().await;
        let mut pending = self.pending();
        if pending.generation != generation {
            return Err(abandoned());
        }
        let id = pending.next_id;
        pending.next_id += 1;
        for (k, c) in by_key {
            pending.by_key.entry(k).or_default().push((id, Arc::new(c)));
        }
        Ok(Held {
            writer: Arc::clone(self),
            id,
            generation,
            stored: false,
            _commit: commit,
        })
    }
}

/// A submission's changes by (entity, scope), as pending changes are kept.
fn changes_by_key(changes: &StateChanges) -> HashMap<Key, KeyChanges> {
    let mut by_key: HashMap<(String, String), KeyChanges> = HashMap::new();
    let key = |e: &str, s: &str| (e.to_string(), s.to_string());
    for c in &changes.results {
        let r = &c.result;
        by_key
            .entry(key(&r.entity_ref, &r.scope))
            .or_default()
            .results
            .push((r.check_id.clone(), r.state));
    }
    for c in &changes.certifications {
        let s = &c.certification;
        by_key
            .entry(key(&s.entity_ref, &s.scope))
            .or_default()
            .certifications
            .push((
                (s.track_id.clone(), s.level_ordinal),
                (s.state, s.cumulative_state),
            ));
    }
    for f in &changes.facts {
        by_key
            .entry(key(&f.entity_ref, &f.scope))
            .or_default()
            .facts
            .push((f.fact_ref.clone(), f.data.clone(), f.timestamp_ms));
    }
    by_key
}

impl Overlay {
    /// Lays the changes over the snapshots read after they were taken; returns the
    /// generation they belong to.
    pub(crate) fn lay_over(self, snapshots: &mut HashMap<(String, String), EntitySnapshot>) -> u64 {
        for (key, batches) in self.by_key {
            let Some(snapshot) = snapshots.get_mut(&key) else {
                continue;
            };
            for changes in batches {
                for (check, state) in &changes.results {
                    snapshot.results.insert(Arc::from(check.as_str()), *state);
                }
                for ((track, level), states) in &changes.certifications {
                    let level = (Arc::from(track.as_str()), *level);
                    snapshot.certifications.insert(level, *states);
                }
                // After the stored copies: on equal timestamps the later write wins.
                snapshot.facts.extend(changes.facts.iter().cloned());
            }
        }
        self.generation
    }
}

impl Held {
    /// Whether the submission may still commit: no earlier one failed after it was read.
    pub(crate) fn check(&self) -> StoreResult<()> {
        if self.writer.pending().generation == self.generation {
            Ok(())
        } else {
            Err(abandoned())
        }
    }

    /// Marks the changes stored: releasing drops them from the overlay (the store has them).
    pub(crate) fn stored(mut self) {
        self.stored = true;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut pending = self.writer.pending();
        if self.stored {
            let id = self.id;
            pending.by_key.retain(|_, batches| {
                batches.retain(|(b, _)| *b != id);
                !batches.is_empty()
            });
        } else {
            // Later submissions may have read these changes: abandon them all.
            pending.generation += 1;
            pending.by_key.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{FactRecord, ResultChange, StoredResult};

    fn changes(entity: &str, state: CheckState, fact_ts: i64) -> StateChanges {
        StateChanges {
            results: vec![ResultChange {
                result: StoredResult {
                    check_id: "c".into(),
                    entity_ref: entity.into(),
                    scope: "default".into(),
                    state,
                },
                previous: None,
                details: None,
                message: None,
                submitted_by: None,
            }],
            facts: vec![FactRecord {
                entity_ref: entity.into(),
                fact_ref: "f:default/x".into(),
                scope: "default".into(),
                data: json!({"ts": fact_ts}),
                timestamp_ms: fact_ts,
            }],
            ..Default::default()
        }
    }

    /// Reads entity `a` as a submission does: pending changes first, then the (empty)
    /// stored state, then the one laid over the other.
    fn read_a(writer: &Writer) -> (HashMap<(String, String), EntitySnapshot>, u64) {
        let key = ("a".to_string(), "default".to_string());
        let overlay = writer.pending_for(std::slice::from_ref(&key));
        let mut read = HashMap::from([(key, EntitySnapshot::default())]);
        let generation = overlay.lay_over(&mut read);
        (read, generation)
    }

    #[tokio::test]
    async fn pending_changes_are_read_until_stored_and_a_failure_abandons_what_read_them() {
        let writer = Arc::new(Writer::new());
        let g0 = read_a(&writer).1;
        let first = writer
            .hold(&changes("a", CheckState::Failed, 1), g0)
            .await
            .expect("held");
        // The next submission sees the first one's changes before they are stored.
        let (read, g1) = read_a(&writer);
        let snapshot = &read[&("a".to_string(), "default".to_string())];
        assert_eq!(snapshot.results.get("c"), Some(&CheckState::Failed));
        assert_eq!(snapshot.facts.len(), 1);
        // Taken before a read that the commit overtakes: the changes are still laid over.
        let key = ("a".to_string(), "default".to_string());
        let taken = writer.pending_for(std::slice::from_ref(&key));
        first.stored();
        let mut read = HashMap::from([(key, EntitySnapshot::default())]);
        taken.lay_over(&mut read);
        assert_eq!(
            read[&("a".to_string(), "default".to_string())]
                .results
                .get("c"),
            Some(&CheckState::Failed)
        );
        let (read, _) = read_a(&writer);
        assert!(
            read[&("a".to_string(), "default".to_string())]
                .results
                .is_empty()
        );

        // A failed commit abandons a submission that read it, before or after holding.
        let second = writer
            .hold(&changes("a", CheckState::Passed, 2), g1)
            .await
            .expect("held");
        let g2 = read_a(&writer).1;
        drop(second);
        assert!(matches!(
            writer.hold(&changes("a", CheckState::Failed, 3), g2).await,
            Err(StoreError::Abandoned(_))
        ));
        let (read, g3) = read_a(&writer);
        assert!(
            read[&("a".to_string(), "default".to_string())]
                .results
                .is_empty()
        );
        let third = writer
            .hold(&changes("a", CheckState::Failed, 4), g3)
            .await
            .expect("held");
        assert!(third.check().is_ok());
        third.stored();
        let _all = writer.lock().await;
    }
}
