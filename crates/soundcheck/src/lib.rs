//! The soundcheck service and command line around the pure `soundcheck-core` engine.
//!
//! # Layout
//! - [`cli`]: the subcommands (`evaluate`, `validate`, `bench`).
//! - [`input`]: catalog and facts files.
//! - [`batch`]: evaluating a whole catalog, writing results, the summary and the release gate.

pub mod batch;
pub mod cli;
pub mod events;
pub mod input;
pub mod server;
pub mod service;
pub mod sinks;
pub mod state;
pub mod store;
