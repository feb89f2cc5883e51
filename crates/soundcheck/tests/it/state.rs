//! The state store's behaviour, on SQLite and (when configured) PostgreSQL: first states,
//! changes, no-change, events disabled, and the exact payloads of both topics.

use soundcheck::store::{
    CertificationChange, QueryStore, ResultChange, StateChanges, StateStore, StoredCertification,
    StoredResult, Touch,
};
use soundcheck_core::model::{CertState, CheckState};

use crate::backends;

fn result(check: &str, state: CheckState, previous: Option<CheckState>) -> ResultChange {
    ResultChange {
        result: StoredResult {
            check_id: check.into(),
            entity_ref: "component:default/a".into(),
            scope: "default".into(),
            state,
        },
        previous,
        details: None,
        message: None,
        submitted_by: None,
    }
}

fn cert(
    state: CertState,
    cumulative: CertState,
    previous: Option<(CertState, CertState)>,
) -> CertificationChange {
    CertificationChange {
        certification: StoredCertification {
            track_id: "t".into(),
            entity_ref: "component:default/a".into(),
            level_ordinal: 2,
            scope: "default".into(),
            state,
            cumulative_state: cumulative,
        },
        previous_state: previous.map(|p| p.0),
        previous_cumulative: previous.map(|p| p.1),
    }
}

fn touch() -> Vec<Touch> {
    vec![Touch {
        entity_ref: "component:default/a".into(),
        scope: "default".into(),
    }]
}

#[tokio::test]
async fn changes_store_transitions_and_exact_events() {
    for b in backends::all().await {
        let store = &b.store;
        let first = StateChanges {
            now_ms: 1_700_000_000_123,
            results: vec![
                result("c1", CheckState::NotApplicable, None),
                result("c2", CheckState::Warning, None),
            ],
            certifications: vec![cert(CertState::Passed, CertState::Passed, None)],
            touched_results: touch(),
            touched_certifications: touch(),
            touched_checks: Vec::new(),
            ..Default::default()
        };
        let applied = store.apply(&first, true).await.unwrap();
        assert_eq!(applied.events(), 3, "{}", b.name);
        let events = store.events_after(applied.first_seq - 1, 10).await.unwrap();
        let payloads: Vec<&str> = events.iter().map(|e| e.payload_json.as_str()).collect();
        assert_eq!(
            payloads,
            [
                r#"{"checkId":"c1","entityRef":"component:default/a","state":"not-applicable","timestampMs":1700000000123,"scope":"default"}"#,
                r#"{"checkId":"c2","entityRef":"component:default/a","state":"warning","timestampMs":1700000000123,"scope":"default"}"#,
                r#"{"trackId":"t","entityRef":"component:default/a","state":"passed","cumulativeState":"passed","levelOrdinal":2,"timestampMs":1700000000123,"scope":"default"}"#,
            ],
            "{}",
            b.name
        );
        for e in &events {
            let metadata = e.params.metadata.as_ref().unwrap();
            assert_eq!(
                metadata.len(),
                1,
                "{}: only eventId on a first state",
                b.name
            );
            assert_eq!(e.params.event_id().unwrap().len(), 36);
        }
        assert!(
            events[0]
                .params
                .event_payload
                .get("previousState")
                .is_none(),
            "omitted, not null"
        );

        // a change, and a level whose cumulative state alone changes
        let second = StateChanges {
            now_ms: 1_700_000_000_999,
            results: vec![result("c2", CheckState::Passed, Some(CheckState::Warning))],
            certifications: vec![cert(
                CertState::Passed,
                CertState::Failed,
                Some((CertState::Passed, CertState::Passed)),
            )],
            touched_results: touch(),
            touched_certifications: touch(),
            touched_checks: Vec::new(),
            ..Default::default()
        };
        let applied = store.apply(&second, true).await.unwrap();
        let events = store.events_after(applied.first_seq - 1, 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.envelope_json()).collect::<Vec<_>>(),
            [
                format!(
                    r#"{{"topic":"soundcheck-check-status-change","eventPayload":{{"checkId":"c2","entityRef":"component:default/a","state":"passed","previousState":"warning","timestampMs":1700000000999,"scope":"default"}},"metadata":{{"eventId":"{}"}}}}"#,
                    events[0].params.event_id().unwrap()
                ),
                format!(
                    r#"{{"topic":"soundcheck-certification-change","eventPayload":{{"trackId":"t","entityRef":"component:default/a","state":"passed","cumulativeState":"failed","levelOrdinal":2,"timestampMs":1700000000999,"previousState":"passed","scope":"default"}},"metadata":{{"eventId":"{}","previousCumulativeState":"passed"}}}}"#,
                    events[1].params.event_id().unwrap()
                ),
            ],
            "{}",
            b.name
        );
        let stored = store
            .results_of(&["component:default/a".into()])
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(
            stored
                .iter()
                .any(|r| r.check_id == "c2" && r.state == CheckState::Passed),
            "{}",
            b.name
        );
        let certs = store
            .certifications_of(&["component:default/a".into()])
            .await
            .unwrap();
        assert_eq!(
            (certs[0].state, certs[0].cumulative_state),
            (CertState::Passed, CertState::Failed)
        );

        // events disabled: transitions stored, nothing queued
        let quiet = StateChanges {
            now_ms: 1_700_000_001_000,
            results: vec![result(
                "c1",
                CheckState::Failed,
                Some(CheckState::NotApplicable),
            )],
            ..Default::default()
        };
        let applied = store.apply(&quiet, false).await.unwrap();
        assert_eq!(applied.events(), 0, "{}", b.name);
        let audit = store.audit_outbox().await.unwrap();
        assert_eq!(
            (
                audit.transitions_without_event,
                audit.events_without_transition
            ),
            (0, 0),
            "{}: {audit:?}",
            b.name
        );
        assert_eq!(
            (audit.transitions, audit.events),
            (6, 5),
            "{}: {audit:?}",
            b.name
        );
        assert_eq!(store.last_seq().await.unwrap(), 5);
    }
}

#[tokio::test]
async fn an_unknown_database_url_is_a_clear_error() {
    let err = soundcheck::store::SqlStore::open("mysql://x")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported database URL `mysql://x`: expected sqlite://PATH or postgres://..."
    );
}

/// SQLite stores an entity's results by their checks' clusters (PostgreSQL ignores them): a
/// check that changes cluster takes its stored results along, and they stay one per check,
/// with the same reads and events before and after.
#[tokio::test]
async fn results_move_with_their_checks_cluster() {
    for b in backends::all().await {
        let store = &b.store;
        let sqlite = b.name == "sqlite";
        let clusters = |c1: i64, c2: i64| vec![("c1".to_string(), c1), ("c2".to_string(), c2)];
        assert_eq!(store.set_check_clusters(&clusters(7, 9)).await.unwrap(), 0);
        let first = StateChanges {
            now_ms: 1_700_000_000_000,
            results: vec![
                result("c1", CheckState::Passed, None),
                result("c2", CheckState::Failed, None),
                result("c3", CheckState::Warning, None),
            ],
            ..Default::default()
        };
        store.apply(&first, true).await.unwrap();
        // c2 joins c1's cluster and c3 (never named) stays in cluster 0.
        let moved = store.set_check_clusters(&clusters(7, 7)).await.unwrap();
        assert_eq!(moved, u64::from(sqlite), "{}", b.name);
        assert_eq!(
            store.set_check_clusters(&clusters(7, 7)).await.unwrap(),
            0,
            "{}: unchanged",
            b.name
        );
        let second = StateChanges {
            now_ms: 1_700_000_000_500,
            results: vec![result("c2", CheckState::Passed, Some(CheckState::Failed))],
            ..Default::default()
        };
        let applied = store.apply(&second, true).await.unwrap();
        assert_eq!(applied.events(), 1, "{}", b.name);
        // A check left out keeps its cluster; c1 alone moves.
        assert_eq!(
            store
                .set_check_clusters(&[("c1".to_string(), 8)])
                .await
                .unwrap(),
            u64::from(sqlite),
            "{}",
            b.name
        );
        let third = StateChanges {
            now_ms: 1_700_000_001_000,
            results: vec![result("c1", CheckState::Failed, Some(CheckState::Passed))],
            ..Default::default()
        };
        assert_eq!(
            store.apply(&third, true).await.unwrap().events(),
            1,
            "{}",
            b.name
        );
        let rows = store
            .result_rows("component:default/a", None, &[])
            .await
            .unwrap();
        let mut states: Vec<(String, CheckState)> =
            rows.into_iter().map(|r| (r.check_id, r.state)).collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            states,
            [
                ("c1".to_string(), CheckState::Failed),
                ("c2".to_string(), CheckState::Passed),
                ("c3".to_string(), CheckState::Warning),
            ],
            "{}",
            b.name
        );
    }
}
