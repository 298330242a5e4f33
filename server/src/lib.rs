//! The otpfleet reference OTP server.
//!
//! - [`domain`]: the provisioning core. Pure: every operation takes `now_ms` from the caller and
//!   never reads a clock; state lives in a concurrent in-memory store with one lock per account.
//! - [`http`]: the HTTP contract of `otpfleet-protocol` over hyper 1.x: routing, auth, body
//!   limits, timeouts, metrics, graceful shutdown.
//! - [`clock`]: where `now_ms` comes from: tokio's clock (so a paused runtime drives expiry) or a
//!   manual clock for tests.

pub mod audit;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod journal;
pub mod tokens;

pub use catalogue::Catalogue;
pub use clock::{Clock, ManualClock, TokioClock};
pub use config::ServerConfig;
pub use domain::{ApiError, Core};
pub use http::{App, handle, serve};

use std::path::Path;
use std::sync::Arc;

/// A durable server's state, opened from its data directory.
#[derive(Debug)]
pub struct Durable {
    /// The core, replayed from the journal; it journals every further change.
    pub core: Core,
    pub journal: Arc<journal::Journal>,
    /// How many entries were replayed.
    pub replayed: usize,
    /// The admin tokens the directory holds (`otpfleet admin-token`).
    pub tokens: Vec<tokens::StoredToken>,
}

/// Opens a durable server's state in `dir`: the journal (its chain checked), replayed into a
/// core that journals every further change, stamped by `clock`.
/// Replays `entries` into `core`; an event that does not fit is named with its sequence number.
fn replay(
    core: &Core,
    entries: Vec<journal::Entry>,
    dir: &Path,
) -> Result<(), journal::JournalError> {
    let error = |seq, reason| journal::JournalError::Replay {
        path: dir.to_path_buf(),
        seq,
        reason,
    };
    let mut replay = domain::Replay::new(core);
    let mut last = 0;
    for entry in entries {
        last = entry.seq;
        replay.apply(entry.event).map_err(|r| error(entry.seq, r))?;
    }
    replay.finish().map_err(|r| error(last, r))
}

/// Checks offline that a data directory's journal replays (its chain checked too): what a
/// server would do on start, without starting one. Answers the number of entries.
pub fn check_replay(dir: &Path) -> Result<usize, journal::JournalError> {
    let entries = journal::read_dir(dir)?;
    let count = entries.len();
    let core = Core::new(
        ServerConfig::default(),
        Catalogue::builtin(),
        domain::secrets::Secrets::random(),
    );
    replay(&core, entries, dir)?;
    Ok(count)
}

pub fn open_durable(
    dir: &Path,
    config: ServerConfig,
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
) -> Result<Durable, journal::JournalError> {
    let (journal, recovered) = journal::Journal::open(dir, clock)?;
    let mut core = Core::new(
        config,
        catalogue,
        domain::secrets::Secrets::from_secret(&recovered.secret),
    );
    let tokens = tokens::in_force(&recovered.entries);
    let replayed = recovered.entries.len();
    replay(&core, recovered.entries, dir)?;
    let journal = Arc::new(journal);
    core.set_sink(Arc::clone(&journal) as Arc<dyn domain::EventSink>);
    Ok(Durable {
        core,
        journal,
        replayed,
        tokens,
    })
}
