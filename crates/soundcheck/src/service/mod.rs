//! The application behind `soundcheck serve`: the loaded definitions (config files plus what
//! was created through the API), the store, the live evaluator and the events service, and
//! the operations the REST API exposes. HTTP lives in `server`; this module knows nothing of
//! it beyond returning [`ServiceError`]s that map onto HTTP statuses.

mod catalog;
mod collector_defs;
pub mod collectors;
mod definitions;
mod exemptions;
mod facts;
mod results;
pub mod scheduler;
mod status;
pub mod views;

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;
use soundcheck_core::Engine;
use soundcheck_core::config::{ConfigError, Node};
use soundcheck_core::model::SoundcheckConfig;

use crate::events::{DeliverySettings, EventsService};
use crate::state::live::LiveState;
use crate::store::{SqlStore, StoreError};

pub use catalog::{BackstageCatalog, CatalogSource};
pub use collector_defs::FactCollectorView;
pub use definitions::{Family, Incoming, definition_json};
pub use exemptions::ExemptionFilter;
pub use facts::parse_fact;
pub use results::entity_ref;
pub use status::{CheckEntity, TrackEntity};

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or names something invalid; says where (JSON pointer).
    #[error("{0}")]
    Invalid(String),
    /// A named check, track, entity or exemption does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state (an id in use, a check a track needs).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (a definition from a config file is read-only).
    #[error("{0}")]
    Forbidden(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// All problems of a rejected definition, one per line.
    pub fn from_config(e: &ConfigError) -> Self {
        Self::Invalid(
            e.errors()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}

/// Result alias for service operations.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// The definitions in force: config files plus API-created ones, compiled.
pub struct Definitions {
    /// Every check and track, validated together.
    pub config: SoundcheckConfig,
    /// The compiled engine.
    pub engine: Arc<Engine>,
    /// Ids of checks created through the API (the rest come from files and are read-only).
    pub api_checks: HashSet<String>,
    /// Ids of tracks and campaigns created through the API.
    pub api_tracks: HashSet<String>,
    /// Collector blocks created through the API (one per collector id).
    pub api_collectors: Vec<soundcheck_core::model::CollectorConfig>,
}

/// How the service starts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The merged config files (`Loaded::root`) and what they decoded to.
    pub base: Node,
    /// The file config as decoded.
    pub file_config: SoundcheckConfig,
    /// Database URL.
    pub database_url: String,
    /// Where entities come from at start (replacing the stored catalog), if anywhere.
    pub catalog: Option<CatalogSource>,
    /// Facts files (JSON lines shaped like `POST /facts` items) submitted at start.
    pub facts_files: Vec<std::path::PathBuf>,
}

/// The running application.
pub struct App {
    base: Node,
    defs: ArcSwap<Definitions>,
    store: SqlStore,
    events: Option<EventsService<SqlStore>>,
    entities: ArcSwap<Vec<(String, Value)>>,
    /// Serialises changes of definitions (validate, store, swap).
    definitions_lock: tokio::sync::Mutex<()>,
    /// Held by the background re-evaluation that follows a definition change.
    reevaluation: Arc<tokio::sync::Mutex<()>>,
    /// Registered fact collectors.
    collectors: std::sync::RwLock<Vec<Arc<dyn collectors::FactCollector>>>,
    /// Per-collector rate limit windows.
    rate_limits: collectors::RateLimits,
    /// Where the catalog comes from (refreshed by the `catalog` job).
    catalog_source: Option<CatalogSource>,
    /// Orders this process's writers: fact submissions, pipelined (each reads what the
    /// previous one leaves), and every other writer, which sees none in progress.
    writer: Arc<crate::state::pipeline::Writer>,
    /// The store's change marker when this process last loaded entities and definitions.
    seen: std::sync::Mutex<[i64; 4]>,
    /// Cancelled when the service starts shutting down (ends live streams).
    stopping: tokio_util::sync::CancellationToken,
    /// Background re-evaluations started and not yet finished.
    pending_reevaluations: std::sync::atomic::AtomicUsize,
}

impl App {
    /// Opens the store, loads API-created definitions, starts event delivery and loads the
    /// catalog source.
    pub async fn start(options: AppOptions) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        let store = SqlStore::open(&options.database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot open database `{}`",
                    crate::store::redact_url(&options.database_url)
                )
            })?
            .with_state_cache(options.file_config.server.state_cache_entities)
            .with_write_behind(options.file_config.server.state_write_behind_seconds);
        store.spawn_write_behind_timer();
        let events = options.file_config.events_enabled.then(|| {
            EventsService::new(
                store.clone(),
                DeliverySettings::from(&options.file_config.delivery),
            )
        });
        let defs = definitions::load(&options.base, &store)
            .await
            .context("the definitions stored in the database no longer validate")?;
        let app = Arc::new(Self {
            base: options.base,
            defs: ArcSwap::from_pointee(defs),
            store,
            events,
            entities: ArcSwap::from_pointee(Vec::new()),
            definitions_lock: tokio::sync::Mutex::new(()),
            reevaluation: Arc::new(tokio::sync::Mutex::new(())),
            collectors: std::sync::RwLock::new(vec![Arc::new(collectors::SoundcheckCollector)]),
            rate_limits: collectors::RateLimits::default(),
            catalog_source: options.catalog.clone(),
            writer: Arc::new(crate::state::pipeline::Writer::new()),
            seen: std::sync::Mutex::new([0; 4]),
            stopping: tokio_util::sync::CancellationToken::new(),
            pending_reevaluations: std::sync::atomic::AtomicUsize::new(0),
        });
        if let Some(events) = &app.events {
            crate::sinks::start(
                events,
                &options.file_config.sinks,
                DeliverySettings::from(&options.file_config.delivery),
            )
            .await
            .context("cannot start the event sinks")?;
        }
        // Before anything evaluates: results are written where their checks' clusters say.
        app.cluster_results().await;
        if let Some(source) = &options.catalog {
            app.load_catalog(source).await?;
        }
        app.refresh_entities().await?;
        if !options.facts_files.is_empty() {
            app.load_fact_files(&options.facts_files).await?;
        }
        Ok(app)
    }

    /// The definitions in force.
    pub fn definitions(&self) -> Arc<Definitions> {
        self.defs.load_full()
    }

    /// The store.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Where the catalog comes from.
    pub fn catalog_source(&self) -> Option<&CatalogSource> {
        self.catalog_source.as_ref()
    }

    /// The events service, when `soundcheck.events.enabled`.
    pub fn events(&self) -> Option<&EventsService<SqlStore>> {
        self.events.as_ref()
    }

    /// The live evaluator over the definitions in force.
    pub fn live(&self) -> LiveState<SqlStore> {
        LiveState::new(
            self.defs.load().engine.clone(),
            self.store.clone(),
            self.events.clone(),
        )
        .with_writer(Arc::clone(&self.writer))
    }

    /// Every known entity: (ref, body), sorted by ref.
    pub fn entities(&self) -> Arc<Vec<(String, Value)>> {
        self.entities.load_full()
    }

    /// Re-reads the entity list from the store.
    pub async fn refresh_entities(&self) -> Result<(), StoreError> {
        use crate::store::QueryStore;
        let marker = self.store.change_marker().await?;
        let mut entities = self.store.entities().await?;
        // Byte order, whatever the database's collation: lookups binary-search this list.
        entities.sort_by(|a, b| a.0.cmp(&b.0));
        self.entities.store(Arc::new(entities));
        if let Ok(mut seen) = self.seen.lock() {
            seen[0] = marker[0];
            seen[1] = marker[1];
        }
        Ok(())
    }

    /// Picks up what other replicas changed in the shared database: the catalog and the
    /// definitions created through the API. Cheap when nothing changed (one query).
    pub async fn sync(&self) -> anyhow::Result<()> {
        use crate::store::QueryStore;
        let marker = self.store.change_marker().await?;
        let seen = self.seen.lock().map(|s| *s).unwrap_or([0; 4]);
        if marker[..2] != seen[..2] {
            self.refresh_entities().await?;
            tracing::info!(
                entities = marker[0],
                "catalog changed in the database; reloaded"
            );
        }
        if marker[2..] != seen[2..] {
            let _guard = self.definitions_lock.lock().await;
            let defs = definitions::load(&self.base, &self.store).await?;
            self.defs.store(Arc::new(defs));
            self.cluster_results().await;
            if let Ok(mut s) = self.seen.lock() {
                s[2] = marker[2];
                s[3] = marker[3];
            }
            tracing::info!("definitions changed in the database; reloaded");
        }
        Ok(())
    }

    /// Re-evaluates every check and re-certifies every track for every entity in `scope`.
    pub async fn certify_world(
        &self,
        scope: &str,
    ) -> Result<crate::state::world::WorldOutcome, StoreError> {
        self.live().certify_world(scope).await
    }

    /// Cancelled when shutdown begins, so long-lived responses (event streams) end.
    pub fn stopping(&self) -> tokio_util::sync::CancellationToken {
        self.stopping.clone()
    }

    /// Waits for fact submissions still committing (their callers may have gone), writes the
    /// results and levels write-behind holds, then stops event delivery (saving cursors).
    pub async fn shutdown(&self) {
        let writer = self.writer.lock().await;
        // Not needed for safety (they are rolled forward on open), but it spares the next
        // start the work.
        if let Err(e) = self.store.settle().await {
            tracing::warn!(error = %e, "could not write held results and levels; they are rolled forward on the next start");
        }
        drop(writer);
        if let Some(events) = &self.events {
            events.shutdown().await;
        }
    }
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Now, in milliseconds since the epoch (for callers outside the service).
pub fn now() -> i64 {
    now_ms()
}

/// Milliseconds since the epoch as RFC 3339 (`2026-11-27T19:25:35.123Z`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
