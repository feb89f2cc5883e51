//! The SQLite state cache (`soundcheck.server.stateCacheEntities`): a store with it and one
//! without, fed the same stream of fact batches, exemptions and deletions, store the same
//! states and transitions; a write by another process on the same file (an evaluation, an
//! exemption) is never hidden by what the cache holds.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use soundcheck::state::live::LiveState;
use soundcheck::store::{CatalogStore, ExemptionRecord, FactRecord, QueryStore, SqlStore};
use soundcheck_core::Engine;

const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
    - id: readme
      rule: { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
    - id: both
      rule:
        all:
          - { factRef: 'github:default/repo', path: '$.archived', operator: equal, value: false }
          - { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
  tracks:
    - id: health
      levels:
        - { ordinal: 1, checks: [ { id: private } ] }
        - { ordinal: 2, checks: [ { id: readme }, { id: both } ] }
"#;

const ENTITIES: usize = 6;

fn engine() -> Arc<Engine> {
    let loaded =
        soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    Arc::new(Engine::new(&loaded.config))
}

fn entity(i: usize) -> String {
    format!("component:default/e{i}")
}

async fn open(dir: &Path, cache: usize) -> SqlStore {
    let url = format!("sqlite://{}", dir.join("state.db").display());
    let store = SqlStore::open(&url).await.unwrap().with_state_cache(cache);
    let bodies: Vec<(String, serde_json::Value)> = (0..ENTITIES)
        .map(|i| {
            (
                entity(i),
                json!({"kind": "Component", "metadata": {"name": format!("e{i}")}}),
            )
        })
        .collect();
    store.upsert_entities(&bodies, 1).await.unwrap();
    store
}

/// A deterministic stream: step `n` sends a few facts about a few entities, some older than
/// what is stored.
fn batch(n: u64) -> Vec<FactRecord> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..1 + next() % 5)
        .map(|_| {
            let e = usize::try_from(next() % ENTITIES as u64).unwrap();
            let (fact_ref, data) = if next() % 2 == 0 {
                let v = next();
                (
                    "github:default/repo",
                    json!({"private": v % 2 == 0, "archived": v % 3 == 0}),
                )
            } else {
                ("scm:default/files", json!({"readme": next() % 2 == 0}))
            };
            FactRecord {
                entity_ref: entity(e),
                fact_ref: fact_ref.into(),
                scope: "default".into(),
                data,
                // Mostly newer, sometimes older than earlier steps.
                timestamp_ms: i64::try_from(n * 10).unwrap() - i64::try_from(next() % 25).unwrap(),
            }
        })
        .collect()
}

/// A permanent exemption created by a test user.
fn exemption(check_id: &str, entity_ref: String) -> ExemptionRecord {
    ExemptionRecord {
        check_id: check_id.into(),
        entity_ref,
        justification: "test".into(),
        created_by: "user:default/test".into(),
        created_at: 1,
        expires_at: None,
        revoked: false,
    }
}

/// Every stored state and transition, without times.
async fn stored(store: &SqlStore) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..ENTITIES {
        for r in store.result_rows(&entity(i), None, &[]).await.unwrap() {
            out.push(format!("{} {} {:?}", r.entity_ref, r.check_id, r.state));
        }
        for l in store.level_rows(&entity(i)).await.unwrap() {
            out.push(format!(
                "{} {} {} {:?} {:?}",
                l.entity_ref, l.track_id, l.level_ordinal, l.state, l.cumulative_state
            ));
        }
    }
    for check in ["private", "readme", "both"] {
        for (e, state, _) in store.check_transitions(check, "default").await.unwrap() {
            out.push(format!("transition {check} {e} {state:?}"));
        }
    }
    for t in store.level_transitions("health", "default").await.unwrap() {
        out.push(format!(
            "transition health {} {} {:?} {:?}",
            t.entity_ref, t.level_ordinal, t.state, t.cumulative_state
        ));
    }
    out
}

#[tokio::test]
async fn a_cached_store_writes_what_an_uncached_one_writes() {
    let engine = engine();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Room for fewer pairs than there are entities: the cache also starts over while in use.
    let cached = open(dir_a.path(), 4).await;
    let plain = open(dir_b.path(), 0).await;
    assert!(cached.state_cache().is_some() && plain.state_cache().is_none());
    let lives = [&cached, &plain].map(|s| LiveState::new(engine.clone(), s.clone(), None));
    for n in 1..=120u64 {
        for (store, live) in [&cached, &plain].into_iter().zip(&lives) {
            live.submit_facts(batch(n)).await.unwrap();
            // Writes the cache does not follow, between batches.
            let target = entity(usize::try_from(n).unwrap() % ENTITIES);
            match n % 20 {
                5 => store
                    .create_exemption(&exemption("readme", target))
                    .await
                    .unwrap(),
                11 => {
                    store
                        .revoke_exemption("readme", &target, "user:default/test", None, 2)
                        .await
                        .unwrap();
                }
                17 => {
                    store.delete_results(&target, None, &[]).await.unwrap();
                }
                _ => {}
            }
        }
    }
    let (a, b) = (stored(&cached).await, stored(&plain).await);
    assert!(a.iter().filter(|l| l.starts_with("transition")).count() > 50);
    assert_eq!(a, b);
    assert!(cached.state_cache().is_some_and(|c| c.len() <= 4));
}

#[tokio::test]
async fn a_write_by_another_process_is_not_hidden_by_the_cache() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let server = open(dir.path(), 100).await;
    let other = open(dir.path(), 0).await;
    let (live, other_live) = (
        LiveState::new(engine.clone(), server.clone(), None),
        LiveState::new(engine.clone(), other.clone(), None),
    );
    let repo = |e: usize, private: bool, ts: i64| FactRecord {
        entity_ref: entity(e),
        fact_ref: "github:default/repo".into(),
        scope: "default".into(),
        data: json!({"private": private, "archived": false}),
        timestamp_ms: ts,
    };
    // Two batches: the first fills the cache, the second is served from it.
    live.submit_facts(vec![repo(0, false, 1), repo(1, false, 1)])
        .await
        .unwrap();
    live.submit_facts(vec![repo(0, false, 2), repo(1, false, 2)])
        .await
        .unwrap();
    assert_eq!(server.state_cache().map(|c| c.len()), Some(2));
    // Another process passes `private` for entity 0.
    other_live
        .submit_facts(vec![repo(0, true, 3)])
        .await
        .unwrap();
    // The server fails it again: the transition must start from what the other wrote.
    let out = live
        .submit_facts(vec![repo(0, false, 4), repo(1, false, 4)])
        .await
        .unwrap();
    assert_eq!(out.result_changes, 1);
    let transitions = server
        .check_transitions("private", "default")
        .await
        .unwrap();
    let states: Vec<String> = transitions
        .iter()
        .filter(|(e, _, _)| *e == entity(0))
        .map(|(_, s, _)| format!("{s:?}"))
        .collect();
    assert_eq!(states, ["Failed", "Passed", "Failed"]);

    // Another process exempts entity 1 from `private`, a write that evaluates nothing.
    other
        .create_exemption(&exemption("private", entity(1)))
        .await
        .unwrap();
    // The server's next batch re-certifies entity 1 (its readme passes): with the exemption,
    // level 1 passes although `private` fails.
    let readme = FactRecord {
        entity_ref: entity(1),
        fact_ref: "scm:default/files".into(),
        scope: "default".into(),
        data: json!({"readme": true}),
        timestamp_ms: 5,
    };
    live.submit_facts(vec![repo(0, false, 5), readme])
        .await
        .unwrap();
    let levels = server.level_rows(&entity(1)).await.unwrap();
    let level1 = levels.iter().find(|l| l.level_ordinal == 1).unwrap();
    assert_eq!(format!("{:?}", level1.state), "Passed");
}
