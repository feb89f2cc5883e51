//! Operating event delivery: `/events/subscribers` lists this process's subscriber ids with
//! their cursor and lag; per id, list parked (dead) events, replay them, or move the cursor.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::events::EventsService;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::ApiJson;
use crate::service::App;
use crate::store::SqlStore;

/// `POST /events/subscribers/{id}/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// Deliver from the event after this position (0: from the first event).
    pub after: i64,
}

fn events(app: &App) -> ApiResult<&EventsService<SqlStore>> {
    app.events()
        .ok_or_else(|| ApiError::not_found("events are off: set soundcheck.events.enabled: true"))
}

async fn known(events: &EventsService<SqlStore>, id: &str) -> ApiResult<()> {
    if events.subscribers().await?.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no subscriber `{id}` in this process"
        )))
    }
}

/// Subscriber ids with their cursor and lag.
#[utoipa::path(get, path = "/api/soundcheck/events/subscribers", tag = "Events", operation_id = "getSubscribers",
    responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn list(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    let subscribers: Vec<Value> = events(&app)?
        .subscribers()
        .await?
        .into_iter()
        .map(|s| json!({"id": s.id, "topics": s.topics, "handlers": s.handlers, "cursor": s.cursor, "lag": s.lag}))
        .collect();
    Ok(Json(json!({ "subscribers": subscribers })))
}

/// Parked events of a subscriber.
#[utoipa::path(get, path = "/api/soundcheck/events/subscribers/{subscriberId}/dead", tag = "Events", operation_id = "getDeadEvents",
    params(("subscriberId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn dead(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let events = events(&app)?;
    known(events, &id).await?;
    let dead: Vec<Value> = events
        .dead_events(&id)
        .await?
        .into_iter()
        .map(|d| {
            let envelope: Value =
                serde_json::from_str(&d.event.envelope_json()).unwrap_or(Value::Null);
            json!({"position": d.event.seq, "attempts": d.attempts, "lastError": d.last_error,
                "deadAt": crate::service::rfc3339(d.dead_at), "event": envelope})
        })
        .collect();
    Ok(Json(json!({ "deadEvents": dead })))
}

/// Delivers a subscriber's parked events again; those that fail again stay parked.
#[utoipa::path(post, path = "/api/soundcheck/events/subscribers/{subscriberId}/replay", tag = "Events", operation_id = "replayDeadEvents",
    params(("subscriberId" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub async fn replay(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let events = events(&app)?;
    known(events, &id).await?;
    let report = events.replay_dead(&id).await?;
    Ok(Json(
        json!({"delivered": report.delivered, "failed": report.failed}),
    ))
}

/// Moves a subscriber's cursor: replays from an earlier position or skips ahead.
#[utoipa::path(post, path = "/api/soundcheck/events/subscribers/{subscriberId}/reset", tag = "Events", operation_id = "resetSubscriberCursor",
    params(("subscriberId" = String, Path)), request_body = ResetBody, responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub async fn reset(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResetBody>,
) -> ApiResult<Json<Value>> {
    let events = events(&app)?;
    known(events, &id).await?;
    if body.after < 0 {
        return Err(ApiError::invalid("/after: must be 0 or a position"));
    }
    events.reset_cursor(&id, body.after).await?;
    Ok(Json(json!({"id": id, "cursor": body.after})))
}
