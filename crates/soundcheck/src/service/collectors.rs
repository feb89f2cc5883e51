//! Fact collectors: the [`FactCollector`] trait others implement, the built-in `soundcheck`
//! collector (an entity's certification per track as `soundcheck:default/track/<trackId>`),
//! and collection itself: entity filters, batches, cache freshness and rate limits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use soundcheck_core::model::{CacheSetting, CollectorConfig, Limiter};

use super::{App, ServiceError, ServiceResult};
use crate::store::{FactRecord, QueryStore};

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The collector could not reach its source or read its answer.
    #[error("{0}")]
    Source(String),
    /// The service failed underneath.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A source of facts, run on a schedule or on demand (soundcheck.md §2.4).
pub trait FactCollector: Send + Sync {
    /// The collector id: the `source` of every fact it returns.
    fn id(&self) -> &str;
    /// The fact names it can collect with this configuration.
    fn fact_names(&self, app: &App, config: &CollectorConfig) -> Vec<String>;
    /// Collects facts for these entities (ref, body); entities it cannot resolve are left out.
    fn collect<'a>(
        &'a self,
        app: &'a App,
        config: &'a CollectorConfig,
        entities: &'a [(String, Value)],
    ) -> BoxFuture<'a, Result<Vec<FactRecord>, CollectError>>;
}

/// The built-in `soundcheck` collector: each entity's certification on each track.
pub struct SoundcheckCollector;

impl FactCollector for SoundcheckCollector {
    fn id(&self) -> &str {
        "soundcheck"
    }

    fn fact_names(&self, app: &App, _: &CollectorConfig) -> Vec<String> {
        app.definitions()
            .config
            .tracks
            .iter()
            .filter(|t| !t.archived)
            .map(|t| format!("track/{}", t.id))
            .collect()
    }

    fn collect<'a>(
        &'a self,
        app: &'a App,
        config: &'a CollectorConfig,
        entities: &'a [(String, Value)],
    ) -> BoxFuture<'a, Result<Vec<FactRecord>, CollectError>> {
        Box::pin(async move {
            let wanted: HashSet<String> = config
                .collects
                .iter()
                .map(|c| c.fact_name.clone())
                .collect();
            let now = super::now_ms();
            let mut out = Vec::new();
            for (entity, _) in entities {
                for cert in app.certifications(entity, None, false).await? {
                    let name = format!("track/{}", cert.track.id);
                    if !wanted.is_empty() && !wanted.contains(&name) {
                        continue;
                    }
                    out.push(FactRecord {
                        entity_ref: entity.clone(),
                        fact_ref: format!("soundcheck:default/{name}"),
                        scope: "default".to_string(),
                        data: serde_json::to_value(&cert).unwrap_or(Value::Null),
                        timestamp_ms: now,
                    });
                }
            }
            Ok(out)
        })
    }
}

/// What one collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Entities collected for.
    pub entities: usize,
    /// Entities skipped because their facts were still fresh.
    pub fresh: usize,
    /// Facts submitted.
    pub facts: usize,
    /// Batches not run because the rate limit was reached.
    pub deferred_batches: usize,
}

/// Fixed-window execution counts per collector (`job.workers.<id>.limiter`).
#[derive(Debug, Default)]
pub struct RateLimits {
    windows: std::sync::Mutex<HashMap<String, (i64, u32)>>,
    /// The batch a deferred run stopped at, per collector.
    resume: std::sync::Mutex<HashMap<String, usize>>,
}

impl RateLimits {
    /// Where the next run of `collector` starts (then forgets it).
    pub fn resume_at(&self, collector: &str, batches: usize) -> usize {
        let Ok(mut resume) = self.resume.lock() else {
            return 0;
        };
        resume
            .remove(collector)
            .filter(|b| *b < batches)
            .unwrap_or(0)
    }

    /// Remembers the batch a deferred run stopped at.
    pub fn set_resume(&self, collector: &str, batch: usize) {
        if let Ok(mut resume) = self.resume.lock() {
            resume.insert(collector.to_string(), batch);
        }
    }

    /// Takes one execution for `collector` at `now_ms`; false when its window is used up.
    pub fn take(&self, collector: &str, limiter: Option<&Limiter>, now_ms: i64) -> bool {
        let Some(limit) = limiter else {
            return true;
        };
        let Ok(mut windows) = self.windows.lock() else {
            return true;
        };
        let duration = i64::try_from(limit.duration_ms).unwrap_or(i64::MAX);
        let entry = windows.entry(collector.to_string()).or_insert((now_ms, 0));
        if now_ms - entry.0 >= duration {
            *entry = (now_ms, 0);
        }
        if entry.1 >= limit.max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

impl App {
    /// The collector registered under `id`.
    pub fn collector(&self, id: &str) -> Option<Arc<dyn FactCollector>> {
        self.collectors
            .read()
            .ok()?
            .iter()
            .find(|c| c.id() == id)
            .cloned()
    }

    /// Adds a collector (built-ins are registered at start).
    pub fn register_collector(&self, collector: Arc<dyn FactCollector>) {
        if let Ok(mut list) = self.collectors.write() {
            list.retain(|c| c.id() != collector.id());
            list.push(collector);
        }
    }

    /// The configured blocks of a collector (config files, then API-created), or a default
    /// block for a registered collector with none.
    pub fn collector_blocks(&self, id: &str) -> Vec<CollectorConfig> {
        let mut blocks: Vec<CollectorConfig> = self
            .collector_configs()
            .into_iter()
            .filter(|c| c.id == id)
            .collect();
        if blocks.is_empty() && self.collector(id).is_some() {
            blocks.push(CollectorConfig {
                id: id.to_string(),
                frequency: None,
                initial_delay_seconds: 0,
                batch_size: 100,
                applies_to: Default::default(),
                cache: CacheSetting::Off,
                collects: Vec::new(),
                settings: Value::Object(Default::default()),
                source: Value::Object(Default::default()),
            });
        }
        blocks
    }

    /// Collects with one block for `entities` (refs; all entities the block admits when
    /// `None`), in batches, skipping fresh facts unless `refresh`; submits what it collected.
    pub async fn collect_block(
        &self,
        block: &CollectorConfig,
        entities: Option<&[String]>,
        refresh: bool,
        now_ms: i64,
    ) -> Result<Collected, CollectError> {
        let collector = self.collector(&block.id).ok_or_else(|| {
            CollectError::Source(format!("no collector `{}` runs in this service", block.id))
        })?;
        let all = self.entities();
        let selected: Vec<(String, Value)> = match entities {
            Some(refs) => refs
                .iter()
                .filter_map(|r| self.entity_body(r).map(|b| (r.clone(), b)))
                .filter(|(_, b)| block.applies_to.admits(b))
                .collect(),
            None => all
                .iter()
                .filter(|(_, b)| block.applies_to.admits(b))
                .cloned()
                .collect(),
        };
        let (todo, fresh) = self
            .stale(&*collector, block, selected, refresh, now_ms)
            .await?;
        let mut done = Collected {
            fresh,
            ..Default::default()
        };
        let limiter = self.definitions().config.limiters.get(&block.id).copied();
        let batches: Vec<&[(String, Value)]> =
            todo.chunks(block.batch_size.max(1) as usize).collect();
        // A run that was cut short by the rate limit resumes where it stopped, so the entities
        // at the end of the list are not starved.
        let start = self.rate_limits.resume_at(&block.id, batches.len());
        let order: Vec<usize> = (start..batches.len()).chain(0..start).collect();
        for (i, &b) in order.iter().enumerate() {
            let batch = batches[b];
            if !self.rate_limits.take(&block.id, limiter.as_ref(), now_ms) {
                done.deferred_batches = batches.len() - i;
                self.rate_limits.set_resume(&block.id, b);
                tracing::info!(collector = %block.id, deferred = done.deferred_batches, "rate limit reached; remaining batches wait for the next run");
                break;
            }
            let facts = collector.collect(self, block, batch).await?;
            done.entities += batch.len();
            done.facts += facts.len();
            metrics::counter!("soundcheck_collector_facts_total", "collector" => block.id.clone())
                .increment(facts.len() as u64);
            self.live()
                .submit_facts(facts)
                .await
                .map_err(ServiceError::from)?;
        }
        Ok(done)
    }

    /// Splits entities into those to collect and the number whose facts are still fresh.
    async fn stale(
        &self,
        collector: &dyn FactCollector,
        block: &CollectorConfig,
        entities: Vec<(String, Value)>,
        refresh: bool,
        now_ms: i64,
    ) -> ServiceResult<(Vec<(String, Value)>, usize)> {
        let max_age = match block.cache {
            _ if refresh => return Ok((entities, 0)),
            CacheSetting::Off => return Ok((entities, 0)),
            CacheSetting::On => i64::MAX,
            CacheSetting::ForSeconds(s) => {
                i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)
            }
        };
        let names = collector.fact_names(self, block);
        let refs: Vec<String> = names
            .iter()
            .map(|n| format!("{}:default/{n}", block.id))
            .collect();
        let entity_refs: Vec<String> = entities.iter().map(|(r, _)| r.clone()).collect();
        let times = self.store.fact_times(&entity_refs, &refs).await?;
        let mut newest: HashMap<&str, Vec<i64>> = HashMap::new();
        for (entity, _, at) in &times {
            newest.entry(entity.as_str()).or_default().push(*at);
        }
        // A collection writes all of an entity's facts at once: the newest one tells when.
        let is_fresh = |e: &str| {
            newest
                .get(e)
                .is_some_and(|ts| ts.iter().any(|t| now_ms.saturating_sub(*t) < max_age))
        };
        let (fresh, stale): (Vec<_>, Vec<_>) = entities.into_iter().partition(|(r, _)| is_fresh(r));
        Ok((stale, fresh.len()))
    }

    /// Every collector block in force: config files, then the API-created ones.
    pub fn collector_configs(&self) -> Vec<CollectorConfig> {
        let defs = self.definitions();
        let mut all = defs.config.collectors.clone();
        all.extend(defs.api_collectors.iter().cloned());
        all
    }
}
