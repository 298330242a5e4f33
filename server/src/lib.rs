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
pub mod journal;

pub use catalogue::Catalogue;
pub use clock::{Clock, ManualClock, TokioClock};
pub use config::ServerConfig;
pub use domain::{ApiError, Core};
pub use http::{App, handle, serve};

use std::path::Path;
use std::sync::Arc;

/// Opens a durable server's state in `dir`: the journal, replayed into a core that journals
/// every further change. Answers the core, the journal and how many events were replayed.
pub fn open_durable(
    dir: &Path,
    config: ServerConfig,
    catalogue: Catalogue,
) -> Result<(Core, Arc<journal::Journal>, usize), journal::JournalError> {
    let mut fresh = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut fresh);
    let (journal, recovered) = journal::Journal::open(dir, fresh)?;
    let mut core = Core::new(
        config,
        catalogue,
        domain::secrets::Secrets::from_secret(&recovered.secret),
    );
    let replayed = recovered.events.len();
    for (seq, event) in recovered.events {
        core.apply(event)
            .map_err(|reason| journal::JournalError::Replay {
                path: dir.to_path_buf(),
                seq,
                reason,
            })?;
    }
    let journal = Arc::new(journal);
    core.set_sink(Arc::clone(&journal) as Arc<dyn domain::EventSink>);
    Ok((core, journal, replayed))
}
