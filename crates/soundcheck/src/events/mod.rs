//! The events service: the Rust counterpart of Backstage's `EventsService`, delivering from the
//! transactional outbox with at-least-once semantics.
//!
//! - `publish(EventParams)` appends to the outbox; state changes append their events in the
//!   transaction that stores them.
//! - `subscribe({id, topics, on_event})`: subscribers sharing an `id` share the work (each
//!   event goes to one of them, chosen by the event's order key so one key's events keep their
//!   order); distinct ids each receive every event. Each id has a durable cursor.
//! - A failing `on_event` is retried with exponential backoff; after `max_attempts` the event is
//!   parked as dead, to be listed and replayed. Each id has its own dispatcher, so a failing
//!   subscriber never holds back another.
//! - A new id starts at the newest event unless it asks to replay from an earlier position;
//!   an id with a stored cursor resumes where it stopped.

mod dispatch;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use soundcheck_core::events::EventParams;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{DeadEvent, StateStore, StoreResult, StoredEvent, ordering_key};

/// Why a handler failed; any error type converts into it.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// An `onEvent` handler.
pub type Handler =
    Arc<dyn Fn(EventParams) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(EventParams) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(move |params| Box::pin(f(params)))
}

/// Where a subscriber id with no stored cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// After the newest event (the default for late subscribers).
    #[default]
    Latest,
    /// From the first event in the outbox.
    Beginning,
    /// After the given outbox position (replay from there); overrides a stored cursor.
    After(i64),
}

/// `subscribe` options, as in Backstage: `{id, topics, onEvent}` plus where to start.
#[derive(Clone)]
pub struct SubscribeOptions {
    /// Subscriber id: shared ids share work, distinct ids each get every event.
    pub id: String,
    /// Topics, matched exactly.
    pub topics: Vec<String>,
    /// The handler.
    pub on_event: Handler,
    /// Where a new id starts.
    pub start: StartAt,
}

/// Delivery tuning (`soundcheck.events.delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Attempts before an event is parked as dead.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Events read per outbox query.
    pub batch_size: i64,
    /// How long a delivered position may wait before it is saved (a crash redelivers at most
    /// this much; delivery stays at-least-once).
    pub cursor_save_interval: Duration,
    /// How often dispatchers look for events written by other processes.
    pub poll_interval: Duration,
    /// How long a process keeps a subscriber id's delivery lease without renewing it; another
    /// process with handlers for the id takes over after that.
    pub lease: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            batch_size: 512,
            cursor_save_interval: Duration::from_millis(250),
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(15),
        }
    }
}

impl From<&soundcheck_core::model::DeliveryConfig> for DeliverySettings {
    fn from(c: &soundcheck_core::model::DeliveryConfig) -> Self {
        Self {
            max_attempts: c.max_attempts,
            initial_backoff: Duration::from_millis(c.initial_backoff_ms),
            max_backoff: Duration::from_millis(c.max_backoff_ms),
            batch_size: i64::from(c.batch_size),
            cursor_save_interval: Duration::from_millis(c.cursor_save_interval_ms),
            poll_interval: Duration::from_millis(c.poll_interval_ms),
            lease: Duration::from_millis(c.lease_ms),
        }
    }
}

/// A subscriber id's delivery position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// The id.
    pub id: String,
    /// Topics.
    pub topics: Vec<String>,
    /// Handlers sharing the id in this process.
    pub handlers: usize,
    /// Last outbox position handled.
    pub cursor: i64,
    /// Events written after the cursor (of any topic).
    pub lag: i64,
}

/// What replaying dead events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Delivered this time.
    pub delivered: usize,
    /// Failed again (parked again).
    pub failed: usize,
}

struct Group {
    id: String,
    topics: Mutex<Vec<String>>,
    handlers: Mutex<Vec<Handler>>,
    /// A cursor set from outside (reset); the dispatcher takes it on its next pass.
    cursor: Mutex<Option<i64>>,
    /// The last position delivered in this process (-1 until the dispatcher has run).
    delivered: std::sync::atomic::AtomicI64,
    /// Delivery tuning of this id (the service's, or its first subscriber's own).
    settings: DeliverySettings,
}

impl Group {
    fn handler_for(&self, key: &str) -> Option<Handler> {
        let handlers = self.handlers.lock().ok()?;
        if handlers.is_empty() {
            return None;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % handlers.len() as u64).unwrap_or(0);
        handlers.get(index).cloned()
    }

    fn wants(&self, topic: &str) -> bool {
        self.topics
            .lock()
            .is_ok_and(|t| t.iter().any(|x| x == topic))
    }
}

struct Inner<S> {
    /// This process's identity for delivery leases.
    owner: String,
    store: S,
    settings: DeliverySettings,
    committed: watch::Sender<i64>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// The events service over a store.
pub struct EventsService<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for EventsService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: StateStore + Clone + 'static> EventsService<S> {
    /// A service delivering from `store`'s outbox.
    pub fn new(store: S, settings: DeliverySettings) -> Self {
        let (committed, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                owner: uuid::Uuid::now_v7().to_string(),
                store,
                settings,
                committed,
                groups: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Tells dispatchers that events up to `seq` were committed in this process.
    pub fn notify_committed(&self, seq: i64) {
        self.inner.committed.send_if_modified(|current| {
            let newer = seq > *current;
            if newer {
                *current = seq;
            }
            newer
        });
    }

    /// Changes whenever events are committed in this process (the newest position), for
    /// readers that follow the outbox themselves (the live stream).
    pub fn committed(&self) -> watch::Receiver<i64> {
        self.inner.committed.subscribe()
    }

    /// The store the service delivers from.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Appends an event to the outbox and wakes the dispatchers.
    pub async fn publish(&self, params: EventParams) -> StoreResult<StoredEvent> {
        let key = ordering_key(&params, None);
        let stored = self.inner.store.publish(&params, &key).await?;
        self.notify_committed(stored.seq);
        Ok(stored)
    }

    /// Registers a handler; the first handler of an id starts its dispatcher.
    pub async fn subscribe(&self, options: SubscribeOptions) -> StoreResult<()> {
        let settings = self.inner.settings;
        self.subscribe_with(options, settings).await
    }

    /// [`EventsService::subscribe`] with this id's own retry and batching settings (sinks use
    /// it for their per-endpoint retry schedule); the first subscriber of an id decides.
    pub async fn subscribe_with(
        &self,
        options: SubscribeOptions,
        settings: DeliverySettings,
    ) -> StoreResult<()> {
        let store = &self.inner.store;
        let stored = store.cursor(&options.id).await?;
        let cursor = match (options.start, stored) {
            (StartAt::After(seq), _) => Some(seq),
            (_, Some(_)) => None,
            (StartAt::Beginning, None) => Some(0),
            (StartAt::Latest, None) => Some(store.last_seq().await?),
        };
        let (group, new) = {
            let mut groups = self.inner.groups.lock().map_err(|_| poisoned())?;
            match groups.get(&options.id) {
                Some(g) => (g.clone(), false),
                None => {
                    let g = Arc::new(Group {
                        id: options.id.clone(),
                        topics: Mutex::new(Vec::new()),
                        handlers: Mutex::new(Vec::new()),
                        cursor: Mutex::new(None),
                        delivered: std::sync::atomic::AtomicI64::new(-1),
                        settings,
                    });
                    groups.insert(options.id.clone(), g.clone());
                    (g, true)
                }
            }
        };
        let topics = {
            let mut topics = group.topics.lock().map_err(|_| poisoned())?;
            for t in &options.topics {
                if !topics.contains(t) {
                    topics.push(t.clone());
                }
            }
            topics.clone()
        };
        group
            .handlers
            .lock()
            .map_err(|_| poisoned())?
            .push(options.on_event.clone());
        if let Some(seq) = cursor {
            store.save_cursor(&options.id, &topics, seq).await?;
        }
        if new {
            let inner = self.inner.clone();
            self.inner.tasks.spawn(dispatch::run(inner, group));
        }
        Ok(())
    }

    /// Every subscriber id of this process, with its cursor and lag.
    pub async fn subscribers(&self) -> StoreResult<Vec<SubscriberInfo>> {
        let groups: Vec<Arc<Group>> = self
            .inner
            .groups
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect();
        let last = self.inner.store.last_seq().await?;
        let mut out = Vec::new();
        for g in groups {
            let delivered = g.delivered.load(std::sync::atomic::Ordering::Acquire);
            let cursor = if delivered >= 0 {
                delivered
            } else {
                self.inner.store.cursor(&g.id).await?.unwrap_or(last)
            };
            out.push(SubscriberInfo {
                id: g.id.clone(),
                topics: g.topics.lock().map(|t| t.clone()).unwrap_or_default(),
                handlers: g.handlers.lock().map(|h| h.len()).unwrap_or(0),
                cursor,
                lag: last - cursor,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Parked events of a subscriber id.
    pub async fn dead_events(&self, id: &str) -> StoreResult<Vec<DeadEvent>> {
        self.inner.store.dead_events(id).await
    }

    /// Delivers a subscriber's parked events again (with retries); those that fail again stay
    /// parked.
    pub async fn replay_dead(&self, id: &str) -> StoreResult<ReplayReport> {
        let group = self
            .inner
            .groups
            .lock()
            .map_err(|_| poisoned())?
            .get(id)
            .cloned();
        let Some(group) = group else {
            return Ok(ReplayReport::default());
        };
        let mut report = ReplayReport::default();
        for dead in self.inner.store.dead_events(id).await? {
            if dispatch::deliver(&self.inner, &group, &dead.event).await? {
                self.inner.store.mark_replayed(id, dead.event.seq).await?;
                report.delivered += 1;
            } else {
                report.failed += 1;
            }
        }
        Ok(report)
    }

    /// Moves a subscriber id's cursor (to replay from `seq`, or skip ahead).
    pub async fn reset_cursor(&self, id: &str, seq: i64) -> StoreResult<()> {
        let topics = match self.inner.groups.lock().map_err(|_| poisoned())?.get(id) {
            Some(g) => {
                if let Ok(mut cursor) = g.cursor.lock() {
                    *cursor = Some(seq);
                }
                g.topics.lock().map(|t| t.clone()).unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.inner.store.save_cursor(id, &topics, seq).await?;
        // Wake the dispatchers without moving the committed position: an artificial position
        // would swallow every later commit notification.
        self.inner.committed.send_modify(|_| {});
        Ok(())
    }

    /// Stops every dispatcher after its current batch and waits for them.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

fn poisoned() -> crate::store::StoreError {
    crate::store::StoreError::Corrupt("events service lock poisoned by a panic".into())
}
