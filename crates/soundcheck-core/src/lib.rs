//! The pure core of soundcheck: everything that decides an outcome, with no async runtime,
//! database or HTTP.
//!
//! # Layout
//! - [`model`]: entity and fact refs, states, checks, tracks and the loaded config.
//! - [`config`]: reading Soundcheck YAML (`$include`, `${ENV}`, several files) into the model,
//!   with every problem reported as `file:line:column`.
//! - [`rules`]: the rule grammar, JSONPath, operators and their compiled form.
//! - [`filter`]: Backstage entity filters.
//! - [`engine`]: check results and certification for one entity.
//! - [`certification`]: the level and cumulative states of one track.

pub mod certification;
pub mod config;
pub mod engine;
pub mod events;
pub mod filter;
pub mod model;
pub mod rules;

pub use engine::{Admissions, CheckView, Engine};

#[cfg(test)]
mod engine_tests;
