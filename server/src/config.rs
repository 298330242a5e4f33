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
    pub throttle: ThrottleConfig,
    /// Most connections open at once; past it new ones are answered 503 and closed.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// A connection that sends nothing for this long is closed (a keep-alive connection
    /// between requests included; consoles poll every few seconds).
    pub idle_timeout: Duration,
    /// A connection whose client does not take an answer for this long is closed.
    pub write_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed: behind one, the client address
    /// (for throttling and connection bounds per address) is the last address in that header
    /// that is not one of these networks. Empty: the header is ignored (anyone can write it).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            poll_interval_s: 5,
            export_window_ms: 60 * 60 * 1000,
            verification_ttl_ms: 60 * 60 * 1000,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            throttle: ThrottleConfig::default(),
            max_connections: 8_192,
            max_connections_per_address: 1_024,
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The limits of failed redemptions and manual sign-ins (`domain/throttle.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Consecutive failures a source may make before it backs off.
    pub per_source_failures: u32,
    /// The first back-off; it doubles with each further block, up to `max_backoff_s`.
    pub backoff_s: u64,
    pub max_backoff_s: u64,
    /// Failed redemptions the whole server lets through per minute.
    pub global_failures_per_min: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            per_source_failures: 100,
            backoff_s: 60,
            max_backoff_s: 3_600,
            global_failures_per_min: 10_000,
        }
    }
}
