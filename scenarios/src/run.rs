//! One load run: our defaults for goose's options, setting the server up, the harness's
//! background work, the goose attack, and what it left.

use crate::ScenarioName;
use crate::background;
use crate::common::{Harness, HarnessConfig};
use crate::mixed;
use crate::setup::{self, SetupPlan};
use crate::tickets::TicketQueue;
use goose::config::{GooseConfiguration, RUN_FOLDER};
use goose::metrics::{GooseCoordinatedOmissionMitigation, GooseMetrics};
use goose::threshold::ThresholdResult;
use goose::{GooseAttack, GooseError};
use otpfleet_client::HttpTransport;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `--run-time` when neither it, `--iterations` nor `--test-plan` is given: every run ends.
pub const DEFAULT_RUN_TIME: &str = "30s";
/// Decisions per second the feeder's OTPs are sized for when `--tickets` is not given: about
/// twice what 4 admins reach against the reference server on 2 cores (3,200/s measured), so
/// the queue stays full for the whole run.
const FEED_RATE_PER_S: f64 = 6_000.0;
/// Accounts in the `issue` admins' pool (at least).
const ISSUE_POOL: usize = 2_000;
/// The longest run OTPs are sized for (a day).
const MAX_RUN_S: f64 = 24.0 * 3600.0;
/// Most OTPs issued per pool without `--tickets` (a long run then warns that they ran out).
const DEFAULT_TICKETS_MAX: usize = 500_000;

/// A load run's settings besides goose's own.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub scenario: ScenarioName,
    /// The server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub admin_token: String,
    pub seed: u64,
    /// Pre-issued OTPs (consoles' or feeder's, per scenario); default: sized from the users
    /// and the run's length.
    pub tickets: Option<usize>,
    pub batch_size: usize,
    pub reject_rate: f64,
    /// Requests the feeder keeps awaiting approval.
    pub queue_depth: usize,
    /// The server's polling interval, to size the consoles' OTPs (consoles use whatever
    /// interval the server answers).
    pub poll_interval_s: u32,
    /// Connections of the harness's own transport (setup, feeder, approver).
    pub max_connections: usize,
    pub validity_hours: u32,
}

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Options(String),
    #[error("while setting the server up: {0}")]
    Setup(#[from] crate::setup::SetupError),
    #[error(transparent)]
    Target(#[from] otpfleet_client::TargetError),
    #[error("goose: {}", goose_message(.0))]
    Goose(GooseError),
}

/// A goose error with what its fields say (its `Display` names only the kind): the option,
/// the value and goose's explanation.
pub fn goose_message(e: &GooseError) -> String {
    match e {
        GooseError::InvalidOption {
            option,
            value,
            detail,
        } => format!("{option} {value:?}: {detail}"),
        other => other.to_string(),
    }
}

impl From<GooseError> for LoadError {
    fn from(e: GooseError) -> Self {
        // GooseError's Display names the kind; the detail is in its fields.
        LoadError::Goose(e)
    }
}

/// How big the attack is: users at most and how long, to size the OTPs issued before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    pub users: usize,
    /// Ramp up plus run time (or the test plan's length), seconds.
    pub duration_s: f64,
    /// `--iterations`, when given: each user runs its scenario that many times.
    pub iterations: Option<usize>,
    /// Whether coordinated-omission correction is on (`--co-mitigation` other than
    /// `disabled`): our response view then gets the same synthetic samples goose adds.
    pub co_mitigation: bool,
}

/// Fills in what the command line left out, keeping goose's meaning of every option:
/// `--host` from the target, users per scenario, every user started within a second, a
/// 30-second `--run-time`, and goose's HTML and JSON reports in the run folder
/// (`goose-report.html`, `goose-report.json`). Coordinated-omission mitigation stays goose's
/// default, disabled: the scenarios pause on purpose (approvers on an empty queue, consoles
/// between polls), and goose's mitigation takes those pauses for stalls.
pub fn apply_goose_defaults(
    goose: &mut GooseConfiguration,
    scenario: ScenarioName,
    url: &str,
    out: &Path,
) -> Result<Sizing, LoadError> {
    if goose.host.is_some() {
        return Err(LoadError::Options(
            "--host is set by otpfleet: give --target URL with --admin-token-file PATH (the \
             scenarios need the admin token to issue OTPs)"
                .into(),
        ));
    }
    goose.host = Some(url.to_owned());
    let plan = test_plan_steps(goose);
    let iterations = goose.iterations.filter(|n| *n > 0);
    if plan.is_none() {
        let users = *goose.users.get_or_insert(scenario.default_users());
        if goose.increase_rate.is_none() && goose.increase_time.is_none() {
            goose.increase_rate = Some(users.to_string());
        }
        if iterations.is_none() && goose.run_time.is_none() {
            goose.run_time = Some(DEFAULT_RUN_TIME.to_owned());
        }
    }
    if goose.users == Some(0) {
        return Err(LoadError::Options(
            "--users 0: give at least one user (-u 1)".into(),
        ));
    }
    // Goose checks its options only once the attack starts, after our set-up issued OTPs:
    // refuse a rule it would refuse, now.
    for rule in &goose.threshold {
        if let Err(e) = rule.parse::<goose::threshold::Threshold>() {
            return Err(LoadError::Options(format!(
                "--threshold {rule:?} is not a goose threshold: {}",
                goose_message(&e)
            )));
        }
    }
    if let Some(t) = &goose.run_time {
        if goose::util::parse_timespan(t) == Some(0) {
            return Err(LoadError::Options(format!(
                "--run-time {t:?} would run until stopped: give a time, such as 30s"
            )));
        }
    }
    if !goose.no_metrics {
        goose
            .co_mitigation
            .get_or_insert(GooseCoordinatedOmissionMitigation::Disabled);
        if goose.report_file.is_empty() {
            for name in ["goose-report.html", "goose-report.json"] {
                goose.report_file.push(out.join(name).display().to_string());
            }
        }
    }
    if goose.output_dir.is_none() && uses_run_folder(goose) {
        goose.output_dir = Some(out.join("goose").display().to_string());
    }
    Ok(sizing(goose, plan, iterations))
}

/// Goose's controllers (telnet, WebSocket) take commands from anyone who reaches them, with no
/// authentication: a local user once sent `stop`, `host http://127.0.0.1:<theirs>`, `start` to
/// the telnet controller goose opens by default, and the run's requests, each carrying the
/// target's admin token, went to their listener. So they are off unless asked for
/// (`--telnet-host`, `--telnet-port`, `--websocket`), then only on a loopback address and with
/// a warning, and never beside a token read from `--admin-token-file` (a real target's).
/// Checked before anything starts.
pub fn controllers(goose: &mut GooseConfiguration, token_from_file: bool) -> Result<(), LoadError> {
    let telnet = !goose.no_telnet && (goose.telnet_host.is_some() || goose.telnet_port.is_some());
    goose.no_telnet = !telnet;
    let asked: Vec<(&str, &Option<String>)> = [
        (telnet, "telnet", &goose.telnet_host),
        (goose.websocket, "WebSocket", &goose.websocket_host),
    ]
    .into_iter()
    .filter(|(on, ..)| *on)
    .map(|(_, name, host)| (name, host))
    .collect();
    if asked.is_empty() {
        if goose.no_autostart {
            return Err(LoadError::Options(
                "--no-autostart waits for a controller's start command: give --telnet-port PORT \
                 or --websocket too"
                    .into(),
            ));
        }
        return Ok(());
    }
    for (name, host) in asked {
        let host = host.as_deref().unwrap_or("127.0.0.1");
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(LoadError::Options(format!(
                "goose's {name} controller has no authentication: it listens on a loopback \
                 address only (127.0.0.1 or ::1), not {host}"
            )));
        }
        if token_from_file {
            return Err(LoadError::Options(format!(
                "goose's {name} controller has no authentication: any local user could point \
                 the run, and the admin token of --admin-token-file, at a server of theirs; \
                 against a --target, run without --telnet-host, --telnet-port and --websocket"
            )));
        }
        eprintln!(
            "load: warning: goose's {name} controller on {host} has no authentication: any \
             local user can stop, steer or restart this run"
        );
    }
    Ok(())
}

/// The steps `(users, milliseconds)` of `--test-plan`, if given (goose keeps the field to
/// itself; its serialized form shows it).
fn test_plan_steps(goose: &GooseConfiguration) -> Option<Vec<(usize, usize)>> {
    let json = serde_json::to_value(goose).ok()?;
    serde_json::from_value(json.get("test_plan")?.get("steps")?.clone()).ok()
}

/// Whether an output flag was given without a path (goose then writes into its run folder).
fn uses_run_folder(goose: &GooseConfiguration) -> bool {
    let bare = |v: &Option<String>| v.as_deref() == Some(RUN_FOLDER);
    goose.report_file.iter().any(|f| f == RUN_FOLDER)
        || [
            &goose.goose_log,
            &goose.request_log,
            &goose.transaction_log,
            &goose.scenario_log,
            &goose.error_log,
            &goose.debug_log,
        ]
        .into_iter()
        .any(bare)
}

fn co_mitigation(goose: &GooseConfiguration) -> bool {
    !matches!(
        goose.co_mitigation,
        None | Some(GooseCoordinatedOmissionMitigation::Disabled)
    )
}

fn sizing(
    goose: &GooseConfiguration,
    plan: Option<Vec<(usize, usize)>>,
    iterations: Option<usize>,
) -> Sizing {
    if let Some(steps) = plan {
        let users = steps.iter().map(|(u, _)| *u).max().unwrap_or(1);
        let ms: usize = steps.iter().map(|(_, ms)| ms).sum();
        return Sizing {
            users,
            duration_s: ms as f64 / 1000.0,
            iterations: None,
            co_mitigation: co_mitigation(goose),
        };
    }
    let users = goose.users.unwrap_or(1).max(1);
    let secs = |t: &Option<String>| {
        t.as_deref()
            .and_then(goose::util::parse_timespan)
            .unwrap_or(0) as f64
    };
    let ramp_s = match goose
        .increase_rate
        .as_deref()
        .and_then(|r| r.parse::<f64>().ok())
    {
        Some(rate) if rate > 0.0 && goose.increase_time.is_none() => users as f64 / rate,
        _ => secs(&goose.increase_time),
    };
    Sizing {
        users,
        duration_s: (ramp_s + secs(&goose.run_time) + secs(&goose.decrease_time)).min(MAX_RUN_S),
        iterations,
        co_mitigation: co_mitigation(goose),
    }
}

/// The accounts and OTPs a run needs.
pub(crate) fn plan_setup(cfg: &LoadConfig, s: &Sizing) -> SetupPlan {
    let share = cfg.scenario.console_share();
    let console_users = (s.users as f64 * share).ceil() as usize;
    // A console's flow lasts at least one polling interval (its first poll), so a console
    // user goes through at most duration / interval + 1 flows.
    let flows = s.iterations.unwrap_or_else(|| {
        (s.duration_s / f64::from(cfg.poll_interval_s.max(1))).ceil() as usize + 2
    });
    let console_tickets = match (share > 0.0, cfg.tickets) {
        (false, _) => 0,
        (true, Some(n)) => n,
        (true, None) => console_users
            .saturating_mul(flows)
            .saturating_add(16)
            .min(DEFAULT_TICKETS_MAX),
    };
    let feeder_tickets = match (cfg.scenario.feeds_queue(), cfg.tickets) {
        (false, _) => 0,
        (true, Some(n)) => n,
        (true, None) => match s.iterations {
            Some(n) => s.users.saturating_mul(n).saturating_add(cfg.queue_depth),
            None => (FEED_RATE_PER_S * s.duration_s) as usize + cfg.queue_depth,
        }
        .min(DEFAULT_TICKETS_MAX),
    };
    let issue_accounts = if cfg.scenario.issues() {
        ISSUE_POOL.max(cfg.batch_size.saturating_mul(s.users))
    } else {
        0
    };
    SetupPlan {
        seed: cfg.seed,
        console_tickets,
        feeder_tickets,
        issue_accounts,
        validity_hours: cfg.validity_hours,
    }
}

fn harness_config(cfg: &LoadConfig, s: &Sizing) -> HarnessConfig {
    let mixed = cfg.scenario == ScenarioName::Mixed;
    let defaults = HarnessConfig::default();
    HarnessConfig {
        seed: cfg.seed,
        admin_token: cfg.admin_token.clone(),
        batch_size: cfg.batch_size,
        reject_rate: cfg.reject_rate,
        idle: if mixed {
            mixed::APPROVER_IDLE
        } else {
            defaults.idle
        },
        issue_think: if mixed {
            mixed::ISSUE_THINK
        } else {
            Duration::ZERO
        },
        wind_down_after: s
            .iterations
            .is_none()
            .then(|| Duration::from_secs_f64(s.duration_s)),
        co_mitigation: s.co_mitigation,
        ..defaults
    }
}

/// What a run left.
#[derive(Debug)]
pub struct LoadRun {
    pub harness: Arc<Harness>,
    pub metrics: GooseMetrics,
    /// The `--threshold` rules that failed (goose's verdict).
    pub thresholds_failed: Vec<ThresholdResult>,
    /// Wall time of the attack (ramp up, run, ramp down).
    pub elapsed: Duration,
    pub setup: SetupPlan,
    /// Seconds setting the server up took.
    pub setup_s: f64,
    pub feeder_tickets_used: usize,
    /// Why the harness's background work stopped before the attack did, if it did.
    pub background_stopped: Option<String>,
    /// Whether goose's killswitch stopped the attack other than for a failed `--threshold`:
    /// Ctrl-C (goose's own handler) or a signal the command passed on.
    pub interrupted: bool,
    /// Goose's configuration as given to the attack (dashboard token hidden by goose).
    pub goose_config: serde_json::Value,
}

/// The harness's work beside goose's users: the feeder (`approve`) and the approver
/// (`redeem`), each when its scenario needs it.
struct BackgroundTasks {
    feeder: Option<tokio::task::JoinHandle<Option<String>>>,
    approver: Option<tokio::task::JoinHandle<()>>,
    cancel: CancellationToken,
}

impl BackgroundTasks {
    fn start(
        cfg: &LoadConfig,
        h: &Arc<Harness>,
        transport: &HttpTransport,
        feeder_tickets: &Arc<TicketQueue>,
    ) -> BackgroundTasks {
        let cancel = CancellationToken::new();
        let feeder = cfg.scenario.feeds_queue().then(|| {
            let (h, t, c) = (Arc::clone(h), transport.clone(), cancel.clone());
            let tickets = Arc::clone(feeder_tickets);
            tokio::spawn(background::feed(t, h, tickets, cfg.queue_depth, c))
        });
        let approver = cfg.scenario.approves().then(|| {
            let (h, t, c) = (Arc::clone(h), transport.clone(), cancel.clone());
            tokio::spawn(background::approve_all(t, h, c))
        });
        BackgroundTasks {
            feeder,
            approver,
            cancel,
        }
    }

    /// Stops both and waits for them; answers why one stopped early, if one did (a task
    /// that panicked says so instead of vanishing).
    async fn stop(self) -> Option<String> {
        self.cancel.cancel();
        let mut stopped_because = None;
        if let Some(task) = self.feeder {
            stopped_because = match task.await {
                Ok(why) => why,
                Err(e) => Some(format!("the harness's feeder failed: {e}")),
            };
        }
        if let Some(task) = self.approver {
            if let Err(e) = task.await {
                stopped_because.get_or_insert(format!("the harness's approver failed: {e}"));
            }
        }
        stopped_because
    }
}

/// Sets the server up, runs the attack with the harness's background work beside it, and
/// answers what it measured. A failed `--threshold` is not an error here: it is in
/// `thresholds_failed`, with every report of the run. `live`, when given, is set to the
/// run's harness as the attack starts (a live page reads it).
pub async fn run_load(
    cfg: &LoadConfig,
    goose: GooseConfiguration,
    sizing: &Sizing,
    live: Option<&OnceLock<Arc<Harness>>>,
) -> Result<LoadRun, LoadError> {
    let transport = HttpTransport::new(&cfg.url, cfg.max_connections, Duration::from_secs(30))?;
    let plan = plan_setup(cfg, sizing);
    let setup_started = Instant::now();
    let seeded = setup::seed(&transport, &cfg.admin_token, &plan)
        .await
        .map_err(LoadError::Setup)?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    let h = Arc::new(Harness::new(
        harness_config(cfg, sizing),
        seeded.console_tickets,
        seeded.issue_accounts,
    ));
    if let Some(live) = live {
        let _ = live.set(Arc::clone(&h));
    }
    let feeder_tickets = Arc::new(seeded.feeder_tickets);
    let background = BackgroundTasks::start(cfg, &h, &transport, &feeder_tickets);
    let goose_config =
        serde_json::to_value(&goose).expect("goose's options are plain data and serialize");
    let attack = cfg
        .scenario
        .register(GooseAttack::initialize_with_config(goose)?, &h)?;
    let started = Instant::now();
    let recorder = Arc::clone(&h);
    let ticker = otpfleet_client::tick_intervals(
        move |end| recorder.recorder.close_interval(end),
        started,
        otpfleet_reports::interval_length(Duration::from_secs_f64(sizing.duration_s)),
    );
    let result = attack.execute().await;
    let elapsed = started.elapsed();
    ticker.abort();
    h.recorder.close_interval(elapsed);
    let background_stopped = background.stop().await;
    let (metrics, thresholds_failed) = match result {
        Ok(metrics) => (metrics, Vec::new()),
        Err(GooseError::ThresholdsFailed { failed, metrics }) => (*metrics.0, failed),
        Err(e) => return Err(e.into()),
    };
    let interrupted =
        goose::is_killswitch_triggered() && !thresholds_failed.iter().any(|t| t.aborted);
    Ok(LoadRun {
        harness: h,
        metrics,
        thresholds_failed,
        elapsed,
        setup: plan,
        setup_s,
        feeder_tickets_used: feeder_tickets.taken(),
        background_stopped,
        interrupted,
        goose_config,
    })
}

/// Runs goose alone for its informational flags (`--version`, `--list`, `--scenarios-list`,
/// `--render-report`), which exit or write before any load: nothing is set up.
pub async fn run_goose_only(
    scenario: ScenarioName,
    goose: GooseConfiguration,
) -> Result<(), LoadError> {
    let h = Arc::new(Harness::new(
        HarnessConfig::default(),
        TicketQueue::default(),
        Vec::new(),
    ));
    let attack = scenario.register(GooseAttack::initialize_with_config(goose)?, &h)?;
    attack.execute().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parsed(args: &[&str]) -> GooseConfiguration {
        GooseConfiguration::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .expect("goose options")
    }

    fn config(scenario: ScenarioName) -> LoadConfig {
        LoadConfig {
            scenario,
            url: "http://127.0.0.1:9".into(),
            admin_token: "t".into(),
            seed: 7,
            tickets: None,
            batch_size: 25,
            reject_rate: 0.0,
            queue_depth: 100,
            poll_interval_s: 1,
            max_connections: 4,
            validity_hours: 8,
        }
    }

    #[test]
    fn defaults_bound_the_run_and_leave_mitigation_off() {
        let mut g = parsed(&[]);
        let out = Path::new("runs/x");
        let s = apply_goose_defaults(&mut g, ScenarioName::Redeem, "http://h:1", out).expect("ok");
        assert_eq!(g.host.as_deref(), Some("http://h:1"));
        assert_eq!(g.users, Some(crate::redeem::DEFAULT_USERS));
        assert_eq!(g.run_time.as_deref(), Some(DEFAULT_RUN_TIME));
        assert_eq!(
            g.co_mitigation,
            Some(GooseCoordinatedOmissionMitigation::Disabled)
        );
        assert!(!s.co_mitigation);
        assert_eq!(g.report_file.len(), 2);
        assert!(
            g.output_dir.is_none(),
            "goose refuses an output dir nothing is written to"
        );
        assert_eq!(s.users, 64);
        assert!((s.duration_s - 31.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn what_the_command_line_gives_wins() {
        let mut g = parsed(&[
            "-u",
            "3",
            "-r",
            "1",
            "-t",
            "10s",
            "--co-mitigation",
            "disabled",
        ]);
        let s = apply_goose_defaults(&mut g, ScenarioName::Issue, "http://h:1", Path::new("o"))
            .expect("ok");
        assert_eq!(
            g.co_mitigation,
            Some(GooseCoordinatedOmissionMitigation::Disabled)
        );
        assert_eq!((s.users, s.duration_s), (3, 13.0));
        let mut g = parsed(&["--iterations", "5"]);
        let s = apply_goose_defaults(&mut g, ScenarioName::Issue, "http://h:1", Path::new("o"))
            .expect("ok");
        assert!(
            g.run_time.is_none(),
            "goose refuses --run-time with --iterations"
        );
        assert_eq!(s.iterations, Some(5));
        let mut g = parsed(&["--test-plan", "10,5s;0,5s"]);
        let s = apply_goose_defaults(&mut g, ScenarioName::Issue, "http://h:1", Path::new("o"))
            .expect("ok");
        assert!(g.users.is_none() && g.run_time.is_none() && g.increase_rate.is_none());
        assert_eq!((s.users, s.duration_s), (10, 10.0));
    }

    #[test]
    fn unbounded_or_conflicting_options_are_refused() {
        let mut g = parsed(&["-t", "0"]);
        assert!(apply_goose_defaults(&mut g, ScenarioName::Issue, "u", Path::new("o")).is_err());
        let mut g = parsed(&["-H", "http://elsewhere"]);
        let e = apply_goose_defaults(&mut g, ScenarioName::Issue, "u", Path::new("o"));
        assert!(e.is_err_and(|e| e.to_string().contains("--target")));
    }

    #[test]
    fn goose_controllers_are_off_unless_asked_and_never_beside_a_real_targets_token() {
        let apply = |args: &[&str], from_file: bool| {
            let mut g = parsed(args);
            let r = controllers(&mut g, from_file);
            (g, r.map_err(|e| e.to_string()))
        };
        let (g, r) = apply(&[], false);
        assert!(r.is_ok() && g.no_telnet && !g.websocket, "off by default");
        let (g, r) = apply(&["--telnet-port", "6116"], false);
        assert!(
            r.is_ok() && !g.no_telnet,
            "asked for, against the embedded server"
        );
        let (_, r) = apply(&["--telnet-host", "0.0.0.0"], false);
        assert!(r.is_err_and(|e| e.contains("loopback address only")));
        let (_, r) = apply(&["--websocket", "--websocket-host", "192.0.2.1"], false);
        assert!(r.is_err_and(|e| e.contains("WebSocket controller")));
        for asked in [&["--telnet-port", "6116"][..], &["--websocket"]] {
            let (_, r) = apply(asked, true);
            assert!(
                r.is_err_and(|e| e.contains("--admin-token-file")),
                "{asked:?}"
            );
        }
        let (_, r) = apply(&["--no-autostart"], false);
        assert!(r.is_err_and(|e| e.contains("--no-autostart")));
    }

    #[test]
    fn a_bare_output_flag_gets_a_goose_folder_in_the_run_folder() {
        let mut g = parsed(&["--request-log"]);
        apply_goose_defaults(&mut g, ScenarioName::Issue, "u", Path::new("runs/x")).expect("ok");
        assert_eq!(g.output_dir.as_deref(), Some("runs/x/goose"));
    }

    #[test]
    fn consoles_get_an_otp_for_every_flow_they_can_run() {
        let s = Sizing {
            users: 20,
            duration_s: 10.0,
            iterations: None,
            co_mitigation: false,
        };
        let plan = plan_setup(&config(ScenarioName::Mixed), &s);
        // 16 of 20 users are consoles, each at most 10 s / 1 s + 2 flows.
        assert_eq!(plan.console_tickets, 16 * 12 + 16);
        assert_eq!(plan.feeder_tickets, 0);
        assert!(plan.issue_accounts >= ISSUE_POOL);
        let plan = plan_setup(&config(ScenarioName::Approve), &s);
        assert_eq!(plan.console_tickets, 0);
        assert_eq!(plan.feeder_tickets, 60_000 + 100);
        let given = LoadConfig {
            tickets: Some(500),
            ..config(ScenarioName::Redeem)
        };
        assert_eq!(plan_setup(&given, &s).console_tickets, 500);
    }
}
