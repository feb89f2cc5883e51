//! The scheduler: collector blocks with a `frequency`, checks with a `schedule`, the catalog
//! refresh and fact-history retention, each a job with a next-run time and a lease in the
//! database. [`Scheduler::tick`] runs every due job once; the clock is injected, so tests
//! step it. Replicas sharing a PostgreSQL database claim each due job with a conditional
//! update, so a job never runs twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::FutureExt;
use soundcheck_core::model::{CollectorConfig, Frequency};
use tokio_util::sync::CancellationToken;

use super::App;
use crate::store::{CatalogStore, JobStore, QueryStore, Retention};

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        super::now_ms()
    }
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    /// Runs one collector block over the entities it admits.
    Collector(CollectorConfig),
    /// Executes one check for the entities its schedule admits (collecting the `soundcheck`
    /// facts it reads first).
    Check(String),
    /// Reloads the catalog source.
    Catalog,
    /// Applies fact-history retention.
    Retention,
    /// Re-certifies entities whose exemptions just expired (an expired exemption no longer
    /// counts as passing).
    ExemptionExpiry,
}

/// A scheduled job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Stable id (`collector:github:0`, `check:has-owner`, `catalog`, `retention`).
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// How often.
    pub frequency: Frequency,
    /// Wait before the first run (ms).
    pub initial_delay_ms: i64,
}

/// Runs due jobs.
pub struct Scheduler {
    app: Arc<App>,
    clock: Arc<dyn Clock>,
    owner: String,
    lease_ms: i64,
}

impl Scheduler {
    /// A scheduler for `app` with its own replica id.
    pub fn new(app: Arc<App>, clock: Arc<dyn Clock>) -> Self {
        Self {
            app,
            clock,
            owner: uuid::Uuid::now_v7().to_string(),
            lease_ms: 10 * 60 * 1000,
        }
    }

    /// The jobs the current definitions ask for.
    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for block in self.app.collector_configs() {
            let n = seen.entry(block.id.clone()).or_default();
            let id = format!("collector:{}:{n}", block.id);
            *n += 1;
            if block.id == "catalog" {
                if let Some(frequency) = block.frequency.clone() {
                    jobs.push(Job {
                        id: "catalog".to_string(),
                        kind: JobKind::Catalog,
                        frequency,
                        initial_delay_ms: seconds(block.initial_delay_seconds),
                    });
                }
                continue;
            }
            if self.app.collector(&block.id).is_none() {
                // Configured for metadata only (its facts are pushed): nothing to run.
                continue;
            }
            if let Some(frequency) = block.frequency.clone() {
                jobs.push(Job {
                    id,
                    initial_delay_ms: seconds(block.initial_delay_seconds),
                    kind: JobKind::Collector(block),
                    frequency,
                });
            }
        }
        for check in &self.app.definitions().config.checks {
            if let Some(schedule) = &check.schedule {
                jobs.push(Job {
                    id: format!("check:{}", check.id),
                    kind: JobKind::Check(check.id.clone()),
                    frequency: schedule.frequency.clone(),
                    initial_delay_ms: 0,
                });
            }
        }
        jobs.push(Job {
            id: "exemption-expiry".to_string(),
            kind: JobKind::ExemptionExpiry,
            frequency: Frequency::Every(60),
            initial_delay_ms: 0,
        });
        let retention = self.app.definitions().config.retention;
        if retention.max_age_days.is_some() || retention.max_per_fact.is_some() {
            jobs.push(Job {
                id: "retention".to_string(),
                kind: JobKind::Retention,
                frequency: Frequency::Every(3600),
                initial_delay_ms: 0,
            });
        }
        jobs
    }

    /// Runs every due job this replica can claim; returns the ids of the jobs it ran.
    pub async fn tick(&self) -> Vec<String> {
        if let Err(e) = self.app.sync().await {
            tracing::warn!(error = %format!("{e:#}"), "cannot pick up changes from other replicas");
        }
        let now = self.clock.now_ms();
        let mut ran = Vec::new();
        let jobs = self.jobs();
        for job in &jobs {
            // An interval job first runs after its initial delay; a cron job at its first
            // matching time after that.
            let first = match &job.frequency {
                Frequency::Every(_) => now.saturating_add(job.initial_delay_ms),
                cron => cron
                    .next_after(now.saturating_add(job.initial_delay_ms) - 1)
                    .unwrap_or(i64::MAX),
            };
            let store = self.app.store();
            if let Err(e) = store.ensure_job(&job.id, first).await {
                tracing::error!(job = %job.id, error = %e, "cannot record a scheduled job");
                continue;
            }
            match store
                .claim_job(&job.id, &self.owner, now, now + self.lease_ms)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(job = %job.id, error = %e, "cannot claim a scheduled job");
                    continue;
                }
            }
            // A panicking job (a collector's bug) fails this run, not the scheduler.
            let outcome = std::panic::AssertUnwindSafe(self.run(job, now))
                .catch_unwind()
                .await;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{e:#}")),
                Err(_) => Some("the job panicked".to_string()),
            };
            if let Some(e) = &error {
                tracing::warn!(job = %job.id, error = %e, "scheduled job failed");
            }
            let next = job
                .frequency
                .next_after(self.clock.now_ms())
                .unwrap_or(i64::MAX);
            if let Err(e) = store
                .finish_job(
                    &job.id,
                    &self.owner,
                    self.clock.now_ms(),
                    next,
                    error.as_deref(),
                )
                .await
            {
                tracing::error!(job = %job.id, error = %e, "cannot record a finished job");
            }
            metrics::counter!("soundcheck_scheduler_runs_total", "job" => job.id.clone())
                .increment(1);
            ran.push(job.id.clone());
        }
        self.record_lag(now, &jobs).await;
        ran
    }

    async fn record_lag(&self, now: i64, jobs: &[Job]) {
        if let Ok(states) = self.app.store().jobs().await {
            for s in states
                .into_iter()
                .filter(|s| jobs.iter().any(|j| j.id == s.job_id))
            {
                let lag = (now - s.next_run_at).max(0) as f64 / 1000.0;
                metrics::gauge!("soundcheck_scheduler_lag_seconds", "job" => s.job_id).set(lag);
            }
        }
    }

    async fn run(&self, job: &Job, now: i64) -> anyhow::Result<()> {
        match &job.kind {
            JobKind::Collector(block) => {
                let done = self.app.collect_block(block, None, true, now).await?;
                tracing::info!(job = %job.id, entities = done.entities, facts = done.facts, deferred = done.deferred_batches, "collector ran");
            }
            JobKind::Check(id) => self.run_check(id, now).await?,
            JobKind::Catalog => {
                if let Some(source) = self.app.catalog_source().cloned() {
                    let changed = self.app.load_catalog(&source).await?;
                    self.app.reevaluate_entities(&changed).await?;
                }
            }
            JobKind::ExemptionExpiry => {
                // Overlapping windows: re-certifying twice changes nothing the second time.
                let expired = self
                    .app
                    .store()
                    .exemptions_expired_between(now - 10 * 60_000, now)
                    .await?;
                let live = self.app.live();
                for entity in &expired {
                    live.recertify(entity, "default").await?;
                }
            }
            JobKind::Retention => {
                let retention = Retention::from(&self.app.definitions().config.retention);
                let removed = self.app.store().prune_facts(retention, now).await?;
                tracing::info!(removed, "fact history retention applied");
            }
        }
        Ok(())
    }

    /// A check's schedule: fresh `soundcheck` facts first when the check reads them, then the
    /// check itself for every entity its schedule and filter admit.
    async fn run_check(&self, check_id: &str, now: i64) -> anyhow::Result<()> {
        let defs = self.app.definitions();
        let Some(check) = defs.config.check(check_id) else {
            return Ok(());
        };
        let schedule = check.schedule.as_ref();
        let entities: Vec<String> = self
            .app
            .entities()
            .iter()
            .filter(|(_, b)| {
                check.applies_to.admits(b)
                    && schedule.is_none_or(|s| s.filter.admits(b) && !s.exclude.excludes(b))
            })
            .map(|(r, _)| r.clone())
            .collect();
        let reads_soundcheck = check
            .rule
            .iter()
            .chain(check.applicable.iter())
            .flat_map(|r| r.fact_refs())
            .any(|f| f.source() == "soundcheck");
        if reads_soundcheck {
            for block in self.app.collector_blocks("soundcheck") {
                self.app
                    .collect_block(&block, Some(&entities), true, now)
                    .await?;
            }
        }
        self.app
            .execute(Some(&[check_id.to_string()]), &entities, false)
            .await?;
        Ok(())
    }

    /// Ticks every second until cancelled.
    pub async fn run_until(self, cancel: CancellationToken) {
        loop {
            self.tick().await;
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }
}

fn seconds(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}
