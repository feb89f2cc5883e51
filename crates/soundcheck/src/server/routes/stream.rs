//! `GET /events/stream`: Server-Sent Events for people and scripts. Each event is sent with
//! its outbox position as `id`, its topic as `event` and the envelope as `data`; a client that
//! reconnects with `Last-Event-ID` (or `?after=`) resumes right after it. Without either it
//! starts at the newest event.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Params;
use crate::service::App;
use crate::store::{SqlStore, StateStore, StoredEvent};

/// Where a stream stands.
struct Follow {
    store: SqlStore,
    committed: tokio::sync::watch::Receiver<i64>,
    cursor: i64,
    topics: Vec<String>,
    entity: Option<String>,
    pending: std::collections::VecDeque<StoredEvent>,
    stopping: tokio_util::sync::CancellationToken,
}

impl Follow {
    fn wants(&self, e: &StoredEvent) -> bool {
        (self.topics.is_empty() || self.topics.contains(&e.params.topic))
            && self
                .entity
                .as_ref()
                .is_none_or(|x| e.params.event_payload["entityRef"].as_str() == Some(x.as_str()))
    }

    /// The next wanted event, waiting for commits (or polling for other processes).
    async fn next(&mut self) -> Option<StoredEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            match self.store.events_after(self.cursor, 500).await {
                Ok(batch) if !batch.is_empty() => {
                    self.cursor = batch.last().map_or(self.cursor, |e| e.seq);
                    let wanted: Vec<StoredEvent> =
                        batch.into_iter().filter(|e| self.wants(e)).collect();
                    self.pending.extend(wanted);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event stream cannot read the outbox");
                }
            }
            tokio::select! {
                () = self.stopping.cancelled() => return None,
                _ = tokio::time::timeout(Duration::from_millis(500), self.committed.changed()) => {}
            }
        }
    }
}

/// Follows the outbox as Server-Sent Events.
#[utoipa::path(get, path = "/api/soundcheck/events/stream", tag = "Events", operation_id = "streamEvents",
    params(("topics" = Option<Vec<String>>, Query), ("entityRef" = Option<String>, Query), ("after" = Option<i64>, Query)),
    responses((status = 200, description = "text/event-stream of `{topic, eventPayload, metadata}` envelopes"), (status = 400, body = Object)))]
pub async fn stream(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    params: Params,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let events = app.events().ok_or_else(|| {
        ApiError::not_found("events are off: set soundcheck.events.enabled: true")
    })?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("after").map(str::to_string));
    let cursor = match last {
        Some(text) => text.trim().parse::<i64>().map_err(|_| {
            ApiError::invalid(format!(
                "`{text}` is not an event position from this stream"
            ))
        })?,
        None => app.store().last_seq().await?,
    };
    let entity = params
        .get("entityRef")
        .map(|e| crate::service::entity_ref(e, "entityRef"))
        .transpose()?;
    let follow = Follow {
        store: app.store().clone(),
        committed: events.committed(),
        cursor,
        topics: params.all("topics"),
        entity,
        pending: Default::default(),
        stopping: app.stopping(),
    };
    let stream = futures::stream::unfold(follow, |mut follow| async move {
        let e = follow.next().await?;
        let event = Event::default()
            .id(e.seq.to_string())
            .event(e.params.topic.clone())
            .data(e.envelope_json());
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
