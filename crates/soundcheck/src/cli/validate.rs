//! `soundcheck validate`: load and check config only.

use std::path::PathBuf;

use super::{Exit, load_config};

/// Validates `paths`, printing a one-line summary on success.
pub fn run(paths: &[PathBuf]) -> anyhow::Result<Exit> {
    let Some(loaded) = load_config(paths) else {
        return Ok(Exit::Invalid);
    };
    println!(
        "config is valid: {} checks, {} tracks, {} warning(s)",
        loaded.config.checks.len(),
        loaded.config.tracks.len(),
        loaded.warnings.len()
    );
    Ok(Exit::Success)
}
