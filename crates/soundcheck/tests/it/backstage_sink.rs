//! The Backstage sink through the real dispatcher against a stand-in for Backstage's events
//! backend, for the answers a healthy Backstage seldom gives: 204s before any subscription
//! exists (retried with `requireSubscriber`), a refused token (parked with a clear error).
//! The real backend is driven by interop/backstage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use soundcheck::service::App;

use crate::backends;
use crate::helpers::example_app;

const TOKEN: &str = "tok-0123456789";

/// What the stand-in saw.
#[derive(Default)]
struct Seen {
    /// Bus requests with the right token, stored or not.
    bus_calls: usize,
    /// `event` objects of the bus requests answered 201.
    bus: Vec<Value>,
    /// `(topic, x-soundcheck-event-id, body)` of HTTP ingress requests.
    http: Vec<(String, String, Value)>,
}

type Shared = Arc<Mutex<Seen>>;

/// Answers 204 (no subscription) to the first `unsubscribed` authorised bus requests.
async fn fake_backstage(listener: tokio::net::TcpListener, unsubscribed: usize) -> Shared {
    let seen = Shared::default();
    let bus = move |State(seen): State<Shared>, headers: HeaderMap, body: axum::Json<Value>| async move {
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
        {
            let error =
                json!({"error": {"name": "AuthenticationError", "message": "Illegal token"}});
            return (StatusCode::UNAUTHORIZED, axum::Json(error));
        }
        let mut seen = seen.lock().unwrap();
        seen.bus_calls += 1;
        if seen.bus_calls <= unsubscribed {
            return (StatusCode::NO_CONTENT, axum::Json(Value::Null));
        }
        seen.bus.push(body.0["event"].clone());
        (StatusCode::CREATED, axum::Json(Value::Null))
    };
    let http = |State(seen): State<Shared>,
                Path(topic): Path<String>,
                headers: HeaderMap,
                body: axum::Json<Value>| async move {
        let id = headers
            .get("x-soundcheck-event-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        seen.lock().unwrap().http.push((topic, id, body.0));
        (
            StatusCode::ACCEPTED,
            axum::Json(json!({"status": "accepted"})),
        )
    };
    let app = axum::Router::new()
        .route("/api/events/bus/v1/events", axum::routing::post(bus))
        .route("/api/events/http/{topic}", axum::routing::post(http))
        .with_state(Arc::clone(&seen));
    tokio::spawn(async move { axum::serve(listener, app).await });
    seen
}

async fn app_with_sinks(base_url: &str, db: &str) -> Arc<App> {
    let retry = "{ maxAttempts: 50, initialBackoffMs: 5, maxBackoffMs: 20 }";
    example_app(
        &format!(
            "soundcheck:\n  events:\n    delivery: {{ pollIntervalMs: 50 }}\n    sinks:\n      backstage:\n        - {{ id: bus, baseUrl: '{base_url}', token: {TOKEN}, requireSubscriber: true, retry: {retry} }}\n        - {{ id: ingress, baseUrl: '{base_url}/', route: http, retry: {retry} }}\n        - {{ id: wrong, baseUrl: '{base_url}', token: wrong-token-0123, topics: [soundcheck-certification-change], retry: {{ maxAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 5 }} }}\n"
        ),
        db,
    )
    .await
}

#[tokio::test]
async fn backstage_sink_retries_until_subscribed_and_parks_a_refused_token() {
    let b = backends::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let seen = fake_backstage(listener, 3).await;
    let app = app_with_sinks(&base_url, &b.url).await;
    let expected = {
        use soundcheck::store::StateStore;
        b.store.events_after(0, 100_000).await.unwrap()
    };
    assert!(!expected.is_empty());
    for _ in 0..400 {
        {
            let s = seen.lock().unwrap();
            if s.bus.len() >= expected.len() && s.http.len() >= expected.len() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (bus_calls, bus, http) = {
        let s = seen.lock().unwrap();
        (s.bus_calls, s.bus.clone(), s.http.clone())
    };
    // The bus: the first three answers were 204 and were retried; then every event once, in
    // order, as `{topic, payload}`.
    assert_eq!(bus_calls, expected.len() + 3);
    let want_bus: Vec<Value> = expected
        .iter()
        .map(|e| json!({"topic": e.params.topic, "payload": e.params.event_payload}))
        .collect();
    assert_eq!(bus, want_bus);
    // HTTP ingress: the payload as the body, the topic in the path, the id as a header.
    let want_http: Vec<(String, String, Value)> = expected
        .iter()
        .map(|e| {
            (
                e.params.topic.clone(),
                e.params.event_id().unwrap_or_default().to_string(),
                e.params.event_payload.clone(),
            )
        })
        .collect();
    assert_eq!(http, want_http);
    // A refused token parks the events with an error that says what to fix.
    let events = app.events().unwrap();
    let mut dead = Vec::new();
    for _ in 0..200 {
        dead = events.dead_events("backstage:wrong").await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!dead.is_empty());
    assert!(
        dead[0]
            .last_error
            .contains("refused the sink's token (401 Unauthorized)")
            && dead[0].last_error.contains("Illegal token"),
        "{}",
        dead[0].last_error
    );
    app.shutdown().await;
}
