//! The clock of a run's intervals.

use std::time::Duration;
use tokio::time::Instant;

/// Calls `close` every `length` from `started`, at the nominal moment (so intervals are whole
/// multiples of `length`), until aborted: a recorder's interval closes this way. The run closes
/// the last, partial interval itself when it ends.
pub fn tick_intervals(
    close: impl Fn(Duration) + Send + 'static,
    started: Instant,
    length: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut end = length;
        loop {
            tokio::time::sleep_until(started + end).await;
            close(end);
            end += length;
        }
    })
}
