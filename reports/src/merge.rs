//! `otpfleet report merge`: the shard runs of one fleet added up into the report of the whole.
//!
//! Histograms are added (HdrHistogram addition: no precision lost), so every latency summary of
//! the merged report is recomputed from the merged histograms, never averaged. Counts (consoles,
//! outcomes, faults, errors) are summed. Runs that are not shards of one run are refused: another
//! kind, seed, build or configuration (anything but the shard and the role), or a shard given
//! twice or missing. A split run (`--role consoles` shards and one `--role admins` process) needs
//! every console shard and its one admin process; a process of role `all` brings its own admins,
//! so it does not mix with a split run.

use crate::error::ReportError;
use crate::folder::{RunFolder, write_run_folder};
use crate::histograms::{StepCounts, View};
use crate::render::read_run_folder;
use crate::report::{
    Faults, Measured, MergedFrom, Outcomes, Role, RunKind, RunOf, RunReport, Settings, ShardInfo,
    TimelinePoint,
};
use crate::run_histograms::{RunHistograms, TIME_TO_SIGNED_IN};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings of a run as a merge needs them, read typed from each shard's report by the
/// one that knows their type (`otpfleet_run::RunConfig`).
pub trait ShardSettings: serde::Serialize + PartialEq + Sized {
    /// The settings of a report of `kind`.
    fn read(kind: RunKind, settings: &Settings) -> Result<Self, String>;
    /// The whole run's settings (every shard, role all), with `admins` admins when given.
    fn whole(&self, admins: Option<u32>) -> Self;
    /// Whether requests are approved automatically (a split run needs no admin process then).
    fn auto_approve(&self) -> bool;
}

/// Most shard runs one merge takes (the fleet's own bound on `--shard K/N`).
pub const MAX_SHARDS: usize = 10_000;

/// One shard's run folder, read.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub dir: PathBuf,
    pub report: RunReport,
    pub histograms: RunHistograms,
}

/// Reads shard run folders, checking that each one's histogram logs hold what its report counts.
pub fn read_shards(dirs: &[PathBuf]) -> Result<Vec<ShardRun>, ReportError> {
    if dirs.is_empty() || dirs.len() > MAX_SHARDS {
        return Err(ReportError::Shards(format!(
            "give from 1 to {MAX_SHARDS} run folders to merge (got {})",
            dirs.len()
        )));
    }
    dirs.iter()
        .map(|dir| {
            let (report, histograms) = read_run_folder(dir)?;
            check_logs_match_report(dir, &report, &histograms)?;
            Ok(ShardRun {
                dir: dir.clone(),
                report,
                histograms,
            })
        })
        .collect()
}

/// Merges the shard run folders `dirs` into a new run folder `out`: the folder and its report.
pub fn merge_run_folders<C: ShardSettings>(
    dirs: &[PathBuf],
    out: &Path,
    thresholds: &[crate::Threshold],
) -> Result<(RunFolder, RunReport), ReportError> {
    for dir in dirs {
        if same_place(dir, out) {
            return Err(ReportError::Shards(format!(
                "the output folder {} is one of the runs to merge: give another --out",
                out.display()
            )));
        }
    }
    let shards = read_shards(dirs)?;
    let (mut report, histograms) = merge_runs::<C>(&shards)?;
    report.thresholds = crate::check::check(
        &report,
        Some(&histograms),
        thresholds,
        crate::DEFAULT_MIN_SAMPLES,
    );
    let folder =
        write_run_folder(out, &report, &histograms, None).map_err(|source| ReportError::Write {
            path: out.to_path_buf(),
            reason: source,
        })?;
    Ok((folder, report))
}

/// Merges shard runs that belong together into the report and histograms of the whole run.
pub fn merge_runs<C: ShardSettings>(
    shards: &[ShardRun],
) -> Result<(RunReport, RunHistograms), ReportError> {
    if shards.is_empty() {
        return Err(ReportError::Shards("no run folders to merge".into()));
    }
    let settings = shards
        .iter()
        .map(|s| {
            C::read(s.report.kind, &s.report.config)
                .map_err(|e| ReportError::Shards(format!("{}: {e}", s.dir.display())))
        })
        .collect::<Result<Vec<C>, ReportError>>()?;
    check_roles(shards, &settings)?;
    for i in 1..shards.len() {
        check_belongs((&shards[0], &settings[0]), (&shards[i], &settings[i]))?;
    }
    let consoles: Vec<&ShardRun> = shards
        .iter()
        .filter(|s| s.report.shard.role.runs_consoles())
        .collect();
    check_shards_cover_the_run(&consoles)?;
    if shards.len() > 1 && shards.iter().any(|s| s.report.rehearsal.is_some()) {
        return Err(ReportError::Shards(
            "rehearsal findings (waves, suggestions) cannot be added up from shards: rehearse \
             the whole plan in one run (simulated time makes that fast)"
                .into(),
        ));
    }
    let mut histograms = RunHistograms::default();
    for shard in shards {
        histograms
            .add(&shard.histograms)
            .map_err(|message| ReportError::Hlog {
                path: shard.dir.clone(),
                message,
            })?;
    }
    let report = merged_report(shards, &settings, histograms.clone())?;
    Ok((report, histograms))
}

/// The shards' arrivals added interval by interval (shards share the schedule's intervals).
fn sum_arrivals(reports: &[&RunReport]) -> Vec<crate::report::ArrivalPoint> {
    let mut by_start: BTreeMap<u64, crate::report::ArrivalPoint> = BTreeMap::new();
    for p in reports.iter().flat_map(|r| &r.arrivals) {
        let key = (p.start_s * 1000.0).round() as u64;
        let sum = by_start.entry(key).or_insert(crate::report::ArrivalPoint {
            intended: 0,
            started: 0,
            dropped: 0,
            late_ms_max: 0,
            ..p.clone()
        });
        sum.intended += p.intended;
        sum.started += p.started;
        sum.dropped += p.dropped;
        sum.late_ms_max = sum.late_ms_max.max(p.late_ms_max);
    }
    by_start.into_values().collect()
}

/// Why shards stopped early, each named by its folder.
fn stopped_because(shards: &[ShardRun]) -> Option<String> {
    let stopped: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            let why = s.report.stopped_because.as_ref()?;
            Some(format!("shard {}: {why}", s.dir.display()))
        })
        .collect();
    (!stopped.is_empty()).then(|| stopped.join("; "))
}

/// The shards merged, in shard order.
fn merged_from(shards: &[ShardRun]) -> Vec<MergedFrom> {
    let mut merged_from: Vec<MergedFrom> = shards
        .iter()
        .map(|s| MergedFrom {
            dir: s.dir.display().to_string(),
            seed: s.report.seed,
            shard: s.report.shard,
        })
        .collect();
    merged_from.sort_by_key(|m| m.shard.index);
    merged_from
}

/// The shards' request counts added step by step.
fn step_counts(reports: &[&RunReport]) -> BTreeMap<String, StepCounts> {
    let mut counts: BTreeMap<String, StepCounts> = BTreeMap::new();
    for (step, t) in reports.iter().flat_map(|r| &r.throughput.steps) {
        counts.entry(step.clone()).or_default().add(&t.counts);
    }
    counts
}

fn merged_report<C: ShardSettings>(
    shards: &[ShardRun],
    settings: &[C],
    histograms: RunHistograms,
) -> Result<RunReport, ReportError> {
    let reports: Vec<&RunReport> = shards.iter().map(|s| &s.report).collect();
    let first = reports[0];
    let over_time = if first.over_time.is_empty() {
        Vec::new()
    } else {
        histograms.points().map_err(|message| ReportError::Hlog {
            path: shards[0].dir.clone(),
            message,
        })?
    };
    let longest = |f: fn(&RunReport) -> f64| reports.iter().map(|r| f(r)).fold(0.0, f64::max);
    let run = RunOf {
        kind: first.kind,
        seed: first.seed,
        shard: ShardInfo::WHOLE,
        target: targets(&reports),
        config: merged_config(shards, settings),
    };
    let measured = Measured {
        consoles: reports.iter().map(|r| r.consoles).sum(),
        stopped_because: stopped_because(shards),
        outcomes: reports
            .iter()
            .fold(Outcomes::default(), |a, r| add_outcomes(&a, &r.outcomes)),
        faults: reports
            .iter()
            .fold(Faults::default(), |a, r| add_faults(&a, &r.faults)),
        errors: sum_errors(&reports),
        violations: reports.iter().flat_map(|r| r.violations.clone()).collect(),
        arrivals: sum_arrivals(&reports),
        histograms,
        counts: step_counts(&reports),
        // Shards run side by side: the whole run's rates are its requests over the longest.
        measured_s: longest(|r| r.throughput.measured_s),
        over_time,
        signed_in_over_range: reports
            .iter()
            .map(|r| r.time_to_signed_in_s.over_range)
            .sum(),
        duration_s: longest(|r| r.duration_s),
    };
    let mut report = RunReport::new(run, measured);
    report.otpfleet_version = first.otpfleet_version.clone();
    report.timeline = sum_timelines(&reports);
    report.rehearsal = first.rehearsal.clone().filter(|_| reports.len() == 1);
    report.merged_from = merged_from(shards);
    // Each shard's folder says where and when it ran (`meta`).
    Ok(report)
}

/// Shards of one run share kind, seed, build, schema, shard count and every setting but the
/// shard itself.
fn check_belongs<C: ShardSettings>(
    (first, first_settings): (&ShardRun, &C),
    (other, other_settings): (&ShardRun, &C),
) -> Result<(), ReportError> {
    let (a, b) = (&first.report, &other.report);
    let difference = if a.kind != b.kind {
        Some(format!("a {:?} run, not a {:?} run", b.kind, a.kind))
    } else if a.seed != b.seed {
        Some(format!("seed {}, not {}", b.seed, a.seed))
    } else if a.otpfleet_version != b.otpfleet_version {
        Some(format!(
            "written by otpfleet {}, not {}",
            b.otpfleet_version, a.otpfleet_version
        ))
    } else if a.schema_version != b.schema_version {
        Some(format!(
            "report schema {}, not {}",
            b.schema_version, a.schema_version
        ))
    } else if a.shard.count != b.shard.count
        && a.shard.role != Role::Admins
        && b.shard.role != Role::Admins
    {
        Some(format!(
            "one of {} shards, not of {}",
            b.shard.count, a.shard.count
        ))
    } else {
        let (a, b) = (comparable(a, first_settings), comparable(b, other_settings));
        (a != b).then(|| {
            let mut diffs = Vec::new();
            json_differences("", &Settings::of(&a).0, &Settings::of(&b).0, &mut diffs);
            format!("other settings: {}", diffs.join(", "))
        })
    };
    match difference {
        None => Ok(()),
        Some(difference) => Err(ReportError::Mismatch {
            dir: other.dir.clone(),
            first: first.dir.clone(),
            difference,
        }),
    }
}

/// A split run has console shards and one admin process (none with auto approval); a process
/// of role `all` runs its own admins, so it is not part of one.
fn check_roles<C: ShardSettings>(shards: &[ShardRun], settings: &[C]) -> Result<(), ReportError> {
    let of = |role: Role| shards.iter().filter(move |s| s.report.shard.role == role);
    let split = of(Role::Consoles).chain(of(Role::Admins)).next();
    if let (Some(whole), Some(part)) = (of(Role::All).next(), split) {
        return Err(ReportError::Shards(format!(
            "{} ran its own admins (role all) but {} is part of a split run (role {}): merge \
             the folders of one run",
            whole.dir.display(),
            part.dir.display(),
            part.report.shard.role
        )));
    }
    let admins: Vec<&ShardRun> = of(Role::Admins).collect();
    if let [first, second, ..] = admins.as_slice() {
        return Err(ReportError::Shards(format!(
            "two admin processes (role admins) are given: {} and {}; a split run has one",
            first.dir.display(),
            second.dir.display()
        )));
    }
    if of(Role::Consoles).next().is_none() && !admins.is_empty() {
        return Err(ReportError::Shards(
            "only the admin process (role admins) is given: add the folder of every console \
             shard (role consoles)"
                .into(),
        ));
    }
    let auto_approve = settings[0].auto_approve();
    if let Some(console) = of(Role::Consoles).next()
        && admins.is_empty()
        && !auto_approve
    {
        return Err(ReportError::Shards(format!(
            "the admin process (role admins) of the split run is missing: its console shards \
             (e.g. {}) ran no admins; give its run folder too",
            console.dir.display()
        )));
    }
    Ok(())
}

fn check_shards_cover_the_run(shards: &[&ShardRun]) -> Result<(), ReportError> {
    let count = shards[0].report.shard.count;
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        let index = s.report.shard.index;
        if index >= count {
            return Err(ReportError::Shards(format!(
                "{} claims shard {index}/{count}, which does not exist",
                s.dir.display()
            )));
        }
        if let Some(earlier) = seen.insert(index, &s.dir) {
            return Err(ReportError::Shards(format!(
                "shard {index}/{count} is given twice: {} and {}",
                earlier.display(),
                s.dir.display()
            )));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains_key(i))
        .take(10)
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(ReportError::Shards(format!(
            "shard {} missing: give the run folder of every shard of the run (seed {})",
            missing.join(", "),
            shards[0].report.seed
        )));
    }
    Ok(())
}

/// A step whose report counts values its histogram log does not hold cannot be recomputed.
fn check_logs_match_report(
    dir: &Path,
    report: &RunReport,
    histograms: &RunHistograms,
) -> Result<(), ReportError> {
    let mut expected: Vec<(String, u64, u64)> = Vec::new();
    for (step, latency) in &report.latency_us {
        for view in View::ALL {
            let held = histograms.view(step, view).map_or(0, Histogram::len);
            let file = format!("{step}.{}.hlog", view.as_str());
            expected.push((file, held, latency.get(view).count));
        }
    }
    let held = histograms.time_to_signed_in().map_or(0, Histogram::len);
    expected.push((
        format!("{TIME_TO_SIGNED_IN}.hlog"),
        held,
        report.time_to_signed_in_s.count,
    ));
    for (file, held, counted) in expected {
        if held != counted {
            return Err(ReportError::Hlog {
                path: dir.join(file),
                message: format!(
                    "holds {held} values but report.json counts {counted}: the histogram logs \
                     do not belong to this report (or are missing), so the run cannot be merged \
                     without loss"
                ),
            });
        }
    }
    Ok(())
}

/// What the processes of one run must agree on: the whole run's settings, but the number of
/// admins where a process's role makes it its own (a console shard runs none).
fn comparable<C: ShardSettings>(report: &RunReport, settings: &C) -> C {
    let own_admins = report.shard.role != Role::All;
    settings.whole(own_admins.then_some(0))
}

/// The merged run's settings: the whole run's, with the admins of its admin process.
fn merged_config<C: ShardSettings>(shards: &[ShardRun], settings: &[C]) -> Settings {
    let admins = shards
        .iter()
        .position(|s| s.report.shard.role == Role::Admins);
    Settings::of(&settings[admins.unwrap_or(0)].whole(None))
}

/// Paths where two JSON values differ (`rates.typo is 0.1 (not 0.05)`), at most 5.
fn json_differences(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    if out.len() >= 5 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (va, vb) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                json_differences(&sub, va, vb, out);
            }
        }
        _ => out.push(format!("{path} is {b} (not {a})")),
    }
}

fn targets(reports: &[&RunReport]) -> String {
    let mut targets: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    targets.join(", ")
}

fn add_outcomes(a: &Outcomes, b: &Outcomes) -> Outcomes {
    // A struct literal, so that a new outcome cannot be forgotten here.
    Outcomes {
        signed_in_otp: a.signed_in_otp + b.signed_in_otp,
        signed_in_manual: a.signed_in_manual + b.signed_in_manual,
        rejected: a.rejected + b.rejected,
        expired: a.expired + b.expired,
        verification_failed: a.verification_failed + b.verification_failed,
        abandoned: a.abandoned + b.abandoned,
        dropped: a.dropped + b.dropped,
        not_started: a.not_started + b.not_started,
    }
}

fn add_faults(a: &Faults, b: &Faults) -> Faults {
    Faults {
        hdmi_ingest_missing: a.hdmi_ingest_missing + b.hdmi_ingest_missing,
        hdmi_recovered: a.hdmi_recovered + b.hdmi_recovered,
        uncertified: a.uncertified + b.uncertified,
        otp_typos: a.otp_typos + b.otp_typos,
        manual_setup: a.manual_setup + b.manual_setup,
        late_installers: a.late_installers + b.late_installers,
        network_faults: a.network_faults + b.network_faults,
        slow_downs: a.slow_downs + b.slow_downs,
    }
}

fn sum_errors(reports: &[&RunReport]) -> BTreeMap<String, u64> {
    let mut errors = BTreeMap::new();
    for (kind, n) in reports.iter().flat_map(|r| &r.errors) {
        *errors.entry(kind.clone()).or_insert(0) += n;
    }
    errors
}

/// Shards of a rehearsal share its simulated clock, so their hours line up and counts add. A
/// shard that ended earlier stays as it was at its last hour.
fn sum_timelines(reports: &[&RunReport]) -> Vec<TimelinePoint> {
    let mut hours: Vec<&TimelinePoint> = reports.iter().flat_map(|r| &r.timeline).collect();
    hours.sort_by_key(|p| p.hour);
    hours.dedup_by_key(|p| p.hour);
    hours
        .into_iter()
        .map(|at| {
            let mut sum = TimelinePoint {
                signed_in: 0,
                awaiting_approval: 0,
                expired: 0,
                in_verification: 0,
                ..at.clone()
            };
            for r in reports {
                if let Some(p) = r.timeline.iter().rev().find(|p| p.hour <= at.hour) {
                    sum.signed_in += p.signed_in;
                    sum.awaiting_approval += p.awaiting_approval;
                    sum.expired += p.expired;
                    sum.in_verification += p.in_verification;
                }
            }
            sum
        })
        .collect()
}

fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
