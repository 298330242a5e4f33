//! A running fleet seen from outside while it runs: its counters and histograms in the
//! Prometheus text format (`fleet --metrics-listen`), read from the same recorder and tally the
//! report is built from, so the last scrape and report.json agree.
//!
//! Histograms are classic cumulative buckets computed from the HdrHistograms of the intervals
//! closed so far (never pre-computed percentiles, which cannot be added across shards); a
//! shard's series carry `seed` and `shard` labels so a backend sums the shards of one run.

use crate::api::Requester;
use otpfleet_reports::{Histogram, Outcome, Step, StepCounts, View};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The upper bounds of the latency buckets, seconds: 100 µs to 30 s, then `+Inf`.
const BUCKETS_S: [f64; 19] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 15.0, 20.0, 30.0,
];

/// The live view of one run, handed out once it starts (`RunOptions::live`).
#[derive(Debug, Clone)]
pub struct Live {
    requester: Arc<Requester>,
    started: tokio::time::Instant,
    /// The consoles this process runs.
    planned: u64,
}

impl Live {
    pub(crate) fn new(
        requester: Arc<Requester>,
        started: tokio::time::Instant,
        planned: u64,
    ) -> Live {
        Live {
            requester,
            started,
            planned,
        }
    }

    /// The run so far as one JSON object (`fleet --dashboard`'s events): elapsed seconds,
    /// consoles planned and ended by outcome, faults, consoles waiting, requests and errors
    /// per step so far, and the last closed interval's rates and percentiles per step.
    pub fn snapshot(&self) -> serde_json::Value {
        let r = &self.requester;
        let outcomes = r.tally.outcomes();
        let steps: serde_json::Map<String, serde_json::Value> = step_counts(r)
            .into_iter()
            .map(|(s, c)| {
                let counts = serde_json::json!({"requests": c.requests, "errors": c.error_count()});
                (s.as_str().to_owned(), counts)
            })
            .collect();
        let gauges = r.tally.gauges();
        serde_json::json!({
            "elapsed_s": self.started.elapsed().as_secs_f64(),
            "seed": r.cfg.seed,
            "consoles": self.planned,
            "ended": outcomes.total(),
            "outcomes": outcomes,
            "faults": r.tally.faults(),
            "waiting": {
                "in_verification": gauges.in_verification,
                "awaiting_approval": gauges.awaiting_approval,
            },
            "steps": steps,
            "interval": r.recorder.last_point(),
            "stopped_because": r.stop.reason(),
        })
    }

    /// Every series of the run so far, in the Prometheus text exposition format (0.0.4).
    pub fn prometheus(&self) -> String {
        let r = &self.requester;
        let cfg = &r.cfg;
        let labels = format!(
            "seed=\"{}\",shard=\"{}/{}\",role=\"{}\"",
            cfg.seed,
            cfg.shard.index(),
            cfg.shard.count(),
            cfg.role
        );
        let mut out = String::with_capacity(16 * 1024);
        let outcomes = r.tally.outcomes();
        family(
            &mut out,
            "otpfleet_fleet_consoles_total",
            "counter",
            "Consoles that ended, by outcome.",
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "otpfleet_fleet_consoles_total{{{labels},outcome=\"{}\"}} {}",
                o.as_str(),
                outcomes.get(o)
            );
        }
        family(
            &mut out,
            "otpfleet_fleet_faults_total",
            "counter",
            "Faults the consoles met, by kind.",
        );
        let faults = serde_json::to_value(r.tally.faults()).unwrap_or_default();
        for (fault, n) in faults.as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "otpfleet_fleet_faults_total{{{labels},fault=\"{fault}\"}} {n}"
            );
        }
        let gauges = r.tally.gauges();
        family(
            &mut out,
            "otpfleet_fleet_consoles_waiting",
            "gauge",
            "Consoles in verification or awaiting approval now.",
        );
        for (state, n) in [
            ("in_verification", gauges.in_verification),
            ("awaiting_approval", gauges.awaiting_approval),
        ] {
            let _ = writeln!(
                out,
                "otpfleet_fleet_consoles_waiting{{{labels},state=\"{state}\"}} {n}"
            );
        }
        write_steps(&mut out, r, &labels);
        out
    }
}

/// Requests, errors and refusals per step, and the latency histograms per step and view.
fn write_steps(out: &mut String, r: &Requester, labels: &str) {
    let steps = write_step_counts(out, r, labels);
    write_latencies(out, r, labels, &steps);
}

/// The counts of the steps that sent requests so far.
fn step_counts(r: &Requester) -> Vec<(Step, StepCounts)> {
    Step::ALL
        .into_iter()
        .map(|s| (s, r.recorder.counts(s)))
        .filter(|(_, c)| c.requests > 0)
        .collect()
}

/// Requests, errors and refusals per step; answers the steps that sent requests.
fn write_step_counts(out: &mut String, r: &Requester, labels: &str) -> Vec<Step> {
    family(
        out,
        "otpfleet_fleet_requests_total",
        "counter",
        "Requests sent (answered or not), by step.",
    );
    let steps = step_counts(r);
    for (step, counts) in &steps {
        let step = step.as_str();
        let _ = writeln!(
            out,
            "otpfleet_fleet_requests_total{{{labels},step=\"{step}\"}} {}",
            counts.requests
        );
    }
    type Breakdown = fn(&StepCounts) -> &BTreeMap<String, u64>;
    let breakdowns: [(&str, &str, &str, Breakdown); 2] = [
        (
            "otpfleet_fleet_request_errors_total",
            "5xx answers and requests without an answer, by step and kind.",
            "kind",
            |c| &c.errors,
        ),
        (
            "otpfleet_fleet_request_refusals_total",
            "4xx answers, by step and error code.",
            "code",
            |c| &c.refusals,
        ),
    ];
    for (name, help, label, of) in breakdowns {
        family(out, name, "counter", help);
        for (step, counts) in &steps {
            for (key, n) in of(counts) {
                let (step, key) = (step.as_str(), escape(key));
                let _ = writeln!(
                    out,
                    "{name}{{{labels},step=\"{step}\",{label}=\"{key}\"}} {n}"
                );
            }
        }
    }
    steps.into_iter().map(|(s, _)| s).collect()
}

/// The latency histograms of `steps`, per view.
fn write_latencies(out: &mut String, r: &Requester, labels: &str, steps: &[Step]) {
    family(
        out,
        "otpfleet_fleet_request_duration_seconds",
        "histogram",
        "Request latency by step and view (response: from the intended send; service: from the \
         actual send; lateness: the generator's delay), over the intervals closed so far. _sum \
         is the histogram's mean times its count.",
    );
    for step in steps {
        r.recorder.with_totals(*step, |views| {
            for view in View::ALL {
                let series = format!(
                    "{labels},step=\"{}\",view=\"{}\"",
                    step.as_str(),
                    view.as_str()
                );
                write_histogram(out, &series, views.get(view));
            }
        });
    }
}

/// One histogram's buckets (cumulative), sum and count; values are microseconds.
fn write_histogram(out: &mut String, series: &str, h: &Histogram<u64>) {
    let name = "otpfleet_fleet_request_duration_seconds";
    for le in BUCKETS_S {
        // The bound in µs; a value recorded at most that long is in the bucket.
        let bound_us = (le * 1e6).round() as u64;
        let n = if h.is_empty() {
            0
        } else {
            h.count_between(0, bound_us)
        };
        let _ = writeln!(out, "{name}_bucket{{{series},le=\"{le}\"}} {n}");
    }
    let count = h.len();
    let _ = writeln!(out, "{name}_bucket{{{series},le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "{name}_sum{{{series}}} {}",
        h.mean() * count as f64 / 1e6
    );
    let _ = writeln!(out, "{name}_count{{{series}}} {count}");
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format needs it: backslash, quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
