//! `otpfleet report`: rebuild a run folder's pages, merge shard runs, compare two runs.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use otpfleet_reports::{
    DEFAULT_LIMITS, DEFAULT_MIN_SAMPLES, DEFAULT_NOISE_FLOORS, Limits, NoiseFloors, Threshold,
    compare, merge_run_folders, read_report, render_run_folder, report_path, write_comparison,
    write_comparison_json,
};
use otpfleet_run::{Ending, RunConfig};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ReportOpts {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ReportCommand {
    /// Rebuild report.md and report.html of a run folder from its report.json and histograms.
    Render {
        /// The run folder.
        dir: PathBuf,
    },
    /// Merge the shard runs of one fleet (--shard K/N) into the run folder of the whole:
    /// histograms added without loss, counts summed.
    /// Then the merged run's verdict, as `fleet` gives it: exit 3 when a shard stopped early,
    /// 4 when the server broke a promise, 1 when a --threshold is breached.
    Merge {
        /// The run folders of every shard (and of the admin process of a split run).
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// The merged run folder to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Wait up to this long for every run folder's report.json (written last, so a folder
        /// that has it is complete): shards still running on a shared volume, seconds.
        #[arg(long, default_value_t = 0, value_name = "S")]
        wait_s: u64,
        /// A limit the merged run must meet, as fleet's --threshold (repeatable).
        #[arg(long, value_name = "EXPR")]
        threshold: Vec<Threshold>,
    },
    /// Compare a new run against a baseline: a Markdown table on stdout; exit 1 when a limit
    /// is exceeded.
    Compare {
        /// The baseline run (folder or report.json).
        base: PathBuf,
        /// The new run (folder or report.json).
        new: PathBuf,
        /// Largest allowed changes: a latency may rise by N% (p99=10% for every step,
        /// redeem.p50=20% for one; the service view unless response. or lateness. is named),
        /// requests per second fall by N% (rps=-10%), an error rate or an outcome's share rise
        /// by N percentage points (error-rate=+0.5pp, expired=+1pp).
        #[arg(long, value_name = "LIMIT,...", default_value = DEFAULT_LIMITS)]
        max_regression: Limits,
        /// Latency rises smaller than these are noise, whatever their percentage, per statistic
        /// on every view (p50=20us,p99=2ms sets those two and keeps the other defaults; none
        /// for no floor). The defaults hold two runs of one seed on a busy 2-core machine.
        #[arg(long, value_name = "STAT=TIME,...", default_value = DEFAULT_NOISE_FLOORS)]
        noise_floor: NoiseFloors,
        /// Steps with fewer samples than this in either run are not gated (and the table
        /// says so).
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SAMPLES)]
        min_samples: u64,
        /// Also write the comparison as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Judge one run against absolute limits (goose's threshold syntax with otpfleet's names):
    /// exit 1 when one is breached.
    Check {
        /// The run (folder or report.json).
        dir: PathBuf,
        /// A limit, e.g. redeem.service.p99<5ms, p99<20ms (every step with enough samples),
        /// error-rate<0.1%, outcomes.expired<1%, rps>1000, time_to_signed_in.p99<30s. A time
        /// without a unit is in ms, as in goose (repeatable).
        #[arg(long, value_name = "EXPR", required = true)]
        threshold: Vec<Threshold>,
        /// A bare rule (p99<20ms) judges only steps with at least this many samples.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_SAMPLES)]
        min_samples: u64,
    },
}

pub fn run(opts: ReportOpts) -> anyhow::Result<Ending> {
    match opts.command {
        ReportCommand::Render { dir } => {
            let files = render_run_folder(&dir).map_err(|e| no_run_there(&dir, e))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(Ending::Complete)
        }
        ReportCommand::Merge {
            dirs,
            out,
            wait_s,
            threshold,
        } => {
            otpfleet_run::folder::wait_for_reports(&dirs, Duration::from_secs(wait_s))?;
            let (folder, report) = merge_run_folders::<RunConfig>(&dirs, &out, &threshold)?;
            eprintln!("merged {} runs into {}", dirs.len(), folder.dir.display());
            Ok(otpfleet_run::summary::verdict(&report, &folder.dir, None))
        }
        ReportCommand::Compare {
            base,
            new,
            max_regression,
            noise_floor,
            min_samples,
            json,
        } => {
            let rules = (&max_regression, &noise_floor, min_samples);
            run_compare(&base, &new, rules, json.as_deref()).map(|()| Ending::Complete)
        }
        ReportCommand::Check {
            dir,
            threshold,
            min_samples,
        } => run_check(&dir, &threshold, min_samples),
    }
}

/// A finished run judged against `thresholds` alone (how the run itself ended is its own
/// command's verdict): the same judgement as a run's.
fn run_check(dir: &Path, thresholds: &[Threshold], min_samples: u64) -> anyhow::Result<Ending> {
    let report = read_report(dir).map_err(|e| no_run_there(dir, e))?;
    // The run's histograms, read only for a percentile report.json does not hold.
    let wanted = thresholds
        .iter()
        .any(|t| matches!(t.metric, otpfleet_reports::Metric::Percentile { .. }));
    let file = report_path(dir);
    let folder = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let histograms = if wanted {
        let read = otpfleet_reports::RunHistograms::read_dir(folder);
        Some(read.context("a percentile report.json does not hold is read from the run's logs")?)
    } else {
        None
    };
    let judged = (&report, histograms.as_ref());
    let breached = otpfleet_run::breached(judged, thresholds, min_samples, None);
    if breached.is_empty() {
        return Ok(Ending::Complete);
    }
    Ok(Ending::Breached(breached))
}

/// A folder (or file) given as a run that holds none is bad input, said with what to give.
fn no_run_there(given: &Path, e: otpfleet_reports::ReportError) -> anyhow::Error {
    match &e {
        otpfleet_reports::ReportError::Read { reason, .. }
            if reason.kind() == std::io::ErrorKind::NotFound =>
        {
            otpfleet_run::BadInput(format!(
                "{}: no report.json there: give a run folder that fleet, load or rehearse wrote \
                 (or its report.json)",
                given.display()
            ))
            .into()
        }
        _ => e.into(),
    }
}

fn run_compare(
    base: &Path,
    new: &Path,
    (limits, floors, min_samples): (&Limits, &NoiseFloors, u64),
    json: Option<&Path>,
) -> anyhow::Result<()> {
    let base_report = read_report(base).map_err(|e| no_run_there(base, e))?;
    let new_report = read_report(new).map_err(|e| no_run_there(new, e))?;
    let comparison = compare(&base_report, &new_report, limits, floors, min_samples)
        .map_err(otpfleet_run::BadInput)?;
    if let Some(path) = json {
        otpfleet_reports::write_whole(path, |out| write_comparison_json(&comparison, out))
            .with_context(|| format!("while writing {}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    write_comparison(
        &comparison,
        &report_path(base).display().to_string(),
        &report_path(new).display().to_string(),
        &mut stdout,
    )
    .and_then(|()| stdout.flush())
    .context("while writing the comparison")?;
    if !comparison.within_limits() {
        let list: Vec<String> = comparison
            .regressions
            .iter()
            .map(ToString::to_string)
            .collect();
        let machine = otpfleet_reports::machine_note(&comparison)
            .map(|note| format!("\n{note}"))
            .unwrap_or_default();
        bail!(
            "{} limit(s) exceeded: {}{machine}",
            comparison.regressions.len(),
            list.join("; ")
        );
    }
    Ok(())
}
