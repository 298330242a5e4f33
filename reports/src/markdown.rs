//! `report.md`: a run's results as Markdown, fit for a pull-request comment.

use crate::histograms::{Summary, View};
use crate::numbers::{micros, rate_pct, seconds, seconds_of, share, thousands};
use crate::report::{Outcome, RunKind, RunReport};
use crate::run_histograms::flow_rank;
use std::io;

pub fn write_markdown(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let shard = if r.shard.count > 1 {
        format!(", shard {}/{}", r.shard.index, r.shard.count)
    } else {
        String::new()
    };
    let simulated = if r.kind == RunKind::Rehearsal {
        " of simulated time"
    } else {
        ""
    };
    writeln!(out, "# otpfleet {} run\n", crate::html::kind_name(r.kind))?;
    writeln!(
        out,
        "{} consoles against {} (seed {}{shard}), {}{simulated}.\n",
        thousands(r.consoles),
        r.target,
        r.seed,
        seconds(r.duration_s)
    )?;
    if !r.merged_from.is_empty() {
        let shards: Vec<String> = r
            .merged_from
            .iter()
            .map(|m| format!("`{}` ({}/{})", m.dir, m.shard.index, m.shard.count))
            .collect();
        writeln!(out, "Merged from shards {}.\n", shards.join(", "))?;
    }
    if let Some(why) = &r.stopped_because {
        writeln!(out, "**Incomplete run:** {why}\n")?;
    }
    if let Some(note) = r.generator_dominated() {
        writeln!(out, "**Note:** {note}.\n")?;
    }
    // A broken promise comes before any figure; then a rehearsal's answers.
    write_violations(r, out)?;
    write_thresholds(r, out)?;
    write_rehearsal(r, out)?;
    write_outcomes(r, out)?;
    write_arrivals(r, out)?;
    if r.kind == RunKind::Rehearsal {
        writeln!(
            out,
            "No request latencies: a rehearsal runs in simulated time against the in-process \
             server, which answers at once. Measure latency with a fleet or load run.\n"
        )?;
    } else {
        write_requests(r, out)?;
        for view in View::ALL {
            write_view(r, view, out)?;
        }
    }
    writeln!(out, "## Faults\n\n| fault | count |\n| --- | ---: |")?;
    for (name, n) in r.faults.named() {
        writeln!(out, "| {name} | {} |", thousands(n))?;
    }
    if !r.errors.is_empty() {
        writeln!(
            out,
            "\n## Unexpected answers\n\n| kind | count |\n| --- | ---: |"
        )?;
        for (kind, n) in &r.errors {
            writeln!(out, "| {kind} | {} |", thousands(*n))?;
        }
    }
    Ok(())
}

fn write_rehearsal(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let Some(f) = &r.rehearsal else {
        return Ok(());
    };
    if !f.headline.is_empty() {
        writeln!(out, "## Answers\n")?;
        for line in &f.headline {
            writeln!(out, "- {line}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "## Findings\n")?;
    for line in &f.findings {
        writeln!(out, "- {line}")?;
    }
    if let Some(s) = &f.suggestion {
        writeln!(out, "\n**Suggestion:** {s}")?;
    }
    writeln!(out)?;
    if !f.waves.is_empty() {
        writeln!(
            out,
            "## Waves\n\nExpired OTPs count every visit's, as the findings do.\n\n\
             | wave | rooms | signed in | OTPs expired awaiting approval | OTPs expired, installer \
             late | rejected | second visits | stuck in verification | time to signed in p50 | p99 \
             |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for w in &f.waves {
            let o = &w.outcomes;
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                thousands(w.consoles),
                thousands(o.signed_in_otp + o.signed_in_manual),
                thousands(w.expired_awaiting_approval),
                thousands(w.expired_installer_late),
                thousands(o.rejected),
                thousands(w.second_visits),
                thousands(o.verification_failed),
                seconds_of(w.time_to_signed_in_s.count, w.time_to_signed_in_s.p50),
                seconds_of(w.time_to_signed_in_s.count, w.time_to_signed_in_s.p99)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The promises the server broke, if it broke any.
fn write_violations(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.violations.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "## Broken promises

The server broke {} promise(s) of the contract:

         | kind | consoles | what was seen |
| --- | --- | --- |",
        r.violations.len()
    )?;
    for v in &r.violations {
        writeln!(
            out,
            "| {} | {} | {} |",
            v.kind,
            v.serials.join(", "),
            v.detail
        )?;
    }
    writeln!(out)
}

/// Every `--threshold` judged, if the run had any.
fn write_thresholds(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.thresholds.is_empty() {
        return Ok(());
    }
    let breached = r.thresholds.iter().filter(|v| !v.passed).count();
    writeln!(
        out,
        "## Thresholds\n\n{} of {} breached.\n\n| threshold | judged | measured | verdict |\n| --- | --- | ---: | --- |",
        breached,
        r.thresholds.len()
    )?;
    for v in &r.thresholds {
        writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            v.threshold,
            v.name,
            v.measured(),
            v.mark()
        )?;
    }
    writeln!(out)
}

/// A fleet's arrivals, intended by the schedule vs started, in at most 20 rows (neighbouring
/// intervals added together).
fn write_arrivals(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.arrivals.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "## Arrivals\n\nConsoles the schedule meant to start, against those that started \
         (per second), and the launcher's largest lateness.\n\n\
         | from | to | intended /s | started /s | dropped | latest start |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let group = r.arrivals.len().div_ceil(20);
    for rows in r.arrivals.chunks(group) {
        let from = rows[0].start_s;
        let length: f64 = rows.iter().map(|p| p.length_s).sum();
        let per_s = |n: u64| format!("{:.1}", n as f64 / length.max(1e-9));
        let sum = |f: fn(&crate::ArrivalPoint) -> u64| rows.iter().map(f).sum::<u64>();
        let late = rows.iter().map(|p| p.late_ms_max).max().unwrap_or(0);
        writeln!(
            out,
            "| {from:.0} s | {:.0} s | {} | {} | {} | {late} ms |",
            from + length,
            per_s(sum(|p| p.intended)),
            per_s(sum(|p| p.started)),
            thousands(sum(|p| p.dropped)),
        )?;
    }
    writeln!(out)
}

fn write_outcomes(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "## Outcomes\n\n| outcome | in words | consoles | share |\n| --- | --- | ---: | ---: |"
    )?;
    for o in Outcome::ALL {
        let n = r.outcomes.get(o);
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            o.as_str(),
            o.in_words(),
            thousands(n),
            share(n, r.consoles)
        )?;
    }
    let t = &r.time_to_signed_in_s;
    if t.count == 0 {
        writeln!(out, "\nNo console signed in.\n")?;
    } else {
        writeln!(
            out,
            "\nTime to signed in ({} consoles): p50 {} · p90 {} · p99 {} · max {}\n",
            thousands(t.count),
            seconds(t.p50),
            seconds(t.p90),
            seconds(t.p99),
            seconds(t.max)
        )?;
    }
    if t.over_range > 0 {
        writeln!(
            out,
            "{} consoles took longer than the histograms hold (366 days): counted, not in the \
             percentiles.\n",
            thousands(t.over_range)
        )?;
    }
    Ok(())
}

fn write_requests(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let t = &r.throughput;
    writeln!(
        out,
        "## Requests\n\n{} requests in {}: {} req/s, {} errors ({}).\n",
        thousands(t.requests),
        seconds(t.measured_s),
        t.rps,
        thousands(t.errors),
        rate_pct(t.error_rate)
    )?;
    writeln!(
        out,
        "| step | requests | req/s | errors | error rate | refusals (4xx) | service p50 | \
         service p99 | response p50 | response p99 | lateness p99 |"
    )?;
    writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let mut steps: Vec<&String> = t.steps.keys().collect();
    steps.sort_by_key(|s| (flow_rank(s), *s));
    for step in steps {
        let s = &t.steps[step];
        let l = r.latency_us.get(step).copied().unwrap_or_default();
        let refusals: u64 = s.counts.refusals.values().sum();
        writeln!(
            out,
            "| {step} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            thousands(s.counts.requests),
            s.rps,
            thousands(s.counts.error_count()),
            rate_pct(s.error_rate),
            thousands(refusals),
            micros(l.service.p50),
            micros(l.service.p99),
            micros(l.response.p50),
            micros(l.response.p99),
            micros(l.lateness.p99)
        )?;
    }
    let synthetic: u64 = t.steps.values().map(|s| s.counts.synthetic).sum();
    if synthetic > 0 {
        writeln!(
            out,
            "\nThe response view also holds {} synthetic samples (coordinated-omission \
             correction of a closed loop); they are not requests.",
            thousands(synthetic)
        )?;
    }
    writeln!(out)
}

fn write_view(r: &RunReport, view: View, out: &mut impl io::Write) -> io::Result<()> {
    let title = match view {
        View::Response => "Response time (µs): from the intended send to the answer",
        View::Service => "Service time (µs): from the actual send to the answer",
        View::Lateness => "Generator lateness (µs): from the intended send to the actual send",
    };
    writeln!(
        out,
        "## {title}\n\n| step | count | p50 | p90 | p99 | p99.9 | max |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    let mut steps: Vec<(&String, &Summary)> = r
        .latency_us
        .iter()
        .map(|(step, l)| (step, l.get(view)))
        .collect();
    steps.sort_by_key(|(s, _)| (flow_rank(s), *s));
    for (step, s) in steps {
        let cells: Vec<String> = [s.p50, s.p90, s.p99, s.p999, s.max]
            .iter()
            .map(|v| thousands(*v))
            .collect();
        writeln!(
            out,
            "| {step} | {} | {} |",
            thousands(s.count),
            cells.join(" | ")
        )?;
    }
    writeln!(out)
}
