//! Unit tests of the state cache: fills, lookups, applied changes and races.

use super::*;
use crate::store::{
    CertificationChange, FactRecord, ResultChange, StoredCertification, StoredResult,
};

const REPO: &str = "github:default/repo";

fn key(e: &str) -> Key {
    (e.to_string(), "default".to_string())
}

fn snapshot(state: CheckState) -> EntitySnapshot {
    EntitySnapshot {
        entity: Some(Arc::new(serde_json::json!({}))),
        results: [(Arc::from("c1"), state)].into_iter().collect(),
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

/// A fill with no exemptions.
fn plain_fill<'a>(
    key: &'a Key,
    snapshot: &'a EntitySnapshot,
    facts: &'a [(String, i64, String)],
) -> Fill<'a> {
    Fill {
        key,
        snapshot,
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
    let (mut snap, facts) = (snapshot(CheckState::Failed), stored_facts());
    snap.entity = Some(Arc::new(serde_json::json!({"kind": "Component"})));
    let fills = [Fill {
        key: &k,
        snapshot: &snap,
        facts: &facts,
        exemptions: &[("c1".into(), Some(100))],
    }];
    cache.fill(l.generation, 7, &fills);
    let hit = get(&cache, &k, 50).unwrap();
    assert_eq!(hit.results["c1"], CheckState::Failed);
    assert_eq!(hit.exempt, vec!["c1".to_string()]);
    // The body read from the database is shared, not copied.
    assert!(Arc::ptr_eq(
        hit.entity.as_ref().unwrap(),
        snap.entity.as_ref().unwrap()
    ));
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

#[test]
fn levels_are_served_by_track_name_and_follow_applied_changes() {
    let cache = StateCache::new(10);
    let k = key("component:default/a");
    let mut snap = snapshot(CheckState::Passed);
    snap.certifications = [((Arc::from("t"), 1), (CertState::Failed, CertState::Failed))]
        .into_iter()
        .collect();
    let facts = stored_facts();
    cache.fill(0, 3, &[plain_fill(&k, &snap, &facts)]);
    // Looked up with a name of its own (another allocation, same text), as evaluation does.
    let level = (Arc::<str>::from(String::from("t")), 1);
    let hit = get(&cache, &k, 0).unwrap();
    assert_eq!(
        hit.certifications.get(&level),
        Some(&(CertState::Failed, CertState::Failed))
    );
    let passed = StateChanges {
        certifications: vec![CertificationChange {
            certification: StoredCertification {
                track_id: "t".into(),
                entity_ref: k.0.clone(),
                level_ordinal: 1,
                scope: k.1.clone(),
                state: CertState::Passed,
                cumulative_state: CertState::Passed,
            },
            previous_state: Some(CertState::Failed),
            previous_cumulative: Some(CertState::Failed),
        }],
        ..Default::default()
    };
    cache.applied(4, &passed);
    let hit = get(&cache, &k, 0).unwrap();
    assert_eq!(
        hit.certifications.get(&level),
        Some(&(CertState::Passed, CertState::Passed))
    );
    assert_eq!(hit.certifications.get(&(Arc::from("t"), 2)), None);
}

#[tokio::test]
async fn a_read_waits_for_the_commit_of_this_process_bringing_its_version() {
    let cache = StateCache::new(10);
    let k = key("component:default/a");
    let (snap, facts) = (snapshot(CheckState::Failed), stored_facts());
    cache.fill(0, 3, &[plain_fill(&k, &snap, &facts)]);
    // Nobody here brings version 4: someone else wrote.
    assert!(!cache.caught_up(4).await);
    assert!(cache.caught_up(3).await);
    let committing = cache.committing(4);
    let follow = async {
        tokio::task::yield_now().await;
        cache.applied(4, &change("component:default/a", CheckState::Passed));
        drop(committing);
    };
    let (caught_up, ()) = tokio::join!(cache.caught_up(4), follow);
    assert!(caught_up);
    assert_eq!(
        get(&cache, &k, 0).unwrap().results["c1"],
        CheckState::Passed
    );
    // A commit that ends without being followed (it failed): not caught up.
    let failed = cache.committing(5);
    let (caught_up, ()) = tokio::join!(cache.caught_up(5), async { drop(failed) });
    assert!(!caught_up);
}
