//! Integration tests of the `soundcheck` binary: one test binary, modules by command.

mod evaluate;
mod helpers;
mod validate;
