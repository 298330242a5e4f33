//! `otpfleet report compare`: the differences between a baseline run and a new one, as a
//! Markdown table fit for a pull-request comment (and JSON), and the limits the new run
//! exceeded.
//!
//! Limits (`--max-regression`, names in `gate.rs`): a latency statistic may rise by at most N%
//! (`p99=10%`, `redeem.response.p50=20%`; the service view when none is named), requests per
//! second may fall by at most N% (`rps=-10%`), an error rate or an outcome's share may rise by
//! at most N percentage points (`error-rate=+0.5pp`, `expired=+1pp`). Without limits the
//! defaults apply (`DEFAULT_LIMITS`). A step with fewer samples than the minimum in either run
//! is not gated, and the comparison says so.
//!
//! A latency rise smaller than its statistic's noise floor (`--noise-floor`, `NoiseFloors`) is
//! noise, whatever its percentage: on a shared machine a tail moves by a scheduler timeslice
//! between two runs of the same code. Each run's machine load (`RunMeta::machine`) is shown, and
//! a comparison of runs made under different loads says so.

use crate::gate::{Metric, NAMES, Stat, items};
use crate::histograms::{Summary, View};
use crate::html::kind_name;
use crate::numbers::{change_pct, micros, rate_pct, share, thousands};
use crate::report::{MachineLoad, Outcome, RunReport, TimeToSignedIn};
use crate::run_histograms::flow_rank;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::str::FromStr;

/// The limits a comparison applies when none are given: the server's own median and tail
/// (service view), and its errors. A server twice as slow fails them; run-to-run noise on a
/// shared machine (about ±15% at p50 on this project's CI machine) does not.
pub const DEFAULT_LIMITS: &str = "p50=25%,p99=50%,error-rate=+1pp";
/// Most limits one comparison takes.
const MAX_LIMITS: usize = 256;

/// The rises a comparison counts as noise when no floors are given, per latency statistic (on
/// every view). Measured on this project's 2-core machine, two runs of `fleet --seed 1` with two
/// busy loops running moved service p50 by at most 16 µs on steps of 1,000 samples or more, and
/// p99 by up to 3.9 ms (a request waiting out a busy loop's timeslice), while a redeem twice as
/// slow moves p50 by about 100 µs.
pub const DEFAULT_NOISE_FLOORS: &str = "p50=50us,p90=1ms,p95=2ms,p99=10ms,p99.9=20ms,max=50ms";

/// Per latency statistic (in `Stat::ALL`'s order), the rise in µs under which a change is noise.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseFloors([f64; Stat::ALL.len()]);

impl Default for NoiseFloors {
    fn default() -> Self {
        NoiseFloors::NONE
            .with(DEFAULT_NOISE_FLOORS)
            .expect("the default floors parse")
    }
}

impl NoiseFloors {
    /// No floor: every rise past its limit counts.
    pub const NONE: NoiseFloors = NoiseFloors([0.0; Stat::ALL.len()]);

    fn of(&self, stat: Stat) -> f64 {
        self.0[Self::index(stat)]
    }

    fn index(stat: Stat) -> usize {
        Stat::ALL.iter().position(|s| *s == stat).unwrap_or(0)
    }

    /// These floors with the ones `text` names (`p99=5ms,p50=20us`) set.
    fn with(mut self, text: &str) -> Result<NoiseFloors, String> {
        for (at, item) in items(text) {
            let bad = |why: &str| {
                format!(
                    "--noise-floor {text:?}: {item:?} {why} (at character {at}); write \
                     STAT=TIME for any of p50, p90, p95, p99, p99.9, max (e.g. p99=5ms,p50=20us), \
                     or none"
                )
            };
            let (key, value) = item.split_once('=').ok_or_else(|| bad("has no ="))?;
            let stat = Stat::parse(key.trim()).ok_or_else(|| bad("names no statistic"))?;
            let latency = Metric::Latency {
                step: None,
                view: View::Service,
                stat,
            };
            let us = crate::check::parse_value(&latency, value.trim()).map_err(|why| bad(&why))?;
            self.0[Self::index(stat)] = us.round();
        }
        Ok(self)
    }
}

impl fmt::Display for NoiseFloors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let floors: Vec<String> = Stat::ALL
            .iter()
            .map(|s| format!("{} {}", s.header(), micros(self.of(*s) as u64)))
            .collect();
        f.write_str(&floors.join(", "))
    }
}

/// `p99=5ms,p50=20us`: the named floors, the others at their defaults; `none` for no floor.
impl FromStr for NoiseFloors {
    type Err = String;

    fn from_str(text: &str) -> Result<NoiseFloors, String> {
        match text.trim() {
            "none" => Ok(NoiseFloors::NONE),
            _ => NoiseFloors::default().with(text),
        }
    }
}

/// How much a metric may move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowed {
    /// A rise of at most this many percent (latencies, times).
    RisePct(f64),
    /// A fall of at most this many percent (requests per second).
    FallPct(f64),
    /// A rise of at most this many percentage points (error rates, outcome shares).
    RisePoints(f64),
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::RisePct(n) => write!(f, "+{n}%"),
            Allowed::FallPct(n) => write!(f, "-{n}%"),
            Allowed::RisePoints(n) => write!(f, "+{n}pp"),
        }
    }
}

/// One limit, e.g. `redeem.p99=10%`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub metric: Metric,
    pub allowed: Allowed,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.metric.name(None), self.allowed)
    }
}

/// The limits of a comparison, e.g. parsed from `p99=10%,rps=-10%,expired=+1pp`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits(pub Vec<Limit>);

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS.parse().expect("the default limits parse")
    }
}

impl FromStr for Limits {
    type Err = String;

    fn from_str(text: &str) -> Result<Limits, String> {
        let limits = items(text)
            .into_iter()
            .map(|(at, item)| parse_limit(text, at, item))
            .collect::<Result<Vec<_>, _>>()?;
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(format!(
                "--max-regression {text:?}: give 1 to {MAX_LIMITS} limits like p99=10%,rps=-10%"
            ));
        }
        Ok(Limits(limits))
    }
}

fn parse_limit(text: &str, at: usize, item: &str) -> Result<Limit, String> {
    let bad = |pos: usize, why: &str| {
        format!(
            "--max-regression {text:?}: {item:?} is not a limit: {why} (at character {pos}); \
             write NAME=N% for a latency (a rise, e.g. p99=10% or redeem.response.p50=20%), \
             rps=-N% (a fall), error-rate=+Npp or OUTCOME=+Npp (percentage points); NAME one \
             of {NAMES}"
        )
    };
    let (key, value) = item.split_once('=').ok_or_else(|| bad(at, "no ="))?;
    let value_at = at + key.len() + 1;
    let metric = Metric::parse(key, true).map_err(|why| bad(at, &why))?;
    let value = value.trim();
    let number = |v: &str| -> Result<f64, String> {
        let n: f64 = v
            .parse()
            .map_err(|_| bad(value_at, &format!("{v:?} is not a number")))?;
        if !(0.0..=100_000.0).contains(&n) {
            return Err(bad(value_at, "the number must be from 0 to 100000"));
        }
        Ok(n)
    };
    let allowed = match &metric {
        Metric::Percentile { .. } => {
            return Err(bad(
                at,
                "a comparison reads report.json, which holds p50, p90, p95, p99, p99.9 and max \
                 (other percentiles are for a threshold, judged on the run's histograms)",
            ));
        }
        Metric::Latency { .. } | Metric::TimeToSignedIn(_) => {
            let v = value.strip_prefix('+').unwrap_or(value);
            Allowed::RisePct(number(v.strip_suffix('%').unwrap_or(v))?)
        }
        Metric::Rps { .. } => {
            let v = value.strip_prefix('-').unwrap_or(value);
            Allowed::FallPct(number(v.strip_suffix('%').unwrap_or(v))?)
        }
        Metric::ErrorRate { .. } | Metric::Outcome(_) => {
            let v = value.strip_prefix('+').unwrap_or(value);
            let v = v
                .strip_suffix("pp")
                .ok_or_else(|| bad(value_at, "a share moves in percentage points: write +0.5pp"))?;
            Allowed::RisePoints(number(v)?)
        }
    };
    Ok(Limit { metric, allowed })
}

/// A limit the new run exceeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// What moved, e.g. `redeem.service.p99`.
    pub name: String,
    pub base: f64,
    pub new: f64,
    pub change: String,
    pub limit: String,
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (limit {})", self.name, self.change, self.limit)
    }
}

/// A limit that was not applied to a step, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub why: String,
}

/// The result of comparing two runs.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    pub base: &'a RunReport,
    pub new: &'a RunReport,
    pub limits: &'a Limits,
    pub floors: &'a NoiseFloors,
    pub min_samples: u64,
    pub regressions: Vec<Regression>,
    pub skipped: Vec<Skipped>,
    /// Rises past their limit's percentage but under their statistic's noise floor.
    pub under_floor: Vec<Skipped>,
}

impl Comparison<'_> {
    /// True when the new run exceeded no limit.
    pub fn within_limits(&self) -> bool {
        self.regressions.is_empty()
    }
}

/// Compares `new` against `base` under `limits`, latency rises under `floors` being noise. Runs
/// of different kinds do not compare; a limit naming a step neither report has is an error (a
/// typo would otherwise pass silently).
pub fn compare<'a>(
    base: &'a RunReport,
    new: &'a RunReport,
    limits: &'a Limits,
    floors: &'a NoiseFloors,
    min_samples: u64,
) -> Result<Comparison<'a>, String> {
    if base.kind != new.kind {
        return Err(format!(
            "a {} run and a {} run measure different things: comparing them is meaningless \
             (compare runs of the same kind)",
            kind_name(base.kind),
            kind_name(new.kind)
        ));
    }
    let steps = step_names(base, new);
    let mut c = Comparison {
        base,
        new,
        limits,
        floors,
        min_samples,
        regressions: Vec::new(),
        skipped: Vec::new(),
        under_floor: Vec::new(),
    };
    for limit in &limits.0 {
        let mut targets: BTreeSet<Option<String>> = BTreeSet::new();
        targets.extend(limit.metric.targets(base, 1));
        targets.extend(limit.metric.targets(new, 1));
        for step in targets {
            if let Some(s) = &step {
                if !steps.contains(s) {
                    return Err(format!(
                        "the limit {limit} names step {s:?}, which neither report has (steps: {})",
                        steps.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            judge(&mut c, limit, step.as_deref());
        }
    }
    c.regressions.sort_by(|a, b| a.name.cmp(&b.name));
    c.regressions.dedup_by(|a, b| a.name == b.name);
    for list in [&mut c.skipped, &mut c.under_floor] {
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list.dedup_by(|a, b| a.name == b.name);
    }
    Ok(c)
}

fn judge(c: &mut Comparison<'_>, limit: &Limit, step: Option<&str>) {
    let name = limit.metric.name(step);
    let (Some((b, bn)), Some((n, nn))) = (
        limit.metric.value(c.base, step),
        limit.metric.value(c.new, step),
    ) else {
        return;
    };
    let fewest = bn.min(nn);
    if fewest < c.min_samples {
        c.skipped.push(Skipped {
            name,
            why: format!(
                "{} sample{} (fewer than {}): not gated",
                thousands(fewest),
                if fewest == 1 { "" } else { "s" },
                c.min_samples
            ),
        });
        return;
    }
    let exceeded = match limit.allowed {
        Allowed::RisePct(max) => change_pct(b, n)
            .filter(|ch| *ch > max)
            .map(|ch| format!("{ch:+.1}%")),
        Allowed::FallPct(max) => change_pct(b, n)
            .filter(|ch| -*ch > max)
            .map(|ch| format!("{ch:+.1}%")),
        Allowed::RisePoints(max) => Some(n - b)
            .filter(|pp| *pp > max)
            .map(|pp| format!("{pp:+.2}pp")),
    };
    if let (Some(change), Metric::Latency { stat, .. }) = (&exceeded, &limit.metric) {
        let floor = c.floors.of(*stat);
        if n - b < floor {
            c.under_floor.push(Skipped {
                name,
                why: format!(
                    "{change} ({} → {}), under the {} noise floor of {}",
                    micros(b as u64),
                    micros(n as u64),
                    stat.header(),
                    micros(floor as u64)
                ),
            });
            return;
        }
    }
    if let Some(change) = exceeded {
        c.regressions.push(Regression {
            name,
            base: b,
            new: n,
            change,
            limit: limit.allowed.to_string(),
        });
    }
}

fn step_names(base: &RunReport, new: &RunReport) -> BTreeSet<String> {
    base.latency_us
        .keys()
        .chain(new.latency_us.keys())
        .chain(base.throughput.steps.keys())
        .chain(new.throughput.steps.keys())
        .cloned()
        .collect()
}

/// The comparison as JSON, for a CI to read.
pub fn write_comparison_json(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    let limits: Vec<String> = c.limits.0.iter().map(Limit::to_string).collect();
    let json = serde_json::json!({
        "within_limits": c.within_limits(),
        "limits": limits,
        "noise_floors": c.floors.to_string(),
        "min_samples": c.min_samples,
        "regressions": c.regressions,
        "not_gated": c.skipped,
        "under_noise_floor": c.under_floor,
        "machine": { "base": machine(c.base), "new": machine(c.new) },
        "machine_note": machine_note(c),
    });
    serde_json::to_writer_pretty(&mut *out, &json).map_err(io::Error::other)?;
    writeln!(out)
}

/// Writes the comparison as Markdown: the verdict, then per step the service, response and
/// lateness views, requests and errors, the whole flow, outcomes, faults and errors, each
/// `base → new (change)`.
pub fn write_comparison(
    c: &Comparison<'_>,
    base_name: &str,
    new_name: &str,
    out: &mut impl io::Write,
) -> io::Result<()> {
    writeln!(out, "## otpfleet compare\n")?;
    writeln!(
        out,
        "| | run | kind | seed | consoles | duration | machine (others' CPU) |"
    )?;
    writeln!(out, "| --- | --- | --- | ---: | ---: | ---: | --- |")?;
    for (label, name, r) in [("base", base_name, c.base), ("new", new_name, c.new)] {
        let machine = match machine(r) {
            Some(m) => format!("{} CPUs, others {:.0}%", m.cpus, m.others_cpu_pct),
            None => "not recorded".to_owned(),
        };
        writeln!(
            out,
            "| {label} | `{}` | {} | {} | {} | {:.1} s | {machine} |",
            name.replace('`', "'"),
            kind_name(r.kind),
            r.seed,
            thousands(r.consoles),
            r.duration_s
        )?;
    }
    writeln!(out)?;
    write_verdict(c, out)?;
    for view in [View::Service, View::Response, View::Lateness] {
        let (open, close) = match view {
            View::Service => ("", ""),
            _ => ("<details><summary>", "</summary>"),
        };
        writeln!(
            out,
            "\n{open}### {} per step (µs){close}\n",
            capitalised(view.meaning())
        )?;
        write_step_table(c, view, out)?;
        if view != View::Service {
            writeln!(out, "\n</details>")?;
        }
    }
    write_requests(c, out)?;
    writeln!(out, "\n### Time to signed in (s)\n")?;
    write_flow(c, out)?;
    write_counts(c, out)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn write_verdict(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    let limits: Vec<String> = c.limits.0.iter().map(Limit::to_string).collect();
    if c.within_limits() {
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
    for (title, list) in [
        ("Under the noise floor", &c.under_floor),
        ("Not gated", &c.skipped),
    ] {
        if !list.is_empty() {
            let items: Vec<String> = list
                .iter()
                .map(|s| format!("{}: {}", s.name, s.why))
                .collect();
            writeln!(out, "\n{title}: {}.", items.join("; "))?;
        }
    }
    if let Some(note) = machine_note(c) {
        writeln!(out, "\n⚠️ {note}")?;
    }
    Ok(())
}

/// The machine a run was made on and its load, where recorded.
fn machine(r: &RunReport) -> Option<&MachineLoad> {
    r.meta.as_ref()?.machine.as_ref()
}

/// Other processes' CPU share (points) past which two runs' machines are said to differ.
const LOAD_DIFFERS_PTS: f64 = 20.0;

/// When the two runs were made under different machine loads, a sentence that says so and
/// what it may explain; `None` when they were alike or a load was not recorded.
pub fn machine_note(c: &Comparison<'_>) -> Option<String> {
    let (b, n) = (machine(c.base)?, machine(c.new)?);
    if (n.others_cpu_pct - b.others_cpu_pct).abs() < LOAD_DIFFERS_PTS {
        return None;
    }
    let (busier, quieter) = if n.others_cpu_pct > b.others_cpu_pct {
        (("new", n), ("base", b))
    } else {
        (("base", b), ("new", n))
    };
    Some(format!(
        "The machines differed: other processes used {:.0}% of the {} run's {} CPUs and {:.0}% \
         of the {} run's. A latency change, above all in the tail, may be the machine's load \
         rather than the code: compare runs made under the same load.",
        busier.1.others_cpu_pct, busier.0, busier.1.cpus, quieter.1.others_cpu_pct, quieter.0
    ))
}

/// One row per step: `count`, then each statistic as `base → new (change)`, marked where a
/// limit was exceeded.
fn write_step_table(c: &Comparison<'_>, view: View, out: &mut impl io::Write) -> io::Result<()> {
    let header: Vec<&str> = Stat::ALL.iter().map(|s| s.header()).collect();
    writeln!(out, "| step | count | {} |", header.join(" | "))?;
    writeln!(out, "| --- | ---: |{}", " ---: |".repeat(Stat::ALL.len()))?;
    let mut steps: Vec<String> = c
        .base
        .latency_us
        .keys()
        .chain(c.new.latency_us.keys())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    steps.sort_by_key(|s| (flow_rank(s), s.clone()));
    for step in steps {
        let get = |r: &RunReport| {
            r.latency_us
                .get(&step)
                .map(|l| *l.get(view))
                .unwrap_or_default()
        };
        let (b, n) = (get(c.base), get(c.new));
        let mut count = format!("{} → {}", thousands(b.count), thousands(n.count));
        if b.count.min(n.count) < c.min_samples && b.count.max(n.count) > 0 {
            count.push_str(&format!(" (n < {}: not gated)", c.min_samples));
        }
        let mut cells = vec![count];
        for stat in Stat::ALL {
            let name = format!("{step}.{}.{}", view.as_str(), stat.header());
            let failed = c.regressions.iter().any(|r| r.name == name);
            let value = |s: &Summary| (s.count > 0).then(|| stat.of(s) as f64);
            cells.push(cell(value(&b), value(&n), false, failed));
        }
        writeln!(out, "| {step} | {} |", cells.join(" | "))?;
    }
    Ok(())
}

fn write_requests(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "\n### Requests and errors\n\n| step | requests | req/s | error rate |\n\
         | --- | ---: | ---: | ---: |"
    )?;
    let (bt, nt) = (&c.base.throughput, &c.new.throughput);
    let mut steps: Vec<&String> = bt
        .steps
        .keys()
        .chain(nt.steps.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    steps.sort_by_key(|s| (flow_rank(s), *s));
    let marked = |name: &str| c.regressions.iter().any(|r| r.name == name);
    let mut row = |label: &str, b: (u64, f64, f64), n: (u64, f64, f64), prefix: &str| {
        writeln!(
            out,
            "| {label} | {} → {} | {} | {} → {}{} |",
            thousands(b.0),
            thousands(n.0),
            cell(Some(b.1), Some(n.1), false, marked(&format!("{prefix}rps"))),
            rate_pct(b.2),
            rate_pct(n.2),
            if marked(&format!("{prefix}error-rate")) {
                " ❌"
            } else {
                ""
            }
        )
    };
    for step in steps {
        let get = |t: &crate::report::Throughput| {
            t.steps
                .get(step)
                .map_or((0, 0.0, 0.0), |s| (s.counts.requests, s.rps, s.error_rate))
        };
        row(step, get(bt), get(nt), &format!("{step}."))?;
    }
    row(
        "**all**",
        (bt.requests, bt.rps, bt.error_rate),
        (nt.requests, nt.rps, nt.error_rate),
        "",
    )
}

fn write_flow(c: &Comparison<'_>, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "| count | p50 | p90 | p99 | max |\n| ---: | ---: | ---: | ---: | ---: |"
    )?;
    let values =
        |t: &TimeToSignedIn| [t.p50, t.p90, t.p99, t.max].map(|v| (t.count > 0).then_some(v));
    let (b, n) = (&c.base.time_to_signed_in_s, &c.new.time_to_signed_in_s);
    let mut cells = vec![format!("{} → {}", thousands(b.count), thousands(n.count))];
    for (stat, (bv, nv)) in [Stat::P50, Stat::P90, Stat::P99, Stat::Max]
        .into_iter()
        .zip(values(b).into_iter().zip(values(n)))
    {
        let name = format!("time_to_signed_in.{}", stat.header());
        let failed = c.regressions.iter().any(|r| r.name == name);
        cells.push(cell(bv, nv, true, failed));
    }
    writeln!(out, "| {} |", cells.join(" | "))
}

fn cell(base: Option<f64>, new: Option<f64>, seconds: bool, failed: bool) -> String {
    let show = |v: Option<f64>| match v {
        None => "-".to_owned(),
        Some(v) if seconds => format!("{v:.3}"),
        Some(v) if v.fract() != 0.0 && v < 100.0 => format!("{v:.1}"),
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
        let failed = c
            .regressions
            .iter()
            .any(|r| r.name == format!("outcomes.{}", o.as_str()));
        writeln!(
            out,
            "| {} | {} ({}) | {} ({}) | {:+}{} |",
            o.as_str(),
            thousands(b),
            share(b, base.consoles),
            thousands(n),
            share(n, new.consoles),
            i128::from(n) - i128::from(b),
            if failed { " ❌" } else { "" }
        )?;
    }
    let rows: Vec<(String, u64, u64)> = base
        .faults
        .named()
        .into_iter()
        .zip(new.faults.named())
        .filter(|((_, b), (_, n))| *b != 0 || *n != 0)
        .map(|((name, b), (_, n))| (name.to_owned(), b, n))
        .collect();
    write_count_table("Faults", "fault", &rows, out)?;
    let kinds: BTreeSet<&String> = base.errors.keys().chain(new.errors.keys()).collect();
    let rows: Vec<(String, u64, u64)> = kinds
        .into_iter()
        .map(|k| {
            let get = |r: &RunReport| r.errors.get(k).copied().unwrap_or(0);
            (k.clone(), get(base), get(new))
        })
        .collect();
    write_count_table("Unexpected answers", "kind", &rows, out)
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
    fn limits_parse_every_kind() {
        let limits: Limits =
            "p99=10%, p50=20,redeem.response.max=50%,rps=-10%,error-rate=+0.5pp,expired=+1pp"
                .parse()
                .expect("limits");
        assert_eq!(limits.0.len(), 6);
        assert_eq!(limits.0[1].allowed, Allowed::RisePct(20.0));
        assert_eq!(limits.0[3].allowed, Allowed::FallPct(10.0));
        assert_eq!(limits.0[4].allowed, Allowed::RisePoints(0.5));
        assert_eq!(limits.0[5].metric, Metric::Outcome(Outcome::Expired));
        assert_eq!(Limits::default().0.len(), 3);
    }

    #[test]
    fn bad_limits_name_the_item_and_its_place() {
        for (bad, at) in [
            ("p99=10%,p98=10%", 8),
            ("p99", 0),
            ("p99=ten%", 4),
            ("p99=-5%", 4),
            ("error-rate=+1%", 11),
        ] {
            let err = bad.parse::<Limits>().expect_err(bad);
            assert!(err.contains(&format!("at character {at}")), "{bad}: {err}");
        }
    }
}
