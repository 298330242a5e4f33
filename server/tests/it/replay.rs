//! Replaying the journal gives the live state. Random sequences of operations (imports with
//! updates, OTP batches, redemptions right and wrong, decisions, hand-overs, manual sign-ins,
//! preference changes, time passing with expiries recorded, restarts) run against a durable
//! core; at every restart and at the end, the state the server shows (every account in detail,
//! every request of every status, the preferences) equals the state replayed from its journal.
//! Bounded cases; `PROPTEST_CASES` for more.

use otpfleet_protocol::{
    AccountInput, BatchRequest, License, ManualSignInRequest, PasswordMode, Preferences, Readiness,
    RedeemRequest, RejectReason, RequestStatus, VerifyRequest,
};
use otpfleet_server::domain::accounts::{AccountQuery, ImportRow};
use otpfleet_server::domain::batches::BatchOutcome;
use otpfleet_server::domain::requests::RequestQuery;
use otpfleet_server::{Catalogue, Core, ServerConfig, open_durable};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    /// Rooms (by number, from a small pool so that imports also update) with a license and,
    /// for some, a password.
    Import(Vec<(u8, bool, bool)>),
    /// An OTP batch for these rooms.
    Batch(Vec<u8>),
    /// An OTP handed out so far (counted round), typed right or with a typo.
    Redeem(usize, bool),
    Approve(usize),
    Reject(usize),
    SignIn(usize),
    /// Manual sign-in of a room with its password, or a wrong one.
    Manual(u8, bool),
    Preferences(u32, bool),
    /// Hours pass; expiries are recorded.
    Advance(u8),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Mostly pro licences, so that batches generate and every later step has work.
        3 => prop::collection::vec((0u8..10, prop::bool::weighted(0.8), any::<bool>()), 1..4)
            .prop_map(Op::Import),
        3 => prop::collection::vec(0u8..10, 1..4).prop_map(Op::Batch),
        4 => (0usize..8, prop::bool::weighted(0.2)).prop_map(|(i, typo)| Op::Redeem(i, typo)),
        2 => (0usize..8).prop_map(Op::Approve),
        2 => (0usize..8).prop_map(Op::Reject),
        2 => (0usize..8).prop_map(Op::SignIn),
        1 => (0u8..10, any::<bool>()).prop_map(|(r, right)| Op::Manual(r, right)),
        1 => (prop::sample::select(vec![1u32, 8, 24, 336]), any::<bool>())
            .prop_map(|(h, auto)| Op::Preferences(h, auto)),
        1 => (0u8..30).prop_map(Op::Advance),
        1 => Just(Op::Restart),
    ]
}

/// What the client side of the sequence holds: OTPs handed out, requests made.
#[derive(Default)]
struct Held {
    otps: Vec<String>,
    /// (request id, poll token)
    requests: Vec<(String, String)>,
    serial: u32,
}

fn upn(room: u8) -> String {
    format!("room-{room}@replay.test")
}

fn apply(core: &Core, op: &Op, now: &mut u64, held: &mut Held) {
    let t = *now;
    match op {
        Op::Import(rooms) => {
            let rows = rooms
                .iter()
                .enumerate()
                .map(|(i, (room, pro, password))| ImportRow {
                    line: i + 1,
                    input: AccountInput {
                        upn: upn(*room),
                        display_name: format!("Room {room}"),
                        license: if *pro { License::Pro } else { License::Basic },
                        readiness: Readiness::NoActionNeeded,
                        password: password.then(|| format!("pw-{room}")),
                    },
                })
                .collect();
            let _ = core.import_accounts(rows, Some("test"));
        }
        Op::Batch(rooms) => {
            let ids = ids_of(core, rooms);
            if ids.is_empty() {
                return;
            }
            let req = BatchRequest {
                account_ids: ids,
                password_mode: PasswordMode::AutoGenerate,
                sign_in_csv: None,
                review_only: false,
            };
            if let Ok(BatchOutcome::Created(c)) = core.create_batch(req, t, Some("test")) {
                held.otps.extend(c.generated.into_iter().map(|g| g.otp));
            }
        }
        Op::Redeem(i, typo) => {
            let Some(otp) = nth(&held.otps, *i).cloned() else {
                return;
            };
            let otp = if *typo {
                otp.replacen(|c: char| c.is_ascii_alphabetic(), "B", 1)
            } else {
                otp
            };
            let token = verify(core, held, t);
            if let Ok(r) = core.redeem(
                &RedeemRequest {
                    otp,
                    verification_token: token,
                },
                t,
            ) {
                held.requests.push((r.request_id, r.poll_token));
            }
        }
        Op::Approve(i) => {
            if let Some((id, _)) = nth(&held.requests, *i) {
                let _ = core.approve(id, None, t, Some("test"));
            }
        }
        Op::Reject(i) => {
            if let Some((id, _)) = nth(&held.requests, *i) {
                let _ = core.reject(id, None, RejectReason::WrongRoom, t, Some("test"));
            }
        }
        Op::SignIn(i) => {
            if let Some((id, token)) = nth(&held.requests, *i) {
                let _ = core.sign_in(id, token, t);
            }
        }
        Op::Manual(room, right) => {
            let token = verify(core, held, t);
            let req = ManualSignInRequest {
                email: upn(*room),
                password: if *right {
                    format!("pw-{room}")
                } else {
                    "wrong".into()
                },
                verification_token: token,
            };
            let _ = core.manual_sign_in(&req, None, t);
        }
        Op::Preferences(hours, auto) => {
            let prefs = Preferences {
                otp_validity_hours: *hours,
                auto_approve: *auto,
            };
            let _ = core.set_preferences(prefs, Some("test"));
        }
        Op::Advance(hours) => {
            *now += u64::from(*hours) * HOUR_MS;
            core.record_expiries(*now);
        }
        Op::Restart => {}
    }
}

/// The `i`th of `items`, counted round (so that random indexes mostly hit something).
fn nth<T>(items: &[T], i: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[i % items.len()])
}

fn verify(core: &Core, held: &mut Held, now: u64) -> String {
    held.serial += 1;
    let device = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: format!("R{}", held.serial),
        hdmi_ingest: true,
    };
    core.verify(&device, now)
        .map(|v| v.verification_token)
        .unwrap_or_default()
}

fn ids_of(core: &Core, rooms: &[u8]) -> Vec<String> {
    let all = accounts(core, 0);
    rooms
        .iter()
        .filter_map(|room| {
            all.iter()
                .find(|a| a["upn"] == upn(*room))
                .and_then(|a| a["id"].as_str().map(str::to_owned))
        })
        .collect()
}

/// Every account, in detail, as `GET /v1/accounts/{id}` shows it.
fn accounts(core: &Core, now: u64) -> Vec<Value> {
    let q = AccountQuery {
        readiness: None,
        provisioning: None,
        search: None,
        limit: 1000,
        cursor: None,
    };
    let page = core.list_accounts(&q, now).expect("list");
    page.accounts
        .iter()
        .map(|a| {
            serde_json::to_value(core.account_detail(&a.id, now).expect("detail")).expect("json")
        })
        .collect()
}

/// The state the server shows at `now`.
fn snapshot(core: &Core, now: u64) -> Value {
    let requests: Vec<Value> = RequestStatus::ALL
        .iter()
        .map(|status| {
            let q = RequestQuery {
                status: *status,
                limit: 1000,
                cursor: None,
            };
            serde_json::to_value(core.list_requests(&q, now).expect("requests")).expect("json")
        })
        .collect();
    json!({
        "accounts": accounts(core, now),
        "requests": requests,
        "preferences": core.preferences(),
    })
}

fn open(dir: &Path, now: u64) -> (Core, std::sync::Arc<otpfleet_server::journal::Journal>) {
    let clock = std::sync::Arc::new(otpfleet_server::ManualClock::new(now));
    let d = open_durable(dir, ServerConfig::default(), Catalogue::builtin(), clock)
        .expect("the journal replays");
    (d.core, d.journal)
}

/// Waits until the journal holds every change made so far.
fn durable(core: &Core, journal: &otpfleet_server::journal::Journal) {
    if let Some(seq) = core.journal_appended() {
        futures::executor::block_on(journal.wait_durable(seq)).expect("durable");
    }
}

/// Closes `core`, reopens the directory and checks the replayed state is the live one.
fn restart_and_compare(
    dir: &Path,
    core: Core,
    journal: std::sync::Arc<otpfleet_server::journal::Journal>,
    now: u64,
) -> Result<(Core, std::sync::Arc<otpfleet_server::journal::Journal>), TestCaseError> {
    durable(&core, &journal);
    let live = snapshot(&core, now);
    drop(core);
    drop(journal);
    let (core, journal) = open(dir, now);
    let replayed = snapshot(&core, now);
    prop_assert_eq!(
        live,
        replayed,
        "the replayed state differs from the live one"
    );
    Ok((core, journal))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replaying_the_journal_gives_the_live_state(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut now = crate::helpers::START_MS;
        let mut held = Held::default();
        let (mut core, mut journal) = open(dir.path(), now);
        for op in &ops {
            if matches!(op, Op::Restart) {
                (core, journal) = restart_and_compare(dir.path(), core, journal, now)?;
            } else {
                apply(&core, op, &mut now, &mut held);
            }
        }
        restart_and_compare(dir.path(), core, journal, now)?;
    }
}
