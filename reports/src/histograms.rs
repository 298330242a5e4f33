//! Latency recording: per request step three HdrHistograms (the three views), microseconds, 3
//! significant figures, closed interval by interval into HdrHistogram interval logs.
//!
//! The three views of a request, named the same in every output:
//! - **response** time: from the moment the request was *meant* to be sent to the answer (what a
//!   console waited, coordinated omission included);
//! - **service** time: from the actual send (a connection in hand) to the answer (what the server
//!   and the network took);
//! - generator **lateness**: from the intended send to the actual send (the generator's own timer
//!   and the wait for a pooled connection).
//!
//! Each request is recorded in all three from two durations, so `lateness + service = response`
//! holds per request, to the microsecond.

use crate::intervals::{IntervalLine, IntervalPoint, IntervalStep};
pub use crate::views::{HISTOGRAM_MAX_US, View, ViewHistograms, new_histogram};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The requests a run measures, one per route a console or admin calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Issue,
    /// `POST /v1/otp-batches` with `review_only` (the wizard's dry run).
    Review,
    /// `GET /v1/otp-batches/{id}/export`.
    Export,
    Verify,
    Redeem,
    Poll,
    /// `GET /v1/requests?status=awaiting_approval` (the approval queue).
    ListRequests,
    Approve,
    Reject,
    SignIn,
    ManualSignIn,
}

impl Step {
    /// In the order of a console's walk: the admin issues, the console verifies, redeems,
    /// polls, the admin decides, the console signs in.
    pub const ALL: [Step; 11] = [
        Step::Issue,
        Step::Review,
        Step::Export,
        Step::Verify,
        Step::Redeem,
        Step::Poll,
        Step::ListRequests,
        Step::Approve,
        Step::Reject,
        Step::SignIn,
        Step::ManualSignIn,
    ];

    /// The steps every report carries, measured or not, so runs of different kinds and
    /// scenarios line up in `otpfleet report compare`.
    pub const ALWAYS: [Step; 6] = [
        Step::Issue,
        Step::Verify,
        Step::Redeem,
        Step::Poll,
        Step::Approve,
        Step::SignIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Issue => "issue",
            Step::Review => "review",
            Step::Export => "export",
            Step::Verify => "verify",
            Step::Redeem => "redeem",
            Step::Poll => "poll",
            Step::ListRequests => "list_requests",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::SignIn => "sign_in",
            Step::ManualSignIn => "manual_sign_in",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Whole-console durations: not requests, so they have one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    /// From a console's arrival to its sign-in.
    TimeToSignedIn,
    /// From redemption to the decision reaching the console (rehearsals).
    WaitForApproval,
}

impl Flow {
    pub const ALL: [Flow; 2] = [Flow::TimeToSignedIn, Flow::WaitForApproval];

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::TimeToSignedIn => "time_to_signed_in",
            Flow::WaitForApproval => "wait_for_approval",
        }
    }
}

/// How a request ended, for the counts of its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered<'a> {
    /// A 2xx answer.
    Ok,
    /// A 4xx answer, by the contract's error code: the server refusing, as the contract says
    /// it must (a mistyped OTP, a request already decided).
    Refused(&'a str),
    /// A 5xx answer, by error code or status: the server failing.
    Failed(&'a str),
}

/// Microseconds of a duration, at least 1 (the histogram's lowest value); `None` past the range.
fn to_us(d: Duration) -> Option<u64> {
    let us = u64::try_from(d.as_micros()).ok()?;
    (us <= HISTOGRAM_MAX_US).then_some(us.max(1))
}

/// What a step's requests came to, beyond their latencies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    /// Requests sent and answered or failed (real ones: synthetic samples are not requests).
    pub requests: u64,
    /// Samples the load scenarios' coordinated-omission correction added to the response view
    /// (closed loop only; never counted as requests).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub synthetic: u64,
    /// 5xx answers and requests that got no answer, by kind.
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// 4xx answers by error code: refusals the contract makes (a typo, a decided request).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
    /// Values longer than the histograms hold (`HISTOGRAM_MAX_US`), counted and left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub over_range: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl StepCounts {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another run's counts (shards).
    pub fn add(&mut self, other: &StepCounts) {
        self.requests += other.requests;
        self.synthetic += other.synthetic;
        self.over_range += other.over_range;
        for (mine, theirs) in [
            (&mut self.errors, &other.errors),
            (&mut self.refusals, &other.refusals),
        ] {
            for (kind, n) in theirs {
                *mine.entry(kind.clone()).or_default() += n;
            }
        }
    }
}

/// A step while the run goes: the open interval's histograms and the counts so far.
#[derive(Debug, Default)]
struct OpenStep {
    interval: ViewHistograms,
    counts: StepCounts,
}

/// What closed intervals left: the totals, each interval's log lines and its point.
#[derive(Debug, Default)]
struct Closed {
    totals: Vec<ViewHistograms>,
    lines: BTreeMap<(Step, View), Vec<IntervalLine>>,
    points: Vec<IntervalPoint>,
    /// Where the open interval starts, from the run's start.
    open_since: Duration,
}

/// The recorder of a run: shared by every console and admin. Each step has its own lock (a
/// record is a few nanoseconds, so contention stays low with thousands of consoles); a ticker
/// closes an interval every so often (`close_interval`), which writes its histograms as lines
/// of the interval logs and adds them to the run's totals.
#[derive(Debug)]
pub struct Recorder {
    steps: Vec<Mutex<OpenStep>>,
    flows: Vec<Mutex<Histogram<u64>>>,
    flows_over_range: Mutex<u64>,
    closed: Mutex<Closed>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            steps: Step::ALL
                .iter()
                .map(|_| Mutex::new(OpenStep::default()))
                .collect(),
            flows: Flow::ALL
                .iter()
                .map(|_| Mutex::new(new_histogram()))
                .collect(),
            flows_over_range: Mutex::new(0),
            closed: Mutex::new(Closed {
                totals: Step::ALL
                    .iter()
                    .map(|_| ViewHistograms::default())
                    .collect(),
                ..Closed::default()
            }),
        }
    }
}

impl Recorder {
    /// Records one answered request: `lateness` from its intended send to its actual send,
    /// `service` from the actual send to the answer. The response view gets their sum. A closed
    /// loop (goose) has no intended send time: `None` leaves the lateness view empty, and the
    /// response view then holds the service time.
    pub fn request(
        &self,
        step: Step,
        lateness: Option<Duration>,
        service: Duration,
        answer: Answered<'_>,
    ) {
        self.requests_alike(step, 1, lateness, service, answer);
    }

    /// Records `n` answered requests alike (the same lateness, service and answer), at once.
    pub fn requests_alike(
        &self,
        step: Step,
        n: u64,
        lateness: Option<Duration>,
        service: Duration,
        answer: Answered<'_>,
    ) {
        if n == 0 {
            return;
        }
        let mut s = self.steps[step as usize].lock();
        s.counts.requests += n;
        match answer {
            Answered::Ok => {}
            Answered::Refused(code) => count(&mut s.counts.refusals, code, n),
            Answered::Failed(kind) => count(&mut s.counts.errors, kind, n),
        }
        let late = lateness.unwrap_or_default();
        let values = [Some(late + service), Some(service), lateness];
        for (view, d) in View::ALL.into_iter().zip(values) {
            let Some(d) = d else { continue };
            match to_us(d) {
                Some(us) => s.interval.get_mut(view).saturating_record_n(us, n),
                None => s.counts.over_range += n,
            }
        }
    }

    /// Counts a request that got no answer (a timeout, a reset): an error of its step, with no
    /// latency (there was no answer to time).
    pub fn no_answer(&self, step: Step, kind: &str) {
        let mut s = self.steps[step as usize].lock();
        s.counts.requests += 1;
        count(&mut s.counts.errors, kind, 1);
    }

    /// Adds synthetic samples (microseconds) to a step's response view: the requests a stalled
    /// closed-loop user would have sent (load scenarios' coordinated-omission correction). They
    /// are counted apart and never as requests.
    pub fn synthetic(&self, step: Step, values_us: &[u64]) {
        let mut s = self.steps[step as usize].lock();
        s.counts.synthetic += values_us.len() as u64;
        for us in values_us {
            s.interval
                .response
                .saturating_record((*us).clamp(1, HISTOGRAM_MAX_US));
        }
    }

    /// Records a whole-console duration.
    pub fn flow(&self, flow: Flow, elapsed: Duration) {
        match to_us(elapsed) {
            Some(us) => self.flows[flow as usize].lock().saturating_record(us),
            None => *self.flows_over_range.lock() += 1,
        }
    }

    /// Closes the open interval at `end` (from the run's start): its histograms become lines of
    /// the interval logs and a point over time, and are added to the totals. An interval without
    /// a request leaves no line.
    pub fn close_interval(&self, end: Duration) {
        let mut closed = self.closed.lock();
        let start = closed.open_since;
        let length = end.saturating_sub(start);
        let mut point = IntervalPoint::new(start, length);
        for step in Step::ALL {
            let mut open = self.steps[step as usize].lock();
            if open.interval.is_empty() {
                continue;
            }
            for view in View::ALL {
                let h = open.interval.get(view);
                if !h.is_empty() {
                    let line = IntervalLine::encode(h, start, length);
                    closed.lines.entry((step, view)).or_default().push(line);
                }
            }
            point.steps.insert(
                step.as_str().to_owned(),
                IntervalStep::of(&open.interval, length),
            );
            // Cannot fail: every histogram has the same bounds.
            let _ = closed.totals[step as usize].add(&open.interval);
            for view in View::ALL {
                open.interval.get_mut(view).reset();
            }
        }
        if !point.steps.is_empty() {
            closed.points.push(point);
        }
        closed.open_since = end;
    }

    /// A copy of one flow's histogram.
    pub fn flow_histogram(&self, flow: Flow) -> Histogram<u64> {
        self.flows[flow as usize].lock().clone()
    }

    /// The counts of one step so far.
    pub fn counts(&self, step: Step) -> StepCounts {
        self.steps[step as usize].lock().counts.clone()
    }

    /// Requests of every step so far (for progress lines).
    pub fn requests(&self) -> u64 {
        self.steps.iter().map(|s| s.lock().counts.requests).sum()
    }

    /// Each closed interval's point over time (requests per second, p50 and p99 per step).
    pub fn points(&self) -> Vec<IntervalPoint> {
        self.closed.lock().points.clone()
    }

    /// `f` of one step's three views up to the last closed interval (none before it
    /// recorded), read in place: requests go on being recorded meanwhile, and nothing is copied.
    pub fn with_totals<R>(&self, step: Step, f: impl FnOnce(&ViewHistograms) -> R) -> Option<R> {
        let closed = self.closed.lock();
        let totals = &closed.totals[step as usize];
        (!totals.is_empty()).then(|| f(totals))
    }

    /// The steps that sent requests so far, for a live page: each one's requests, errors and
    /// generator lateness p99 (µs, up to the last closed interval; null before it).
    pub fn steps_so_far(&self) -> serde_json::Map<String, serde_json::Value> {
        Step::ALL
            .into_iter()
            .filter_map(|step| {
                let c = self.counts(step);
                (c.requests > 0).then_some((step, c))
            })
            .map(|(step, c)| {
                let lateness_p99_us = self.with_totals(step, |views| {
                    let h = views.get(View::Lateness);
                    (!h.is_empty()).then(|| h.value_at_quantile(0.99))
                });
                let figures = serde_json::json!({
                    "requests": c.requests,
                    "errors": c.error_count(),
                    "lateness_p99_us": lateness_p99_us.flatten(),
                });
                (step.as_str().to_owned(), figures)
            })
            .collect()
    }

    /// The last closed interval's point, if one closed.
    pub fn last_point(&self) -> Option<IntervalPoint> {
        self.closed.lock().points.last().cloned()
    }

    /// Whole-console values past the histograms' range.
    pub fn flows_over_range(&self) -> u64 {
        *self.flows_over_range.lock()
    }

    /// Everything recorded up to the last closed interval: totals, interval logs and the flows. Close the last interval first (`close_interval` at the run's end).
    pub fn histograms(&self) -> crate::RunHistograms {
        let closed = self.closed.lock();
        let mut out = crate::RunHistograms::default();
        for step in Step::ALL {
            let totals = &closed.totals[step as usize];
            if !totals.is_empty() {
                out.steps.insert(step.as_str().to_owned(), totals.clone());
            }
        }
        for ((step, view), lines) in &closed.lines {
            out.lines
                .insert((step.as_str().to_owned(), *view), lines.clone());
        }
        for flow in Flow::ALL {
            let h = self.flows[flow as usize].lock();
            if !h.is_empty() {
                out.flows.insert(flow.as_str().to_owned(), h.clone());
            }
        }
        out
    }
}

fn count(map: &mut BTreeMap<String, u64>, kind: &str, n: u64) {
    match map.get_mut(kind) {
        Some(seen) => *seen += n,
        None => {
            map.insert(kind.to_owned(), n);
        }
    }
}

/// Writes one histogram as an HdrHistogram interval log of one interval of `duration`
/// (compressed V2 encoding, as Java's `HistogramLogWriter` writes), after a `#comment` line.
pub fn write_histogram_log(
    h: &Histogram<u64>,
    comment: &str,
    duration: Duration,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .begin_log_with(out, &mut serializer)?;
    writer
        .write_histogram(h, Duration::ZERO, duration, None)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))
}

/// Percentiles of one histogram, in its unit (microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    /// Absent in reports written before it was kept (read as 0).
    #[serde(default)]
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The percentiles of a histogram (all zero when it is empty).
pub fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    Summary {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p95: h.value_at_quantile(0.95),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn the_three_views_add_up_per_request() {
        let r = Recorder::default();
        for i in 1..=1000u64 {
            let lateness = Duration::from_micros(i * 3);
            let service = Duration::from_micros(500 + i);
            r.request(Step::Redeem, Some(lateness), service, Answered::Ok);
        }
        r.close_interval(Duration::from_secs(1));
        let h = &r.histograms().steps["redeem"];
        assert_eq!(h.response.len(), 1000);
        assert_eq!(h.service.max(), h.service.highest_equivalent(1500));
        assert_eq!(h.lateness.max(), h.lateness.highest_equivalent(3000));
        assert_eq!(h.response.max(), h.response.highest_equivalent(4500));
    }

    #[test]
    fn values_of_days_are_kept_and_past_the_range_counted_not_clamped() {
        let r = Recorder::default();
        r.flow(Flow::TimeToSignedIn, DAY * 3);
        r.flow(Flow::TimeToSignedIn, DAY * 400);
        r.request(
            Step::Poll,
            Some(DAY * 400),
            Duration::from_millis(1),
            Answered::Ok,
        );
        r.close_interval(Duration::from_secs(1));
        let all = r.histograms();
        let flow = &all.flows["time_to_signed_in"];
        assert_eq!(flow.len(), 1, "the 400-day value is not in the histogram");
        let three_days = 3 * DAY.as_micros() as u64;
        assert!(flow.max().abs_diff(three_days) <= three_days / 1000);
        assert_eq!(r.flows_over_range(), 1);
        assert_eq!(r.counts(Step::Poll).over_range, 2, "lateness and response");
        assert_eq!(all.steps["poll"].service.len(), 1);
    }

    #[test]
    fn counts_split_refusals_errors_and_synthetic_samples() {
        let r = Recorder::default();
        let ms = Duration::from_millis(1);
        r.request(Step::Redeem, Some(ms), ms, Answered::Ok);
        r.request(Step::Redeem, Some(ms), ms, Answered::Refused("invalid_otp"));
        r.request(Step::Redeem, Some(ms), ms, Answered::Failed("status 503"));
        r.no_answer(Step::Redeem, "timeout");
        r.synthetic(Step::Redeem, &[5_000, 2_500]);
        let c = r.counts(Step::Redeem);
        assert_eq!((c.requests, c.synthetic, c.error_count()), (4, 2, 2));
        assert_eq!(c.refusals["invalid_otp"], 1);
        r.close_interval(Duration::from_secs(2));
        let h = &r.histograms().steps["redeem"];
        assert_eq!((h.response.len(), h.service.len()), (5, 3));
    }

    #[test]
    fn intervals_become_points_and_totals() {
        let r = Recorder::default();
        let ms = Duration::from_millis(1);
        for _ in 0..10 {
            r.request(Step::Verify, Some(ms), ms, Answered::Ok);
        }
        r.close_interval(Duration::from_secs(2));
        r.close_interval(Duration::from_secs(4));
        for _ in 0..4 {
            r.request(Step::Verify, Some(ms), ms * 5, Answered::Ok);
        }
        r.close_interval(Duration::from_secs(6));
        let all = r.histograms();
        let points = r.points();
        assert_eq!(points.len(), 2, "an empty interval leaves no point");
        assert_eq!(points[1].start_s, 4.0);
        assert_eq!(points[1].steps["verify"].requests, 4);
        assert_eq!(points[1].steps["verify"].rps, 2.0);
        assert_eq!(
            crate::intervals::points_of(&all.lines).expect("points"),
            points
        );
        assert_eq!(all.steps["verify"].service.len(), 14);
        assert_eq!(all.lines[&("verify".to_owned(), View::Service)].len(), 2);
    }
}
