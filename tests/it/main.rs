//! End-to-end tests of the `otpfleet` command: the real binary, on port 0.

mod serve;
