//! `report.html`: a run's results as one self-contained page (inline SVG charts drawn with
//! plotters, inline CSS; no script, font or image is fetched), so it opens anywhere, offline.
//!
//! Charts: latency by percentile (every step, then per step corrected against raw), time to
//! signed in as a distribution, the rollout timeline (rehearsals), outcomes and faults. Like the
//! other views it is a pure function of `report.json` and the histograms: the same run renders
//! the same bytes.

mod bars;
mod distribution;
mod over_time;
mod percentiles;
mod sweep;
mod theme;
mod timeline;

pub use sweep::write_sweep_html;

use crate::histograms::View;
use crate::numbers::{micros, rate_pct, seconds, seconds_of, share, thousands};
use crate::report::{MIN_SAMPLES, Outcome, RunKind, RunReport};
use crate::run_histograms::RunHistograms;
use bars::Bar;
use percentiles::Curve;
use std::io;

/// The page's content width in pixels; charts are drawn at this size and scale down with the
/// window.
const WIDTH: u32 = 1160;

/// Writes the page.
pub fn write_html(
    report: &RunReport,
    histograms: &RunHistograms,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let title = format!(
        "otpfleet {} run · seed {} · {} consoles",
        kind_of(report),
        report.seed,
        thousands(report.consoles)
    );
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    )?;
    write_header(report, out)?;
    write_violations(report, out)?;
    write_thresholds(report, out)?;
    write_cards(report, out)?;
    // A rehearsal answers questions: its findings come first.
    write_rehearsal(report, out)?;
    write_latency(report, histograms, out)?;
    write_over_time(report, out)?;
    write_arrivals(report, out)?;
    write_time_to_signed_in(report, histograms, out)?;
    write_timeline(report, out)?;
    write_counts(report, out)?;
    write_requests_table(report, out)?;
    write_latency_table(report, out)?;
    write_provenance(report, out)?;
    writeln!(out, "</main>\n</body>\n</html>")
}

fn kind_of(r: &RunReport) -> &'static str {
    kind_name(r.kind)
}

/// A run kind as `report.json` spells it.
pub(crate) fn kind_name(kind: crate::report::RunKind) -> &'static str {
    match kind {
        crate::report::RunKind::Fleet => "fleet",
        crate::report::RunKind::Rehearsal => "rehearsal",
        crate::report::RunKind::Load => "load",
    }
}

fn write_header(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let shard = if r.shard.count > 1 {
        format!(" · shard {}/{}", r.shard.index, r.shard.count)
    } else {
        String::new()
    };
    let merged = if r.merged_from.is_empty() {
        String::new()
    } else {
        format!(" · merged from {} shards", r.merged_from.len())
    };
    let simulated = if r.kind == RunKind::Rehearsal {
        " simulated"
    } else {
        ""
    };
    writeln!(
        out,
        "<header><h1>otpfleet {} run</h1>\n<p class=\"meta\">{} consoles · seed {}{shard}{merged} \
         · {}{simulated} · against {} · otpfleet {}</p></header>",
        kind_of(r),
        thousands(r.consoles),
        r.seed,
        seconds(r.duration_s),
        esc(&r.target),
        esc(&r.otpfleet_version)
    )?;
    if let Some(why) = &r.stopped_because {
        writeln!(
            out,
            "<p class=\"alert\"><strong>Incomplete run:</strong> {}. The figures cover what was \
             measured.</p>",
            esc(why)
        )?;
    }
    if let Some(note) = r.generator_dominated() {
        writeln!(
            out,
            "<p class=\"alert\"><strong>Generator-bound:</strong> {}.</p>",
            esc(&note.to_string())
        )?;
    }
    Ok(())
}

/// The promises the server broke, first of all, if it broke any.
fn write_violations(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.violations.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section>\n<h2>Broken promises</h2>\n<p class=\"alert\">The server broke {} \
         promise(s) of the contract.</p>\n<table>\n<tr><th>kind</th><th>consoles</th>\
         <th>what was seen</th></tr>",
        r.violations.len()
    )?;
    for v in &r.violations {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.kind),
            esc(&v.serials.join(", ")),
            esc(&v.detail)
        )?;
    }
    writeln!(out, "</table>\n</section>")
}

/// Every `--threshold` judged, if the run had any; a breached one is marked.
fn write_thresholds(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.thresholds.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section>\n<h2>Thresholds</h2>\n<table>\n<tr><th>threshold</th><th>judged</th>\
         <th>measured</th><th>verdict</th></tr>"
    )?;
    for v in &r.thresholds {
        let class = if v.passed { "" } else { " class=\"alert\"" };
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td{class}>{}</td></tr>",
            esc(&v.threshold),
            esc(&v.name),
            esc(&v.measured()),
            v.mark()
        )?;
    }
    writeln!(out, "</table>\n</section>")
}

/// The few numbers a reader looks for first.
fn write_cards(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(out, "<section class=\"cards\">")?;
    for (label, value, detail) in cards(r) {
        writeln!(
            out,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{value}\
             </div><div class=\"detail\">{detail}</div></div>"
        )?;
    }
    writeln!(out, "</section>")
}

/// The cards: label, value and a line of detail each.
fn cards(r: &RunReport) -> Vec<(String, String, String)> {
    let signed_in = r.outcomes.signed_in_otp + r.outcomes.signed_in_manual;
    let t = &r.time_to_signed_in_s;
    // A p99 means something from about a hundred values on (one batch issue does not count).
    let slowest = r
        .latency_us
        .iter()
        .filter(|(_, l)| l.service.count >= MIN_SAMPLES)
        .max_by_key(|(_, l)| l.service.p99);
    let errors: u64 = r.errors.values().sum();
    let mut cards = vec![
        (
            "signed in".to_owned(),
            share(signed_in, r.consoles),
            format!(
                "{} of {} consoles",
                thousands(signed_in),
                thousands(r.consoles)
            ),
        ),
        (
            "time to signed in, p50".to_owned(),
            if t.count > 0 {
                seconds(t.p50)
            } else {
                "-".into()
            },
            if t.count > 0 {
                format!("p90 {} · p99 {}", seconds(t.p90), seconds(t.p99))
            } else {
                "no console signed in".into()
            },
        ),
    ];
    if r.kind != RunKind::Rehearsal {
        let tp = &r.throughput;
        cards.push((
            "requests per second".to_owned(),
            format!("{:.1}", tp.rps),
            format!(
                "{} requests · {} errors ({})",
                thousands(tp.requests),
                thousands(tp.errors),
                rate_pct(tp.error_rate)
            ),
        ));
    }
    if let Some((step, l)) = slowest {
        cards.push((
            "slowest step, service p99".to_owned(),
            micros(l.service.p99),
            format!("{} · response p99 {}", esc(step), micros(l.response.p99)),
        ));
    }
    cards.push((
        "errors".to_owned(),
        thousands(errors),
        if errors == 0 {
            "no unexpected answers".into()
        } else {
            format!("{} kinds, see below", r.errors.len())
        },
    ));
    cards
}

fn write_latency(
    r: &RunReport,
    histograms: &RunHistograms,
    out: &mut impl io::Write,
) -> io::Result<()> {
    // A rehearsal's requests take no time (the in-process server answers at once in simulated
    // time): it has no latency to chart, and shows no empty panel for it.
    if r.kind == RunKind::Rehearsal {
        return Ok(());
    }
    writeln!(out, "<section>\n<h2>Latency by percentile</h2>")?;
    let steps = histograms.recorded_steps();
    if steps.is_empty() {
        return writeln!(
            out,
            "<p class=\"note\">No request latencies in this run folder (no <code>.hlog</code> \
             histogram logs).</p>\n</section>"
        );
    }
    writeln!(
        out,
        "<p class=\"note\">Each step's <strong>service time</strong> (from the actual send to \
         the answer: the server and the network), in µs. x: percentile on a 1/(1−p) scale, so \
         the tail gets its room; both axes logarithmic. {} requests in all.</p>",
        thousands(r.throughput.requests)
    )?;
    let curve = |step: &str, view: View| Some(Curve::of(step, histograms.view(step, view)?));
    // A single value makes no curve; such steps (an OTP batch issued once) are named instead.
    let (curves, single): (Vec<Curve>, Vec<Curve>) = steps
        .iter()
        .filter_map(|s| curve(s, View::Service))
        .partition(|c| c.count > 1);
    write_measured_once(&single, out)?;
    if curves.is_empty() {
        return writeln!(out, "</section>");
    }
    write_chart(percentiles::overview(&curves, (WIDTH, 400)), out)?;
    writeln!(
        out,
        "<h3>Per step: response time <span class=\"key solid\"></span> (from the intended \
         send) and service time <span class=\"key dashed\"></span> (from the actual send); the \
         gap is the generator's lateness</h3>"
    )?;
    let pairs: Vec<(Curve, Option<Curve>)> = curves
        .iter()
        .filter_map(|service| Some((curve(&service.name, View::Response)?, Some(service.clone()))))
        .collect();
    let columns = 4;
    let rows = pairs.len().div_ceil(columns) as u32;
    write_chart(
        percentiles::per_step(&pairs, columns, (WIDTH, 195 * rows)),
        out,
    )?;
    writeln!(out, "</section>")
}

/// Names the steps measured once (no curve to draw) with their one value.
fn write_measured_once(single: &[Curve], out: &mut impl io::Write) -> io::Result<()> {
    if single.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = single
        .iter()
        .map(|c| {
            let us = c.points.last().map_or(0, |p| p.1.round() as u64);
            format!("{} took {} µs", esc(&c.name), thousands(us))
        })
        .collect();
    writeln!(
        out,
        "<p class=\"note\">Measured once, so not drawn: {}.</p>",
        named.join("; ")
    )
}

fn write_over_time(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.over_time.is_empty() {
        return Ok(());
    }
    let length = r.over_time.first().map_or(0.0, |p| p.length_s);
    writeln!(
        out,
        "<section>\n<h2>Over time</h2>\n<p class=\"note\">Requests per second of each step, \
         interval by interval ({} each; from the interval logs).</p>",
        seconds(length)
    )?;
    write_chart(over_time::rates(&r.over_time, (WIDTH, 300)), out)?;
    writeln!(
        out,
        "<h3>p99 per interval: response time <span class=\"key solid\"></span> and service \
         time <span class=\"key dashed\"></span></h3>"
    )?;
    write_chart(over_time::percentiles(&r.over_time, (WIDTH, 320)), out)?;
    writeln!(out, "</section>")
}

/// A fleet's arrivals: the schedule against the launcher, which shows a generator that fell
/// behind (the open model's promise) and the consoles dropped past `--max-in-flight`.
fn write_arrivals(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.arrivals.is_empty() {
        return Ok(());
    }
    let sum = |pick: fn(&crate::ArrivalPoint) -> u64| r.arrivals.iter().map(pick).sum::<u64>();
    let late_ms = r.arrivals.iter().map(|p| p.late_ms_max).max().unwrap_or(0);
    writeln!(
        out,
        "<section>\n<h2>Arrivals</h2>\n<p class=\"note\">Consoles per second the schedule meant \
         to start <span class=\"key dashed\"></span> against those that started <span \
         class=\"key solid\"></span>: {} intended, {} started, {} dropped past \
         <code>--max-in-flight</code>; the launcher started a console at most {} after its \
         moment.</p>",
        thousands(sum(|p| p.intended)),
        thousands(sum(|p| p.started)),
        thousands(sum(|p| p.dropped)),
        seconds(late_ms as f64 / 1000.0)
    )?;
    write_chart(
        over_time::arrivals(&r.arrivals, &r.over_time, (WIDTH, 300)),
        out,
    )?;
    writeln!(out, "</section>")
}

fn write_time_to_signed_in(
    r: &RunReport,
    histograms: &RunHistograms,
    out: &mut impl io::Write,
) -> io::Result<()> {
    writeln!(out, "<section>\n<h2>Time to signed in</h2>")?;
    let t = &r.time_to_signed_in_s;
    match histograms.time_to_signed_in() {
        Some(h) => {
            writeln!(
                out,
                "<p class=\"note\">From a console's arrival to its sign-in, {} consoles: p50 {} · \
                 p90 {} · p99 {} · max {}.</p>",
                thousands(t.count),
                seconds(t.p50),
                seconds(t.p90),
                seconds(t.p99),
                seconds(t.max)
            )?;
            write_chart(distribution::time_to_signed_in(h, (WIDTH, 270)), out)?;
        }
        None => writeln!(
            out,
            "<p class=\"note\">No console signed in, or the run folder has no \
             <code>time_to_signed_in.hlog</code>.</p>"
        )?,
    }
    writeln!(out, "</section>")
}

fn write_timeline(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(out, "<section>\n<h2>Rollout timeline</h2>")?;
    if r.timeline.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">This {} run has no timeline: signed in, awaiting approval and \
             expired over time are recorded hour by hour by rehearsals \
             (<code>otpfleet rehearse</code>), which run a rollout plan in simulated time.</p>",
            kind_of(r)
        )?;
    } else {
        writeln!(
            out,
            "<p class=\"note\">At the end of every simulated hour: consoles signed in so far, \
             requests waiting for an admin, OTPs or requests expired so far, consoles still \
             verifying.</p>"
        )?;
        write_chart(timeline::timeline(&r.timeline, (WIDTH, 360)), out)?;
    }
    writeln!(out, "</section>")
}

fn write_counts(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let outcomes: Vec<Bar> = Outcome::ALL
        .iter()
        .map(|o| {
            let n = r.outcomes.get(*o);
            Bar {
                name: format!("{} ({})", o.in_words(), o.as_str()),
                count: n,
                color: theme::outcome_color(o.as_str()),
                label: format!("{} ({})", thousands(n), share(n, r.consoles)),
            }
        })
        .collect();
    let f = &r.faults;
    let faults: Vec<Bar> = f
        .named()
        .into_iter()
        .map(|(name, n)| Bar {
            name: name.to_owned(),
            count: n,
            color: theme::ORANGE,
            label: thousands(n),
        })
        .collect();
    let half = (WIDTH - 24) / 2;
    writeln!(out, "<section class=\"pair\">\n<div>\n<h2>Outcomes</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Every console ends in exactly one outcome.</p>"
    )?;
    write_chart(bars::bars(&outcomes, (half, 250)), out)?;
    writeln!(out, "</div>\n<div>\n<h2>Faults</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Faults the consoles met, counted per occurrence.</p>"
    )?;
    write_chart(bars::bars(&faults, (half, 250)), out)?;
    writeln!(out, "</div>\n</section>")?;
    if !r.errors.is_empty() {
        writeln!(
            out,
            "<section>\n<h2>Errors</h2>\n<table>\n<tr><th>kind</th><th>count</th></tr>"
        )?;
        for (kind, n) in &r.errors {
            writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(kind),
                thousands(*n)
            )?;
        }
        writeln!(out, "</table>\n</section>")?;
    }
    Ok(())
}

fn write_requests_table(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let t = &r.throughput;
    if t.steps.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<section>\n<h2>Requests</h2>\n<p class=\"note\">{} requests in {}: {:.1} per second. \
         Errors are 5xx answers and requests without an answer; refusals are 4xx answers the \
         contract makes (a mistyped OTP, a request already decided).</p>\n<table>\n<tr>\
         <th>step</th><th class=\"n\">requests</th><th class=\"n\">req/s</th>\
         <th class=\"n\">errors</th><th class=\"n\">error rate</th>\
         <th class=\"n\">refusals</th><th>by kind</th></tr>",
        thousands(t.requests),
        seconds(t.measured_s),
        t.rps
    )?;
    let mut steps: Vec<&String> = t.steps.keys().collect();
    steps.sort_by_key(|s| (crate::run_histograms::flow_rank(s), *s));
    for step in steps {
        let s = &t.steps[step];
        let kinds: Vec<String> = s
            .counts
            .errors
            .iter()
            .chain(&s.counts.refusals)
            .map(|(k, n)| format!("{} {}", esc(k), thousands(*n)))
            .collect();
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td></tr>",
            esc(step),
            thousands(s.counts.requests),
            s.rps,
            thousands(s.counts.error_count()),
            rate_pct(s.error_rate),
            thousands(s.counts.refusals.values().sum()),
            kinds.join(", ")
        )?;
    }
    writeln!(out, "</table>\n</section>")
}

fn write_latency_table(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    if r.kind == RunKind::Rehearsal {
        return Ok(());
    }
    writeln!(
        out,
        "<section>\n<h2>Latency per step (µs)</h2>\n<p class=\"note\">Response time: from the \
         intended send to the answer. Service time: from the actual send to the answer. \
         Lateness: from the intended send to the actual send (the generator).</p>\n<table>\n\
         <tr><th>step</th><th>view</th><th class=\"n\">count</th><th class=\"n\">p50</th>\
         <th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th>\
         <th class=\"n\">max</th></tr>"
    )?;
    let mut steps: Vec<&String> = r.latency_us.keys().collect();
    steps.sort_by_key(|name| (crate::run_histograms::flow_rank(name), *name));
    for step in steps {
        for view in View::ALL {
            let s = r.latency_us[step].get(view);
            let cells: Vec<String> = [s.count, s.p50, s.p90, s.p99, s.p999, s.max]
                .into_iter()
                .map(|v| format!("<td class=\"n\">{}</td>", thousands(v)))
                .collect();
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td>{}</tr>",
                if view == View::Response {
                    esc(step)
                } else {
                    String::new()
                },
                view.as_str(),
                cells.concat()
            )?;
        }
    }
    writeln!(out, "</table>\n</section>")
}

fn write_rehearsal(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    let Some(findings) = &r.rehearsal else {
        return Ok(());
    };
    if !findings.headline.is_empty() {
        writeln!(out, "<section>\n<h2>Answers</h2>\n<ul class=\"answers\">")?;
        for line in &findings.headline {
            writeln!(out, "<li>{}</li>", esc(line))?;
        }
        writeln!(out, "</ul>\n</section>")?;
    }
    writeln!(out, "<section>\n<h2>Findings</h2>\n<ul>")?;
    for f in &findings.findings {
        writeln!(out, "<li>{}</li>", esc(f))?;
    }
    writeln!(out, "</ul>")?;
    if let Some(s) = &findings.suggestion {
        writeln!(out, "<p><strong>Suggestion:</strong> {}</p>", esc(s))?;
    }
    if !findings.waves.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">Expired OTPs count every visit's, as the findings do.</p>\n\
             <table>\n<tr><th>wave</th><th class=\"n\">rooms</th>\
             <th class=\"n\">signed in</th><th class=\"n\">OTPs expired awaiting approval</th>\
             <th class=\"n\">OTPs expired, installer late</th><th class=\"n\">rejected</th>\
             <th class=\"n\">second visits</th>\
             <th class=\"n\">time to signed in p50</th><th class=\"n\">p99</th></tr>"
        )?;
        for w in &findings.waves {
            writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&w.name),
                thousands(w.consoles),
                thousands(w.outcomes.signed_in_otp + w.outcomes.signed_in_manual),
                thousands(w.expired_awaiting_approval),
                thousands(w.expired_installer_late),
                thousands(w.outcomes.rejected),
                thousands(w.second_visits),
                seconds_of(w.time_to_signed_in_s.count, w.time_to_signed_in_s.p50),
                seconds_of(w.time_to_signed_in_s.count, w.time_to_signed_in_s.p99)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</section>")
}

fn write_provenance(r: &RunReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(out, "<footer>")?;
    if !r.merged_from.is_empty() {
        let shards: Vec<String> = r
            .merged_from
            .iter()
            .map(|m| {
                format!(
                    "<code>{}</code> (shard {}/{}, seed {})",
                    esc(&m.dir),
                    m.shard.index,
                    m.shard.count,
                    m.seed
                )
            })
            .collect();
        writeln!(out, "<p>Merged from {}.</p>", shards.join(", "))?;
    }
    writeln!(
        out,
        "<p>Written by otpfleet {} from <code>report.json</code> and the step histograms \
         (<code>*.hlog</code>, HdrHistogram interval logs in µs); rebuild it with \
         <code>otpfleet report render DIR</code>.</p>\n</footer>",
        esc(&r.otpfleet_version)
    )
}

fn write_chart(chart: theme::ChartResult, out: &mut impl io::Write) -> io::Result<()> {
    match chart {
        Ok(svg) => writeln!(out, "<figure>{svg}</figure>"),
        Err(e) => writeln!(
            out,
            "<p class=\"alert\">This chart could not be drawn: {}</p>",
            esc(&e.to_string())
        ),
    }
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet of report.html (also the live dashboard's, so the two look alike).
pub const CSS: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#333;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}
main{max-width:1208px;margin:0 auto;padding:20px 24px 32px}
header h1{margin:0 0 2px;font-size:26px}
.meta{margin:0 0 14px;color:#666}
h2{font-size:19px;margin:0 0 4px}
h3{font-size:15px;font-weight:600;margin:14px 0 4px}
section{background:#fff;border:1px solid #e1e3e8;border-radius:8px;padding:14px 16px;margin:0 0 14px}
.note{margin:0 0 8px;color:#666;font-size:14px}
figure{margin:0}
figure svg{display:block;max-width:100%;height:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;background:none;border:0;padding:0}
.card{background:#fff;border:1px solid #e1e3e8;border-radius:8px;padding:10px 14px}
.card .label{color:#666;font-size:13px}
.card .value{font-size:26px;font-weight:600}
.card .detail{color:#666;font-size:13px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:24px}
.alert{background:#fdecea;border:1px solid #f5c2bd;border-radius:6px;padding:8px 12px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid #eceef1;text-align:left}
th{color:#666;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.key{display:inline-block;width:26px;height:0;vertical-align:middle;border-top:2px solid #4e79a7}
.key.dashed{border-top:2px dashed #777}
footer{color:#777;font-size:13px}
footer p{margin:4px 0}
code{font-size:13px}
";
