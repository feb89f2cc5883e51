//! Write-behind of results and levels on SQLite (`soundcheck.server.stateWriteBehindSeconds`):
//! held changes are read back at once, reach their tables when settled or written through
//! by another write, and are rolled forward from their transitions after a crash, with no
//! event lost or repeated.

use soundcheck::store::{
    CatalogStore, CertificationChange, QueryStore, ResultChange, StateChanges, StateStore,
    StoredCertification, StoredResult, Submission,
};
use soundcheck_core::model::{CertState, CheckState};
use sqlx::Row;

const ENTITY: &str = "component:default/a";

fn result(check: &str, state: CheckState, previous: Option<CheckState>) -> ResultChange {
    ResultChange {
        result: StoredResult {
            check_id: check.into(),
            entity_ref: ENTITY.into(),
            scope: "default".into(),
            state,
        },
        previous,
        details: None,
        message: None,
        submitted_by: None,
    }
}

fn level(state: CertState, previous: Option<CertState>) -> CertificationChange {
    CertificationChange {
        certification: StoredCertification {
            track_id: "t".into(),
            entity_ref: ENTITY.into(),
            level_ordinal: 1,
            scope: "default".into(),
            state,
            cumulative_state: state,
        },
        previous_state: previous,
        previous_cumulative: previous,
    }
}

fn evaluation(
    now_ms: i64,
    results: Vec<ResultChange>,
    levels: Vec<CertificationChange>,
) -> StateChanges {
    StateChanges {
        now_ms,
        results,
        certifications: levels,
        ..Default::default()
    }
}

/// What the tables themselves hold, read on a connection of its own (not through a store,
/// which would roll forward on open): (check, state, last changed) and (level state).
async fn tables(url: &str) -> (Vec<(String, String, i64)>, Vec<String>) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let results =
        sqlx::query("SELECT check_id, state, last_changed FROM check_results ORDER BY check_id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    let levels = sqlx::query("SELECT state FROM certifications")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    pool.close().await;
    (results, levels)
}

async fn open(url: &str) -> soundcheck::store::SqlStore {
    soundcheck::store::SqlStore::open(url)
        .await
        .unwrap()
        .with_write_behind(3600)
}

#[tokio::test]
async fn held_changes_are_read_at_once_and_rolled_forward_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wb.db").display());
    let store = open(&url).await;
    let first = evaluation(
        1_000,
        vec![
            result("c1", CheckState::Passed, None),
            result("c2", CheckState::Failed, None),
        ],
        vec![level(CertState::Failed, None)],
    );
    assert_eq!(store.apply(&first, true).await.unwrap().events(), 3);
    let second = evaluation(
        2_000,
        vec![result("c2", CheckState::Passed, Some(CheckState::Failed))],
        vec![level(CertState::Passed, Some(CertState::Failed))],
    );
    assert_eq!(store.apply(&second, true).await.unwrap().events(), 2);
    // Nothing in the tables yet, everything in every read of one entity.
    assert_eq!(tables(&url).await, (vec![], vec![]));
    let rows = store.result_rows(ENTITY, None, &[]).await.unwrap();
    let states: Vec<(&str, CheckState, i64)> = rows
        .iter()
        .map(|r| (r.check_id.as_str(), r.state, r.last_changed))
        .collect();
    assert_eq!(
        states,
        [
            ("c1", CheckState::Passed, 1_000),
            ("c2", CheckState::Passed, 2_000)
        ]
    );
    let filtered = store
        .result_rows(ENTITY, Some("default"), &["c2".to_string()])
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    let levels = store.level_rows(ENTITY).await.unwrap();
    assert_eq!(
        (levels.len(), levels[0].state, levels[0].last_changed),
        (1, CertState::Passed, 2_000)
    );
    let snapshot = store.snapshot(ENTITY, "default", 0).await.unwrap();
    assert_eq!(snapshot.results.get("c2"), Some(&CheckState::Passed));
    assert_eq!(
        snapshot.certifications.get(&(std::sync::Arc::from("t"), 1)),
        Some(&(CertState::Passed, CertState::Passed))
    );
    let of = store.results_of(&[ENTITY.to_string()]).await.unwrap();
    assert_eq!(of.len(), 2);
    // The process dies without writing them: the next open rolls the transitions forward.
    drop(store);
    let reopened = open(&url).await;
    assert_eq!(
        tables(&url).await,
        (
            vec![
                ("c1".into(), "passed".into(), 1_000),
                ("c2".into(), "passed".into(), 2_000)
            ],
            vec!["passed".to_string()]
        )
    );
    // The same evaluation again changes nothing, so no event repeats.
    let again = reopened.results_of(&[ENTITY.to_string()]).await.unwrap();
    assert!(again.iter().all(|r| r.state == CheckState::Passed));
    assert_eq!(reopened.events_after(0, 100).await.unwrap().len(), 5);
}

#[tokio::test]
async fn reads_across_entities_and_other_writes_come_after_held_changes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wb.db").display());
    let store = open(&url).await;
    store
        .apply(
            &evaluation(1_000, vec![result("c1", CheckState::Failed, None)], vec![]),
            true,
        )
        .await
        .unwrap();
    // A read across entities writes what is held first.
    let states = store.check_states("c1", "default").await.unwrap();
    assert_eq!(states, [(ENTITY.to_string(), CheckState::Failed)]);
    assert_eq!(
        tables(&url).await.0,
        [("c1".into(), "failed".into(), 1_000)]
    );
    // A held change, then a delete: the delete wins, and nothing comes back later.
    store
        .apply(
            &evaluation(
                2_000,
                vec![result("c1", CheckState::Passed, Some(CheckState::Failed))],
                vec![],
            ),
            true,
        )
        .await
        .unwrap();
    store.delete_results(ENTITY, None, &[]).await.unwrap();
    store.settle().await.unwrap();
    assert!(
        store
            .result_rows(ENTITY, None, &[])
            .await
            .unwrap()
            .is_empty()
    );
    drop(store);
    let reopened = open(&url).await;
    assert!(
        reopened
            .result_rows(ENTITY, None, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tables(&url).await.0, []);
    // A held change, then a submitted result with details: the details survive a crash
    // (written through, after what was held, and not rolled forward over).
    reopened
        .apply(
            &evaluation(3_000, vec![result("c1", CheckState::Failed, None)], vec![]),
            true,
        )
        .await
        .unwrap();
    let mut submitted = result("c1", CheckState::Passed, Some(CheckState::Failed));
    submitted.details = Some(serde_json::json!({"reason": "manual"}));
    submitted.submitted_by = Some("user:default/ops".into());
    let submission = StateChanges {
        now_ms: 4_000,
        results: vec![submitted],
        submissions: vec![Submission {
            check_id: "c1".into(),
            entity_ref: ENTITY.into(),
            scope: "default".into(),
            state: CheckState::Passed,
            stored_state: CheckState::Passed,
            details: None,
            submitted_by: "user:default/ops".into(),
            justification: Some("checked by hand".into()),
        }],
        ..Default::default()
    };
    reopened.apply(&submission, true).await.unwrap();
    drop(reopened);
    let last = open(&url).await;
    let rows = last.result_rows(ENTITY, None, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, CheckState::Passed);
    assert_eq!(
        rows[0].details,
        Some(serde_json::json!({"reason": "manual"}))
    );
    assert_eq!(rows[0].submitted_by.as_deref(), Some("user:default/ops"));
}

/// Due held changes are written in the background, in transactions of their own, and the
/// tables are then marked as reflecting their transitions, so a later open rolls nothing
/// forward over newer writes.
#[tokio::test]
async fn due_changes_are_written_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("wb.db").display());
    let store = soundcheck::store::SqlStore::open(&url)
        .await
        .unwrap()
        .with_write_behind(1);
    let now = || chrono::Utc::now().timestamp_millis();
    store
        .apply(
            &evaluation(now(), vec![result("c1", CheckState::Failed, None)], vec![]),
            true,
        )
        .await
        .unwrap();
    assert_eq!(tables(&url).await.0.len(), 0, "held");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // The next submission finds the write due and starts it.
    let at = now();
    store
        .apply(
            &evaluation(
                at,
                vec![result("c2", CheckState::Passed, None)],
                vec![level(CertState::Passed, None)],
            ),
            true,
        )
        .await
        .unwrap();
    let mut written = (vec![], vec![]);
    for _ in 0..200 {
        written = tables(&url).await;
        if written.0.len() == 2 && written.1.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        written.0.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["failed", "passed"]
    );
    assert_eq!(written.0[1].2, at);
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let marks: (i64, i64) =
        sqlx::query_as("SELECT check_transition, certification_transition FROM state_written")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(marks, (2, 1));
    pool.close().await;
}

/// The binary killed with SIGKILL while it holds a submission's results: the next open
/// rolls them forward from the transitions, and the submission's events are there once.
#[tokio::test]
async fn a_killed_server_loses_no_held_result() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const PAYMENTS: &str = "component:default/payments-api";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("killed.db").display());
    let hold = dir.path().join("hold.yaml");
    std::fs::write(
        &hold,
        "soundcheck:\n  server:\n    stateWriteBehindSeconds: 3600\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
        .args(["serve", "--config", "examples/app-config.yaml"])
        .arg(&hold)
        .args([
            "--catalog",
            "examples/catalog/catalog-info.yaml",
            "--facts",
            "examples/facts.jsonl",
        ])
        .args(["--port", "0", "--database", &url])
        .current_dir(crate::helpers::repo())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = format!(
        "http://{}/api/soundcheck",
        crate::api_input::listening_address(&mut lines)
    );
    // Keep reading the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let client = reqwest::Client::new();
    let state = |client: reqwest::Client| {
        let base = base.clone();
        async move {
            let v: serde_json::Value = client
                .get(format!(
                    "{base}/results?entityRef={PAYMENTS}&checks=ci-passing"
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["results"][0]["state"].as_str().map(str::to_string)
        }
    };
    for _ in 0..200 {
        if state(client.clone()).await.as_deref() == Some("passed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Let the start-up re-evaluation finish: it writes what is held.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let response = client
        .post(format!("{base}/facts"))
        .bearer_auth("example-write-token-change-me")
        .json(&serde_json::json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {"passing": false, "duration_seconds": 100}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        state(client.clone()).await.as_deref(),
        Some("failed"),
        "read back at once"
    );
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let stored = |url: String| async move {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM check_results WHERE entity_ref = $1 AND check_id = 'ci-passing'",
        )
        .bind(PAYMENTS)
        .fetch_optional(&pool)
        .await
        .unwrap();
        pool.close().await;
        state
    };
    // Held, not yet in the table (which may not have the start-up result either: nothing
    // since start wrote what was held).
    assert_ne!(stored(url.clone()).await.as_deref(), Some("failed"));
    let store = soundcheck::store::SqlStore::open(&url).await.unwrap();
    assert_eq!(
        stored(url.clone()).await.as_deref(),
        Some("failed"),
        "rolled forward on open"
    );
    let failed_events = store
        .events_after(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            let p = &e.params.event_payload;
            p["entityRef"] == PAYMENTS && p["checkId"] == "ci-passing" && p["state"] == "failed"
        })
        .count();
    assert_eq!(failed_events, 1);
}
