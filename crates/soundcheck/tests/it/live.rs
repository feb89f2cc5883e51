//! Incremental evaluation as facts arrive, on SQLite and (when configured) PostgreSQL: only
//! the affected checks and tracks are re-evaluated, unchanged states emit nothing, exemptions
//! count as passing, and the catalog side (history retention, daily aggregates) works.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use soundcheck::events::{DeliverySettings, EventsService};
use soundcheck::state::live::LiveState;
use soundcheck::store::{CatalogStore, ExemptionRecord, FactRecord, Retention, StateStore};
use soundcheck_core::Engine;

use crate::backends;

const CONFIG: &str = r#"
soundcheck:
  checks:
    - id: private
      rule: { factRef: 'github:default/repo', path: '$.private', operator: equal, value: true }
    - id: readme
      rule: { factRef: 'scm:default/files', path: '$.readme', operator: equal, value: true }
  tracks:
    - id: health
      levels:
        - { ordinal: 1, checks: [ { id: private } ] }
        - { ordinal: 2, checks: [ { id: readme } ] }
"#;

fn fact(fact_ref: &str, data: Value, ts: i64) -> FactRecord {
    FactRecord {
        entity_ref: "component:default/a".into(),
        fact_ref: fact_ref.into(),
        scope: "default".into(),
        data,
        timestamp_ms: ts,
    }
}

async fn events_since(store: &soundcheck::store::SqlStore, after: i64) -> Vec<String> {
    store
        .events_after(after, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.payload_json.clone())
        .collect()
}

#[tokio::test]
async fn facts_re_evaluate_only_what_they_affect() {
    let loaded =
        soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    let engine = Arc::new(Engine::new(&loaded.config));
    for b in backends::all().await {
        let store = b.store.clone();
        let events = EventsService::new(store.clone(), DeliverySettings::default());
        let live = LiveState::new(engine.clone(), store.clone(), Some(events.clone()));
        store
            .upsert_entities(
                &[(
                    "component:default/a".into(),
                    json!({"kind": "Component", "metadata": {"name": "a"}}),
                )],
                1,
            )
            .await
            .unwrap();

        let out = live
            .submit_facts(vec![fact(
                "github:default/repo",
                json!({"private": true}),
                10,
            )])
            .await
            .unwrap();
        assert_eq!(
            (out.result_changes, out.certification_changes, out.events),
            (1, 2, 3),
            "{}: {out:?}",
            b.name
        );
        let got = events_since(&store, 0).await;
        assert!(
            got[0].contains(
                r#""checkId":"private","entityRef":"component:default/a","state":"passed""#
            ),
            "{}: {got:?}",
            b.name
        );
        assert!(
            got[2].contains(r#""levelOrdinal":2"#) && got[2].contains(r#""state":"failed""#),
            "{}: readme not reported fails level 2: {got:?}",
            b.name
        );

        let out = live
            .submit_facts(vec![fact(
                "github:default/repo",
                json!({"private": true}),
                11,
            )])
            .await
            .unwrap();
        assert_eq!(
            (out.result_changes, out.events),
            (0, 0),
            "{}: same state emits nothing",
            b.name
        );

        let out = live
            .submit_facts(vec![fact(
                "github:default/repo",
                json!({"private": false}),
                5,
            )])
            .await
            .unwrap();
        assert_eq!(
            out.events, 0,
            "{}: an older fact does not replace a newer one",
            b.name
        );
        let key = ("component:default/a".to_string(), "default".to_string());
        let stored = store
            .snapshots(
                std::slice::from_ref(&key),
                0,
                soundcheck::store::FactNeeds::All,
            )
            .await
            .unwrap();
        let repo = stored[&key]
            .facts
            .iter()
            .find(|f| f.0 == "github:default/repo")
            .cloned();
        assert_eq!(
            repo,
            Some(("github:default/repo".into(), json!({"private": true}), 11)),
            "{}: the stored copy stays",
            b.name
        );

        let last = store.last_seq().await.unwrap();
        let out = live
            .submit_facts(vec![fact("scm:default/files", json!({"readme": true}), 12)])
            .await
            .unwrap();
        assert_eq!(
            (out.result_changes, out.certification_changes),
            (1, 1),
            "{}: {out:?}",
            b.name
        );
        let got = events_since(&store, last).await;
        assert_eq!(got.len(), 2, "{}: {got:?}", b.name);
        assert!(
            got[1].contains(r#""state":"passed","cumulativeState":"passed","levelOrdinal":2"#)
                && got[1].contains(r#""previousState":"failed""#),
            "{}: {got:?}",
            b.name
        );

        // an exemption lets a failing check pass certification
        store
            .create_exemption(&ExemptionRecord {
                check_id: "private".into(),
                entity_ref: "component:default/a".into(),
                justification: "legacy repository".into(),
                created_by: "user:default/platform-admin".into(),
                created_at: 13,
                expires_at: None,
                revoked: false,
            })
            .await
            .unwrap();
        let out = live
            .submit_facts(vec![fact(
                "github:default/repo",
                json!({"private": false}),
                20,
            )])
            .await
            .unwrap();
        assert_eq!(
            (out.result_changes, out.certification_changes),
            (1, 0),
            "{}: exempt keeps level 1: {out:?}",
            b.name
        );
        assert_eq!(
            store
                .revoke_exemption(
                    "private",
                    "component:default/a",
                    "user:default/platform-admin",
                    Some("fixed"),
                    21
                )
                .await
                .unwrap(),
            1
        );

        // facts for entities outside the catalog are stored but not evaluated
        let mut stranger = fact("github:default/repo", json!({"private": true}), 1);
        stranger.entity_ref = "component:default/unknown".into();
        assert_eq!(
            live.submit_facts(vec![stranger])
                .await
                .unwrap()
                .unknown_entities,
            1
        );

        // history retention and the removal of facts of gone entities
        let removed = store
            .prune_facts(
                Retention {
                    max_age_ms: None,
                    max_per_fact: Some(1),
                },
                100,
            )
            .await
            .unwrap();
        assert_eq!(
            removed,
            3 + 2,
            "{}: 3 older github history rows, then the unknown entity's fact and its history",
            b.name
        );

        // daily aggregates
        store.snapshot_daily("2026-11-27", 1).await.unwrap();
        let history = store.check_history("private", 30).await.unwrap();
        assert_eq!(
            history,
            vec![("2026-11-27".to_string(), [0, 1, 0, 0, 0, 0, 0], 1)],
            "{}",
            b.name
        );
        events.shutdown().await;
    }
}

/// (check id, last checked, last changed) of an entity's results, as the API reports them.
async fn times(
    store: &soundcheck::store::SqlStore,
    engine: &Engine,
    entity: &str,
) -> Vec<(String, i64, i64)> {
    soundcheck::state::checked::result_rows(store, engine, entity, None, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.check_id, r.last_checked, r.last_changed))
        .collect()
}

#[tokio::test]
async fn unchanged_results_move_only_the_last_checked_time_of_what_was_re_evaluated() {
    let loaded =
        soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    let engine = Arc::new(Engine::new(&loaded.config));
    let (a, b) = ("component:default/a", "component:default/b");
    let both = |fact_ref: &str, data: Value| {
        [a, b].map(|e| FactRecord {
            entity_ref: e.into(),
            ..fact(fact_ref, data.clone(), 10)
        })
    };
    for backend in backends::all().await {
        let store = backend.store.clone();
        let live = LiveState::new(engine.clone(), store.clone(), None);
        let body = json!({"kind": "Component", "metadata": {"name": "x"}});
        store
            .upsert_entities(&[(a.into(), body.clone()), (b.into(), body)], 1)
            .await
            .unwrap();
        let mut facts = both("github:default/repo", json!({"private": true})).to_vec();
        facts.extend(both("scm:default/files", json!({"readme": true})));
        live.submit_facts(facts).await.unwrap();
        let (a0, b0) = (
            times(&store, &engine, a).await,
            times(&store, &engine, b).await,
        );
        assert_eq!(a0.len(), 2, "{}", backend.name);

        // One entity, one fact, same value: only that check's last-checked time moves.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let out = live
            .submit_facts(vec![fact(
                "github:default/repo",
                json!({"private": true}),
                11,
            )])
            .await
            .unwrap();
        assert_eq!((out.result_changes, out.events), (0, 0), "{}", backend.name);
        let a1 = times(&store, &engine, a).await;
        let private = |t: &[(String, i64, i64)]| t.iter().find(|r| r.0 == "private").cloned();
        let readme = |t: &[(String, i64, i64)]| t.iter().find(|r| r.0 == "readme").cloned();
        let (p0, p1) = (private(&a0).unwrap(), private(&a1).unwrap());
        assert!(p1.1 > p0.1, "{}: last checked moved", backend.name);
        assert_eq!(p1.2, p0.2, "{}: last changed kept", backend.name);
        assert_eq!(readme(&a1), readme(&a0), "{}", backend.name);
        assert_eq!(times(&store, &engine, b).await, b0, "{}", backend.name);
        // The stored row is not rewritten: the time comes from the fact's arrival.
        let stored = soundcheck::store::QueryStore::result_rows(&store, a, None, &[])
            .await
            .unwrap();
        let stored_private = stored.iter().find(|r| r.check_id == "private").unwrap();
        assert_eq!(stored_private.last_checked, p0.1, "{}", backend.name);

        // Both entities in one submission: both `private` rows move, nothing else. For `a`
        // this copy (timestamp 10) is older than the stored one (11): it is not stored as
        // the latest, but the check did run on its arrival.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        live.submit_facts(both("github:default/repo", json!({"private": true})).to_vec())
            .await
            .unwrap();
        let (a2, b2) = (
            times(&store, &engine, a).await,
            times(&store, &engine, b).await,
        );
        assert!(private(&a2).unwrap().1 > p1.1, "{}", backend.name);
        assert!(
            private(&b2).unwrap().1 > private(&b0).unwrap().1,
            "{}",
            backend.name
        );
        assert_eq!(readme(&a2), readme(&a0), "{}", backend.name);
        assert_eq!(readme(&b2), readme(&b0), "{}", backend.name);

        // A fact in another scope dates only that scope's results.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        live.submit_facts(vec![FactRecord {
            scope: "other".into(),
            ..fact("github:default/repo", json!({"private": true}), 20)
        }])
        .await
        .unwrap();
        let in_default: Vec<(String, i64, i64)> =
            soundcheck::state::checked::result_rows(&store, &engine, a, Some("default"), &[])
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.check_id, r.last_checked, r.last_changed))
                .collect();
        assert_eq!(in_default, a2, "{}", backend.name);
        assert_eq!(times(&store, &engine, a).await.len(), 3, "{}", backend.name);
    }
}

/// Several copies of one fact in one submission: the newest is kept (the later of equal
/// timestamps), whatever their order, and every copy goes to the history.
#[tokio::test]
async fn copies_of_one_fact_in_a_submission_keep_the_newest() {
    let loaded =
        soundcheck_core::config::load_str("c.yaml", CONFIG, Path::new("."), &|_| None).unwrap();
    let engine = Arc::new(Engine::new(&loaded.config));
    for b in backends::all().await {
        let store = b.store.clone();
        let live = LiveState::new(engine.clone(), store.clone(), None);
        store
            .upsert_entities(
                &[("component:default/a".into(), json!({"kind": "Component"}))],
                1,
            )
            .await
            .unwrap();
        let repo = |n: i64, ts: i64| fact("github:default/repo", json!({"n": n}), ts);
        live.submit_facts(vec![repo(1, 5), repo(2, 7), repo(3, 7), repo(4, 6)])
            .await
            .unwrap();
        // Older than the stored copy: kept in the history only.
        live.submit_facts(vec![repo(5, 6)]).await.unwrap();
        let key = ("component:default/a".to_string(), "default".to_string());
        let snapshots = store
            .snapshots(
                std::slice::from_ref(&key),
                0,
                soundcheck::store::FactNeeds::All,
            )
            .await
            .unwrap();
        let facts = &snapshots[&key].facts;
        assert_eq!(
            facts,
            &vec![("github:default/repo".to_string(), json!({"n": 3}), 7)],
            "{}",
            b.name
        );
        let one_kept = Retention {
            max_age_ms: None,
            max_per_fact: Some(1),
        };
        let removed = store.prune_facts(one_kept, 0).await.unwrap();
        assert_eq!(removed, 4, "{}: every copy was in the history", b.name);
    }
}
