//! The routes under `/api/soundcheck` (api.md §1) and the helpers their handlers share.

pub mod checks;
pub mod collectors;
pub mod exemptions;
pub mod results;
pub mod stream;
pub mod subscribers;
pub mod tracks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
use soundcheck_core::filter::EntityFilter;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::service::{App, Incoming};

/// Every `/api/soundcheck` route.
pub fn api() -> Router<Arc<App>> {
    Router::new()
        .route("/checks", get(checks::list).post(checks::create))
        .route("/checks/execute", post(checks::execute))
        .route("/checks/entities", post(checks::entities))
        .route(
            "/checks/exemptions",
            get(exemptions::list).post(exemptions::create),
        )
        .route("/checks/exemptions/revoke", post(exemptions::revoke))
        .route("/checks/exemptions/restore", post(exemptions::restore))
        .route("/checks/exemptions/revoked", get(exemptions::revoked))
        .route(
            "/checks/{checkId}",
            get(checks::get).put(checks::update).delete(checks::delete),
        )
        .route(
            "/checks/{checkId}/status",
            get(checks::status).post(checks::status_filtered),
        )
        .route(
            "/checks/{checkId}/status-history",
            get(checks::history).post(checks::history_filtered),
        )
        .route(
            "/results",
            get(results::get)
                .post(results::submit)
                .delete(results::delete),
        )
        .route("/certifications", get(results::certifications))
        .route("/certify_world", post(results::certify_world))
        .route("/facts", post(results::submit_facts))
        .route("/events/stream", get(stream::stream))
        .route("/events/subscribers", get(subscribers::list))
        .route(
            "/events/subscribers/{subscriberId}/dead",
            get(subscribers::dead),
        )
        .route(
            "/events/subscribers/{subscriberId}/replay",
            post(subscribers::replay),
        )
        .route(
            "/events/subscribers/{subscriberId}/reset",
            post(subscribers::reset),
        )
        .route("/facts/collect", post(collectors::collect))
        .route(
            "/fact-collectors",
            get(collectors::list).post(collectors::create),
        )
        .route(
            "/fact-collectors/{collectorId}",
            get(collectors::get)
                .put(collectors::update)
                .delete(collectors::delete),
        )
        .route("/tracks", get(tracks::list).post(tracks::create))
        .route(
            "/tracks/{trackId}",
            get(tracks::get).put(tracks::update).delete(tracks::delete),
        )
        .route(
            "/tracks/{trackId}/status",
            get(tracks::status).post(tracks::status_filtered),
        )
        .route(
            "/tracks/{trackId}/status-history",
            get(tracks::history).post(tracks::history_filtered),
        )
        .route("/tracks/{trackId}/entities", get(tracks::entities))
        .route(
            "/campaigns",
            get(tracks::list_campaigns).post(tracks::create_campaigns),
        )
        .route("/campaigns/entities", post(tracks::campaign_entities))
        .route(
            "/campaigns/{campaignId}",
            get(tracks::get_campaign)
                .put(tracks::update_campaign)
                .delete(tracks::delete_campaign),
        )
}

/// An entity filter from a request body, problems at their JSON pointer.
pub fn filter_of(value: &Value, pointer: &str) -> ApiResult<EntityFilter> {
    soundcheck_core::config::json::filter_from_json(value, pointer)
        .map_err(|e| ApiError::invalid(e.to_string()))
}

/// Definitions of a create request, each with its id and pointer.
pub fn incoming(items: &[Value], pointer: &str) -> ApiResult<Vec<Incoming>> {
    if items.is_empty() {
        return Err(ApiError::invalid(format!(
            "{pointer}: expected at least one item"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let pointer = format!("{pointer}/{i}");
            let id = body
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(format!("{pointer}/id: a non-empty string id is required"))
                })?;
            Ok(Incoming {
                id: id.to_string(),
                body: body.clone(),
                pointer,
            })
        })
        .collect()
}

/// The definition of an update request; its id must match the path (or is taken from it).
pub fn incoming_one(mut body: Value, id: &str) -> ApiResult<Incoming> {
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::invalid("/: expected a JSON object"));
    };
    match obj.get("id").and_then(Value::as_str) {
        Some(given) if given != id => {
            return Err(ApiError::invalid(format!(
                "/id: `{given}` does not match the id in the path (`{id}`)"
            )));
        }
        _ => {
            obj.insert("id".to_string(), Value::String(id.to_string()));
        }
    }
    Ok(Incoming {
        id: id.to_string(),
        body,
        pointer: String::new(),
    })
}

/// `numberOfDays` from a body (default 30).
pub fn days(given: Option<i64>) -> ApiResult<i64> {
    let days = given.unwrap_or(30);
    if (1..=366).contains(&days) {
        Ok(days)
    } else {
        Err(ApiError::invalid(format!(
            "/numberOfDays: must be from 1 to 366, found {days}"
        )))
    }
}

/// The caller's subject (`anonymous` without a token).
pub fn subject(caller: &Option<axum::Extension<Caller>>) -> String {
    caller
        .as_ref()
        .map_or_else(|| "anonymous".to_string(), |c| c.subject.clone())
}
