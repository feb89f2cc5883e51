//! `/checks`: definitions, execution, aggregate status and history, entities of a check.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{filter_of, incoming};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, Params};
use crate::service::views::{CheckStatus, CheckStatusHistory};
use crate::service::{App, Family, definition_json};

/// `{checks: Check[]}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChecksBody {
    /// Check definitions, shaped like the YAML ones.
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<Value>,
}

/// `POST /checks/execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteBody {
    /// Checks to execute (all when absent).
    #[serde(default)]
    pub check_ids: Option<Vec<String>>,
    /// Entities to execute them for.
    #[serde(default)]
    pub entity_refs: Vec<String>,
    /// Or every entity matching this filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

/// `{filter?}` for filtered aggregates.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusBody {
    /// Only entities matching this filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Days of history (status-history only).
    #[serde(default)]
    pub number_of_days: Option<i64>,
}

/// `POST /checks/entities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckEntitiesBody {
    /// The check.
    pub check_id: String,
    /// Only entities of this track.
    #[serde(default)]
    pub track_id: Option<String>,
    /// Only these states (`passed`, …, `exempt`, `not-reported`).
    #[serde(default)]
    pub states: Vec<String>,
    /// Only entities matching this filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity_filter: Option<Value>,
    /// Page size (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Rows to skip.
    #[serde(default)]
    pub offset: Option<usize>,
}

/// Every check, from config files and the API.
#[utoipa::path(get, path = "/api/soundcheck/checks", tag = "Checks", operation_id = "getChecks",
    responses((status = 200, description = "`{checks: Check[]}`", body = Object)))]
pub async fn list(State(app): State<Arc<App>>) -> Json<Value> {
    let defs = app.definitions();
    Json(json!({ "checks": defs.config.checks }))
}

/// One check.
#[utoipa::path(get, path = "/api/soundcheck/checks/{checkId}", tag = "Checks", operation_id = "getCheck",
    params(("checkId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let defs = app.definitions();
    definition_json(&defs, Family::Checks, &id)
        .map(|c| Json(json!({ "check": c })))
        .ok_or_else(|| ApiError::not_found(format!("check `{id}` not found")))
}

/// Creates checks (stored in the database; config-file checks are read-only).
#[utoipa::path(post, path = "/api/soundcheck/checks", tag = "Checks", operation_id = "createChecks",
    request_body = ChecksBody, responses((status = 201, body = Object), (status = 400, body = Object), (status = 409, body = Object)))]
pub async fn create(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<ChecksBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let items = incoming(&body.checks, "/checks")?;
    let created = app.put_definitions(Family::Checks, items, false).await?;
    Ok((StatusCode::CREATED, Json(json!({ "checks": created }))))
}

/// Replaces an API-created check.
#[utoipa::path(put, path = "/api/soundcheck/checks/{checkId}", tag = "Checks", operation_id = "updateCheck",
    params(("checkId" = String, Path)), request_body = Object, responses((status = 200, body = Object), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let item = super::incoming_one(body, &id)?;
    let updated = app
        .put_definitions(Family::Checks, vec![item], true)
        .await?;
    Ok(Json(json!({ "check": updated.into_iter().next() })))
}

/// Deletes an API-created check and its results (`deleteHistory=true`: its history too).
#[utoipa::path(delete, path = "/api/soundcheck/checks/{checkId}", tag = "Checks", operation_id = "deleteCheck",
    params(("checkId" = String, Path), ("deleteHistory" = Option<String>, Query)), responses((status = 204), (status = 403, body = Object), (status = 404, body = Object), (status = 409, body = Object)))]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<StatusCode> {
    let history = params.flag("deleteHistory")?;
    app.delete_check(&id, history).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Executes checks for entities (or a filter) from their stored facts; `dryRun` stores nothing.
#[utoipa::path(post, path = "/api/soundcheck/checks/execute", tag = "Checks", operation_id = "executeChecks",
    params(("dryRun" = Option<String>, Query)), request_body = ExecuteBody, responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn execute(
    State(app): State<Arc<App>>,
    params: Params,
    ApiJson(body): ApiJson<ExecuteBody>,
) -> ApiResult<Json<Value>> {
    let dry_run = params.flag("dryRun")?;
    let mut entities = body
        .entity_refs
        .iter()
        .enumerate()
        .map(|(i, e)| crate::service::entity_ref(e, &format!("/entityRefs/{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(f) = &body.filter {
        let filter = filter_of(f, "/filter")?;
        entities.extend(
            app.entities()
                .iter()
                .filter(|(_, b)| filter.admits(b))
                .map(|(r, _)| r.clone()),
        );
    }
    if entities.is_empty() {
        return Err(ApiError::invalid(
            "give `entityRefs` or a `filter` that matches at least one entity",
        ));
    }
    let executed = app
        .execute(body.check_ids.as_deref(), &entities, dry_run)
        .await?;
    let results: Vec<Value> = executed
        .into_iter()
        .filter_map(|e| {
            Some(json!({"entityRef": e.entity_ref, "checkId": e.check_id, "state": e.state?.as_str(), "scope": e.scope}))
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// The aggregate status of a check.
#[utoipa::path(get, path = "/api/soundcheck/checks/{checkId}/status", tag = "Checks", operation_id = "getCheckStatus",
    params(("checkId" = String, Path)), responses((status = 200, body = CheckStatus), (status = 404, body = Object)))]
pub async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<Json<CheckStatus>> {
    Ok(Json(app.check_status(&id, None).await?))
}

/// The aggregate status of a check over entities matching a filter.
#[utoipa::path(post, path = "/api/soundcheck/checks/{checkId}/status", tag = "Checks", operation_id = "getCheckStatusWithFilter",
    params(("checkId" = String, Path)), request_body = StatusBody, responses((status = 200, body = CheckStatus), (status = 404, body = Object)))]
pub async fn status_filtered(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Json<CheckStatus>> {
    let filter = body
        .filter
        .as_ref()
        .map(|f| filter_of(f, "/filter"))
        .transpose()?;
    Ok(Json(app.check_status(&id, filter.as_ref()).await?))
}

/// Daily counts of a check.
#[utoipa::path(get, path = "/api/soundcheck/checks/{checkId}/status-history", tag = "Checks", operation_id = "getCheckStatusHistory",
    params(("checkId" = String, Path), ("numberOfDays" = Option<i64>, Query)), responses((status = 200, body = CheckStatusHistory), (status = 404, body = Object)))]
pub async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<CheckStatusHistory>> {
    let days = params.int("numberOfDays", 1, 366, 30)?;
    Ok(Json(app.check_history(&id, days, None).await?))
}

/// Daily counts of a check over entities matching a filter.
#[utoipa::path(post, path = "/api/soundcheck/checks/{checkId}/status-history", tag = "Checks", operation_id = "getCheckStatusHistoryWithFilter",
    params(("checkId" = String, Path)), request_body = StatusBody, responses((status = 200, body = CheckStatusHistory), (status = 404, body = Object)))]
pub async fn history_filtered(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Json<CheckStatusHistory>> {
    let filter = body
        .filter
        .as_ref()
        .map(|f| filter_of(f, "/filter"))
        .transpose()?;
    let days = super::days(body.number_of_days)?;
    Ok(Json(app.check_history(&id, days, filter.as_ref()).await?))
}

/// The entities a check applies to, with their states, one page at a time.
#[utoipa::path(post, path = "/api/soundcheck/checks/entities", tag = "Checks", operation_id = "getCheckEntities",
    request_body = CheckEntitiesBody, responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn entities(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CheckEntitiesBody>,
) -> ApiResult<Json<Value>> {
    let filter = body
        .entity_filter
        .as_ref()
        .map(|f| filter_of(f, "/entityFilter"))
        .transpose()?;
    let limit = body.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "/limit: must be from 1 to 1000, found {limit}"
        )));
    }
    let (page, total) = app
        .check_entities(
            &body.check_id,
            body.track_id.as_deref(),
            &body.states,
            filter.as_ref(),
            limit,
            body.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(json!({ "entities": page, "totalCount": total })))
}
