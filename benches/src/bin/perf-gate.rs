//! The comparison half of `scripts/perf-gate`: reads gungraun's JSON summaries of the callgrind
//! benches, prints base vs new instruction counts, and exits 1 when a count per operation grew
//! past the threshold (or a bench is missing on either side).
//!
//! ```text
//! perf-gate check  --baseline FILE --summary FILE [--threshold-pct N] [PROVENANCE]
//! perf-gate update --baseline FILE --summary FILE [PROVENANCE]
//! PROVENANCE: --rustc TEXT --valgrind TEXT --gungraun TEXT
//! ```
//!
//! Exit status: 0 passed (or baseline written), 1 regression, 2 bad usage or unreadable input.

use otpfleet_benches::gate::{self, Baseline, Provenance};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: perf-gate check|update --baseline FILE --summary FILE \
                     [--threshold-pct N] [--rustc TEXT] [--valgrind TEXT] [--gungraun TEXT]";

#[derive(Debug)]
struct Opts {
    update: bool,
    baseline: String,
    summary: String,
    threshold_pct: Option<f64>,
    provenance: Provenance,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|opts| {
        if opts.update {
            update(&opts).map(|()| true)
        } else {
            check(&opts)
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("perf-gate: {e}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let (mode, rest) = args.split_first().ok_or(USAGE)?;
    let update = match mode.as_str() {
        "check" => false,
        "update" => true,
        other => return Err(format!("unknown mode {other:?}; {USAGE}")),
    };
    let mut named: BTreeMap<&str, &str> = BTreeMap::new();
    for pair in rest.chunks(2) {
        match pair {
            [flag, value] => {
                let known = [
                    "--baseline",
                    "--summary",
                    "--threshold-pct",
                    "--rustc",
                    "--valgrind",
                    "--gungraun",
                ];
                if !known.contains(&flag.as_str()) {
                    return Err(format!("unknown option {flag:?}; {USAGE}"));
                }
                named.insert(flag.as_str(), value.as_str());
            }
            _ => return Err(format!("option {:?} needs a value; {USAGE}", pair[0])),
        }
    }
    let get = |flag: &str| named.get(flag).map(|v| (*v).to_owned());
    let threshold_pct = match get("--threshold-pct") {
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|p| *p >= 0.0)
                .ok_or_else(|| format!("--threshold-pct {v:?} is not a percentage"))?,
        ),
        None => None,
    };
    Ok(Opts {
        update,
        baseline: get("--baseline").ok_or(USAGE)?,
        summary: get("--summary").ok_or(USAGE)?,
        threshold_pct,
        provenance: Provenance {
            rustc: get("--rustc").unwrap_or_default(),
            valgrind: get("--valgrind").unwrap_or_default(),
            gungraun: get("--gungraun").unwrap_or_default(),
        },
    })
}

fn read(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("while reading the {what} {path}: {e}"))
}

fn check(opts: &Opts) -> Result<bool, String> {
    let measured = gate::parse_summaries(&read(&opts.summary, "gungraun summary")?)?;
    let baseline: Baseline = serde_json::from_str(&read(&opts.baseline, "baseline")?)
        .map_err(|e| format!("the baseline {} is not valid: {e}", opts.baseline))?;
    let threshold_pct = opts.threshold_pct.unwrap_or(baseline.threshold_pct);
    let comparison = gate::compare(&baseline.benches, &measured, threshold_pct);
    println!(
        "callgrind gate: instructions per operation (Ir) against {}; fails above +{threshold_pct}%",
        opts.baseline
    );
    print!("{}", comparison.table());
    let changes = gate::provenance_changes(&baseline.produced_by, &opts.provenance);
    if !changes.is_empty() {
        println!("note: this run was not made with the baseline's tools, which moves counts:");
        for c in &changes {
            println!("  {c}");
        }
    }
    if comparison.count(gate::Verdict::Improved) > 0 {
        println!(
            "note: some counts dropped by more than {threshold_pct}%: refresh the baseline \
             (scripts/perf-gate --update) in the same change, so the gain is kept"
        );
    }
    if comparison.failed() {
        let failing: Vec<String> = comparison
            .rows
            .iter()
            .filter(|r| r.verdict.fails())
            .map(|r| match r.change_pct {
                Some(p) => format!("{} ({p:+.2}%)", r.name),
                None => r.name.clone(),
            })
            .collect();
        println!(
            "perf-gate: FAILED: {}. Profile the bench (docs/performance.md, \"Reading a \
             regression\"); refresh the baseline only if the extra work is intended.",
            failing.join(", ")
        );
        Ok(false)
    } else {
        println!(
            "perf-gate: passed ({} benches within {threshold_pct}%)",
            comparison.rows.len()
        );
        Ok(true)
    }
}

fn update(opts: &Opts) -> Result<(), String> {
    let measured = gate::parse_summaries(&read(&opts.summary, "gungraun summary")?)?;
    let mut baseline = Baseline::new(opts.provenance.clone(), measured);
    if let Some(p) = opts.threshold_pct {
        baseline.threshold_pct = p;
    }
    let text = serde_json::to_string_pretty(&baseline)
        .map_err(|e| format!("while writing the baseline: {e}"))?;
    otpfleet_reports::write_whole(Path::new(&opts.baseline), |out| {
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")
    })
    .map_err(|e| format!("while writing the baseline {}: {e}", opts.baseline))?;
    println!(
        "perf-gate: wrote {} ({} benches)",
        opts.baseline,
        baseline.benches.len()
    );
    let comparison = gate::compare(&baseline.benches, &baseline.benches, baseline.threshold_pct);
    print!("{}", comparison.table());
    Ok(())
}
