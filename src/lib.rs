//! The `otpfleet` command line: a thin layer of clap over the workspace's crates. Every
//! subcommand is one function; the crates do the work.

mod serve;

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
}

/// Runs one subcommand; errors are printed with their causes and end in exit code 1.
pub fn run(opts: Opts) -> ExitCode {
    let result = match opts.command {
        Command::Serve(serve) => serve::run(serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
