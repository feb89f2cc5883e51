//! The `soundcheck` command line. Exit codes: 0 success, 1 a `--require` gate failed,
//! 2 invalid config or input, 3 any other failure (I/O, ...).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the batch run allocates millions of small JSON nodes from two threads, where
/// glibc's allocator spent a third of the time growing and zeroing its arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = soundcheck::cli::Cli::parse();
    match soundcheck::cli::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            soundcheck::cli::Exit::Failure.into()
        }
    }
}
