//! Ctrl-C and SIGTERM during a run. The first signal stops new work: consoles start no new
//! request, requests in flight finish (each within the request timeout), and the run writes its
//! summary and its whole folder, marked `"complete": false, "stopped_because": "interrupted"`,
//! then exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). A second signal exits
//! at once. The handlers are installed whatever the signals' disposition was, so a run started
//! in the background of a non-interactive shell (`otpfleet fleet &`, where SIGINT starts out
//! ignored) stops on SIGINT too.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// The signals of one run.
#[derive(Debug, Clone)]
pub(crate) struct Interrupts {
    stop: CancellationToken,
    /// The number of the first signal, 0 before one came.
    first: Arc<AtomicI32>,
}

impl Interrupts {
    /// Listens for SIGINT and SIGTERM on the current tokio runtime for as long as it runs.
    pub(crate) fn listen() -> std::io::Result<Interrupts> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let interrupts = Interrupts {
            stop: CancellationToken::new(),
            first: Arc::new(AtomicI32::new(0)),
        };
        let listener = interrupts.clone();
        tokio::spawn(async move {
            loop {
                let (signo, name) = tokio::select! {
                    _ = int.recv() => (2, "SIGINT"),
                    _ = term.recv() => (15, "SIGTERM"),
                };
                if listener
                    .first
                    .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    eprintln!("\n{name} again: exiting at once; the run folder is not written");
                    std::process::exit(128 + signo);
                }
                eprintln!(
                    "\n{name}: stopping: no new work starts, requests in flight finish, then the \
                     summary and the run folder are written ({name} again exits at once)"
                );
                listener.stop.cancel();
            }
        });
        Ok(interrupts)
    }

    /// Cancelled by the first signal.
    pub(crate) fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The first signal's number, once one came.
    pub(crate) fn signal(&self) -> Option<i32> {
        match self.first.load(Ordering::SeqCst) {
            0 => None,
            signo => Some(signo),
        }
    }
}

/// A run that a signal stopped: its folder is written; exits 128 + the signal's number.
#[derive(Debug)]
pub(crate) struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            2 => "SIGINT".to_owned(),
            15 => "SIGTERM".to_owned(),
            n => format!("signal {n}"),
        };
        write!(
            f,
            "the run was interrupted by {name}; the run folder holds what was measured"
        )
    }
}

impl std::error::Error for Interrupted {}

/// A run that stopped early by itself (its time limit, a server gone): its folder is written;
/// exits `INCOMPLETE`.
#[derive(Debug)]
pub(crate) struct Incomplete(pub String);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the run stopped early: {}; the report covers what was measured",
            self.0
        )
    }
}

impl std::error::Error for Incomplete {}
