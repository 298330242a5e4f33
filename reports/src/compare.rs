//! `otpfleet report compare`: the differences between a baseline run and a new one, as a
//! Markdown table fit for a pull-request comment, and the limits the new run exceeded.
//!
//! Works on any `RunReport` (fleet, rehearsal, load): it compares what both reports carry.
//! Only increases count as regressions; a limit is a largest allowed increase in percent.

use crate::histograms::Summary;
use crate::html::kind_name;
use crate::numbers::{change_pct, share, thousands};
use crate::report::{Outcome, RunReport, TimeToSignedIn};
use crate::run_histograms::flow_rank;
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::str::FromStr;

/// The name a limit uses for the whole flow, `time_to_signed_in_s` in the report.
pub const TIME_TO_SIGNED_IN: &str = "time_to_signed_in";
/// Most limits one comparison takes.
const MAX_LIMITS: usize = 256;

/// A statistic of a step that a limit can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Stat {
    pub const ALL: [Stat; 5] = [Stat::P50, Stat::P90, Stat::P99, Stat::P999, Stat::Max];

    pub fn as_str(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
        }
    }

    fn parse(text: &str) -> Option<Stat> {
        match text {
            "p99.9" => Some(Stat::P999),
            _ => Stat::ALL.into_iter().find(|s| s.as_str() == text),
        }
    }

    fn header(self) -> &'static str {
        match self {
            Stat::P999 => "p99.9",
            other => other.as_str(),
        }
    }
}

/// One limit: `STAT=N%` for every latency step, or `STEP.STAT=N%` for one step
/// (`time_to_signed_in.p99=5%` for the whole flow).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub step: Option<String>,
    pub stat: Stat,
    pub max_increase_pct: f64,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(step) = &self.step {
            write!(f, "{step}.")?;
        }
        write!(f, "{} +{}%", self.stat.as_str(), self.max_increase_pct)
    }
}

/// The limits of a comparison, e.g. parsed from `p99=10%,p50=20%,redeem.max=50%`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits(pub Vec<Limit>);

impl FromStr for Limits {
    type Err = String;

    fn from_str(text: &str) -> Result<Limits, String> {
        let mut limits = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            limits.push(parse_limit(item)?);
        }
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(format!(
                "{text:?}: give 1 to {MAX_LIMITS} limits like p99=10%,p50=20%"
            ));
        }
        Ok(Limits(limits))
    }
}

fn parse_limit(item: &str) -> Result<Limit, String> {
    let bad = |why: &str| {
        format!(
            "{item:?} is not a limit ({why}): write STAT=N% or STEP.STAT=N%, STAT one of p50, \
             p90, p99, p999, max (e.g. p99=10% or redeem.p50=20%)"
        )
    };
    let (key, value) = item.split_once('=').ok_or_else(|| bad("no ="))?;
    let key = key.trim();
    // Longest names first, so that `redeem.p99.9` is p99.9 of redeem.
    let (step, stat) = ["p99.9", "p999", "p50", "p90", "p99", "max"]
        .into_iter()
        .find_map(|name| {
            let stat = Stat::parse(name)?;
            if key == name {
                return Some((None, stat));
            }
            let step = key.strip_suffix(name)?.strip_suffix('.')?;
            (!step.is_empty()).then(|| (Some(step.to_owned()), stat))
        })
        .ok_or_else(|| bad("unknown statistic"))?;
    let number = value.trim().trim_end_matches('%').trim();
    let max_increase_pct: f64 = number.parse().map_err(|_| bad("not a number"))?;
    if !(0.0..=100_000.0).contains(&max_increase_pct) {
        return Err(bad("the percentage must be from 0 to 100000"));
    }
    Ok(Limit {
        step,
        stat,
        max_increase_pct,
    })
}

/// A limit the new run exceeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub step: String,
    pub stat: Stat,
    pub base: f64,
    pub new: f64,
    pub change_pct: f64,
    pub limit_pct: f64,
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:+.1}% (limit +{}%)",
            self.step,
            self.stat.as_str(),
            self.change_pct,
            self.limit_pct
        )
    }
}

/// A step's numbers as compared: its count and the five statistics (the whole flow has no
/// p99.9).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Stats {
    count: u64,
    values: [Option<f64>; 5],
}

impl Stats {
    fn from_summary(s: &Summary) -> Stats {
        let v = |x: u64| Some(x as f64);
        Stats {
            count: s.count,
            values: [v(s.p50), v(s.p90), v(s.p99), v(s.p999), v(s.max)],
        }
    }

    fn from_flow(t: &TimeToSignedIn) -> Stats {
        Stats {
            count: t.count,
            values: [Some(t.p50), Some(t.p90), Some(t.p99), None, Some(t.max)],
        }
    }

    fn get(&self, stat: Stat) -> Option<f64> {
        let i = Stat::ALL.iter().position(|s| *s == stat)?;
        self.values[i].filter(|_| self.count > 0)
    }
}

/// The result of comparing two runs.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    pub base: &'a RunReport,
    pub new: &'a RunReport,
    pub limits: &'a Limits,
    pub regressions: Vec<Regression>,
}

impl Comparison<'_> {
    /// True when the new run exceeded no limit.
    pub fn within_limits(&self) -> bool {
        self.regressions.is_empty()
    }
}

/// Compares `new` against `base` under `limits`. A limit naming a step neither report has is an
/// error (a typo would otherwise pass silently).
pub fn compare<'a>(
    base: &'a RunReport,
    new: &'a RunReport,
    limits: &'a Limits,
) -> Result<Comparison<'a>, String> {
    let steps = step_names(base, new);
    let mut regressions = Vec::new();
    for limit in &limits.0 {
        let targets: Vec<&str> = match &limit.step {
            None => steps.iter().map(String::as_str).collect(),
            Some(step) if step == TIME_TO_SIGNED_IN || steps.contains(step) => vec![step.as_str()],
            Some(step) => {
                return Err(format!(
                    "the limit {limit} names step {step:?}, which neither report has (steps: \
                     {}, {TIME_TO_SIGNED_IN})",
                    steps.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        };
        for step in targets {
            let (b, n) = (stats(base, step), stats(new, step));
            let (Some(bv), Some(nv)) = (b.get(limit.stat), n.get(limit.stat)) else {
                continue;
            };
            let Some(change) = change_pct(bv, nv) else {
                continue;
            };
            if change > limit.max_increase_pct {
                regressions.push(Regression {
                    step: step.to_owned(),
                    stat: limit.stat,
                    base: bv,
                    new: nv,
                    change_pct: change,
                    limit_pct: limit.max_increase_pct,
                });
            }
        }
    }
    regressions.sort_by(|a, b| (&a.step, a.stat.as_str()).cmp(&(&b.step, b.stat.as_str())));
    regressions.dedup_by(|a, b| a.step == b.step && a.stat == b.stat);
    Ok(Comparison {
        base,
        new,
        limits,
        regressions,
    })
}

fn step_names(base: &RunReport, new: &RunReport) -> BTreeSet<String> {
    base.latency_us
        .keys()
        .chain(new.latency_us.keys())
        .cloned()
        .collect()
}

fn stats(r: &RunReport, step: &str) -> Stats {
    if step == TIME_TO_SIGNED_IN {
        return Stats::from_flow(&r.time_to_signed_in_s);
    }
    r.latency_us
        .get(step)
        .map(Stats::from_summary)
        .unwrap_or_default()
}

/// Writes the comparison as Markdown: the verdict, then latency per step, the whole flow,
/// outcomes, faults and errors, each `base → new (change)`.
pub fn write_comparison(
    c: &Comparison<'_>,
    base_name: &str,
    new_name: &str,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let (base, new) = (c.base, c.new);
    writeln!(out, "## otpfleet compare\n")?;
    writeln!(out, "| | run | kind | seed | consoles | duration |")?;
    writeln!(out, "| --- | --- | --- | ---: | ---: | ---: |")?;
    for (label, name, r) in [("base", base_name, base), ("new", new_name, new)] {
        writeln!(
            out,
            "| {label} | `{}` | {} | {} | {} | {:.1} s |",
            name.replace('`', "'"),
            kind_name(r.kind),
            r.seed,
            thousands(r.consoles),
            r.duration_s
        )?;
    }
    writeln!(out)?;
    write_verdict(c, out)?;
    writeln!(
        out,
        "\n### Latency per step (µs, from the intended send time)\n"
    )?;
    write_step_table(c, &|r, step| stats(r, step), Table::Corrected, out)?;
    let raw = |r: &RunReport, step: &str| {
        r.latency_raw_us
            .get(step)
            .map(Stats::from_summary)
            .unwrap_or_default()
    };
    if !base.latency_raw_us.is_empty() || !new.latency_raw_us.is_empty() {
        writeln!(
            out,
            "\n<details><summary>Raw view (µs, from the actual send: server and network)</summary>\n"
        )?;
        write_step_table(c, &raw, Table::Raw, out)?;
        writeln!(out, "\n</details>")?;
    }
    writeln!(out, "\n### Time to signed in (s)\n")?;
    write_step_table(c, &|r, step| stats(r, step), Table::Flow, out)?;
    write_counts(c, out)
}

fn write_verdict(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    let limits: Vec<String> = c.limits.0.iter().map(Limit::to_string).collect();
    if c.limits.0.is_empty() {
        writeln!(
            out,
            "No limits given (`--max-regression p99=10%,...`): differences only."
        )?;
    } else if c.within_limits() {
        writeln!(out, "✅ Within every limit ({}).", limits.join(", "))?;
    } else {
        writeln!(
            out,
            "❌ **{} limit{} exceeded:** {}.",
            c.regressions.len(),
            if c.regressions.len() == 1 { "" } else { "s" },
            c.regressions
                .iter()
                .map(Regression::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )?;
    }
    if c.base.kind != c.new.kind {
        writeln!(
            out,
            "\nNote: the runs are of different kinds ({} and {}).",
            kind_name(c.base.kind),
            kind_name(c.new.kind)
        )?;
    }
    Ok(())
}

/// One row per step: `count`, then each statistic as `base → new (change)`, marked where a
/// limit was exceeded.
fn write_step_table(
    c: &Comparison<'_>,
    view: &dyn Fn(&RunReport, &str) -> Stats,
    table: Table,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let flow = table == Table::Flow;
    let stats_shown: Vec<Stat> = Stat::ALL
        .into_iter()
        .filter(|s| !(flow && *s == Stat::P999))
        .collect();
    let header: Vec<&str> = stats_shown.iter().map(|s| s.header()).collect();
    writeln!(out, "| step | count | {} |", header.join(" | "))?;
    writeln!(out, "| --- | ---: |{}", " ---: |".repeat(stats_shown.len()))?;
    let steps: Vec<String> = if flow {
        vec![TIME_TO_SIGNED_IN.to_owned()]
    } else {
        let mut steps: Vec<String> = step_names(c.base, c.new).into_iter().collect();
        steps.sort_by_key(|s| (flow_rank(s), s.clone()));
        steps
    };
    for step in steps {
        let (b, n) = (view(c.base, &step), view(c.new, &step));
        let mut cells = vec![format!("{} → {}", thousands(b.count), thousands(n.count))];
        for stat in &stats_shown {
            let failed = table != Table::Raw
                && c.regressions
                    .iter()
                    .any(|r| r.step == step && r.stat == *stat);
            cells.push(cell(b.get(*stat), n.get(*stat), flow, failed));
        }
        writeln!(out, "| {step} | {} |", cells.join(" | "))?;
    }
    Ok(())
}

/// The tables of a comparison: limits hold the corrected view and the whole flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Corrected,
    Raw,
    Flow,
}

fn cell(base: Option<f64>, new: Option<f64>, seconds: bool, failed: bool) -> String {
    let show = |v: Option<f64>| match v {
        None => "-".to_owned(),
        Some(v) if seconds => format!("{v:.3}"),
        Some(v) => thousands(v.round() as u64),
    };
    let change = match (base, new) {
        (Some(b), Some(n)) => change_pct(b, n).map(|c| format!(" ({c:+.1}%)")),
        _ => None,
    };
    let mark = if failed { " ❌" } else { "" };
    format!(
        "{} → {}{}{mark}",
        show(base),
        show(new),
        change.unwrap_or_default()
    )
}

fn write_counts(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    let (base, new) = (c.base, c.new);
    writeln!(
        out,
        "\n### Outcomes\n\n| outcome | base | new | change |\n| --- | ---: | ---: | ---: |"
    )?;
    for o in Outcome::ALL {
        let (b, n) = (base.outcomes.get(o), new.outcomes.get(o));
        writeln!(
            out,
            "| {} | {} ({}) | {} ({}) | {:+} |",
            o.as_str(),
            thousands(b),
            share(b, base.consoles),
            thousands(n),
            share(n, new.consoles),
            i128::from(n) - i128::from(b)
        )?;
    }
    let faults = |r: &RunReport| serde_json::to_value(r.faults).unwrap_or_default();
    let (bf, nf) = (faults(base), faults(new));
    let mut rows = Vec::new();
    if let Some(names) = bf.as_object() {
        for (name, b) in names {
            let (b, n) = (b.as_u64().unwrap_or(0), nf[name].as_u64().unwrap_or(0));
            if b != 0 || n != 0 {
                rows.push((name.clone(), b, n));
            }
        }
    }
    write_count_table("Faults", "fault", &rows, out)?;
    let kinds: BTreeSet<&String> = base.errors.keys().chain(new.errors.keys()).collect();
    let rows: Vec<(String, u64, u64)> = kinds
        .into_iter()
        .map(|k| {
            let get = |r: &RunReport| r.errors.get(k).copied().unwrap_or(0);
            (k.clone(), get(base), get(new))
        })
        .collect();
    write_count_table("Errors", "kind", &rows, out)
}

fn write_count_table(
    title: &str,
    what: &str,
    rows: &[(String, u64, u64)],
    out: &mut impl io::Write,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n### {title}\n\n| {what} | base | new | change |\n| --- | ---: | ---: | ---: |"
    )?;
    for (name, b, n) in rows {
        writeln!(
            out,
            "| {name} | {} | {} | {:+} |",
            thousands(*b),
            thousands(*n),
            i128::from(*n) - i128::from(*b)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_or_without_a_step_and_a_percent_sign() {
        let limits: Limits = "p99=10%, p50=20,redeem.max=50%,time_to_signed_in.p99.9=1%"
            .parse()
            .expect("limits");
        assert_eq!(limits.0.len(), 4);
        assert_eq!(limits.0[0].stat, Stat::P99);
        assert_eq!(limits.0[0].step, None);
        assert_eq!(limits.0[1].max_increase_pct, 20.0);
        assert_eq!(limits.0[2].step.as_deref(), Some("redeem"));
        assert_eq!(limits.0[3].stat, Stat::P999);
        assert_eq!(limits.0[3].step.as_deref(), Some("time_to_signed_in"));
        for bad in ["", "p98=10%", "p99", "p99=ten%", "p99=-5%"] {
            let err = bad.parse::<Limits>().expect_err(bad);
            assert!(err.contains("p99=10%"), "{bad}: {err}");
        }
    }
}
