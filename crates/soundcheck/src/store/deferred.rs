//! Write-behind of evaluation state (SQLite): the check results and certification levels a
//! fact submission changes are held in memory and written to `check_results` and
//! `certifications` in bulk, every `stateWriteBehindSeconds`, instead of row by row with
//! each submission. An entity's results change many times between two writes, so a bulk
//! write dirties far fewer pages (BENCHMARKS.md § 5, twelfth session).
//!
//! Nothing is lost on a crash: each submission still commits its transitions (the outbox),
//! and every result or level held here is the newest transition of its key. The tables
//! record which transitions they reflect (`state_flushed`); on open, transitions after that
//! are rolled forward into the tables ([`ROLL_FORWARD`]).
//!
//! Reads of one entity merge what is held here over the tables; reads across entities, and
//! every other write of those tables, first write what is held (see `SqlStore::settle`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use soundcheck_core::model::{CertState, CheckState};

use super::StateChanges;
pub use super::held_view::HeldView;
use super::write_behind::{WRITE_LEVELS, WRITE_RESULTS};

/// A held result: state and the time it was reached (last checked and last changed).
pub(super) type HeldResult = (CheckState, i64);
/// A held level: state, cumulative state and the time reached.
pub(super) type HeldLevel = (CertState, CertState, i64);

/// One entity's held rows: a handful, searched in place, so that holding a change that
/// replaces an earlier one allocates nothing.
#[derive(Debug, Default, Clone)]
pub(super) struct EntityRows {
    /// (scope, check id, held).
    pub(super) results: Vec<(String, String, HeldResult)>,
    /// (scope, track id, level, held).
    pub(super) levels: Vec<(String, String, u32, HeldLevel)>,
}

/// Results and levels of a set of submissions, by entity (hashed: this is looked up for
/// every change of every submission).
#[derive(Debug, Default)]
struct Rows {
    entities: HashMap<String, EntityRows, foldhash::fast::RandomState>,
    len: usize,
}

impl Rows {
    /// A new entity's rows (callers look it up without allocating first).
    fn entity(&mut self, entity_ref: &str) -> &mut EntityRows {
        self.entities.entry(entity_ref.to_string()).or_default()
    }

    fn put_result(
        &mut self,
        entity: &str,
        scope: &str,
        check: &str,
        held: HeldResult,
    ) -> Option<HeldResult> {
        let rows = match self.entities.get_mut(entity) {
            Some(rows) => rows,
            None => self.entity(entity),
        };
        if let Some(row) = rows
            .results
            .iter_mut()
            .find(|r| r.1 == check && r.0 == scope)
        {
            return Some(std::mem::replace(&mut row.2, held));
        }
        rows.results
            .push((scope.to_string(), check.to_string(), held));
        self.len += 1;
        None
    }

    fn put_level(
        &mut self,
        entity: &str,
        scope: &str,
        track: &str,
        level: u32,
        held: HeldLevel,
    ) -> Option<HeldLevel> {
        let rows = match self.entities.get_mut(entity) {
            Some(rows) => rows,
            None => self.entity(entity),
        };
        if let Some(row) = rows
            .levels
            .iter_mut()
            .find(|r| r.2 == level && r.1 == track && r.0 == scope)
        {
            return Some(std::mem::replace(&mut row.3, held));
        }
        rows.levels
            .push((scope.to_string(), track.to_string(), level, held));
        self.len += 1;
        None
    }

    /// Takes back a change held with [`Rows::put_result`] (`put`: what was held, `old`: what
    /// it replaced), unless a later hold replaced it since.
    fn unput_result(
        &mut self,
        entity: &str,
        scope: &str,
        check: &str,
        put: HeldResult,
        old: Option<HeldResult>,
    ) {
        let Some(rows) = self.entities.get_mut(entity) else {
            return;
        };
        let Some(i) = rows
            .results
            .iter()
            .position(|r| r.1 == check && r.0 == scope && r.2 == put)
        else {
            return;
        };
        match old {
            Some(held) => rows.results[i].2 = held,
            None => {
                rows.results.swap_remove(i);
                self.len -= 1;
            }
        }
    }

    fn unput_level(
        &mut self,
        entity: &str,
        scope: &str,
        track: &str,
        level: u32,
        put: HeldLevel,
        old: Option<HeldLevel>,
    ) {
        let Some(rows) = self.entities.get_mut(entity) else {
            return;
        };
        let Some(i) = rows
            .levels
            .iter()
            .position(|r| r.2 == level && r.1 == track && r.0 == scope && r.3 == put)
        else {
            return;
        };
        match old {
            Some(held) => rows.levels[i].3 = held,
            None => {
                rows.levels.swap_remove(i);
                self.len -= 1;
            }
        }
    }

    /// Entities in key order, for writes that walk the tables' B-trees forwards.
    fn sorted(&self) -> Vec<(&String, &EntityRows)> {
        let mut entities: Vec<_> = self.entities.iter().collect();
        entities.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entities
    }
}

#[derive(Debug, Default)]
struct Layers {
    /// Changes committed (or being committed) since the last bulk write began.
    pending: Rows,
    /// The changes a bulk write in progress is writing: still merged into reads until it
    /// commits. Older than `pending`.
    writing: Option<Arc<Rows>>,
    /// When the last bulk write committed (ms).
    written_at: i64,
    /// Moves when rows leave memory because a bulk write committed: a read of the tables
    /// that began before then may miss them, and is made again (see [`Deferred::view`]).
    epoch: u64,
    /// Holds whose transaction did not say whether it committed (an error or a dropped
    /// future), and how many of those a roll-forward has covered since.
    unsure: u64,
    unsure_covered: u64,
}

/// The results and levels not yet in their tables; see the module header.
#[derive(Debug)]
pub struct Deferred {
    layers: Mutex<Layers>,
    /// Longest time a change waits (ms).
    interval_ms: i64,
    /// Held rows at which a bulk write starts early.
    max_rows: usize,
    /// A background bulk write was started and has not ended.
    started: std::sync::atomic::AtomicBool,
}

/// Held rows at which a bulk write starts before its time: bounds memory and the length of
/// one write transaction.
const MAX_ROWS: usize = 2_000_000;

impl Deferred {
    /// Holds changes up to `interval_ms` before they are written.
    pub fn new(interval_ms: i64, now_ms: i64) -> Self {
        Self {
            layers: Mutex::new(Layers {
                written_at: now_ms,
                ..Layers::default()
            }),
            interval_ms,
            max_rows: MAX_ROWS,
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        let layers = self.lock();
        layers.pending.len == 0 && layers.writing.is_none()
    }

    /// Whether a bulk write is due at `now_ms` and none is running or about to: the caller
    /// then starts one, and [`Deferred::finished`] says when it ends.
    pub fn due(&self, now_ms: i64) -> bool {
        let layers = self.lock();
        let due = layers.pending.len > 0
            && layers.writing.is_none()
            && (now_ms - layers.written_at >= self.interval_ms
                || layers.pending.len >= self.max_rows);
        due && !self.started.swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    /// The bulk write [`Deferred::due`] asked for ended (written, given up or failed).
    pub fn finished(&self) {
        self.started
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Holds the results and levels of `changes`, which the caller is about to commit with
    /// their transitions. Dropping the returned guard without [`Held::keep`] takes them back.
    pub fn hold<'a>(&'a self, changes: &'a StateChanges) -> Held<'a> {
        let at = changes.now_ms;
        let mut layers = self.lock();
        let pending = &mut layers.pending;
        let old_results = changes
            .results
            .iter()
            .map(|c| {
                let r = &c.result;
                pending.put_result(&r.entity_ref, &r.scope, &r.check_id, (r.state, at))
            })
            .collect();
        let old_levels = changes
            .certifications
            .iter()
            .map(|c| {
                let s = &c.certification;
                let held = (s.state, s.cumulative_state, at);
                pending.put_level(&s.entity_ref, &s.scope, &s.track_id, s.level_ordinal, held)
            })
            .collect();
        Held {
            owner: self,
            changes,
            old_results,
            old_levels,
            kept: false,
        }
    }

    /// Moves everything pending to a bulk write, or `None` when nothing is pending. Must be
    /// called inside the write transaction (on the one writer connection), so that every
    /// change held was committed before it.
    pub fn take(&self) -> Option<Taken<'_>> {
        let mut layers = self.lock();
        // A bulk write whose guard has not finished yet (its commit is returning): its rows
        // are older than the pending ones, and writing them again is harmless.
        if let Some(earlier) = layers.writing.take() {
            restore(&mut layers, &earlier);
        }
        if layers.pending.len == 0 {
            return None;
        }
        let rows = Arc::new(std::mem::take(&mut layers.pending));
        layers.writing = Some(Arc::clone(&rows));
        Some(Taken {
            owner: self,
            rows,
            done: false,
        })
    }

    /// The current epoch, to pass to [`Deferred::view`] after reading the tables.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// What is held for `entity_refs`, newest over oldest, or `None` when a bulk write
    /// committed since `epoch` was read: a table read made in between may have missed rows
    /// that have since left memory, so the caller reads again.
    pub fn view<'e>(
        &self,
        entity_refs: impl IntoIterator<Item = &'e str>,
        epoch: u64,
    ) -> Option<HeldView> {
        let layers = self.lock();
        if layers.epoch != epoch {
            return None;
        }
        let mut entities: HashMap<String, EntityRows, foldhash::fast::RandomState> =
            HashMap::default();
        for entity_ref in entity_refs {
            let older = layers
                .writing
                .as_deref()
                .and_then(|w| w.entities.get(entity_ref));
            let newer = layers.pending.entities.get(entity_ref);
            let merged = match (older, newer) {
                (None, None) => continue,
                (Some(only), None) | (None, Some(only)) => only.clone(),
                (Some(older), Some(newer)) => {
                    let mut rows = Rows::default();
                    for layer in [older, newer] {
                        for (scope, check, held) in &layer.results {
                            rows.put_result(entity_ref, scope, check, *held);
                        }
                        for (scope, track, level, held) in &layer.levels {
                            rows.put_level(entity_ref, scope, track, *level, *held);
                        }
                    }
                    rows.entities.remove(entity_ref).unwrap_or_default()
                }
            };
            entities.insert(entity_ref.to_string(), merged);
        }
        Some(HeldView::new(entities))
    }

    /// A roll-forward is needed before the tables are next marked written: some hold's
    /// transaction may have committed after its rows were taken back. Returns the count to
    /// pass to [`Deferred::rolled_forward`] once the roll-forward has committed.
    pub fn unsure(&self) -> Option<u64> {
        let layers = self.lock();
        (layers.unsure > layers.unsure_covered).then_some(layers.unsure)
    }

    /// A roll-forward covering the holds counted up to `count` committed.
    pub fn rolled_forward(&self, count: u64) {
        let mut layers = self.lock();
        layers.unsure_covered = layers.unsure_covered.max(count);
    }
}

/// `rows` as JSON arrays of at most `size` rows, each with the statement `sql` that reads it.
fn chunked<T: serde::Serialize>(
    sql: &'static str,
    rows: impl Iterator<Item = T>,
    size: usize,
    out: &mut Vec<(&'static str, String)>,
) {
    let mut chunk = Vec::new();
    for row in rows {
        chunk.push(row);
        if chunk.len() == size {
            out.push((sql, serde_json::to_string(&chunk).unwrap_or_default()));
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        out.push((sql, serde_json::to_string(&chunk).unwrap_or_default()));
    }
}

/// Puts rows of a bulk write that did not commit back under the pending ones (which are
/// newer).
fn restore(layers: &mut Layers, rows: &Rows) {
    for (entity, held) in &rows.entities {
        for (scope, check, h) in &held.results {
            let newer = layers
                .pending
                .entities
                .get(entity.as_str())
                .is_some_and(|e| e.results.iter().any(|r| &r.1 == check && &r.0 == scope));
            if !newer {
                layers.pending.put_result(entity, scope, check, *h);
            }
        }
        for (scope, track, level, h) in &held.levels {
            let newer = layers
                .pending
                .entities
                .get(entity.as_str())
                .is_some_and(|e| {
                    e.levels
                        .iter()
                        .any(|r| r.2 == *level && &r.1 == track && &r.0 == scope)
                });
            if !newer {
                layers.pending.put_level(entity, scope, track, *level, *h);
            }
        }
    }
}

/// Changes held for a transaction not yet committed; see [`Deferred::hold`].
pub struct Held<'a> {
    owner: &'a Deferred,
    changes: &'a StateChanges,
    /// What each result and level change replaced, to take them back.
    old_results: Vec<Option<HeldResult>>,
    old_levels: Vec<Option<HeldLevel>>,
    kept: bool,
}

impl Held<'_> {
    /// The transaction committed: the changes stay.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // The transaction may still have committed (a dropped future does not stop a COMMIT
        // already sent): the next write of the tables rolls transitions forward first.
        let at = self.changes.now_ms;
        let mut layers = self.owner.lock();
        layers.unsure += 1;
        let pending = &mut layers.pending;
        for (c, old) in self
            .changes
            .certifications
            .iter()
            .zip(&self.old_levels)
            .rev()
        {
            let s = &c.certification;
            let put = (s.state, s.cumulative_state, at);
            pending.unput_level(
                &s.entity_ref,
                &s.scope,
                &s.track_id,
                s.level_ordinal,
                put,
                *old,
            );
        }
        for (c, old) in self.changes.results.iter().zip(&self.old_results).rev() {
            let r = &c.result;
            pending.unput_result(&r.entity_ref, &r.scope, &r.check_id, (r.state, at), *old);
        }
    }
}

/// Rows moved to a bulk write; see [`Deferred::take`]. Dropped without [`Taken::done`] (the
/// write failed), they go back to pending.
pub struct Taken<'a> {
    owner: &'a Deferred,
    rows: Arc<Rows>,
    done: bool,
}

impl Taken<'_> {
    /// The same rows as statements of at most `rows` rows each, for a bulk write spread
    /// over several transactions: ([`WRITE_RESULTS`] or [`WRITE_LEVELS`], `$1`).
    pub fn chunks(&self, rows: usize) -> Vec<(&'static str, String)> {
        let rows = rows.max(1);
        let entities = self.rows.sorted();
        let mut out = Vec::new();
        let results = entities.iter().flat_map(|(entity, held)| {
            let mut mine: Vec<_> = held.results.iter().collect();
            mine.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            mine.into_iter()
                .map(move |(scope, check, (state, at))| (check, *entity, scope, state.as_str(), at))
        });
        chunked(WRITE_RESULTS, results, rows, &mut out);
        let levels = entities.iter().flat_map(|(entity, held)| {
            let mut mine: Vec<_> = held.levels.iter().collect();
            mine.sort_unstable_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
            mine.into_iter()
                .map(move |(scope, track, level, (state, cumulative, at))| {
                    let states = (state.as_str(), cumulative.as_str());
                    (track, *entity, level, scope, states.0, states.1, at)
                })
        });
        chunked(WRITE_LEVELS, levels, rows, &mut out);
        out
    }

    /// Whether these rows are still the ones being written: another write of the tables
    /// (which writes everything held first) takes them over.
    pub fn still_writing(&self) -> bool {
        let layers = self.owner.lock();
        layers
            .writing
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(w, &self.rows))
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len
    }

    /// The write committed at `now_ms`.
    pub fn done(mut self, now_ms: i64) {
        self.done = true;
        let mut layers = self.owner.lock();
        if layers
            .writing
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(w, &self.rows))
        {
            layers.writing = None;
        }
        layers.written_at = now_ms;
        layers.epoch += 1;
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut layers = self.owner.lock();
        if layers
            .writing
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(w, &self.rows))
        {
            layers.writing = None;
            restore(&mut layers, &self.rows);
        }
    }
}

#[cfg(test)]
#[path = "deferred_tests.rs"]
mod tests;
