//! The `otpfleet` command line: a thin layer of clap over the workspace's crates. Every
//! subcommand is one function; the crates do the work.

mod admin_token;
mod audit;
mod db;
pub mod fleet;
mod load;
mod probe;
mod rehearse;
mod report;
mod serve;
mod simulate;

pub use fleet::FleetOpts;
pub use probe::ProbeOpts;
pub use rehearse::RehearseOpts;
pub use serve::ServeOpts;

use clap::{Parser, Subcommand};
use otpfleet_run::Ending;
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
    /// Work with run folders: render their pages, merge shard runs, compare two runs, check one
    /// against limits.
    Report(report::ReportOpts),
    /// Run a goose load scenario (issue, redeem, approve, mixed) against a server.
    Load(load::LoadOpts),
    /// List, add and revoke the admin tokens of a data directory.
    AdminToken(admin_token::AdminTokenOpts),
    /// Check the audit log of a data directory.
    Audit(audit::AuditOpts),
    /// Create or migrate the schema of a PostgreSQL store, or check its version.
    Db(db::DbOpts),
    /// Prove crash safety by simulation: the reference server on a simulated disk, driven by a
    /// fleet in simulated time, crashed at seeded moments, every promise checked after every
    /// start.
    Simulate(simulate::SimulateOpts),
}

/// The runtime of a subcommand that only waits on a few calls (a database, a data directory).
fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")
}

/// Runs one subcommand and ends as it ended (`otpfleet_run::Ending`: its message on stderr
/// and its exit code).
pub fn run(opts: Opts) -> ExitCode {
    let result = match opts.command {
        Command::Serve(serve) => serve::run(serve).map(|()| Ending::Complete),
        Command::Fleet(fleet) => fleet::run(*fleet),
        Command::Rehearse(rehearse) => rehearse::run(rehearse),
        Command::Probe(probe) => probe::run(probe).map(|()| Ending::Complete),
        Command::Report(report) => report::run(report),
        Command::Load(load) => load::run(load),
        Command::AdminToken(opts) => admin_token::run(opts).map(|()| Ending::Complete),
        Command::Audit(opts) => audit::run(opts).map(|()| Ending::Complete),
        Command::Db(opts) => db::run(opts).map(|()| Ending::Complete),
        Command::Simulate(opts) => simulate::run(opts),
    };
    otpfleet_run::ending(result).finish()
}
