//! `soundcheck bench`: generated workloads for benchmarks and the peer comparison.

use clap::{Args, Subcommand};

use super::Exit;

/// Flags of `soundcheck bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// Bench subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a synthetic config, catalog and facts for benchmarks.
    Generate(crate::batch::generate::GenerateArgs),
    /// Measure how long a fact change takes to reach an in-process subscriber.
    Latency(crate::batch::latency::LatencyArgs),
    /// Load a running server over HTTP (fact ingestion, certification reads).
    Load(crate::batch::load::LoadArgs),
    /// Measure a sink: latency from fact submission to delivery, and events/s on a backlog.
    Sinks(crate::batch::sink_bench::SinkBenchArgs),
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<Exit> {
    match &args.command {
        BenchCommand::Generate(g) => crate::batch::generate::run(g).map(|()| Exit::Success),
        BenchCommand::Latency(l) => crate::batch::latency::run(l).map(|()| Exit::Success),
        BenchCommand::Load(l) => crate::batch::load::run(l).map(|()| Exit::Success),
        BenchCommand::Sinks(s) => crate::batch::sink_bench::run(s).map(|()| Exit::Success),
    }
}
