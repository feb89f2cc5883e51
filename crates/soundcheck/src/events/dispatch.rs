//! One dispatcher per subscriber id: reads the outbox after the id's cursor, hands each event
//! to the handler its order key maps to (one key's events stay in order on one handler), retries
//! failures with exponential backoff, parks events that keep failing, then saves the cursor.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::join_all;

use super::{Group, Inner};
use crate::store::{StateStore, StoreResult, StoredEvent};

/// Where the dispatcher stands: the delivered position and the last one saved.
struct Position {
    delivered: i64,
    saved: i64,
    saved_at: Instant,
}

/// The delivery lease of one id in this process: held until `until` (ms).
struct Lease {
    until: i64,
}

/// Takes or renews the lease when less than half of it is left; false while another process
/// holds it. Losing or gaining it forgets the position, so delivery restarts at the stored
/// cursor (at least once, never skipping).
async fn hold_lease<S: StateStore + Clone + 'static>(
    inner: &Arc<Inner<S>>,
    group: &Arc<Group>,
    lease: &mut Option<Lease>,
    position: &mut Option<Position>,
) -> bool {
    let now = chrono::Utc::now().timestamp_millis();
    let length = i64::try_from(group.settings.lease.as_millis()).unwrap_or(i64::MAX / 2);
    if lease.as_ref().is_some_and(|l| l.until - now > length / 2) {
        return true;
    }
    match inner
        .store
        .claim_subscriber(&group.id, &inner.owner, now, now + length)
        .await
    {
        Ok(true) => {
            if lease.is_none() {
                tracing::info!(subscriber = %group.id, "took the delivery lease");
                *position = None;
            }
            *lease = Some(Lease {
                until: now + length,
            });
            true
        }
        Ok(false) => {
            if lease.take().is_some() {
                tracing::warn!(subscriber = %group.id, "lost the delivery lease to another process");
            }
            *position = None;
            false
        }
        Err(e) => {
            tracing::warn!(subscriber = %group.id, error = %e, "cannot renew the delivery lease");
            lease.as_ref().is_some_and(|l| l.until > now)
        }
    }
}

/// The dispatcher loop of one id; saves its position and ends on shutdown. Only the process
/// holding the id's lease delivers; the others wait to take over.
pub(super) async fn run<S: StateStore + Clone + 'static>(inner: Arc<Inner<S>>, group: Arc<Group>) {
    let mut committed = inner.committed.subscribe();
    let mut position: Option<Position> = None;
    let mut lease: Option<Lease> = None;
    loop {
        if !hold_lease(&inner, &group, &mut lease, &mut position).await {
            tokio::select! {
                () = inner.shutdown.cancelled() => return,
                () = tokio::time::sleep(group.settings.poll_interval) => continue,
            }
        }
        if let Err(e) = drain(&inner, &group, &mut position, &mut lease).await {
            tracing::warn!(subscriber = %group.id, error = %e, "event delivery failed; retrying");
        }
        let save_in = group.settings.cursor_save_interval;
        let pending = position.as_ref().is_some_and(|p| p.delivered != p.saved);
        tokio::select! {
            () = inner.shutdown.cancelled() => {
                if let Err(e) = save(&inner, &group, &mut position, true).await {
                    tracing::warn!(subscriber = %group.id, error = %e, "cannot save the cursor at shutdown");
                }
                if let Err(e) = inner.store.release_subscriber(&group.id, &inner.owner).await {
                    tracing::warn!(subscriber = %group.id, error = %e, "cannot release the delivery lease");
                }
                return;
            }
            _ = committed.changed() => {}
            () = tokio::time::sleep(if pending { save_in } else { group.settings.poll_interval }) => {
                if let Err(e) = save(&inner, &group, &mut position, true).await {
                    tracing::warn!(subscriber = %group.id, error = %e, "cannot save the cursor");
                }
            }
        }
    }
}

/// Saves the delivered position when forced or when it has waited long enough.
async fn save<S: StateStore + Clone + 'static>(
    inner: &Arc<Inner<S>>,
    group: &Arc<Group>,
    position: &mut Option<Position>,
    force: bool,
) -> StoreResult<()> {
    let Some(p) = position.as_mut() else {
        return Ok(());
    };
    if p.delivered == p.saved
        || (!force && p.saved_at.elapsed() < group.settings.cursor_save_interval)
    {
        return Ok(());
    }
    let topics = group.topics.lock().map(|t| t.clone()).unwrap_or_default();
    inner
        .store
        .save_cursor(&group.id, &topics, p.delivered)
        .await?;
    p.saved = p.delivered;
    p.saved_at = Instant::now();
    Ok(())
}

/// Delivers batches until the outbox has nothing after the cursor.
async fn drain<S: StateStore + Clone + 'static>(
    inner: &Arc<Inner<S>>,
    group: &Arc<Group>,
    position: &mut Option<Position>,
    lease: &mut Option<Lease>,
) -> StoreResult<()> {
    loop {
        if inner.shutdown.is_cancelled() {
            return Ok(());
        }
        // Renewed before every batch: a long backlog must not outlive the lease.
        if !hold_lease(inner, group, lease, position).await {
            return Ok(());
        }
        let reset = group.cursor.lock().ok().and_then(|mut c| c.take());
        if let Some(seq) = reset {
            // `saved` is unknown: a batch that ended during the reset may have saved its own
            // position over it, so the reset position is saved again at the next save.
            *position = Some(Position {
                delivered: seq,
                saved: -1,
                saved_at: Instant::now(),
            });
        }
        if position.is_none() {
            let stored = inner.store.cursor(&group.id).await?.unwrap_or(0);
            *position = Some(Position {
                delivered: stored,
                saved: stored,
                saved_at: Instant::now(),
            });
        }
        let cursor = position.as_ref().map_or(0, |p| p.delivered);
        let batch = inner
            .store
            .events_after(cursor, group.settings.batch_size)
            .await?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(());
        };
        let mut lanes: Vec<(super::Handler, Vec<&StoredEvent>)> = Vec::new();
        for event in batch.iter().filter(|e| group.wants(&e.params.topic)) {
            let Some(handler) = group.handler_for(&event.ordering_key) else {
                continue;
            };
            match lanes.iter_mut().find(|(h, _)| Arc::ptr_eq(h, &handler)) {
                Some((_, events)) => events.push(event),
                None => lanes.push((handler, vec![event])),
            }
        }
        let results = join_all(lanes.iter().map(|(handler, events)| async move {
            for event in events {
                attempt(inner, group, handler, event).await?;
            }
            StoreResult::Ok(())
        }))
        .await;
        results.into_iter().collect::<StoreResult<Vec<()>>>()?;
        if inner.shutdown.is_cancelled() {
            return Ok(());
        }
        if let Some(p) = position.as_mut() {
            p.delivered = last;
        }
        group
            .delivered
            .store(last, std::sync::atomic::Ordering::Release);
        let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= group.settings.batch_size;
        save(inner, group, position, full).await?;
    }
}

/// Delivers one event to the handler its key maps to; true when it was handled.
pub(super) async fn deliver<S: StateStore + Clone + 'static>(
    inner: &Arc<Inner<S>>,
    group: &Arc<Group>,
    event: &StoredEvent,
) -> StoreResult<bool> {
    match group.handler_for(&event.ordering_key) {
        Some(handler) => attempt(inner, group, &handler, event).await,
        None => Ok(false),
    }
}

/// Calls the handler with retries; parks the event after the last failed attempt.
async fn attempt<S: StateStore + Clone + 'static>(
    inner: &Arc<Inner<S>>,
    group: &Arc<Group>,
    handler: &super::Handler,
    event: &StoredEvent,
) -> StoreResult<bool> {
    let settings = group.settings;
    let mut backoff = settings.initial_backoff;
    let mut last_error = String::new();
    for attempt in 1..=settings.max_attempts.max(1) {
        let outcome = AssertUnwindSafe(handler(event.params.clone()))
            .catch_unwind()
            .await;
        match outcome {
            Ok(Ok(())) => {
                metrics::counter!("soundcheck_events_delivered_total", "subscriber" => group.id.clone())
                    .increment(1);
                return Ok(true);
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = "handler panicked".to_string(),
        }
        tracing::debug!(subscriber = %group.id, seq = event.seq, attempt, error = %last_error, "handler failed");
        if attempt < settings.max_attempts {
            metrics::counter!("soundcheck_events_retried_total", "subscriber" => group.id.clone())
                .increment(1);
            tokio::select! {
                // Not parked: the cursor is not saved either, so it is delivered after restart.
                () = inner.shutdown.cancelled() => return Ok(false),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(settings.max_backoff);
        }
    }
    tracing::warn!(subscriber = %group.id, seq = event.seq, error = %last_error, "event parked as dead");
    metrics::counter!("soundcheck_events_dead_total", "subscriber" => group.id.clone())
        .increment(1);
    inner
        .store
        .park(&group.id, event.seq, settings.max_attempts, &last_error)
        .await?;
    Ok(false)
}
