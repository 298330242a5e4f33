//! `report.md`: a run's results as Markdown, fit for a pull-request comment.

use crate::report::{Outcome, RunReport};
use std::io;

pub fn write_markdown(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let shard = if r.shard.count > 1 {
        format!(", shard {}/{}", r.shard.index, r.shard.count)
    } else {
        String::new()
    };
    writeln!(out, "# otpfleet {:?} run\n", r.kind)?;
    writeln!(
        out,
        "{} consoles against {} (seed {}{shard}), {:.1} s.\n",
        r.consoles, r.target, r.seed, r.duration_s
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
    writeln!(
        out,
        "## Outcomes\n\n| outcome | consoles | share |\n| --- | ---: | ---: |"
    )?;
    for o in Outcome::ALL {
        let n = r.outcomes.get(o);
        writeln!(out, "| {} | {n} | {} |", o.as_str(), percent(n, r.consoles))?;
    }
    let t = &r.time_to_signed_in_s;
    writeln!(
        out,
        "\nTime to signed in (s): p50 {} | p90 {} | p99 {} | max {} (n = {})\n",
        t.p50, t.p90, t.p99, t.max, t.count
    )?;
    writeln!(out, "## Latency per step (µs, from intended send time)\n")?;
    writeln!(
        out,
        "| step | count | p50 | p90 | p99 | p99.9 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for (step, s) in &r.latency_us {
        writeln!(
            out,
            "| {step} | {} | {} | {} | {} | {} | {} |",
            s.count, s.p50, s.p90, s.p99, s.p999, s.max
        )?;
    }
    writeln!(
        out,
        "\nRaw view (µs, from actual send time: server and network alone):\n"
    )?;
    writeln!(
        out,
        "| step | count | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: |"
    )?;
    for (step, s) in &r.latency_raw_us {
        writeln!(
            out,
            "| {step} | {} | {} | {} | {} |",
            s.count, s.p50, s.p99, s.max
        )?;
    }
    let f = &r.faults;
    writeln!(out, "\n## Faults\n\n| fault | count |\n| --- | ---: |")?;
    for (name, n) in f.named() {
        writeln!(out, "| {name} | {n} |")?;
    }
    if !r.errors.is_empty() {
        writeln!(out, "\n## Errors\n\n| kind | count |\n| --- | ---: |")?;
        for (kind, n) in &r.errors {
            writeln!(out, "| {kind} | {n} |")?;
        }
    }
    Ok(())
}

fn percent(n: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{:.1}%", n as f64 * 100.0 / of as f64)
}
