//! Integration tests of the reference server over real HTTP on a port-0 listener.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod audit;
mod auth;
mod bad_input;
mod concurrency;
mod connections;
mod durable;
mod eligibility;
mod fuzz;
mod guessing;
mod helpers;
mod kept;
mod lifecycle;
mod liveness;
mod pg;
mod preferences;
mod replay;
mod replicas;
mod simulation;
