//! What a load run measures besides goose's own metrics: an HdrHistogram per step (corrected and
//! raw views, microseconds), the consoles' outcomes, and the answers the scenarios did not expect.
//!
//! The steps a fleet run also has (`issue`, `verify`, `redeem`, `poll`, `approve`, `reject`,
//! `sign_in`, `time_to_signed_in`) go into an `otpfleet_reports::Recorder`, so a load run and a
//! fleet run compare step by step; the admin-only steps (`review`, `export`, `list_requests`)
//! go into histograms of the same bounds kept here.

use otpfleet_reports::{
    HISTOGRAM_MAX_US, Histogram, Outcome, Outcomes, Recorder, RunHistograms, Step,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most synthetic samples one stalled request may add to the corrected view.
pub const MAX_BACKFILL: u64 = 10_000;

/// A measured request of the scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoadStep {
    /// A step the fleet emulator measures too.
    Shared(Step),
    /// `POST /v1/otp-batches` with `review_only` (the wizard's dry run).
    Review,
    /// `GET /v1/otp-batches/{id}/export`.
    Export,
    /// `GET /v1/requests?status=awaiting_approval` (the approval queue).
    ListRequests,
}

impl LoadStep {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadStep::Shared(step) => step.as_str(),
            LoadStep::Review => "review",
            LoadStep::Export => "export",
            LoadStep::ListRequests => "list_requests",
        }
    }

    const EXTRA: [LoadStep; 3] = [LoadStep::Review, LoadStep::Export, LoadStep::ListRequests];
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("static bounds are valid")
}

fn to_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_MAX_US)
}

/// A step's two histograms.
#[derive(Debug)]
struct Views {
    corrected: Mutex<Histogram<u64>>,
    raw: Mutex<Histogram<u64>>,
}

/// The latency histograms of a load run.
#[derive(Debug)]
pub struct LoadRecorder {
    shared: Arc<Recorder>,
    extra: BTreeMap<LoadStep, Views>,
    synthetic: AtomicU64,
}

impl Default for LoadRecorder {
    fn default() -> Self {
        LoadRecorder {
            shared: Arc::new(Recorder::default()),
            extra: LoadStep::EXTRA
                .into_iter()
                .map(|s| {
                    (
                        s,
                        Views {
                            corrected: Mutex::new(new_histogram()),
                            raw: Mutex::new(new_histogram()),
                        },
                    )
                })
                .collect(),
            synthetic: AtomicU64::new(0),
        }
    }
}

impl LoadRecorder {
    /// Records one request that took `took`, sent by a user whose scenario iterations take
    /// `expected` on average (`None` before its cadence is known).
    ///
    /// The raw view gets the value as measured. The corrected view gets it too and, when it
    /// exceeds the expected interval, the requests the user would have sent meanwhile, as
    /// HdrHistogram's `recordValueWithExpectedInterval` does: `took - expected`,
    /// `took - 2 * expected`, ... down to `expected` (coordinated omission in a closed loop).
    pub fn record(&self, step: LoadStep, took: Duration, expected: Option<Duration>) {
        let value_us = to_us(took);
        let fills = backfill(value_us, expected.map(to_us));
        self.synthetic
            .fetch_add(fills.len() as u64, Ordering::Relaxed);
        match step {
            LoadStep::Shared(s) => {
                self.shared.record_raw(s, took);
                self.shared.record(s, took);
                for us in fills {
                    self.shared.record(s, Duration::from_micros(us));
                }
            }
            other => {
                if let Some(Views { corrected, raw }) = self.extra.get(&other) {
                    raw.lock().saturating_record(value_us);
                    let mut h = corrected.lock();
                    h.saturating_record(value_us);
                    for us in fills {
                        h.saturating_record(us);
                    }
                }
            }
        }
    }

    /// Records a whole flow (arrival to sign-in); it has one view.
    pub fn record_flow(&self, step: Step, took: Duration) {
        self.shared.record(step, took);
    }

    /// Synthetic samples the corrected view holds.
    pub fn synthetic(&self) -> u64 {
        self.synthetic.load(Ordering::Relaxed)
    }

    /// Every non-empty histogram by step name, both views.
    pub fn histograms(&self) -> RunHistograms {
        let mut all = RunHistograms::from_recorder(&self.shared);
        for (step, Views { corrected, raw }) in &self.extra {
            let (c, r) = (corrected.lock().clone(), raw.lock().clone());
            if !c.is_empty() {
                all.corrected.insert(step.as_str().to_owned(), c);
            }
            if !r.is_empty() {
                all.raw.insert(step.as_str().to_owned(), r);
            }
        }
        all
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
    fn the_corrected_view_holds_the_backfill_and_the_raw_view_does_not() {
        let r = LoadRecorder::default();
        let redeem = LoadStep::Shared(Step::Redeem);
        r.record(
            redeem,
            Duration::from_millis(10),
            Some(Duration::from_micros(2_500)),
        );
        r.record(
            LoadStep::Review,
            Duration::from_millis(10),
            Some(Duration::from_micros(2_500)),
        );
        let h = r.histograms();
        assert_eq!(h.corrected["redeem"].len(), 4);
        assert_eq!(h.raw["redeem"].len(), 1);
        assert_eq!(h.corrected["review"].len(), 4);
        assert_eq!(h.raw["review"].len(), 1);
        assert!(
            !h.corrected.contains_key("export"),
            "empty steps are left out"
        );
        assert_eq!(r.synthetic(), 6);
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
