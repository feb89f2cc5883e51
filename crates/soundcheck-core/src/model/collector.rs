//! Fact collector settings (soundcheck.md §2.3): `soundcheck.collectors.<id>` blocks with
//! their schedule, entity filter, batch size and cache, the facts each collects, and the
//! per-collector rate limits of `soundcheck.job.workers.<id>.limiter`.

use serde::Serialize;
use serde_json::Value;

use super::check::Frequency;
use crate::filter::Applicability;

/// How long collected facts stay fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CacheSetting {
    /// Always collect again (`cache: false`, the default).
    Off,
    /// Keep until collected again on schedule (`cache: true`).
    On,
    /// Fresh for this many seconds (`cache: {duration: {hours: 2}}`).
    ForSeconds(u64),
}

/// One fact a collector block collects (`collects[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectEntry {
    /// The fact name (the `name` part of `source:default/name`).
    pub fact_name: String,
    /// The extractor type, when the collector has several.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub extractor: Option<String>,
    /// Overrides the block's cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSetting>,
    /// Collector-specific settings of this entry, as given.
    pub settings: Value,
}

/// One `soundcheck.collectors.<id>` block (a collector may have several).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectorConfig {
    /// The collector id: the `source` of the facts it collects.
    pub id: String,
    /// When to collect; `None` means on demand only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Frequency>,
    /// Wait after start before the first scheduled run, in seconds.
    pub initial_delay_seconds: u64,
    /// Entities per collection job.
    pub batch_size: u32,
    /// Which entities to collect for.
    #[serde(flatten)]
    pub applies_to: Applicability,
    /// Freshness of collected facts.
    pub cache: CacheSetting,
    /// The facts collected.
    pub collects: Vec<CollectEntry>,
    /// Every other key of the block (credentials, URLs, catalog files), as given.
    pub settings: Value,
    /// The whole block as written, for showing it back.
    #[serde(skip)]
    pub source: Value,
}

/// `soundcheck.job.workers.<id>.limiter`: at most `max` collections per `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limiter {
    /// Executions allowed per window.
    pub max: u32,
    /// The window in milliseconds.
    pub duration_ms: u64,
}
