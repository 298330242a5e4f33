//! The `otpfleet` command line: a thin layer of clap over the workspace's crates. Every
//! subcommand is one function; the crates do the work.

mod admin_token;
mod audit;
mod dashboard;
pub mod fleet;
mod interrupt;
mod load;
mod metrics_listen;
mod otlp;
mod probe;
mod rehearse;
mod report;
mod serve;
mod summary;
mod target;
mod watchers;

pub use fleet::FleetOpts;
pub use probe::ProbeOpts;
pub use rehearse::RehearseOpts;
pub use serve::ServeOpts;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Simulation and load-testing harness for one-time-password setup of meeting-room consoles.
#[derive(Debug, Parser)]
#[command(name = "otpfleet", version, about, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference OTP server.
    Serve(ServeOpts),
    /// Run a fleet of virtual consoles and admins against a server.
    Fleet(Box<FleetOpts>),
    /// Rehearse a rollout plan in simulated time.
    Rehearse(RehearseOpts),
    /// Measure the generator: hammer one stateless route with the emulator's request path.
    Probe(ProbeOpts),
    /// Work with run folders: render their pages, merge shard runs, compare two runs.
    Report(report::ReportOpts),
    /// Run a goose load scenario (issue, redeem, approve, mixed) against a server.
    Load(load::LoadOpts),
    /// List, add and revoke the admin tokens of a data directory.
    AdminToken(admin_token::AdminTokenOpts),
    /// Check the audit log of a data directory.
    Audit(audit::AuditOpts),
}

/// Runs one subcommand; errors are printed with their causes and end in the exit code of their
/// kind (see the `exit` module).
pub fn run(opts: Opts) -> ExitCode {
    let result = match opts.command {
        Command::Serve(serve) => serve::run(serve),
        Command::Fleet(fleet) => fleet::run(*fleet),
        Command::Rehearse(rehearse) => rehearse::run(rehearse),
        Command::Probe(probe) => probe::run(probe),
        Command::Report(report) => report::run(report),
        Command::Load(load) => load::run(load),
        Command::AdminToken(opts) => admin_token::run(opts),
        Command::Audit(opts) => audit::run(opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code(&e))
        }
    }
}

/// The exit codes, one per way a command ends (documented in the README).
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
    /// Interrupted: 128 + the signal's number, 130 for SIGINT and 143 for SIGTERM; the run
    /// folder is written.
    pub const INTERRUPTED_SIGINT: u8 = 130;

    /// The exit code of an error.
    pub(crate) fn code(e: &anyhow::Error) -> u8 {
        if e.is::<super::BadInput>() {
            BAD_INPUT
        } else if let Some(i) = e.downcast_ref::<super::interrupt::Interrupted>() {
            u8::try_from(128 + i.0).unwrap_or(FAILURE)
        } else if e.is::<super::interrupt::Incomplete>() {
            INCOMPLETE
        } else if e.is::<super::BrokenPromise>() {
            BROKEN_PROMISE
        } else if e.is::<super::MissedStart>() {
            MISSED_START
        } else {
            FAILURE
        }
    }
}

/// Input refused before anything ran: exits with `exit::BAD_INPUT` instead of 1 (a failure or a
/// breached limit).
#[derive(Debug)]
pub(crate) struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The server broke promises of the contract (this many): exits `exit::BROKEN_PROMISE`.
#[derive(Debug)]
pub(crate) struct BrokenPromise(pub usize);

impl std::fmt::Display for BrokenPromise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server broke {} promise(s) of the contract: see violations in report.json",
            self.0
        )
    }
}

impl std::error::Error for BrokenPromise {}

/// The process missed the run's common start: exits `exit::MISSED_START`.
#[derive(Debug)]
pub(crate) struct MissedStart(pub String);

impl std::fmt::Display for MissedStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MissedStart {}

/// Milliseconds since the Unix epoch: the wall clock, read only at the edge of the program.
pub(crate) fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
