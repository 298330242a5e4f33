//! The figures of `docs/performance.md`: criterion's estimates turned into ratios to the
//! reference measured in the same run, next to the targets of issue 7.
//!
//! Reads `target/criterion/**/new/{benchmark,estimates}.json` as written by the last
//! `cargo bench -p otpfleet-benches` run, and uses the median time per iteration (every bench
//! here samples flat, so criterion fits no slope). A ratio's range combines the two medians'
//! 95% confidence intervals in the least favourable way.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Criterion's estimate of one bench: time per element (per iteration divided by its
/// throughput elements, 1 without), in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub median_ns: f64,
    pub low_ns: f64,
    pub high_ns: f64,
}

/// What a figure is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A cost: the ratio of times must be at most this.
    AtMost(f64),
    /// A throughput: the ratio of throughputs must be at least this.
    AtLeast(f64),
    /// Shown for context, no target.
    None,
}

/// A ratio of two benches of the same group, optionally divided by the same ratio of two
/// other benches (`per`): redeem's scaling over the machine's scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub what: &'static str,
    pub bench: &'static str,
    pub reference: &'static str,
    pub per: Option<(&'static str, &'static str)>,
    pub target: Target,
}

/// The figures, in the order of the docs.
pub const FIGURES: &[Figure] = &[
    cost("redeem, in process", "domain/redeem", Target::AtMost(3.0)),
    cost("approve, in process", "domain/approve", Target::AtMost(2.0)),
    cost("poll, in process", "domain/poll", Target::AtMost(2.0)),
    cost("sign-in, in process", "domain/sign_in", Target::None),
    cost("verify, in process", "domain/verify", Target::None),
    cost("issue 1 OTP, in process", "domain/issue_1", Target::None),
    cost(
        "issue 100 OTPs, in process",
        "domain/issue_100",
        Target::None,
    ),
    Figure {
        what: "poll round trip, HTTP",
        bench: "http/poll",
        reference: "http/hello_hyper",
        per: None,
        target: Target::AtMost(1.5),
    },
    Figure {
        what: "redeem round trip, HTTP",
        bench: "http/redeem",
        reference: "http/hello_hyper",
        per: None,
        target: Target::AtMost(2.0),
    },
    Figure {
        what: "redeem throughput, 2 threads vs 1",
        bench: REDEEM_2,
        reference: REDEEM_1,
        per: None,
        target: Target::AtLeast(1.7),
    },
    Figure {
        what: "HMAC throughput, 2 threads vs 1 (the machine)",
        bench: HMAC_2,
        reference: HMAC_1,
        per: None,
        target: Target::None,
    },
    Figure {
        what: "redeem scaling over HMAC scaling, 2 threads",
        bench: REDEEM_2,
        reference: REDEEM_1,
        per: Some((HMAC_2, HMAC_1)),
        target: Target::None,
    },
    Figure {
        what: "redeem throughput, 8 threads vs 1",
        bench: "contention/redeem_threads/8",
        reference: REDEEM_1,
        per: None,
        target: Target::None,
    },
];

const REDEEM_1: &str = "contention/redeem_threads/1";
const REDEEM_2: &str = "contention/redeem_threads/2";
const HMAC_1: &str = "contention/hmac_threads/1";
const HMAC_2: &str = "contention/hmac_threads/2";

const fn cost(what: &'static str, bench: &'static str, target: Target) -> Figure {
    Figure {
        what,
        bench,
        reference: "domain/hmac_otp",
        per: None,
        target,
    }
}

/// Reads every bench under a criterion output folder, keyed by criterion's full id
/// (`group/function[/value]`).
pub fn read_criterion(dir: &Path) -> Result<BTreeMap<String, Estimate>, String> {
    let mut found = BTreeMap::new();
    walk(dir, &mut found)?;
    if found.is_empty() {
        return Err(format!(
            "no criterion results under {}: run `cargo bench -p otpfleet-benches` first",
            dir.display()
        ));
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut BTreeMap<String, Estimate>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("while reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let bench = read_json(&path.join("benchmark.json"))?;
            let estimates = read_json(&path.join("estimates.json"))?;
            if let Some((id, estimate)) = estimate_of(&bench, &estimates) {
                found.insert(id, estimate);
            }
        } else {
            walk(&path, found)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("while reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// The full id and the per-element median of one bench's `benchmark.json` and
/// `estimates.json`.
pub fn estimate_of(bench: &Value, estimates: &Value) -> Option<(String, Estimate)> {
    let id = bench["full_id"].as_str()?.to_owned();
    let elements = bench["throughput"]["Elements"]
        .as_f64()
        .unwrap_or(1.0)
        .max(1.0);
    let median = &estimates["median"];
    let ci = &median["confidence_interval"];
    Some((
        id,
        Estimate {
            median_ns: median["point_estimate"].as_f64()? / elements,
            low_ns: ci["lower_bound"].as_f64()? / elements,
            high_ns: ci["upper_bound"].as_f64()? / elements,
        },
    ))
}

/// One computed figure: the ratio and its range, and whether the target is met.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub figure: Figure,
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub met: Option<bool>,
}

/// Every figure whose two benches were measured. Costs are time over reference time;
/// throughputs are throughput over reference throughput (reference time per element over time
/// per element).
pub fn ratios(estimates: &BTreeMap<String, Estimate>) -> Vec<Ratio> {
    FIGURES
        .iter()
        .filter_map(|f| {
            let throughput =
                matches!(f.target, Target::AtLeast(_)) || f.bench.starts_with("contention/");
            let (mut ratio, mut low, mut high) = ratio_of(
                estimates.get(f.bench)?,
                estimates.get(f.reference)?,
                throughput,
            );
            if let Some((bench, reference)) = f.per {
                let (r, l, h) =
                    ratio_of(estimates.get(bench)?, estimates.get(reference)?, throughput);
                (ratio, low, high) = (ratio / r, low / h, high / l);
            }
            let met = match f.target {
                Target::AtMost(max) => Some(ratio <= max),
                Target::AtLeast(min) => Some(ratio >= min),
                Target::None => None,
            };
            Some(Ratio {
                figure: *f,
                ratio,
                low,
                high,
                met,
            })
        })
        .collect()
}

/// Bench over reference: times for a cost, throughputs (the inverse) for a throughput; with
/// the range the two confidence intervals allow.
fn ratio_of(b: &Estimate, r: &Estimate, throughput: bool) -> (f64, f64, f64) {
    if throughput {
        (
            r.median_ns / b.median_ns,
            r.low_ns / b.high_ns,
            r.high_ns / b.low_ns,
        )
    } else {
        (
            b.median_ns / r.median_ns,
            b.low_ns / r.high_ns,
            b.high_ns / r.low_ns,
        )
    }
}

/// The ratios as a Markdown table, with the medians they come from.
pub fn table(ratios: &[Ratio], estimates: &BTreeMap<String, Estimate>) -> String {
    let mut out = String::from(
        "| figure | ratio (95% range) | target | met | bench / reference median |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for r in ratios {
        let f = &r.figure;
        let target = match f.target {
            Target::AtMost(max) => format!("<= {max}x {}", short(f.reference)),
            Target::AtLeast(min) => format!(">= {min}x"),
            Target::None => "-".to_owned(),
        };
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let ns = |id: &str| estimates.get(id).map_or(0.0, |e| e.median_ns);
        let _ = writeln!(
            out,
            "| {} | {:.2}x ({:.2}-{:.2}) | {target} | {met} | {} / {} |",
            f.what,
            r.ratio,
            r.low,
            r.high,
            time(ns(f.bench)),
            time(ns(f.reference)),
        );
    }
    out
}

fn short(id: &str) -> &str {
    match id {
        "domain/hmac_otp" => "HMAC",
        "http/hello_hyper" => "hello",
        other => other,
    }
}

fn time(ns: f64) -> String {
    if ns >= 1_000.0 {
        format!("{:.1} us", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn est(median_ns: f64) -> Estimate {
        Estimate {
            median_ns,
            low_ns: median_ns * 0.9,
            high_ns: median_ns * 1.1,
        }
    }

    #[test]
    fn costs_and_throughputs_read_the_right_way_round() {
        let mut e = BTreeMap::new();
        e.insert("domain/hmac_otp".to_owned(), est(200.0));
        e.insert("domain/redeem".to_owned(), est(700.0));
        // Per element: 1 thread 1000 ns, 2 threads 550 ns per redemption.
        e.insert("contention/redeem_threads/1".to_owned(), est(1000.0));
        e.insert("contention/redeem_threads/2".to_owned(), est(550.0));
        let r = ratios(&e);
        assert_eq!(r.len(), 2);
        assert!((r[0].ratio - 3.5).abs() < 1e-9);
        assert_eq!(r[0].met, Some(false));
        assert!(r[0].low < 3.5 && r[0].high > 3.5);
        assert!((r[1].ratio - 1000.0 / 550.0).abs() < 1e-9);
        assert_eq!(r[1].met, Some(true));
        assert!(table(&r, &e).contains("| redeem, in process | 3.50x"));

        // The machine scales HMACs 1.6x: redeem's 1.82x is 1.14x of that.
        e.insert("contention/hmac_threads/1".to_owned(), est(200.0));
        e.insert("contention/hmac_threads/2".to_owned(), est(125.0));
        let r = ratios(&e);
        let over = r
            .iter()
            .find(|r| r.figure.per.is_some())
            .expect("derived figure");
        assert!((over.ratio - (1000.0 / 550.0) / 1.6).abs() < 1e-9);
        assert!(over.low < over.ratio && over.ratio < over.high);
    }

    #[test]
    fn reads_per_element_medians() {
        let bench = json!({"full_id": "contention/redeem_threads/2",
                           "throughput": {"Elements": 2}});
        let estimates = json!({"median": {"point_estimate": 1000.0,
            "confidence_interval": {"lower_bound": 900.0, "upper_bound": 1100.0}}});
        let (id, e) = estimate_of(&bench, &estimates).expect("reads");
        assert_eq!(id, "contention/redeem_threads/2");
        assert_eq!(
            e,
            Estimate {
                median_ns: 500.0,
                low_ns: 450.0,
                high_ns: 550.0
            }
        );
    }
}
