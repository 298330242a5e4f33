//! What a gate can judge in a report, named the same way by `report compare --max-regression`
//! (relative limits) and `report check --threshold` (absolute limits): a latency statistic of
//! a step in one view, requests per second, the error rate, an outcome's share, or a
//! percentile of the time to sign-in.
//!
//! Names: `[STEP.][VIEW.]STAT` with VIEW one of `response`, `service`, `lateness` (default
//! `service`: the server's own time, which the generator's timer does not blur) and STAT one of
//! `p50`, `p90`, `p95`, `p99`, `p999` (or `p99.9`), `max` (a threshold takes any other
//! percentile too, `p75` or `p97.5`, read from the run's histograms: `Metric::Percentile`);
//! `[STEP.]rps`; `[STEP.]error-rate`; `outcomes.NAME` (or NAME alone in a comparison);
//! `time_to_signed_in.STAT`.

use crate::histograms::{Step, View};
use crate::report::{MIN_SAMPLES, Outcome, RunReport};
use crate::run_histograms::TIME_TO_SIGNED_IN;

/// The view a latency name without one judges.
pub const DEFAULT_VIEW: View = View::Service;

/// A percentile or the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
}

impl Stat {
    pub const ALL: [Stat; 6] = [
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
        }
    }

    pub fn parse(text: &str) -> Option<Stat> {
        match text {
            "p99.9" => Some(Stat::P999),
            _ => Stat::ALL.into_iter().find(|s| s.as_str() == text),
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Stat::P999 => "p99.9",
            other => other.as_str(),
        }
    }

    pub(crate) fn of(self, s: &crate::histograms::Summary) -> u64 {
        match self {
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P95 => s.p95,
            Stat::P99 => s.p99,
            Stat::P999 => s.p999,
            Stat::Max => s.max,
        }
    }
}

/// What a gate judges.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A latency statistic (µs) of one step, or of every step when `step` is `None`.
    Latency {
        step: Option<String>,
        view: View,
        stat: Stat,
    },
    /// Requests per second of one step or of the whole run.
    Rps { step: Option<String> },
    /// Errors per request, in percent, of one step or of the whole run.
    ErrorRate { step: Option<String> },
    /// An outcome's share of the consoles, in percent.
    Outcome(Outcome),
    /// A statistic of the time from arrival to sign-in, in seconds (no p99.9).
    TimeToSignedIn(Stat),
    /// Any other percentile of a step's latency (`p97.5`, `p75`), in µs: read from the run's
    /// histograms, which a threshold has and a comparison of two report.json files does not.
    Percentile {
        step: Option<String>,
        view: View,
        percent: f64,
    },
}

/// The accepted names, for error messages.
pub const NAMES: &str = "[STEP.][response.|service.|lateness.]p50|p90|p95|p99|p999|max (service \
    when no view is named; a threshold takes any other percentile too, such as p75 or p97.5), \
    [STEP.]rps, \
    [STEP.]error-rate, outcomes.NAME, time_to_signed_in.p50|p90|p99|max";

/// `p97.5` as a percentage (above 0, below 100), or none.
fn percent(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('p')?;
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !(all_digits(whole) && all_digits(fraction)) {
        return None;
    }
    digits.parse().ok().filter(|p| *p > 0.0 && *p < 100.0)
}

/// The latency statistic `last` names: one the report holds (`p99`, and `p99.0` written
/// otherwise), or any other percentile (`Err(97.5)`).
fn statistic(last: &str) -> Result<Result<Stat, f64>, String> {
    let held = |p: f64| {
        [
            (50.0, Stat::P50),
            (90.0, Stat::P90),
            (95.0, Stat::P95),
            (99.0, Stat::P99),
            (99.9, Stat::P999),
        ]
        .into_iter()
        .find_map(|(q, s)| (q == p).then_some(s))
    };
    match (Stat::parse(last), percent(last)) {
        (Some(stat), _) => Ok(Ok(stat)),
        (None, Some(p)) => Ok(held(p).ok_or(p)),
        (None, None) => Err(format!("unknown name {last:?}")),
    }
}

/// `name` as its head and its last part, a percentile such as `p97.5` keeping its dot; the
/// head may end with the dot before the last part.
fn split_last(name: &str) -> (&str, &str) {
    let last_two = name.rsplitn(3, '.').collect::<Vec<_>>();
    if let [fraction, whole, ..] = last_two[..]
        && percent(&format!("{whole}.{fraction}")).is_some()
    {
        let at = name.len() - whole.len() - 1 - fraction.len();
        return (&name[..at], &name[at..]);
    }
    match name.rsplit_once('.') {
        Some((h, l)) => (h, l),
        None => ("", name),
    }
}

impl Metric {
    /// Parses a name; `bare_outcomes` lets an outcome go without `outcomes.` (comparisons).
    pub fn parse(name: &str, bare_outcomes: bool) -> Result<Metric, String> {
        let name = name.trim();
        let outcome = |n: &str| Outcome::ALL.into_iter().find(|o| o.as_str() == n);
        if let Some(o) = name.strip_prefix("outcomes.").and_then(outcome) {
            return Ok(Metric::Outcome(o));
        }
        if let Some(o) = outcome(name).filter(|_| bare_outcomes) {
            return Ok(Metric::Outcome(o));
        }
        if let Some(rest) = name
            .strip_prefix(TIME_TO_SIGNED_IN)
            .and_then(|r| r.strip_prefix('.'))
        {
            return match Stat::parse(rest) {
                Some(Stat::P95 | Stat::P999) | None => Err(format!(
                    "time_to_signed_in takes p50, p90, p99 or max, not {rest:?}"
                )),
                Some(stat) => Ok(Metric::TimeToSignedIn(stat)),
            };
        }
        // The statistic is last; `p99.9` holds a dot of its own.
        let (head, last) = split_last(name);
        let head = head.strip_suffix('.').unwrap_or(head);
        let step = |text: &str| -> Result<Option<String>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            Step::parse(text)
                .map(|s| Some(s.as_str().to_owned()))
                .ok_or_else(|| {
                    let steps: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
                    format!("unknown step {text:?} (steps: {})", steps.join(", "))
                })
        };
        match last {
            "rps" => return Ok(Metric::Rps { step: step(head)? }),
            "error-rate" => return Ok(Metric::ErrorRate { step: step(head)? }),
            _ => {}
        }
        let stat = statistic(last)?;
        let (step_part, view) = match head.rsplit_once('.') {
            Some((s, v)) => (
                s,
                View::parse(v).ok_or_else(|| format!("unknown view {v:?}"))?,
            ),
            None => match View::parse(head) {
                Some(v) => ("", v),
                None => (head, DEFAULT_VIEW),
            },
        };
        let step = step(step_part)?;
        Ok(match stat {
            Ok(stat) => Metric::Latency { step, view, stat },
            Err(percent) => Metric::Percentile {
                step,
                view,
                percent,
            },
        })
    }

    /// [`Metric::value`], and a percentile no report holds read from `histograms` when given.
    pub fn value_in(
        &self,
        r: &RunReport,
        histograms: Option<&crate::RunHistograms>,
        step: Option<&str>,
    ) -> Option<(f64, u64)> {
        match self {
            Metric::Percentile { view, percent, .. } => {
                let h = histograms?.steps.get(step?)?.get(*view);
                Some((h.value_at_quantile(percent / 100.0) as f64, h.len()))
            }
            _ => self.value(r, step),
        }
    }

    /// The value this metric has in `r` for `step` (the one named, or one of every step), with
    /// the samples it rests on; `None` when the report does not have it.
    pub fn value(&self, r: &RunReport, step: Option<&str>) -> Option<(f64, u64)> {
        match self {
            Metric::Latency { view, stat, .. } => {
                let s = r.latency_us.get(step?)?.get(*view);
                Some((stat.of(s) as f64, s.count))
            }
            Metric::Rps { .. } => match step {
                Some(step) => {
                    let t = r.throughput.steps.get(step)?;
                    Some((t.rps, t.counts.requests))
                }
                None => Some((r.throughput.rps, r.throughput.requests)),
            },
            Metric::ErrorRate { .. } => match step {
                Some(step) => {
                    let t = r.throughput.steps.get(step)?;
                    Some((t.error_rate * 100.0, t.counts.requests))
                }
                None => Some((r.throughput.error_rate * 100.0, r.throughput.requests)),
            },
            Metric::Outcome(o) => {
                let share = if r.consoles == 0 {
                    0.0
                } else {
                    r.outcomes.get(*o) as f64 * 100.0 / r.consoles as f64
                };
                Some((share, r.consoles))
            }
            Metric::TimeToSignedIn(stat) => {
                let t = &r.time_to_signed_in_s;
                let v = match stat {
                    Stat::P50 => t.p50,
                    Stat::P90 => t.p90,
                    Stat::P99 => t.p99,
                    Stat::P95 | Stat::P999 | Stat::Max => t.max,
                };
                Some((v, t.count))
            }
            Metric::Percentile { .. } => None,
        }
    }

    /// The steps this metric is judged on in `r`: the one it names, or every step that has
    /// at least `min_samples` (a bare latency rule); `[None]` for run-wide metrics.
    pub fn targets(&self, r: &RunReport, min_samples: u64) -> Vec<Option<String>> {
        match self {
            Metric::Latency { step: Some(s), .. }
            | Metric::Percentile { step: Some(s), .. }
            | Metric::Rps { step: Some(s) }
            | Metric::ErrorRate { step: Some(s) } => vec![Some(s.clone())],
            Metric::Latency {
                step: None, view, ..
            }
            | Metric::Percentile {
                step: None, view, ..
            } => r
                .latency_us
                .iter()
                .filter(|(_, l)| l.get(*view).count >= min_samples.max(1))
                .map(|(s, _)| Some(s.clone()))
                .collect(),
            _ => vec![None],
        }
    }

    /// The unit of the metric's values: `µs`, `req/s`, `%` or `s`.
    pub fn unit(&self) -> &'static str {
        match self {
            Metric::Latency { .. } | Metric::Percentile { .. } => "µs",
            Metric::Rps { .. } => "req/s",
            Metric::ErrorRate { .. } | Metric::Outcome(_) => "%",
            Metric::TimeToSignedIn(_) => "s",
        }
    }

    /// The metric's name for `step`, as a person writes it: `redeem.service.p99`.
    pub fn name(&self, step: Option<&str>) -> String {
        let prefix = step.map(|s| format!("{s}.")).unwrap_or_default();
        match self {
            Metric::Latency { view, stat, .. } => {
                format!("{prefix}{}.{}", view.as_str(), stat.header())
            }
            Metric::Rps { .. } => format!("{prefix}rps"),
            Metric::ErrorRate { .. } => format!("{prefix}error-rate"),
            Metric::Outcome(o) => format!("outcomes.{}", o.as_str()),
            Metric::TimeToSignedIn(stat) => format!("{TIME_TO_SIGNED_IN}.{}", stat.header()),
            Metric::Percentile { view, percent, .. } => {
                format!("{prefix}{}.p{percent}", view.as_str())
            }
        }
    }
}

/// The default smallest number of samples for a step to be judged by a bare rule.
pub const DEFAULT_MIN_SAMPLES: u64 = MIN_SAMPLES;

/// Splits a comma-separated list, answering each item with its character position in `text`.
pub fn items(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for part in text.split(',') {
        let trimmed = part.trim_start();
        let pos = at + (part.len() - trimmed.len());
        if !trimmed.trim().is_empty() {
            out.push((pos, trimmed.trim_end()));
        }
        at += part.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(step: Option<&str>, view: View, stat: Stat) -> Metric {
        Metric::Latency {
            step: step.map(str::to_owned),
            view,
            stat,
        }
    }

    #[test]
    fn names_parse() {
        let ok = |n: &str| Metric::parse(n, true).expect(n);
        assert_eq!(ok("p99"), latency(None, View::Service, Stat::P99));
        assert_eq!(ok("response.p50"), latency(None, View::Response, Stat::P50));
        assert_eq!(
            ok("redeem.p99.9"),
            latency(Some("redeem"), View::Service, Stat::P999)
        );
        assert_eq!(
            ok("redeem.lateness.max"),
            latency(Some("redeem"), View::Lateness, Stat::Max)
        );
        assert_eq!(ok("rps"), Metric::Rps { step: None });
        assert_eq!(
            ok("poll.error-rate"),
            Metric::ErrorRate {
                step: Some("poll".into())
            }
        );
        assert_eq!(ok("outcomes.expired"), Metric::Outcome(Outcome::Expired));
        assert_eq!(ok("expired"), Metric::Outcome(Outcome::Expired));
        assert_eq!(
            ok("time_to_signed_in.p99"),
            Metric::TimeToSignedIn(Stat::P99)
        );
        assert_eq!(
            ok("redeem.service.p95"),
            latency(Some("redeem"), View::Service, Stat::P95)
        );
        for bad in [
            "p100",
            "time_to_signed_in.p95",
            "redeem.raw.p99",
            "redem.p99",
            "time_to_signed_in.p99.9",
            "",
        ] {
            assert!(Metric::parse(bad, true).is_err(), "{bad}");
        }
        assert!(Metric::parse("expired", false).is_err());
    }

    #[test]
    fn items_know_where_they_are() {
        assert_eq!(items("a, bc ,d"), vec![(0, "a"), (3, "bc"), (7, "d")]);
    }
}
