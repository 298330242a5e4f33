//! The common start of a run split over processes (`fleet --start-at`): refused when missed or
//! far ahead, and turned into an instant of the run's clock.

use otpfleet_emulator::Start;
use std::time::Duration;
use tokio::time::Instant;

/// Refuses a common start that this process has already missed, or one so far ahead that it
/// is surely a mistake, before anything starts (`now_ms`: the wall clock).
pub fn check(at: jiff::Timestamp, grace_s: u64, now_ms: u64) -> anyhow::Result<()> {
    const MAX_AHEAD_MS: i64 = 24 * 3_600_000;
    let ahead_ms = ms_ahead(at, now_ms);
    let grace_ms = i64::try_from(grace_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    if ahead_ms < -grace_ms {
        return Err(crate::MissedStart(format!(
            "--start-at {at} was {} s ago, past its grace period (--start-grace-s {grace_s}): \
             this process does not run (a late shard would skew the run); start the run again \
             with a later start time",
            -ahead_ms / 1000
        ))
        .into());
    }
    if ahead_ms > MAX_AHEAD_MS {
        return Err(crate::BadInput(format!(
            "--start-at {at} is more than 24 hours ahead: give the run's start time (RFC 3339, \
             e.g. 2026-12-01T09:00:00Z)"
        ))
        .into());
    }
    Ok(())
}

/// The common start as an instant of the run's clock (the wall clock read here, at the edge).
pub fn start(at: jiff::Timestamp, grace_s: u64) -> Start {
    let now = Instant::now();
    let ahead_ms = ms_ahead(at, crate::wall_clock_ms());
    let offset = Duration::from_millis(ahead_ms.unsigned_abs());
    let at = match ahead_ms >= 0 {
        true => now + offset,
        false => now.checked_sub(offset).unwrap_or(now),
    };
    Start {
        at,
        grace: Duration::from_secs(grace_s),
    }
}

/// Milliseconds from `now_ms` (Unix time) to `at`, negative once it has passed.
fn ms_ahead(at: jiff::Timestamp, now_ms: u64) -> i64 {
    at.as_millisecond() - i64::try_from(now_ms).unwrap_or(i64::MAX)
}
