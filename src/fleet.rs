//! `otpfleet fleet`: thousands of virtual consoles and admins against the reference server
//! (started in process) or any server implementing the contract (`--target`).

use anyhow::Context as _;
use clap::Args;
use otpfleet_emulator::arrival::Arrival;
use otpfleet_emulator::config::DEFAULT_MAX_IN_FLIGHT;
use otpfleet_emulator::config::{FleetConfig, MsRange, Rate, Rates, Role, Shard, Timing};
use otpfleet_emulator::{ConfigError, RunError, RunOptions, run_fleet};
use otpfleet_reports::{RunReport, Threshold};
use otpfleet_run::Ending;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct FleetOpts {
    /// Consoles in the whole fleet (this process runs its shard's share). Default: 2000; with
    /// --arrival ramp or steps, as many as the stages bring (a different count is refused);
    /// with a replay, the file's rows.
    #[arg(long)]
    pub consoles: Option<u64>,
    /// The run's one seed; every console's serial, faults and typos derive from it. Default: a
    /// random seed, printed and stored in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only shard K of N (consoles whose index modulo N is K), e.g. 0/2; env/N takes K
    /// from JOB_COMPLETION_INDEX, the index Kubernetes gives each pod of an Indexed Job.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<ShardArg>,
    /// What this process runs: all (its consoles and the admins), consoles (its shard's
    /// consoles, no admins), or admins (one process working the approval queue for every
    /// console shard of a split run; it ends once the schedule's last console has arrived and
    /// the queue has stayed empty for --queue-idle-s). consoles and admins need --target.
    #[arg(long, default_value = "all", value_name = "ROLE")]
    pub role: Role,
    /// Wait until this moment (RFC 3339, e.g. 2026-12-01T09:00:00Z) once seeded, so that the
    /// processes of one run start together; one ready later than --start-grace-s after it
    /// does not run (exit 5).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    pub start_at: Option<jiff::Timestamp>,
    /// How late after --start-at a process may still start, seconds.
    #[arg(long, default_value_t = 10, value_name = "S", requires = "start_at")]
    pub start_grace_s: u64,
    /// URL of a server implementing the contract: http:// or https://, a host name or address,
    /// and a base path every route is under (e.g. https://otp.staging.example:8443/base).
    /// Replicas of one server without a load balancer: their URLs separated by commas; each
    /// request goes to the next, so a console's consecutive requests and the two consoles of
    /// a race reach different replicas. Default: start the reference server in this process
    /// on 127.0.0.1:0.
    #[arg(long, value_name = "URL", requires = "admin_token_file")]
    pub target: Option<String>,
    /// File holding the target's admin token (with --target).
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) to trust for an https:// target, instead of the
    /// platform's trusted roots (a private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Run folder for report.json, report.md, consoles.csv and the histograms.
    /// Default: runs/fleet-seed<SEED>[-shard<K>of<N>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Share of consoles booted without the HDMI ingest module.
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.hdmi_missing,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub hdmi_missing_rate: Rate,
    /// Share of consoles that are not certified (stuck).
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.uncertified,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub uncertified_rate: Rate,
    /// Chance that typing the OTP goes wrong, per attempt.
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.typo,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub typo_rate: Rate,
    /// Share of consoles set up manually (email and password).
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.manual,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub manual_rate: Rate,
    /// Share of requests the admins reject.
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.reject,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub reject_rate: Rate,
    /// Share of installers arriving after the OTP expired (they wait out the validity).
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.late,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub late_rate: Rate,
    /// Chance that a request meets a network fault (retried with backoff).
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.network_fault,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub network_fault_rate: Rate,
    /// Share of OTPs typed on two consoles at the same moment (a mixed-up sheet): the server
    /// must refuse the second; two successes are a broken promise.
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.race,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub race_rate: Rate,
    /// Share of consoles that ask for their credentials again (a lost answer), and, refused or
    /// expired, ask anyway: a second hand-over is a broken promise.
    #[arg(
        long,
        default_value_t = Rates::DEFAULT.double_sign_in,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub double_sign_in_rate: Rate,

    /// Virtual admins working the approval queue. Default: 2 (none in a console shard, --role
    /// consoles).
    #[arg(long, value_name = "N")]
    pub admins: Option<u32>,
    /// Approve redeemed OTPs at once (no admins needed).
    #[arg(long)]
    pub auto_approve: bool,
    /// OTP validity in hours (1 to 336).
    #[arg(long, default_value_t = 8)]
    pub validity_hours: u32,

    /// With `--arrival even`: consoles arrive spread over this many milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub arrival_window_ms: u64,
    /// How consoles arrive: even (over --arrival-window-ms), rate:50/s, ramp:0/s..200/s@10m,
    /// steps:10/s@1m,50/s@5m, poisson:50/s, or replay:FILE (one arrival per line, its first
    /// field a time in seconds). Seeded, and sharded like the consoles.
    #[arg(long, default_value = "even", value_name = "SCHEDULE")]
    pub arrival: Arrival,
    /// Most consoles in flight at once: one that arrives past it is dropped (an outcome of its
    /// own), never started late.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT, value_name = "N")]
    pub max_in_flight: u64,
    /// Boot time, milliseconds (MIN..MAX).
    #[arg(long, default_value = "200..800", value_name = "MS")]
    pub boot_ms: MsRange,
    /// Reading time per page, milliseconds.
    #[arg(long, default_value = "100..500", value_name = "MS")]
    pub think_ms: MsRange,
    /// Typing time for the OTP or the email and password, milliseconds.
    #[arg(long, default_value = "300..1500", value_name = "MS")]
    pub typing_ms: MsRange,
    /// From a failed verification to the restart with the HDMI module connected, milliseconds.
    #[arg(long, default_value = "1000..3000", value_name = "MS")]
    pub hdmi_fix_ms: MsRange,
    /// An admin's time per decision, milliseconds.
    #[arg(long, default_value = "2..10", value_name = "MS")]
    pub decision_ms: MsRange,
    /// With --role admins: the run is over once the schedule's last console has arrived and
    /// the approval queue has then stayed empty this long, seconds (longer than a console takes
    /// from its arrival to its redemption).
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub queue_idle_s: u64,

    /// Most connections (and requests in flight) of the shared pool.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
    /// Give every console its own connection instead of the shared pool.
    #[arg(long)]
    pub connection_per_console: bool,
    /// Retries of a request after a network fault, a transport error or a 503 answer (a server
    /// unavailable for now), with backoff from 0.1 s doubling to 5 s (0 to 100).
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,
    /// A request's time limit, milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub request_timeout_ms: u64,
    /// The run's time limit, seconds: consoles still running then are abandoned.
    #[arg(long, default_value_t = 600, value_name = "S")]
    pub max_duration_s: u64,
    /// Polling interval of the embedded reference server, seconds (without --target).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub poll_interval_s: u32,
    /// Send on tokio's timer alone: requests leave up to ~2 ms after they are due (shown as
    /// generator lateness) but the generator spends less CPU. By default the last 2 ms before a
    /// send are waited on a Linux timerfd armed for the deadline, so requests leave when due.
    #[arg(long)]
    pub coarse_timers: bool,
    /// Serve the run's counters and latency histograms as Prometheus text on
    /// http://ADDR/metrics while it runs (e.g. 127.0.0.1:9464; port 0 picks one, printed).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// With --metrics-listen or --dashboard: keep serving the final figures (and the finished
    /// page) this long after the run and its summary, so the last scrape sees them, seconds.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub metrics_linger_s: u64,
    /// Serve a live page of the run (updated every second over server-sent events) on
    /// http://ADDR/; without ADDR on 127.0.0.1 and a free port (printed).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub dashboard: Option<String>,
    /// Push the run's counters and latency histograms to an OpenTelemetry collector over
    /// OTLP/HTTP (protobuf) while it runs and once at its end: the collector's base URL (e.g.
    /// http://127.0.0.1:4318; /v1/metrics is added) or its metrics URL.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// With --otlp-endpoint: how often to export, seconds (an export may take this long).
    #[arg(long, default_value_t = 10, value_name = "S", requires = "otlp_endpoint",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub otlp_interval_s: u64,
    /// No progress (neither the bar on a terminal nor the lines elsewhere).
    #[arg(long)]
    pub quiet: bool,
    /// When stderr is not a terminal (a CI log), print a progress line this often, seconds.
    #[arg(long, default_value_t = 10, value_name = "S",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub progress_every_s: u64,
    /// An absolute limit the run must meet, e.g. redeem.service.p99<5ms, p99<20ms (every step),
    /// error-rate<0.1%, outcomes.expired<1%, rps>100 (repeatable). Checked before the run
    /// starts; the run exits 1 when one is breached.
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<Threshold>,
}

/// `--shard`: `K/N`, or `env/N` for the index Kubernetes gives each pod of an Indexed Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    FromEnv { count: u32 },
}

/// Where an Indexed Job's pod finds its index.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

impl std::str::FromStr for ShardArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("env/") {
            Some(n) => {
                let count = n.trim().parse().map_err(|_| {
                    format!("{s:?} is not a shard: write env/N with N a shard count, e.g. env/8")
                })?;
                Shard::new(0, count)?;
                Ok(ShardArg::FromEnv { count })
            }
            None => s.parse().map(ShardArg::Fixed),
        }
    }
}

impl ShardArg {
    /// The shard; `env/N` reads its index from `index` (the environment's
    /// JOB_COMPLETION_INDEX).
    pub fn resolve(self, index: Option<&str>) -> Result<Shard, String> {
        match (self, index) {
            (ShardArg::Fixed(shard), _) => Ok(shard),
            (ShardArg::FromEnv { count }, None) => Err(format!(
                "--shard env/{count}: {JOB_COMPLETION_INDEX} is not set (Kubernetes sets it in \
                 the pods of an Indexed Job); outside one, write K/{count}"
            )),
            (ShardArg::FromEnv { count }, Some(k)) => k
                .trim()
                .parse()
                .map_err(|_| format!("{JOB_COMPLETION_INDEX}={k:?} is not a shard index"))
                .and_then(|index| Shard::new(index, count))
                .map_err(|e| format!("--shard env/{count} with {JOB_COMPLETION_INDEX}={k}: {e}")),
        }
    }
}

impl FleetOpts {
    /// This process's shard, with `env/N` resolved from the environment.
    fn shard(&self) -> Result<Shard, otpfleet_run::BadInput> {
        let index = std::env::var(JOB_COMPLETION_INDEX).ok();
        self.shard
            .map_or(Ok(Shard::WHOLE), |s| s.resolve(index.as_deref()))
            .map_err(otpfleet_run::BadInput)
    }

    /// The admins this process runs: as given, else 2 (none in a console shard).
    fn admins(&self) -> u32 {
        match (self.admins, self.role) {
            (Some(n), _) => n,
            (None, Role::Consoles) => 0,
            (None, _) => 2,
        }
    }

    fn config(&self, seed: u64, shard: Shard) -> FleetConfig {
        FleetConfig {
            consoles: self
                .consoles
                .or(self.arrival.fixed_count())
                .unwrap_or(2_000),
            seed,
            shard,
            role: self.role,
            rates: Rates {
                hdmi_missing: self.hdmi_missing_rate,
                uncertified: self.uncertified_rate,
                typo: self.typo_rate,
                manual: self.manual_rate,
                reject: self.reject_rate,
                late: self.late_rate,
                network_fault: self.network_fault_rate,
                race: self.race_rate,
                double_sign_in: self.double_sign_in_rate,
            },
            timing: Timing {
                arrival_window_ms: self.arrival_window_ms,
                boot: self.boot_ms,
                think: self.think_ms,
                typing: self.typing_ms,
                hdmi_fix: self.hdmi_fix_ms,
                decision: self.decision_ms,
                ..Timing::default()
            },
            arrival: self.arrival.clone(),
            max_in_flight: self.max_in_flight,
            admins: self.admins(),
            auto_approve: self.auto_approve,
            validity_hours: self.validity_hours,
            max_retries: self.max_retries,
            request_timeout_ms: self.request_timeout_ms,
            max_duration_ms: self.max_duration_s.saturating_mul(1000),
            precise_timers: !self.coarse_timers,
        }
    }

    /// The default run folder: `runs/fleet-seed<SEED>[-shard<K>of<N>][-admins]`.
    fn default_out(seed: u64, shard: Shard, role: Role) -> PathBuf {
        let mut name = format!("fleet-seed{seed}");
        if shard.count() > 1 {
            name.push_str(&format!("-shard{}of{}", shard.index(), shard.count()));
        }
        if role == Role::Admins {
            name.push_str("-admins");
        }
        PathBuf::from("runs").join(name)
    }

    /// A split run's processes share one server: the one given by --target.
    fn check_split(&self) -> Result<(), otpfleet_run::BadInput> {
        match (self.role, &self.target) {
            (Role::All, _) | (_, Some(_)) => Ok(()),
            (role, None) => Err(otpfleet_run::BadInput(format!(
                "--role {role}: the processes of a split run share one server; give it with \
                 --target and --admin-token-file"
            ))),
        }
    }
}

/// What a finished fleet run left behind.
#[derive(Debug)]
pub struct FleetDone {
    pub report: RunReport,
    pub out: PathBuf,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<i32>,
    /// What still serves the final figures (`--metrics-listen`, `--dashboard`), and the runtime
    /// it runs on.
    pub watching: (tokio::runtime::Runtime, otpfleet_run::live::Watchers),
}

/// Runs the fleet, prints its summary and verdict, then serves the final figures for
/// `--metrics-linger-s` (so the verdict is read at once, not after the linger).
pub fn run(opts: FleetOpts) -> anyhow::Result<Ending> {
    let done = execute(&opts)?;
    let ending = otpfleet_run::summary::verdict(&done.report, &done.out, done.interrupted);
    let (runtime, watchers) = done.watching;
    runtime.block_on(watchers.linger(Duration::from_secs(opts.metrics_linger_s)));
    Ok(ending)
}

/// A setting out of range, named by the flag that sets it.
fn flag_error(e: ConfigError) -> otpfleet_run::BadInput {
    let flag = match e {
        ConfigError::Consoles { .. } => "--consoles",
        ConfigError::NobodyApproves | ConfigError::Admins { .. } => "--admins",
        ConfigError::ValidityHours(_) => "--validity-hours",
        ConfigError::Retries { .. } => "--max-retries",
        ConfigError::ZeroTime => "--request-timeout-ms, --max-duration-s",
        ConfigError::NoneInFlight => "--max-in-flight",
        ConfigError::ReplayTooShort { .. } | ConfigError::StagesFixCount { .. } => {
            "--arrival, --consoles"
        }
        ConfigError::AdminsInConsoleShard => "--role consoles, --admins",
        ConfigError::NothingToApprove => "--role admins, --auto-approve",
        ConfigError::ShardedAdmins => "--role admins, --shard",
    };
    otpfleet_run::BadInput(format!("{flag}: {e}"))
}

/// Runs the fleet and writes its folder; the CLI's `run` adds the summary and the exit code.
pub fn execute(opts: &FleetOpts) -> anyhow::Result<FleetDone> {
    let started = otpfleet_run::target::Started::now();
    let seed = opts.seed.unwrap_or_else(otpfleet_run::random_seed);
    let cfg = opts.config(seed, opts.shard()?);
    check(opts, &cfg, started.ms)?;
    let token = opts
        .admin_token_file
        .as_deref()
        .map(otpfleet_run::target::read_token_file)
        .transpose()?;
    let watchers = otpfleet_run::live::Bound::new(otpfleet_run::live::Asked {
        metrics: opts.metrics_listen.as_deref(),
        dashboard: opts.dashboard.as_deref(),
        otlp: opts
            .otlp_endpoint
            .as_deref()
            .map(|url| (url, Duration::from_secs(opts.otlp_interval_s))),
    })?;
    let runtime = runtime_for(opts, token.as_deref())?;
    let out = otpfleet_run::target::run_folder(
        opts.out.as_deref(),
        &FleetOpts::default_out(seed, cfg.shard, cfg.role),
    )?;
    eprintln!(
        "fleet: {} consoles, seed {seed}, {}, run folder {}",
        cfg.consoles,
        process_line(&cfg),
        out.display()
    );
    let watchers = runtime.block_on(async { watchers.start("fleet", None) })?;
    let (run, interrupted) = runtime.block_on(drive(opts, cfg, token, &watchers))?;
    say_restored(&run);
    let mut report = run.report;
    report.meta = Some(otpfleet_run::target::run_meta(&started, None));
    let histograms = run.recorder.histograms();
    otpfleet_run::summary::judge(&mut report, Some(&histograms), &opts.threshold);
    otpfleet_run::folder::write(&out, &report, &histograms, Some(&run.consoles))?;
    let mut watchers = watchers;
    runtime.block_on(watchers.finish(&out, &report));
    Ok(FleetDone {
        report,
        out,
        interrupted,
        watching: (runtime, watchers),
    })
}

/// The run's runtime; with --target, the server checked on it to answer and to take the admin
/// token before anything is written or changed (a wrong token or URL leaves no run folder).
fn runtime_for(opts: &FleetOpts, token: Option<&str>) -> anyhow::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    if let (Some(url), Some(file), Some(token)) = (&opts.target, &opts.admin_token_file, token) {
        let ca_cert = opts.ca_cert.as_deref();
        runtime.block_on(otpfleet_run::target::check_access(
            url, ca_cert, token, file,
        ))?;
    }
    Ok(runtime)
}

/// The flags checked together, before anything runs.
fn check(opts: &FleetOpts, cfg: &FleetConfig, started_ms: u64) -> anyhow::Result<()> {
    cfg.validate().map_err(flag_error)?;
    opts.check_split()?;
    if let Some(at) = opts.start_at {
        otpfleet_run::start::check(at, opts.start_grace_s, started_ms)?;
    }
    if opts.max_connections == 0 || opts.max_connections > 100_000 {
        return Err(otpfleet_run::BadInput(
            "--max-connections must be between 1 and 100000".into(),
        )
        .into());
    }
    otpfleet_run::target::check_target(
        opts.target.as_deref(),
        opts.admin_token_file.as_deref(),
        opts.ca_cert.as_deref(),
    )?;
    Ok(())
}

/// Says whether the target's preferences, changed for the run, were put back.
fn say_restored(run: &otpfleet_emulator::FleetRun) {
    match &run.restored {
        Some(Ok(prefs)) => eprintln!(
            "fleet: the target's preferences are put back (OTP validity {} h, auto approval {})",
            prefs.otp_validity_hours,
            on_off(prefs.auto_approve)
        ),
        Some(Err(why)) => eprintln!("warning: {why}; set them back by hand"),
        None => {}
    }
}

/// Runs the fleet against its server (started here, or the target), hearing SIGINT and SIGTERM;
/// answers the run and the signal that interrupted it, if one did.
async fn drive(
    opts: &FleetOpts,
    cfg: otpfleet_emulator::FleetConfig,
    token: Option<String>,
    watchers: &otpfleet_run::live::Watchers,
) -> anyhow::Result<(otpfleet_emulator::FleetRun, Option<i32>)> {
    let interrupts = otpfleet_run::interrupt::Interrupts::listen()
        .context("while listening for SIGINT and SIGTERM")?;
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    let otpfleet_run::target::Driven {
        url,
        admin_token: token,
        embedded: _server,
    } = otpfleet_run::target::server(opts.target.as_deref(), token, opts.poll_interval_s).await?;
    let ca_cert = opts.ca_cert.as_deref();
    if opts.target.is_some() && cfg.role.runs_consoles() {
        announce_changes(&url, &cfg);
    }
    watchers.watch_queue(&url, ca_cert, &token)?;
    let mut transport =
        otpfleet_run::target::transport(&url, ca_cert, opts.max_connections, timeout)?;
    if opts.connection_per_console {
        transport = transport.per_console();
    }
    // Every process of a split run sets the preferences, so none knows the ones found first.
    let restore_preferences = opts.target.is_some() && cfg.role == Role::All;
    let options = RunOptions {
        progress: !opts.quiet,
        progress_every: Some(Duration::from_secs(opts.progress_every_s)),
        stop: interrupts.token(),
        restore_preferences,
        start: opts
            .start_at
            .map(|at| otpfleet_run::start::start(at, opts.start_grace_s)),
        queue_idle: Some(Duration::from_secs(opts.queue_idle_s)),
        live: watchers.live.clone(),
    };
    let run = run_fleet(cfg, transport, &token, options)
        .await
        .map_err(|e| match e {
            RunError::MissedStart { .. } => {
                anyhow::Error::new(otpfleet_run::MissedStart(e.to_string()))
            }
            e => anyhow::Error::msg(e),
        })?;
    Ok((run, interrupts.signal()))
}

/// Says what a run will change on a server that is not ours, before it changes anything.
fn announce_changes(url: &str, cfg: &otpfleet_emulator::FleetConfig) {
    eprintln!(
        "fleet: changes the target {url}: sets its preferences (OTP validity {} h, auto approval \
         {}) for the run and puts back the ones it finds after it; imports {} accounts {} to {} \
         and generates an OTP for each",
        cfg.validity_hours,
        on_off(cfg.auto_approve),
        cfg.consoles,
        otpfleet_emulator::upn(cfg.seed, 0),
        otpfleet_emulator::upn(cfg.seed, cfg.consoles.saturating_sub(1)),
    );
}

/// A moment written in RFC 3339, with its offset.
fn rfc3339(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse().map_err(|e| {
        format!("{e}: write a moment in RFC 3339 with its offset, e.g. 2026-12-01T09:00:00Z")
    })
}

/// What this process runs, for its first line.
fn process_line(cfg: &FleetConfig) -> String {
    let shard = cfg.shard;
    let share = match shard.count() {
        1 => "every console".to_owned(),
        n => format!("shard {}/{n}", shard.index()),
    };
    match cfg.role {
        Role::All => format!("{share} and {} admin(s)", cfg.admins),
        Role::Consoles => format!("{share}, no admins (role consoles)"),
        Role::Admins => format!("{} admin(s), no consoles (role admins)", cfg.admins),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}
