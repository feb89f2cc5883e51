//! `/fact-collectors` (configurations) and `/facts/collect` (on-demand collection).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::ApiJson;
use crate::service::App;

/// One item of `POST /fact-collectors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectorItem {
    /// The collector id.
    pub collector_id: String,
    /// Its configuration, shaped like a `soundcheck.collectors.<id>` block.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// `PUT /fact-collectors/{collectorId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfigBody {
    /// The new configuration.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// `POST /facts/collect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectBody {
    /// Collectors to run.
    pub collector_ids: Vec<String>,
    /// Entities to collect for.
    pub entity_refs: Vec<String>,
    /// Accepted for compatibility; every fact of the collector is collected.
    #[serde(default)]
    pub fact_refs: Option<Vec<String>>,
}

/// Every collector with its configuration.
#[utoipa::path(get, path = "/api/soundcheck/fact-collectors", tag = "FactCollectors", operation_id = "getFactCollectors",
    responses((status = 200, body = Object)))]
pub async fn list(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({ "factCollectors": app.fact_collectors() }))
}

/// One collector.
#[utoipa::path(get, path = "/api/soundcheck/fact-collectors/{collectorId}", tag = "FactCollectors", operation_id = "getFactCollector",
    params(("collectorId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    app.fact_collectors()
        .into_iter()
        .find(|c| c.collector_id == id)
        .map(|c| Json(json!({ "factCollector": c })))
        .ok_or_else(|| ApiError::not_found(format!("collector `{id}` not found")))
}

/// Configures collectors through the API (a bare array of `{collectorId, config}`).
#[utoipa::path(post, path = "/api/soundcheck/fact-collectors", tag = "FactCollectors", operation_id = "createFactCollectors",
    request_body = Vec<CollectorItem>, responses((status = 201, body = Object), (status = 400, body = Object), (status = 403, body = Object), (status = 409, body = Object)))]
pub async fn create(
    State(app): State<Arc<App>>,
    ApiJson(items): ApiJson<Vec<CollectorItem>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if items.is_empty() {
        return Err(ApiError::invalid("/: expected at least one collector"));
    }
    let items = items
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.collector_id, c.config, format!("/{i}")))
        .collect();
    let created = app.put_collectors(items, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "factCollectors": created })),
    ))
}

/// Replaces an API-configured collector's configuration.
#[utoipa::path(put, path = "/api/soundcheck/fact-collectors/{collectorId}", tag = "FactCollectors", operation_id = "updateFactCollector",
    params(("collectorId" = String, Path)), request_body = CollectorConfigBody, responses((status = 200, body = Object), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CollectorConfigBody>,
) -> ApiResult<Json<Value>> {
    let updated = app
        .put_collectors(vec![(id, body.config, String::new())], true)
        .await?;
    Ok(Json(json!({ "factCollector": updated.into_iter().next() })))
}

/// Deletes an API-configured collector.
#[utoipa::path(delete, path = "/api/soundcheck/fact-collectors/{collectorId}", tag = "FactCollectors", operation_id = "deleteFactCollector",
    params(("collectorId" = String, Path)), responses((status = 204), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.delete_collector(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues collection by collectors for entities and answers at once.
#[utoipa::path(post, path = "/api/soundcheck/facts/collect", tag = "Facts", operation_id = "triggerFactCollection",
    request_body = CollectBody, responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn collect(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CollectBody>,
) -> ApiResult<Json<Value>> {
    if body.collector_ids.is_empty() || body.entity_refs.is_empty() {
        return Err(ApiError::invalid(
            "`collectorIds` and `entityRefs` need at least one item each",
        ));
    }
    let mut entities = Vec::with_capacity(body.entity_refs.len());
    for (i, e) in body.entity_refs.iter().enumerate() {
        let r = crate::service::entity_ref(e, &format!("/entityRefs/{i}"))?;
        if app.entity_body(&r).is_none() {
            return Err(ApiError::not_found(format!(
                "/entityRefs/{i}: entity `{r}` is not in the catalog"
            )));
        }
        entities.push(r);
    }
    let mut queued = Vec::new();
    let mut skipped = Vec::new();
    for id in &body.collector_ids {
        let blocks = app.collector_blocks(id);
        if app.collector(id).is_none() || blocks.is_empty() {
            skipped.push(json!({"collectorId": id, "reason": "no collector with this id runs in this service"}));
            continue;
        }
        let jobs: usize = blocks
            .iter()
            .map(|b| entities.len().div_ceil(b.batch_size.max(1) as usize))
            .sum();
        queued.push(json!({"collectorId": id, "entityRefs": entities, "jobsQueued": jobs}));
        let app = Arc::clone(&app);
        let entities = entities.clone();
        tokio::spawn(async move {
            for block in blocks {
                if let Err(e) = app
                    .collect_block(&block, Some(&entities), false, crate::service::now())
                    .await
                {
                    tracing::warn!(collector = %block.id, error = %e, "on-demand collection failed");
                }
            }
        });
    }
    Ok(Json(json!({ "queued": queued, "skipped": skipped })))
}
