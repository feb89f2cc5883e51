//! The SQLite store's in-memory copy of what incremental evaluation reads about an entity:
//! its body (parsed, shared with the snapshots it hands out), its latest facts (as JSON text,
//! parsed when used), check states, certification levels and exemptions. A batch of fact submissions about entities
//! it holds then reads nothing from the database but the state version.
//!
//! The copy is kept exact rather than fresh-enough: `apply` updates it from the changes it
//! commits, other writes of this process drop it, and every transaction that writes state
//! bumps `instance.state_version` (read with every batch), so a write by another process on
//! the same file, or one whose drop raced a read, is noticed and the copy is dropped.

use std::collections::HashMap;

/// The cache's own maps, looked up a few thousand times per batch by entity ref: foldhash
/// (seeded per process) costs a fraction of the default SipHash there.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use soundcheck_core::model::{CertState, CheckState};

use super::{EntitySnapshot, FactNeeds, NeededFact, StateChanges};

/// (entity ref, scope).
pub(super) type Key = (String, String);

/// One (entity, scope), with names interned.
#[derive(Debug, Clone, Default)]
struct Entry {
    results: Vec<(u32, CheckState)>,
    levels: Vec<(u32, u32, CertState, CertState)>,
    /// Exemptions not revoked: (check, expiry in ms).
    exemptions: Vec<(u32, Option<i64>)>,
    /// Latest facts: (fact ref, timestamp in ms, data as JSON).
    facts: Vec<(u32, i64, Arc<str>)>,
}

/// Check ids, track ids and fact refs, each stored once.
#[derive(Debug, Default)]
struct Names {
    ids: FastMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: FastMap<Key, Entry>,
    /// Entity bodies, by entity ref (an entry is used only with its body).
    bodies: FastMap<String, Arc<Value>>,
    names: Names,
    /// Bumped by every change to `entries` other than a fill, so a fill computed from a read
    /// that started before the change is refused.
    generation: u64,
    /// The `state_version` the entries reflect; `None` after a drop.
    version: Option<i64>,
    /// Versions this process's commits are bringing the database to: a read may find one
    /// in the database before `applied` has followed it.
    committing: Vec<i64>,
}

/// What a batch read found, and the position of the cache it was taken at.
#[derive(Debug, Default)]
pub(super) struct Lookup {
    /// Snapshots of the pairs held, with the facts asked for.
    pub hits: HashMap<Key, EntitySnapshot>,
    pub generation: u64,
    pub version: Option<i64>,
}

/// What a database read found for an (entity, scope) the cache did not hold (the body is
/// the snapshot's).
pub(super) struct Fill<'a> {
    pub key: &'a Key,
    pub snapshot: &'a EntitySnapshot,
    /// Every latest fact: (fact ref, timestamp, data as stored).
    pub facts: &'a [(String, i64, String)],
    /// Exemptions not revoked, with their expiry.
    pub exemptions: &'a [(String, Option<i64>)],
}

/// The cache of one SQLite store, shared by its clones.
#[derive(Debug)]
pub struct StateCache {
    capacity: usize,
    inner: Mutex<Inner>,
    /// Woken when a commit announced with `committing` ends.
    settled: tokio::sync::Notify,
}

/// A commit of this process in flight (see [`StateCache::committing`]); announces its end
/// when dropped, applied or not.
pub(super) struct Committing<'a> {
    cache: &'a StateCache,
    version: i64,
}

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        if let Some(i) = inner.committing.iter().position(|v| *v == self.version) {
            inner.committing.swap_remove(i);
        }
        drop(inner);
        self.cache.settled.notify_waiters();
    }
}

impl StateCache {
    /// A cache holding at most `capacity` (entity, scope) pairs; when full it starts over.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
            settled: tokio::sync::Notify::new(),
        }
    }

    /// Announces a commit of this process that brings the database to `version`, from
    /// before it commits until the returned guard goes (after `applied`, or on failure).
    /// A read that finds `version` in the database meanwhile waits for it
    /// ([`Self::caught_up`]) instead of taking it for another writer's.
    pub(super) fn committing(&self, version: i64) -> Committing<'_> {
        self.lock().committing.push(version);
        Committing {
            cache: self,
            version,
        }
    }

    /// Whether the entries reflect `version` (or later), found in the database by a read: when a commit
    /// of this process is bringing it, after waiting for that commit to end. `false` means
    /// someone else wrote (or the commit was not followed): the entries cannot be trusted.
    pub(super) async fn caught_up(&self, version: i64) -> bool {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let inner = self.lock();
                // Beyond it is as good: the caller looks up again and compares again.
                if inner.version.is_some_and(|v| v >= version) {
                    return true;
                }
                if !inner.committing.contains(&version) {
                    return false;
                }
            }
            settled.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(inner) => inner,
            // A panic while holding the lock may have left an entry half-updated: start over.
            Err(poisoned) => {
                let mut inner = poisoned.into_inner();
                drop_all(&mut inner);
                self.inner.clear_poison();
                inner
            }
        }
    }

    /// Snapshots of the pairs of `keys` held, with exemptions active at `now_ms` and the facts
    /// `needs` asks for. A fact that no longer parses is left to the database read. The
    /// entries are copied under the lock and decoded after it, so a commit following its
    /// changes (`applied`) never waits for a batch's JSON to be parsed.
    pub(super) fn lookup(&self, keys: &[Key], now_ms: i64, needs: FactNeeds<'_>) -> Lookup {
        let inner = self.lock();
        let held: Vec<(&Key, Entry, Arc<Value>)> = keys
            .iter()
            .filter_map(|key| {
                let entry = inner.entries.get(key)?;
                let body = inner.bodies.get(&key.0)?;
                Some((key, entry.clone(), Arc::clone(body)))
            })
            .collect();
        let names = inner.names.names.clone();
        let (generation, version) = (inner.generation, inner.version);
        drop(inner);
        let hits = held
            .into_iter()
            .filter_map(|(key, entry, body)| {
                let wanted = match needs {
                    FactNeeds::All => None,
                    FactNeeds::Only(needs) => Some(needs.get(key).map_or(&[][..], Vec::as_slice)),
                };
                Some((key.clone(), hit_of(&names, &entry, body, wanted, now_ms)?))
            })
            .collect();
        Lookup {
            hits,
            generation,
            version,
        }
    }

    /// Stores what a read at `version` found, unless the cache changed since `lookup`
    /// returned `generation`. A version other than the one the entries reflect means another
    /// writer: the entries are dropped instead.
    pub(super) fn fill(&self, generation: u64, version: i64, fills: &[Fill<'_>]) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.version != Some(version) {
            if !inner.entries.is_empty() {
                drop_all(&mut inner);
                return;
            }
            inner.version = Some(version);
        }
        if inner.entries.len() + fills.len() > self.capacity {
            inner.entries.clear();
            inner.bodies.clear();
            inner.names = Names::default();
        }
        for (fill, body) in fills
            .iter()
            .filter_map(|f| Some((f, f.snapshot.entity.as_ref()?)))
            .take(self.capacity)
        {
            let entry = entry_of(&mut inner.names, fill);
            inner.entries.insert(fill.key.clone(), entry);
            inner.bodies.insert(fill.key.0.clone(), Arc::clone(body));
        }
    }

    /// After a commit that moved the database to `version`: the committed changes applied to
    /// the entries held, or every entry dropped when another writer came in between.
    pub(super) fn applied(&self, version: i64, changes: &StateChanges) {
        let mut inner = self.lock();
        inner.generation += 1;
        if inner.version != Some(version - 1) {
            drop_all(&mut inner);
            inner.version = Some(version);
            return;
        }
        inner.version = Some(version);
        let Inner { entries, names, .. } = &mut *inner;
        for change in &changes.results {
            let r = &change.result;
            if let Some(entry) = entries.get_mut(&(r.entity_ref.clone(), r.scope.clone())) {
                let check = names.id(&r.check_id);
                match entry.results.iter_mut().find(|(c, _)| *c == check) {
                    Some(slot) => slot.1 = r.state,
                    None => entry.results.push((check, r.state)),
                }
            }
        }
        for change in &changes.certifications {
            let c = &change.certification;
            if let Some(entry) = entries.get_mut(&(c.entity_ref.clone(), c.scope.clone())) {
                let track = names.id(&c.track_id);
                let level = (c.state, c.cumulative_state);
                match entry
                    .levels
                    .iter_mut()
                    .find(|(t, l, _, _)| *t == track && *l == c.level_ordinal)
                {
                    Some(slot) => (slot.2, slot.3) = level,
                    None => entry
                        .levels
                        .push((track, c.level_ordinal, level.0, level.1)),
                }
            }
        }
        // In order, the newest winning and the later of equals, as the database's upsert.
        for fact in &changes.facts {
            if let Some(entry) = entries.get_mut(&(fact.entity_ref.clone(), fact.scope.clone())) {
                let id = names.id(&fact.fact_ref);
                let data: Arc<str> = Arc::from(fact.data.to_string());
                match entry.facts.iter_mut().find(|(f, _, _)| *f == id) {
                    Some(slot) if slot.1 <= fact.timestamp_ms => {
                        (slot.1, slot.2) = (fact.timestamp_ms, data);
                    }
                    Some(_) => {}
                    None => entry.facts.push((id, fact.timestamp_ms, data)),
                }
            }
        }
    }

    /// Forgets these entities (every scope): their bodies changed or they are gone.
    pub(super) fn forget_entities(&self, refs: &[String]) {
        let mut inner = self.lock();
        inner.generation += 1;
        let gone: std::collections::HashSet<&str> = refs.iter().map(String::as_str).collect();
        inner.entries.retain(|(e, _), _| !gone.contains(e.as_str()));
        inner.bodies.retain(|e, _| !gone.contains(e.as_str()));
    }

    /// Forgets everything: after a write this cache does not follow (deletes, exemptions,
    /// facts stored outside `apply`).
    pub fn invalidate(&self) {
        drop_all(&mut self.lock());
    }

    /// (entity, scope) pairs held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn drop_all(inner: &mut Inner) {
    inner.entries.clear();
    inner.bodies.clear();
    // Names are only referenced by entries: without this, names from facts that come and go
    // would pile up.
    inner.names = Names::default();
    inner.generation += 1;
    inner.version = None;
}

/// The snapshot of one entry: `None` when a wanted fact no longer parses.
fn hit_of(
    names: &[Arc<str>],
    entry: &Entry,
    body: Arc<Value>,
    wanted: Option<&[NeededFact]>,
    now_ms: i64,
) -> Option<EntitySnapshot> {
    let name = |id: u32| names.get(id as usize).map_or("", |n| n);
    let shared = |id: u32| {
        names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    };
    // Only stored copies newer than the submitted one matter (see `FactNeeds::Only`).
    let needed = |fact_ref: &str, stored_ms: i64| {
        wanted.is_none_or(|wanted| {
            wanted.iter().any(|n| {
                n.fact_ref == fact_ref && n.incoming_ms.is_none_or(|incoming| stored_ms > incoming)
            })
        })
    };
    let mut facts = Vec::new();
    for (f, t, data) in &entry.facts {
        let fact_ref = name(*f);
        if needed(fact_ref, *t) {
            facts.push((fact_ref.to_string(), serde_json::from_str(data).ok()?, *t));
        }
    }
    Some(EntitySnapshot {
        entity: Some(body),
        facts,
        results: entry
            .results
            .iter()
            .map(|(c, s)| (shared(*c), *s))
            .collect(),
        certifications: entry
            .levels
            .iter()
            .map(|(t, l, s, c)| ((shared(*t), *l), (*s, *c)))
            .collect(),
        exempt: entry
            .exemptions
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_ms))
            .map(|(c, _)| name(*c).to_string())
            .collect(),
    })
}

fn entry_of(names: &mut Names, fill: &Fill<'_>) -> Entry {
    let s = fill.snapshot;
    Entry {
        results: s
            .results
            .iter()
            .map(|(c, state)| (names.id(c), *state))
            .collect(),
        levels: s
            .certifications
            .iter()
            .map(|((t, l), (a, b))| (names.id(t), *l, *a, *b))
            .collect(),
        exemptions: fill
            .exemptions
            .iter()
            .map(|(c, at)| (names.id(c), *at))
            .collect(),
        facts: fill
            .facts
            .iter()
            .map(|(f, t, data)| (names.id(f), *t, Arc::from(data.as_str())))
            .collect(),
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
