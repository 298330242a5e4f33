//! A run's stop signal, apart from its counters.

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Stops a run early: every console still running ends `abandoned`, every admin and task of
/// the run returns, and the first reason given goes into the report (`stopped_because`).
#[derive(Debug, Default)]
pub struct Stop {
    reason: Mutex<Option<String>>,
    token: CancellationToken,
}

impl Stop {
    /// Stops the run for `reason` (the first reason wins).
    pub fn because(&self, reason: impl Into<String>) {
        self.reason.lock().get_or_insert_with(|| reason.into());
        self.token.cancel();
    }

    /// Ends what is left of a run that is over (no reason: it was not stopped early).
    pub fn end(&self) {
        self.token.cancel();
    }

    /// Why the run was stopped early, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the run is stopped or ended.
    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }
}
