//! Crash safety with the fleet driving (issue 28): the reference server on a simulated disk
//! (`otpfleet_server::simdisk`), in simulated time, driven by the fleet's consoles and admins
//! (races and double sign-ins included) and by an admin desk importing rooms and generating
//! their OTPs, while a seeded crasher injects disk faults and cuts the power at seeded
//! moments: inside a commit, between commits, or while the server recovers. The server starts
//! again from the bytes that survived, and after every start every promise is checked against
//! a ledger read off the wire (`ledger`): every acknowledged change there, no refused import
//! applied, nothing shown undone. The fleet's own promise checks (`violations`: an OTP
//! redeemed twice, credentials handed twice, a status gone back) run throughout, and the
//! journal's chain is checked at every start (a server refuses a broken one).
//!
//! One seed is one run, byte for byte: the fleet, the desk and the crasher draw from it, the
//! server on a simulated disk draws its secrets and tokens from it, and the runtime is a
//! paused single thread.

mod ledger;

use crate::config::FleetConfig;
use crate::{Rate, RunOptions, run_fleet};
use ledger::Ledger;
use otpfleet_client::{Answer, ApiRequest, Transport, TransportError, calls};
use otpfleet_protocol::{AccountInput, BatchRequest, License, PasswordMode, Readiness};
use otpfleet_server::simdisk::{Defect, DiskStats, Faults, SimDisk};
use otpfleet_server::{App, Catalogue, ServerConfig, Storage, TokioClock, assemble};
use parking_lot::Mutex;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one simulation runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    pub seed: u64,
    /// Consoles of the fleet (they arrive over a simulated minute).
    pub consoles: u64,
    /// A defect planted in the server, to show that the simulation catches it.
    pub planted: Option<Defect>,
}

/// What one seed's run survived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survived {
    /// Power losses while the server served (each followed by a start from what survived).
    pub crashes: u64,
    /// Power losses and faults while it started again.
    pub crashes_in_recovery: u64,
    /// Journal failures the server recovered from by itself, without a crash, once the faults
    /// stopped (every refusal of the changes the failure met answered only then).
    pub recoveries: u64,
    /// Changes the server acknowledged on the wire.
    pub acknowledged: u64,
    /// Requests answered.
    pub answered: u64,
    /// Consoles that signed in.
    pub signed_in: u64,
    /// Simulated time the run took.
    pub simulated_ms: u64,
    pub disk: DiskStats,
    /// A hash of the disk's bytes at the end: the same seed leaves the same bytes.
    pub digest: u64,
}

/// Why a seed's run failed: what broke, in which round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seed: u64,
    pub what: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: {}\nreplay: otpfleet simulate --seed {}",
            self.seed, self.what, self.seed
        )
    }
}

/// The wall time the simulated clock starts at (2026-11-21), so a seed replays whatever day.
const START_MS: u64 = 1_795_248_000_000;
const TOKEN: &str = "otpf_simulation-admin-token";
/// Most crashes in a row while the server starts again before the run calls it stuck.
const MOST_CRASHES_IN_RECOVERY: u64 = 50;
/// The longest a server may take to serve again once the disk's faults stop: its longest wait
/// between two tries to reopen (8 s), and a second for the try.
const HEALED_WITHIN: Duration = Duration::from_secs(9);

/// Runs one seed on its own paused single-thread runtime.
pub fn simulate(opts: &SimOptions) -> Result<Survived, Broken> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| broken(opts, format!("no runtime: {e}")))?;
    runtime
        .block_on(run(opts))
        .map_err(|what| broken(opts, what))
}

fn broken(opts: &SimOptions, what: String) -> Broken {
    Broken {
        seed: opts.seed,
        what,
    }
}

/// The fleet of a simulation: quick people, races and double sign-ins, a few network faults,
/// arrivals over a minute.
fn fleet_config(opts: &SimOptions) -> FleetConfig {
    let mut cfg = FleetConfig {
        consoles: opts.consoles,
        seed: opts.seed,
        max_retries: 8,
        request_timeout_ms: 10_000,
        ..FleetConfig::default()
    };
    cfg.timing.arrival_window_ms = 60_000;
    cfg.rates.race = Rate::known(0.1);
    cfg.rates.double_sign_in = Rate::known(0.1);
    cfg.rates.network_fault = Rate::known(0.01);
    cfg
}

/// The server as the simulation runs it: one generation per start, on one disk.
struct Server {
    disk: SimDisk,
    clock: Arc<TokioClock>,
    standing: Faults,
    live: Mutex<Generation>,
    ledger: Mutex<Ledger>,
    answered: std::sync::atomic::AtomicU64,
}

/// One start of the server: its app, a token cancelled when it crashes (the requests it was
/// serving lose their connection), and its recovery from journal failures (as `serve` runs it).
#[derive(Clone)]
struct Generation {
    app: Arc<App>,
    alive: CancellationToken,
    recovery: tokio::task::AbortHandle,
}

impl Generation {
    fn new(app: Arc<App>) -> Generation {
        let recovery = tokio::spawn(Arc::clone(&app).recover_telling(|_| {})).abort_handle();
        Generation {
            app,
            alive: CancellationToken::new(),
            recovery,
        }
    }
}

/// The server on `disk`, as it starts: its state replayed from what the disk holds.
fn open(disk: &SimDisk, clock: &Arc<TokioClock>) -> Result<Arc<App>, String> {
    let config = ServerConfig {
        poll_interval_s: 1,
        ..ServerConfig::default()
    };
    let clock = Arc::clone(clock) as Arc<dyn otpfleet_server::Clock>;
    let storage = Storage::Simulated(disk.clone());
    assemble(
        config,
        Catalogue::builtin(),
        &storage,
        clock,
        &[(TOKEN, "simulation")],
    )
    .map(|a| Arc::new(a.app))
    .map_err(|e| e.to_string())
}

impl Server {
    /// The first start, on an empty disk.
    fn start(disk: SimDisk, standing: Faults) -> Result<Server, String> {
        let clock = Arc::new(TokioClock::new(START_MS));
        Ok(Server {
            live: Mutex::new(Generation::new(open(&disk, &clock)?)),
            disk,
            clock,
            standing,
            ledger: Mutex::default(),
            answered: Default::default(),
        })
    }

    /// Starts the server again from what the disk kept (crashing it again while it recovers,
    /// as the seed says), and checks the ledger against it. Answers crashes while recovering.
    fn start_again(&self, rng: &mut ChaCha8Rng) -> Result<u64, String> {
        let (app, crashes) =
            self.disk
                .start_again(rng, (self.standing, MOST_CRASHES_IN_RECOVERY), || {
                    open(&self.disk, &self.clock)
                })?;
        let core = &app.served().core;
        self.ledger.lock().check(core, self.clock_ms())?;
        *self.live.lock() = Generation::new(app);
        Ok(crashes)
    }

    /// The faults stop without a crash: the server must serve again by itself within
    /// `HEALED_WITHIN` (its recovery replaces the state), and keep every promise.
    async fn heal(&self) -> Result<(), String> {
        self.disk.set_faults(self.standing);
        self.disk.cut_after(u64::MAX);
        let app = Arc::clone(&self.live.lock().app);
        let failed = app.served();
        tokio::time::timeout(HEALED_WITHIN, app.replaced_since(&failed))
            .await
            .map_err(|_| {
                format!(
                    "the server did not serve again within {HEALED_WITHIN:?} of the faults stopping"
                )
            })?;
        self.ledger
            .lock()
            .check(&app.served().core, self.clock_ms())
    }

    /// A crash: the requests in flight lose their connection, the power goes, and what was
    /// not synced is kept as the seed says.
    fn crash(&self) {
        let live = self.live.lock();
        live.alive.cancel();
        live.recovery.abort();
        drop(live);
        self.disk.power_loss();
        self.disk.set_faults(self.standing);
    }

    fn clock_ms(&self) -> u64 {
        otpfleet_server::Clock::now_ms(&*self.clock)
    }
}

/// The fleet's and the desk's way to the server: the in-process handler of the generation
/// serving now, with every exchange read into the ledger. Nothing leaves a server whose power
/// was cut, or that crashed while it answered.
#[derive(Clone)]
struct Wire(Arc<Server>);

impl Transport for Wire {
    fn describe(&self) -> String {
        "the reference server on a simulated disk".into()
    }

    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        let server = &self.0;
        let Generation { app, alive, .. } = server.live.lock().clone();
        let (route, path, body) = (req.route, req.path.clone(), req.body.clone());
        let sent = Instant::now();
        let request = req.into_http(http::Request::builder())?;
        let lost = || TransportError::Io("the server crashed: connection reset".into());
        let response = tokio::select! {
            biased;
            () = alive.cancelled() => return Err(lost()),
            response = Box::pin(otpfleet_server::handle(&app, request)) => response,
        };
        let answer = Answer::read(response, sent).await?;
        if alive.is_cancelled() || server.disk.is_off() {
            return Err(lost());
        }
        server.ledger.lock().record(route, &path, &body, &answer);
        server
            .answered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(answer)
    }
}

async fn run(opts: &SimOptions) -> Result<Survived, String> {
    let standing = Faults {
        planted: opts.planted,
        ..Faults::NONE
    };
    let disk = SimDisk::new(opts.seed, standing);
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x0C8A_5401);
    let server = Arc::new(Server::start(disk.clone(), standing)?);
    let mut survived = Survived::default();
    let wire = Wire(Arc::clone(&server));
    let fleet = tokio::spawn(run_fleet(
        fleet_config(opts),
        wire.clone(),
        TOKEN,
        RunOptions::default(),
    ));
    let run = crash_until_done(&server, &wire, fleet, (&mut rng, &mut survived)).await?;
    server.crash();
    survived.crashes += 1;
    survived.crashes_in_recovery += server.start_again(&mut rng)?;
    if let Some(v) = run.report.violations.first() {
        return Err(format!(
            "the fleet saw a broken promise: {} ({}; consoles {:?})",
            v.kind, v.detail, v.serials
        ));
    }
    survived.acknowledged = server.ledger.lock().acknowledged;
    survived.answered = server.answered.load(std::sync::atomic::Ordering::Relaxed);
    survived.signed_in = run.report.outcomes.signed_in_otp;
    survived.simulated_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    survived.disk = disk.stats();
    survived.digest = disk.digest();
    Ok(survived)
}

/// While the fleet runs: work a while, set seeded faults and a cut, let an admin desk import
/// and generate, wait for the journal to fail or a while to pass, crash, start again and
/// check. Answers the fleet's run once it ends.
async fn crash_until_done(
    server: &Arc<Server>,
    wire: &Wire,
    mut fleet: tokio::task::JoinHandle<Result<crate::FleetRun, crate::RunError>>,
    (rng, survived): (&mut ChaCha8Rng, &mut Survived),
) -> Result<crate::FleetRun, String> {
    let mut round = 0u64;
    loop {
        round += 1;
        let at = |what: String| format!("crash {round}: {what}");
        let work = Duration::from_millis(rng.random_range(200..6_000));
        tokio::select! {
            biased;
            done = &mut fleet => return ended(done),
            () = tokio::time::sleep(work) => {}
        }
        server
            .disk
            .set_faults(Faults::draw(rng, &server.disk, server.standing));
        server.disk.cut_after(rng.random_range(1..2_000));
        // Beside the crasher: a desk request that meets the failure waits for a recovery that
        // the crash forestalls, and loses its connection with it.
        let desk_rng = ChaCha8Rng::seed_from_u64(rng.random());
        tokio::spawn(desk(wire.clone(), desk_rng, round));
        let journal = server.live.lock().app.served().journal.clone();
        let Some(journal) = journal else {
            return Err("the server on a simulated disk has no journal".into());
        };
        let longest = Duration::from_millis(rng.random_range(100..4_000));
        let failed = tokio::select! {
            biased;
            done = &mut fleet => return ended(done),
            () = journal.failed() => true,
            () = tokio::time::sleep(longest) => false,
        };
        // A disk fault (not the cut) and, half the time, no crash: the faults stop and the
        // server recovers in process.
        if failed && !server.disk.is_off() && rng.random_bool(0.5) {
            server.heal().await.map_err(at)?;
            survived.recoveries += 1;
            continue;
        }
        server.crash();
        survived.crashes += 1;
        survived.crashes_in_recovery += server.start_again(rng).map_err(at)?;
    }
}

fn ended(
    done: Result<Result<crate::FleetRun, crate::RunError>, tokio::task::JoinError>,
) -> Result<crate::FleetRun, String> {
    match done {
        Ok(Ok(run)) => Ok(run),
        Ok(Err(e)) => Err(format!("the fleet could not run: {e}")),
        Err(e) => Err(format!("the fleet's task failed: {e}")),
    }
}

/// An admin at the desk: imports a few rooms and generates their OTPs, or (one time in four)
/// sends an import naming one room twice, which must be refused whole. What it is answered
/// goes into the ledger on the wire; a lost answer is just lost.
async fn desk(wire: Wire, mut rng: ChaCha8Rng, round: u64) {
    let room = |i: u64| AccountInput {
        upn: format!("desk-{round}-{i}@sim.test"),
        display_name: format!("Desk room {round}-{i}"),
        license: License::Pro,
        readiness: Readiness::NoActionNeeded,
        password: None,
    };
    if rng.random_bool(0.25) {
        let _ = wire
            .send(calls::import_accounts(&[room(0), room(0)], TOKEN))
            .await;
        return;
    }
    let rooms: Vec<AccountInput> = (0..rng.random_range(1..20)).map(room).collect();
    let Ok(imported) = wire.send(calls::import_accounts(&rooms, TOKEN)).await else {
        return;
    };
    let Some(imported) = imported.parse::<otpfleet_protocol::ImportResult>() else {
        return;
    };
    let batch = BatchRequest {
        account_ids: imported.results.into_iter().map(|r| r.account_id).collect(),
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    let _ = wire.send(calls::create_batch(&batch, TOKEN)).await;
}
