//! The HTTP contract over hyper 1.x: one request handler ([`handle`]), callable over a socket
//! ([`serve`]) or directly in process (the emulator's in-process transport).
//!
//! **API boundary:** [`handle`] takes any `http::Request<B: Body>` and answers a complete
//! response; it never panics on input. Everything the contract says about status codes, error
//! bodies and auth is decided here, everything about OTPs in [`crate::domain`].

mod auth;
mod body;
mod connections;
mod metrics;
mod router;
mod serve;

pub use auth::{AdminTokens, new_admin_token};
pub use connections::Connections;
pub use metrics::Metrics;
pub use router::handle;
pub use serve::serve;

use crate::clock::Clock;
use crate::domain::Core;
use crate::journal::Journal;
use std::sync::Arc;

/// The client's address, put in a request's extensions by [`serve`] (absent in process).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Everything a request handler needs: the domain core, the clock, the admin tokens, the
/// request counters.
#[derive(Debug)]
pub struct App {
    pub core: Core,
    pub clock: Arc<dyn Clock>,
    pub admin_tokens: AdminTokens,
    pub metrics: Metrics,
    /// The journal of a durable server: changes are acknowledged once it holds them.
    pub journal: Option<Arc<Journal>>,
    /// The open connections, bounded (sockets only; the in-process transport has none).
    pub connections: Arc<Connections>,
    /// The last walk over the accounts for `/metrics`, and when: scrapes within
    /// `STATS_EVERY_MS` share it, so a flood of scrapes costs one walk every few seconds.
    stats: parking_lot::Mutex<Option<(u64, crate::domain::Stats)>>,
}

/// How long one walk over the accounts serves `/metrics`.
const STATS_EVERY_MS: u64 = 5_000;

impl App {
    pub fn new(core: Core, clock: Arc<dyn Clock>, admin_tokens: AdminTokens) -> App {
        let config = core.config();
        let connections = Arc::new(Connections::new(
            config.max_connections,
            config.max_connections_per_address,
        ));
        App {
            core,
            clock,
            admin_tokens,
            metrics: Metrics::default(),
            journal: None,
            connections,
            stats: parking_lot::Mutex::new(None),
        }
    }

    /// The accounts' counts for `/metrics`, walked at most every `STATS_EVERY_MS` (the lock is
    /// held through a walk, so concurrent scrapes wait for it instead of walking too).
    pub fn stats(&self) -> crate::domain::Stats {
        let now = self.now_ms();
        let mut cached = self.stats.lock();
        match &*cached {
            Some((at, stats)) if now.saturating_sub(*at) < STATS_EVERY_MS => stats.clone(),
            _ => {
                let stats = self.core.stats(now);
                *cached = Some((now, stats.clone()));
                stats
            }
        }
    }

    /// A durable app: `core` must already journal into `journal` (see `durable::open`).
    pub fn with_journal(mut self, journal: Arc<Journal>) -> App {
        self.journal = Some(journal);
        self
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}
