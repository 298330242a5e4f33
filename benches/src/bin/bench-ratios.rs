//! Prints the figures of `docs/performance.md` from the last criterion run: each bench as a
//! ratio to the reference measured in the same run, against its target.
//!
//! `cargo run -p otpfleet-benches --bin bench-ratios [CRITERION_DIR]` (default
//! `target/criterion`). Exit status 0 even when a target is missed: the targets are goals to
//! report on, the regression gate is `scripts/perf-gate`.

use otpfleet_benches::ratios;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/criterion"), PathBuf::from);
    match ratios::read_criterion(&dir) {
        Ok(estimates) => {
            let computed = ratios::ratios(&estimates);
            print!("{}", ratios::table(&computed, &estimates));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-ratios: {e}");
            ExitCode::from(2)
        }
    }
}
