//! `otpfleet rehearse`: a rollout plan run in simulated time.

use anyhow::Context as _;
use clap::Args;
use otpfleet_emulator::RehearsalLive;
use otpfleet_emulator::rehearsal::plan::compile;
use otpfleet_emulator::rehearsal::{Watch, rehearse_until};
use otpfleet_reports::{DEFAULT_MIN_SAMPLES, RunReport, Threshold};
use otpfleet_run::Ending;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct RehearseOpts {
    /// The rollout plan (TOML; see scenarios/rollouts/README.md).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// The run's one seed. Default: a random seed, printed and stored in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run folder. Default: runs/rehearsal-<plan file name>-seed<SEED>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Skip the re-runs that look for a validity keeping expiries under 1%.
    #[arg(long)]
    pub no_suggest: bool,
    /// No progress (a long rehearsal prints a line every 10 s of wall time otherwise).
    #[arg(long)]
    pub quiet: bool,
    /// Serve a live page of the rehearsal (the simulated clock, the timeline so far, outcomes;
    /// updated every second of wall time) on http://ADDR/; without ADDR on 127.0.0.1 and a
    /// free port (printed).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub dashboard: Option<String>,
    /// An absolute limit the rehearsal must meet, e.g. outcomes.expired<1% or
    /// time_to_signed_in.p99<8h (repeatable); exit 1 when one is breached.
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<Threshold>,
}

/// What a finished rehearsal left behind.
#[derive(Debug)]
pub struct RehearsalDone {
    pub report: RunReport,
    pub out: PathBuf,
    /// The signal that interrupted the rehearsal, if one did.
    pub interrupted: Option<i32>,
}

pub fn run(opts: RehearseOpts) -> anyhow::Result<Ending> {
    let done = execute(&opts)?;
    let r = &done.report;
    print!("{}", otpfleet_run::summary::text(r, &done.out));
    print_findings(r);
    let breached = otpfleet_run::breached(
        r,
        &opts.threshold,
        DEFAULT_MIN_SAMPLES,
        Some("\nthresholds:"),
    );
    Ok(Ending::of_run(r, done.interrupted, breached))
}

/// Runs the rehearsal and writes its folder.
pub fn execute(opts: &RehearseOpts) -> anyhow::Result<RehearsalDone> {
    let started_ms = otpfleet_run::wall_clock_ms();
    let plan = read_plan(&opts.plan)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let seed = opts.seed.unwrap_or_else(crate::fleet::random_seed);
    let watchers = otpfleet_run::live::Bound::new(otpfleet_run::live::Asked {
        dashboard: opts.dashboard.as_deref(),
        ..Default::default()
    })?;
    let out =
        otpfleet_run::target::run_folder(opts.out.as_deref(), &default_out(&opts.plan, seed))?;
    let consoles: u64 = plan.waves.iter().map(|w| w.consoles).sum();
    eprintln!(
        "rehearse: {:?}, {consoles} consoles over up to {} days, seed {seed}, run folder {}",
        plan.name,
        plan.horizon_ms / 86_400_000,
        out.display()
    );
    // The rehearsal runs on its own simulated-time runtime; signals are heard, and the live
    // page served, on this one, in real time.
    let signals = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let interrupts = {
        let _in = signals.enter();
        otpfleet_run::interrupt::Interrupts::listen()
            .context("while listening for SIGINT and SIGTERM")?
    };
    let live = Arc::new(RehearsalLive::default());
    let page: otpfleet_run::live::Source = {
        let live = Arc::clone(&live);
        let wall = std::time::Instant::now();
        Arc::new(move || {
            let mut snapshot = live.snapshot()?;
            snapshot["elapsed_s"] = wall.elapsed().as_secs_f64().into();
            Some(snapshot)
        })
    };
    let watchers = signals.block_on(async { watchers.start("rehearse", Some(page)) })?;
    let watch = Watch {
        stop: interrupts.token(),
        progress: !opts.quiet,
        live: watchers.has_dashboard().then_some(live),
        every_poll: false,
    };
    let run = rehearse_until(&plan, seed, !opts.no_suggest, &watch).map_err(anyhow::Error::msg)?;
    let mut report = run.report;
    report.meta = Some(otpfleet_run::target::run_meta(started_ms, None));
    otpfleet_run::target::write_emulated_run(&out, &report, &run.recorder, &run.consoles)?;
    signals.block_on(watchers.finish(&out, std::time::Duration::ZERO));
    Ok(RehearsalDone {
        report,
        out,
        interrupted: interrupts.signal(),
    })
}

/// The plan in `path`, compiled; its errors listed with file, line and field.
fn read_plan(path: &Path) -> anyhow::Result<otpfleet_emulator::rehearsal::plan::CompiledPlan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the plan {}", path.display()))?;
    compile(&text).map_err(|errors| {
        let file = path.display();
        let list: Vec<String> = errors
            .iter()
            .map(|e| match e.line {
                0 => format!("  {file}: {}: {}", e.field, e.message),
                n => format!("  {file}:{n}: {}: {}", e.field, e.message),
            })
            .collect();
        anyhow::anyhow!(
            "the plan {} has {} error(s):\n{}",
            path.display(),
            errors.len(),
            list.join("\n")
        )
    })
}

fn default_out(plan: &Path, seed: u64) -> PathBuf {
    let stem = plan.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
    PathBuf::from("runs").join(format!("rehearsal-{stem}-seed{seed}"))
}

fn print_findings(r: &RunReport) {
    let Some(f) = &r.rehearsal else { return };
    println!("findings:");
    for line in &f.findings {
        println!("  - {line}");
    }
    if let Some(s) = &f.suggestion {
        println!("  suggestion: {s}");
    }
}
