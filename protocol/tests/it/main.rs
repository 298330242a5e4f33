//! Integration tests of the protocol crate, in one test binary.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod openapi;
