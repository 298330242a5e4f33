//! Synthetic runs: what a fleet records, made up deterministically per console, so shards of a
//! run add up exactly to the whole.

use otpfleet_reports::{
    Faults, MergedFrom, Outcome, Outcomes, Recorder, RehearsalFindings, RunKind, RunReport,
    SCHEMA_VERSION, ShardInfo, Step, TimeToSignedIn, TimelinePoint, WaveResult, summarize,
    write_run_folder,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The steps a synthetic console walks (issue is the admin's, once per run).
pub const STEPS: [Step; 5] = [
    Step::Verify,
    Step::Redeem,
    Step::Poll,
    Step::Approve,
    Step::SignIn,
];

/// A run of `consoles` consoles (this shard's share of them), seeded.
pub fn run(seed: u64, shard: (u32, u32), consoles: u64) -> (RunReport, Recorder) {
    let recorder = Recorder::default();
    let mut outcomes = Outcomes::default();
    let mut faults = Faults::default();
    let mine = (0..consoles).filter(|i| i % u64::from(shard.1) == u64::from(shard.0));
    for i in mine {
        let base = 200 + (i * 7919 + seed) % 1_700;
        for (k, step) in STEPS.into_iter().enumerate() {
            let us = base * (k as u64 + 1) + (i % 13) * 31;
            recorder.record(step, Duration::from_micros(us));
            recorder.record_raw(step, Duration::from_micros(us / 3 + 1));
        }
        if i % 10 == 3 {
            outcomes.add(Outcome::Rejected);
        } else {
            outcomes.add(Outcome::SignedInOtp);
            recorder.record(
                Step::TimeToSignedIn,
                Duration::from_millis(2_000 + (i * 37) % 3_000),
            );
        }
        faults.otp_typos += i % 3;
    }
    let report = report_of(seed, shard, consoles, &recorder, outcomes, faults);
    (report, recorder)
}

fn report_of(
    seed: u64,
    shard: (u32, u32),
    total: u64,
    recorder: &Recorder,
    outcomes: Outcomes,
    faults: Faults,
) -> RunReport {
    let view = |raw: bool| -> BTreeMap<String, _> {
        STEPS
            .into_iter()
            .map(|s| {
                let h = if raw {
                    recorder.raw_histogram(s)
                } else {
                    recorder.histogram(s)
                };
                (s.as_str().to_owned(), summarize(&h))
            })
            .collect()
    };
    RunReport {
        schema_version: SCHEMA_VERSION,
        kind: RunKind::Fleet,
        otpfleet_version: "0.1.0".into(),
        seed,
        consoles: outcomes.total(),
        shard: ShardInfo {
            index: shard.0,
            count: shard.1,
        },
        target: format!("http://127.0.0.1:{}", 40_000 + shard.0),
        complete: true,
        stopped_because: None,
        outcomes,
        faults,
        errors: BTreeMap::from([("unexpected_answer: poll 500".to_owned(), 1)]),
        latency_us: view(false),
        latency_raw_us: view(true),
        time_to_signed_in_s: TimeToSignedIn::from_us(&summarize(
            &recorder.histogram(Step::TimeToSignedIn),
        )),
        duration_s: 3.5 + f64::from(shard.0),
        config: serde_json::json!({
            "consoles": total,
            "seed": seed,
            "shard": {"index": shard.0, "count": shard.1},
            "rates": {"typo": 0.05, "reject": 0.1},
        }),
        timeline: Vec::new(),
        rehearsal: None,
        merged_from: Vec::new(),
    }
}

/// Writes a synthetic run's folder.
pub fn write(dir: &Path, seed: u64, shard: (u32, u32), consoles: u64) -> RunReport {
    let (report, recorder) = run(seed, shard, consoles);
    write_run_folder(dir, &report, &recorder).unwrap();
    report
}

/// A report with every optional field filled: a rehearsal's timeline and findings, a merge's
/// shards, a stop reason.
pub fn full_report() -> RunReport {
    let (mut r, _) = run(5, (0, 1), 50);
    r.kind = RunKind::Rehearsal;
    r.complete = false;
    r.stopped_because = Some("the run reached its time limit (600 s)".into());
    r.timeline = (0..4)
        .map(|hour| TimelinePoint {
            hour,
            at: format!("2026-11-20T{:02}:00:00Z", 8 + hour),
            signed_in: u64::from(hour) * 10,
            awaiting_approval: 5,
            expired: u64::from(hour),
            in_verification: 1,
        })
        .collect();
    r.rehearsal = Some(RehearsalFindings {
        expired_awaiting_approval: 2,
        expired_installer_late: 1,
        expired_share: 0.06,
        queue_depth_peak: 5,
        queue_depth_peak_at: "2026-11-20T09:00:00Z".into(),
        wait_for_approval_s: r.time_to_signed_in_s,
        stuck_in_verification: 1,
        waves: vec![WaveResult {
            name: "wave 1 <east>".into(),
            consoles: 50,
            outcomes: r.outcomes,
            time_to_signed_in_s: r.time_to_signed_in_s,
        }],
        findings: vec!["3 OTPs expired (6%): 2 while waiting for approval".into()],
        suggestion: Some("12-hour OTPs would have saved 2".into()),
    });
    r.merged_from = vec![MergedFrom {
        dir: "runs/a".into(),
        seed: 5,
        shard: ShardInfo { index: 0, count: 1 },
    }];
    r
}
