//! A running fleet, and a rehearsal, seen from outside while they run: the fleet's counters and
//! histograms as one metric model ([`Metric`]) that the Prometheus text here
//! (`fleet --metrics-listen`) and the binary's OTLP export (`fleet --otlp-endpoint`) encode, and
//! the live page's figures (`--dashboard`); all read from the same recorder and tally the report
//! is built from, so the last scrape, the last export and report.json agree.
//!
//! Histograms are explicit cumulative buckets computed from the HdrHistograms of the intervals
//! closed so far (never pre-computed percentiles, which cannot be added across shards); a
//! shard's series carry `seed` and `shard` labels so a backend sums the shards of one run.

use crate::api::Requester;
use crate::profile::ConsoleProfile;
use otpfleet_reports::{Histogram, Outcome, Step, StepCounts, TimelinePoint, View};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

/// Latency buckets per doubling: each bound 2^(1/16) = 4.4% above the one before, so that
/// `histogram_quantile`, which interpolates within a bucket, lands within 4.4% of the exact
/// percentile (report.json's) at any latency. Coarser buckets (100 µs, 250 µs, 500 µs, ...) put
/// a sub-millisecond p99 28% off.
const BUCKETS_PER_DOUBLING: u32 = 16;
/// The lowest bucket's bound, µs, and the highest's at least (60 s).
const LOWEST_BOUND_US: u64 = 16;
const HIGHEST_BOUND_US: f64 = 60e6;

/// The upper bounds of the latency buckets in whole µs (distinct, rising), then `+Inf`.
fn bounds_us() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        // Each bound the one before times 2^(1/16), rounded down, and at least one more: the
        // low buckets are single microseconds, the rest never wider than 4.4%.
        let step = 2f64.powf(1.0 / f64::from(BUCKETS_PER_DOUBLING));
        let mut bounds = vec![LOWEST_BOUND_US];
        while let Some(&last) = bounds.last().filter(|b| (**b as f64) < HIGHEST_BOUND_US) {
            bounds.push(((last as f64 * step) as u64).max(last + 1));
        }
        bounds
    })
}

/// The same bounds in seconds, as the exposition and OTLP write them.
fn bounds_s() -> &'static [f64] {
    static BOUNDS: OnceLock<Vec<f64>> = OnceLock::new();
    BOUNDS.get_or_init(|| bounds_us().iter().map(|us| *us as f64 / 1e6).collect())
}

/// The live view of one run, handed out once it starts (`RunOptions::live`).
#[derive(Debug, Clone)]
pub struct Live {
    requester: Arc<Requester>,
    started: tokio::time::Instant,
    /// When this process's consoles are due, milliseconds from the start, in order.
    arrivals_ms: Arc<[u64]>,
}

impl Live {
    pub(crate) fn new(
        requester: Arc<Requester>,
        started: tokio::time::Instant,
        consoles: &[ConsoleProfile],
    ) -> Live {
        let mut arrivals_ms: Vec<u64> = consoles.iter().map(|p| p.arrival_ms).collect();
        arrivals_ms.sort_unstable();
        Live {
            requester,
            started,
            arrivals_ms: arrivals_ms.into(),
        }
    }

    /// The run so far as one JSON object (`fleet --dashboard`'s events): elapsed seconds,
    /// consoles planned, due and arrived so far, and what [`figures`] shows.
    pub fn snapshot(&self) -> serde_json::Value {
        let elapsed = self.elapsed();
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let mut snapshot = figures(&self.requester);
        snapshot["kind"] = "fleet".into();
        snapshot["elapsed_s"] = elapsed.as_secs_f64().into();
        snapshot["consoles"] = self.arrivals_ms.len().into();
        snapshot["arrivals"] = serde_json::json!({
            "due": self.arrivals_ms.partition_point(|at| *at <= elapsed_ms),
            "arrived": self.requester.tally.arrivals(),
        });
        snapshot
    }

    /// The run's settings (its seed, this process's shard and role).
    pub fn config(&self) -> &crate::FleetConfig {
        &self.requester.cfg
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The labels every series of this process carries: the run's seed (one run, whichever
    /// shard), the shard as `K/N`, and the process's role.
    fn identity(&self) -> [(&'static str, String); 3] {
        let cfg = &self.requester.cfg;
        [
            ("seed", cfg.seed.to_string()),
            (
                "shard",
                format!("{}/{}", cfg.shard.index(), cfg.shard.count()),
            ),
            ("role", cfg.role.to_string()),
        ]
    }

    /// The run's metrics so far, encoded by `prometheus` here and by `fleet --otlp-endpoint`.
    pub fn metrics(&self) -> Vec<Metric> {
        let r = &self.requester;
        let outcomes = r.tally.outcomes();
        let consoles = Outcome::ALL
            .into_iter()
            .map(|o| Series::int([("outcome", o.as_str())], outcomes.get(o)));
        let faults = serde_json::to_value(r.tally.faults()).unwrap_or_default();
        let faults = faults.as_object().into_iter().flatten().map(|(fault, n)| {
            Series::int([("fault", fault.as_str())], n.as_u64().unwrap_or_default())
        });
        let gauges = r.tally.gauges();
        let waiting = [
            ("in_verification", gauges.in_verification),
            ("awaiting_approval", gauges.awaiting_approval),
        ]
        .map(|(state, n)| Series::int([("state", state)], n));
        let mut metrics = vec![
            Metric::new(CONSOLES, consoles.collect()),
            Metric::new(FAULTS, faults.collect()),
            Metric::new(WAITING, waiting.into()),
        ];
        metrics.extend(step_metrics(r));
        metrics
    }

    /// Every series of the run so far, in the Prometheus text exposition format (0.0.4).
    pub fn prometheus(&self) -> String {
        let identity = self
            .identity()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(&v)))
            .join(",");
        let mut out = String::with_capacity(16 * 1024);
        for metric in self.metrics() {
            write_metric(&mut out, &identity, &metric);
        }
        out
    }
}

/// What a metric is, whichever way it leaves: its name in OpenTelemetry's dotted style (the
/// Prometheus name is derived from it, as an OpenTelemetry collector's Prometheus exporter
/// would), its unit, its kind and its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    /// UCUM: `s` for seconds, `1` for counts.
    pub unit: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

impl Family {
    /// The name in the Prometheus exposition: dots to underscores, the unit (`_seconds`) and
    /// `_total` for a counter appended.
    pub fn prometheus_name(&self) -> String {
        let mut name = self.name.replace('.', "_");
        if self.unit == "s" {
            name.push_str("_seconds");
        }
        if self.kind == Kind::Counter {
            name.push_str("_total");
        }
        name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic, cumulative from the run's start.
    Counter,
    /// A value now.
    Gauge,
    /// Cumulative from the run's start, in explicit buckets.
    Histogram,
}

/// One metric and its series.
#[derive(Debug, Clone)]
pub struct Metric {
    pub family: Family,
    pub series: Vec<Series>,
}

impl Metric {
    fn new(family: Family, series: Vec<Series>) -> Metric {
        Metric { family, series }
    }
}

/// One series: its own labels (the process's identity comes on top) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

impl Series {
    fn int<const N: usize>(labels: [(&'static str, &str); N], n: u64) -> Series {
        Series {
            labels: labels.map(|(k, v)| (k, v.to_owned())).into(),
            value: Value::Int(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    Histogram(Buckets),
}

/// A histogram in explicit buckets: `counts[i]` values at most `bounds[i]` and above the bound
/// before it; the last count is the values above the last bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub bounds: &'static [f64],
    /// One per bound, then one for above the last (`bounds.len() + 1`), not cumulative.
    pub counts: Vec<u64>,
    pub count: u64,
    /// The histogram's mean times its count, in the unit.
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Buckets {
    /// `h`'s values (microseconds) in seconds' buckets.
    fn of_us(h: &Histogram<u64>) -> Buckets {
        let bounds = bounds_us();
        let mut counts = vec![0; bounds.len() + 1];
        // One pass over the recorded values: each in the first bucket whose bound holds it
        // (values are whole µs, exact below 2,048 µs and within 0.1% above).
        for v in h.iter_recorded() {
            let i = bounds.partition_point(|b| *b < v.value_iterated_to());
            counts[i] += v.count_at_value();
        }
        let count = h.len();
        let (min, max) = if h.is_empty() {
            (0.0, 0.0)
        } else {
            (h.min() as f64 / 1e6, h.max() as f64 / 1e6)
        };
        Buckets {
            bounds: bounds_s(),
            counts,
            count,
            sum: h.mean() * count as f64 / 1e6,
            min,
            max,
        }
    }
}

const CONSOLES: Family = Family {
    name: "otpfleet.fleet.consoles",
    unit: "1",
    kind: Kind::Counter,
    help: "Consoles that ended, by outcome.",
};
const FAULTS: Family = Family {
    name: "otpfleet.fleet.faults",
    unit: "1",
    kind: Kind::Counter,
    help: "Faults the consoles met, by kind.",
};
const WAITING: Family = Family {
    name: "otpfleet.fleet.consoles.waiting",
    unit: "1",
    kind: Kind::Gauge,
    help: "Consoles in verification or awaiting approval now.",
};
const REQUESTS: Family = Family {
    name: "otpfleet.fleet.requests",
    unit: "1",
    kind: Kind::Counter,
    help: "Requests sent (answered or not), by step.",
};
const ERRORS: Family = Family {
    name: "otpfleet.fleet.request.errors",
    unit: "1",
    kind: Kind::Counter,
    help: "5xx answers and requests without an answer, by step and kind.",
};
const REFUSALS: Family = Family {
    name: "otpfleet.fleet.request.refusals",
    unit: "1",
    kind: Kind::Counter,
    help: "4xx answers, by step and error code.",
};
const DURATION: Family = Family {
    name: "otpfleet.fleet.request.duration",
    unit: "s",
    kind: Kind::Histogram,
    help: "Request latency by step and view (response: from the intended send; service: from \
           the actual send; lateness: the generator's delay), over the intervals closed so \
           far. _sum is the histogram's mean times its count.",
};

/// A rehearsal seen from outside while it runs (`rehearse --dashboard`), read from another
/// thread in real time while the rehearsal runs on its simulated clock: set as the rehearsal
/// starts, its timeline growing one point per simulated hour.
#[derive(Debug, Default)]
pub struct RehearsalLive {
    run: OnceLock<(Arc<Requester>, serde_json::Value)>,
    timeline: Mutex<Vec<TimelinePoint>>,
}

impl RehearsalLive {
    /// The rehearsal started: its requester, and what the page says of the plan.
    pub(crate) fn start(&self, requester: Arc<Requester>, plan: serde_json::Value) {
        let _ = self.run.set((requester, plan));
    }

    /// A simulated hour ended.
    pub(crate) fn point(&self, point: &TimelinePoint) {
        self.timeline.lock().push(point.clone());
    }

    /// The rehearsal so far (none before it starts): the plan (name, consoles, horizon), the
    /// simulated clock (the last hour ended), the timeline so far, and what [`figures`] shows.
    pub fn snapshot(&self) -> Option<serde_json::Value> {
        let (requester, plan) = self.run.get()?;
        let timeline = self.timeline.lock().clone();
        let mut snapshot = figures(requester);
        snapshot["kind"] = "rehearsal".into();
        snapshot["consoles"] = plan["consoles"].clone();
        snapshot["plan"] = plan.clone();
        snapshot["simulated"] = timeline.last().map_or(
            serde_json::Value::Null,
            |p| serde_json::json!({ "hour": p.hour, "at": p.at }),
        );
        snapshot["timeline"] = serde_json::to_value(timeline).unwrap_or_default();
        Some(snapshot)
    }
}

/// What the live pages of a fleet and a rehearsal share: the seed, consoles ended (by outcome),
/// faults, consoles waiting, requests, errors and generator lateness per step so far, the last
/// closed interval's rates and percentiles per step, and why the run stopped early, if it did.
pub(crate) fn figures(r: &Requester) -> serde_json::Value {
    let outcomes = r.tally.outcomes();
    let gauges = r.tally.gauges();
    serde_json::json!({
        "seed": r.cfg.seed,
        "ended": outcomes.total(),
        "outcomes": outcomes,
        "faults": r.tally.faults(),
        "waiting": {
            "in_verification": gauges.in_verification,
            "awaiting_approval": gauges.awaiting_approval,
        },
        "steps": r.recorder.steps_so_far(),
        "interval": r.recorder.last_point(),
        "stopped_because": r.stop.reason(),
    })
}

/// Requests, errors and refusals per step, and the latency histograms per step and view, of
/// the steps that sent requests so far.
fn step_metrics(r: &Requester) -> [Metric; 4] {
    let steps = step_counts(r);
    let requests = steps
        .iter()
        .map(|(step, c)| Series::int([("step", step.as_str())], c.requests));
    type Breakdown = fn(&StepCounts) -> &BTreeMap<String, u64>;
    let breakdown = |label: &'static str, of: Breakdown| -> Vec<Series> {
        steps
            .iter()
            .flat_map(|(step, c)| {
                of(c).iter().map(move |(key, n)| {
                    Series::int([("step", step.as_str()), (label, key.as_str())], *n)
                })
            })
            .collect()
    };
    let mut durations = Vec::new();
    for (step, _) in &steps {
        r.recorder.with_totals(*step, |views| {
            for view in View::ALL {
                durations.push(Series {
                    labels: vec![
                        ("step", step.as_str().to_owned()),
                        ("view", view.as_str().to_owned()),
                    ],
                    value: Value::Histogram(Buckets::of_us(views.get(view))),
                });
            }
        });
    }
    [
        Metric::new(REQUESTS, requests.collect()),
        Metric::new(ERRORS, breakdown("kind", |c| &c.errors)),
        Metric::new(REFUSALS, breakdown("code", |c| &c.refusals)),
        Metric::new(DURATION, durations),
    ]
}

/// The counts of the steps that sent requests so far.
fn step_counts(r: &Requester) -> Vec<(Step, StepCounts)> {
    Step::ALL
        .into_iter()
        .map(|s| (s, r.recorder.counts(s)))
        .filter(|(_, c)| c.requests > 0)
        .collect()
}

/// One metric in the text format: its HELP and TYPE, then its series, `identity` first.
fn write_metric(out: &mut String, identity: &str, metric: &Metric) {
    let family = metric.family;
    let name = family.prometheus_name();
    let kind = match family.kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
    for series in &metric.series {
        let mut labels = identity.to_owned();
        for (k, v) in &series.labels {
            let _ = write!(labels, ",{k}=\"{}\"", escape(v));
        }
        match &series.value {
            Value::Int(n) => {
                let _ = writeln!(out, "{name}{{{labels}}} {n}");
            }
            Value::Histogram(b) => write_buckets(out, &name, &labels, b),
        }
    }
}

/// One histogram's buckets (cumulative), sum and count.
fn write_buckets(out: &mut String, name: &str, labels: &str, b: &Buckets) {
    let mut upto = 0;
    for (le, n) in b.bounds.iter().zip(&b.counts) {
        upto += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {upto}");
    }
    let count = b.count;
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", b.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
}

/// A label value as the text format needs it: backslash, quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    /// Every bucket is at most 4.5% wider than its lower bound above 25 µs (below, whole
    /// microseconds), and they reach 60 s.
    #[test]
    fn buckets_are_fine_enough_for_histogram_quantile() {
        let b = bounds_us();
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert!(*b.last().unwrap() >= 60_000_000 && b[0] == 16, "{b:?}");
        for w in b.windows(2).filter(|w| w[0] >= 25) {
            assert!(w[1] as f64 / w[0] as f64 <= 1.045, "{w:?}");
        }
        let mut h = otpfleet_reports::new_histogram();
        for v in [20, 500, 501, 100_000] {
            h.record(v).unwrap();
        }
        let buckets = Buckets::of_us(&h);
        assert_eq!(buckets.counts.iter().sum::<u64>(), 4);
        let at = |us: u64| b.partition_point(|x| *x < us);
        assert_eq!(buckets.counts[at(20)], 1);
        assert_eq!(buckets.counts[at(500)], 2, "500 and 501 µs share a bucket");
        assert!(b[at(500)] >= 501 && b[at(500) - 1] < 500);
        assert_eq!(buckets.counts[at(100_000)], 1);
    }
}
