//! `otpfleet rehearse`: a rollout plan run in simulated time.

use anyhow::Context as _;
use clap::Args;
use otpfleet_emulator::rehearsal::plan::compile;
use otpfleet_emulator::rehearsal::{Watch, rehearse_until};
use otpfleet_reports::{RunReport, Threshold};
use std::path::{Path, PathBuf};

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

pub fn run(opts: RehearseOpts) -> anyhow::Result<()> {
    let done = execute(&opts)?;
    print_findings(&done.report, &done.out);
    crate::summary::ended(&done.report, done.interrupted)?;
    crate::summary::judge(&done.report, &opts.threshold)
}

/// Runs the rehearsal and writes its folder.
pub fn execute(opts: &RehearseOpts) -> anyhow::Result<RehearsalDone> {
    let started_ms = crate::wall_clock_ms();
    let text = std::fs::read_to_string(&opts.plan)
        .with_context(|| format!("while reading the plan {}", opts.plan.display()))?;
    let plan = compile(&text).map_err(|errors| {
        let file = opts.plan.display();
        let list: Vec<String> = errors
            .iter()
            .map(|e| match e.line {
                0 => format!("  {file}: {}: {}", e.field, e.message),
                n => format!("  {file}:{n}: {}: {}", e.field, e.message),
            })
            .collect();
        anyhow::anyhow!(
            "the plan {} has {} error(s):\n{}",
            opts.plan.display(),
            errors.len(),
            list.join("\n")
        )
    })?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let seed = opts.seed.unwrap_or_else(crate::fleet::random_seed);
    let out = crate::target::run_folder(opts.out.as_deref(), &default_out(&opts.plan, seed))?;
    let consoles: u64 = plan.waves.iter().map(|w| w.consoles).sum();
    eprintln!(
        "rehearse: {:?}, {consoles} consoles over up to {} days, seed {seed}, run folder {}",
        plan.name,
        plan.horizon_ms / 86_400_000,
        out.display()
    );
    // The rehearsal runs on its own simulated-time runtime; signals are heard on this one.
    let signals = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let interrupts = {
        let _in = signals.enter();
        crate::interrupt::Interrupts::listen().context("while listening for SIGINT and SIGTERM")?
    };
    let watch = Watch {
        stop: interrupts.token(),
        progress: !opts.quiet,
    };
    let run = rehearse_until(&plan, seed, !opts.no_suggest, &watch).map_err(anyhow::Error::msg)?;
    let mut report = run.report;
    report.meta = Some(crate::target::run_meta(started_ms, None));
    crate::target::write_emulated_run(&out, &report, &run.recorder, &run.consoles)?;
    Ok(RehearsalDone {
        report,
        out,
        interrupted: interrupts.signal(),
    })
}

fn default_out(plan: &Path, seed: u64) -> PathBuf {
    let stem = plan.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
    PathBuf::from("runs").join(format!("rehearsal-{stem}-seed{seed}"))
}

fn print_findings(r: &RunReport, out: &Path) {
    print!("{}", crate::summary::text(r, out));
    let Some(f) = &r.rehearsal else { return };
    println!("findings:");
    for line in &f.findings {
        println!("  - {line}");
    }
    if let Some(s) = &f.suggestion {
        println!("  suggestion: {s}");
    }
}
