//! Command-line definitions and dispatch.

mod bench;
mod evaluate;
mod events;
mod persist;
mod serve;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use soundcheck_core::config::{self, ConfigError, Loaded};

pub use bench::BenchArgs;
pub use evaluate::EvaluateArgs;
pub use serve::ServeArgs;

/// Open-source Soundcheck: tech-health checks and certifications for Backstage catalogs.
#[derive(Debug, Parser)]
#[command(name = "soundcheck", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate checks and certifications over a catalog and facts, without a server.
    Evaluate(EvaluateArgs),
    /// Validate config files only: every problem as file:line:column, exit 2 on any error.
    Validate {
        /// Config files, merged in order.
        #[arg(long = "config", short = 'c', required = true, num_args = 1..)]
        config: Vec<PathBuf>,
    },
    /// Run the service: the REST API, event delivery and background work.
    Serve(ServeArgs),
    /// Follow a running service's events.
    Events(events::EventsArgs),
    /// Benchmark helpers.
    Bench(BenchArgs),
}

/// Process exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything went well.
    Success = 0,
    /// A `--require` gate failed.
    GateFailed = 1,
    /// The config or an input file is invalid.
    Invalid = 2,
    /// Anything else (I/O errors and the like).
    Failure = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Validate { config } => validate::run(&config),
        Command::Serve(args) => serve::run(&args),
        Command::Events(args) => events::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

/// Loads config files, printing warnings; on errors prints them all and returns `None`.
pub(crate) fn load_config(paths: &[PathBuf]) -> Option<Loaded> {
    match config::load_files(paths, &config::process_env) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Some(loaded)
        }
        Err(ConfigError { diagnostics }) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == config::Severity::Error)
                .count();
            eprintln!("{errors} error(s) in config; nothing was evaluated");
            None
        }
    }
}
