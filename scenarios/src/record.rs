//! What a load run counts besides goose's own metrics: the consoles' outcomes and the answers
//! the scenarios did not expect, and the coordinated-omission correction of a closed loop.
//! Latencies go into an `otpfleet_reports::Recorder` (the one a fleet run uses), so a load run
//! and a fleet run compare step by step.

use otpfleet_reports::{Answered, Outcome, Outcomes, Recorder, Step};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most synthetic samples one stalled request may add to the response view.
pub const MAX_BACKFILL: u64 = 10_000;

/// Records one request that took `took` (service time: goose's users send at once, so a
/// closed loop has no lateness). With `expected`, the user's average iteration (coordinated
/// omission correction on and the cadence known), a slower request also adds the requests the
/// user would have sent meanwhile to the response view, as HdrHistogram's
/// `recordValueWithExpectedInterval` does: `took - expected`, `took - 2 * expected`, ... down
/// to `expected`. They are synthetic samples, counted apart, never requests.
pub fn record(
    recorder: &Recorder,
    step: Step,
    took: Duration,
    answer: Answered<'_>,
    expected: Option<Duration>,
) {
    recorder.request(step, None, took, answer);
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let fills = backfill(us(took), expected.map(us));
    if !fills.is_empty() {
        recorder.synthetic(step, &fills);
    }
}

/// The synthetic values HdrHistogram's expected-interval correction adds for one sample.
pub fn backfill(value_us: u64, expected_us: Option<u64>) -> Vec<u64> {
    let Some(interval) = expected_us.filter(|i| *i > 0) else {
        return Vec::new();
    };
    let mut fills = Vec::new();
    let mut missing = value_us.saturating_sub(interval);
    while missing >= interval && (fills.len() as u64) < MAX_BACKFILL {
        fills.push(missing);
        missing -= interval;
    }
    fills
}

/// Counts of what the consoles and admins met, shared by every user.
#[derive(Debug, Default)]
pub struct Tally {
    consoles_started: AtomicU64,
    outcomes: Mutex<Outcomes>,
    errors: Mutex<BTreeMap<String, u64>>,
    slow_downs: AtomicU64,
    already_decided: AtomicU64,
    decided: AtomicU64,
    tickets_exhausted: AtomicU64,
}

impl Tally {
    /// A goose user started a console's first boot.
    pub fn console_started(&self) {
        self.consoles_started.fetch_add(1, Ordering::Relaxed);
    }

    /// A console's first boot ended.
    pub fn outcome(&self, outcome: Outcome) {
        self.outcomes.lock().add(outcome);
    }

    /// An answer a scenario did not expect, by kind (`step: code`).
    pub fn error(&self, kind: String) {
        *self.errors.lock().entry(kind).or_insert(0) += 1;
    }

    pub fn slow_down(&self) {
        self.slow_downs.fetch_add(1, Ordering::Relaxed);
    }

    /// An admin decided a request (approve or reject), or found it decided by someone else.
    pub fn decided(&self, by_someone_else: bool) {
        self.decided.fetch_add(1, Ordering::Relaxed);
        if by_someone_else {
            self.already_decided.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A console user found no pre-issued OTP left.
    pub fn ticket_missing(&self) {
        self.tickets_exhausted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn consoles(&self) -> u64 {
        self.consoles_started.load(Ordering::Relaxed)
    }

    /// The outcomes of the consoles that ended so far (a live view: the rest are under way).
    pub fn ended_so_far(&self) -> Outcomes {
        *self.outcomes.lock()
    }

    /// The outcomes of every started console; those without one (cut by the end of the run,
    /// or given up waiting) are `abandoned`, so the outcomes sum to the consoles.
    pub fn outcomes(&self) -> Outcomes {
        let mut o = *self.outcomes.lock();
        o.abandoned += self.consoles().saturating_sub(o.total());
        o
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().clone()
    }

    pub fn slow_downs(&self) -> u64 {
        self.slow_downs.load(Ordering::Relaxed)
    }

    pub fn decisions(&self) -> u64 {
        self.decided.load(Ordering::Relaxed)
    }

    pub fn already_decided(&self) -> u64 {
        self.already_decided.load(Ordering::Relaxed)
    }

    pub fn tickets_exhausted(&self) -> u64 {
        self.tickets_exhausted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_adds_the_requests_a_stalled_user_would_have_sent() {
        assert_eq!(backfill(1_000, None), Vec::<u64>::new());
        assert_eq!(backfill(1_000, Some(2_000)), Vec::<u64>::new());
        assert_eq!(backfill(10_000, Some(2_500)), vec![7_500, 5_000, 2_500]);
        assert_eq!(backfill(u64::MAX, Some(1)).len() as u64, MAX_BACKFILL);
    }

    #[test]
    fn synthetic_samples_go_to_the_response_view_only_and_are_not_requests() {
        let r = Recorder::default();
        let ms = Duration::from_millis(10);
        record(
            &r,
            Step::Redeem,
            ms,
            Answered::Ok,
            Some(Duration::from_micros(2_500)),
        );
        record(&r, Step::Review, ms, Answered::Ok, None);
        r.close_interval(Duration::from_secs(1));
        let h = r.histograms();
        assert_eq!(h.steps["redeem"].response.len(), 4);
        assert_eq!(h.steps["redeem"].service.len(), 1);
        assert!(
            h.steps["redeem"].lateness.is_empty(),
            "a closed loop has no lateness"
        );
        assert_eq!(h.steps["review"].response.len(), 1);
        let c = r.counts(Step::Redeem);
        assert_eq!((c.requests, c.synthetic), (1, 3));
        assert!(!h.steps.contains_key("export"), "empty steps are left out");
    }

    #[test]
    fn consoles_without_an_outcome_are_abandoned() {
        let t = Tally::default();
        for _ in 0..5 {
            t.console_started();
        }
        t.outcome(Outcome::SignedInOtp);
        t.outcome(Outcome::Rejected);
        let o = t.outcomes();
        assert_eq!((o.signed_in_otp, o.rejected, o.abandoned), (1, 1, 3));
        assert_eq!(o.total(), t.consoles());
    }
}
