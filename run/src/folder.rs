//! The one writer of a run folder: every file, the consoles' `consoles.csv` of an emulated
//! run included, and `report.json` last (see `otpfleet_reports::write_run_folder`).

use anyhow::{Context as _, bail};
use otpfleet_emulator::{ConsoleRecord, write_consoles_csv};
use otpfleet_reports::{RunFolder, RunHistograms, RunReport, report_path, write_run_folder};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes the run folder `out` of `report`: its `histograms`, and `consoles.csv` when the run
/// has the `consoles`' records (a fleet, a rehearsal).
pub fn write(
    out: &Path,
    report: &RunReport,
    histograms: &RunHistograms,
    consoles: Option<&[ConsoleRecord]>,
) -> anyhow::Result<RunFolder> {
    let mut csv = |w: &mut dyn std::io::Write| write_consoles_csv(consoles.unwrap_or_default(), w);
    let extra = consoles.map(|_| ("consoles.csv", &mut csv as _));
    write_run_folder(out, report, histograms, extra)
        .with_context(|| format!("while writing the run folder {}", out.display()))
}

/// Waits until every run folder in `dirs` has its report.json, or `patience` has passed (then
/// the merge names what is missing).
pub fn wait_for_reports(dirs: &[PathBuf], patience: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        let missing: Vec<String> = dirs
            .iter()
            .filter(|d| !report_path(d).is_file())
            .map(|d| d.display().to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= patience {
            if patience.is_zero() {
                return Ok(());
            }
            bail!(
                "after {} s, {} of {} run folders have no report.json: {} (a process that \
                 failed or never ran writes none: see its log)",
                waited.as_secs(),
                missing.len(),
                dirs.len(),
                missing.join(", ")
            );
        }
        if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
            said = Some(Instant::now());
            eprintln!(
                "merge: waiting for {} of {} run folders: {}",
                missing.len(),
                dirs.len(),
                missing.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
