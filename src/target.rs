//! What the run commands share: the server a run drives (given, or the reference server started
//! in this process) and the run folder of an emulated run.

use anyhow::{Context as _, bail};
use otpfleet_emulator::reference::{self, EmbeddedServer};
use otpfleet_emulator::{ConsoleRecord, write_consoles_csv};
use otpfleet_reports::{Recorder, RunReport, write_run_folder};
use otpfleet_server::{ServerConfig, TokioClock};
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

/// The admin token in an `--admin-token-file`.
pub(crate) fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "while reading the admin token file {} (--admin-token-file)",
            path.display()
        )
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        bail!(
            "the admin token file {} (--admin-token-file) is empty: put the admin token in it",
            path.display()
        );
    }
    Ok(token)
}

/// The server to drive: `target` with its token, or the reference server started on
/// `127.0.0.1:0` (kept running while the answered handle lives). Answers URL and admin token.
pub(crate) async fn server(
    target: Option<&str>,
    token: Option<String>,
    poll_interval_s: u32,
) -> anyhow::Result<(String, String, Option<EmbeddedServer>)> {
    if let (Some(url), Some(token)) = (target, token) {
        return Ok((url.trim_end_matches('/').to_owned(), token, None));
    }
    let config = ServerConfig {
        poll_interval_s,
        ..ServerConfig::default()
    };
    let clock = Arc::new(TokioClock::new(crate::wall_clock_ms()));
    let server = reference::start(config, clock)
        .await
        .context("while starting the reference server")?;
    Ok((server.url(), server.admin_token.clone(), Some(server)))
}

/// Writes an emulated run's folder: the reports and `consoles.csv`.
pub(crate) fn write_emulated_run(
    out: &Path,
    report: &RunReport,
    recorder: &Recorder,
    consoles: &[ConsoleRecord],
) -> anyhow::Result<()> {
    write_run_folder(out, report, recorder)
        .with_context(|| format!("while writing the run folder {}", out.display()))?;
    let csv = out.join("consoles.csv");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&csv).with_context(|| format!("while writing {}", csv.display()))?,
    );
    write_consoles_csv(consoles, &mut file)?;
    file.flush()?;
    Ok(())
}
