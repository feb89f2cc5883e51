//! `/tracks` and `/campaigns`: definitions, aggregate certification status and history, and
//! the entities of a track or campaign.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use soundcheck_core::model::{CertState, Track};
use utoipa::ToSchema;

use super::checks::StatusBody;
use super::{filter_of, incoming};
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{ApiJson, Params};
use crate::service::views::{CertificationStatus, TrackStatusHistory};
use crate::service::{App, Family, definition_json};

/// `{tracks: Track[]}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TracksBody {
    /// Track definitions, shaped like the YAML ones.
    #[schema(value_type = Vec<Object>)]
    pub tracks: Vec<Value>,
}

/// `{campaigns: Campaign[]}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CampaignsBody {
    /// Campaign definitions (tracks with `type: campaign`).
    #[schema(value_type = Vec<Object>)]
    pub campaigns: Vec<Value>,
}

/// `POST /campaigns/entities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CampaignEntitiesBody {
    /// The campaign by id …
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// … or by name.
    #[serde(default)]
    pub campaign_name: Option<String>,
    /// Only entities matching this filter.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity_filter: Option<Value>,
    /// Page size (default 25, at most 500).
    #[serde(default)]
    pub first: Option<usize>,
    /// The `endCursor` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// Accepted for compatibility (api.md #36); not applied yet.
    #[serde(default)]
    pub check_id: Option<String>,
    /// Accepted for compatibility; not applied yet.
    #[serde(default)]
    pub check_name: Option<String>,
    /// Accepted for compatibility; not applied yet.
    #[serde(default)]
    pub check_states: Option<Vec<String>>,
    /// Accepted for compatibility; not applied yet.
    #[serde(default)]
    pub entity_fields: Option<Vec<String>>,
    /// Accepted for compatibility; not applied yet.
    #[serde(default)]
    pub metadata_annotations: Option<Vec<String>>,
}

fn family_of(campaign: bool) -> Family {
    if campaign {
        Family::Campaigns
    } else {
        Family::Tracks
    }
}

fn is_campaign(t: &Track) -> bool {
    t.track_type == "campaign"
}

/// Tracks (or campaigns), optionally only some ids and only those applying to an entity.
fn list_of(app: &App, params: &Params, campaign: bool, ids_key: &str) -> ApiResult<Vec<Track>> {
    let ids = params.all(ids_key);
    let entity = params
        .get("entityRef")
        .map(|e| crate::service::entity_ref(e, "entityRef"))
        .transpose()?;
    let body =
        match &entity {
            Some(e) => Some(app.entity_body(e).ok_or_else(|| {
                ApiError::not_found(format!("entity `{e}` is not in the catalog"))
            })?),
            None => None,
        };
    let drafts = params.flag("includeDraftTracks")? || campaign;
    Ok(app
        .definitions()
        .config
        .tracks
        .iter()
        .filter(|t| is_campaign(t) == campaign)
        .filter(|t| ids.is_empty() || ids.contains(&t.id))
        .filter(|t| drafts || !t.draft || !ids.is_empty())
        .filter(|t| body.as_ref().is_none_or(|b| t.applies_to.admits(b)))
        .cloned()
        .collect())
}

/// Tracks.
#[utoipa::path(get, path = "/api/soundcheck/tracks", tag = "Tracks", operation_id = "getTracks",
    params(("tracks" = Option<Vec<String>>, Query), ("entityRef" = Option<String>, Query), ("includeDraftTracks" = Option<bool>, Query)),
    responses((status = 200, body = Object)))]
pub async fn list(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "tracks": list_of(&app, &params, false, "tracks")? }),
    ))
}

/// Campaigns.
#[utoipa::path(get, path = "/api/soundcheck/campaigns", tag = "Campaigns", operation_id = "getCampaigns",
    params(("campaigns" = Option<Vec<String>>, Query), ("entityRef" = Option<String>, Query)), responses((status = 200, body = Object)))]
pub async fn list_campaigns(State(app): State<Arc<App>>, params: Params) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "campaigns": list_of(&app, &params, true, "campaigns")? }),
    ))
}

fn one(app: &App, id: &str, campaign: bool) -> ApiResult<Value> {
    let defs = app.definitions();
    defs.config
        .track(id)
        .filter(|t| is_campaign(t) == campaign)
        .and_then(|_| definition_json(&defs, family_of(campaign), id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{} `{id}` not found",
                if campaign { "campaign" } else { "track" }
            ))
        })
}

/// One track.
#[utoipa::path(get, path = "/api/soundcheck/tracks/{trackId}", tag = "Tracks", operation_id = "getTrack",
    params(("trackId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "track": one(&app, &id, false)? })))
}

/// One campaign.
#[utoipa::path(get, path = "/api/soundcheck/campaigns/{campaignId}", tag = "Campaigns", operation_id = "getCampaign",
    params(("campaignId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn get_campaign(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "campaign": one(&app, &id, true)? })))
}

/// Creates tracks.
#[utoipa::path(post, path = "/api/soundcheck/tracks", tag = "Tracks", operation_id = "createTracks",
    request_body = TracksBody, responses((status = 201, body = Object), (status = 400, body = Object), (status = 409, body = Object)))]
pub async fn create(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<TracksBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = app
        .put_definitions(Family::Tracks, incoming(&body.tracks, "/tracks")?, false)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "tracks": created }))))
}

/// Creates campaigns.
#[utoipa::path(post, path = "/api/soundcheck/campaigns", tag = "Campaigns", operation_id = "createCampaigns",
    request_body = CampaignsBody, responses((status = 201, body = Object), (status = 400, body = Object), (status = 409, body = Object)))]
pub async fn create_campaigns(
    State(app): State<Arc<App>>,
    ApiJson(mut body): ApiJson<CampaignsBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    for c in &mut body.campaigns {
        if let Some(obj) = c.as_object_mut() {
            obj.entry("type").or_insert_with(|| json!("campaign"));
        }
    }
    let created = app
        .put_definitions(
            Family::Campaigns,
            incoming(&body.campaigns, "/campaigns")?,
            false,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "campaigns": created }))))
}

/// Replaces an API-created track.
#[utoipa::path(put, path = "/api/soundcheck/tracks/{trackId}", tag = "Tracks", operation_id = "updateTrack",
    params(("trackId" = String, Path)), request_body = Object, responses((status = 200, body = Object), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let updated = app
        .put_definitions(Family::Tracks, vec![super::incoming_one(body, &id)?], true)
        .await?;
    Ok(Json(json!({ "track": updated.into_iter().next() })))
}

/// Replaces an API-created campaign.
#[utoipa::path(put, path = "/api/soundcheck/campaigns/{campaignId}", tag = "Campaigns", operation_id = "updateCampaign",
    params(("campaignId" = String, Path)), request_body = Object, responses((status = 200, body = Object), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn update_campaign(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    if let Some(obj) = body.as_object_mut() {
        obj.entry("type").or_insert_with(|| json!("campaign"));
    }
    let updated = app
        .put_definitions(
            Family::Campaigns,
            vec![super::incoming_one(body, &id)?],
            true,
        )
        .await?;
    Ok(Json(json!({ "campaign": updated.into_iter().next() })))
}

/// Deletes an API-created track.
#[utoipa::path(delete, path = "/api/soundcheck/tracks/{trackId}", tag = "Tracks", operation_id = "deleteTrack",
    params(("trackId" = String, Path)), responses((status = 204), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn delete(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    one(&app, &id, false)?;
    app.delete_definition(Family::Tracks, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an API-created campaign.
#[utoipa::path(delete, path = "/api/soundcheck/campaigns/{campaignId}", tag = "Campaigns", operation_id = "deleteCampaign",
    params(("campaignId" = String, Path)), responses((status = 204), (status = 403, body = Object), (status = 404, body = Object)))]
pub async fn delete_campaign(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    one(&app, &id, true)?;
    app.delete_definition(Family::Campaigns, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The aggregate certification status of a track.
#[utoipa::path(get, path = "/api/soundcheck/tracks/{trackId}/status", tag = "Tracks", operation_id = "getCertificationStatus",
    params(("trackId" = String, Path)), responses((status = 200, body = CertificationStatus), (status = 404, body = Object)))]
pub async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> ApiResult<Json<CertificationStatus>> {
    Ok(Json(app.track_status(&id, None).await?))
}

/// The same over entities matching a filter.
#[utoipa::path(post, path = "/api/soundcheck/tracks/{trackId}/status", tag = "Tracks", operation_id = "getCertificationStatusWithFilter",
    params(("trackId" = String, Path)), request_body = StatusBody, responses((status = 200, body = CertificationStatus), (status = 404, body = Object)))]
pub async fn status_filtered(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Json<CertificationStatus>> {
    let filter = body
        .filter
        .as_ref()
        .map(|f| filter_of(f, "/filter"))
        .transpose()?;
    Ok(Json(app.track_status(&id, filter.as_ref()).await?))
}

/// Daily per-level counts of a track.
#[utoipa::path(get, path = "/api/soundcheck/tracks/{trackId}/status-history", tag = "Tracks", operation_id = "getCertificationStatusHistory",
    params(("trackId" = String, Path), ("numberOfDays" = Option<i64>, Query)), responses((status = 200, body = TrackStatusHistory), (status = 404, body = Object)))]
pub async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<TrackStatusHistory>> {
    let days = params.int("numberOfDays", 1, 366, 30)?;
    Ok(Json(app.track_history(&id, days, None).await?))
}

/// The same over entities matching a filter.
#[utoipa::path(post, path = "/api/soundcheck/tracks/{trackId}/status-history", tag = "Tracks", operation_id = "getCertificationStatusHistoryWithFilter",
    params(("trackId" = String, Path)), request_body = StatusBody, responses((status = 200, body = TrackStatusHistory), (status = 404, body = Object)))]
pub async fn history_filtered(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Json<TrackStatusHistory>> {
    let filter = body
        .filter
        .as_ref()
        .map(|f| filter_of(f, "/filter"))
        .transpose()?;
    let days = super::days(body.number_of_days)?;
    Ok(Json(app.track_history(&id, days, filter.as_ref()).await?))
}

/// The entities of a track with their highest certified level.
#[utoipa::path(get, path = "/api/soundcheck/tracks/{trackId}/entities", tag = "Tracks", operation_id = "getTrackEntities",
    params(("trackId" = String, Path), ("status" = Option<String>, Query)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn entities(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let status = match params.get("status") {
        None | Some("") => None,
        Some(s) => Some(CertState::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "query parameter `status` must be `passed` or `failed`, found `{s}`"
            ))
        })?),
    };
    Ok(Json(
        json!({ "entities": app.track_entities(&id, status).await? }),
    ))
}

/// A campaign's entities with their certification and check states, cursor-paged.
#[utoipa::path(post, path = "/api/soundcheck/campaigns/entities", tag = "Campaigns", operation_id = "getCampaignEntities",
    request_body = CampaignEntitiesBody, responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn campaign_entities(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<CampaignEntitiesBody>,
) -> ApiResult<Json<Value>> {
    let defs = app.definitions();
    let campaign = match (&body.campaign_id, &body.campaign_name) {
        (Some(id), None) => defs.config.track(id).filter(|t| is_campaign(t)),
        (None, Some(name)) => defs
            .config
            .tracks
            .iter()
            .find(|t| is_campaign(t) && t.name.as_deref() == Some(name)),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `campaignId` and `campaignName`",
            ));
        }
    }
    .ok_or_else(|| ApiError::not_found("campaign not found"))?
    .clone();
    let filter = body
        .entity_filter
        .as_ref()
        .map(|f| filter_of(f, "/entityFilter"))
        .transpose()?;
    let first = body.first.unwrap_or(25);
    if !(1..=500).contains(&first) {
        return Err(ApiError::invalid(format!(
            "/first: must be from 1 to 500, found {first}"
        )));
    }
    let after = body
        .after
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let all = app.track_entities(&campaign.id, None).await?;
    let all: Vec<_> = all
        .into_iter()
        .filter(|e| {
            filter
                .as_ref()
                .is_none_or(|f| app.entity_body(&e.entity_ref).is_some_and(|b| f.admits(&b)))
        })
        .collect();
    let total = all.len();
    let page: Vec<Value> = all
        .iter()
        .enumerate()
        .skip(after)
        .take(first)
        .map(|(i, e)| json!({"cursor": encode_cursor(i + 1), "node": {"entityRef": e.entity_ref, "certified": e.level_ordinal > 0, "levelOrdinal": e.level_ordinal}}))
        .collect();
    let end = after + page.len();
    Ok(Json(json!({
        "totalCount": total,
        "pageInfo": {
            "hasNextPage": end < total,
            "hasPreviousPage": after > 0,
            "startCursor": page.first().map(|_| encode_cursor(after + 1)),
            "endCursor": page.last().map(|_| encode_cursor(end)),
        },
        "edges": page,
    })))
}

fn encode_cursor(position: usize) -> String {
    format!("p{position}")
}

fn decode_cursor(cursor: &str) -> ApiResult<usize> {
    cursor
        .strip_prefix('p')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "/after: `{cursor}` is not a cursor returned by this endpoint"
            ))
        })
}
