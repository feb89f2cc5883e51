//! Bearer tokens from `soundcheck.server.auth.tokens`: each names a subject and grants read or
//! write access. Writes always need a write token; reads need a token unless
//! `allowAnonymousReads` is set and the server listens on loopback only. Tokens are compared
//! in constant time and never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use soundcheck_core::model::{Access, ApiToken};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who is calling: recorded as `submittedBy`, `userRef` and in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject, or `anonymous`.
    pub subject: String,
    /// What the caller may do.
    pub access: Access,
}

/// The accepted tokens and the anonymous-read rule.
#[derive(Debug, Clone)]
pub struct Auth {
    tokens: Arc<Vec<ApiToken>>,
    anonymous_reads: bool,
}

impl Auth {
    /// `anonymous_reads` is honoured only when `loopback_only`.
    pub fn new(tokens: Vec<ApiToken>, anonymous_reads: bool, loopback_only: bool) -> Self {
        if anonymous_reads && !loopback_only {
            tracing::warn!(
                "allowAnonymousReads is ignored: the server does not listen on loopback only"
            );
        }
        Self {
            tokens: Arc::new(tokens),
            anonymous_reads: anonymous_reads && loopback_only,
        }
    }

    fn find(&self, presented: &str) -> Option<&ApiToken> {
        self.tokens
            .iter()
            .find(|t| bool::from(t.token.as_bytes().ct_eq(presented.as_bytes())))
    }
}

/// POST routes that only read (filtered aggregates and entity lists).
fn is_read(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    method == Method::POST
        && (path.ends_with("/status")
            || path.ends_with("/status-history")
            || path.ends_with("/checks/entities")
            || path.ends_with("/campaigns/entities"))
}

/// Authenticates the request and stores the [`Caller`] in its extensions.
pub async fn authenticate(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let read = is_read(request.method(), request.uri().path());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().trim().to_string());
    let presented = match header.as_deref() {
        None => None,
        Some(h) => match h.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
            _ => {
                return ApiError::unauthenticated(
                    "only `Authorization: Bearer <token>` is accepted",
                )
                .into_response();
            }
        },
    };
    let caller = match presented {
        Some(token) => match auth.find(token) {
            Some(t) => Caller {
                subject: t.subject.clone(),
                access: t.access,
            },
            None => {
                return ApiError::unauthenticated("the bearer token is not valid").into_response();
            }
        },
        None if read && auth.anonymous_reads => Caller {
            subject: "anonymous".to_string(),
            access: Access::Read,
        },
        None => {
            return ApiError::unauthenticated(
                "this request needs a token: send `Authorization: Bearer <token>` with a token from soundcheck.server.auth.tokens",
            )
            .into_response();
        }
    };
    if !read && caller.access < Access::Write {
        return ApiError::forbidden(format!(
            "the token of `{}` grants read access only; this request needs write access",
            caller.subject
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}
