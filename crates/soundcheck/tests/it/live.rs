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
