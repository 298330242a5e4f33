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
}

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
