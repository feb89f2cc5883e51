//! `/results`, `/certifications`, `/certify_world` and `/facts`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::subject;
use crate::server::auth::Caller;
use crate::server::error::ApiResult;
use crate::server::extract::{ApiJson, Params};
use crate::service::App;
use crate::service::views::{Certification, CheckResultView};

/// `POST /results`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitResultsBody {
    /// `{entityRef, checkId, state, details?, scope?, justification?}` items.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Value>,
    /// An `error` never replaces an earlier non-error state.
    #[serde(default)]
    pub preserve_state_on_error: bool,
}

/// `POST /facts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactsBody {
    /// `{factRef, entityRef, data, timestamp?, scope?}` items.
    #[schema(value_type = Vec<Object>)]
    pub facts: Vec<Value>,
    /// Accepted for compatibility; facts are always stored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub cache: Option<Value>,
}

/// `POST /certify_world`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertifyWorldBody {
    /// The scope (default `default`).
    #[serde(default)]
    pub scope: Option<String>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub number_of_days: Option<i64>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub batch_size: Option<i64>,
    /// Accepted for compatibility; every track is certified.
    #[serde(default)]
    pub track_id: Option<String>,
}

/// Results of one entity.
#[utoipa::path(get, path = "/api/soundcheck/results", tag = "CheckResults", operation_id = "getResults",
    params(("entityRef" = String, Query), ("scope" = Option<String>, Query), ("checks" = Option<Vec<String>>, Query)),
    responses((status = 200, body = Object), (status = 400, body = Object)))]
pub async fn get(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    let results: Vec<CheckResultView> = app
        .results(
            params.required("entityRef")?,
            params.get("scope"),
            &params.all("checks"),
        )
        .await?;
    Ok(Json(json!({ "results": results })))
}

/// Submits results of external and manual checks.
#[utoipa::path(post, path = "/api/soundcheck/results", tag = "CheckResults", operation_id = "submitResults",
    params(("returnUpdatedResults" = Option<bool>, Query)), request_body = SubmitResultsBody,
    responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn submit(
    State(app): State<Arc<App>>,
    caller: Option<axum::Extension<Caller>>,
    params: Params,
    ApiJson(body): ApiJson<SubmitResultsBody>,
) -> ApiResult<Json<Value>> {
    let return_updated = params.flag("returnUpdatedResults")?;
    let by = subject(&caller);
    let (submitted, outcome) = app
        .submit_results(&body.results, "/results", body.preserve_state_on_error, &by)
        .await?;
    let status = format!(
        "{} result(s) stored: {} changed state, {} kept their state, {} certification level(s) changed",
        submitted.len(),
        outcome.result_changes,
        outcome.kept,
        outcome.certification_changes
    );
    if !return_updated {
        return Ok(Json(json!({ "status": status })));
    }
    let mut results = Vec::new();
    for s in &submitted {
        let check = s.check_id.clone();
        results.extend(app.results(&s.entity_ref, Some(&s.scope), &[check]).await?);
    }
    Ok(Json(json!({ "status": status, "results": results })))
}

/// Deletes results of one entity.
#[utoipa::path(delete, path = "/api/soundcheck/results", tag = "CheckResults", operation_id = "deleteResults",
    params(("entityRef" = String, Query), ("scope" = Option<String>, Query), ("checks" = Option<Vec<String>>, Query)),
    responses((status = 200, body = Object), (status = 400, body = Object)))]
pub async fn delete(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    let n = app
        .delete_results(
            params.required("entityRef")?,
            params.get("scope"),
            &params.all("checks"),
        )
        .await?;
    Ok(Json(json!({ "status": format!("{n} result(s) deleted") })))
}

/// Certifications of one entity.
#[utoipa::path(get, path = "/api/soundcheck/certifications", tag = "Certification", operation_id = "getCertifications",
    params(("entityRef" = String, Query), ("trackId" = Option<String>, Query), ("includeFilteredChecks" = Option<bool>, Query)),
    responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn certifications(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    let certifications: Vec<Certification> = app
        .certifications(
            params.required("entityRef")?,
            params.get("trackId"),
            params.flag("includeFilteredChecks")?,
        )
        .await?;
    Ok(Json(json!({ "certifications": certifications })))
}

/// Re-evaluates and re-certifies every entity.
#[utoipa::path(post, path = "/api/soundcheck/certify_world", tag = "Certification", operation_id = "certifyWorld",
    request_body = CertifyWorldBody, responses((status = 200, body = Object), (status = 400, body = Object)))]
pub async fn certify_world(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let body: CertifyWorldBody = if body.iter().all(u8::is_ascii_whitespace) {
        CertifyWorldBody::default()
    } else {
        crate::server::extract::parse_json(&body)?
    };
    let scope = body.scope.as_deref().unwrap_or("default");
    let o = app.certify_world(scope).await?;
    Ok(Json(json!({ "status": format!(
        "certified {} entities: {} result change(s), {} certification change(s)",
        o.entities, o.result_changes, o.certification_changes
    ) })))
}

/// Submits facts; they are stored and evaluated before the answer.
#[utoipa::path(post, path = "/api/soundcheck/facts", tag = "Facts", operation_id = "submitFacts",
    request_body = FactsBody, responses((status = 200, body = Object), (status = 400, body = Object)))]
pub async fn submit_facts(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<FactsBody>,
) -> ApiResult<Json<Value>> {
    let (echo, _) = app.submit_facts(&body.facts, "/facts").await?;
    let facts: Vec<Value> = echo
        .into_iter()
        .map(|(f, e)| json!({"factRef": f, "entityRef": e}))
        .collect();
    Ok(Json(json!({ "facts": facts })))
}
