//! `soundcheck bench sinks`: how fast events leave the process through a sink. Two figures per
//! sink: latency from a fact submission to the event's arrival at the receiver (sequential
//! changes), and sustained throughput while the sink works through a backlog (its cursor is
//! moved back over events already in the outbox).
//!
//! Receivers: a local webhook endpoint in this process (signed requests, 204 answers); a core
//! NATS subscription on the sink's subjects of a JetStream server; or, for the Backstage sink,
//! the same local endpoint, to which the interop project's recorder plugin forwards what its
//! `events.subscribe` handlers receive (`RECORDER_FORWARD_URL`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use serde_json::json;
use soundcheck_core::events::EventParams;
use soundcheck_core::model::{BackstageRoute, BackstageSink, NatsSink, WebhookSink};
use tokio::sync::mpsc::UnboundedSender;

use super::latency::{Prepared, measured_entity, percentiles, prepare};
use crate::events::DeliverySettings;
use crate::store::StateStore;

/// The sink measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// A webhook endpoint served by this process.
    Webhook,
    /// NATS JetStream (`--nats-url`).
    Nats,
    /// A running Backstage backend (`--backstage-url`), through its event bus.
    Backstage,
}

/// Flags of `soundcheck bench sinks`.
#[derive(Debug, Args)]
pub struct SinkBenchArgs {
    /// The sink to measure.
    #[arg(long, value_enum)]
    pub sink: SinkKind,
    /// NATS server with JetStream, for `--sink nats`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Backstage backend for `--sink backstage`, running interop/backstage with
    /// `RECORDER_FORWARD_URL=http://127.0.0.1:<receiver-port>/hook`.
    #[arg(long, default_value = "http://127.0.0.1:7077")]
    pub backstage_url: String,
    /// Static external-access token of that backend.
    #[arg(long, env = "BACKSTAGE_EVENTS_TOKEN", default_value = "")]
    pub backstage_token: String,
    /// Port of the local receiver (0 picks one; `--sink backstage` needs a known one).
    #[arg(long, default_value_t = 0)]
    pub receiver_port: u16,
    /// Database URL; a new SQLite file in a temporary directory when omitted.
    #[arg(long)]
    pub database: Option<String>,
    /// Catalog entities loaded first (their first states fill the outbox).
    #[arg(long, default_value_t = 1000)]
    pub entities: usize,
    /// Sequential fact changes whose latency is measured.
    #[arg(long, default_value_t = 2000)]
    pub changes: usize,
    /// Events delivered again for the throughput figure (at most the outbox's size).
    #[arg(long, default_value_t = 50_000)]
    pub backlog: i64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(args: &SinkBenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(args))
}

/// What the receiver saw: every event counted, measured ones sent with their arrival time.
#[derive(Clone)]
struct Arrivals {
    count: Arc<AtomicU64>,
    measured: UnboundedSender<(String, Instant)>,
}

impl Arrivals {
    fn arrived(&self, body: &[u8]) {
        let at = Instant::now();
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(entity) = serde_json::from_slice::<EventParams>(body)
            .ok()
            .as_ref()
            .and_then(measured_entity)
        {
            // The receiving end is gone during the throughput phase; nothing to report then.
            let _ = self.measured.send((entity, at));
        }
    }
}

async fn measure(args: &SinkBenchArgs) -> anyhow::Result<()> {
    if args.sink == SinkKind::Backstage {
        anyhow::ensure!(
            args.receiver_port != 0,
            "--sink backstage needs --receiver-port: the port in the plugin's RECORDER_FORWARD_URL"
        );
        anyhow::ensure!(
            !args.backstage_token.is_empty(),
            "--sink backstage needs --backstage-token (or BACKSTAGE_EVENTS_TOKEN)"
        );
    }
    let bench = prepare(
        args.database.as_deref(),
        args.entities,
        Duration::from_secs(1),
    )
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let arrivals = Arrivals {
        count: Arc::default(),
        measured: tx,
    };
    let settings = DeliverySettings {
        poll_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let (subscriber, cleanup) = match args.sink {
        SinkKind::Webhook | SinkKind::Backstage => {
            let url = receiver(args.receiver_port, arrivals.clone()).await?;
            let id = if args.sink == SinkKind::Webhook {
                webhook(&bench, settings, url).await?
            } else {
                backstage(&bench, settings, args).await?
            };
            (id, None)
        }
        SinkKind::Nats => {
            let (id, stream) = nats(&bench, settings, arrivals.clone(), &args.nats_url).await?;
            (id, Some(stream))
        }
    };
    eprintln!("measuring {} sequential changes", args.changes);
    let (latencies, commits) = bench.sequential_changes(args.changes, &mut rx).await?;
    drop(rx);
    settle(&bench, &subscriber, &arrivals).await?;
    let (events, seconds) = throughput(&bench, &subscriber, &arrivals, args.backlog).await?;
    bench.events.shutdown().await;
    if let Some((js, stream)) = cleanup {
        let _ = js.delete_stream(&stream).await;
    }
    let mut figures = percentiles(&latencies);
    figures["commit"] = percentiles(&commits);
    figures["sink"] = json!(subscriber);
    figures["backend"] = json!(bench.store.backend());
    figures["entities"] = json!(args.entities);
    figures["backlogEvents"] = json!(events);
    figures["backlogSeconds"] = json!(seconds);
    figures["eventsPerSecond"] = json!((events as f64 / seconds).round());
    println!("{figures}");
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}

/// Waits until the sink has delivered everything and nothing has arrived for half a second,
/// so that late events of the latency phase are not counted as backlog.
async fn settle(bench: &Prepared, subscriber: &str, arrivals: &Arrivals) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = u64::MAX;
    loop {
        let lag = bench
            .events
            .subscribers()
            .await?
            .into_iter()
            .find(|s| s.id == subscriber)
            .map_or(0, |s| s.lag);
        let count = arrivals.count.load(Ordering::Relaxed);
        if lag == 0 && count == last {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the sink still had {lag} events to deliver after 2 minutes"
        );
        last = count;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Moves the sink's cursor back by `backlog` events and times until all have arrived again.
async fn throughput(
    bench: &Prepared,
    subscriber: &str,
    arrivals: &Arrivals,
    backlog: i64,
) -> anyhow::Result<(u64, f64)> {
    let newest = bench
        .store
        .events_after(0, i64::MAX)
        .await?
        .last()
        .map_or(0, |e| e.seq);
    let from = (newest - backlog).max(0);
    let expected = bench.store.events_after(from, i64::MAX).await?.len() as u64;
    eprintln!("delivering {expected} events again");
    let before = arrivals.count.load(Ordering::Relaxed);
    let started = Instant::now();
    bench.events.reset_cursor(subscriber, from).await?;
    let mut reported = Instant::now();
    loop {
        let arrived = arrivals.count.load(Ordering::Relaxed) - before;
        if arrived >= expected {
            break;
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "{arrived} of {expected} arrived after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {arrived} of {expected} events arrived within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((expected, started.elapsed().as_secs_f64()))
}

/// A local endpoint that counts what is POSTed to `/hook`; its URL.
async fn receiver(port: u16, arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                arrivals.arrived(&body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// A webhook sink pointed at the local receiver.
async fn webhook(
    bench: &Prepared,
    settings: DeliverySettings,
    url: String,
) -> anyhow::Result<String> {
    let sink = WebhookSink {
        id: "bench".into(),
        url,
        secret: Some("whsec_c291bmRjaGVjay1iZW5jaC1zZWNyZXQtMDEyMzQ1Njc4OQ==".into()),
        topics: Vec::new(),
        timeout_ms: 5000,
        retry: None,
    };
    crate::sinks::webhook::subscribe(&bench.events, &sink, settings).await?;
    Ok("webhook:bench".into())
}

/// A Backstage sink on the event bus of `--backstage-url`.
async fn backstage(
    bench: &Prepared,
    settings: DeliverySettings,
    args: &SinkBenchArgs,
) -> anyhow::Result<String> {
    let sink = BackstageSink {
        id: "bench".into(),
        base_url: args.backstage_url.trim_end_matches('/').to_string(),
        route: BackstageRoute::Bus,
        token: Some(args.backstage_token.clone()),
        topics: Vec::new(),
        timeout_ms: 5000,
        require_subscriber: true,
        retry: None,
    };
    crate::sinks::backstage::subscribe(&bench.events, &sink, settings).await?;
    Ok("backstage:bench".into())
}

/// A NATS sink on a stream of this run, and a core subscription on its subjects.
async fn nats(
    bench: &Prepared,
    settings: DeliverySettings,
    arrivals: Arrivals,
    url: &str,
) -> anyhow::Result<(String, (async_nats::jetstream::Context, String))> {
    let run = std::process::id();
    let sink = NatsSink {
        url: url.to_string(),
        subject_prefix: format!("soundcheck-bench-{run}"),
        stream: format!("SOUNDCHECK_BENCH_{run}"),
        topics: Vec::new(),
        retry: None,
    };
    let client = async_nats::connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))?;
    let mut messages = client
        .subscribe(format!("{}.>", sink.subject_prefix))
        .await?;
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            arrivals.arrived(&message.payload);
        }
    });
    crate::sinks::nats::subscribe(&bench.events, &sink, settings).await?;
    Ok((
        "nats".into(),
        (async_nats::jetstream::new(client), sink.stream),
    ))
}
