//! End-to-end tests of the `otpfleet` command: the real binary, on port 0.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod crash;
mod fleet;
mod load;
mod rehearse;
mod report;
mod serve;
mod tokens;
