//! The SQLite store's in-memory copy of what incremental evaluation reads about an entity:
//! its body, its latest facts, check states, certification levels and exemptions (bodies and
//! fact data kept as JSON text, parsed when used). A batch of fact submissions about entities
//! it holds then reads nothing from the database but the state version.
//!
//! The copy is kept exact rather than fresh-enough: `apply` updates it from the changes it
//! commits, other writes of this process drop it, and every transaction that writes state
//! bumps `instance.state_version` (read with every batch), so a write by another process on
//! the same file, or one whose drop raced a read, is noticed and the copy is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
    facts: Vec<(u32, i64, Box<str>)>,
}

/// Check ids, track ids and fact refs, each stored once.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
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

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Entity bodies as JSON, by entity ref (an entry is used only with its body).
    bodies: HashMap<String, Box<str>>,
    names: Names,
    /// Bumped by every change to `entries` other than a fill, so a fill computed from a read
    /// that started before the change is refused.
    generation: u64,
    /// The `state_version` the entries reflect; `None` after a drop.
    version: Option<i64>,
}

/// What a batch read found, and the position of the cache it was taken at.
#[derive(Debug, Default)]
pub(super) struct Lookup {
    /// Snapshots of the pairs held, with the facts asked for.
    pub hits: HashMap<Key, EntitySnapshot>,
    pub generation: u64,
    pub version: Option<i64>,
}

/// What a database read found for an (entity, scope) the cache did not hold.
pub(super) struct Fill<'a> {
    pub key: &'a Key,
    pub snapshot: &'a EntitySnapshot,
    /// The body as stored.
    pub body: &'a str,
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
}

impl StateCache {
    /// A cache holding at most `capacity` (entity, scope) pairs; when full it starts over.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
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
    /// `needs` asks for. A body or fact that no longer parses is left to the database read.
    pub(super) fn lookup(&self, keys: &[Key], now_ms: i64, needs: FactNeeds<'_>) -> Lookup {
        let inner = self.lock();
        let hits = keys
            .iter()
            .filter_map(|key| {
                let entry = inner.entries.get(key)?;
                let body = inner.bodies.get(&key.0)?;
                let wanted = match needs {
                    FactNeeds::All => None,
                    FactNeeds::Only(needs) => Some(needs.get(key).map_or(&[][..], Vec::as_slice)),
                };
                Some((key.clone(), hit_of(&inner, entry, body, wanted, now_ms)?))
            })
            .collect();
        Lookup {
            hits,
            generation: inner.generation,
            version: inner.version,
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
        for fill in fills
            .iter()
            .filter(|f| f.snapshot.entity.is_some())
            .take(self.capacity)
        {
            let entry = entry_of(&mut inner.names, fill);
            inner.entries.insert(fill.key.clone(), entry);
            inner
                .bodies
                .insert(fill.key.0.clone(), fill.body.to_string().into_boxed_str());
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
                let data = fact.data.to_string().into_boxed_str();
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

/// The snapshot of one entry: `None` when its body or a wanted fact no longer parses.
fn hit_of(
    inner: &Inner,
    entry: &Entry,
    body: &str,
    wanted: Option<&[NeededFact]>,
    now_ms: i64,
) -> Option<EntitySnapshot> {
    let names = &inner.names;
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
        let fact_ref = names.name(*f);
        if needed(fact_ref, *t) {
            facts.push((fact_ref.to_string(), serde_json::from_str(data).ok()?, *t));
        }
    }
    Some(EntitySnapshot {
        entity: Some(serde_json::from_str(body).ok()?),
        facts,
        results: entry
            .results
            .iter()
            .map(|(c, s)| (names.name(*c).to_string(), *s))
            .collect(),
        certifications: entry
            .levels
            .iter()
            .map(|(t, l, s, c)| ((names.name(*t).to_string(), *l), (*s, *c)))
            .collect(),
        exempt: entry
            .exemptions
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_ms))
            .map(|(c, _)| names.name(*c).to_string())
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
            .map(|(f, t, data)| (names.id(f), *t, data.clone().into_boxed_str()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FactRecord, ResultChange, StoredResult};

    const REPO: &str = "github:default/repo";

    fn key(e: &str) -> Key {
        (e.to_string(), "default".to_string())
    }

    fn snapshot(state: CheckState) -> EntitySnapshot {
        EntitySnapshot {
            entity: Some(serde_json::json!({})),
            results: HashMap::from([("c1".to_string(), state)]),
            ..Default::default()
        }
    }

    fn stored_facts() -> Vec<(String, i64, String)> {
        vec![(REPO.into(), 5, r#"{"stars":1}"#.into())]
    }

    fn change(e: &str, state: CheckState) -> StateChanges {
        StateChanges {
            results: vec![ResultChange {
                result: StoredResult {
                    check_id: "c1".into(),
                    entity_ref: e.into(),
                    scope: "default".into(),
                    state,
                },
                previous: None,
                details: None,
                message: None,
                submitted_by: None,
            }],
            ..Default::default()
        }
    }

    /// A fill with an empty body and no exemptions.
    fn plain_fill<'a>(
        key: &'a Key,
        snapshot: &'a EntitySnapshot,
        facts: &'a [(String, i64, String)],
    ) -> Fill<'a> {
        Fill {
            key,
            snapshot,
            body: "{}",
            facts,
            exemptions: &[],
        }
    }

    fn get(cache: &StateCache, k: &Key, now_ms: i64) -> Option<EntitySnapshot> {
        cache
            .lookup(std::slice::from_ref(k), now_ms, FactNeeds::All)
            .hits
            .remove(k)
    }

    #[test]
    fn a_fill_at_the_known_version_is_served_and_follows_applied_changes() {
        let cache = StateCache::new(10);
        let k = key("component:default/a");
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::All);
        let (snap, facts) = (snapshot(CheckState::Failed), stored_facts());
        let fills = [Fill {
            key: &k,
            snapshot: &snap,
            body: r#"{"kind":"Component"}"#,
            facts: &facts,
            exemptions: &[("c1".into(), Some(100))],
        }];
        cache.fill(l.generation, 7, &fills);
        let hit = get(&cache, &k, 50).unwrap();
        assert_eq!(hit.results["c1"], CheckState::Failed);
        assert_eq!(hit.exempt, vec!["c1".to_string()]);
        assert_eq!(hit.entity, Some(serde_json::json!({"kind": "Component"})));
        assert_eq!(
            hit.facts,
            vec![(REPO.to_string(), serde_json::json!({"stars": 1}), 5)]
        );
        // Expired exemptions are not active.
        assert!(get(&cache, &k, 100).unwrap().exempt.is_empty());

        let mut changes = change("component:default/a", CheckState::Passed);
        changes.facts = [(4, 7), (6, 8), (6, 9)]
            .into_iter()
            .map(|(timestamp_ms, stars)| FactRecord {
                entity_ref: k.0.clone(),
                fact_ref: REPO.into(),
                scope: k.1.clone(),
                data: serde_json::json!({ "stars": stars }),
                timestamp_ms,
            })
            .collect();
        cache.applied(8, &changes);
        let hit = get(&cache, &k, 0).unwrap();
        assert_eq!(hit.results["c1"], CheckState::Passed);
        // Older than the stored copy: ignored; equal timestamps: the later wins.
        assert_eq!(
            hit.facts,
            vec![(REPO.to_string(), serde_json::json!({"stars": 9}), 6)]
        );
    }

    #[test]
    fn only_stored_facts_newer_than_the_submitted_copy_are_returned() {
        let cache = StateCache::new(10);
        let k = key("component:default/a");
        let (snap, facts) = (snapshot(CheckState::Failed), stored_facts());
        let fills = [plain_fill(&k, &snap, &facts)];
        cache.fill(0, 1, &fills);
        let wanted = |incoming_ms| {
            let needs = HashMap::from([(
                k.clone(),
                vec![NeededFact {
                    fact_ref: REPO.into(),
                    incoming_ms,
                }],
            )]);
            let mut l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::Only(&needs));
            l.hits.remove(&k).unwrap().facts.len()
        };
        assert_eq!(wanted(None), 1);
        assert_eq!(wanted(Some(4)), 1);
        assert_eq!(wanted(Some(5)), 0);
        let none = HashMap::new();
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::Only(&none));
        assert!(l.hits[&k].facts.is_empty());
    }

    #[test]
    fn a_write_by_someone_else_or_a_racing_fill_leaves_nothing_stale() {
        let cache = StateCache::new(10);
        let k = key("component:default/a");
        let (snap, facts) = (snapshot(CheckState::Failed), stored_facts());
        let fills = [plain_fill(&k, &snap, &facts)];
        cache.fill(0, 3, &fills);
        assert_eq!(cache.len(), 1);
        // Version 5 after our 4th write is not ours alone: drop everything.
        cache.applied(5, &StateChanges::default());
        assert!(cache.is_empty());
        // A read begun before a commit may not fill after it.
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::All);
        cache.applied(6, &change("component:default/a", CheckState::Passed));
        cache.fill(l.generation, 5, &fills);
        assert!(cache.is_empty());
        // A read at a version the entries do not reflect drops them.
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::All);
        cache.fill(l.generation, 6, &fills);
        assert_eq!(cache.len(), 1);
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::All);
        cache.fill(l.generation, 9, &fills);
        assert!(cache.is_empty());
        // Forgotten entities are not served.
        let l = cache.lookup(std::slice::from_ref(&k), 0, FactNeeds::All);
        cache.fill(l.generation, 9, &fills);
        cache.forget_entities(std::slice::from_ref(&k.0));
        assert!(get(&cache, &k, 0).is_none());
    }
}
