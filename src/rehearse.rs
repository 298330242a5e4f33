//! `otpfleet rehearse`: a rollout plan run in simulated time.

use anyhow::Context as _;
use clap::Args;
use otpfleet_emulator::RehearsalLive;
use otpfleet_emulator::rehearsal::sweep::Vary;
use otpfleet_emulator::rehearsal::{Watch, rehearse_until};
use otpfleet_reports::{RunReport, Threshold};
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
    /// A what-if sweep: rehearse the plan for every combination of the values of each
    /// `--vary` (repeatable), e.g. validity=8h,24h,48h approvers=2,4,8 batch-time=07:30,12:00
    /// policy=at_once,next_batch attempts=2,3; each with the same seed. Writes sweep.json,
    /// sweep.md and report.html.
    #[arg(long, value_name = "NAME=V1,V2", value_parser = parse_vary)]
    pub vary: Vec<Vary>,
    /// Rehearsals a sweep runs at once. Default: the machine's cores.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

fn parse_vary(text: &str) -> Result<Vary, String> {
    text.parse()
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
    if !opts.vary.is_empty() {
        return sweep(&opts);
    }
    let done = execute(&opts)?;
    Ok(otpfleet_run::summary::verdict(
        &done.report,
        &done.out,
        done.interrupted,
    ))
}

/// Runs the rehearsal and writes its folder.
pub fn execute(opts: &RehearseOpts) -> anyhow::Result<RehearsalDone> {
    let started = otpfleet_run::target::Started::now();
    let plan = read_plan(&opts.plan)?;
    let consoles = plan.consoles();
    let seed = opts.seed.unwrap_or_else(otpfleet_run::random_seed);
    let watchers = otpfleet_run::live::Bound::new(otpfleet_run::live::Asked {
        dashboard: opts.dashboard.as_deref(),
        ..Default::default()
    })?;
    let out =
        otpfleet_run::target::run_folder(opts.out.as_deref(), &default_out(&opts.plan, seed))?;
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
    report.meta = Some(otpfleet_run::target::run_meta(&started, None));
    otpfleet_run::summary::judge(&mut report, None, &opts.threshold);
    otpfleet_run::folder::write(
        &out,
        &report,
        &run.recorder.histograms(),
        Some(&run.consoles),
    )?;
    let mut watchers = watchers;
    signals.block_on(watchers.finish(&out, &report));
    Ok(RehearsalDone {
        report,
        out,
        interrupted: interrupts.signal(),
    })
}

/// The plan at `path`, refused as bad input when it does not compile or would not fit in
/// memory; its warnings printed.
fn read_plan(path: &Path) -> anyhow::Result<otpfleet_emulator::rehearsal::plan::CompiledPlan> {
    let plan = otpfleet_emulator::rehearsal::plan::read(path).map_err(otpfleet_run::BadInput)?;
    otpfleet_run::check_memory(
        plan.memory_needed(),
        &format!("a rehearsal of {} consoles", plan.consoles()),
    )?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    Ok(plan)
}

fn default_out(plan: &Path, seed: u64) -> PathBuf {
    let stem = plan.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
    PathBuf::from("runs").join(format!("rehearsal-{stem}-seed{seed}"))
}

/// `rehearse --vary`: every combination rehearsed with the same seed on `--jobs` threads; the
/// table printed, and sweep.json, sweep.md and report.html written.
fn sweep(opts: &RehearseOpts) -> anyhow::Result<Ending> {
    use otpfleet_emulator::rehearsal::sweep;
    if opts.dashboard.is_some() || !opts.threshold.is_empty() {
        return Err(otpfleet_run::BadInput(
            "--vary: --dashboard and --threshold watch and judge one rehearsal; leave them out \
             of a sweep"
                .into(),
        )
        .into());
    }
    let plan = read_plan(&opts.plan)?;
    let plans = sweep::plans(&plan, &opts.vary).map_err(otpfleet_run::BadInput)?;
    let jobs = (opts.jobs.unwrap_or_else(otpfleet_run::cores)).clamp(1, plans.len().max(1));
    otpfleet_run::check_memory(
        plan.memory_needed().saturating_mul(jobs as u64),
        &format!(
            "{jobs} rehearsals of {} consoles at once (--jobs)",
            plan.consoles()
        ),
    )?;
    let seed = opts.seed.unwrap_or_else(otpfleet_run::random_seed);
    let out = otpfleet_run::target::run_folder(opts.out.as_deref(), &sweep_out(&opts.plan, seed))?;
    let varied: Vec<String> = opts.vary.iter().map(ToString::to_string).collect();
    eprintln!(
        "rehearse: sweeping {:?} over {} combinations ({}), seed {seed}, {jobs} at once, run \
         folder {}",
        plan.name,
        plans.len(),
        varied.join(" "),
        out.display()
    );
    let wall = std::time::Instant::now();
    let total = plans.len();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize, row: &otpfleet_reports::SweepRow| {
        let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let (label, last, took) = (
            row.label(),
            row.last_signed_in(),
            wall.elapsed().as_secs_f64(),
        );
        (!opts.quiet).then(|| {
            eprintln!(
                "rehearse: {label} done ({n} of {total}, {took:.1} s): last room signed in {last}"
            )
        });
    };
    let rows = sweep::sweep(&plans, seed, jobs, &progress).map_err(anyhow::Error::msg)?;
    let report = otpfleet_reports::SweepReport {
        plan: plan.name.clone(),
        seed,
        varied,
        rows,
        otpfleet_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    write_sweep(&out, &report)?;
    print!("{}", report.table());
    println!(
        "\n{total} combinations in {:.1} s; run folder: {}",
        wall.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(Ending::Complete)
}

fn sweep_out(plan: &Path, seed: u64) -> PathBuf {
    let stem = plan.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
    PathBuf::from("runs").join(format!("sweep-{stem}-seed{seed}"))
}

/// Writes a sweep's folder: sweep.json, sweep.md and report.html.
fn write_sweep(out: &Path, report: &otpfleet_reports::SweepReport) -> anyhow::Result<()> {
    use std::io::Write as _;
    let write =
        |name: &str, f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>| {
            otpfleet_reports::write_whole(&out.join(name), f)
                .with_context(|| format!("while writing {}", out.join(name).display()))
        };
    write(otpfleet_reports::SWEEP_JSON, &|w| {
        serde_json::to_writer_pretty(&mut *w, report)?;
        writeln!(w)
    })?;
    write("sweep.md", &|w| {
        otpfleet_reports::write_sweep_markdown(report, w)
    })?;
    write("report.html", &|w| {
        otpfleet_reports::write_sweep_html(report, w)
    })
}
