//! The one API error type, rendered in Backstage's shape
//! `{error: {name, message}, request: {method, url}, response: {statusCode}}`. Errors produced
//! outside handlers (unknown routes, wrong methods, oversized bodies) are rewritten into the
//! same shape by [`backstage_errors`].

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::ServiceError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400: the request is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 401: no or unknown token.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
    }

    /// 403: the token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }
}

/// Backstage's error name for a status.
fn error_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "InputError",
        401 => "AuthenticationError",
        403 => "NotAllowedError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        409 => "ConflictError",
        413 => "PayloadTooLargeError",
        415 => "UnsupportedMediaTypeError",
        503 => "ServiceUnavailableError",
        _ => "Error",
    }
}

/// Marks a response whose body is already in the Backstage shape, apart from `request`.
#[derive(Debug, Clone)]
struct Rendered(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({
                "error": {"name": error_name(self.status), "message": self.message},
                "request": {"method": "", "url": ""},
                "response": {"statusCode": self.status.as_u16()},
            })),
        )
            .into_response();
        response.extensions_mut().insert(Rendered(self.message));
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let ServiceError::Store(inner) = &e {
            // The detail (SQL, constraint names) stays in the log.
            let reference = uuid::Uuid::now_v7();
            tracing::error!(error = %inner, %reference, "store error while handling a request");
            return Self {
                status,
                message: format!("internal error (reference {reference}); see the service log"),
            };
        }
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e).into()
    }
}

/// Gives every error response (ours and axum's) the Backstage shape with the request's method
/// and URL filled in.
pub async fn backstage_errors(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let url = request.uri().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json && response.extensions().get::<Rendered>().is_none() {
        // A handler's own JSON answer (`/readyz`): keep it.
        return response;
    }
    let message = match response.extensions().get::<Rendered>() {
        Some(Rendered(m)) => m.clone(),
        None => {
            let (_, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_string()
            } else {
                text
            }
        }
    };
    let body = json!({
        "error": {"name": error_name(status), "message": message},
        "request": {"method": method, "url": url},
        "response": {"statusCode": status.as_u16()},
    });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| status.into_response())
}
