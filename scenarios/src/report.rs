//! A load run as `report.json` (`RunKind::Load`), so it compares with any other run, and a
//! short summary of goose's own numbers.

use crate::run::{LoadConfig, LoadRun};
use goose::metrics::GooseMetrics;
use goose::threshold::ThresholdResult;
use otpfleet_reports::{
    Faults, Measured, RunHistograms, RunKind, RunOf, RunReport, Settings, ShardInfo, Step,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Goose's totals, from its metrics (which by default cover the run after every user started).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GooseSummary {
    pub requests: u64,
    pub failures: u64,
    /// Seconds goose's metrics cover.
    pub duration_s: u64,
    pub requests_per_s: f64,
    /// Per request name (`POST redeem`): successes and failures.
    pub by_request: BTreeMap<String, (u64, u64)>,
}

pub fn summarize_goose(m: &GooseMetrics) -> GooseSummary {
    let by_request: BTreeMap<String, (u64, u64)> = m
        .requests
        .iter()
        .map(|(name, r)| (name.clone(), (r.success_count as u64, r.fail_count as u64)))
        .collect();
    let requests = by_request.values().map(|(s, f)| s + f).sum();
    let failures = by_request.values().map(|(_, f)| f).sum();
    GooseSummary {
        requests,
        failures,
        duration_s: m.duration as u64,
        requests_per_s: if m.duration == 0 {
            0.0
        } else {
            requests as f64 / m.duration as f64
        },
        by_request,
    }
}

/// A load run's settings and the harness's own figures, as its report keeps them (`config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSettings {
    pub scenario: String,
    /// How goose generates load, for a reader of the report.
    pub generator: String,
    pub coordinated_omission: CoordinatedOmission,
    pub batch_size: usize,
    pub reject_rate: f64,
    pub queue_depth: usize,
    pub setup: SetupFigures,
    pub harness: HarnessFigures,
    pub goose_summary: GooseSummary,
    pub goose_thresholds: Vec<ThresholdResult>,
    /// Goose's own configuration, as goose writes it.
    pub goose: serde_json::Value,
    /// Consoles of the background fleet (`--fleet`).
    pub fleet: u64,
    /// The embedded reference server's poll interval (none with `--target`).
    pub poll_interval_s: Option<u32>,
    pub max_connections: usize,
}

/// How each latency view treats coordinated omission in a load run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatedOmission {
    /// Goose's `--co-mitigation`, as goose names it.
    pub goose_co_mitigation: Option<String>,
    pub service: String,
    pub response: String,
    pub lateness: String,
}

/// What the set-up prepared and what the attack used of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupFigures {
    pub seconds: f64,
    pub console_tickets: usize,
    pub console_tickets_used: usize,
    pub feeder_tickets: usize,
    pub feeder_tickets_used: usize,
    pub issue_accounts: usize,
    pub validity_hours: u32,
}

/// The harness's own work beside goose's users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessFigures {
    pub fed: u64,
    pub approved_by_harness: u64,
    pub decisions: u64,
    pub already_decided: u64,
    pub users_out_of_tickets: u64,
    pub background_stopped: Option<String>,
}

/// The settings of `run` (with `fleet` background consoles; `embedded`: against the
/// reference server started in process).
pub fn load_settings(run: &LoadRun, cfg: &LoadConfig, fleet: u64, embedded: bool) -> LoadSettings {
    let h = &run.harness;
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let mitigation = run
        .goose_config
        .get("co_mitigation")
        .and_then(|m| m.as_str());
    LoadSettings {
        scenario: cfg.scenario.as_str().to_owned(),
        generator: "goose 0.19: closed-loop users (each sends its next request when the last one answered)".into(),
        coordinated_omission: CoordinatedOmission {
            goose_co_mitigation: mitigation.map(str::to_owned),
            service: "as measured: from just before goose sent the request to the end of the answer's body".into(),
            response: "the service time, plus (with --co-mitigation other than disabled) HdrHistogram's expected-interval backfill: a request slower than its user's average scenario iteration (deliberate waits left out, after 3 iterations) adds the requests the user would have sent meanwhile, counted as synthetic samples per step in throughput".into(),
            lateness: "not measured: goose's users are a closed loop, with no intended send time".into(),
        },
        batch_size: cfg.batch_size,
        reject_rate: cfg.reject_rate,
        queue_depth: cfg.queue_depth,
        setup: SetupFigures {
            seconds: (run.setup_s * 1000.0).round() / 1000.0,
            console_tickets: run.setup.console_tickets,
            console_tickets_used: h.tickets.taken(),
            feeder_tickets: run.setup.feeder_tickets,
            feeder_tickets_used: run.feeder_tickets_used,
            issue_accounts: run.setup.issue_accounts,
            validity_hours: run.setup.validity_hours,
        },
        harness: HarnessFigures {
            fed: h.background.fed.load(relaxed),
            approved_by_harness: h.background.approved.load(relaxed),
            decisions: h.tally.decisions(),
            already_decided: h.tally.already_decided(),
            users_out_of_tickets: h.tally.tickets_exhausted(),
            background_stopped: run.background_stopped.clone(),
        },
        goose_summary: summarize_goose(&run.metrics),
        goose_thresholds: run.metrics.thresholds.clone(),
        goose: run.goose_config.clone(),
        fleet,
        poll_interval_s: embedded.then_some(cfg.poll_interval_s),
        max_connections: cfg.max_connections,
    }
}

/// `report.json` of a load run with its `settings`, and the histograms of its run folder.
pub fn build_report(
    run: &LoadRun,
    settings: &LoadSettings,
    seed: u64,
    target: &str,
) -> (RunReport, RunHistograms) {
    let h = &run.harness;
    let histograms = h.recorder.histograms();
    let aborted = run.thresholds_failed.iter().find(|t| t.aborted);
    let stopped_because = aborted
        .map(|t| {
            format!(
                "{} goose's --threshold {} failed (observed {}) and stopped the run",
                otpfleet_reports::STOPPED_BY_THRESHOLD,
                t.rule,
                t.observed
            )
        })
        .or_else(|| {
            run.interrupted
                .then(|| otpfleet_reports::INTERRUPTED.to_owned())
        });
    let duration_s = (run.elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    let run_of = RunOf {
        kind: RunKind::Load,
        seed,
        shard: ShardInfo::WHOLE,
        target: target.to_owned(),
        config: Settings::of(settings),
    };
    let measured = Measured {
        consoles: h.tally.consoles(),
        stopped_because,
        outcomes: h.tally.outcomes(),
        faults: Faults {
            slow_downs: h.tally.slow_downs(),
            ..Faults::default()
        },
        errors: h.tally.errors(),
        histograms: histograms.clone(),
        counts: Step::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), h.recorder.counts(s)))
            .collect(),
        measured_s: duration_s,
        over_time: h.recorder.points(),
        duration_s,
        ..Measured::default()
    };
    let mut report = RunReport::new(run_of, measured);
    report.thresholds = run.metrics.thresholds.iter().map(goose_verdict).collect();
    (report, histograms)
}

/// goose's verdict on one of its `--threshold` rules, as report.json holds a verdict: its value
/// in goose's unit (ms for a time, % for error-rate, req/s for rps).
fn goose_verdict(t: &ThresholdResult) -> otpfleet_reports::Verdict {
    // The rule without its limit: `p99` of `p99<2s`, `p99 for GET /a` of `p99<2s for GET /a`.
    let metric = t.rule.split(['<', '>']).next().unwrap_or_default().trim();
    let name = match t.rule.split_once(" for ") {
        Some((_, request)) => format!("{metric} for {}", request.trim()),
        None => metric.to_owned(),
    };
    let unit = if metric.contains("error-rate") {
        "%"
    } else if metric.contains("rps") {
        "req/s"
    } else {
        "ms"
    };
    otpfleet_reports::Verdict {
        threshold: t.rule.clone(),
        name,
        observed: t.value,
        unit: unit.to_owned(),
        passed: t.passed,
    }
}
