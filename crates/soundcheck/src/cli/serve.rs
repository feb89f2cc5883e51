//! `soundcheck serve`: the HTTP API, event delivery and background work on the embedded
//! defaults (SQLite file, in-process events), until SIGTERM or Ctrl-C; then in-flight requests
//! and evaluations finish and delivery positions are saved before the process exits.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::{Exit, load_config};
use crate::server::{self, HttpSettings, auth::Auth};
use crate::service::scheduler::{Scheduler, SystemClock};
use crate::service::{App, AppOptions, CatalogSource};

/// Flags of `soundcheck serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config files (app-config YAML with a `soundcheck:` section), merged in order. With no
    /// --config the bundled example (config, catalog and facts in `examples/`) is served.
    #[arg(long = "config", short = 'c', num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// Catalog files loaded at start; entities no longer in them are removed.
    #[arg(long = "catalog", num_args = 1..)]
    pub catalog: Vec<PathBuf>,
    /// Facts files (JSON lines shaped like `POST /facts` items) submitted at start.
    #[arg(long = "facts", num_args = 1..)]
    pub facts: Vec<PathBuf>,
    /// Database URL (overrides `soundcheck.server.database`; default sqlite://soundcheck.db).
    #[arg(long, env = "SOUNDCHECK_DATABASE_URL")]
    pub database: Option<String>,
    /// Address to bind (overrides `soundcheck.server.host`).
    #[arg(long)]
    pub host: Option<String>,
    /// Port (overrides `soundcheck.server.port`; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
}

const EXAMPLE_CONFIG: &str = "examples/app-config.yaml";
const EXAMPLE_CATALOG: &str = "examples/catalog/catalog-info.yaml";
const EXAMPLE_FACTS: &str = "examples/facts.jsonl";

/// Runs the service until a shutdown signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<Exit> {
    init_logging();
    let example = args.config.is_empty();
    if example && !(args.catalog.is_empty() && args.facts.is_empty()) {
        tracing::warn!(
            "--catalog and --facts are ignored without --config: serving the bundled example"
        );
    }
    let (config_files, catalog, facts) = if example {
        tracing::info!("no --config given: serving the bundled example in examples/");
        (
            vec![PathBuf::from(EXAMPLE_CONFIG)],
            vec![PathBuf::from(EXAMPLE_CATALOG)],
            vec![PathBuf::from(EXAMPLE_FACTS)],
        )
    } else {
        (
            args.config.clone(),
            args.catalog.clone(),
            args.facts.clone(),
        )
    };
    let Some(loaded) = load_config(&config_files) else {
        return Ok(Exit::Invalid);
    };
    let settings = loaded.config.server.clone();
    let host = args.host.clone().unwrap_or(settings.host.clone());
    let port = args.port.unwrap_or(settings.port);
    let ip: IpAddr = host
        .parse()
        .with_context(|| format!("`{host}` is not an IP address to listen on"))?;
    let database = args
        .database
        .clone()
        .or(settings.database.clone())
        .unwrap_or_else(|| "sqlite://soundcheck.db".to_string());
    if settings.tokens.is_empty() {
        tracing::warn!("no tokens in soundcheck.server.auth.tokens: every write will be refused");
    }
    let configured = loaded
        .config
        .collectors
        .iter()
        .find(|c| c.id == "catalog")
        .map(|c| CatalogSource::from_settings(&c.settings))
        .transpose()
        .context("invalid `soundcheck.collectors.catalog`")?
        .flatten();
    let source = if catalog.is_empty() {
        configured
    } else {
        Some(CatalogSource {
            files: catalog,
            ..configured.unwrap_or_default()
        })
    };
    if source.is_none() {
        tracing::warn!(
            "no catalog source (--catalog or soundcheck.collectors.catalog): serving the entities already stored"
        );
    }
    let options = AppOptions {
        base: loaded.root,
        file_config: loaded.config,
        database_url: database,
        catalog: source,
        facts_files: facts,
    };
    let http = HttpSettings {
        auth: Auth::new(
            settings.tokens,
            settings.allow_anonymous_reads,
            ip.is_loopback(),
        ),
        body_limit_bytes: settings.body_limit_bytes,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(options, http, SocketAddr::new(ip, port)))?;
    Ok(Exit::Success)
}

async fn serve(options: AppOptions, http: HttpSettings, addr: SocketAddr) -> anyhow::Result<()> {
    server::metrics::install();
    let app = App::start(options).await?;
    for c in app.collector_configs() {
        if c.id != "catalog" && app.collector(&c.id).is_none() {
            tracing::warn!(collector = %c.id, "configured collector does not run in this service; push its facts with POST /facts");
        }
    }
    app.reevaluate_in_background().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "soundcheck is listening: http://{local}/api/soundcheck");
    let router = server::router(Arc::clone(&app), http);
    let cancel = tokio_util::sync::CancellationToken::new();
    let scheduler = Scheduler::new(Arc::clone(&app), Arc::new(SystemClock));
    let scheduler = tokio::spawn(scheduler.run_until(cancel.clone()));
    let stopping = app.stopping();
    let signal = async move {
        shutdown_signal().await;
        // Live event streams never end by themselves; end them so shutdown can finish.
        stopping.cancel();
    };
    server::serve(listener, router, signal).await?;
    tracing::info!(
        "shutting down: finishing scheduled jobs and background evaluation, saving delivery positions"
    );
    cancel.cancel();
    if let Err(e) = scheduler.await {
        tracing::error!(error = %e, "the scheduler stopped abnormally");
    }
    app.settled().await;
    app.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Logs to stderr: human-readable on a terminal, JSON lines otherwise; `RUST_LOG` filters
/// (default `info`).
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    if let Err(e) = result {
        eprintln!("logging not initialised: {e}");
    }
}
