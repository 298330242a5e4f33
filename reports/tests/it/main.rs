//! Integration tests of the reports crate: run folders written, read back, rendered, merged,
//! compared, and held to the shipped JSON Schema.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod compare;
mod folder;
mod hostile;
mod merge;
mod runs;
mod schema;
