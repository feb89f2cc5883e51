//! `/checks/exemptions`: list, create, revoke, restore, list revoked.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::subject;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, Params};
use crate::service::{App, ExemptionFilter};

/// `POST /checks/exemptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateExemptionBody {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// Why.
    pub justification: String,
    /// Optional expiry (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /checks/exemptions/revoke` and `/restore`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExemptionPairBody {
    /// The check.
    pub check_id: String,
    /// The entity.
    pub entity_ref: String,
    /// Why (revoke only).
    #[serde(default)]
    pub reason: Option<String>,
}

fn filter_from(params: &Params, revoked: bool) -> ApiResult<ExemptionFilter> {
    let filtered = params.get("checkId").is_some() || params.get("trackId").is_some();
    Ok(ExemptionFilter {
        check_id: params.get("checkId").map(str::to_string),
        track_id: params.get("trackId").map(str::to_string),
        entity_ref: params.get("entityRef").map(str::to_string),
        revoked,
        // api.md #11: paging applies only when neither checkId nor trackId is given.
        limit: if filtered {
            i64::MAX
        } else {
            params.int("limit", 1, 100, 25)?
        },
        offset: if filtered {
            0
        } else {
            params.int("offset", 0, i64::MAX, 0)?
        },
    })
}

/// Active exemptions (by check, by track, or all, paged).
#[utoipa::path(get, path = "/api/soundcheck/checks/exemptions", tag = "Checks", operation_id = "getExemptions",
    params(("checkId" = Option<String>, Query), ("trackId" = Option<String>, Query), ("entityRef" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object), (status = 400, body = Object)))]
pub async fn list(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    let (exemptions, total) = app.exemptions(filter_from(&params, false)?).await?;
    Ok(Json(
        json!({ "exemptions": exemptions, "totalCount": total }),
    ))
}

/// Revoked exemptions.
#[utoipa::path(get, path = "/api/soundcheck/checks/exemptions/revoked", tag = "Checks", operation_id = "getRevokedExemptions",
    params(("checkId" = Option<String>, Query), ("trackId" = Option<String>, Query), ("entityRef" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Object)))]
pub async fn revoked(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    let (exemptions, total) = app.exemptions(filter_from(&params, true)?).await?;
    Ok(Json(
        json!({ "exemptions": exemptions, "totalCount": total }),
    ))
}

/// Creates an exemption.
#[utoipa::path(post, path = "/api/soundcheck/checks/exemptions", tag = "Checks", operation_id = "createExemption",
    request_body = CreateExemptionBody, responses((status = 201, body = Object), (status = 400, body = Object), (status = 404, body = Object), (status = 409, body = Object)))]
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
    ApiJson(body): ApiJson<CreateExemptionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let expires = body
        .expires_at
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| {
                    ApiError::invalid(format!("/expiresAt: expected an RFC 3339 date-time ({e})"))
                })
        })
        .transpose()?;
    let by = subject(&caller);
    let exemption = app
        .create_exemption(
            &body.check_id,
            &body.entity_ref,
            &body.justification,
            expires,
            &by,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "exemption": exemption }))))
}

/// Revokes an active exemption (kept for audit).
#[utoipa::path(post, path = "/api/soundcheck/checks/exemptions/revoke", tag = "Checks", operation_id = "revokeExemption",
    request_body = ExemptionPairBody, responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn revoke(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
    ApiJson(body): ApiJson<ExemptionPairBody>,
) -> ApiResult<Json<Value>> {
    let by = subject(&caller);
    let exemption = app
        .revoke_exemption(
            &body.check_id,
            &body.entity_ref,
            body.reason.as_deref(),
            &by,
        )
        .await?;
    Ok(Json(json!({ "exemption": exemption })))
}

/// Restores a revoked exemption.
#[utoipa::path(post, path = "/api/soundcheck/checks/exemptions/restore", tag = "Checks", operation_id = "restoreExemption",
    request_body = ExemptionPairBody, responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn restore(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<ExemptionPairBody>,
) -> ApiResult<Json<Value>> {
    let exemption = app
        .restore_exemption(&body.check_id, &body.entity_ref)
        .await?;
    Ok(Json(json!({ "exemption": exemption })))
}
