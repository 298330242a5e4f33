//! A fleet run: seed the server, start the admins, let every console arrive and walk its first
//! boot, collect the outcomes (with a progress bar), and build the report.

use crate::admin::{Admin, run_admin};
use crate::api::Requester;
use crate::arrival::Schedule;
use crate::config::FleetConfig;
use crate::console::{ConsoleRecord, run_console};
use crate::error::RunError;
use crate::live::Live;
use crate::profile::ConsoleProfile;
use crate::seed::seed_server;
use indicatif::{ProgressBar, ProgressStyle};
use otpfleet_client::{AdminClient, AdminError, Desk, Ticket, Transport, tick_intervals};
use otpfleet_reports::{
    ArrivalPoint, Measured, Outcome, Outcomes, Recorder, RunKind, RunOf, RunReport, Settings,
    ShardInfo, Step, interval_length,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a run shows itself while it goes, and how it is stopped from outside.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show progress on stderr: a bar on a terminal, else a plain line every `progress_every`.
    pub progress: bool,
    /// How often a plain progress line is printed when stderr is not a terminal (default 10 s).
    pub progress_every: Option<Duration>,
    /// Cancelled to interrupt the run: no new work starts, requests in flight finish (each
    /// within its timeout), and the report says `stopped_because: "interrupted"`.
    pub stop: CancellationToken,
    /// Read the server's preferences before the run changes them, and put them back after it
    /// (a server that is not ours: `--target`).
    pub restore_preferences: bool,
    /// The common start of the processes of one run (`--start-at`): measuring begins then.
    pub start: Option<Start>,
    /// Set to the run's live view when it starts (`--metrics-listen` and `--dashboard` read it).
    pub live: Option<Arc<std::sync::OnceLock<Live>>>,
    /// The admin process of a split run (role admins) ends once the schedule's last console
    /// has arrived and the approval queue has then been empty this long (default 30 s: longer
    /// than a console takes from its arrival to its redemption).
    pub queue_idle: Option<Duration>,
}

/// How long the admin process waits on an empty queue after the last arrival, by default.
const QUEUE_IDLE: Duration = Duration::from_secs(30);

/// The common start of the processes of one run: each waits for `at` once it is ready (seeded),
/// and one that is ready later than `grace` after it does not run at all.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub at: Instant,
    pub grace: Duration,
}

impl Start {
    /// Waits for the start (or until `stop`); answers the instant the run is measured from: the
    /// common start, even when this process was ready a little after it (within the grace), so
    /// its consoles keep the run's schedule and the launcher's lateness shows the delay.
    pub async fn wait(self, stop: &CancellationToken, progress: bool) -> Result<Instant, RunError> {
        let now = Instant::now();
        if now > self.at + self.grace {
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            return Err(RunError::MissedStart {
                late_ms: ms(now - self.at),
                grace_ms: ms(self.grace),
            });
        }
        if progress && self.at > now {
            let wait = (self.at - now).as_secs_f64();
            eprintln!("fleet: ready; waiting {wait:.1} s for the common start");
        }
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(self.at) => Ok(self.at),
            () = stop.cancelled() => Ok(Instant::now()),
        }
    }
}

/// How often a plain progress line is printed by default.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a run produced.
#[derive(Debug)]
pub struct FleetRun {
    pub report: RunReport,
    pub recorder: Arc<Recorder>,
    /// One record per console, in index order.
    pub consoles: Vec<ConsoleRecord>,
    /// With `RunOptions::restore_preferences`: the preferences found and put back, or why they
    /// could not be put back.
    pub restored: Option<Result<otpfleet_protocol::Preferences, AdminError>>,
}

/// The consoles of this run's shard, drawn from the seed, arriving on the run's schedule (the
/// whole run's: a shard's consoles arrive when they would in the unsharded run).
pub fn profiles(cfg: &FleetConfig) -> Vec<ConsoleProfile> {
    let window_ms = cfg.timing.arrival_window_ms;
    let schedule = Schedule::new(&cfg.arrival, cfg.consoles, window_ms, cfg.seed);
    (0..cfg.consoles)
        .filter(|i| cfg.shard.owns(*i))
        .map(|i| ConsoleProfile {
            arrival_ms: schedule.at_ms(i),
            ..ConsoleProfile::draw(cfg, i)
        })
        .collect()
}

/// Runs a fleet against the server behind `transport`, administered with `admin_token`.
/// A setup failure (the server refuses to be seeded) is an error; a server that dies mid-run
/// ends the run early with a report of what was measured (`complete: false`).
pub async fn run_fleet<T: Transport>(
    cfg: FleetConfig,
    transport: T,
    admin_token: &str,
    opts: RunOptions,
) -> Result<FleetRun, RunError> {
    cfg.validate()?;
    let requester = Arc::new(Requester::new(cfg.clone()));
    let admin = AdminClient::new(&transport, admin_token);
    let found = match opts.restore_preferences {
        true => Some(admin.preferences().await?),
        false => None,
    };
    let (profiles, tickets) = match cfg.role.runs_consoles() {
        true => {
            let profiles = profiles(&cfg);
            let tickets = seed_server(&requester, &transport, admin_token, &profiles).await?;
            (profiles, tickets)
        }
        false => Default::default(),
    };
    let started = match opts.start {
        Some(start) => start.wait(&opts.stop, opts.progress).await?,
        None => Instant::now(),
    };
    if let Some(live) = &opts.live {
        let _ = live.set(Live::new(Arc::clone(&requester), started, &profiles));
    }
    let arrivals = Arrivals {
        profiles,
        tickets,
        started,
    };
    let (records, elapsed) = measure(&requester, &transport, admin_token, arrivals, &opts).await;
    let report = RunReport::new(
        run_of(
            RunKind::Fleet,
            &requester,
            &transport.describe(),
            Settings::of(&requester.cfg),
        ),
        measured(RunKind::Fleet, &requester, &records, elapsed),
    );
    let restored = match found {
        Some(prefs) => Some(admin.put_preferences(prefs).await.map(|()| prefs)),
        None => None,
    };
    Ok(FleetRun {
        report,
        recorder: Arc::clone(&requester.recorder),
        consoles: records,
        restored,
    })
}

/// The consoles of a run, their tickets, and the start their arrivals count from.
struct Arrivals {
    profiles: Vec<ConsoleProfile>,
    tickets: Vec<Ticket>,
    started: Instant,
}

/// The measured part of a run: the consoles arrive and walk their first boot while the admins
/// work the queue. Answers the consoles' records in index order and the span measured.
async fn measure<T: Transport>(
    requester: &Arc<Requester>,
    transport: &T,
    admin_token: &str,
    arrivals: Arrivals,
    opts: &RunOptions,
) -> (Vec<ConsoleRecord>, Duration) {
    let Arrivals {
        profiles,
        tickets,
        started,
    } = arrivals;
    let interrupt = {
        let (requester, stop) = (Arc::clone(requester), opts.stop.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            requester.stop.because(otpfleet_reports::INTERRUPTED);
        })
    };
    let consoles_done = CancellationToken::new();
    let admin_tasks = spawn_admins(requester, transport, admin_token, &consoles_done);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let total = profiles.len();
    let launcher = {
        let (requester, transport) = (Arc::clone(requester), transport.clone());
        tokio::spawn(
            async move { launch(&requester, &transport, profiles, tickets, started, tx).await },
        )
    };
    let recorder = Arc::clone(&requester.recorder);
    let ticker = tick_intervals(
        move |end| recorder.close_interval(end),
        started,
        interval_length(Duration::from_millis(requester.cfg.max_duration_ms)),
    );
    let (mut records, elapsed) = match requester.cfg.role.runs_consoles() {
        true => {
            let mut progress = Progress::new("fleet", total as u64, opts, started);
            let records =
                collect(requester, rx, total, started, &mut progress, opts.progress).await;
            progress.finish();
            (records, started.elapsed())
        }
        false => (Vec::new(), work_the_queue(requester, started, opts).await),
    };
    interrupt.abort();
    consoles_done.cancel();
    join_counted(requester, std::iter::once(launcher)).await;
    join_counted(requester, admin_tasks).await;
    records.sort_by_key(|r| r.index);
    ticker.abort();
    requester.recorder.close_interval(started.elapsed());
    (records, elapsed)
}

/// The admin process of a split run (role admins) works the approval queue until the
/// schedule's last console has arrived and the queue has then stayed empty for
/// `RunOptions::queue_idle` (or the run's time limit, or a stop). Answers the span measured:
/// from the start to the admins' last work (a listing that found requests, or a decision), so
/// the idle wait at the end does not thin the run's rates.
async fn work_the_queue(requester: &Requester, started: Instant, opts: &RunOptions) -> Duration {
    let cfg = &requester.cfg;
    let last_arrival = started + Duration::from_millis(last_arrival_ms(cfg));
    let (idle, limit_ms) = (opts.queue_idle.unwrap_or(QUEUE_IDLE), cfg.max_duration_ms);
    let deadline = started + Duration::from_millis(limit_ms);
    let every = opts.progress_every.unwrap_or(PROGRESS_EVERY);
    let mut last_line = started;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = tick.tick() => {}
            () = requester.stop.stopped() => return started.elapsed(),
        }
        let now = Instant::now();
        let worked = requester.tally.admins_last_worked();
        let busy = worked.unwrap_or(started).max(last_arrival);
        if now >= busy + idle {
            return worked.map_or(now, |w| w.max(started)) - started;
        }
        if now >= deadline {
            requester.stop.because(format!(
                "the run reached its time limit ({} s)",
                limit_ms / 1000
            ));
            return started.elapsed();
        }
        if opts.progress && now >= last_line + every {
            last_line = now;
            eprintln!(
                "admins: {:.0} s, {} decided, queue last seen busy {:.0} s ago",
                (now - started).as_secs_f64(),
                requester.recorder.counts(Step::Approve).requests
                    + requester.recorder.counts(Step::Reject).requests,
                (now - busy.min(now)).as_secs_f64(),
            );
        }
    }
}

/// When the schedule's last console arrives, ms from the start (every shard's).
fn last_arrival_ms(cfg: &FleetConfig) -> u64 {
    let schedule = Schedule::new(
        &cfg.arrival,
        cfg.consoles,
        cfg.timing.arrival_window_ms,
        cfg.seed,
    );
    (0..cfg.consoles)
        .map(|i| schedule.at_ms(i))
        .max()
        .unwrap_or(0)
}

/// Starts the fleet's admins (none with auto approval), working until `consoles_done`.
fn spawn_admins<T: Transport>(
    requester: &Arc<Requester>,
    transport: &T,
    admin_token: &str,
    consoles_done: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cfg = &requester.cfg;
    let admins = if cfg.auto_approve { 0 } else { cfg.admins };
    let desk = Arc::new(Desk::default());
    (0..admins)
        .map(|number| {
            let admin = Admin {
                number,
                token: admin_token.to_owned(),
                schedule: None,
                decision: cfg.timing.decision,
                reject: cfg.rates.reject,
                fixed: Arc::default(),
            };
            let (requester, transport, desk, consoles_done) = (
                Arc::clone(requester),
                transport.clone(),
                Arc::clone(&desk),
                consoles_done.clone(),
            );
            tokio::spawn(async move {
                run_admin(&requester, transport, admin, &desk, consoles_done).await
            })
        })
        .collect()
}

/// Spawns each console when its installer arrives (so only arrived consoles hold memory); its
/// record goes to `tx`. Arrivals are counted from `origin`.
pub(crate) async fn launch<T: Transport>(
    requester: &Arc<Requester>,
    transport: &T,
    profiles: Vec<ConsoleProfile>,
    tickets: Vec<Ticket>,
    origin: Instant,
    tx: tokio::sync::mpsc::UnboundedSender<ConsoleRecord>,
) {
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = requester.cfg.max_in_flight;
    for (p, ticket) in profiles.into_iter().zip(tickets) {
        let arrival = origin + Duration::from_millis(p.arrival_ms);
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(arrival) => {}
            () = requester.stop.stopped() => {}
        }
        if requester.stop.is_stopped() {
            let _ = tx.send(ConsoleRecord::never_started(
                &p,
                "the run stopped before it was due",
            ));
            continue;
        }
        requester.tally.arrived();
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            let _ = tx.send(ConsoleRecord::dropped(&p, max_in_flight));
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (requester, transport, tx, in_flight) = (
            Arc::clone(requester),
            transport.dedicated(),
            tx.clone(),
            Arc::clone(&in_flight),
        );
        tokio::spawn(async move {
            let started_ms = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            let mut record = run_console(&requester, transport, &p, &ticket, origin).await;
            record.started_ms = Some(started_ms);
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(record);
        });
    }
}

/// Receives the consoles' records until all `total` are in or the run's time limit passes
/// (then the stopped consoles' records still come in), showing progress once a second.
async fn collect(
    requester: &Requester,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ConsoleRecord>,
    total: usize,
    started: Instant,
    progress: &mut Progress,
    show_progress: bool,
) -> Vec<ConsoleRecord> {
    let limit_ms = requester.cfg.max_duration_ms;
    let deadline = started + Duration::from_millis(limit_ms);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut records = Vec::with_capacity(total);
    while records.len() < total {
        tokio::select! {
            biased;
            got = rx.recv() => {
                let Some(record) = got else { break };
                requester.tally.ended(record.outcome);
                records.push(record);
            }
            _ = tick.tick(), if show_progress => {
                let outcomes = requester.tally.outcomes();
                progress.show(records.len() as u64, &outcomes, requester.recorder.requests());
            }
            () = tokio::time::sleep_until(deadline), if !requester.stop.is_stopped() => {
                requester.stop.because(format!("the run reached its time limit ({} s)", limit_ms / 1000));
            }
        }
    }
    records
}

/// Arrivals per interval of `length_s` over the run (`elapsed`): intended by the schedule,
/// started, dropped, and the launcher's largest lateness among the interval's intended
/// arrivals. The table spans the run, not the schedule: consoles the schedule meant for after
/// the run ended were never due (a replay line 3,000 years out once asked for a 4.8 TB table).
fn arrivals_over_time(
    records: &[ConsoleRecord],
    length_s: f64,
    elapsed: Duration,
) -> Vec<ArrivalPoint> {
    let length_ms = ((length_s * 1000.0) as u64).max(1);
    let slot = |ms: u64| (ms / length_ms) as usize;
    let last = records
        .iter()
        .filter_map(|r| r.started_ms)
        .chain([u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)])
        .max()
        .unwrap_or(0);
    let mut points: Vec<ArrivalPoint> = (0..=slot(last))
        .map(|i| ArrivalPoint {
            start_s: (i as u64 * length_ms) as f64 / 1000.0,
            length_s: length_ms as f64 / 1000.0,
            intended: 0,
            started: 0,
            dropped: 0,
            late_ms_max: 0,
        })
        .collect();
    for r in records {
        let Some(p) = points.get_mut(slot(r.scheduled_ms)) else {
            continue; // due after the run ended
        };
        p.intended += 1;
        if r.outcome == Outcome::Dropped {
            p.dropped += 1;
        }
        if let Some(started) = r.started_ms {
            p.late_ms_max = p.late_ms_max.max(started.saturating_sub(r.scheduled_ms));
            points[slot(started)].started += 1;
        }
    }
    points
}

/// Waits for a run's tasks; one that panicked is counted in the run's errors (`task_panicked`)
/// instead of being dropped unseen.
pub(crate) async fn join_counted<R>(
    requester: &Requester,
    tasks: impl IntoIterator<Item = tokio::task::JoinHandle<R>>,
) {
    for task in tasks {
        if task.await.is_err_and(|e| e.is_panic()) {
            requester.tally.error("task_panicked");
        }
    }
}

/// Progress on stderr, updated once a second: on a terminal a bar with the elapsed time, the
/// ETA, consoles done, requests per second and outcomes; elsewhere (a CI log) the same figures
/// as a plain line every `RunOptions::progress_every`, so a long run shows it is alive.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    total: u64,
    started: Instant,
    /// The bar, on a terminal.
    bar: Option<ProgressBar>,
    /// Plain lines: how often, and when the last one was printed.
    every: Duration,
    last_line: Instant,
    /// Requests at the last update, and when, for the rate.
    last: (u64, Instant),
    rate: f64,
}

impl Progress {
    pub fn new(what: &'static str, total: u64, opts: &RunOptions, started: Instant) -> Progress {
        use std::io::IsTerminal as _;
        let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} consoles, ETA {eta}  {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            what,
            total,
            started,
            bar,
            every: opts.progress_every.unwrap_or(PROGRESS_EVERY),
            last_line: started,
            last: (0, started),
            rate: 0.0,
        }
    }

    /// Shows `done` consoles of the total, the outcomes so far and the request rate since the
    /// last update (`requests` counted so far).
    pub fn show(&mut self, done: u64, outcomes: &Outcomes, requests: u64) {
        let now = Instant::now();
        let seconds = now.duration_since(self.last.1).as_secs_f64();
        if seconds > 0.0 {
            self.rate = requests.saturating_sub(self.last.0) as f64 / seconds;
        }
        self.last = (requests, now);
        let line = format!("{:.0} req/s | {}", self.rate, outcome_line(outcomes));
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(line);
        } else if now.duration_since(self.last_line) >= self.every {
            self.last_line = now;
            eprintln!(
                "{}: {:.0} s, {done}/{} consoles done, {line}",
                self.what,
                now.duration_since(self.started).as_secs_f64(),
                self.total
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn outcome_line(o: &Outcomes) -> String {
    format!(
        "otp {} | manual {} | rejected {} | expired {} | verification failed {} | abandoned {} \
         | dropped {} | not started {}",
        o.signed_in_otp,
        o.signed_in_manual,
        o.rejected,
        o.expired,
        o.verification_failed,
        o.abandoned,
        o.dropped,
        o.not_started
    )
}

/// What a run of `kind` is: its seed and shard from `requester`'s configuration, `target`, and
/// `config` (its settings as given).
pub fn run_of(kind: RunKind, requester: &Requester, target: &str, config: Settings) -> RunOf {
    let cfg = &requester.cfg;
    RunOf {
        kind,
        seed: cfg.seed,
        shard: ShardInfo {
            index: cfg.shard.index(),
            count: cfg.shard.count(),
            role: cfg.role,
        },
        target: target.to_owned(),
        config,
    }
}

/// What a run measured: `requester`'s counters and histograms and the consoles' `records`,
/// over `elapsed`; a fleet's arrivals per interval.
pub fn measured(
    kind: RunKind,
    requester: &Requester,
    records: &[ConsoleRecord],
    elapsed: Duration,
) -> Measured {
    let mut outcomes = Outcomes::default();
    for r in records {
        outcomes.add(r.outcome);
    }
    let recorder = &requester.recorder;
    let over_time = recorder.points();
    let arrivals = if kind == RunKind::Fleet {
        let length_s = over_time.first().map_or(1.0, |p| p.length_s);
        arrivals_over_time(records, length_s, elapsed)
    } else {
        Vec::new()
    };
    Measured {
        consoles: records.len() as u64,
        stopped_because: requester.stop.reason(),
        outcomes,
        faults: requester.tally.faults(),
        errors: requester.tally.errors(),
        violations: requester.tally.violations(),
        arrivals,
        histograms: recorder.histograms(),
        counts: Step::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), recorder.counts(s)))
            .collect(),
        measured_s: round_ms(elapsed),
        over_time,
        signed_in_over_range: recorder.flows_over_range(),
        duration_s: round_ms(elapsed),
    }
}

/// Seconds, rounded to the millisecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Writes one line per console: index, wave (rehearsals), make, model, serial, faults (`late`:
/// the OTP was typed after it expired), arrival, outcome, why an OTP expired (`awaiting_approval`
/// or `installer_late`), when it signed in (seconds from the run's start, simulated time for a
/// rehearsal) and the time from arrival to signed in; then, for a rehearsal, the room's OTPs
/// and installer visits, how its first OTP ended when it needed another, and why it ended.
pub fn write_consoles_csv(
    records: &[ConsoleRecord],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "index,wave,make,model,serial,hdmi_missing,typos,manual,late,arrival_s,outcome,\
         expired_cause,signed_in_s,time_to_signed_in_ms,started_s,otps,visits,first_outcome,\
         ended_because"
    )?;
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    for r in records {
        let cause = match (r.outcome, r.expired_awaiting_approval) {
            (Outcome::Expired, true) => "awaiting_approval",
            (Outcome::Expired, false) => "installer_late",
            _ => "",
        };
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.index,
            r.wave.as_deref().map_or_else(String::new, csv_field),
            r.make,
            r.model,
            r.serial,
            r.hdmi_missing,
            r.typos,
            r.manual,
            r.late,
            secs(r.arrival_ms),
            r.outcome.as_str(),
            cause,
            r.time_to_signed_in_ms
                .map_or(String::new(), |t| secs(r.arrival_ms + t)),
            r.time_to_signed_in_ms
                .map_or(String::new(), |t| t.to_string()),
            r.started_ms.map_or(String::new(), secs),
            r.otps,
            r.visits,
            r.first_outcome.map_or("", Outcome::as_str),
            r.ended_because
                .as_deref()
                .map_or_else(String::new, csv_field)
        )?;
    }
    Ok(())
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (a wave's name is the
/// plan author's text).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
