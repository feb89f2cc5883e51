//! The webhook sink against local receivers: signed envelopes, retries after 500s and
//! timeouts, dead letters, and a receiver that is down for a while then comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use soundcheck::service::App;
use soundcheck::store::FactRecord;

use crate::backends;
use crate::helpers::example_app;

const SECRET: &str = "whsec_c291bmRjaGVjay10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5";

/// What a receiver got: (webhook-id, timestamp, signature, body).
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A receiver on `listener` that answers 500 to the first `failures` requests and sleeps
/// `slow_first` before answering the very first one.
async fn receiver(
    listener: tokio::net::TcpListener,
    failures: usize,
    slow_first: Duration,
) -> Received {
    let got: Received = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (sink, calls) = (Arc::clone(&sink), Arc::clone(&calls));
            async move {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n == 0 && !slow_first.is_zero() {
                    tokio::time::sleep(slow_first).await;
                }
                if n < failures {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                sink.lock().unwrap().push((
                    h("webhook-id"),
                    h("webhook-timestamp"),
                    h("webhook-signature"),
                    body,
                ));
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

/// The example app with a webhook sink (and a second one that always fails).
async fn app_with_hooks(url: &str, dead_url: &str, db: &str) -> Arc<App> {
    example_app(
        &format!(
            "soundcheck:\n  events:\n    delivery: {{ pollIntervalMs: 50 }}\n    sinks:\n      webhooks:\n        - {{ id: ci, url: \"{url}\", secret: \"{SECRET}\", timeoutMs: 300, retry: {{ maxAttempts: 20, initialBackoffMs: 20, maxBackoffMs: 200 }} }}\n        - {{ id: dead, url: \"{dead_url}\", topics: [soundcheck-check-status-change], retry: {{ maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 5 }} }}\n"
        ),
        db,
    )
    .await
}

fn ci_fact(entity: &str, passing: bool, n: i64) -> FactRecord {
    FactRecord {
        entity_ref: entity.to_string(),
        fact_ref: "ci:default/pipeline".to_string(),
        scope: "default".to_string(),
        data: json!({"passing": passing, "duration_seconds": 100}),
        timestamp_ms: 1_900_000_000_000 + n,
    }
}

async fn wait_for(got: &Received, n: usize) -> Vec<(String, String, String, String)> {
    for _ in 0..400 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn webhooks_get_signed_envelopes_through_500s_timeouts_and_downtime() {
    for b in backends::all().await {
        // The receiver is down at first: the port is reserved and refuses connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        let _dead_receiver = receiver(dead, usize::MAX, Duration::ZERO).await;
        let app = app_with_hooks(
            &format!("http://{addr}/hook"),
            &format!("http://{dead_addr}/hook"),
            &b.url,
        )
        .await;
        // Three changes of one check while the receiver is down.
        let entity = "component:default/payments-api";
        for (n, passing) in [false, true, false].into_iter().enumerate() {
            app.live()
                .submit_facts(vec![ci_fact(entity, passing, n as i64)])
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // It comes back slow (first answer after the 300 ms timeout) and failing twice.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let got = receiver(listener, 2, Duration::from_millis(600)).await;
        let expected = {
            use soundcheck::store::StateStore;
            b.store.events_after(0, 100_000).await.unwrap()
        };
        let received = wait_for(&got, expected.len()).await;
        assert_eq!(
            received.len(),
            expected.len(),
            "{}: every event arrives",
            b.name
        );
        let ids: std::collections::HashSet<&str> = received.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(ids.len(), received.len(), "{}: none twice", b.name);
        let key = base64::engine::general_purpose::STANDARD
            .decode(SECRET.trim_start_matches("whsec_"))
            .unwrap();
        let mut states = Vec::new();
        for (id, ts, signature, body) in &received {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(format!("{id}.{ts}.{body}").as_bytes());
            let want = format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            );
            assert_eq!(signature, &want, "{}: signature", b.name);
            let envelope: Value = serde_json::from_str(body).unwrap();
            assert_eq!(envelope["metadata"]["eventId"], id.as_str());
            if envelope["topic"] == "soundcheck-check-status-change"
                && envelope["eventPayload"]["checkId"] == "ci-passing"
                && envelope["eventPayload"]["entityRef"] == entity
            {
                states.push(
                    envelope["eventPayload"]["state"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
        assert_eq!(states.last().map(String::as_str), Some("failed"));
        assert!(
            states.ends_with(&["failed".into(), "passed".into(), "failed".into()]),
            "{}: in order per key: {states:?}",
            b.name
        );
        // The endpoint that always fails parks what it could not deliver.
        let events = app.events().unwrap();
        let mut dead_events = Vec::new();
        for _ in 0..200 {
            dead_events = events.dead_events("webhook:dead").await.unwrap();
            if !dead_events.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(!dead_events.is_empty(), "{}", b.name);
        assert!(
            dead_events[0].last_error.contains("500"),
            "{}",
            dead_events[0].last_error
        );
        app.shutdown().await;
    }
}

/// The number of messages in a JetStream stream.
async fn stream_messages(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    let mut stream = js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn nats_gets_every_event_once_with_its_id_even_when_delivered_again() {
    let Ok(url) = std::env::var("SOUNDCHECK_TEST_NATS_URL") else {
        eprintln!("SOUNDCHECK_TEST_NATS_URL is not set: the NATS sink test is skipped");
        return;
    };
    let b = backends::sqlite().await;
    let name = format!("SCTEST{}", uuid::Uuid::now_v7().simple());
    let prefix = format!("sctest{}", uuid::Uuid::now_v7().simple());
    let extra = format!(
        "soundcheck:\n  events:\n    delivery: {{ pollIntervalMs: 50 }}\n    sinks:\n      nats: {{ url: \"{url}\", stream: {name}, subjectPrefix: {prefix} }}\n"
    );
    let start = || example_app(&extra, &b.url);
    let app = start().await;
    app.live()
        .submit_facts(vec![ci_fact("component:default/payments-api", false, 0)])
        .await
        .unwrap();
    let expected = {
        use soundcheck::store::StateStore;
        b.store.events_after(0, 100_000).await.unwrap()
    };
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    for _ in 0..400 {
        if stream_messages(&js, &name).await >= expected.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        stream_messages(&js, &name).await,
        expected.len() as u64,
        "every event once"
    );
    let stream = js.get_stream(&name).await.unwrap();
    let first = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        first.subject.as_str(),
        format!("{prefix}.{}", expected[0].params.topic)
    );
    let envelope: Value = serde_json::from_slice(&first.payload).unwrap();
    let msg_id = first
        .headers
        .get("Nats-Msg-Id")
        .map(|v| v.as_str().to_string());
    assert_eq!(msg_id.as_deref(), expected[0].params.event_id());
    assert_eq!(
        envelope["metadata"]["eventId"].as_str(),
        expected[0].params.event_id()
    );
    // The service restarts on the same database and, as if its cursor had been lost, delivers
    // everything again from the start: the stream recognises every message id and stores
    // nothing twice.
    app.shutdown().await;
    let app = start().await;
    let events = app.events().unwrap();
    events.reset_cursor("nats", 0).await.unwrap();
    // Then new changes: delivery is in order, so once their events are in the stream every
    // old one has been delivered again and recognised as a duplicate.
    app.live()
        .submit_facts(vec![ci_fact("component:default/payments-api", true, 1)])
        .await
        .unwrap();
    let total = {
        use soundcheck::store::StateStore;
        b.store.events_after(0, 100_000).await.unwrap().len() as u64
    };
    assert!(total > expected.len() as u64);
    for _ in 0..400 {
        if stream_messages(&js, &name).await >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        stream_messages(&js, &name).await,
        total,
        "every event once, none twice"
    );
    js.delete_stream(&name).await.unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn subscribers_are_listed_and_dead_events_replayed_through_the_api() {
    use crate::api_harness::{Api, WRITE};
    use axum::http::Method;
    use soundcheck::events::{DeliverySettings, HandlerError, StartAt, SubscribeOptions, handler};
    use std::sync::atomic::{AtomicBool, Ordering};
    for b in backends::all().await {
        let api = Api::example(b).await;
        let healthy = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&healthy);
        let settings = DeliverySettings {
            max_attempts: 1,
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        };
        api.app
            .events()
            .unwrap()
            .subscribe_with(
                SubscribeOptions {
                    id: "flaky".into(),
                    topics: vec!["soundcheck-check-status-change".into()],
                    on_event: handler(move |_| {
                        let ok = flag.load(Ordering::SeqCst);
                        async move {
                            if ok {
                                Ok(())
                            } else {
                                Err(HandlerError::from("receiver down"))
                            }
                        }
                    }),
                    start: StartAt::Latest,
                },
                settings,
            )
            .await
            .unwrap();
        let listed = api.get("/api/soundcheck/events/subscribers").await;
        assert!(
            listed.body["subscribers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == "flaky"),
            "{}",
            listed.body
        );
        let fact = json!({"facts": [{"factRef": "ci:default/pipeline", "entityRef": "component:default/payments-api", "data": {"passing": false}}]});
        assert_eq!(
            api.send(Method::POST, "/api/soundcheck/facts", fact)
                .await
                .status,
            StatusCode::OK
        );
        let mut dead = Value::Null;
        for _ in 0..200 {
            dead = api
                .get("/api/soundcheck/events/subscribers/flaky/dead")
                .await
                .body;
            // Done when every event is handled (no lag), so the parked list is complete.
            let subscribers = api.get("/api/soundcheck/events/subscribers").await.body;
            let caught_up = subscribers["subscribers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == "flaky" && x["lag"] == 0);
            if caught_up && dead["deadEvents"].as_array().is_some_and(|d| !d.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let parked = dead["deadEvents"].as_array().unwrap().len();
        assert!(parked >= 1, "{}: {dead}", api.backend.name);
        assert_eq!(dead["deadEvents"][0]["lastError"], "receiver down");
        healthy.store(true, Ordering::SeqCst);
        let replay = api
            .send(
                Method::POST,
                "/api/soundcheck/events/subscribers/flaky/replay",
                json!({}),
            )
            .await;
        // Everything parked so far is delivered (a second event of the same change may have
        // been parked after the list above was read).
        let delivered = replay.body["delivered"].as_u64().unwrap_or(0);
        assert!(delivered >= parked as u64, "{} {dead}", replay.body);
        assert_eq!(replay.body["failed"], 0, "{}", replay.body);
        assert_eq!(
            api.get("/api/soundcheck/events/subscribers/flaky/dead")
                .await
                .body["deadEvents"],
            json!([])
        );
        let reset = api
            .send(
                Method::POST,
                "/api/soundcheck/events/subscribers/flaky/reset",
                json!({"after": 0}),
            )
            .await;
        assert_eq!(reset.status, StatusCode::OK);
        // The reset woke the dispatchers without hiding later commits from them: the
        // committed position is still the outbox's newest event.
        let events = api.app.events().unwrap();
        let newest = {
            use soundcheck::store::StateStore;
            events
                .store()
                .events_after(0, 1_000_000)
                .await
                .unwrap()
                .last()
                .map_or(0, |e| e.seq)
        };
        assert_eq!(*events.committed().borrow(), newest);
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/events/subscribers/flaky/reset",
                json!({"after": -1})
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            api.send(
                Method::POST,
                "/api/soundcheck/events/subscribers/nope/replay",
                json!({})
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        let _ = WRITE;
        api.app.shutdown().await;
    }
}
