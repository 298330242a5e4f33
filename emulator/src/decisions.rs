//! Decisions told to the consoles waiting for them, in a rehearsal: a console awaiting approval
//! sleeps until its request is decided (an admin of the run approved or rejected it) instead of
//! waking every poll interval to hear "awaiting approval" again. The polls it skips are ones
//! whose answer is known: nothing but a decision or the OTP's expiry changes a request awaiting
//! approval, and a poll changes nothing but its own timestamp on the server.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// The consoles waiting, by request id.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    waiting: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Polls skipped so far.
    skipped: AtomicU64,
}

impl Decisions {
    /// Tells when request `id` is decided (the receiver completes), until `forget`.
    pub(crate) fn watch(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id.to_owned(), tx);
        rx
    }

    /// Request `id` was decided now.
    pub(crate) fn decided(&self, id: &str) {
        if let Some(tx) = self.waiting.lock().remove(id) {
            let _ = tx.send(());
        }
    }

    /// A console skipped `n` polls.
    pub(crate) fn skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// Polls skipped so far.
    pub(crate) fn skipped_so_far(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Stops watching request `id`.
    pub(crate) fn forget(&self, id: &str) {
        self.waiting.lock().remove(id);
    }
}
