//! Crash safety by simulation (issue 28): the server's core and journal on a simulated disk
//! (`otpfleet_server::simdisk`) that loses what was not synced, tears writes and fails reads,
//! writes and syncs; the power is cut at a seeded operation of the disk (inside a commit, between
//! two commits, or while the server recovers), the server restarts from the surviving bytes,
//! and every promise is checked against a ledger of what was acknowledged: every acknowledged
//! account, redemption, approval and hand-over still there, no OTP redeemable twice, no
//! credentials handed twice, no refused import applied, the audit chain whole (the server
//! refuses to start on a broken one), and the server able to start at all.
//!
//! Seeds: `SIM_SEED=N` replays one; otherwise fresh ones are drawn and printed (`SIM_SEEDS`,
//! default 4, or `SIM_SECONDS` of them). A failure names its seed and the command that replays
//! it, and a replay is the same run byte for byte: the changes, faults and cuts follow the
//! seed, the server draws its secret, OTPs and tokens from it on a simulated disk, the journal
//! there commits when it is waited for (no writer thread to race), and what a power loss keeps
//! does not depend on the order redb flushes a commit's pages in (`simdisk`).
//!
//! Four planted defects (`Defect`) are caught, each by the seed its test names.

use otpfleet_protocol::{
    AccountInput, BatchRequest, ErrorCode, License, PasswordMode, Readiness, RedeemRequest,
    RequestStatus, VerifyRequest,
};
use otpfleet_server::domain::accounts::{AccountQuery, ImportRow};
use otpfleet_server::domain::batches::BatchOutcome;
use otpfleet_server::domain::requests::RequestQuery;
use otpfleet_server::http::Served;
use otpfleet_server::simdisk::{Defect, DiskStats, Faults, SimDisk};
use otpfleet_server::{App, Catalogue, Core, ManualClock, ServerConfig, Storage, assemble, handle};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

const NOW: u64 = crate::helpers::START_MS;
const ROUNDS: usize = 30;

#[derive(Debug, Default)]
struct Ledger {
    accounts: Vec<String>,
    /// Issued OTPs not redeemed yet: (account, OTP).
    issued: Vec<(String, String)>,
    redeemed: Vec<Redeemed>,
    /// Upns of imports the server refused: none may ever be there.
    refused: Vec<String>,
    /// Request ids an answer showed, with the serial of the console it showed them for: no id
    /// may later name another console.
    shown_ids: Vec<(String, String)>,
}

#[derive(Debug)]
struct Redeemed {
    account: String,
    otp: String,
    request: String,
    poll_token: String,
    approved: bool,
    /// A GET answered `approved` for it (acknowledged or not): it may never go back.
    shown_approved: bool,
    handed: bool,
}

/// What one seed's run survived.
#[derive(Debug, Default)]
struct Survived {
    restarts: u64,
    crashes_in_recovery: u64,
    acknowledged: u64,
    disk: DiskStats,
    /// A hash of the disk's bytes at the end: the same seed leaves the same bytes.
    image: u64,
}

fn open(disk: &SimDisk, clock: &ManualClock) -> Result<App, String> {
    assemble(
        ServerConfig::default(),
        Catalogue::builtin(),
        &Storage::Simulated(disk.clone()),
        Arc::new(clock.clone()),
        &[(TOKEN, "simulation")],
    )
    .map(|a| a.app)
    .map_err(|e| e.to_string())
}

const TOKEN: &str = "simulation-admin-token";

/// What an admin's GET of `account` shows through the router (which waits for the journal
/// unless a defect is planted): the request's id, its console's serial and its status.
fn shown(
    app: &App,
    runtime: &tokio::runtime::Runtime,
    account: &str,
) -> Option<(String, String, String)> {
    use http_body_util::BodyExt as _;
    let req = http::Request::builder()
        .uri(format!("/v1/accounts/{account}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let answer = runtime.block_on(async {
        // A GET that meets the journal failing waits for a recovery (none runs here): nothing
        // is shown then.
        let reply = tokio::time::timeout(std::time::Duration::from_millis(50), handle(app, req))
            .await
            .ok()?;
        let ok = reply.status().is_success();
        let body = reply.into_body().collect().await.ok()?.to_bytes();
        ok.then_some(body)
    })?;
    let detail: serde_json::Value = serde_json::from_slice(&answer).ok()?;
    let r = &detail["otp"]["request"];
    Some((
        r["id"].as_str()?.to_owned(),
        r["device"]["serial"].as_str()?.to_owned(),
        r["status"].as_str()?.to_owned(),
    ))
}

/// One seed's run; `planted` is the disk's standing faults (none, or a planted defect).
fn simulate(seed: u64, planted: Faults) -> Result<Survived, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let disk = SimDisk::new(seed, planted);
    let clock = ManualClock::new(NOW);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut ledger = Ledger::default();
    let mut survived = Survived::default();
    let mut n = 0u64;
    for round in 0..ROUNDS {
        let at = |what: String| format!("round {round}: {what}");
        // Restart from what the disk kept; a cut or fault while recovering is a crash too.
        let (app, crashes) = disk
            .start_again(&mut rng, (planted, 20), || open(&disk, &clock))
            .map_err(at)?;
        survived.crashes_in_recovery += crashes;
        survived.restarts += 1;
        let served = app.served();
        check(&served.core, &ledger).map_err(at)?;
        disk.set_faults(Faults::draw(&mut rng, &disk, planted));
        disk.cut_after(rng.random_range(1..2_000));
        for _ in 0..rng.random_range(1..60) {
            if !step((&app, &served), &runtime, &mut rng, &mut ledger, &mut n) {
                break; // the journal failed: the server stops taking changes
            }
            survived.acknowledged += 1;
        }
        disk.power_loss();
        disk.set_faults(planted);
        drop((served, app));
    }
    survived.disk = disk.stats();
    survived.image = disk.digest();
    Ok(survived)
}

/// One random change, acknowledged once the journal holds it; `false` when the journal failed.
fn step(
    (app, served): (&App, &Served),
    runtime: &tokio::runtime::Runtime,
    rng: &mut ChaCha8Rng,
    ledger: &mut Ledger,
    n: &mut u64,
) -> bool {
    let core = &served.core;
    let journal = served.journal.as_ref().expect("durable");
    let kept = || {
        let seq = core.journal_appended().expect("durable");
        runtime.block_on(journal.wait_durable(seq)).is_ok()
    };
    match rng.random_range(0..5) {
        4 => {
            // An import naming one upn twice is refused whole: nothing of it may be applied.
            *n += 1;
            let upn = format!("refused{n}@sim.test");
            let refused = core.import_accounts(vec![row(&upn), row(&upn)], None);
            if !kept() {
                return false;
            }
            match refused {
                Err(e) if e.code == ErrorCode::RepeatedUpn => ledger.refused.push(upn),
                other => panic!("an import naming {upn} twice was not refused: {other:?}"),
            }
        }
        0 => {
            *n += 1;
            let Ok(id) = import(core, *n) else {
                return kept();
            };
            let Some(otp) = issue(core, &id) else {
                return kept();
            };
            if !kept() {
                return false;
            }
            ledger.accounts.push(id.clone());
            ledger.issued.push((id, otp));
        }
        1 if !ledger.issued.is_empty() => {
            let (account, otp) = ledger
                .issued
                .swap_remove(rng.random_range(0..ledger.issued.len()));
            let Ok(r) = redeem(core, &otp, &format!("C{n}")) else {
                return kept();
            };
            // What an admin is shown of it before it is acknowledged.
            if let Some((id, serial, _)) = shown(app, runtime, &account) {
                ledger.shown_ids.push((id, serial));
            }
            if !kept() {
                return false;
            }
            ledger.redeemed.push(Redeemed {
                account,
                otp,
                request: r.request_id,
                poll_token: r.poll_token,
                approved: false,
                shown_approved: false,
                handed: false,
            });
        }
        2 => {
            if let Some(r) = ledger.redeemed.iter_mut().find(|r| !r.approved) {
                // Refused when an earlier approval whose answer was lost survived: what the
                // server shows once kept is what counts.
                let _ = core.approve(&r.request, None, NOW, None);
                if shown(app, runtime, &r.account).is_some_and(|(.., s)| s == "approved") {
                    r.shown_approved = true;
                }
                if !kept() {
                    return false;
                }
                r.approved = matches!(
                    status_of(core, &r.account),
                    Some(RequestStatus::Approved | RequestStatus::SignedIn)
                );
            }
        }
        _ => {
            if let Some(r) = ledger.redeemed.iter_mut().find(|r| r.approved && !r.handed) {
                let handed = match core.sign_in(&r.request, &r.poll_token, NOW) {
                    Ok(_) => true,
                    // An earlier hand-over whose answer was lost survived.
                    Err(e) => e.code == ErrorCode::CredentialsAlreadyIssued,
                };
                if !kept() {
                    return false;
                }
                r.handed = handed;
            }
        }
    }
    true
}

fn row(upn: &str) -> ImportRow {
    ImportRow {
        line: 1,
        input: AccountInput {
            upn: upn.to_owned(),
            display_name: "Room".into(),
            license: License::Pro,
            readiness: Readiness::NoActionNeeded,
            password: None,
        },
    }
}

fn import(core: &Core, n: u64) -> Result<String, ()> {
    let rows = vec![row(&format!("room{n}@sim.test"))];
    let imported = core.import_accounts(rows, None).map_err(|_| ())?;
    Ok(imported.results[0].account_id.clone())
}

fn issue(core: &Core, account: &str) -> Option<String> {
    let batch = BatchRequest {
        account_ids: vec![account.to_owned()],
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    match core.create_batch(batch, NOW, None).ok()? {
        BatchOutcome::Created(c) => Some(c.generated[0].otp.clone()),
        BatchOutcome::Review(_) => None,
    }
}

fn redeem(
    core: &Core,
    otp: &str,
    serial: &str,
) -> Result<otpfleet_protocol::RedeemResponse, otpfleet_server::ApiError> {
    let device = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: serial.into(),
        hdmi_ingest: true,
    };
    let token = core.verify(&device, NOW)?.verification_token;
    core.redeem(
        &RedeemRequest {
            otp: otp.to_owned(),
            verification_token: token,
        },
        NOW,
    )
}

/// Every acknowledged change is there; no refused change is; nothing shown is undone (an id
/// names the console it was shown for; an approval shown stays); no OTP redeems twice; no
/// credentials go twice.
fn check(core: &Core, ledger: &Ledger) -> Result<(), String> {
    let now_named = serials_by_request(core);
    for (id, serial) in &ledger.shown_ids {
        match now_named.get(id) {
            Some(now) if now != serial => {
                return Err(format!(
                    "request {id} was shown for console {serial} and now names console {now}"
                ));
            }
            _ => {}
        }
    }
    for r in ledger.redeemed.iter().filter(|r| r.shown_approved) {
        let status = status_of(core, &r.account);
        if !matches!(
            status,
            Some(RequestStatus::Approved | RequestStatus::SignedIn)
        ) {
            return Err(format!(
                "{} was shown approved and is now {status:?}",
                r.request
            ));
        }
    }
    for upn in &ledger.refused {
        let query = AccountQuery {
            search: Some(upn.clone()),
            limit: 10,
            ..AccountQuery::default()
        };
        let found = core.list_accounts(&query, NOW).map_err(|e| e.message)?;
        if !found.accounts.is_empty() {
            return Err(format!("the refused import of {upn} was applied"));
        }
    }
    for id in &ledger.accounts {
        core.account_detail(id, NOW)
            .map_err(|e| format!("acknowledged account {id} was lost: {}", e.message))?;
    }
    for r in &ledger.redeemed {
        match redeem(core, &r.otp, "CHECKER") {
            Err(e) if e.code == ErrorCode::OtpAlreadyUsed => {}
            other => {
                return Err(format!(
                    "the OTP of acknowledged request {} redeemed again: {other:?}",
                    r.request
                ));
            }
        }
        let status = status_of(core, &r.account);
        if r.handed {
            match core.sign_in(&r.request, &r.poll_token, NOW) {
                Err(e) if e.code == ErrorCode::CredentialsAlreadyIssued => {}
                other => {
                    return Err(format!(
                        "credentials of {} handed twice: {other:?}",
                        r.request
                    ));
                }
            }
        } else if r.approved
            && !matches!(
                status,
                Some(RequestStatus::Approved | RequestStatus::SignedIn)
            )
        {
            return Err(format!(
                "the acknowledged approval of {} was lost: the request is {status:?}",
                r.request
            ));
        }
    }
    Ok(())
}

/// Every request the server knows, by id: its console's serial.
fn serials_by_request(core: &Core) -> std::collections::HashMap<String, String> {
    let mut named = std::collections::HashMap::new();
    for status in [
        RequestStatus::AwaitingApproval,
        RequestStatus::Approved,
        RequestStatus::SignedIn,
    ] {
        let query = RequestQuery {
            status,
            limit: 100_000,
            cursor: None,
        };
        for r in core
            .list_requests(&query, NOW)
            .map(|p| p.requests)
            .unwrap_or_default()
        {
            named.insert(r.id, r.device.serial);
        }
    }
    named
}

/// The status of the request on `account`'s OTP, as the server shows it.
fn status_of(core: &Core, account: &str) -> Option<RequestStatus> {
    core.account_detail(account, NOW)
        .ok()
        .and_then(|a| a.otp?.request)
        .map(|v| v.status)
}

/// The seeds to run: `SIM_SEED=N` replays one; otherwise fresh ones are drawn from the OS and
/// printed, `SIM_SEEDS` of them (default 4), or as many as `SIM_SECONDS` of wall time hold.
fn seeds() -> impl Iterator<Item = u64> {
    let one: Option<u64> = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok());
    let var = |name: &str| -> Option<u64> { std::env::var(name).ok().and_then(|s| s.parse().ok()) };
    let budget = var("SIM_SECONDS").map(std::time::Duration::from_secs);
    let count = match (one, budget) {
        (Some(_), _) => 1,
        (None, Some(_)) => u64::MAX,
        (None, None) => var("SIM_SEEDS").unwrap_or(4),
    };
    let mut os = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut os).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from_le_bytes(os));
    let started = std::time::Instant::now();
    (0..count)
        .take_while(move |_| budget.is_none_or(|b| started.elapsed() < b))
        .map(move |_| one.unwrap_or_else(|| rng.random_range(0..1_000_000_000)))
}

/// Fresh seeds every run (4 in `cargo test`; CI gives it `SIM_SECONDS`), each through 30
/// rounds of changes, power cuts (inside a commit, between commits, while recovering) and disk
/// faults; every promise checked after every restart. Prints what it survived.
#[test]
fn seeded_crashes_and_disk_faults_break_no_promise() {
    let started = std::time::Instant::now();
    let mut total = Survived::default();
    let mut runs = 0;
    for seed in seeds() {
        let survived = simulate(seed, Faults::NONE).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: {e}\nreplay: SIM_SEED={seed} cargo test -p otpfleet-server --test it simulation::seeded -- --nocapture"
            )
        });
        eprintln!("simulation: seed {seed}: {survived:?}");
        runs += 1;
        total.restarts += survived.restarts;
        total.crashes_in_recovery += survived.crashes_in_recovery;
        total.acknowledged += survived.acknowledged;
        total.disk.power_losses += survived.disk.power_losses;
        total.disk.torn_writes += survived.disk.torn_writes;
        total.disk.lost_writes += survived.disk.lost_writes;
        total.disk.io_errors += survived.disk.io_errors;
        total.disk.full += survived.disk.full;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "simulation: {runs} seeds, {} power losses ({} while recovering), {} torn writes, {} \
         unsynced writes lost, {} I/O faults, {} full-disk refusals, {} changes acknowledged, \
         in {seconds:.1} s: {:.0} crashes survived per minute",
        total.disk.power_losses,
        total.crashes_in_recovery,
        total.disk.torn_writes,
        total.disk.lost_writes,
        total.disk.io_errors,
        total.disk.full,
        total.acknowledged,
        total.disk.power_losses as f64 * 60.0 / seconds.max(1e-9)
    );
}

/// A seed replays byte for byte: the same changes, faults and cuts, and the same bytes on the
/// disk at the end (the server's secret, OTPs and tokens are drawn from the seed on a simulated
/// disk, and what a power loss keeps does not depend on the order redb flushes pages in).
#[test]
fn a_seed_replays_byte_for_byte() {
    for seed in seeds().take(2) {
        let first = simulate(seed, Faults::NONE).expect("no promise broken");
        let again = simulate(seed, Faults::NONE).expect("no promise broken");
        assert_eq!(
            format!("{first:?}"),
            format!("{again:?}"),
            "seed {seed} did not replay"
        );
    }
}

/// Runs `defect` planted under `seed`, which must find it with a failure that says `says`
/// (a seed replays byte for byte, so the seed that found it once finds it every time).
fn caught(defect: Defect, seed: u64, says: &str) {
    let planted = Faults {
        planted: Some(defect),
        ..Faults::NONE
    };
    match simulate(seed, planted) {
        Err(found) if found.contains(says) => {
            eprintln!("simulation: planted {defect:?}, seed {seed}: {found}");
        }
        other => panic!("seed {seed} did not find the planted {defect:?}: {other:?}"),
    }
}

/// Acknowledging an approval before its group commit is synced (planted as a disk whose sync
/// answers success and keeps nothing) loses acknowledged changes at the first power loss that
/// drops unsynced writes.
#[test]
fn acknowledging_before_the_sync_is_caught() {
    // What the lost commits leave does not even open: that is caught too.
    caught(Defect::LyingSync, 1, "the server cannot start");
}

/// A recovery that skips the journal's last group commit loses what that group acknowledged.
#[test]
fn a_recovery_that_skips_the_last_group_is_caught() {
    caught(
        Defect::SkipLastGroup,
        1,
        "req_1 was shown approved and is now",
    );
}

/// An import refused for a repeated upn, journaled anyway, is applied by the next start's
/// replay: the ledger of refusals finds it.
#[test]
fn replay_of_a_refused_import_is_caught() {
    caught(
        Defect::JournalRefusedImport,
        1,
        "the refused import of refused1@sim.test was applied",
    );
}

/// The server before issue 28 (answers did not wait for the journal): a GET showed a request id
/// or an approval that a crash then undid, and after it the id named another console or the
/// approval was gone. The simulation finds it.
#[test]
fn showing_what_is_not_kept_is_caught() {
    caught(
        Defect::ShowBeforeKept,
        1,
        "req_3 was shown approved and is now",
    );
}

/// The same server before issue 28 handed a request id shown before a crash to another console
/// after it: seed 2 finds it.
#[test]
fn a_request_id_reused_after_a_crash_is_caught() {
    caught(
        Defect::ShowBeforeKept,
        2,
        "request req_5 was shown for console C22 and now names console C27",
    );
}
