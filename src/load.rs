//! `otpfleet load`: goose 0.19 load scenarios of the hot path (issue, redeem, approve, mixed)
//! against the reference server (started in process) or any server implementing the contract
//! (`--target`). Goose's own options are flattened in, with their names and meaning.

use anyhow::Context as _;
use clap::Args;
use goose::config::GooseConfiguration;
use otpfleet_client::HttpTransport;
use otpfleet_emulator::config::{FleetConfig, Rate, Timing};
use otpfleet_emulator::{FleetRun, RunOptions, run_fleet};
use otpfleet_reports::RunReport;
use otpfleet_run::Ending;
use otpfleet_scenarios::{
    Harness, LoadConfig, LoadRun, LoadSettings, MAX_ACCOUNTS, ScenarioName, Sizing,
    apply_goose_defaults, build_report, load_settings, run_goose_only, run_load,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Most consoles of a background fleet.
const MAX_FLEET: u64 = 1_000_000;

/// otpfleet's defaults differ from goose's for a few of its options; their help says so.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("host", |a| a.hide(true)),
    mut_arg("users", |a| ours(a, "Concurrent users [default: per scenario]",
        "otpfleet load: the default is per scenario: issue 4, redeem 64, approve 4, mixed 40.")),
    mut_arg("increase_rate", |a| ours(a, "Users started per second [default: all in 1 s]",
        "otpfleet load: the default starts every user within the first second.")),
    mut_arg("run_time", |a| ours(a, "Run this long after all users start [default: 30s]",
        "otpfleet load: without --run-time, --iterations or --test-plan a run lasts 30s; \
         --run-time 0 (until stopped) is refused.")),
    mut_arg("co_mitigation", |a| ours(a, "Coordinated omission mitigation [default: disabled]",
        "otpfleet load: disabled by default, as in goose: the scenarios pause on purpose (an \
         approver on an empty queue waits 1 s, a console waits its poll interval), and goose's \
         mitigation takes those pauses for stalls of the server (a 0.2 ms request then shows \
         a p99 near 1 s). Turned on, otpfleet's response view gets the same kind of synthetic \
         samples, counted apart from the requests.")),
    mut_arg("dashboard", |a| ours(a, "Serve otpfleet's live page of the run",
        "otpfleet load: the live page is otpfleet's (the one `fleet --dashboard` serves), fed by \
         the recorder report.json is built from, so the page and the report agree; goose's own \
         dashboard is not built in. It listens on --dashboard-host and --dashboard-port, \
         has no control and no token.")),
    mut_arg("dashboard_auth_token", |a| a.hide(true)),
    mut_arg("dashboard_control", |a| a.hide(true)),
    mut_arg("dashboard_no_auth", |a| a.hide(true)),
    mut_arg("dashboard_max_clients", |a| a.hide(true)),
    mut_arg("report_file", |a| ours(a, "Write a report; repeatable [default: 2 in the run folder]",
        "otpfleet load: without --report-file, goose-report.html and goose-report.json are \
         written into the run folder (--out).")),
)]
pub struct LoadOpts {
    /// The scenario: issue, redeem, approve, or mixed (the three at a rollout's weights).
    #[arg(long, default_value = "mixed", value_name = "NAME")]
    pub scenario: ScenarioName,
    /// URL of a server implementing the contract (e.g. http://127.0.0.1:8080). Default: start
    /// the reference server in this process on 127.0.0.1:0. Sets goose's --host.
    #[arg(long, value_name = "URL", requires = "admin_token_file")]
    pub target: Option<String>,
    /// File holding the target's admin token (with --target).
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// Run folder for report.json, the histograms and goose's reports.
    /// Default: runs/load-<SCENARIO>-seed<SEED>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The run's seed: names its accounts and serials and seeds each user's choices (goose's
    /// scheduling is not seeded). Default: random, printed and stored in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// A background fleet of N emulated consoles (and its 2 admins) against the same server
    /// during the attack; its own report goes to <run folder>/fleet.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub fleet: u64,
    /// OTPs to issue before the attack for the consoles (redeem, mixed) or the feeder
    /// (approve). Default: enough for the users and the run's length.
    #[arg(long, value_name = "N")]
    pub tickets: Option<usize>,
    /// Accounts per OTP batch of the issue admins.
    #[arg(long, default_value_t = 25, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// Share of requests the approve admins reject (with a reason).
    #[arg(
        long,
        default_value = "0.02",
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub reject_rate: Rate,
    /// Requests the feeder keeps awaiting approval (approve).
    #[arg(long, default_value_t = 200, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub queue_depth: u64,
    /// Polling interval of the embedded reference server, seconds (without --target).
    /// Consoles poll at the interval the server answers, never faster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub poll_interval_s: u32,
    /// Connections of the harness's own traffic (setup, feeder, approver) and of the fleet.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_connections: u64,

    /// Goose's own options (goose 0.19), with their names and meaning. Boxed: they are most
    /// of the command line's size.
    #[command(flatten)]
    pub goose: Box<GooseConfiguration>,
}

/// An option of goose's whose default otpfleet changes: a short help naming our default, and
/// goose's long help with a note.
fn ours(arg: clap::Arg, short: &'static str, note: &'static str) -> clap::Arg {
    let long = arg
        .get_long_help()
        .map(ToString::to_string)
        .unwrap_or_default();
    // Goose's long help opens with its summary, which names goose's default: ours replaces it.
    let rest = long.split_once("\n\n").map_or("", |(_, rest)| rest);
    arg.help(short)
        .long_help(format!("{short}\n\n{rest}\n\n{note}"))
}

pub fn run(mut opts: LoadOpts) -> anyhow::Result<Ending> {
    let started = otpfleet_run::target::Started::now();
    let seed = opts.seed.unwrap_or_else(otpfleet_run::random_seed);
    check(&opts)?;
    let dashboard = take_dashboard(&mut opts.goose)?;
    otpfleet_scenarios::controllers(&mut opts.goose, opts.admin_token_file.is_some())
        .map_err(|e| otpfleet_run::BadInput(e.to_string()))?;
    let watchers = otpfleet_run::live::Bound::new(otpfleet_run::live::Asked {
        dashboard: dashboard.as_deref(),
        ..Default::default()
    })?;
    let token = opts
        .admin_token_file
        .as_deref()
        .map(otpfleet_run::target::read_token_file)
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let goose = *std::mem::take(&mut opts.goose);
    if informational(&goose) {
        runtime.block_on(run_goose_only(opts.scenario, goose))?;
        return Ok(Ending::Complete);
    }
    let out = otpfleet_run::target::run_folder(
        opts.out.as_deref(),
        &PathBuf::from("runs").join(format!("load-{}-seed{seed}", opts.scenario)),
    )?;
    let harness: Arc<OnceLock<Arc<Harness>>> = Arc::default();
    let over = Arc::new(AtomicBool::new(false));
    let page = page(&harness, &over, opts.scenario);
    let watchers = runtime.block_on(async { watchers.start("load", Some(page)) })?;
    let attacked = attack(&opts, goose, (token, seed), &out, (&watchers, &harness));
    let mut done = runtime.block_on(attacked)?;
    over.store(true, Ordering::Relaxed);
    done.report.meta = Some(otpfleet_run::target::run_meta(
        &started,
        Some(done.run.goose_config.clone()),
    ));
    write_folders(&done, &out)?;
    let mut watchers = watchers;
    runtime.block_on(watchers.finish(&out, &done.report));
    let background = done.fleet.as_ref().map(|f| &f.report);
    print!(
        "{}",
        otpfleet_run::summary::load_text(&done.report, &done.settings, background, &out)
    );
    if let Some(why) = &done.run.background_stopped {
        eprintln!("warning: {why}");
    }
    let out_of_tickets = done.run.harness.tally.tickets_exhausted();
    if out_of_tickets > 0 {
        eprintln!(
            "warning: {out_of_tickets} console users ran out of pre-issued OTPs and idled: \
             pass a larger --tickets"
        );
    }
    // goose's thresholds: one that goose stopped the run for is breached, not an early stop.
    let breached: Vec<String> = done
        .run
        .thresholds_failed
        .iter()
        .map(|t| format!("goose's {} (observed {})", t.rule, t.observed))
        .collect();
    Ok(Ending::of_run(&done.report, done.signal, breached))
}

/// The live page's figures: the harness's once the attack starts (`harness` set), counted as
/// the report counts them once it is `over`.
fn page(
    harness: &Arc<OnceLock<Arc<Harness>>>,
    over: &Arc<AtomicBool>,
    scenario: ScenarioName,
) -> otpfleet_run::live::Source {
    let (harness, over) = (Arc::clone(harness), Arc::clone(over));
    Arc::new(move || {
        let mut snapshot = harness.get()?.snapshot(over.load(Ordering::Relaxed));
        snapshot["scenario"] = scenario.as_str().into();
        Some(snapshot)
    })
}

/// Takes goose's `--dashboard` flags for otpfleet's page: the address to serve it on, if asked.
/// Goose's dashboard is not built in, so goose never sees them; its control and token flags,
/// which our page has no use for, are refused.
fn take_dashboard(goose: &mut GooseConfiguration) -> anyhow::Result<Option<String>> {
    let unsupported = [
        (
            "--dashboard-auth-token",
            goose.dashboard_auth_token.is_some(),
        ),
        ("--dashboard-control", goose.dashboard_control),
        ("--dashboard-no-auth", goose.dashboard_no_auth),
        (
            "--dashboard-max-clients",
            goose.dashboard_max_clients.is_some(),
        ),
    ];
    if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(otpfleet_run::BadInput(format!(
            "{flag}: otpfleet load's live page (--dashboard) has no control and no token; \
             leave {flag} out"
        ))
        .into());
    }
    let host = goose.dashboard_host.take();
    let port = goose.dashboard_port.take();
    if !std::mem::take(&mut goose.dashboard) {
        if host.is_some() || port.is_some() {
            return Err(otpfleet_run::BadInput(
                "--dashboard-host and --dashboard-port need --dashboard".to_owned(),
            )
            .into());
        }
        return Ok(None);
    }
    let host = host.unwrap_or_else(|| "127.0.0.1".to_owned());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(Some(format!("{host}:{}", port.unwrap_or(5118))))
}

fn check(opts: &LoadOpts) -> anyhow::Result<()> {
    otpfleet_run::target::check_target(
        opts.target.as_deref(),
        opts.admin_token_file.as_deref(),
        None,
    )?;
    if opts.fleet > MAX_FLEET {
        return Err(otpfleet_run::BadInput(format!("--fleet must be at most {MAX_FLEET}")).into());
    }
    if opts.tickets.is_some_and(|n| n > MAX_ACCOUNTS) {
        return Err(
            otpfleet_run::BadInput(format!("--tickets must be at most {MAX_ACCOUNTS}")).into(),
        );
    }
    Ok(())
}

/// Goose's flags that print or render and exit, before any load.
fn informational(g: &GooseConfiguration) -> bool {
    g.version || g.list || g.scenarios_list || g.render_report.is_some()
}

/// A finished attack.
struct Done {
    run: LoadRun,
    settings: LoadSettings,
    report: RunReport,
    histograms: otpfleet_reports::RunHistograms,
    fleet: Option<FleetRun>,
    /// The signal that interrupted the attack, if one did (goose's Ctrl-C handler takes SIGINT).
    signal: Option<i32>,
}

/// The attack with its server, reporting what it measured; `watchers` watch it and `harness` is
/// set to its harness as it starts.
async fn attack(
    opts: &LoadOpts,
    mut goose: GooseConfiguration,
    (token, seed): (Option<String>, u64),
    out: &Path,
    (watchers, harness): (&otpfleet_run::live::Watchers, &OnceLock<Arc<Harness>>),
) -> anyhow::Result<Done> {
    let interrupts =
        otpfleet_run::interrupt::Interrupts::listen().context("while listening for SIGTERM")?;
    pass_signals_to_goose(interrupts.token());
    let otpfleet_run::target::Driven {
        url,
        admin_token: token,
        embedded: server,
    } = otpfleet_run::target::server(opts.target.as_deref(), token, opts.poll_interval_s).await?;
    watchers.watch_queue(&url, None, &token)?;
    let sizing = apply_goose_defaults(&mut goose, opts.scenario, &url, out)?;
    let cfg = load_config(opts, (&url, &token), seed, server.is_some());
    let target = match &server {
        Some(_) => format!("{url} (in-process reference server)"),
        None => url.clone(),
    };
    eprintln!(
        "load: scenario {}, seed {seed}, {} users for about {:.0} s, target {target}, run folder {}",
        opts.scenario,
        sizing.users,
        sizing.duration_s,
        out.display()
    );
    let fleet = (opts.fleet > 0)
        .then(|| spawn_fleet(opts, &sizing, &url, &token, seed, interrupts.token()))
        .transpose()?;
    let mut run = run_load(&cfg, goose, &sizing, Some(harness)).await?;
    run.interrupted |= interrupts.signal().is_some();
    let fleet = match fleet {
        Some(task) => {
            eprintln!("load: waiting for the background fleet's consoles to finish");
            Some(
                task.await
                    .context("the background fleet panicked")?
                    .map_err(anyhow::Error::msg)?,
            )
        }
        None => None,
    };
    let settings = load_settings(&run, &cfg, opts.fleet, server.is_some());
    let (report, histograms) = build_report(&run, &settings, seed, &target);
    drop(server);
    let signal = run.interrupted.then(|| interrupts.signal().unwrap_or(2));
    Ok(Done {
        run,
        settings,
        report,
        histograms,
        fleet,
        signal,
    })
}

/// Triggers goose's killswitch once `stop` fires. goose stops on its killswitch: SIGINT
/// triggers it through goose's own handler (installed when the attack starts, over ours),
/// SIGTERM through ours. goose clears its killswitch when an attack starts: a signal during the
/// set-up is passed on again until the attack has seen it.
fn pass_signals_to_goose(stop: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        stop.cancelled().await;
        loop {
            goose::trigger_killswitch(otpfleet_reports::INTERRUPTED);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// The scenarios' settings from the flags, for the server at `url` (embedded or not).
fn load_config(
    opts: &LoadOpts,
    (url, token): (&str, &str),
    seed: u64,
    embedded: bool,
) -> LoadConfig {
    LoadConfig {
        scenario: opts.scenario,
        url: url.to_owned(),
        admin_token: token.to_owned(),
        seed,
        tickets: opts.tickets,
        batch_size: opts.batch_size as usize,
        reject_rate: opts.reject_rate.get(),
        queue_depth: opts.queue_depth as usize,
        poll_interval_s: if embedded { opts.poll_interval_s } else { 1 },
        max_connections: opts.max_connections as usize,
        validity_hours: 8,
    }
}

/// The background fleet: consoles arriving over the attack's length, with the emulator's
/// default faults and 2 admins, through their own connection pool.
fn spawn_fleet(
    opts: &LoadOpts,
    sizing: &Sizing,
    url: &str,
    token: &str,
    seed: u64,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<Result<FleetRun, otpfleet_emulator::RunError>>> {
    let window_ms = (sizing.duration_s * 1000.0) as u64;
    let cfg = FleetConfig {
        consoles: opts.fleet,
        seed,
        timing: Timing {
            arrival_window_ms: window_ms.max(1),
            ..Timing::default()
        },
        max_duration_ms: window_ms + 120_000,
        ..FleetConfig::default()
    };
    let transport =
        HttpTransport::new(url, opts.max_connections as usize, Duration::from_secs(10))?;
    let token = token.to_owned();
    Ok(tokio::spawn(async move {
        let options = RunOptions {
            stop,
            ..RunOptions::default()
        };
        run_fleet(cfg, transport, &token, options).await
    }))
}

fn write_folders(done: &Done, out: &Path) -> anyhow::Result<()> {
    otpfleet_run::folder::write(out, &done.report, &done.histograms, None)?;
    if let Some(fleet) = &done.fleet {
        let histograms = fleet.recorder.histograms();
        otpfleet_run::folder::write(
            &out.join("fleet"),
            &fleet.report,
            &histograms,
            Some(&fleet.consoles),
        )?;
    }
    Ok(())
}
