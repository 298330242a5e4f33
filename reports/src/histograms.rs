//! Latency recording: one HdrHistogram per step, microseconds, 3 significant figures.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// Largest value a histogram holds: one hour, in microseconds. Larger values are clamped.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// The measured steps of a run. `TimeToSignedIn` is a whole console's flow, the others single
/// requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Issue,
    Verify,
    Redeem,
    Poll,
    Approve,
    Reject,
    SignIn,
    ManualSignIn,
    TimeToSignedIn,
    /// From redemption to the decision reaching the console (rehearsals).
    WaitForApproval,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::Issue,
        Step::Verify,
        Step::Redeem,
        Step::Poll,
        Step::Approve,
        Step::Reject,
        Step::SignIn,
        Step::ManualSignIn,
        Step::TimeToSignedIn,
        Step::WaitForApproval,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Issue => "issue",
            Step::Verify => "verify",
            Step::Redeem => "redeem",
            Step::Poll => "poll",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::SignIn => "sign_in",
            Step::ManualSignIn => "manual_sign_in",
            Step::TimeToSignedIn => "time_to_signed_in",
            Step::WaitForApproval => "wait_for_approval",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("static bounds are valid")
}

/// Shared recorder: one histogram per step behind its own lock (a record is a few nanoseconds,
/// so contention stays low even with thousands of consoles).
///
/// Each request step has two histograms: *corrected*, from the moment the request was meant to
/// be sent (what a user waits, coordinated omission included), and *raw*, from the moment it was
/// actually sent (what the server took, plus the network).
#[derive(Debug)]
pub struct Recorder {
    steps: BTreeMap<Step, Mutex<Histogram<u64>>>,
    raw: BTreeMap<Step, Mutex<Histogram<u64>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        let set = || {
            Step::ALL
                .into_iter()
                .map(|s| (s, Mutex::new(new_histogram())))
                .collect()
        };
        Recorder {
            steps: set(),
            raw: set(),
        }
    }
}

fn to_us(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HISTOGRAM_MAX_US)
}

impl Recorder {
    /// Records one duration; values past one hour are clamped to it.
    pub fn record(&self, step: Step, elapsed: Duration) {
        if let Some(h) = self.steps.get(&step) {
            // Saturating: a value within bounds cannot fail to record.
            h.lock().saturating_record(to_us(elapsed));
        }
    }

    /// Records one request's time from its actual send (the raw view).
    pub fn record_raw(&self, step: Step, elapsed: Duration) {
        if let Some(h) = self.raw.get(&step) {
            h.lock().saturating_record(to_us(elapsed));
        }
    }

    /// A copy of one step's raw histogram.
    pub fn raw_histogram(&self, step: Step) -> Histogram<u64> {
        self.raw
            .get(&step)
            .map_or_else(new_histogram, |h| h.lock().clone())
    }

    /// A copy of one step's histogram.
    pub fn histogram(&self, step: Step) -> Histogram<u64> {
        self.steps
            .get(&step)
            .map_or_else(new_histogram, |h| h.lock().clone())
    }

    /// Adds another recorder's counts (shards, merged runs) without loss.
    pub fn add(&self, step: Step, other: &Histogram<u64>) {
        if let Some(h) = self.steps.get(&step) {
            let _ = h.lock().add(other);
        }
    }

    /// Writes one step's histogram as an HdrHistogram interval log (one interval of
    /// `duration`, compressed V2 encoding, as Java's `HistogramLogWriter` writes).
    pub fn write_log(
        &self,
        step: Step,
        duration: Duration,
        out: &mut impl io::Write,
    ) -> io::Result<()> {
        let comment = format!("otpfleet step {}: values in microseconds", step.as_str());
        write_histogram_log(&self.histogram(step), &comment, duration, out)
    }
}

/// Writes one histogram as an HdrHistogram interval log: a `#comment` line, then one interval
/// of `duration` (compressed V2 encoding, as Java's `HistogramLogWriter` writes).
pub fn write_histogram_log(
    h: &Histogram<u64>,
    comment: &str,
    duration: Duration,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .begin_log_with(out, &mut serializer)?;
    writer
        .write_histogram(h, Duration::ZERO, duration, None)
        .map_err(|e| io::Error::other(format!("{e:?}")))
}

/// Reads every interval of an HdrHistogram interval log into one histogram.
pub fn read_histogram_log(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    let mut total = new_histogram();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("not an HdrHistogram interval log: {e:?}"))?;
        if let LogEntry::Interval(interval) = entry {
            let decoded = base64_decode(interval.encoded_histogram())?;
            let h: Histogram<u64> = deserializer
                .deserialize(&mut io::Cursor::new(decoded))
                .map_err(|e| format!("a histogram in the log does not decode: {e:?}"))?;
            total.add(&h).map_err(|e| format!("{e:?}"))?;
        }
    }
    Ok(total)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in text.as_bytes().iter().filter(|c| **c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or("bad base64 in the log")? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Percentiles of one step, in the histogram's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
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
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_round_trip_without_loss() {
        let r = Recorder::default();
        for ms in 1..=1000u64 {
            r.record(Step::Redeem, Duration::from_micros(ms * 37));
        }
        let mut log = Vec::new();
        r.write_log(Step::Redeem, Duration::from_secs(3), &mut log)
            .expect("write");
        let text = String::from_utf8(log.clone()).expect("text");
        assert!(text.starts_with("#otpfleet step redeem"));
        let back = read_histogram_log(&log).expect("read");
        assert_eq!(back, r.histogram(Step::Redeem));
        assert_eq!(summarize(&back).count, 1000);
    }

    #[test]
    fn summaries_are_percentiles() {
        let r = Recorder::default();
        for us in 1..=100u64 {
            r.record(Step::Poll, Duration::from_micros(us * 10));
        }
        let s = summarize(&r.histogram(Step::Poll));
        assert_eq!((s.count, s.p50, s.max), (100, 500, 1000));
        assert_eq!(summarize(&r.histogram(Step::Verify)), Summary::default());
    }
}
