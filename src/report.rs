//! `otpfleet report`: rebuild a run folder's pages, merge shard runs, compare two runs.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use otpfleet_reports::{
    Limits, compare, merge_run_folders, read_report, render_run_folder, report_path,
    write_comparison,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};

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
    Merge {
        /// The run folders of every shard.
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// The merged run folder to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Compare a new run against a baseline: a Markdown table on stdout; exit 1 when a limit
    /// is exceeded.
    Compare {
        /// The baseline run (folder or report.json).
        base: PathBuf,
        /// The new run (folder or report.json).
        new: PathBuf,
        /// Largest allowed increases, e.g. p99=10%,p50=20% (every step) or redeem.p99=5%
        /// (one step; time_to_signed_in for the whole flow). Only increases count.
        #[arg(long, value_name = "STAT=N%,...")]
        max_regression: Option<Limits>,
    },
}

pub fn run(opts: ReportOpts) -> anyhow::Result<()> {
    match opts.command {
        ReportCommand::Render { dir } => {
            let files = render_run_folder(&dir)?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(())
        }
        ReportCommand::Merge { dirs, out } => {
            let folder = merge_run_folders(&dirs, &out)?;
            eprintln!("merged {} runs into {}", dirs.len(), folder.dir.display());
            Ok(())
        }
        ReportCommand::Compare {
            base,
            new,
            max_regression,
        } => run_compare(&base, &new, &max_regression.unwrap_or_default()),
    }
}

fn run_compare(base: &Path, new: &Path, limits: &Limits) -> anyhow::Result<()> {
    let base_report = read_report(base)?;
    let new_report = read_report(new)?;
    let comparison = compare(&base_report, &new_report, limits).map_err(anyhow::Error::msg)?;
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
        bail!(
            "{} limit(s) exceeded: {}",
            comparison.regressions.len(),
            list.join("; ")
        );
    }
    Ok(())
}
