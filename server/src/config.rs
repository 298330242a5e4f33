//! Server settings that are not part of the contract's preferences.

use std::time::Duration;

/// How the server behaves; every field has a bound and a sensible default.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Polling interval told to consoles, in seconds.
    pub poll_interval_s: u32,
    /// How long a batch export can be downloaded after generation; then its plaintext is purged.
    pub export_window_ms: u64,
    /// How long a verification token stays good.
    pub verification_ttl_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a request may take, reading included.
    pub request_timeout: Duration,
    /// Limits on failed redemptions.
    pub throttle: crate::domain::throttle::ThrottleConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            poll_interval_s: 5,
            export_window_ms: 60 * 60 * 1000,
            verification_ttl_ms: 60 * 60 * 1000,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            throttle: crate::domain::throttle::ThrottleConfig::default(),
        }
    }
}
