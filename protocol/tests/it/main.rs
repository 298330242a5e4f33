//! Integration tests of the protocol crate, in one test binary.

mod openapi;
