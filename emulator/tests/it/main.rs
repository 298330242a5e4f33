//! Integration tests of the fleet emulator against the reference server on `127.0.0.1:0`.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod fleet;
mod harness;
mod promises;
mod rehearsal;
mod simulate;
mod views;
