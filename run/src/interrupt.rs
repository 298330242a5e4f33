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
pub struct Interrupts {
    stop: CancellationToken,
    /// The number of the first signal, 0 before one came.
    first: Arc<AtomicI32>,
}

impl Interrupts {
    /// Listens for SIGINT and SIGTERM on the current tokio runtime for as long as it runs.
    pub fn listen() -> std::io::Result<Interrupts> {
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
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The first signal's number, once one came.
    pub fn signal(&self) -> Option<i32> {
        match self.first.load(Ordering::SeqCst) {
            0 => None,
            signo => Some(signo),
        }
    }
}
