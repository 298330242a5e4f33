//! How a command ends, decided in one place: a run's `Ending` (from its report, the signal that
//! stopped it and its thresholds), or the failure that kept it from running; and the one map
//! from an ending to the process's exit code (documented in the README).

use otpfleet_reports::{
    INTERRUPTED, RunHistograms, RunReport, STOPPED_BY_THRESHOLD, Threshold, Verdict, check,
};
use std::process::ExitCode;

/// The exit codes, one per way a command ends.
pub mod exit {
    /// Everything ran, and every `--threshold` held.
    pub const SUCCESS: u8 = 0;
    /// A `--threshold` was breached, or the command failed (the message says which).
    pub const FAILURE: u8 = 1;
    /// Input that cannot be used (as clap's usage errors): nothing was run.
    pub const BAD_INPUT: u8 = 2;
    /// The run stopped early by itself (its time limit, a server gone); its folder is written.
    pub const INCOMPLETE: u8 = 3;
    /// The server broke a promise of the contract (report.json's `violations`); the run
    /// folder is written.
    pub const BROKEN_PROMISE: u8 = 4;
    /// The process was ready only after the run's common start (`--start-at`) and its grace
    /// period: it did not run, and wrote no run folder.
    pub const MISSED_START: u8 = 5;
    /// Interrupted by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM); the run
    /// folder is written.
    pub const SIGNALLED: u8 = 128;
}

/// How a command ended. A finished run's ending is the first of, in this order: interrupted,
/// stopped early, broken promises, thresholds breached, complete (`Ending::of_run`): what
/// happened to the run outranks what its figures say.
#[derive(Debug)]
pub enum Ending {
    /// Everything ran and every threshold held.
    Complete,
    /// These thresholds were breached (each as its verdict reads).
    Breached(Vec<String>),
    /// The server broke this many promises of the contract.
    BrokenPromises(usize),
    /// The run stopped early by itself, for this reason.
    StoppedEarly(String),
    /// A signal (its number) stopped the run.
    Interrupted(i32),
    /// The process missed the run's common start.
    MissedStart(String),
    /// Input refused before anything ran.
    BadInput(String),
    /// The command failed.
    Failed(anyhow::Error),
}

impl Ending {
    /// The ending of a finished run: its report's `stopped_because` (an interrupt by `signal`,
    /// SIGINT if none is known, or an early stop), its broken promises, then the `breached`
    /// thresholds. A run that a breached threshold stopped (`STOPPED_BY_THRESHOLD`) ended by
    /// that breach.
    pub fn of_run(report: &RunReport, signal: Option<i32>, breached: Vec<String>) -> Ending {
        match report.stopped_because.as_deref() {
            Some(INTERRUPTED) => Ending::Interrupted(signal.unwrap_or(2)),
            Some(why) if why.starts_with(STOPPED_BY_THRESHOLD) && !breached.is_empty() => {
                Ending::Breached(breached)
            }
            Some(why) => Ending::StoppedEarly(why.to_owned()),
            None if !report.violations.is_empty() => {
                Ending::BrokenPromises(report.violations.len())
            }
            None if !breached.is_empty() => Ending::Breached(breached),
            None => Ending::Complete,
        }
    }

    /// The process's exit code for this ending.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ending::Complete => exit::SUCCESS,
            Ending::Breached(_) | Ending::Failed(_) => exit::FAILURE,
            Ending::BadInput(_) => exit::BAD_INPUT,
            Ending::StoppedEarly(_) => exit::INCOMPLETE,
            Ending::BrokenPromises(_) => exit::BROKEN_PROMISE,
            Ending::MissedStart(_) => exit::MISSED_START,
            Ending::Interrupted(signo) => {
                u8::try_from(i32::from(exit::SIGNALLED) + signo).unwrap_or(exit::FAILURE)
            }
        }
    }

    /// What to tell the user, for every ending but a complete run.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Ending::Complete => return None,
            Ending::Breached(list) => {
                format!("{} threshold(s) breached: {}", list.len(), list.join("; "))
            }
            Ending::BrokenPromises(n) => format!(
                "the server broke {n} promise(s) of the contract: see violations in report.json"
            ),
            Ending::StoppedEarly(why) => {
                format!("the run stopped early: {why}; the report covers what was measured")
            }
            Ending::Interrupted(signo) => format!(
                "the run was interrupted by {}; the run folder holds what was measured",
                signal_name(*signo)
            ),
            Ending::MissedStart(why) | Ending::BadInput(why) => why.clone(),
            Ending::Failed(e) => format!("{e:#}"),
        })
    }

    /// Says how the command ended (on stderr, unless it completed) and gives its exit code.
    pub fn finish(self) -> ExitCode {
        if let Some(message) = self.message() {
            eprintln!("error: {message}");
        }
        ExitCode::from(self.exit_code())
    }
}

/// A failure that kept a command from ending by itself: input refused, or a missed start, by
/// the error's kind; anything else failed.
impl From<anyhow::Error> for Ending {
    fn from(e: anyhow::Error) -> Ending {
        if let Some(BadInput(why)) = e.downcast_ref::<BadInput>() {
            Ending::BadInput(why.clone())
        } else if let Some(MissedStart(why)) = e.downcast_ref::<MissedStart>() {
            Ending::MissedStart(why.clone())
        } else {
            Ending::Failed(e)
        }
    }
}

/// A command's result as its ending.
pub fn ending(result: anyhow::Result<Ending>) -> Ending {
    result.unwrap_or_else(Ending::from)
}

fn signal_name(signo: i32) -> String {
    match signo {
        2 => "SIGINT".to_owned(),
        15 => "SIGTERM".to_owned(),
        n => format!("signal {n}"),
    }
}

/// Judges `report` against `thresholds` (bare rules only over steps with `min_samples`),
/// prints every verdict under `heading` (when there are any), and gives the breached ones.
pub fn breached(
    (report, histograms): (&RunReport, Option<&RunHistograms>),
    thresholds: &[Threshold],
    min_samples: u64,
    heading: Option<&str>,
) -> Vec<String> {
    judged(&check(report, histograms, thresholds, min_samples), heading)
}

/// Prints `verdicts` under `heading` (when there are any) and gives the breached ones.
pub fn judged(verdicts: &[Verdict], heading: Option<&str>) -> Vec<String> {
    if verdicts.is_empty() {
        return Vec::new();
    }
    if let Some(heading) = heading {
        println!("{heading}");
    }
    let indent = if heading.is_some() { "  " } else { "" };
    for v in verdicts {
        println!("{indent}{v}");
    }
    verdicts
        .iter()
        .filter(|v| !v.passed)
        .map(Verdict::to_string)
        .collect()
}

/// Input refused before anything ran: ends `Ending::BadInput` (exit 2) instead of failing.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The process missed the run's common start: ends `Ending::MissedStart` (exit 5).
#[derive(Debug)]
pub struct MissedStart(pub String);

impl std::fmt::Display for MissedStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MissedStart {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_has_its_own_code() {
        let codes = [
            (Ending::Complete, 0),
            (Ending::Breached(vec!["p99".into()]), 1),
            (Ending::Failed(anyhow::anyhow!("boom")), 1),
            (Ending::BadInput("--x".into()), 2),
            (Ending::StoppedEarly("time limit".into()), 3),
            (Ending::BrokenPromises(1), 4),
            (Ending::MissedStart("late".into()), 5),
            (Ending::Interrupted(2), 130),
            (Ending::Interrupted(15), 143),
        ];
        for (ending, code) in codes {
            assert_eq!(ending.exit_code(), code, "{ending:?}");
        }
    }

    use otpfleet_reports::{Measured, RunKind, RunOf, Settings, ShardInfo, Violation};

    /// A finished run of `kind`: stopped for `stopped` if given, with `violations` broken
    /// promises.
    fn run(kind: RunKind, stopped: Option<&str>, violations: usize) -> RunReport {
        let run = RunOf {
            kind,
            seed: 1,
            shard: ShardInfo::WHOLE,
            target: "in-process reference server".into(),
            config: Settings::default(),
        };
        let violation = Violation {
            kind: "otp_redeemed_twice".into(),
            serials: vec!["A".into(), "B".into()],
            detail: "both signed in".into(),
        };
        RunReport::new(
            run,
            Measured {
                stopped_because: stopped.map(str::to_owned),
                violations: vec![violation; violations],
                ..Measured::default()
            },
        )
    }

    /// A case: its name, the finished run, the signal, the breached thresholds, the exit code.
    type Case = (&'static str, RunReport, Option<i32>, Vec<String>, u8);

    /// Every way a run command (fleet, rehearse, load, report merge) can end, with the exit code
    /// each ending gives: they all judge with `Ending::of_run`, so precedence is the same for
    /// each, however many things went wrong at once.
    #[test]
    fn every_run_command_ends_with_the_same_precedence() {
        let breached = || vec!["redeem.service.p99<1ms (measured 3ms)".to_owned()];
        let kinds = [RunKind::Fleet, RunKind::Rehearsal, RunKind::Load];
        for kind in kinds {
            let by_goose = format!("{STOPPED_BY_THRESHOLD} goose's --threshold p99<1 failed");
            let table: [Case; 11] = [
                (
                    "stopped by a breached threshold",
                    run(kind, Some(&by_goose), 0),
                    None,
                    breached(),
                    1,
                ),
                (
                    "stopped by a breach, a promise broken",
                    run(kind, Some(&by_goose), 1),
                    None,
                    breached(),
                    1,
                ),
                ("complete", run(kind, None, 0), None, vec![], 0),
                (
                    "a threshold breached",
                    run(kind, None, 0),
                    None,
                    breached(),
                    1,
                ),
                ("a broken promise", run(kind, None, 1), None, vec![], 4),
                (
                    "a broken promise and a breach",
                    run(kind, None, 2),
                    None,
                    breached(),
                    4,
                ),
                (
                    "stopped early",
                    run(kind, Some("time limit"), 0),
                    None,
                    vec![],
                    3,
                ),
                (
                    "stopped early, a promise broken",
                    run(kind, Some("time limit"), 1),
                    None,
                    breached(),
                    3,
                ),
                (
                    "interrupted by SIGINT",
                    run(kind, Some(INTERRUPTED), 0),
                    Some(2),
                    vec![],
                    130,
                ),
                (
                    "interrupted, a threshold breached",
                    run(kind, Some(INTERRUPTED), 0),
                    Some(2),
                    breached(),
                    130,
                ),
                (
                    "interrupted by SIGTERM, a promise broken",
                    run(kind, Some(INTERRUPTED), 1),
                    Some(15),
                    breached(),
                    143,
                ),
            ];
            for (case, report, signal, breached, code) in table {
                let ending = Ending::of_run(&report, signal, breached);
                assert_eq!(ending.exit_code(), code, "{kind:?}, {case}: {ending:?}");
                assert_eq!(ending.message().is_none(), code == 0, "{kind:?}, {case}");
            }
        }
    }

    #[test]
    fn a_typed_failure_keeps_its_kind_through_anyhow() {
        let bad: anyhow::Error = BadInput("--seed: not a number".into()).into();
        let bad = bad.context("while reading the flags");
        assert_eq!(Ending::from(bad).exit_code(), exit::BAD_INPUT);
        let late: anyhow::Error = MissedStart("ready after the start".into()).into();
        assert_eq!(Ending::from(late).exit_code(), exit::MISSED_START);
        assert_eq!(Ending::from(anyhow::anyhow!("io")).exit_code(), 1);
    }
}
