//! The service under test: the bundled example (config, catalog, facts) loaded into a fresh
//! database of each backend, and requests sent through the real router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use soundcheck::server::{self, HttpSettings, auth::Auth};
use soundcheck::service::{App, AppOptions, CatalogSource};
use soundcheck_core::model::{Access, ApiToken};
use tower::ServiceExt;

use crate::backends::Backend;
use crate::helpers::repo;

pub const WRITE: &str = "test-write-token-0123456789";
pub const READ: &str = "test-read-token-0123456789";

/// A running app and its router.
pub struct Api {
    pub app: Arc<App>,
    pub router: Router,
    pub backend: Backend,
}

/// A response: status and JSON body (`Value::Null` when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Api {
    /// The bundled example on `backend`, settled (every entity evaluated).
    pub async fn example(backend: Backend) -> Self {
        Self::with_body_limit(backend, 64 * 1024).await
    }

    /// The same with a body limit.
    pub async fn with_body_limit(backend: Backend, body_limit_bytes: usize) -> Self {
        let root = repo();
        let loaded =
            soundcheck_core::config::load_files(&[root.join("examples/app-config.yaml")], &|_| {
                None
            })
            .expect("example config loads");
        let app = App::start(AppOptions {
            base: loaded.root,
            file_config: loaded.config,
            database_url: backend.url.clone(),
            catalog: Some(CatalogSource {
                files: vec![root.join("examples/catalog/catalog-info.yaml")],
                ..Default::default()
            }),
            facts_files: vec![root.join("examples/facts.jsonl")],
        })
        .await
        .expect("app starts");
        app.reevaluate_in_background().await;
        app.settled().await;
        let tokens = vec![
            ApiToken {
                token: WRITE.into(),
                subject: "user:default/writer".into(),
                access: Access::Write,
            },
            ApiToken {
                token: READ.into(),
                subject: "user:default/reader".into(),
                access: Access::Read,
            },
        ];
        let router = server::router(
            Arc::clone(&app),
            HttpSettings {
                auth: Auth::new(tokens, false, true),
                body_limit_bytes,
            },
        );
        Self {
            app,
            router,
            backend,
        }
    }

    /// Sends a request with a raw body and a token.
    pub async fn raw(&self, method: Method, uri: &str, token: Option<&str>, body: &str) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
    }

    /// GET with the read token.
    pub async fn get(&self, uri: &str) -> Reply {
        self.raw(Method::GET, uri, Some(READ), "").await
    }

    /// A write with the write token and a JSON body.
    pub async fn send(&self, method: Method, uri: &str, body: Value) -> Reply {
        self.raw(method, uri, Some(WRITE), &body.to_string()).await
    }
}

/// Replaces RFC 3339 times with `<time>` so bodies can be compared with golden files.
pub fn without_times(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() >= 20 && chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            Value::String("<time>".into())
        }
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A body as pretty JSON without times, for golden files.
pub fn golden_json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&without_times(value)).unwrap();
    text.push('\n');
    text
}
