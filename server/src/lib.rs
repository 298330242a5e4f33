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
pub mod pg;
pub mod simdisk;
pub mod tokens;

pub use catalogue::Catalogue;
pub use clock::{Clock, ManualClock, TokioClock};
pub use config::ServerConfig;
pub use domain::{ApiError, Core};
pub use http::{App, handle, serve, serve_tls, tls_server_config};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a server keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory only, lost when the server stops (benchmarks, tests, embedded runs).
    InMemory,
    /// A data directory: every change journaled before it is answered, replayed on start.
    Durable(PathBuf),
    /// A journal on a simulated disk ([`simdisk`]): durable as a data directory is, until the
    /// simulation cuts its power.
    Simulated(simdisk::SimDisk),
}

impl Storage {
    /// Where a server on this storage draws fresh secrets, OTPs and tokens from: the OS, or on a
    /// simulated disk a stream of the simulation's seed (a new one for each process), so that a
    /// seed replays byte for byte.
    pub fn entropy(&self) -> domain::secrets::Entropy {
        match self {
            Storage::Simulated(disk) => domain::secrets::Entropy::seeded(disk.next_seed()),
            Storage::InMemory | Storage::Durable(_) => domain::secrets::Entropy::Os,
        }
    }
}

/// A server put together, ready to [`serve`]: its app, and what a durable one recovered.
#[derive(Debug)]
pub struct Assembled {
    pub app: App,
    /// Journal entries replayed (0 in memory).
    pub replayed: usize,
    /// Admin tokens the data directory holds (0 in memory).
    pub stored_tokens: usize,
}

/// The one way a server is put together (the CLI, the tests, the emulator's embedded server and
/// the benches all use it): a core with fresh secrets, or replayed from a data directory with its
/// secret and journaling every further change; the admin tokens the directory holds plus
/// `tokens`; `clock` for every `now_ms`. Serve it with [`serve`] (which also recovers from journal
/// write failures), or call [`handle`] in process.
pub fn assemble(
    config: ServerConfig,
    catalogue: Catalogue,
    storage: &Storage,
    clock: Arc<dyn Clock>,
    tokens: &[(&str, &str)],
) -> Result<Assembled, journal::JournalError> {
    let (core, journal, mut admin_tokens, replayed) = match storage {
        Storage::InMemory => {
            let core = Core::new(config, catalogue, domain::secrets::Secrets::random());
            (core, None, http::AdminTokens::default(), 0)
        }
        Storage::Durable(_) | Storage::Simulated(_) => {
            let d = open_durable_on(storage, config, catalogue, Arc::clone(&clock))?;
            let stored = http::AdminTokens::from_stored(&d.tokens);
            (d.core, Some(d.journal), stored, d.replayed)
        }
    };
    let stored_tokens = admin_tokens.len();
    for (token, name) in tokens {
        admin_tokens.add(token, name);
    }
    Ok(Assembled {
        app: App::new(core, journal, clock, admin_tokens),
        replayed,
        stored_tokens,
    })
}

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

/// Opens a durable server's state in `dir`: the journal (its chain checked), replayed into a
/// core that journals every further change, stamped by `clock`.
pub fn open_durable(
    dir: &Path,
    config: ServerConfig,
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
) -> Result<Durable, journal::JournalError> {
    open_durable_on(
        &Storage::Durable(dir.to_path_buf()),
        config,
        catalogue,
        clock,
    )
}

/// [`open_durable`] on any storage with a journal: a data directory or a simulated disk.
pub fn open_durable_on(
    storage: &Storage,
    config: ServerConfig,
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
) -> Result<Durable, journal::JournalError> {
    durable_from(
        journal::Journal::open_on(storage, clock)?,
        config,
        catalogue,
    )
}

/// [`open_durable_on`] after this process's journal failed with entries up to `kept_through`
/// acknowledged ([`journal::Journal::reopen_on`]: what it refused does not come back).
pub fn reopen_durable(
    storage: &Storage,
    config: ServerConfig,
    catalogue: Catalogue,
    clock: Arc<dyn Clock>,
    kept_through: u64,
) -> Result<Durable, journal::JournalError> {
    durable_from(
        journal::Journal::reopen_on(storage, clock, kept_through)?,
        config,
        catalogue,
    )
}

/// A durable server's state from its opened journal: replayed, journaling every change.
fn durable_from(
    (journal, recovered): (journal::Journal, journal::Recovered),
    config: ServerConfig,
    catalogue: Catalogue,
) -> Result<Durable, journal::JournalError> {
    let dir = journal.dir().to_path_buf();
    let secrets = domain::secrets::Secrets::from_secret(&recovered.secret)
        .with_entropy(journal.storage().entropy());
    let mut core = Core::new(config, catalogue, secrets);
    let tokens = tokens::in_force(&recovered.entries);
    let replayed = recovered.entries.len();
    replay(&core, recovered.entries, &dir)?;
    core.plant(journal::planted(journal.storage()));
    let journal = Arc::new(journal);
    core.set_sink(
        Arc::clone(&journal) as Arc<dyn domain::EventSink>,
        recovered.starts,
    );
    Ok(Durable {
        core,
        journal,
        replayed,
        tokens,
    })
}
