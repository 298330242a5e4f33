//! What a run prints when it ends, the same for `fleet`, `load` and `rehearse`: outcomes, the
//! requests with their service and response times side by side (each view named), the
//! generator's lateness in one line, time to sign-in, and the verdict of any `--threshold`.

use crate::{Ending, judged};
use otpfleet_reports::{
    DEFAULT_MIN_SAMPLES, Outcome, RunHistograms, RunKind, RunReport, Step, Threshold, check,
    numbers,
};
use otpfleet_scenarios::LoadSettings;
use std::fmt::Write as _;
use std::path::Path;

/// The summary of a finished run.
pub fn text(r: &RunReport, out: &Path) -> String {
    let mut s = String::new();
    let simulated = if r.kind == RunKind::Rehearsal {
        " of simulated time"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "\n{} consoles, seed {}, {}{simulated}\n",
        numbers::thousands(r.consoles),
        r.seed,
        numbers::seconds(r.duration_s)
    );
    write_violations(&mut s, r);
    s.push_str("outcome               consoles    share\n");
    for o in Outcome::ALL {
        let n = r.outcomes.get(o);
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>8}",
            o.as_str(),
            numbers::thousands(n),
            numbers::share(n, r.consoles)
        );
    }
    write_dropped(&mut s, r);
    if r.kind == RunKind::Rehearsal {
        s.push_str(
            "\nno request latencies: a rehearsal's requests take no time (simulated time, \
             in-process server)\n",
        );
    } else {
        requests(r, &mut s);
    }
    let t = &r.time_to_signed_in_s;
    if t.count > 0 {
        let _ = writeln!(
            s,
            "\ntime to signed in: p50 {}, p90 {}, p99 {}, max {}",
            numbers::seconds(t.p50),
            numbers::seconds(t.p90),
            numbers::seconds(t.p99),
            numbers::seconds(t.max)
        );
    } else {
        s.push_str("\nno console signed in\n");
    }
    if t.over_range > 0 {
        let _ = writeln!(
            s,
            "{} consoles took longer than the histograms hold (366 days): counted, not in the \
             percentiles",
            t.over_range
        );
    }
    if !r.errors.is_empty() {
        s.push_str("\nunexpected answers:\n");
        for (kind, n) in &r.errors {
            let _ = writeln!(s, "  {kind}: {n}");
        }
    }
    let _ = writeln!(s, "\nrun folder: {}", out.display());
    write_findings(&mut s, r);
    s
}

/// A rehearsal's findings, after its folder.
fn write_findings(s: &mut String, r: &RunReport) {
    let Some(f) = &r.rehearsal else { return };
    if !f.headline.is_empty() {
        s.push_str("answers:\n");
        for line in &f.headline {
            let _ = writeln!(s, "  - {line}");
        }
    }
    s.push_str("findings:\n");
    for line in &f.findings {
        let _ = writeln!(s, "  - {line}");
    }
    if let Some(suggestion) = &f.suggestion {
        let _ = writeln!(s, "  suggestion: {suggestion}");
    }
}

fn requests(r: &RunReport, s: &mut String) {
    let t = &r.throughput;
    let _ = writeln!(
        s,
        "\n{} requests in {}: {:.1} req/s, {} errors ({})\n",
        numbers::thousands(t.requests),
        numbers::seconds(t.measured_s),
        t.rps,
        numbers::thousands(t.errors),
        numbers::rate_pct(t.error_rate)
    );
    s.push_str(
        "                                      service time (µs)          response time (µs)\n",
    );
    s.push_str(
        "step            requests    req/s errors     p50     p90     p99     p50     p90     p99\n",
    );
    let mut late = Vec::new();
    let mut steps: Vec<_> = r
        .latency_us
        .iter()
        .filter(|(_, l)| l.service.count > 0)
        .collect();
    // In the order of a console's walk.
    steps.sort_by_key(|(name, _)| Step::parse(name).map_or(usize::MAX, |s| s as usize));
    for (step, l) in steps {
        let tp = r.throughput.steps.get(step);
        let _ = writeln!(
            s,
            "{step:<14} {:>9} {:>8.1} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            numbers::thousands(tp.map_or(0, |t| t.counts.requests)),
            tp.map_or(0.0, |t| t.rps),
            numbers::thousands(tp.map_or(0, |t| t.counts.error_count())),
            l.service.p50,
            l.service.p90,
            l.service.p99,
            l.response.p50,
            l.response.p90,
            l.response.p99
        );
        if l.lateness.count > 0 {
            late.push(format!("{step} {}/{}", l.lateness.p50, l.lateness.p99));
        }
    }
    if late.is_empty() {
        s.push_str("generator lateness: not measured (a closed loop sends at once)\n");
    } else {
        let _ = writeln!(
            s,
            "generator lateness, intended to actual send, p50/p99 µs: {}",
            late.join(" · ")
        );
    }
    if let Some(note) = r.generator_dominated() {
        // As loud as dropped consoles: the response figures are the generator's, not the
        // server's.
        let _ = writeln!(
            s,
            "WARNING: {note}; give the generator more CPU (--coarse-timers, fewer consoles in \
             flight, or shard the run over processes) to measure the server's response times"
        );
    }
}

/// A run's verdict, on stdout: the summary, then every `--threshold` as the report holds it
/// judged ([`judge`]); and how the run ended (`Ending::of_run`).
pub fn verdict(r: &RunReport, out: &Path, signal: Option<i32>) -> Ending {
    print!("{}", text(r, out));
    let breached = judged(&r.thresholds, Some("\nthresholds:"));
    Ending::of_run(r, signal, breached)
}

/// Judges `r` against `thresholds` into the report (before its folder is written, so
/// report.json and report.md hold every verdict), a percentile the report does not hold read
/// from the run's `histograms`.
pub fn judge(r: &mut RunReport, histograms: Option<&RunHistograms>, thresholds: &[Threshold]) {
    r.thresholds = check(r, histograms, thresholds, DEFAULT_MIN_SAMPLES);
}

/// A loud warning when consoles were dropped past `--max-in-flight` (k6's "Insufficient VUs").
fn write_dropped(s: &mut String, r: &RunReport) {
    if r.outcomes.dropped > 0 {
        let _ = writeln!(
            s,
            "\nWARNING: {} of {} consoles ({}) were dropped: they arrived while the run already had \
             its most consoles in flight (--max-in-flight), never started, and the server never \
             met the load the schedule asked for. Raise --max-in-flight or lower the arrival \
             rate; report.md's arrivals table shows when.",
            numbers::thousands(r.outcomes.dropped),
            numbers::thousands(r.consoles),
            numbers::share(r.outcomes.dropped, r.consoles)
        );
    }
}

/// The promises the server broke, first, if it broke any.
fn write_violations(s: &mut String, r: &RunReport) {
    if r.violations.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "BROKEN PROMISES: the server broke {} promise(s) of the contract",
        r.violations.len()
    );
    for v in &r.violations {
        let _ = writeln!(s, "  {}: {} ({})", v.kind, v.detail, v.serials.join(", "));
    }
    s.push('\n');
}

/// A load run's summary, printed after goose's own: ours (the same as a fleet's), then how
/// goose's count relates to ours, the harness's own work and the `background` fleet.
pub fn load_text(
    r: &RunReport,
    settings: &LoadSettings,
    background: Option<&RunReport>,
    out: &Path,
) -> String {
    let g = &settings.goose_summary;
    let mut s = format!(
        "\notpfleet load: scenario {}, seed {}",
        settings.scenario, r.seed,
    );
    s.push_str(&text(r, out));
    let ours = r.throughput.requests;
    s.push_str(&format!(
        "goose counted {} requests ({} failed, {:.0} req/s) over its {} s of metrics; otpfleet \
         counted {ours} over the whole {:.1} s run{}\n",
        g.requests,
        g.failures,
        g.requests_per_s,
        g.duration_s,
        r.duration_s,
        if g.requests == ours {
            String::new()
        } else {
            format!(
                ": the {} between them were sent before goose reset its metrics once every user \
                 had started (goose's --no-reset-metrics keeps them)",
                ours.abs_diff(g.requests)
            )
        }
    ));
    let synthetic: u64 = r
        .throughput
        .steps
        .values()
        .map(|t| t.counts.synthetic)
        .sum();
    let mitigation = settings
        .coordinated_omission
        .goose_co_mitigation
        .as_deref()
        .unwrap_or("disabled");
    s.push_str(&format!(
        "coordinated omission: goose --co-mitigation {mitigation}; the response view holds {synthetic} \
         synthetic samples besides the requests (requests per second count real requests only)\n"
    ));
    if r.consoles > 0 {
        s.push_str(&format!(
            "consoles that started and did not finish when the run ended are abandoned ({}); \
             those not yet due are not started ({})\n",
            r.outcomes.abandoned, r.outcomes.not_started
        ));
    }
    let harness = &settings.harness;
    s.push_str(&format!(
        "harness: fed {} requests, approved {}, admins decided {} ({} already decided)\n",
        harness.fed, harness.approved_by_harness, harness.decisions, harness.already_decided
    ));
    if let Some(fleet) = background {
        s.push_str(&format!(
            "background fleet: {} consoles, {} signed in; its report: {}\n",
            fleet.consoles,
            fleet.outcomes.signed_in_otp + fleet.outcomes.signed_in_manual,
            out.join("fleet").display()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpfleet_reports::{Measured, RunOf, Settings, ShardInfo, StepLatency, Summary};

    fn a_run(lateness_p50_us: u64) -> RunReport {
        let run = RunOf {
            kind: RunKind::Fleet,
            seed: 1,
            shard: ShardInfo::WHOLE,
            target: "in-process reference server".into(),
            config: Settings::of(&()),
        };
        let mut r = RunReport::new(run, Measured::default());
        let summary = |p50| Summary {
            count: 500,
            p50,
            p90: p50,
            p95: p50,
            p99: p50,
            p999: p50,
            max: p50,
        };
        let latency = StepLatency {
            service: summary(100),
            lateness: summary(lateness_p50_us),
            response: summary(100 + lateness_p50_us),
        };
        r.latency_us.insert("redeem".into(), latency);
        r
    }

    /// A run whose generator delayed requests as long as the server served them says so as
    /// loudly as dropped consoles, with what to change; one whose generator kept up does not.
    #[test]
    fn a_generator_bound_run_is_a_loud_warning() {
        let said = text(&a_run(150), Path::new("runs/x"));
        assert!(
            said.contains("WARNING: the generator, not the server, dominated")
                && said.contains("--coarse-timers"),
            "{said}"
        );
        let said = text(&a_run(10), Path::new("runs/x"));
        assert!(!said.contains("WARNING"), "{said}");
    }
}
