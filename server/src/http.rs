//! The HTTP contract over hyper 1.x: one request handler ([`handle`]), callable over a socket
//! ([`serve`]) or directly in process (the emulator's in-process transport).
//!
//! **API boundary:** [`handle`] takes any `http::Request<B: Body>` and answers a complete
//! response; it never panics on input. Everything the contract says about status codes, error
//! bodies and auth is decided here, everything about OTPs in [`crate::domain`].

mod auth;
mod body;
mod connections;
pub mod listen;
mod metrics;
mod refusals;
mod replica;
mod router;
mod serve;

pub use auth::{AdminTokens, new_admin_token};
pub use connections::{Admitted, Connections};
pub use metrics::Metrics;
pub use router::handle;
pub use serve::{serve, serve_tls, tls_server_config};

use crate::clock::Clock;
use crate::domain::Core;
use crate::journal::Journal;
use std::sync::Arc;

/// The client's address, put in a request's extensions by [`serve`] (absent in process).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// What requests are served from: the domain core and, for a durable server, the journal its
/// changes go to. A durable server replaces it whole when it rebuilds its state from the
/// journal after a write failure ([`App::recover`]).
#[derive(Debug)]
pub struct Served {
    pub core: Core,
    pub journal: Option<Arc<Journal>>,
}

impl Served {
    /// Why changes cannot be journaled now, if they cannot.
    pub fn journal_failure(&self) -> Option<String> {
        self.journal.as_ref().and_then(|j| j.failure())
    }
}

/// Everything a request handler needs: what it is served from, the clock, the admin tokens,
/// the request counters.
#[derive(Debug)]
pub struct App {
    served: arc_swap::ArcSwap<Served>,
    /// A replica on the PostgreSQL store serves from this instead of `served` (whose core then
    /// only holds the same settings: it keeps no state and is never asked for any).
    postgres: Option<Arc<crate::pg::PgCore>>,
    pub clock: Arc<dyn Clock>,
    pub admin_tokens: AdminTokens,
    pub metrics: Metrics,
    /// The open connections, bounded (sockets only; the in-process transport has none).
    pub connections: Arc<Connections>,
    /// The last walk over the accounts for `/metrics`, and when: scrapes within
    /// `STATS_EVERY_MS` share it, so a flood of scrapes costs one walk every few seconds.
    stats: parking_lot::Mutex<Option<(u64, crate::domain::Stats)>>,
    /// Woken when a recovery replaces the state served (`reopen`).
    replaced: tokio::sync::Notify,
}

/// How long one walk over the accounts serves `/metrics`.
const STATS_EVERY_MS: u64 = 5_000;
/// How often a durable server whose journal failed tries to open it anew.
const REOPEN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest wait between tries while the journal stays unwritable.
const REOPEN_AT_MOST_EVERY: std::time::Duration = std::time::Duration::from_secs(8);

impl App {
    /// An app serving `core`; a durable one also names the journal `core` writes to.
    pub fn new(
        core: Core,
        journal: Option<Arc<Journal>>,
        clock: Arc<dyn Clock>,
        admin_tokens: AdminTokens,
    ) -> App {
        let config = core.config();
        let connections = Arc::new(Connections::new(
            config.max_connections,
            config.max_connections_per_address,
        ));
        App {
            served: arc_swap::ArcSwap::from_pointee(Served { core, journal }),
            postgres: None,
            clock,
            admin_tokens,
            metrics: Metrics::default(),
            connections,
            stats: parking_lot::Mutex::new(None),
            replaced: tokio::sync::Notify::new(),
        }
    }

    /// An app serving `pg`, one replica on the PostgreSQL store.
    pub fn over_postgres(
        pg: crate::pg::PgCore,
        clock: Arc<dyn Clock>,
        admin_tokens: AdminTokens,
    ) -> App {
        let settings = Core::new(
            pg.config().clone(),
            crate::catalogue::Catalogue::builtin(),
            crate::domain::secrets::Secrets::random(),
        );
        App {
            postgres: Some(Arc::new(pg)),
            ..App::new(settings, None, clock, admin_tokens)
        }
    }

    /// The replica's domain, when it serves from PostgreSQL.
    pub fn postgres(&self) -> Option<&Arc<crate::pg::PgCore>> {
        self.postgres.as_ref()
    }

    /// [`App::stats`] of a replica on PostgreSQL (the walk reads the database).
    pub async fn stats_of(
        &self,
        pg: &crate::pg::PgCore,
    ) -> Result<crate::domain::Stats, crate::domain::ApiError> {
        let now = self.now_ms();
        if let Some((at, stats)) = &*self.stats.lock() {
            if now.saturating_sub(*at) < STATS_EVERY_MS {
                return Ok(stats.clone());
            }
        }
        let stats = pg.stats(now).await?;
        *self.stats.lock() = Some((now, stats.clone()));
        Ok(stats)
    }

    /// What requests are served from now. Hold it for one request: a durable server may
    /// replace it (see [`App::recover`]).
    pub fn served(&self) -> Arc<Served> {
        self.served.load_full()
    }

    /// The accounts' counts for `/metrics`, walked at most every `STATS_EVERY_MS` (the lock is
    /// held through a walk, so concurrent scrapes wait for it instead of walking too).
    pub fn stats(&self, core: &Core) -> crate::domain::Stats {
        let now = self.now_ms();
        let mut cached = self.stats.lock();
        match &*cached {
            Some((at, stats)) if now.saturating_sub(*at) < STATS_EVERY_MS => stats.clone(),
            _ => {
                let stats = core.stats(now);
                *cached = Some((now, stats.clone()));
                stats
            }
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Keeps a durable server serving through journal write failures (a full disk, an I/O
    /// error), for as long as it runs: once the journal fails, changes are refused (503
    /// `storage_unavailable`) and the journal is opened anew after a second, then after twice
    /// as long each time, up to 8 s (opening writes, so it works only on a disk with room);
    /// when that works,
    /// the state is rebuilt by replaying it, so whatever a refused change had applied in
    /// memory is gone, and the server takes changes again. Logs each failure and recovery.
    pub async fn recover(self: Arc<Self>) {
        self.recover_telling(|line| eprintln!("{line}")).await;
    }

    /// [`App::recover`], telling each failure and recovery to `tell` instead of stderr (a
    /// simulation crashing the server hundreds of times keeps quiet).
    pub async fn recover_telling(self: Arc<Self>, tell: impl Fn(String)) {
        loop {
            let Some(journal) = self.served().journal.clone() else {
                return;
            };
            journal.failed().await;
            self.metrics.journal_failed();
            let why = journal.failure().unwrap_or_default();
            tell(format!(
                "journal write failed in {}: {why}; changes are refused (503 storage_unavailable) \
                 until it can be written again (tried after {REOPEN_EVERY:?}, then less often, \
                 at most every {REOPEN_AT_MOST_EVERY:?})",
                journal.dir().display()
            ));
            journal.close();
            drop(journal);
            let mut last_error = String::new();
            let mut wait = REOPEN_EVERY;
            loop {
                tokio::time::sleep(wait).await;
                // While the disk stays full, try less often (each try reads the journal).
                wait = (wait * 2).min(REOPEN_AT_MOST_EVERY);
                let app = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || app.reopen()).await {
                    Ok(Ok(replayed)) => {
                        tell(format!(
                            "journal writable again: state rebuilt from its {replayed} entries; \
                             taking changes"
                        ));
                        break;
                    }
                    Ok(Err(e)) => {
                        let e = e.to_string();
                        if e != last_error {
                            tell(format!("journal still unavailable: {e}"));
                            last_error = e;
                        }
                    }
                    Err(_) => return,
                }
            }
        }
    }

    /// Opens the failed journal's directory anew and serves the state replayed from it.
    fn reopen(&self) -> Result<usize, crate::journal::JournalError> {
        let served = self.served();
        let Some(old) = &served.journal else {
            return Ok(0);
        };
        let core = &served.core;
        let durable = crate::reopen_durable(
            old.storage(),
            core.config().clone(),
            core.catalogue().clone(),
            Arc::clone(&self.clock),
            old.stats().entries,
        )?;
        let core = durable.core.with_throttles_of(core);
        self.served.store(Arc::new(Served {
            core,
            journal: Some(durable.journal),
        }));
        *self.stats.lock() = None;
        self.metrics.journal_recovered();
        self.replaced.notify_waiters();
        Ok(durable.replayed)
    }

    /// Resolves once a recovery has replaced `old` with a state rebuilt from the journal, which
    /// removed from the disk what `old`'s journal failed to keep: from then on a refusal of a
    /// change that failed is itself kept (a crash cannot bring the change back).
    pub async fn replaced_since(&self, old: &Served) {
        loop {
            let mut replaced = std::pin::pin!(self.replaced.notified());
            replaced.as_mut().enable();
            if !std::ptr::eq(Arc::as_ptr(&self.served()), old) {
                return;
            }
            replaced.await;
        }
    }
}
