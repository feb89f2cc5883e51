//! Pipelined fact submissions (`state::pipeline`): many submissions in flight at once, each
//! evaluated while the previous one commits, must leave the history a one-at-a-time writer
//! would: every transition's previous state is the state the one before it set.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use soundcheck::events::{DeliverySettings, EventsService};
use soundcheck::state::live::LiveState;
use soundcheck::state::pipeline::Writer;
use soundcheck::store::{CatalogStore, FactRecord, QueryStore, StateStore};
use soundcheck_core::Engine;

use crate::backends;

const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
    - id: small
      rule: { factRef: 'github:default/repo', path: '$.size', operator: lessThan, value: 3 }
    - id: documented
      rule:
        all:
          - { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
          - { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
  tracks:
    - id: health
      levels:
        - { ordinal: 1, checks: [ { id: private } ] }
        - { ordinal: 2, checks: [ { id: small }, { id: documented } ] }
"#;

const ENTITIES: usize = 4;
const SUBMISSIONS: i64 = 150;

/// Submission `n`: one of two facts for each of a few entities (one entity alone every
/// fifth time), with values that flip the checks. `documented` reads both facts, so its
/// evaluation needs the other fact from a submission that may still be committing.
fn submission(n: i64) -> Vec<FactRecord> {
    (0..ENTITIES)
        .map(|e| i64::try_from(e).unwrap())
        .filter(|e| {
            if n % 5 == 0 {
                *e == n % 4
            } else {
                (n + e) % 3 != 0
            }
        })
        .map(|e| {
            let (fact_ref, data) = if (n + e) % 2 == 0 {
                (
                    "github:default/repo",
                    json!({"private": (n / 2) % 2 == 0, "size": n % 5}),
                )
            } else {
                ("scm:default/files", json!({"readme": (n / 3) % 2 == 0}))
            };
            FactRecord {
                entity_ref: format!("component:default/e{e}"),
                fact_ref: fact_ref.into(),
                scope: "default".into(),
                data,
                timestamp_ms: n,
            }
        })
        .collect()
}

/// Checks that each key's transitions chain (previous state = the state before) and returns
/// the last state of each key.
fn chained(events: &[Value], key: &[&str]) -> HashMap<String, String> {
    let mut last: HashMap<String, String> = HashMap::new();
    for e in events {
        let k: Vec<String> = key.iter().map(|f| e[*f].to_string()).collect();
        let k = k.join("|");
        let previous = e["previousState"].as_str().map(str::to_string);
        assert_eq!(previous, last.get(&k).cloned(), "{k}: {e}");
        last.insert(k, e["state"].as_str().unwrap().to_string());
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_leave_the_history_of_one_at_a_time() {
    let loaded =
        soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    let engine = Arc::new(Engine::new(&loaded.config));
    for b in backends::all().await {
        let store = b.store.clone().with_state_cache(100);
        let bodies: Vec<(String, Value)> = (0..ENTITIES)
            .map(|e| {
                (
                    format!("component:default/e{e}"),
                    json!({"kind": "Component", "metadata": {"name": format!("e{e}")}}),
                )
            })
            .collect();
        store.upsert_entities(&bodies, 1).await.unwrap();
        let events = EventsService::new(store.clone(), DeliverySettings::default());
        let writer = Arc::new(Writer::new());
        let live = Arc::new(
            LiveState::new(engine.clone(), store.clone(), Some(events.clone()))
                .with_writer(writer.clone()),
        );
        let tasks: Vec<_> = (0..SUBMISSIONS)
            .map(|n| {
                let live = Arc::clone(&live);
                tokio::spawn(async move { live.submit_facts(submission(n)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        drop(writer.lock().await);

        let stored = store.events_after(0, 100_000).await.unwrap();
        assert!(stored.len() > 100, "{}: {} events", b.name, stored.len());
        let payloads: Vec<(String, Value)> = stored
            .iter()
            .map(|e| {
                (
                    e.params.topic.clone(),
                    serde_json::from_str(&e.payload_json).unwrap(),
                )
            })
            .collect();
        let of = |topic: &str| -> Vec<Value> {
            payloads
                .iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, p)| p.clone())
                .collect()
        };
        let checks = chained(
            &of("soundcheck-check-status-change"),
            &["checkId", "entityRef"],
        );
        chained(
            &of("soundcheck-certification-change"),
            &["trackId", "levelOrdinal", "entityRef"],
        );
        // The last transition of each result is its stored state.
        for e in 0..ENTITIES {
            let entity = format!("component:default/e{e}");
            for r in store.result_rows(&entity, None, &[]).await.unwrap() {
                let key = format!("\"{}\"|\"{}\"", r.check_id, entity);
                assert_eq!(
                    checks.get(&key).map(String::as_str),
                    Some(r.state.as_str()),
                    "{}: {key}",
                    b.name
                );
            }
        }
        // And it is what evaluating the stored facts afresh gives.
        let fresh = live.certify_world("default").await.unwrap();
        assert_eq!(
            (fresh.result_changes, fresh.certification_changes),
            (0, 0),
            "{}",
            b.name
        );
        events.shutdown().await;
    }
}
