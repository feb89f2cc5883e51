//! Bad input answers 4xx in Backstage's error shape and changes nothing; and the real binary
//! serves the API end to end on port 0 and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use soundcheck::store::StateStore;

use crate::api::api_results;
use crate::api_harness::{Api, READ, WRITE};
use crate::backends;
use crate::helpers::repo;

const PAYMENTS: &str = "component:default/payments-api";

/// What a refused request must not change.
async fn fingerprint(api: &Api) -> (i64, usize, Value, Value) {
    let store = &api.backend.store;
    (
        store.last_seq().await.unwrap(),
        api_results(api).await.len(),
        api.get("/api/soundcheck/checks").await.body,
        api.get("/api/soundcheck/checks/exemptions").await.body,
    )
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message_and_changes_nothing() {
    let big = json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {"pad": "x".repeat(4096)}}]}).to_string();
    let cases: Vec<(Method, &str, String, StatusCode, &str)> = vec![
        (Method::POST, "/api/soundcheck/facts", "{\"facts\": [".into(), StatusCode::BAD_REQUEST, "not valid JSON"),
        (Method::POST, "/api/soundcheck/facts", "".into(), StatusCode::BAD_REQUEST, "empty"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": 5}).to_string(), StatusCode::BAD_REQUEST, "/facts: invalid type"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": [], "extra": 1}).to_string(), StatusCode::BAD_REQUEST, "unknown field `extra`"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": [
            {"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {"passing": false}},
            {"factRef": "ci:default/pipeline", "entityRef": "payments-api", "data": {}}
        ]}).to_string(), StatusCode::BAD_REQUEST, "/facts/1/entityRef"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": [{"factRef": "nocolon", "entityRef": PAYMENTS, "data": {}}]}).to_string(), StatusCode::BAD_REQUEST, "/facts/0/factRef"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": 3}]}).to_string(), StatusCode::BAD_REQUEST, "/facts/0/data: expected an object"),
        (Method::POST, "/api/soundcheck/facts", json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {}, "timestamp": "yesterday"}]}).to_string(), StatusCode::BAD_REQUEST, "/facts/0/timestamp"),
        (Method::POST, "/api/soundcheck/facts", big, StatusCode::PAYLOAD_TOO_LARGE, ""),
        (Method::POST, "/api/soundcheck/results", json!({"results": [{"entityRef": PAYMENTS, "checkId": "nope", "state": "passed"}]}).to_string(), StatusCode::BAD_REQUEST, "/results/0/checkId: check `nope` not found"),
        (Method::POST, "/api/soundcheck/results", json!({"results": [{"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "green"}]}).to_string(), StatusCode::BAD_REQUEST, "/results/0/state"),
        (Method::POST, "/api/soundcheck/results", json!({"results": [{"entityRef": "component:default/ghost", "checkId": "pen-test-passed", "state": "passed"}]}).to_string(), StatusCode::NOT_FOUND, "not in the catalog"),
        (Method::POST, "/api/soundcheck/results", json!({"results": [
            {"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "passed"},
            {"entityRef": PAYMENTS, "checkId": "pen-test-passed", "state": "failed"}
        ]}).to_string(), StatusCode::BAD_REQUEST, "/results/1: a second result"),
        (Method::POST, "/api/soundcheck/checks", json!({"checks": {}}).to_string(), StatusCode::BAD_REQUEST, "/checks"),
        (Method::POST, "/api/soundcheck/checks", json!({"checks": [{"name": "no id"}]}).to_string(), StatusCode::BAD_REQUEST, "/checks/0/id"),
        (Method::POST, "/api/soundcheck/checks", json!({"checks": [{"id": "x", "rule": {"factRef": "a:b/c", "path": "$[", "operator": "equal", "value": 1}}]}).to_string(), StatusCode::BAD_REQUEST, "/checks/0/rule/path"),
        (Method::PUT, "/api/soundcheck/checks/x", "[]".into(), StatusCode::BAD_REQUEST, "expected a JSON object"),
        (Method::POST, "/api/soundcheck/tracks", json!({"tracks": [{"id": "t", "levels": [{"ordinal": 1, "checks": [{"id": "missing-check"}]}]}]}).to_string(), StatusCode::BAD_REQUEST, "missing-check"),
        (Method::POST, "/api/soundcheck/checks/exemptions", json!({"checkId": "ci-passing", "entityRef": PAYMENTS}).to_string(), StatusCode::BAD_REQUEST, "missing field `justification`"),
        (Method::POST, "/api/soundcheck/checks/exemptions", json!({"checkId": "nope", "entityRef": PAYMENTS, "justification": "j"}).to_string(), StatusCode::NOT_FOUND, "check `nope` not found"),
        (Method::POST, "/api/soundcheck/checks/exemptions", json!({"checkId": "ci-passing", "entityRef": "component:default/ghost", "justification": "j"}).to_string(), StatusCode::NOT_FOUND, "not in the catalog"),
        (Method::POST, "/api/soundcheck/checks/exemptions", json!({"checkId": "ci-passing", "entityRef": PAYMENTS, "justification": "j", "expiresAt": "soon"}).to_string(), StatusCode::BAD_REQUEST, "/expiresAt"),
        (Method::POST, "/api/soundcheck/checks/execute", json!({"checkIds": ["nope"], "entityRefs": [PAYMENTS]}).to_string(), StatusCode::NOT_FOUND, "check `nope` not found"),
        (Method::POST, "/api/soundcheck/checks/execute", json!({"checkIds": ["ci-passing"], "entityRefs": ["nokind"]}).to_string(), StatusCode::BAD_REQUEST, "/entityRefs/0"),
        (Method::POST, "/api/soundcheck/checks/entities", json!({"checkId": 5}).to_string(), StatusCode::BAD_REQUEST, "/checkId"),
        (Method::POST, "/api/soundcheck/checks/ci-passing/status", json!({"filter": 5}).to_string(), StatusCode::BAD_REQUEST, "/filter"),
        (Method::POST, "/api/soundcheck/certify_world", json!({"scope": 5}).to_string(), StatusCode::BAD_REQUEST, "/scope"),
        (Method::POST, "/api/soundcheck/facts/collect", json!({"collectorIds": [], "entityRefs": []}).to_string(), StatusCode::BAD_REQUEST, "at least one"),
        (Method::GET, "/api/soundcheck/results", String::new(), StatusCode::BAD_REQUEST, "`entityRef` is required"),
        (Method::GET, "/api/soundcheck/certifications?entityRef=component:default/ghost", String::new(), StatusCode::NOT_FOUND, "not in the catalog"),
        (Method::GET, "/api/soundcheck/checks/nope", String::new(), StatusCode::NOT_FOUND, "check `nope` not found"),
        (Method::GET, "/api/soundcheck/checks/nope/status", String::new(), StatusCode::NOT_FOUND, "check `nope` not found"),
        (Method::GET, "/api/soundcheck/tracks/nope/status", String::new(), StatusCode::NOT_FOUND, "track `nope` not found"),
        (Method::GET, "/api/soundcheck/tracks/basic-health/entities?status=maybe", String::new(), StatusCode::BAD_REQUEST, "`status`"),
        (Method::GET, "/api/soundcheck/checks/exemptions?limit=500", String::new(), StatusCode::BAD_REQUEST, "`limit`"),
        (Method::GET, "/api/soundcheck/checks/ci-passing/status-history?numberOfDays=x", String::new(), StatusCode::BAD_REQUEST, "`numberOfDays`"),
        (Method::GET, "/api/soundcheck/no-such-thing", String::new(), StatusCode::NOT_FOUND, ""),
        (Method::DELETE, "/api/soundcheck/certifications", String::new(), StatusCode::METHOD_NOT_ALLOWED, ""),
    ];
    for b in backends::all().await {
        let api = Api::with_body_limit(b, 2048).await;
        let before = fingerprint(&api).await;
        for (method, uri, body, status, message) in &cases {
            let r = api.raw(method.clone(), uri, Some(WRITE), body).await;
            assert_eq!(r.status, *status, "{method} {uri} {body:.80}: {}", r.body);
            let text = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                text.contains(message),
                "{method} {uri}: `{text}` lacks `{message}`"
            );
            assert!(r.body["error"]["name"].is_string(), "{}", r.body);
            assert_eq!(r.body["response"]["statusCode"], status.as_u16());
            assert_eq!(r.body["request"]["url"], *uri);
        }
        assert_eq!(fingerprint(&api).await, before, "{}", api.backend.name);
    }
}

/// Reads the child's JSON log lines until the listening address appears.
pub(crate) fn listening_address(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> String {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && let Some(address) = v["address"].as_str()
        {
            return address.to_string();
        }
    }
    panic!("the server never said where it listens");
}

/// `soundcheck bench load` against the running server: both workloads send every request
/// and report them.
fn bench_load_drives_the_server(base: &str, token: &str) {
    for workload in [&["ingest", "--batch", "3"][..], &["certifications"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
            .args(["bench", "load", "--url", base, "--token", token])
            .args(["--catalog", "examples/catalog/catalog-info.yaml"])
            .args(["--concurrency", "2", "--requests", "5", "--seed", "7"])
            .args(workload)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{workload:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let figures: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(figures["requests"], 5, "{workload:?}: {figures}");
        let per_request = if workload[0] == "ingest" { 3.0 } else { 1.0 };
        let items = figures["itemsPerSecond"].as_f64().unwrap();
        let requests = figures["requestsPerSecond"].as_f64().unwrap();
        assert!(
            (items - requests * per_request).abs() < 1e-6 * items,
            "{figures}"
        );
    }
}

#[tokio::test]
async fn the_binary_serves_the_api_end_to_end_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e2e.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
        .args([
            "serve",
            "--config",
            "examples/app-config.yaml",
            "--catalog",
            "examples/catalog/catalog-info.yaml",
            "--facts",
            "examples/facts.jsonl",
            "--port",
            "0",
            "--database",
            &url,
        ])
        .current_dir(repo())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = format!("http://{}/api/soundcheck", listening_address(&mut lines));
    let client = reqwest::Client::new();
    let token = "example-write-token-change-me";
    let results = |client: reqwest::Client, base: String| async move {
        client
            .get(format!(
                "{base}/results?entityRef={PAYMENTS}&checks=ci-passing"
            ))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // the background re-evaluation may still run; wait for the first result
    let mut before = Value::Null;
    for _ in 0..100 {
        before = results(client.clone(), base.clone()).await;
        if before["results"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(before["results"][0]["state"], "passed");
    let response = client
        .post(format!("{base}/facts"))
        .bearer_auth(token)
        .json(&json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": PAYMENTS, "data": {"passing": false, "duration_seconds": 100}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after = results(client.clone(), base.clone()).await;
    assert_eq!(after["results"][0]["state"], "failed");
    let certs: Value = client
        .get(format!(
            "{base}/certifications?entityRef={PAYMENTS}&trackId=basic-health"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(certs["certifications"][0]["levels"][2]["state"], "failed");
    let unauthenticated = client
        .post(format!("{base}/facts"))
        .json(&json!({"facts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    // the change is in the outbox
    let store = soundcheck::store::SqlStore::open(&url).await.unwrap();
    let events = store.events_after(0, 100_000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.params.event_payload["checkId"] == "ci-passing"
                && e.params.event_payload["entityRef"] == PAYMENTS
                && e.params.event_payload["state"] == "failed")
    );
    // the live stream, through `soundcheck events tail` (JSON lines when not on a terminal)
    let tail = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
            .args(["events", "tail", "--url", &base])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let listed = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
        .args(["events", "subscribers", "--url", &base])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(listed["subscribers"].is_array(), "{listed}");
    let first = tail(&["--after", "0", "--limit", "3"]);
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|e| {
        e["topic"]
            .as_str()
            .is_some_and(|t| t.starts_with("soundcheck-"))
    }));
    let mine = tail(&[
        "--after",
        "0",
        "--limit",
        "1",
        "--topic",
        "soundcheck-check-status-change",
        "--entity",
        PAYMENTS,
    ]);
    assert_eq!(mine[0]["eventPayload"]["entityRef"], PAYMENTS);
    assert_eq!(mine[0]["topic"], "soundcheck-check-status-change");
    let origin = base.trim_end_matches("/api/soundcheck");
    let metrics = client
        .get(format!("{origin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "soundcheck_http_requests_total",
        "soundcheck_http_request_duration_seconds",
        "soundcheck_facts_received_total",
        "soundcheck_evaluations_total",
        "soundcheck_events_written_total",
        "soundcheck_entities",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    bench_load_drives_the_server(&base, token);
    // a stream that is still open must not hold up shutdown
    let mut follower = Command::new(env!("CARGO_BIN_EXE_soundcheck"))
        .args(["events", "tail", "--url", &base])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
    assert!(
        rest.iter().all(|l| !l.contains(token)),
        "a token reached the log"
    );
    assert!(
        follower.wait().unwrap().success(),
        "the follower ends when the stream ends"
    );
    let _ = READ;
}

#[tokio::test]
async fn every_endpoint_refuses_malformed_mistyped_oversized_and_unknown_input() {
    // Every route that takes a body, with a path naming something that exists.
    let with_body = [
        (Method::POST, "/api/soundcheck/checks"),
        (Method::PUT, "/api/soundcheck/checks/has-owner"),
        (Method::POST, "/api/soundcheck/checks/execute"),
        (Method::POST, "/api/soundcheck/checks/entities"),
        (Method::POST, "/api/soundcheck/checks/has-owner/status"),
        (
            Method::POST,
            "/api/soundcheck/checks/has-owner/status-history",
        ),
        (Method::POST, "/api/soundcheck/checks/exemptions"),
        (Method::POST, "/api/soundcheck/checks/exemptions/revoke"),
        (Method::POST, "/api/soundcheck/checks/exemptions/restore"),
        (Method::POST, "/api/soundcheck/results"),
        (Method::POST, "/api/soundcheck/certify_world"),
        (Method::POST, "/api/soundcheck/facts"),
        (Method::POST, "/api/soundcheck/facts/collect"),
        (Method::POST, "/api/soundcheck/tracks"),
        (Method::PUT, "/api/soundcheck/tracks/basic-health"),
        (Method::POST, "/api/soundcheck/tracks/basic-health/status"),
        (
            Method::POST,
            "/api/soundcheck/tracks/basic-health/status-history",
        ),
        (Method::POST, "/api/soundcheck/campaigns"),
        (Method::PUT, "/api/soundcheck/campaigns/nope"),
        (Method::POST, "/api/soundcheck/campaigns/entities"),
        (Method::POST, "/api/soundcheck/fact-collectors"),
        (Method::PUT, "/api/soundcheck/fact-collectors/soundcheck"),
    ];
    // Every route naming something by id, with an id that does not exist.
    let unknown = [
        (Method::GET, "/api/soundcheck/checks/nope"),
        (Method::DELETE, "/api/soundcheck/checks/nope"),
        (Method::GET, "/api/soundcheck/checks/nope/status"),
        (Method::GET, "/api/soundcheck/checks/nope/status-history"),
        (Method::GET, "/api/soundcheck/tracks/nope"),
        (Method::DELETE, "/api/soundcheck/tracks/nope"),
        (Method::GET, "/api/soundcheck/tracks/nope/status"),
        (Method::GET, "/api/soundcheck/tracks/nope/status-history"),
        (Method::GET, "/api/soundcheck/tracks/nope/entities"),
        (Method::GET, "/api/soundcheck/campaigns/nope"),
        (Method::DELETE, "/api/soundcheck/campaigns/nope"),
        (Method::GET, "/api/soundcheck/fact-collectors/nope"),
        (Method::DELETE, "/api/soundcheck/fact-collectors/nope"),
        (
            Method::GET,
            "/api/soundcheck/certifications?entityRef=component:default/nope",
        ),
        (
            Method::GET,
            "/api/soundcheck/checks/exemptions?trackId=nope",
        ),
    ];
    let oversized = format!("{{\"pad\": \"{}\"}}", "x".repeat(4096));
    for b in backends::all().await {
        let api = Api::with_body_limit(b, 2048).await;
        let before = fingerprint(&api).await;
        for (method, uri) in &with_body {
            for (body, expected) in [
                ("{\"checks\": [", StatusCode::BAD_REQUEST),
                ("\"a string\"", StatusCode::BAD_REQUEST),
                (oversized.as_str(), StatusCode::PAYLOAD_TOO_LARGE),
            ] {
                let r = api.raw(method.clone(), uri, Some(WRITE), body).await;
                let ok = r.status == expected
                    // a campaign that does not exist may be named before the body is read
                    || (r.status == StatusCode::NOT_FOUND && uri.ends_with("/nope"));
                assert!(
                    ok,
                    "{method} {uri} with {body:.20}: {} {}",
                    r.status, r.body
                );
                assert_eq!(r.body["response"]["statusCode"], r.status.as_u16());
                assert!(
                    !r.body["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .is_empty()
                );
            }
        }
        for (method, uri) in &unknown {
            let r = api.raw(method.clone(), uri, Some(WRITE), "").await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {uri}: {}",
                r.body
            );
            assert_eq!(r.body["error"]["name"], "NotFoundError");
        }
        assert_eq!(fingerprint(&api).await, before, "{}", api.backend.name);
    }
}
