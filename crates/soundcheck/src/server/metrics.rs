//! Prometheus metrics: request counts and latency per route, plus gauges read at scrape time
//! (entities, subscriber lag). Evaluation and fact counters are recorded where they happen.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::service::App;

/// The process-wide recorder (installed on first use).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Installs the recorder; call once at start so early counters are kept.
pub fn install() {
    let _ = handle();
}

/// Counts requests and their latency by method, route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("soundcheck_http_requests_total", &labels).increment(1);
    metrics::histogram!("soundcheck_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(State(app): State<Arc<App>>) -> Response {
    metrics::gauge!("soundcheck_entities").set(app.entities().len() as f64);
    if let Some(events) = app.events() {
        match events.subscribers().await {
            Ok(subscribers) => {
                for s in subscribers {
                    metrics::gauge!("soundcheck_events_subscriber_lag", "subscriber" => s.id.clone())
                        .set(s.lag as f64);
                    metrics::gauge!("soundcheck_events_subscriber_cursor", "subscriber" => s.id)
                        .set(s.cursor as f64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read subscriber positions for metrics"),
        }
    }
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
