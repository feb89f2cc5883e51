//! The domain model: references, states, checks, tracks and the parsed configuration.

pub mod check;
pub mod collector;
pub mod refs;
pub mod server;
pub mod sinks;
pub mod state;
pub mod track;

pub use check::{Check, CheckType, Frequency, Schedule};
pub use collector::{CacheSetting, CollectEntry, CollectorConfig, Limiter};
pub use refs::{EntityRef, FactRef, RefError};
pub use server::{Access, ApiToken, ServerConfig};
pub use sinks::{BackstageRoute, BackstageSink, NatsSink, RetrySchedule, SinksConfig, WebhookSink};
pub use state::{CertState, CheckState};
pub use track::{Badge, LevelCheck, Track, TrackLevel};

/// The `soundcheck:` section as loaded and validated: every check and track, in file order.
#[derive(Debug, Clone, Default)]
pub struct SoundcheckConfig {
    /// Checks, ids unique.
    pub checks: Vec<Check>,
    /// Tracks, ids unique, every level entry naming a known check.
    pub tracks: Vec<Track>,
    /// `soundcheck.events.enabled`.
    pub events_enabled: bool,
    /// `soundcheck.events.delivery`.
    pub delivery: DeliveryConfig,
    /// `soundcheck.events.sinks`.
    pub sinks: SinksConfig,
    /// `soundcheck.retention`.
    pub retention: RetentionConfig,
    /// `soundcheck.server` (used by `soundcheck serve`).
    pub server: ServerConfig,
    /// `soundcheck.collectors`: every collector block, in file order.
    pub collectors: Vec<CollectorConfig>,
    /// `soundcheck.job.workers.<id>.limiter` by collector id.
    pub limiters: std::collections::BTreeMap<String, Limiter>,
}

/// How events are delivered to subscribers (`soundcheck.events.delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Attempts before an event is parked as dead (`maxAttempts`, default 5).
    pub max_attempts: u32,
    /// First retry delay in ms, doubled per attempt (`initialBackoffMs`, default 200).
    pub initial_backoff_ms: u64,
    /// Longest retry delay in ms (`maxBackoffMs`, default 30000).
    pub max_backoff_ms: u64,
    /// Events read per outbox query (`batchSize`, default 512).
    pub batch_size: u32,
    /// How often to look for events from other processes, ms (`pollIntervalMs`, default 500).
    pub poll_interval_ms: u64,
    /// Longest wait before a delivered position is saved, ms (`cursorSaveIntervalMs`, 250).
    pub cursor_save_interval_ms: u64,
    /// How long a process holds a subscriber id's delivery lease without renewing it, ms
    /// (`leaseMs`, default 15000).
    pub lease_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 30_000,
            batch_size: 512,
            poll_interval_ms: 500,
            cursor_save_interval_ms: 250,
            lease_ms: 15_000,
        }
    }
}

/// Fact history retention (`soundcheck.retention.factHistory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionConfig {
    /// Drop history rows older than this many days (`maxAgeDays`).
    pub max_age_days: Option<u32>,
    /// Keep at most this many history rows per (entity, fact ref, scope) (`maxPerFact`).
    pub max_per_fact: Option<u32>,
}

impl SoundcheckConfig {
    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The track with this id.
    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }
}
