//! Synthetic runs: what a fleet records, made up deterministically per console, so shards of a
//! run add up exactly to the whole.

use otpfleet_reports::{
    Answered, Faults, Flow, Measured, MergedFrom, Outcome, Outcomes, Recorder, RehearsalFindings,
    Role, RunKind, RunOf, RunReport, Settings, ShardInfo, ShardSettings, Step, TimelinePoint,
    WaveResult, write_run_folder,
};
use serde::{Deserialize, Serialize};
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

/// A run of `consoles` consoles (this shard's share of them), seeded: the first half of the
/// consoles in a first one-second interval, the rest in a second.
pub fn run(seed: u64, shard: (u32, u32), consoles: u64) -> (RunReport, Recorder) {
    let recorder = Recorder::default();
    let mut outcomes = Outcomes::default();
    let mut faults = Faults::default();
    let mine = (0..consoles).filter(|i| i % u64::from(shard.1) == u64::from(shard.0));
    let mut first_closed = false;
    for i in mine {
        if i >= consoles / 2 && !first_closed {
            recorder.close_interval(Duration::from_secs(1));
            first_closed = true;
        }
        let base = 200 + (i * 7919 + seed) % 1_700;
        for (k, step) in STEPS.into_iter().enumerate() {
            let us = base * (k as u64 + 1) + (i % 13) * 31;
            let service = Duration::from_micros(us / 3 + 1);
            let lateness = Duration::from_micros(us - us / 3);
            let answer = if i % 50 == 7 && step == Step::Poll {
                Answered::Failed("status 500")
            } else {
                Answered::Ok
            };
            recorder.request(step, Some(lateness), service, answer);
        }
        if i % 10 == 3 {
            outcomes.add(Outcome::Rejected);
        } else {
            outcomes.add(Outcome::SignedInOtp);
            recorder.flow(
                Flow::TimeToSignedIn,
                Duration::from_millis(2_000 + (i * 37) % 3_000),
            );
        }
        faults.otp_typos += i % 3;
    }
    recorder.close_interval(Duration::from_secs(2));
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
    let counts = STEPS
        .into_iter()
        .map(|s| (s.as_str().to_owned(), recorder.counts(s)))
        .collect();
    let duration_s = 3.5 + f64::from(shard.0);
    let settings = TestSettings {
        consoles: total,
        seed,
        shard: TestShard {
            index: shard.0,
            count: shard.1,
        },
        rates: TestRates {
            typo: 0.05,
            reject: 0.1,
        },
        role: Role::All,
        admins: 2,
        auto_approve: false,
    };
    let run = RunOf {
        kind: RunKind::Fleet,
        seed,
        shard: ShardInfo {
            index: shard.0,
            count: shard.1,
            ..ShardInfo::WHOLE
        },
        target: format!("http://127.0.0.1:{}", 40_000 + shard.0),
        config: Settings::of(&settings),
    };
    let measured = Measured {
        consoles: outcomes.total(),
        outcomes,
        faults,
        errors: BTreeMap::from([("unexpected_answer: poll 500".to_owned(), 1)]),
        histograms: recorder.histograms(),
        counts,
        measured_s: duration_s,
        over_time: recorder.points(),
        duration_s,
        ..Measured::default()
    };
    RunReport::new(run, measured)
}

/// A synthetic fleet's settings: what a merge reads of a real fleet's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSettings {
    pub consoles: u64,
    pub seed: u64,
    pub shard: TestShard,
    pub rates: TestRates,
    pub role: Role,
    pub admins: u32,
    pub auto_approve: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestShard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestRates {
    pub typo: f64,
    pub reject: f64,
}

impl ShardSettings for TestSettings {
    fn read(_: RunKind, settings: &Settings) -> Result<Self, String> {
        settings.read()
    }

    fn whole(&self, admins: Option<u32>) -> Self {
        TestSettings {
            shard: TestShard { index: 0, count: 1 },
            role: Role::All,
            admins: admins.unwrap_or(self.admins),
            ..self.clone()
        }
    }

    fn auto_approve(&self) -> bool {
        self.auto_approve
    }
}

/// Writes a synthetic run's folder.
pub fn write(dir: &Path, seed: u64, shard: (u32, u32), consoles: u64) -> RunReport {
    let (report, recorder) = run(seed, shard, consoles);
    write_run_folder(dir, &report, &recorder.histograms(), None).unwrap();
    report
}

/// A report with every optional field filled: a rehearsal's timeline and findings, a merge's
/// shards, a stop reason.
pub fn full_report() -> RunReport {
    let (mut r, _) = run(5, (0, 1), 50);
    r.kind = RunKind::Rehearsal;
    // A rehearsal's requests take no time: it reports none.
    r.latency_us.clear();
    r.throughput = Default::default();
    r.over_time.clear();
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
            approvers_at_work: u32::from(hour % 2 == 0),
        })
        .collect();
    r.rehearsal = Some(RehearsalFindings {
        headline: vec!["The last room signed in Fri 2026-11-20 16:30 EST".into()],
        expired_awaiting_approval: 2,
        expired_installer_late: 1,
        expired_share: 0.06,
        second_visits: 3,
        otps_generated: 53,
        admin_hours: 1.5,
        regeneration_hours: 0.1,
        not_signed_in: [("uncertified model (contact the manufacturer)".to_owned(), 1)].into(),
        queue_depth_peak: 5,
        queue_depth_peak_at: "2026-11-20T09:00:00Z".into(),
        queue_depth_peak_local: Some("Fri 2026-11-20 04:00 EST".into()),
        wait_for_approval_s: r.time_to_signed_in_s,
        stuck_in_verification: 1,
        last_signed_in_at: Some("2026-11-20T16:30:00-05:00".into()),
        signed_in_95_at: None,
        waves: vec![WaveResult {
            name: "wave 1 <east>".into(),
            consoles: 50,
            outcomes: r.outcomes,
            time_to_signed_in_s: r.time_to_signed_in_s,
            expired_awaiting_approval: 2,
            expired_installer_late: 1,
            second_visits: 3,
            last_signed_in_at: Some("2026-11-20T16:30:00-05:00".into()),
        }],
        findings: vec!["3 OTPs expired (6%): 2 while waiting for approval".into()],
        suggestion: Some("12-hour OTPs would have saved 2".into()),
    });
    r.merged_from = vec![MergedFrom {
        dir: "runs/a".into(),
        seed: 5,
        shard: ShardInfo::WHOLE,
    }];
    r
}
