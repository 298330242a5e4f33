//! The otpfleet reference OTP server.
//!
//! - [`domain`]: the provisioning core. Pure: every operation takes `now_ms` from the caller and
//!   never reads a clock; state lives in a concurrent in-memory store with one lock per account.
//! - [`http`]: the HTTP contract of `otpfleet-protocol` over hyper 1.x: routing, auth, body
//!   limits, timeouts, metrics, graceful shutdown.
//! - [`clock`]: where `now_ms` comes from: tokio's clock (so a paused runtime drives expiry) or a
//!   manual clock for tests.

pub mod catalogue;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;

pub use catalogue::Catalogue;
pub use clock::{Clock, ManualClock, TokioClock};
pub use config::ServerConfig;
pub use domain::{ApiError, Core};
pub use http::{App, handle, serve};
