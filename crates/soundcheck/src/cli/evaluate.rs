//! `soundcheck evaluate`: the batch run over a catalog and facts files, with result and
//! certification outputs, a summary, and the `--require` release gate.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use soundcheck_core::Engine;

use super::{Exit, load_config};
use crate::batch::Batch;
use crate::batch::gate::{Offender, Requirement, offenders, parse_requirement};
use crate::batch::output::LineWriter;
use crate::batch::summary::Summary;
use crate::cli::persist::Persist;
use crate::input::{catalog, facts};

/// Flags of `soundcheck evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Config files (app-config YAML with a `soundcheck:` section), merged in order. With no
    /// --config, --catalog and --facts at all, the bundled example in `examples/` is used.
    #[arg(long = "config", short = 'c', num_args = 1.., requires = "catalog")]
    pub config: Vec<PathBuf>,
    /// Catalog files: Backstage YAML (several documents per file), JSON lines (.jsonl/.ndjson,
    /// or .json) or a .json file holding one array of entities.
    #[arg(long = "catalog", num_args = 1.., requires = "config")]
    pub catalog: Vec<PathBuf>,
    /// Facts files: JSON lines shaped like `POST /facts` items.
    #[arg(long = "facts", num_args = 1..)]
    pub facts: Vec<PathBuf>,
    /// Write one JSON line per reported result: {entityRef, checkId, state, scope}.
    #[arg(long)]
    pub results_out: Option<PathBuf>,
    /// Write one JSON line per level of every admitting track:
    /// {entityRef, trackId, levelOrdinal, state, cumulativeState, scope}.
    #[arg(long)]
    pub certifications_out: Option<PathBuf>,
    /// Fail (exit 1) when an admitted entity is below LEVEL on TRACK_ID; repeatable.
    #[arg(long = "require", value_name = "TRACK_ID:LEVEL")]
    pub require: Vec<String>,
    /// Keep state in this database (`sqlite://FILE` or `postgres://...`): results and
    /// certifications are compared with the previous run and only changes are written, with
    /// their transitions and (when `soundcheck.events.enabled`) their events.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Append one JSON line per event this run emitted: {topic, eventPayload, metadata}.
    #[arg(long, value_name = "FILE", requires = "database")]
    pub events_out: Option<PathBuf>,
    /// Write run statistics (counts and timings) as JSON.
    #[arg(long)]
    pub stats_out: Option<PathBuf>,
    /// Do not print the summary tables.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Timings and counts of a run (`--stats-out`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats<'a> {
    entities: u64,
    checks: usize,
    tracks: usize,
    pairs: u64,
    facts: facts::FactStats,
    load_ms: f64,
    evaluate_ms: f64,
    total_ms: f64,
    pairs_per_second: f64,
    summary: &'a Summary,
}

/// The bundled example, used when no input is named.
const EXAMPLE_CONFIG: &str = "examples/app-config.yaml";
const EXAMPLE_CATALOG: &str = "examples/catalog/catalog-info.yaml";
const EXAMPLE_FACTS: &str = "examples/facts.jsonl";

/// The inputs to read: the named ones, or the bundled example when none is named.
fn inputs(args: &EvaluateArgs) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
    if args.config.is_empty() && args.catalog.is_empty() && args.facts.is_empty() {
        eprintln!(
            "no --config/--catalog/--facts given: evaluating the bundled example in examples/"
        );
        return (
            vec![EXAMPLE_CONFIG.into()],
            vec![EXAMPLE_CATALOG.into()],
            vec![EXAMPLE_FACTS.into()],
        );
    }
    (
        args.config.clone(),
        args.catalog.clone(),
        args.facts.clone(),
    )
}

/// Everything loaded and checked before evaluation starts.
struct Prepared {
    events_enabled: bool,
    engine: Engine,
    requirements: Vec<Requirement>,
    catalog: catalog::Catalog,
    facts: facts::FactSet,
}

/// Loads config, gate requirements, catalog and facts; `Err(exit)` after reporting problems.
fn prepare(args: &EvaluateArgs) -> anyhow::Result<Result<Prepared, Exit>> {
    let (config_paths, catalog_paths, fact_paths) = inputs(args);
    if config_paths.is_empty() || catalog_paths.is_empty() {
        eprintln!("error: --facts needs --config and --catalog");
        return Ok(Err(Exit::Invalid));
    }
    let Some(loaded) = load_config(&config_paths) else {
        return Ok(Err(Exit::Invalid));
    };
    let engine = Engine::new(&loaded.config);
    let requirements = match args
        .require
        .iter()
        .map(|r| parse_requirement(r, &engine))
        .collect()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Err(Exit::Invalid));
        }
    };
    let catalog = match catalog::load(&catalog_paths)? {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            eprintln!(
                "{} invalid catalog record(s); nothing was evaluated",
                e.total
            );
            return Ok(Err(Exit::Invalid));
        }
    };
    let facts = match facts::load(&fact_paths, &catalog, engine.fact_table())? {
        Ok(f) => f,
        Err(e) => {
            eprint!("{e}");
            eprintln!("{} invalid fact line(s); nothing was evaluated", e.total);
            return Ok(Err(Exit::Invalid));
        }
    };
    if facts.stats.unknown_entity > 0 {
        eprintln!(
            "note: {} fact(s) name entities that are not in the catalog and were ignored",
            facts.stats.unknown_entity
        );
    }
    Ok(Ok(Prepared {
        events_enabled: loaded.config.events_enabled,
        engine,
        requirements,
        catalog,
        facts,
    }))
}

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let Prepared {
        events_enabled,
        engine,
        requirements,
        catalog,
        facts,
    } = match prepare(args)? {
        Ok(p) => p,
        Err(exit) => return Ok(exit),
    };
    let mut persist = match &args.database {
        Some(url) => Some(Persist::open(
            url,
            args.events_out.as_deref(),
            events_enabled,
            &engine,
            &catalog,
        )?),
        None => None,
    };
    let exemptions = persist
        .as_ref()
        .map(|p| p.exemptions.clone())
        .unwrap_or_default();
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut writer = LineWriter::create(
        &engine,
        &facts,
        args.results_out.as_deref(),
        args.certifications_out.as_deref(),
    )?;
    let mut summary = Summary::new(&engine);
    let mut found: Vec<Offender> = Vec::new();
    let progress = progress_bar(catalog.entities.len() as u64);
    let batch = Batch {
        engine: &engine,
        catalog: &catalog,
        facts: &facts,
        exemptions: &exemptions,
    };
    let evaluating = batch.run(|block| {
        if let Some(p) = persist.as_mut() {
            p.save(&engine, &catalog, &facts, block)?;
        }
        summary.add(block);
        offenders(&requirements, &engine, &catalog, &facts, block, &mut found);
        writer.write(&catalog, block)?;
        progress.inc(block.len() as u64);
        Ok(())
    })?;
    writer.finish()?;
    progress.finish_and_clear();
    if !args.quiet {
        print!("{}", summary.render());
    }
    if let Some(p) = persist {
        p.finish()?;
    }
    if let Some(path) = &args.stats_out {
        let stats = Stats {
            entities: summary.entities,
            checks: engine.check_count(),
            tracks: engine.track_count(),
            pairs: summary.pairs,
            facts: facts.stats,
            load_ms,
            evaluate_ms: evaluating.as_secs_f64() * 1e3,
            total_ms: started.elapsed().as_secs_f64() * 1e3,
            pairs_per_second: summary.pairs as f64 / evaluating.as_secs_f64().max(1e-9),
            summary: &summary,
        };
        let json = serde_json::to_string_pretty(&stats)?;
        std::fs::write(path, json).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(report_gate(&found, &requirements))
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} evaluating {bar:40} {pos}/{len} entities ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn report_gate(found: &[Offender], requirements: &[Requirement]) -> Exit {
    if requirements.is_empty() {
        return Exit::Success;
    }
    if found.is_empty() {
        eprintln!("release gate passed: every admitted entity meets the required levels");
        return Exit::Success;
    }
    eprintln!(
        "release gate failed: {} entity/track pair(s) below the required level",
        found.len()
    );
    for o in found {
        let scope = if o.scope == facts::DEFAULT_SCOPE {
            String::new()
        } else {
            format!(" (scope {})", o.scope)
        };
        let highest = o
            .highest
            .map_or_else(|| "no level".to_string(), |h| format!("level {h}"));
        eprintln!(
            "  {}{scope}: {} at {highest}, needs level {}",
            o.entity_ref, o.track_id, o.required
        );
    }
    Exit::GateFailed
}
