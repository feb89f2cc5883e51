//! The REST API through the real router, on every backend: reads against golden files,
//! facts and results changing state and emitting events, exemptions, definitions, execution
//! and auth.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use soundcheck::events::{StartAt, SubscribeOptions, handler};
use soundcheck_core::events::{CERTIFICATION_CHANGE_TOPIC, CHECK_STATUS_CHANGE_TOPIC, EventParams};

use crate::api_harness::{Api, READ, WRITE, golden_json};
use crate::backends;
use crate::helpers::{assert_golden, repo, soundcheck};

const PAYMENTS: &str = "component:default/payments-api";

/// Every (entity, check, state) the API reports.
pub(crate) async fn api_results(api: &Api) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (entity, _) in api.app.entities().iter() {
        let r = api
            .get(&format!("/api/soundcheck/results?entityRef={entity}"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        for item in r.body["results"].as_array().unwrap() {
            out.insert((
                item["entityRef"].as_str().unwrap().to_string(),
                item["checkId"].as_str().unwrap().to_string(),
                item["state"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn served_results_equal_the_batch_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let run = soundcheck(&["evaluate", "-q", "--results-out", out.to_str().unwrap()]);
    assert!(run.status.code().is_some_and(|c| c == 0 || c == 1));
    let batch: BTreeSet<(String, String, String)> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["entityRef"].as_str().unwrap().to_string(),
                v["checkId"].as_str().unwrap().to_string(),
                v["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(batch.len() > 500);
    for b in backends::all().await {
        let api = Api::example(b).await;
        assert_eq!(api_results(&api).await, batch, "{}", api.backend.name);
    }
}

#[tokio::test]
async fn read_endpoints_match_golden_files() {
    let reads = [
        (
            "check.json",
            Method::GET,
            "/api/soundcheck/checks/has-owner",
            Value::Null,
        ),
        (
            "tracks.json",
            Method::GET,
            "/api/soundcheck/tracks",
            Value::Null,
        ),
        (
            "check-status.json",
            Method::GET,
            "/api/soundcheck/checks/ci-passing/status",
            Value::Null,
        ),
        (
            "check-status-filtered.json",
            Method::POST,
            "/api/soundcheck/checks/ci-passing/status",
            json!({"filter": {"spec.type": "service"}}),
        ),
        (
            "track-status.json",
            Method::GET,
            "/api/soundcheck/tracks/basic-health/status",
            Value::Null,
        ),
        (
            "certifications.json",
            Method::GET,
            "/api/soundcheck/certifications?entityRef=component:default/payments-api",
            Value::Null,
        ),
        (
            "results.json",
            Method::GET,
            "/api/soundcheck/results?entityRef=Component:payments-api&checks=ci-passing&checks=has-owner",
            Value::Null,
        ),
        (
            "track-entities.json",
            Method::GET,
            "/api/soundcheck/tracks/basic-health/entities?status=passed",
            Value::Null,
        ),
        (
            "check-entities.json",
            Method::POST,
            "/api/soundcheck/checks/entities",
            json!({"checkId": "ci-passing", "states": ["failed"], "limit": 5}),
        ),
        (
            "check-history.json",
            Method::GET,
            "/api/soundcheck/checks/ci-passing/status-history?numberOfDays=2",
            Value::Null,
        ),
        (
            "track-history.json",
            Method::POST,
            "/api/soundcheck/tracks/basic-health/status-history",
            json!({"numberOfDays": 1, "filter": {"spec.lifecycle": "production"}}),
        ),
    ];
    for b in backends::all().await {
        let api = Api::example(b).await;
        for (golden, method, uri, body) in &reads {
            let reply = if body.is_null() {
                api.raw(method.clone(), uri, Some(READ), "").await
            } else {
                api.raw(method.clone(), uri, Some(READ), &body.to_string())
                    .await
            };
            assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
            assert_golden(&format!("api/{golden}"), &golden_json(&reply.body));
        }
    }
}

/// Collects every event a subscriber receives.
async fn collect_events(api: &Api) -> Arc<Mutex<Vec<EventParams>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    api.app
        .events()
        .expect("the example enables events")
        .subscribe(SubscribeOptions {
            id: "api-test".into(),
            topics: vec![
                CHECK_STATUS_CHANGE_TOPIC.into(),
                CERTIFICATION_CHANGE_TOPIC.into(),
            ],
            on_event: handler(move |e| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock().unwrap().push(e);
                    Ok(())
                }
            }),
            start: StartAt::Latest,
        })
        .await
        .unwrap();
    seen
}

async fn wait_for(seen: &Arc<Mutex<Vec<EventParams>>>, n: usize) -> Vec<EventParams> {
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    seen.lock().unwrap().clone()
}

fn state_of(reply: &Value, check: &str) -> Option<String> {
    reply["results"]
        .as_array()?
        .iter()
        .find(|r| r["checkId"] == check)
        .and_then(|r| r["state"].as_str())
        .map(str::to_string)
}

#[tokio::test]
async fn submitted_facts_change_results_certifications_and_emit_events() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let seen = collect_events(&api).await;
        let before = api
            .get(&format!("/api/soundcheck/results?entityRef={PAYMENTS}"))
            .await;
        assert_eq!(
            state_of(&before.body, "ci-passing").as_deref(),
            Some("passed")
        );
        let fact = json!({"facts": [{
            "factRef": "ci:default/pipeline", "entityRef": PAYMENTS,
            "data": {"passing": false, "duration_seconds": 300, "branch": "main"}
        }]});
        let r = api.send(Method::POST, "/api/soundcheck/facts", fact).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body,
            json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS}]})
        );
        let after = api
            .get(&format!("/api/soundcheck/results?entityRef={PAYMENTS}"))
            .await;
        assert_eq!(
            state_of(&after.body, "ci-passing").as_deref(),
            Some("failed")
        );
        let events = wait_for(&seen, 2).await;
        let check_event = events
            .iter()
            .find(|e| e.topic == CHECK_STATUS_CHANGE_TOPIC)
            .expect("a check event");
        assert_eq!(check_event.event_payload["checkId"], "ci-passing");
        assert_eq!(check_event.event_payload["previousState"], "passed");
        assert_eq!(check_event.event_payload["state"], "failed");
        assert!(
            events.iter().any(|e| e.topic == CERTIFICATION_CHANGE_TOPIC
                && e.event_payload["entityRef"] == PAYMENTS)
        );
        let certs = api
            .get(&format!(
                "/api/soundcheck/certifications?entityRef={PAYMENTS}&trackId=basic-health"
            ))
            .await;
        let level3 = &certs.body["certifications"][0]["levels"][2];
        assert_eq!(level3["state"], "failed");
        assert_eq!(
            level3["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == "ci-passing")
                .unwrap()["state"],
            "failed"
        );
        // the same fact again changes nothing and emits nothing, but the checks reading it
        // were checked again: their `lastChecked` moves
        let times = |body: &Value| {
            body["results"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["checkId"] == "ci-passing"))
                .map(|r| (r["lastChecked"].clone(), r["lastChanged"].clone()))
                .expect("a ci-passing result")
        };
        let (checked, changed) = times(&after.body);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let n = seen.lock().unwrap().len();
        let again = json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {"passing": false, "duration_seconds": 300, "branch": "main"}}]});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/facts", again)
                .await
                .status,
            StatusCode::OK
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(seen.lock().unwrap().len(), n, "{}", api.backend.name);
        let again = api
            .get(&format!("/api/soundcheck/results?entityRef={PAYMENTS}"))
            .await;
        let (checked_again, changed_again) = times(&again.body);
        assert_eq!(changed_again, changed, "{}", api.backend.name);
        assert!(
            checked_again.as_str() > checked.as_str(),
            "{}: {checked_again} after {checked}",
            api.backend.name
        );
        api.app.shutdown().await;
    }
}

#[tokio::test]
async fn manual_and_external_results_are_validated_stored_and_audited() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let submit = |body: Value| {
            api.send(
                Method::POST,
                "/api/soundcheck/results?returnUpdatedResults=true",
                body,
            )
        };
        let r = submit(json!({"results": [{"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "passed", "details": {"report": "PT-1"}}]})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["results"][0]["state"], "passed");
        assert_eq!(r.body["results"][0]["submittedBy"], "user:default/writer");
        // manual checks need a justification
        let r = submit(json!({"results": [{"entityRef": PAYMENTS, "checkId": "dr-runbook-reviewed", "state": "passed"}]})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/results/0: check `dr-runbook-reviewed` is manual"),
            "{}",
            r.body
        );
        let r = submit(json!({"results": [{"entityRef": PAYMENTS, "checkId": "dr-runbook-reviewed", "state": "passed", "justification": "rehearsed on 2026-11-20"}]})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        // a full re-evaluation keeps submitted results in certification: nothing changes
        let world = api
            .send(Method::POST, "/api/soundcheck/certify_world", json!({}))
            .await;
        assert!(
            world.body["status"]
                .as_str()
                .unwrap()
                .ends_with("0 result change(s), 0 certification change(s)"),
            "{}",
            world.body
        );
        // rule-based checks take facts, not results
        let r = submit(json!({"results": [{"entityRef": PAYMENTS, "checkId": "ci-passing", "state": "passed"}]})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/results/0/checkId")
        );
        // preserveStateOnError keeps the state and takes the details
        let r = submit(json!({"preserveStateOnError": true, "results": [{"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "error", "details": {"error": "scanner down"}}]})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["results"][0]["state"], "passed");
        assert_eq!(
            r.body["results"][0]["details"],
            json!({"error": "scanner down"})
        );
        // without it the error is stored
        let r = submit(json!({"results": [{"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "error"}]})).await;
        assert_eq!(r.body["results"][0]["state"], "error");
        // delete
        let r = api
            .raw(
                Method::DELETE,
                &format!("/api/soundcheck/results?entityRef={PAYMENTS}&checks=pen-test-passed"),
                Some(WRITE),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let left = api
            .get(&format!(
                "/api/soundcheck/results?entityRef={PAYMENTS}&checks=pen-test-passed"
            ))
            .await;
        assert_eq!(left.body["results"], json!([]));
    }
}

#[tokio::test]
async fn exemptions_are_created_counted_revoked_and_restored() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let failing = api
            .raw(
                Method::POST,
                "/api/soundcheck/checks/entities",
                Some(READ),
                &json!({"checkId": "ci-passing", "states": ["failed"], "limit": 1}).to_string(),
            )
            .await;
        let entity = failing.body["entities"][0]["entityRef"]
            .as_str()
            .unwrap()
            .to_string();
        let status = api
            .get("/api/soundcheck/checks/ci-passing/status")
            .await
            .body;
        let body = json!({"checkId": "ci-passing", "entityRef": entity, "justification": "pipeline migrates next sprint"});
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/checks/exemptions",
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["exemption"]["userRef"], "user:default/writer");
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/checks/exemptions", body)
                .await
                .status,
            StatusCode::CONFLICT
        );
        let exempt = api
            .get("/api/soundcheck/checks/ci-passing/status")
            .await
            .body;
        assert_eq!(exempt["exempt"], status["exempt"].as_i64().unwrap() + 1);
        assert_eq!(exempt["failed"], status["failed"].as_i64().unwrap() - 1);
        let listed = api
            .get("/api/soundcheck/checks/exemptions?checkId=ci-passing")
            .await
            .body;
        assert_eq!(listed["totalCount"], 1);
        let pair = json!({"checkId": "ci-passing", "entityRef": entity, "reason": "done"});
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/checks/exemptions/revoke",
                pair.clone()
            )
            .await
            .status,
            StatusCode::OK
        );
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/checks/exemptions/revoke",
                pair.clone()
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        let revoked = api
            .get("/api/soundcheck/checks/exemptions/revoked?checkId=ci-passing")
            .await
            .body;
        assert_eq!(revoked["exemptions"][0]["reason"], "done");
        assert_eq!(
            api.get("/api/soundcheck/checks/ci-passing/status")
                .await
                .body,
            status
        );
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/checks/exemptions/restore",
                json!({"checkId": "ci-passing", "entityRef": entity}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            api.get("/api/soundcheck/checks/ci-passing/status")
                .await
                .body["exempt"],
            exempt["exempt"]
        );
    }
}

pub(crate) fn new_check() -> Value {
    json!({
        "id": "api-has-description",
        "name": "Has a description",
        "filter": {"kind": "component"},
        "rule": {"factRef": "catalog:default/entity_descriptor", "path": "$.metadata.description", "operator": "matches", "value": "\\S"}
    })
}

/// Creates [`new_check`] through the API and waits for its results.
pub(crate) async fn create_new_check(api: &Api) {
    let r = api
        .send(
            Method::POST,
            "/api/soundcheck/checks",
            json!({"checks": [new_check()]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    api.app.settled().await;
}

#[tokio::test]
async fn checks_and_tracks_are_managed_through_the_api() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        create_new_check(&api).await;
        let status = api
            .get("/api/soundcheck/checks/api-has-description/status")
            .await
            .body;
        assert_eq!(
            status["passed"].as_i64().unwrap()
                + status["failed"].as_i64().unwrap()
                + status["notApplicable"].as_i64().unwrap(),
            57,
            "{status}"
        );
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/checks",
                json!({"checks": [new_check()]})
            )
            .await
            .status,
            StatusCode::CONFLICT
        );
        let mut config_check = new_check();
        config_check["id"] = json!("has-owner");
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/checks",
                json!({"checks": [config_check.clone()]})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            api.send(
                Method::PUT,
                "/api/soundcheck/checks/has-owner",
                config_check
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        let mut bad = new_check();
        bad["id"] = json!("bad-operator");
        bad["rule"]["operator"] = json!("eq");
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/checks",
                json!({"checks": [bad]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("/checks/0/rule/operator: "),
            "{}",
            r.body
        );
        let mut changed = new_check();
        changed["name"] = json!("Described");
        let r = api
            .send(
                Method::PUT,
                "/api/soundcheck/checks/api-has-description",
                changed,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            api.get("/api/soundcheck/checks/api-has-description")
                .await
                .body["check"]["name"],
            "Described"
        );
        assert_eq!(
            api.send(Method::PUT, "/api/soundcheck/checks/nope", new_check())
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let track = json!({"tracks": [{"id": "api-track", "name": "API track", "levels": [{"ordinal": 1, "checks": [{"id": "api-has-description"}]}]}]});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/tracks", track)
                .await
                .status,
            StatusCode::CREATED
        );
        api.app.settled().await;
        let ts = api
            .get("/api/soundcheck/tracks/api-track/status")
            .await
            .body;
        assert_eq!(ts["numberOfEntities"], 57);
        let r = api
            .raw(
                Method::DELETE,
                "/api/soundcheck/checks/api-has-description",
                Some(WRITE),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/tracks/api-track",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/checks/api-has-description?deleteHistory=true",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api.get("/api/soundcheck/checks/api-has-description")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/checks/has-owner",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // campaigns are tracks of type campaign
        let campaign = json!({"campaigns": [{"id": "q4-owners", "name": "Q4 owners", "levels": [{"ordinal": 1, "checks": [{"id": "has-owner"}]}]}]});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/campaigns", campaign)
                .await
                .status,
            StatusCode::CREATED
        );
        api.app.settled().await;
        let page = api
            .raw(
                Method::POST,
                "/api/soundcheck/campaigns/entities",
                Some(READ),
                &json!({"campaignId": "q4-owners", "first": 10}).to_string(),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(page.body["edges"].as_array().unwrap().len(), 10);
        let next = api
            .raw(Method::POST, "/api/soundcheck/campaigns/entities", Some(READ), &json!({"campaignId": "q4-owners", "first": 100, "after": page.body["pageInfo"]["endCursor"]}).to_string())
            .await;
        assert_eq!(
            next.body["edges"].as_array().unwrap().len() + 10,
            page.body["totalCount"].as_u64().unwrap() as usize
        );
        assert!(
            api.get("/api/soundcheck/tracks").await.body["tracks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["id"] != "q4-owners")
        );
        assert_eq!(
            api.get("/api/soundcheck/campaigns").await.body["campaigns"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let c = api.get("/api/soundcheck/campaigns/q4-owners").await;
        assert_eq!(c.body["campaign"]["type"], "campaign");
        assert_eq!(
            api.get("/api/soundcheck/tracks/q4-owners").await.status,
            StatusCode::NOT_FOUND
        );
        let renamed = json!({"name": "Q4 owners, extended", "levels": [{"ordinal": 1, "checks": [{"id": "has-owner"}]}]});
        let r = api
            .send(
                Method::PUT,
                "/api/soundcheck/campaigns/q4-owners",
                renamed.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["campaign"]["name"], "Q4 owners, extended");
        // a campaign cannot be replaced as a track
        assert_eq!(
            api.send(Method::PUT, "/api/soundcheck/tracks/q4-owners", renamed)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api.raw(
                Method::DELETE,
                "/api/soundcheck/campaigns/q4-owners",
                Some(WRITE),
                ""
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        // config-file tracks are readable, not writable
        let t = api.get("/api/soundcheck/tracks/basic-health").await;
        assert_eq!(t.body["track"]["levels"].as_array().unwrap().len(), 3);
        assert_eq!(
            api.send(
                Method::PUT,
                "/api/soundcheck/tracks/basic-health",
                t.body["track"].clone()
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        let by_track = api
            .get("/api/soundcheck/checks/exemptions?trackId=basic-health")
            .await;
        assert_eq!(by_track.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn execute_evaluates_on_demand_and_dry_runs_store_nothing() {
    for b in backends::all().await {
        let api = Api::example(b).await;
        let uri = format!("/api/soundcheck/results?entityRef={PAYMENTS}&checks=ci-passing");
        assert_eq!(
            api.raw(Method::DELETE, &uri, Some(WRITE), "").await.status,
            StatusCode::OK
        );
        let body = json!({"checkIds": ["ci-passing"], "entityRefs": [PAYMENTS]});
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/checks/execute?dryRun=true",
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["results"],
            json!([{"entityRef": PAYMENTS, "checkId": "ci-passing", "state": "passed", "scope": "default"}])
        );
        assert_eq!(api.get(&uri).await.body["results"], json!([]));
        let r = api
            .send(Method::POST, "/api/soundcheck/checks/execute", body)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            state_of(&api.get(&uri).await.body, "ci-passing").as_deref(),
            Some("passed")
        );
        let r = api
            .send(
                Method::POST,
                "/api/soundcheck/checks/execute",
                json!({"checkIds": ["ci-passing"], "filter": {"metadata.name": "payments-api"}}),
            )
            .await;
        assert_eq!(r.body["results"].as_array().unwrap().len(), 1);
        let r = api
            .send(Method::POST, "/api/soundcheck/certify_world", json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body["status"]
                .as_str()
                .unwrap()
                .starts_with("certified 57 entities"),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn tokens_decide_who_may_read_and_write() {
    let api = Api::example(backends::sqlite().await).await;
    let facts = json!({"facts": []}).to_string();
    let cases = [
        (
            Method::GET,
            "/api/soundcheck/checks",
            None,
            "",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/soundcheck/checks",
            Some("not-a-token"),
            "",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/soundcheck/checks",
            Some(READ),
            "",
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/soundcheck/checks/ci-passing/status",
            Some(READ),
            "{}",
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/api/soundcheck/facts",
            Some(READ),
            facts.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            Method::POST,
            "/api/soundcheck/facts",
            None,
            facts.as_str(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::POST,
            "/api/soundcheck/facts",
            Some(WRITE),
            facts.as_str(),
            StatusCode::OK,
        ),
        (Method::GET, "/healthz", None, "", StatusCode::OK),
        (Method::GET, "/readyz", None, "", StatusCode::OK),
    ];
    for (method, uri, token, body, expected) in cases {
        let r = api.raw(method.clone(), uri, token, body).await;
        assert_eq!(
            r.status, expected,
            "{method} {uri} with {token:?}: {}",
            r.body
        );
        if !expected.is_success() {
            assert_eq!(r.body["response"]["statusCode"], expected.as_u16());
            assert_eq!(r.body["request"]["method"], method.as_str());
            assert_eq!(r.body["request"]["url"], uri);
        }
    }
    // anonymous reads only on loopback and when configured
    use soundcheck::server::{HttpSettings, auth::Auth, router};
    use tower::ServiceExt;
    for (anonymous, loopback, expected) in [
        (true, true, StatusCode::OK),
        (true, false, StatusCode::UNAUTHORIZED),
        (false, true, StatusCode::UNAUTHORIZED),
    ] {
        let r = router(
            Arc::clone(&api.app),
            HttpSettings {
                auth: Auth::new(Vec::new(), anonymous, loopback),
                body_limit_bytes: 1024,
            },
        );
        let response = r
            .oneshot(
                axum::http::Request::get("/api/soundcheck/tracks")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            expected,
            "anonymous={anonymous} loopback={loopback}"
        );
    }
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let api = Api::example(backends::sqlite().await).await;
    let doc = api.get("/api/soundcheck/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(operations, 49, "{:?}", paths.keys().collect::<Vec<_>>());
    assert_eq!(
        doc.body["paths"]["/api/soundcheck/checks/{checkId}/status"]["get"]["operationId"],
        "getCheckStatus"
    );
    let _ = repo();
}

#[tokio::test]
async fn many_entity_snapshots_equal_single_snapshots() {
    use soundcheck::store::CatalogStore;
    for b in backends::all().await {
        let api = Api::example(b).await;
        let exemption =
            json!({"checkId": "ci-passing", "entityRef": PAYMENTS, "justification": "j"});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/checks/exemptions", exemption)
                .await
                .status,
            StatusCode::CREATED
        );
        let keys: Vec<(String, String)> = api
            .app
            .entities()
            .iter()
            .map(|(r, _)| (r.clone(), "default".to_string()))
            .chain([("component:default/ghost".to_string(), "default".to_string())])
            .collect();
        let now = soundcheck::service::now();
        let many = api
            .backend
            .store
            .snapshots(&keys, now, soundcheck::store::FactNeeds::All)
            .await
            .unwrap();
        assert_eq!(many.len(), keys.len());
        for key in &keys {
            let mut one = api
                .backend
                .store
                .snapshot(&key.0, &key.1, now)
                .await
                .unwrap();
            let mut from_many = many[key].clone();
            one.facts.sort_by(|a, b| a.0.cmp(&b.0));
            from_many.facts.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(from_many, one, "{} {}", api.backend.name, key.0);
        }
    }
}
