//! HTTP around the [`App`]: the REST API under `/api/soundcheck` (api.md), `/healthz`,
//! `/readyz`, `/metrics` and the OpenAPI document, with auth, body limits, Backstage-shaped
//! errors, request metrics and graceful shutdown.

pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::json;
use tokio::net::TcpListener;
use utoipa::OpenApi;

use crate::service::App;
use auth::Auth;

/// HTTP settings of the router.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Accepted tokens and the anonymous-read rule.
    pub auth: Auth,
    /// Largest request body.
    pub body_limit_bytes: usize,
}

/// The whole router.
pub fn router(app: Arc<App>, settings: HttpSettings) -> Router {
    let api = routes::api()
        .route("/openapi.json", get(openapi_json))
        .layer(middleware::from_fn_with_state(
            settings.auth.clone(),
            auth::authenticate,
        ));
    Router::new()
        .nest("/api/soundcheck", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn(error::backstage_errors))
        .with_state(app)
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("no such route")
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi::ApiDoc::openapi())
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers.
async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    if app.store().ping().await {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database unreachable" })),
        )
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
