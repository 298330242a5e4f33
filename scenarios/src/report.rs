//! A load run as `report.json` (`RunKind::Load`), so it compares with any other run, and a
//! short summary of goose's own numbers.

use crate::run::{LoadConfig, LoadRun};
use goose::metrics::GooseMetrics;
use otpfleet_reports::{
    Faults, RunHistograms, RunKind, RunReport, SCHEMA_VERSION, ShardInfo, Step, Throughput,
    TimeToSignedIn, latency_of, summarize,
};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// The steps every report carries, measured or not (DESIGN.md section 5), so runs of
/// different scenarios line up in `otpfleet report compare`.
const ALWAYS: [&str; 6] = ["issue", "verify", "redeem", "poll", "approve", "sign_in"];

/// Goose's totals, from its metrics (which by default cover the run after every user started).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

/// `report.json` of a load run and the histograms of its run folder. `extra` joins the
/// report's `config` (the command line's own settings).
pub fn build_report(
    run: &LoadRun,
    cfg: &LoadConfig,
    target: &str,
    extra: serde_json::Value,
) -> (RunReport, RunHistograms) {
    let h = &run.harness;
    let histograms = h.recorder.histograms();
    let latency_us = latency_of(&histograms, &ALWAYS);
    let duration_s = (run.elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    let counts = Step::ALL
        .into_iter()
        .map(|s| (s.as_str().to_owned(), h.recorder.counts(s)))
        .collect();
    let throughput = Throughput::of(counts, duration_s);
    let time_to_signed_in_s = histograms
        .time_to_signed_in()
        .map(|hist| TimeToSignedIn::from_us(&summarize(hist)))
        .unwrap_or_default();
    let aborted = run.thresholds_failed.iter().find(|t| t.aborted);
    let stopped_because = aborted
        .map(|t| {
            format!(
                "goose's --threshold {} failed (observed {}) and stopped the run",
                t.rule, t.observed
            )
        })
        .or_else(|| {
            run.interrupted
                .then(|| otpfleet_reports::INTERRUPTED.to_owned())
        });
    let report = RunReport {
        schema_version: SCHEMA_VERSION,
        kind: RunKind::Load,
        otpfleet_version: env!("CARGO_PKG_VERSION").to_owned(),
        seed: cfg.seed,
        consoles: h.tally.consoles(),
        shard: ShardInfo::WHOLE,
        target: target.to_owned(),
        complete: stopped_because.is_none(),
        stopped_because,
        outcomes: h.tally.outcomes(),
        faults: Faults {
            slow_downs: h.tally.slow_downs(),
            ..Faults::default()
        },
        errors: h.tally.errors(),
        violations: Vec::new(),
        arrivals: Vec::new(),
        latency_us,
        throughput,
        over_time: h.recorder.points(),
        time_to_signed_in_s,
        duration_s,
        config: config_json(run, cfg, extra),
        timeline: Vec::new(),
        rehearsal: None,
        merged_from: Vec::new(),
        meta: None,
    };
    (report, histograms)
}

fn config_json(run: &LoadRun, cfg: &LoadConfig, extra: serde_json::Value) -> serde_json::Value {
    let h = &run.harness;
    let mitigation = run
        .goose_config
        .get("co_mitigation")
        .cloned()
        .unwrap_or_default();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let mut config = json!({
        "scenario": cfg.scenario.as_str(),
        "generator": "goose 0.19: closed-loop users (each sends its next request when the last one answered)",
        "coordinated_omission": {
            "goose_co_mitigation": mitigation,
            "service": "as measured: from just before goose sent the request to the end of the answer's body",
            "response": "the service time, plus (with --co-mitigation other than disabled) HdrHistogram's expected-interval backfill: a request slower than its user's average scenario iteration (deliberate waits left out, after 3 iterations) adds the requests the user would have sent meanwhile, counted as synthetic samples per step in throughput",
            "lateness": "not measured: goose's users are a closed loop, with no intended send time",
        },
        "batch_size": cfg.batch_size,
        "reject_rate": cfg.reject_rate,
        "queue_depth": cfg.queue_depth,
        "setup": {
            "seconds": (run.setup_s * 1000.0).round() / 1000.0,
            "console_tickets": run.setup.console_tickets,
            "console_tickets_used": h.tickets.taken(),
            "feeder_tickets": run.setup.feeder_tickets,
            "feeder_tickets_used": run.feeder_tickets_used,
            "issue_accounts": run.setup.issue_accounts,
            "validity_hours": run.setup.validity_hours,
        },
        "harness": {
            "fed": h.background.fed.load(relaxed),
            "approved_by_harness": h.background.approved.load(relaxed),
            "decisions": h.tally.decisions(),
            "already_decided": h.tally.already_decided(),
            "users_out_of_tickets": h.tally.tickets_exhausted(),
            "background_stopped": run.background_stopped,
        },
        "goose_summary": summarize_goose(&run.metrics),
        "goose_thresholds": run.metrics.thresholds,
        "goose": run.goose_config,
    });
    if let (Some(map), serde_json::Value::Object(more)) = (config.as_object_mut(), extra) {
        map.extend(more);
    }
    config
}
