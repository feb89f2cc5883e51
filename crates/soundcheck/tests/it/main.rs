//! Integration tests of the `soundcheck` binary and library: one test binary, modules by area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration tests: a failed step should fail the test"
)]

mod api;
mod api_harness;
mod api_history;
mod api_input;
mod backends;
mod backstage_sink;
mod crash;
mod evaluate;
mod events;
mod helpers;
mod live;
mod pipeline;
mod scheduler;
mod sinks;
mod state;
mod state_cache;
mod validate;
mod write_behind;
