//! Integration tests of the `soundcheck` binary: one test binary, modules by command.

mod backends;
mod crash;
mod evaluate;
mod events;
mod helpers;
mod live;
mod state;
mod validate;
