//! `otpfleet report check` (and `fleet`/`rehearse`/`load --threshold`): one run judged against
//! absolute limits, in goose's threshold syntax extended to otpfleet's names:
//! `redeem.service.p99<5ms`, `p99<20ms` (every step with enough samples), `error-rate<0.1%`,
//! `outcomes.expired<1%`, `rps>1000`, `time_to_signed_in.p99<30s`.
//!
//! A time without a unit is in milliseconds, as in goose; units `us` (or `µs`), `ms`, `s`,
//! `min`, `h`. Rates and shares take an optional `%`.

use crate::gate::{Metric, NAMES};
use crate::report::RunReport;
use std::fmt;
use std::str::FromStr;

/// How a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Op {
    fn passes(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Less => observed < limit,
            Op::LessOrEqual => observed <= limit,
            Op::Greater => observed > limit,
            Op::GreaterOrEqual => observed >= limit,
        }
    }
}

/// One absolute limit, e.g. `redeem.service.p99<5ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit (µs, req/s, %, s).
    pub limit: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Threshold, String> {
        let bad = |at: usize, why: &str| {
            format!(
                "--threshold {text:?}: {why} (at character {at}); write NAME<VALUE, NAME<=VALUE, \
                 NAME>VALUE or NAME>=VALUE, NAME one of {NAMES}, e.g. redeem.service.p99<5ms, \
                 error-rate<0.1%, outcomes.expired<1%, rps>1000"
            )
        };
        let at = text
            .find(['<', '>'])
            .ok_or_else(|| bad(0, "no comparison (<, <=, > or >=)"))?;
        let rest = &text[at..];
        let (op, len) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::LessOrEqual, 2),
            [b'>', b'=', ..] => (Op::GreaterOrEqual, 2),
            [b'<', ..] => (Op::Less, 1),
            _ => (Op::Greater, 1),
        };
        let value_at = at + len;
        let value = text[value_at..].trim();
        if value.starts_with(['<', '>', '=']) {
            return Err(bad(value_at, "one comparison only"));
        }
        let metric = Metric::parse(&text[..at], false).map_err(|why| bad(0, &why))?;
        let limit = parse_value(&metric, value).map_err(|why| bad(value_at, &why))?;
        Ok(Threshold {
            text: text.trim().to_owned(),
            metric,
            op,
            limit,
        })
    }
}

/// A value in the metric's unit.
pub(crate) fn parse_value(metric: &Metric, value: &str) -> Result<f64, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    let unit = unit.trim();
    let seconds_per = |unit: &str| -> Result<f64, String> {
        Ok(match unit {
            "us" | "µs" => 1e-6,
            "" | "ms" => 1e-3,
            "s" => 1.0,
            "min" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} (us, ms, s, min, h)")),
        })
    };
    match metric {
        Metric::Latency { .. } | Metric::Percentile { .. } => Ok(n * seconds_per(unit)? * 1e6),
        Metric::TimeToSignedIn(_) => Ok(n * seconds_per(unit)?),
        Metric::Rps { .. } if unit.is_empty() || unit == "/s" => Ok(n),
        Metric::ErrorRate { .. } | Metric::Outcome(_) if unit.is_empty() || unit == "%" => {
            if n > 100.0 {
                return Err(format!("{value:?}: a share is at most 100%"));
            }
            Ok(n)
        }
        _ => Err(format!("unknown unit {unit:?}")),
    }
}

pub use crate::report::Verdict;

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.observed {
            Some(_) => write!(
                f,
                "{}: {} is {} ({})",
                self.mark(),
                self.name,
                self.measured(),
                self.threshold
            ),
            None => write!(
                f,
                "{}: {} has no samples ({})",
                self.mark(),
                self.name,
                self.threshold
            ),
        }
    }
}

/// Judges `r` against every threshold, a percentile the report does not hold (`p97.5`) read
/// from the run's `histograms`. A bare latency rule (`p99<5ms`) judges every step with at least
/// `min_samples` samples; a rule naming a step judges it whatever its count, and fails when it
/// has none (a rule that cannot be judged must not pass silently).
pub fn check(
    r: &RunReport,
    histograms: Option<&crate::RunHistograms>,
    thresholds: &[Threshold],
    min_samples: u64,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for t in thresholds {
        for step in t.metric.targets(r, min_samples) {
            let observed = t
                .metric
                .value_in(r, histograms, step.as_deref())
                .filter(|(_, samples)| *samples > 0)
                .map(|(v, _)| v);
            verdicts.push(Verdict {
                threshold: t.text.clone(),
                name: t.metric.name(step.as_deref()),
                observed,
                unit: t.metric.unit().to_owned(),
                passed: observed.is_some_and(|v| t.op.passes(v, t.limit)),
            });
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Stat;
    use crate::histograms::View;

    #[test]
    fn thresholds_parse_with_units() {
        let t: Threshold = "redeem.service.p99<5ms".parse().expect("parse");
        assert_eq!(t.op, Op::Less);
        assert_eq!(t.limit, 5000.0);
        assert_eq!(
            t.metric,
            Metric::Latency {
                step: Some("redeem".into()),
                view: View::Service,
                stat: Stat::P99
            }
        );
        let ms = |s: &str| s.parse::<Threshold>().expect(s).limit;
        assert_eq!(ms("p50<=250us"), 250.0);
        assert_eq!(ms("p50<2"), 2000.0, "milliseconds without a unit, as goose");
        assert_eq!(ms("error-rate<0.1%"), 0.1);
        assert_eq!(ms("rps>=1000"), 1000.0);
        assert_eq!(ms("time_to_signed_in.p99<2min"), 120.0);
        assert_eq!(ms("outcomes.expired<1%"), 1.0);
    }

    #[test]
    fn any_percentile_is_a_threshold_read_from_the_histograms() {
        let t: Threshold = "redeem.service.p97.5<5ms".parse().expect("parse");
        assert_eq!(
            t.metric,
            Metric::Percentile {
                step: Some("redeem".into()),
                view: View::Service,
                percent: 97.5
            }
        );
        assert_eq!(t.metric.name(Some("redeem")), "redeem.service.p97.5");
        let bare: Threshold = "response.p75<1ms".parse().expect("parse");
        assert_eq!(bare.metric.name(Some("poll")), "poll.response.p75");
        assert!("p99.9<1ms".parse::<Threshold>().is_ok_and(|t| matches!(
            t.metric,
            Metric::Latency {
                stat: Stat::P999,
                ..
            }
        )));
        // A percentile the report holds, written otherwise, is that statistic (compare takes it).
        let held: Threshold = "redeem.p99.0<1ms".parse().expect("parse");
        assert!(
            matches!(
                held.metric,
                Metric::Latency {
                    stat: Stat::P99,
                    ..
                }
            ),
            "{held:?}"
        );
        for bad in [
            "p100<1ms",
            "p0<1ms",
            "p9x<1ms",
            "p97.<1ms",
            "redeem.p.5<1ms",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
        let mut histograms = crate::RunHistograms::default();
        let mut views = crate::ViewHistograms::default();
        for us in 1..=1000 {
            views.service.record(us).expect("record");
        }
        histograms.steps.insert("redeem".into(), views);
        let run = crate::report::RunOf {
            kind: crate::RunKind::Fleet,
            seed: 1,
            shard: crate::ShardInfo::WHOLE,
            target: "nowhere".into(),
            config: crate::Settings::of(&()),
        };
        let report = RunReport::new(run, crate::report::Measured::default());
        let judged = |h| check(&report, h, std::slice::from_ref(&t), 1);
        let with = judged(Some(&histograms));
        assert_eq!(with[0].observed, Some(975.0));
        assert!(with[0].passed);
        let without = judged(None);
        assert_eq!(
            without[0].observed, None,
            "no histograms, no value: breached"
        );
        assert!(!without[0].passed);
        assert!(
            "p97.5=10%".parse::<crate::Limits>().is_err(),
            "compare reads report.json"
        );
    }

    #[test]
    fn bad_thresholds_name_the_place_and_the_names() {
        for (bad, at) in [
            ("p99<<1ms", 4),
            ("p99", 0),
            ("p100<1ms", 0),
            ("p99<1parsec", 4),
            ("error-rate<150%", 11),
        ] {
            let err = bad.parse::<Threshold>().expect_err(bad);
            assert!(err.contains(&format!("at character {at}")), "{bad}: {err}");
            assert!(err.contains("outcomes.NAME"), "{bad}: {err}");
        }
    }
}
