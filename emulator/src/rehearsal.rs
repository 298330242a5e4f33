//! Rollout rehearsals: a plan's waves, batches, preference changes and admins on office hours,
//! run with the same console and admin code as `fleet`, against the reference server in process,
//! on a paused tokio runtime: the server's clock follows tokio's, nothing sleeps for real, and two
//! weeks pass in seconds.

mod findings;
pub mod plan;
pub mod reissue;
pub mod sweep;

use crate::admin::{Admin, FixedRooms, run_admin};
use crate::api::Requester;
use crate::config::{FleetConfig, MsRange, Rate, Rates, Shard, Timing};
use crate::console::ConsoleRecord;
use crate::error::RunError;
use crate::fleet::{measured, run_of};
use crate::live::RehearsalLive;
use crate::profile::{ConsoleProfile, console_rng};
use crate::reference;
use crate::reference::InProcessTransport;
use crate::seed::{import_accounts, issue_tickets, set_preferences};
use otpfleet_client::Desk;
use otpfleet_protocol::Preferences;
use otpfleet_reports::{Recorder, RunKind, RunReport, Settings, TimelinePoint};
use otpfleet_server::{ServerConfig, TokioClock};
use plan::{CompiledPlan, CompiledWave};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

impl From<&CompiledPlan> for Preferences {
    /// The preferences a plan starts with.
    fn from(plan: &CompiledPlan) -> Preferences {
        Preferences {
            otp_validity_hours: plan.validity_hours,
            auto_approve: plan.auto_approve,
        }
    }
}

/// A rehearsal's settings, as its report keeps them: the plan as written and the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RehearsalSettings {
    pub plan: plan::Plan,
    pub seed: u64,
}

/// What a rehearsal produced.
#[derive(Debug)]
pub struct RehearsalRun {
    pub report: RunReport,
    pub recorder: Arc<Recorder>,
    pub consoles: Vec<ConsoleRecord>,
    /// OTPs the server generated (a ticket each): first batches and re-issues.
    pub otps_issued: u64,
    /// Polls the consoles awaiting approval did not send, their answer known (counted in the
    /// recorder as sent; see `Watch::every_poll`).
    pub polls_skipped: u64,
}

/// Validities tried, in order, when looking for one that keeps expiries under 1%.
const VALIDITY_LADDER_HOURS: [u32; 7] = [12, 24, 48, 72, 120, 168, 336];

/// Rehearses `plan` with `seed`. With `suggest`, a plan that expires more than 1% of its OTPs is
/// re-run with longer validities to find one that would not.
pub fn rehearse(plan: &CompiledPlan, seed: u64, suggest: bool) -> Result<RehearsalRun, RunError> {
    rehearse_until(plan, seed, suggest, &Watch::default())
}

/// How a rehearsal is watched from outside.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Cancelled to interrupt it: it ends at that moment of simulated time with
    /// `stopped_because: "interrupted"`, and no suggestion is looked for.
    pub stop: CancellationToken,
    /// Print a line of progress (simulated time, signed in, queue, expired) every 10 s of wall
    /// time, so a long rehearsal shows it is alive (a short one prints none).
    pub progress: bool,
    /// Set as the rehearsal starts and fed each simulated hour, for a live page.
    pub live: Option<Arc<RehearsalLive>>,
    /// Send every poll of a console awaiting approval, instead of sleeping until an admin
    /// decides its request (the polls skipped only hear "awaiting approval"; a test holds the
    /// two ways to the same report).
    pub every_poll: bool,
}

/// [`rehearse`], watched by `watch`.
pub fn rehearse_until(
    plan: &CompiledPlan,
    seed: u64,
    suggest: bool,
    watch: &Watch,
) -> Result<RehearsalRun, RunError> {
    let mut run = rehearse_stoppable(plan, seed, watch)?;
    let share = expired_share(&run.report);
    if suggest && share > 0.01 && !watch.stop.is_cancelled() {
        let mut found = None;
        for hours in VALIDITY_LADDER_HOURS
            .into_iter()
            .filter(|h| *h > plan.validity_hours)
        {
            // One case of a sweep: the plan with this validity, checked again.
            let validity = [(sweep::Knob::Validity, format!("{hours}h"))];
            let longer = sweep::apply(plan, &validity).map_err(RunError::Plan)?;
            let other = rehearse_once(&longer, seed)?;
            let other_share = expired_share(&other.report);
            if other_share < 0.01 {
                let expired = other.report.rehearsal.as_ref().map_or(0, |f| {
                    f.expired_awaiting_approval + f.expired_installer_late
                });
                found = Some((hours, other_share, expired));
                break;
            }
        }
        if let Some(f) = run.report.rehearsal.as_mut() {
            f.suggestion = Some(findings::suggestion(plan.validity_hours, share, found));
        }
    }
    Ok(run)
}

/// Expired OTPs over OTPs generated (every visit's).
fn expired_share(r: &RunReport) -> f64 {
    r.rehearsal.as_ref().map_or(0.0, |f| f.expired_share)
}

/// One rehearsal on its own paused single-thread runtime: deterministic for a plan and seed.
pub fn rehearse_once(plan: &CompiledPlan, seed: u64) -> Result<RehearsalRun, RunError> {
    rehearse_stoppable(plan, seed, &Watch::default())
}

fn rehearse_stoppable(
    plan: &CompiledPlan,
    seed: u64,
    watch: &Watch,
) -> Result<RehearsalRun, RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| RunError::Runtime(e.to_string()))?;
    runtime.block_on(run_plan(plan, seed, watch))
}

/// The fleet settings a plan implies (the per-wave rates replace these when drawing consoles).
fn fleet_config(plan: &CompiledPlan, seed: u64) -> FleetConfig {
    let consoles = plan.waves.iter().map(|w| w.consoles).sum();
    FleetConfig {
        consoles,
        seed,
        shard: Shard::WHOLE,
        role: crate::config::Role::All,
        rates: Rates {
            hdmi_missing: plan.faults.hdmi_missing,
            uncertified: plan.faults.uncertified,
            typo: plan.faults.typo,
            manual: plan.faults.manual,
            reject: Rate::ZERO,
            late: Rate::ZERO,
            network_fault: plan.faults.network_fault,
            race: Rate::ZERO,
            double_sign_in: Rate::ZERO,
        },
        timing: Timing {
            arrival_window_ms: 0,
            boot: plan.timing.boot_ms,
            think: plan.timing.think_ms,
            typing: plan.timing.typing_ms,
            hdmi_fix: plan.timing.hdmi_fix_ms,
            decision: MsRange::known(30_000, 90_000),
            // An admin with an empty queue looks again a minute later.
            admin_idle_ms: 60_000,
        },
        // A plan's consoles arrive on its installation days, and wait hours for approvers:
        // none is dropped.
        arrival: crate::arrival::Arrival::Even,
        max_in_flight: u64::MAX,
        admins: plan.admins.iter().map(|a| a.count).sum(),
        auto_approve: plan.auto_approve,
        validity_hours: plan.validity_hours,
        max_retries: 5,
        request_timeout_ms: 30_000,
        max_duration_ms: plan.horizon_ms,
        // Simulated time: a yielding wait would never let the paused clock move.
        precise_timers: false,
    }
}

/// The fleet settings of one wave: the plan's, with the wave's fault rates.
fn wave_config(cfg: &FleetConfig, wave: &CompiledWave) -> FleetConfig {
    let mut wave_cfg = cfg.clone();
    wave_cfg.rates.hdmi_missing = wave.faults.hdmi_missing;
    wave_cfg.rates.uncertified = wave.faults.uncertified;
    wave_cfg.rates.typo = wave.faults.typo;
    wave_cfg.rates.manual = wave.faults.manual;
    wave_cfg.rates.network_fault = wave.faults.network_fault;
    wave_cfg
}

/// The consoles of one wave, in arrival order.
fn wave_profiles(
    plan: &CompiledPlan,
    wave: &CompiledWave,
    cfg: &FleetConfig,
) -> Vec<ConsoleProfile> {
    let wave_cfg = wave_config(cfg, wave);
    let mut profiles: Vec<ConsoleProfile> = (0..wave.consoles)
        .map(|j| wave_profile(plan, wave, &wave_cfg, j))
        .collect();
    profiles.sort_by_key(|p| (p.arrival_ms, p.index));
    profiles
}

/// The wave's `j`th console (`wave_cfg` from [`wave_config`]), its arrival time (ms from the
/// start) drawn from its own arrival stream.
fn wave_profile(
    plan: &CompiledPlan,
    wave: &CompiledWave,
    wave_cfg: &FleetConfig,
    j: u64,
) -> ConsoleProfile {
    let (open, close) = wave.installer_hours;
    let day_ms =
        |t: jiff::civil::Time| i64::from(t.hour()) * 3_600_000 + i64::from(t.minute()) * 60_000;
    let open_ms = day_ms(open);
    let window_ms = (day_ms(close) - open_ms).max(1);
    let index = wave.first_index + j;
    let mut p = ConsoleProfile::draw(wave_cfg, index);
    let date = wave.dates[wave.date_of(j)];
    let mut rng = console_rng(wave_cfg.seed ^ 0xA11_1BA1, index);
    let offset_ms = open_ms + rng.random_range(0..window_ms);
    let midnight = date
        .to_zoned(wave.tz.clone())
        .map_or(plan.start_ms, |z| z.timestamp().as_millisecond());
    let arrival = (midnight + offset_ms - plan.start_ms).max(0) as u64;
    // Installers arriving before their batch exists start once it does.
    p.arrival_ms = arrival.max(wave.batch_time_ms(j));
    p.late = false;
    p
}

/// What every task of a rehearsal shares: the run's request sender, the in-process reference
/// server with its admin token, and the moment simulated time starts.
#[derive(Debug, Clone)]
struct Stage {
    requester: Arc<Requester>,
    transport: InProcessTransport,
    token: String,
    origin: Instant,
    /// Rooms whose rejection a return visit fixed (approved next time).
    fixed: Arc<FixedRooms>,
}

impl Stage {
    /// The reference server in process on the plan's clock (simulated time from the plan's
    /// start at `origin`), with a fresh admin token.
    fn new(plan: &CompiledPlan, requester: Requester, origin: Instant) -> Result<Stage, RunError> {
        let start_ms = u64::try_from(plan.start_ms)
            .map_err(|_| RunError::Plan("the plan starts before 1970".into()))?;
        let config = ServerConfig {
            poll_interval_s: plan.poll_interval_s,
            ..ServerConfig::default()
        };
        let (app, token) = reference::app(config, Arc::new(TokioClock::new(start_ms)));
        Ok(Stage {
            requester: Arc::new(requester),
            transport: InProcessTransport::new(app),
            token,
            origin,
            fixed: Arc::default(),
        })
    }
}

async fn run_plan(plan: &CompiledPlan, seed: u64, watch: &Watch) -> Result<RehearsalRun, RunError> {
    let origin = Instant::now();
    let cfg = fleet_config(plan, seed);
    let stage = Stage::new(plan, requester(&cfg, watch), origin)?;
    let requester = &stage.requester;
    let waves: Vec<_> = (plan.waves.iter())
        .map(|w| wave_profiles(plan, w, &cfg))
        .collect();
    let total: usize = waves.iter().map(Vec::len).sum();
    if let Some(live) = &watch.live {
        live.start(Arc::clone(requester), plan_facts(plan, total));
    }
    let prefs = Preferences::from(plan);
    set_preferences(requester, &stage.transport, &stage.token, prefs).await?;
    let validity_now = Arc::new(AtomicU32::new(plan.validity_hours));
    let consoles_done = CancellationToken::new();
    let changes = preference_changes(stage.clone(), plan.clone(), Arc::clone(&validity_now));
    let mut tasks = vec![tokio::spawn(changes)];
    tasks.extend(spawn_admins(&stage, plan, &consoles_done));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut accounts = vec![String::new(); total];
    for (wave, profiles) in plan.waves.iter().zip(waves) {
        let (batches, ids) = schedule_wave(&stage, wave, profiles, &validity_now, &tx).await?;
        tasks.extend(batches);
        ids.into_iter()
            .for_each(|(i, id)| accounts[i as usize] = id);
    }
    let regenerator = reissue::Regenerator {
        plan,
        cfg: &cfg,
        stage: stage.clone(),
        validity_now: Arc::clone(&validity_now),
        accounts,
        tx,
    };
    let sampler = tokio::spawn(sample_timeline(
        Arc::clone(requester),
        plan.clone(),
        (origin, consoles_done.clone()),
        watch.progress.then_some(total),
        watch.live.clone(),
    ));
    let (mut records, expiries) = play_out(regenerator, rx, total, watch).await;
    let elapsed = origin.elapsed();
    consoles_done.cancel();
    requester.stop.end();
    crate::fleet::join_counted(requester, tasks).await;
    let timeline = sampler.await.unwrap_or_default();
    records.sort_by_key(|r| r.index);
    name_waves(plan, &mut records);
    let seen = findings::Seen {
        records: &records,
        expiries: &expiries,
        timeline: &timeline,
        origin,
    };
    let report = rehearsal_report(plan, seed, requester, &seen, elapsed);
    Ok(RehearsalRun {
        report,
        recorder: Arc::clone(&requester.recorder),
        consoles: records,
        otps_issued: requester.tally.otps_issued_so_far(),
        polls_skipped: requester
            .decisions
            .as_ref()
            .map_or(0, |d| d.skipped_so_far()),
    })
}

/// Collects every room's record while the `regenerator` re-issues the OTPs of the rooms the
/// collector sends back, until every room is done.
async fn play_out(
    regenerator: reissue::Regenerator<'_>,
    rx: tokio::sync::mpsc::UnboundedReceiver<ConsoleRecord>,
    total: usize,
    watch: &Watch,
) -> (Vec<ConsoleRecord>, Vec<reissue::Expiries>) {
    let due = reissue::Due::default();
    let (plan, seed) = (regenerator.plan, regenerator.cfg.seed);
    let returns = reissue::Returns::new(plan, seed, &regenerator.stage, &due);
    let rooms_done = CancellationToken::new();
    let (collected, ()) = tokio::join!(
        async {
            let collected = collect(returns, rx, total, watch).await;
            rooms_done.cancel();
            collected
        },
        regenerator.run(&due, &rooms_done)
    );
    collected
}

/// A rehearsal's report: its settings (the plan as written and the seed), what `requester`
/// and the consoles measured, its findings and its timeline.
fn rehearsal_report(
    plan: &CompiledPlan,
    seed: u64,
    requester: &Requester,
    seen: &findings::Seen,
    elapsed: Duration,
) -> RunReport {
    let settings = RehearsalSettings {
        plan: plan.source.clone(),
        seed,
    };
    let run = run_of(
        RunKind::Rehearsal,
        requester,
        "in-process reference server (simulated time)",
        Settings::of(&settings),
    );
    let mut report = RunReport::new(
        run,
        measured(RunKind::Rehearsal, requester, seen.records, elapsed),
    );
    report.rehearsal = Some(findings::findings(plan, requester, seen));
    report.timeline = seen.timeline.to_vec();
    report
}

/// The rehearsal's sender: its consoles skip the polls that hear nothing new unless `watch`
/// asks for every poll.
fn requester(cfg: &FleetConfig, watch: &Watch) -> Requester {
    match watch.every_poll {
        true => Requester::new(cfg.clone()),
        false => Requester::new(cfg.clone()).telling_decisions(),
    }
}

/// What a live page says of the plan: its name, consoles and horizon.
fn plan_facts(plan: &CompiledPlan, consoles: usize) -> serde_json::Value {
    serde_json::json!({
        "name": plan.name,
        "consoles": consoles,
        "horizon_days": plan.horizon_ms / 86_400_000,
    })
}

/// Starts the plan's admins, each on its group's schedule, until `consoles_done`.
fn spawn_admins(
    stage: &Stage,
    plan: &CompiledPlan,
    consoles_done: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let desk = Arc::new(Desk::default());
    let groups = plan
        .admins
        .iter()
        .flat_map(|g| (0..g.count).map(move |_| g));
    groups
        .zip(0..)
        .map(|(group, number)| {
            let admin = Admin {
                number,
                token: stage.token.clone(),
                schedule: Some(group.schedule(plan.start_ms, stage.origin)),
                decision: group.decision_ms,
                reject: group.reject_rate,
                fixed: Arc::clone(&stage.fixed),
            };
            let (stage, desk, consoles_done) =
                (stage.clone(), Arc::clone(&desk), consoles_done.clone());
            tokio::spawn(async move {
                run_admin(
                    &stage.requester,
                    stage.transport,
                    admin,
                    &desk,
                    consoles_done,
                )
                .await
            })
        })
        .collect()
}

/// Imports a wave's accounts now and schedules its OTP batches: one per generation time (once,
/// or each installation day), each launching its consoles once generated. Answers the tasks and
/// each console's account id.
async fn schedule_wave(
    stage: &Stage,
    wave: &CompiledWave,
    profiles: Vec<ConsoleProfile>,
    validity_now: &Arc<AtomicU32>,
    tx: &Outcomes,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Vec<(u64, String)>), RunError> {
    let ids = import_accounts(&stage.requester, &stage.transport, &stage.token, &profiles).await?;
    let accounts = profiles
        .iter()
        .map(|p| p.index)
        .zip(ids.iter().cloned())
        .collect();
    let mut batches: Vec<(Vec<ConsoleProfile>, Vec<String>)> =
        vec![(Vec::new(), Vec::new()); wave.generate_at_ms.len()];
    for (p, id) in profiles.into_iter().zip(ids) {
        let b = wave.batch_of(p.index - wave.first_index);
        batches[b].0.push(p);
        batches[b].1.push(id);
    }
    let tasks = batches
        .into_iter()
        .zip(&wave.generate_at_ms)
        .map(|((profiles, ids), at_ms)| {
            let (stage, tx, validity_now) = (stage.clone(), tx.clone(), Arc::clone(validity_now));
            let generate_at = stage.origin + Duration::from_millis(*at_ms);
            tokio::spawn(async move {
                tokio::time::sleep_until(generate_at).await;
                let validity = validity_now.load(Ordering::SeqCst);
                generate_and_launch(&stage, profiles, &ids, validity, tx).await;
            })
        })
        .collect();
    Ok((tasks, accounts))
}

/// Where consoles send their records.
type Outcomes = tokio::sync::mpsc::UnboundedSender<ConsoleRecord>;

/// Generates a batch's OTPs now and launches its consoles; if generating fails, the run stops
/// and every console of the batch still ends in exactly one outcome.
async fn generate_and_launch(
    stage: &Stage,
    profiles: Vec<ConsoleProfile>,
    ids: &[String],
    validity: u32,
    tx: Outcomes,
) {
    let requester = &stage.requester;
    let issued = issue_tickets(
        requester,
        &stage.transport,
        &stage.token,
        &profiles,
        ids,
        validity,
    )
    .await;
    match issued {
        Ok(tickets) => {
            requester.tally.otps_issued(tickets.len() as u64);
            let transport = &stage.transport;
            crate::fleet::launch(requester, transport, profiles, tickets, stage.origin, tx).await;
        }
        Err(e) => {
            if !requester.stop.is_stopped() {
                requester
                    .stop
                    .because(format!("generating a wave's OTPs failed: {e}"));
            }
            for p in &profiles {
                let _ = tx.send(ConsoleRecord::never_started(
                    p,
                    "its OTP batch was never generated",
                ));
            }
        }
    }
}

/// Receives the consoles' records until every one of the `total` rooms is done (each record
/// that `returns` sends back for another OTP is not), the horizon passes or the rehearsal is
/// interrupted (then the stopped consoles' records still come in).
async fn collect(
    mut returns: reissue::Returns<'_>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<ConsoleRecord>,
    total: usize,
    watch: &Watch,
) -> (Vec<ConsoleRecord>, Vec<reissue::Expiries>) {
    let (plan, stage) = (returns.plan, returns.stage.clone());
    let requester = &stage.requester;
    let deadline = stage.origin + Duration::from_millis(plan.horizon_ms);
    let mut records = Vec::with_capacity(total);
    while records.len() < total {
        tokio::select! {
            biased;
            got = rx.recv() => match got {
                Some(record) => {
                    let now_ms = u64::try_from(stage.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                    if let Some(done) = returns.after(record, now_ms) {
                        requester.tally.ended(done.outcome);
                        records.push(done);
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline), if !requester.stop.is_stopped() => {
                requester.stop.because(format!("the rehearsal reached its horizon ({} days)", plan.horizon_ms / 86_400_000));
            }
            () = watch.stop.cancelled(), if !requester.stop.is_stopped() => {
                requester.stop.because(otpfleet_reports::INTERRUPTED);
            }
        }
    }
    (records, returns.expiries)
}

/// Labels each record with its wave's name.
fn name_waves(plan: &CompiledPlan, records: &mut [ConsoleRecord]) {
    for wave in &plan.waves {
        let name: Arc<str> = Arc::from(wave.name.as_str());
        for r in records
            .iter_mut()
            .filter(|r| wave.indexes().contains(&r.index))
        {
            r.wave = Some(Arc::clone(&name));
        }
    }
}

/// Applies the plan's preference changes at their times.
async fn preference_changes(stage: Stage, plan: CompiledPlan, validity_now: Arc<AtomicU32>) {
    let Stage {
        requester,
        transport,
        token,
        origin,
        ..
    } = stage;
    let mut prefs = Preferences::from(&plan);
    for change in &plan.changes {
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(origin + Duration::from_millis(change.at_ms)) => {}
            () = requester.stop.stopped() => return,
        }
        prefs.otp_validity_hours = change.validity_hours.unwrap_or(prefs.otp_validity_hours);
        prefs.auto_approve = change.auto_approve.unwrap_or(prefs.auto_approve);
        if let Err(e) = set_preferences(&requester, &transport, &token, prefs).await {
            requester.tally.error(format!("preference change: {e}"));
        }
        validity_now.store(prefs.otp_validity_hours, Ordering::SeqCst);
    }
}

/// One timeline point per simulated hour from `origin` until `consoles_done`, and a last one at
/// its end; each one handed to `live` too.
async fn sample_timeline(
    requester: Arc<Requester>,
    plan: CompiledPlan,
    (origin, consoles_done): (Instant, CancellationToken),
    progress_of: Option<usize>,
    live: Option<Arc<RehearsalLive>>,
) -> Vec<TimelinePoint> {
    let start_ms = plan.start_ms;
    // Progress is paced by the wall clock (the runtime's clock is simulated); it only decides
    // when a line is printed, nothing of the rehearsal.
    let wall = std::time::Instant::now();
    let mut last_line = wall;
    let mut points = Vec::new();
    let mut hour = 0u32;
    loop {
        hour += 1;
        let finished = tokio::select! {
            biased;
            () = tokio::time::sleep_until(origin + Duration::from_secs(u64::from(hour) * 3600)) => false,
            () = consoles_done.cancelled() => true,
        };
        let g = requester.tally.gauges();
        let elapsed_ms = if finished {
            origin.elapsed().as_millis() as i64
        } else {
            i64::from(hour) * 3_600_000
        };
        points.push(TimelinePoint {
            hour,
            at: otpfleet_server::clock::rfc3339(u64::try_from(start_ms + elapsed_ms).unwrap_or(0)),
            signed_in: g.signed_in,
            awaiting_approval: g.awaiting_approval,
            expired: g.expired,
            in_verification: g.in_verification,
            approvers_at_work: plan.approvers_at_work(u64::from(hour) * 3_600_000 - 1_800_000),
        });
        if let (Some(live), Some(point)) = (&live, points.last()) {
            live.point(point);
        }
        if let Some(total) = progress_of {
            if last_line.elapsed() >= std::time::Duration::from_secs(10) {
                last_line = std::time::Instant::now();
                eprintln!(
                    "rehearse: simulated day {} hour {} of {} days, {} of {total} consoles signed \
                     in, {} awaiting approval, {} expired ({:.0} s)",
                    hour / 24 + 1,
                    hour % 24,
                    plan.horizon_ms / 86_400_000,
                    g.signed_in,
                    g.awaiting_approval,
                    g.expired,
                    wall.elapsed().as_secs_f64()
                );
            }
        }
        if finished {
            return points;
        }
    }
}
