//! The `otpfleet` command: parse the command line, run one subcommand.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    otpfleet::run(otpfleet::Opts::parse())
}
