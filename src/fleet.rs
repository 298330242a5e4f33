//! `otpfleet fleet`: thousands of virtual consoles and admins against the reference server
//! (started in process) or any server implementing the contract (`--target`).

use anyhow::{Context as _, bail};
use clap::Args;
use otpfleet_emulator::arrival::Arrival;
use otpfleet_emulator::config::DEFAULT_MAX_IN_FLIGHT;
use otpfleet_emulator::config::{FleetConfig, MsRange, Rate, Rates, Shard, Timing};
use otpfleet_emulator::{ConfigError, RunOptions, run_fleet};
use otpfleet_reports::{RunReport, Threshold};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct FleetOpts {
    /// Consoles in the whole fleet (this process runs its shard's share).
    #[arg(long, default_value_t = 2_000)]
    pub consoles: u64,
    /// The run's one seed; every console's serial, faults and typos derive from it. Default: a
    /// random seed, printed and stored in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only shard K of N (consoles whose index modulo N is K), e.g. 0/2.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// URL of a server implementing the contract: http:// or https://, a host name or address,
    /// and a base path every route is under (e.g. https://otp.staging.example:8443/base).
    /// Default: start the reference server in this process on 127.0.0.1:0.
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

    /// Virtual admins working the approval queue.
    #[arg(long, default_value_t = 2)]
    pub admins: u32,
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

    /// Most connections (and requests in flight) of the shared pool.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
    /// Give every console its own connection instead of the shared pool.
    #[arg(long)]
    pub connection_per_console: bool,
    /// Retries of a request after a network fault or transport error.
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
    /// generator lateness) but the generator spends less CPU. By default the last millisecond
    /// before a send is waited by yielding, so requests leave when due.
    #[arg(long)]
    pub coarse_timers: bool,
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

impl FleetOpts {
    fn config(&self, seed: u64) -> FleetConfig {
        FleetConfig {
            consoles: self.consoles,
            seed,
            shard: self.shard.unwrap_or(Shard::WHOLE),
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
            admins: self.admins,
            auto_approve: self.auto_approve,
            validity_hours: self.validity_hours,
            max_retries: self.max_retries,
            request_timeout_ms: self.request_timeout_ms,
            max_duration_ms: self.max_duration_s.saturating_mul(1000),
            precise_timers: !self.coarse_timers,
        }
    }

    /// The default run folder: `runs/fleet-seed<SEED>[-shard<K>of<N>]`.
    fn default_out(seed: u64, shard: Shard) -> PathBuf {
        let mut name = format!("fleet-seed{seed}");
        if shard.count() > 1 {
            name.push_str(&format!("-shard{}of{}", shard.index(), shard.count()));
        }
        PathBuf::from("runs").join(name)
    }
}

/// What a finished fleet run left behind.
#[derive(Debug)]
pub struct FleetDone {
    pub report: RunReport,
    pub out: PathBuf,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<i32>,
}

pub fn run(opts: FleetOpts) -> anyhow::Result<()> {
    let done = execute(&opts)?;
    print!("{}", crate::summary::text(&done.report, &done.out));
    crate::summary::ended(&done.report, done.interrupted)?;
    crate::summary::kept_promises(&done.report)?;
    crate::summary::judge(&done.report, &opts.threshold)
}

/// A setting out of range, named by the flag that sets it.
fn flag_error(e: ConfigError) -> anyhow::Error {
    let flag = match e {
        ConfigError::Consoles { .. } => "--consoles",
        ConfigError::NobodyApproves | ConfigError::Admins { .. } => "--admins",
        ConfigError::ValidityHours(_) => "--validity-hours",
        ConfigError::Retries { .. } => "--max-retries",
        ConfigError::ZeroTime => "--request-timeout-ms, --max-duration-s",
        ConfigError::NoneInFlight => "--max-in-flight",
        ConfigError::ReplayTooShort { .. } => "--arrival, --consoles",
    };
    anyhow::anyhow!("{flag}: {e}")
}

/// Runs the fleet and writes its folder; the CLI's `run` adds the summary and the exit code.
pub fn execute(opts: &FleetOpts) -> anyhow::Result<FleetDone> {
    let started_ms = crate::wall_clock_ms();
    let seed = opts.seed.unwrap_or_else(random_seed);
    let cfg = opts.config(seed);
    cfg.validate().map_err(flag_error)?;
    if opts.max_connections == 0 || opts.max_connections > 100_000 {
        bail!("--max-connections must be between 1 and 100000");
    }
    crate::target::check_target(
        opts.target.as_deref(),
        opts.admin_token_file.as_deref(),
        opts.ca_cert.as_deref(),
    )?;
    let token = opts
        .admin_token_file
        .as_deref()
        .map(crate::target::read_token_file)
        .transpose()?;
    let out = crate::target::run_folder(
        opts.out.as_deref(),
        &FleetOpts::default_out(seed, cfg.shard),
    )?;
    eprintln!(
        "fleet: {} consoles, seed {seed}, run folder {}",
        cfg.consoles,
        out.display()
    );
    if let Some(url) = &opts.target {
        announce_changes(url, &cfg);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let (run, interrupted) = runtime.block_on(drive(opts, cfg, token))?;
    match &run.restored {
        Some(Ok(prefs)) => eprintln!(
            "fleet: the target's preferences are put back (OTP validity {} h, auto approval {})",
            prefs.otp_validity_hours,
            on_off(prefs.auto_approve)
        ),
        Some(Err(why)) => eprintln!("warning: {why}; set them back by hand"),
        None => {}
    }
    let mut report = run.report;
    report.meta = Some(crate::target::run_meta(started_ms, None));
    crate::target::write_emulated_run(&out, &report, &run.recorder, &run.consoles)?;
    Ok(FleetDone {
        report,
        out,
        interrupted,
    })
}

/// Runs the fleet against its server (started here, or the target), hearing SIGINT and SIGTERM;
/// answers the run and the signal that interrupted it, if one did.
async fn drive(
    opts: &FleetOpts,
    cfg: otpfleet_emulator::FleetConfig,
    token: Option<String>,
) -> anyhow::Result<(otpfleet_emulator::FleetRun, Option<i32>)> {
    let interrupts =
        crate::interrupt::Interrupts::listen().context("while listening for SIGINT and SIGTERM")?;
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    let crate::target::Driven {
        url,
        admin_token: token,
        embedded: _server,
    } = crate::target::server(opts.target.as_deref(), token, opts.poll_interval_s).await?;
    let ca_cert = opts.ca_cert.as_deref();
    let mut transport = crate::target::transport(&url, ca_cert, opts.max_connections, timeout)?;
    if opts.connection_per_console {
        transport = transport.per_console();
    }
    let options = RunOptions {
        progress: !opts.quiet,
        progress_every: Some(Duration::from_secs(opts.progress_every_s)),
        stop: interrupts.token(),
        restore_preferences: opts.target.is_some(),
    };
    let run = run_fleet(cfg, transport, &token, options)
        .await
        .map_err(anyhow::Error::msg)?;
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

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// A seed for a run that was given none.
pub fn random_seed() -> u64 {
    // The seed is the one random choice of a run, so it comes from the OS once, here.
    let mut bytes = [0u8; 8];
    if getrandom(&mut bytes).is_err() {
        return u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes) % 1_000_000_000
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
