//! `soundcheck bench latency`: how long one fact change takes to reach an in-process
//! subscriber, end to end (store the fact, re-evaluate, commit state and event, wake the
//! dispatcher, read the outbox, call the handler), over many sequential changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use soundcheck_core::Engine;
use soundcheck_core::events::{CHECK_STATUS_CHANGE_TOPIC, EventParams};

use super::generate::{checks, entity, entity_facts, tracks};
use crate::events::{
    DeliverySettings, EventsService, HandlerError, StartAt, SubscribeOptions, handler,
};
use crate::state::live::LiveState;
use crate::store::{CatalogStore, FactRecord, SqlStore};

/// Flags of `soundcheck bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Database URL; a new SQLite file in a temporary directory when omitted.
    #[arg(long)]
    pub database: Option<String>,
    /// Catalog entities loaded first.
    #[arg(long, default_value_t = 1000)]
    pub entities: usize,
    /// Sequential fact changes measured.
    #[arg(long, default_value_t = 10_000)]
    pub changes: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(args: &LatencyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(args))
}

/// A loaded store with live state and events, ready for measured fact changes.
pub(super) struct Prepared {
    /// Keeps the temporary database alive.
    _dir: tempfile::TempDir,
    /// The store.
    pub store: SqlStore,
    /// The events service.
    pub events: EventsService<SqlStore>,
    /// Live state that stores facts and commits states and events.
    pub live: LiveState<SqlStore>,
    /// The entities, in load order.
    pub refs: Vec<String>,
    /// When the run started (ms since the epoch), the base of fact timestamps.
    pub now: i64,
}

/// Loads `entities` synthetic entities with their facts into `database` (or a temporary
/// SQLite file), with events on: the outbox then holds their first states.
pub(super) async fn prepare(
    database: Option<&str>,
    entities: usize,
    poll_interval: Duration,
) -> anyhow::Result<Prepared> {
    let dir = tempfile::tempdir()?;
    let url = database.map_or_else(
        || format!("sqlite://{}", dir.path().join("latency.db").display()),
        ToString::to_string,
    );
    let store = SqlStore::open(&url)
        .await
        .with_context(|| format!("cannot open `{url}`"))?;
    let mut rng = StdRng::seed_from_u64(11);
    let config_json = json!({"soundcheck": {"checks": checks(50), "tracks": tracks(6, 50, &mut rng), "events": {"enabled": true}}});
    let loaded = soundcheck_core::config::load_str(
        "generated.yaml",
        &config_json.to_string(),
        dir.path(),
        &|_| None,
    )
    .map_err(|e| anyhow::anyhow!("generated config is invalid:\n{e}"))?;
    let engine = Arc::new(Engine::new(&loaded.config));
    let events = EventsService::new(
        store.clone(),
        DeliverySettings {
            poll_interval,
            ..Default::default()
        },
    );
    let live = LiveState::new(engine, store.clone(), Some(events.clone()));
    let now = chrono::Utc::now().timestamp_millis();
    let refs: Vec<String> = (0..entities)
        .map(|i| format!("component:default/svc-{i:06}"))
        .collect();
    let bodies: Vec<(String, serde_json::Value)> = (0..entities)
        .map(|i| (refs[i].clone(), entity(i, &mut rng)))
        .collect();
    store.upsert_entities(&bodies, now).await?;
    for (i, entity_ref) in refs.iter().enumerate() {
        // Every README starts present, so the first change of each entity flips check-000.
        let facts = entity_facts(&mut rng)
            .into_iter()
            .map(|(fact_ref, mut data)| {
                if fact_ref == "scm:default/files" {
                    data["readme"] = json!(true);
                }
                (fact_ref, data)
            })
            .map(|(fact_ref, data)| FactRecord {
                entity_ref: entity_ref.clone(),
                fact_ref: fact_ref.into(),
                scope: "default".into(),
                data,
                timestamp_ms: i as i64,
            })
            .collect();
        live.submit_facts(facts).await?;
    }
    Ok(Prepared {
        _dir: dir,
        store,
        events,
        live,
        refs,
        now,
    })
}

impl Prepared {
    /// Makes `changes` sequential changes, each flipping `check-000` of one entity, and waits
    /// after each for `arrivals` to report that entity: the latencies, submission to arrival,
    /// and how long each submission took to commit (the rest is delivery).
    pub(super) async fn sequential_changes(
        &self,
        changes: usize,
        arrivals: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>,
    ) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
        let mut latencies = Vec::with_capacity(changes);
        let mut commits = Vec::with_capacity(changes);
        for n in 0..changes {
            let entity_ref = &self.refs[n % self.refs.len()];
            let readme = (n / self.refs.len()) % 2 == 1;
            let fact = FactRecord {
                entity_ref: entity_ref.clone(),
                fact_ref: "scm:default/files".into(),
                scope: "default".into(),
                data: json!({"readme": readme, "codeowners": true, "dockerfile": true, "java_version": "17", "node_version": "20.11.1"}),
                timestamp_ms: self.now + n as i64,
            };
            let started = Instant::now();
            self.live.submit_facts(vec![fact]).await?;
            commits.push(started.elapsed());
            loop {
                let (entity, at) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                    .await
                    .context("no event within 10 s")?
                    .context("subscriber stopped")?;
                if entity == *entity_ref {
                    latencies.push(at.duration_since(started));
                    break;
                }
            }
        }
        Ok((latencies, commits))
    }
}

/// The entity of a `check-000` status change, which the measured changes flip.
pub(super) fn measured_entity(params: &EventParams) -> Option<String> {
    (params.topic == CHECK_STATUS_CHANGE_TOPIC && params.event_payload["checkId"] == "check-000")
        .then(|| {
            params.event_payload["entityRef"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
}

/// p50, p90, p99 and max of `latencies`, in milliseconds.
pub(super) fn percentiles(latencies: &[Duration]) -> serde_json::Value {
    let mut sorted: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    json!({
        "changes": latencies.len(),
        "p50Ms": pick(0.50),
        "p90Ms": pick(0.90),
        "p99Ms": pick(0.99),
        "maxMs": sorted.last().copied().unwrap_or(0.0),
    })
}

async fn measure(args: &LatencyArgs) -> anyhow::Result<()> {
    let bench = prepare(
        args.database.as_deref(),
        args.entities,
        Duration::from_secs(1),
    )
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    bench
        .events
        .subscribe(SubscribeOptions {
            id: "latency".into(),
            topics: vec![CHECK_STATUS_CHANGE_TOPIC.into()],
            on_event: handler(move |p: EventParams| {
                let tx = tx.clone();
                async move {
                    if let Some(entity) = measured_entity(&p) {
                        tx.send((entity, Instant::now()))
                            .map_err(|e| -> HandlerError { Box::new(e) })?;
                    }
                    Ok(())
                }
            }),
            start: StartAt::Latest,
        })
        .await?;
    let (latencies, commits) = bench.sequential_changes(args.changes, &mut rx).await?;
    bench.events.shutdown().await;
    report(&bench.store, &latencies, &commits, args)
}

fn report(
    store: &SqlStore,
    latencies: &[Duration],
    commits: &[Duration],
    args: &LatencyArgs,
) -> anyhow::Result<()> {
    let mut figures = percentiles(latencies);
    figures["commit"] = percentiles(commits);
    figures["backend"] = json!(store.backend());
    figures["entities"] = json!(args.entities);
    println!("{figures}");
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
