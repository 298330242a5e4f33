//! `otpfleet simulate`: crash safety by simulation. The reference server on a simulated disk,
//! driven by a fleet in simulated time, crashed and started again at seeded moments, every
//! promise checked after every start (`otpfleet_emulator::simulate`).

use anyhow::anyhow;
use clap::Args;
use otpfleet_emulator::simulate::{SimOptions, Survived, simulate};
use otpfleet_run::{BadInput, Ending};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct SimulateOpts {
    /// Run this one seed (a failure prints the seed that replays it, byte for byte). Without
    /// it, fresh seeds run until `--minutes` have passed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Wall-clock minutes to spend on fresh seeds (the seed under way finishes).
    #[arg(long, default_value_t = 1.0, value_name = "M")]
    pub minutes: f64,
    /// Consoles of each seed's fleet (they arrive over a simulated minute).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub consoles: u64,
}

/// Most consoles of one seed's fleet: a seed is a few seconds of work, not a load test.
const MAX_CONSOLES: u64 = 10_000;

pub fn run(opts: SimulateOpts) -> anyhow::Result<Ending> {
    if !(opts.minutes.is_finite() && opts.minutes > 0.0 && opts.minutes <= 24.0 * 60.0) {
        return Err(BadInput(format!(
            "--minutes {} is not a duration: give minutes above 0, at most a day (1440)",
            opts.minutes
        ))
        .into());
    }
    if !(1..=MAX_CONSOLES).contains(&opts.consoles) {
        return Err(BadInput(format!(
            "--consoles {} is out of range: give 1 to {MAX_CONSOLES}",
            opts.consoles
        ))
        .into());
    }
    let budget = Duration::from_secs_f64(opts.minutes * 60.0);
    let started = Instant::now();
    let mut total = Survived::default();
    let mut seeds = 0u64;
    loop {
        let seed = opts.seed.unwrap_or_else(otpfleet_run::random_seed);
        let sim = SimOptions {
            seed,
            consoles: opts.consoles,
            planted: None,
        };
        let s = simulate(&sim).map_err(|broken| anyhow!("a promise broke: {broken}"))?;
        seeds += 1;
        println!(
            "seed {seed}: {} crashes survived ({} more while recovering), {} recoveries without a \
             crash, {} torn writes, {} I/O faults, {} changes acknowledged, {} of {} consoles \
             signed in, {:.0} simulated s",
            s.crashes,
            s.crashes_in_recovery,
            s.recoveries,
            s.disk.torn_writes,
            s.disk.io_errors,
            s.acknowledged,
            s.signed_in,
            opts.consoles,
            s.simulated_ms as f64 / 1000.0
        );
        add(&mut total, &s);
        if opts.seed.is_some() || started.elapsed() >= budget {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let crashes = total.crashes + total.crashes_in_recovery;
    println!(
        "simulate: {seeds} seed(s), {crashes} crashes survived ({} while recovering), {} \
         recoveries without a crash, {} torn writes, {} I/O faults, {} changes acknowledged, no \
         promise broken, in {seconds:.1} s: {:.0} crashes survived per minute",
        total.crashes_in_recovery,
        total.recoveries,
        total.disk.torn_writes,
        total.disk.io_errors,
        total.acknowledged,
        crashes as f64 * 60.0 / seconds.max(1e-9)
    );
    Ok(Ending::Complete)
}

fn add(total: &mut Survived, s: &Survived) {
    total.crashes += s.crashes;
    total.crashes_in_recovery += s.crashes_in_recovery;
    total.recoveries += s.recoveries;
    total.acknowledged += s.acknowledged;
    total.disk.torn_writes += s.disk.torn_writes;
    total.disk.io_errors += s.disk.io_errors;
}
