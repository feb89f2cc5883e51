//! Integration tests of the `soundcheck` binary: one test binary, modules by command.

mod backends;
mod evaluate;
mod state;
mod helpers;
mod validate;
