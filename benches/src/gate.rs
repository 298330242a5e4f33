//! The regression gate's arithmetic: instruction counts of the callgrind benches
//! (`benches/callgrind.rs`) against the baseline committed in `reports/baselines/callgrind.json`.
//!
//! Counts are compared per operation, so changing how many operations a bench runs does not
//! read as a regression. A count more than the threshold (5% by default) above its baseline
//! fails the gate; so does a bench missing on either side, so that renaming or adding a bench
//! comes with a refreshed baseline instead of silently leaving the gate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Operations per callgrind bench run (redemptions, polls, ...).
pub const OPS: usize = 32;
/// Batches of 100 per run of the `issue_100` bench.
pub const BATCH_OPS: usize = 4;
/// Operations of the same kind done in setup, before the measured ones. The server's indexes
/// are `DashMap`s of 8 shards here (4 per core); 1,280 entries put about 160 in each shard's
/// table, far from the sizes where it grows (112 and 224), so that the measured inserts do not
/// trigger a rehash by chance: nearer a threshold, redeem's count wandered by 2% between runs.
pub const WARM_OPS: usize = 1280;
/// The default threshold: a count this many percent above its baseline fails.
pub const THRESHOLD_PCT: f64 = 5.0;
/// The reference bench; every count is also shown as a multiple of it.
pub const REFERENCE: &str = "hmac_otp";
/// Version of the baseline file's layout.
pub const SCHEMA: u32 = 1;

/// How many operations one run of bench `name` does.
pub fn ops_of(name: &str) -> u64 {
    match name {
        "issue_100" => BATCH_OPS as u64,
        _ => OPS as u64,
    }
}

/// One bench's count: instructions executed (callgrind's `Ir`) for `ops` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub instructions: u64,
    pub ops: u64,
}

impl Count {
    pub fn per_op(&self) -> f64 {
        self.instructions as f64 / self.ops.max(1) as f64
    }
}

/// What produced a set of counts: counts move with the compiler, valgrind and dependencies,
/// so a baseline records them and the gate names any difference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub rustc: String,
    pub valgrind: String,
    pub gungraun: String,
}

/// The committed baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub schema: u32,
    /// A sentence for a person opening the file.
    pub about: String,
    pub threshold_pct: f64,
    pub produced_by: Provenance,
    pub benches: BTreeMap<String, Count>,
}

impl Baseline {
    pub fn new(produced_by: Provenance, benches: BTreeMap<String, Count>) -> Baseline {
        Baseline {
            schema: SCHEMA,
            about: "Instructions executed (callgrind Ir) by the in-process hot path, per bench \
                    of benches/benches/callgrind.rs; scripts/perf-gate fails when a count per \
                    operation grows past threshold_pct. Refresh: see docs/performance.md."
                .to_owned(),
            threshold_pct: THRESHOLD_PCT,
            produced_by,
            benches,
        }
    }
}

/// The verdict on one bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Above the threshold: fails the gate.
    Regressed,
    /// Below the threshold by as much: passes, and the baseline should be refreshed to keep
    /// the gain.
    Improved,
    /// In the baseline, not measured: fails.
    NotMeasured,
    /// Measured, not in the baseline: fails.
    NoBaseline,
}

impl Verdict {
    pub fn fails(self) -> bool {
        matches!(
            self,
            Verdict::Regressed | Verdict::NotMeasured | Verdict::NoBaseline
        )
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::NotMeasured => "NOT MEASURED",
            Verdict::NoBaseline => "NO BASELINE",
        }
    }
}

/// One line of the gate's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub base: Option<Count>,
    pub new: Option<Count>,
    /// Change of the count per operation, in percent.
    pub change_pct: Option<f64>,
    pub verdict: Verdict,
}

/// The comparison of a run with the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub threshold_pct: f64,
    pub rows: Vec<Row>,
}

impl Comparison {
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict.fails())
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }

    /// The table: base and new counts per operation, the change, the multiple of the reference
    /// (one HMAC of an OTP) in this run, and the verdict.
    pub fn table(&self) -> String {
        let reference = self
            .rows
            .iter()
            .find(|r| r.name == REFERENCE)
            .and_then(|r| r.new)
            .map(|c| c.per_op());
        let mut out = format!(
            "{:<12} {:>5} {:>14} {:>14} {:>9} {:>8}  verdict\n",
            "bench", "ops", "base Ir/op", "new Ir/op", "change", "x hmac"
        );
        for r in &self.rows {
            let ops = r.new.or(r.base).map_or(0, |c| c.ops);
            let per_op = |c: Option<Count>| c.map_or("-".to_owned(), |c| group(c.per_op()));
            // Rounded first, so that a tiny drop does not print as "-0.00%".
            let change = r.change_pct.map_or("-".to_owned(), |p| {
                format!("{:+.2}%", (p * 100.0).round() / 100.0 + 0.0)
            });
            let times = match (r.new, reference) {
                (Some(c), Some(h)) if h > 0.0 => format!("{:.2}", c.per_op() / h),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:<12} {:>5} {:>14} {:>14} {:>9} {:>8}  {}",
                r.name,
                ops,
                per_op(r.base),
                per_op(r.new),
                change,
                times,
                r.verdict.label()
            );
        }
        out
    }
}

/// Compares measured counts with the baseline, bench by bench, in name order.
pub fn compare(
    base: &BTreeMap<String, Count>,
    new: &BTreeMap<String, Count>,
    threshold_pct: f64,
) -> Comparison {
    let mut names: Vec<&String> = base.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let rows = names
        .into_iter()
        .map(|name| {
            let (b, n) = (base.get(name).copied(), new.get(name).copied());
            let change_pct = match (b, n) {
                (Some(b), Some(n)) if b.per_op() > 0.0 => {
                    Some((n.per_op() / b.per_op() - 1.0) * 100.0)
                }
                _ => None,
            };
            // Exactly at the threshold passes, whatever the floating-point rounding.
            let over = |p: f64| p > threshold_pct + 1e-9;
            let verdict = match (b, n, change_pct) {
                (None, _, _) => Verdict::NoBaseline,
                (_, None, _) => Verdict::NotMeasured,
                (_, _, Some(p)) if over(p) => Verdict::Regressed,
                (_, _, Some(p)) if over(-p) => Verdict::Improved,
                _ => Verdict::Ok,
            };
            Row {
                name: name.clone(),
                base: b,
                new: n,
                change_pct,
                verdict,
            }
        })
        .collect();
    Comparison {
        threshold_pct,
        rows,
    }
}

/// Reads gungraun's JSON summaries (`--output-format=json`: one JSON object per line, one line
/// per bench) into counts keyed by bench function name.
pub fn parse_summaries(jsonl: &str) -> Result<BTreeMap<String, Count>, String> {
    let mut counts = BTreeMap::new();
    for (i, line) in jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a gungraun JSON summary: {e}", i + 1))?;
        let name = v["function_name"]
            .as_str()
            .ok_or_else(|| format!("line {}: no function_name", i + 1))?
            .to_owned();
        let ir = v["profiles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["tool"] == "Callgrind")
            .and_then(|p| p["data"]["total"]["metrics"]["Ir"]["values"]["new"].as_u64())
            .ok_or_else(|| {
                format!(
                    "line {}: no callgrind Ir for {name} (summary schema version {}; this \
                     reader knows version 7)",
                    i + 1,
                    v["version"]
                )
            })?;
        let count = Count {
            instructions: ir,
            ops: ops_of(&name),
        };
        if counts.insert(name.clone(), count).is_some() {
            return Err(format!(
                "bench {name} appears twice; give each callgrind bench its own function"
            ));
        }
    }
    if counts.is_empty() {
        return Err("no bench summaries: did the callgrind benches run?".to_owned());
    }
    Ok(counts)
}

/// What differs between the baseline's provenance and this run's, one line each.
pub fn provenance_changes(base: &Provenance, now: &Provenance) -> Vec<String> {
    let mut changes = Vec::new();
    for (what, b, n) in [
        ("rustc", &base.rustc, &now.rustc),
        ("valgrind", &base.valgrind, &now.valgrind),
        ("gungraun", &base.gungraun, &now.gungraun),
    ] {
        if b != n {
            changes.push(format!("{what}: baseline {b:?}, this run {n:?}"));
        }
    }
    changes
}

/// `1234567.8` as `1,234,568`.
fn group(x: f64) -> String {
    otpfleet_reports::numbers::thousands(x.max(0.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, Count> {
        pairs
            .iter()
            .map(|(n, ir)| {
                (
                    (*n).to_owned(),
                    Count {
                        instructions: *ir,
                        ops: ops_of(n),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn unchanged_counts_pass() {
        let base = counts(&[("hmac_otp", 228_901), ("redeem", 689_835)]);
        let c = compare(&base, &base, THRESHOLD_PCT);
        assert!(!c.failed());
        assert_eq!(c.count(Verdict::Ok), 2);
    }

    #[test]
    fn a_planted_slowdown_past_the_threshold_fails() {
        let base = counts(&[("hmac_otp", 228_901), ("redeem", 689_835)]);
        // One more HMAC per redemption, as `--plant-slowdown` does.
        let new = counts(&[("hmac_otp", 228_901), ("redeem", 689_835 + 228_901)]);
        let c = compare(&base, &new, THRESHOLD_PCT);
        assert!(c.failed());
        let redeem = &c.rows[1];
        assert_eq!(redeem.verdict, Verdict::Regressed);
        assert!(c.table().contains("REGRESSED"), "{}", c.table());
    }

    #[test]
    fn the_threshold_is_per_operation_and_exclusive() {
        let base = counts(&[("poll", 100_000)]);
        let at = compare(&base, &counts(&[("poll", 105_000)]), 5.0);
        assert_eq!(at.rows[0].verdict, Verdict::Ok);
        let past = compare(&base, &counts(&[("poll", 105_100)]), 5.0);
        assert_eq!(past.rows[0].verdict, Verdict::Regressed);
        // Twice the operations for twice the instructions is no change.
        let mut doubled = counts(&[("poll", 200_000)]);
        doubled.values_mut().for_each(|c| c.ops *= 2);
        assert_eq!(compare(&base, &doubled, 5.0).rows[0].verdict, Verdict::Ok);
    }

    #[test]
    fn improvements_pass_and_missing_benches_fail() {
        let base = counts(&[("poll", 100_000), ("approve", 50_000)]);
        let new = counts(&[("poll", 80_000), ("sign_in", 40_000)]);
        let c = compare(&base, &new, 5.0);
        let verdicts: Vec<(&str, Verdict)> = c
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("approve", Verdict::NotMeasured),
                ("poll", Verdict::Improved),
                ("sign_in", Verdict::NoBaseline),
            ]
        );
        assert!(c.failed());
    }

    #[test]
    fn reads_gungraun_json_summaries() {
        let line = r#"{"function_name":"redeem","id":"ops","version":"7","profiles":[{"tool":"Callgrind","data":{"total":{"metrics":{"Ir":{"values":{"new":689835}}}}}}]}"#;
        let parsed = parse_summaries(&format!("{line}\n\n")).expect("parses");
        assert_eq!(
            parsed["redeem"],
            Count {
                instructions: 689_835,
                ops: OPS as u64
            }
        );
        assert!(parse_summaries(&format!("{line}\n{line}")).is_err());
        assert!(parse_summaries("").is_err());
        assert!(parse_summaries(r#"{"function_name":"x","profiles":[]}"#).is_err());
    }

    #[test]
    fn baselines_round_trip_through_json() {
        let b = Baseline::new(Provenance::default(), counts(&[("redeem", 1)]));
        let text = serde_json::to_string_pretty(&b).expect("serializes");
        assert_eq!(serde_json::from_str::<Baseline>(&text).expect("parses"), b);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(1_234_567.6), "1,234,568");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(0.0), "0");
    }
}
