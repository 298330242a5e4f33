//! The data directory: recovery after a restart, a directory in use refused, a corrupt or
//! truncated one reported with the file and never reset.

use otpfleet_protocol::{
    AccountInput, BatchRequest, License, PasswordMode, Readiness, RedeemRequest, VerifyRequest,
};
use otpfleet_server::domain::accounts::ImportRow;
use otpfleet_server::domain::batches::BatchOutcome;
use otpfleet_server::journal::JournalError;
use otpfleet_server::{Catalogue, Core, ServerConfig, open_durable};
use std::path::Path;

const NOW: u64 = crate::helpers::START_MS;

fn open(
    dir: &Path,
) -> Result<
    (
        Core,
        std::sync::Arc<otpfleet_server::journal::Journal>,
        usize,
    ),
    JournalError,
> {
    let clock = std::sync::Arc::new(otpfleet_server::ManualClock::new(NOW));
    open_durable(dir, ServerConfig::default(), Catalogue::builtin(), clock)
        .map(|d| (d.core, d.journal, d.replayed))
}

/// Imports and generates one OTP; answers it.
fn one_otp(core: &Core, upn: &str) -> String {
    let rows = vec![ImportRow {
        line: 1,
        input: AccountInput {
            upn: upn.into(),
            display_name: "Room".into(),
            license: License::Pro,
            readiness: Readiness::NoActionNeeded,
            password: None,
        },
    }];
    let id = core.import_accounts(rows, None).expect("import").results[0]
        .account_id
        .clone();
    let batch = BatchRequest {
        account_ids: vec![id],
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    match core.create_batch(batch, NOW, None).expect("batch") {
        BatchOutcome::Created(c) => c.generated[0].otp.clone(),
        BatchOutcome::Review(_) => panic!("not a review"),
    }
}

/// A verification of a certified console with serial `serial`.
fn verified(core: &Core, serial: &str, now_ms: u64) -> otpfleet_protocol::VerifyResponse {
    let device = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: serial.into(),
        hdmi_ingest: true,
    };
    core.verify(&device, now_ms).expect("verify")
}

async fn durable(core: &Core, journal: &otpfleet_server::journal::Journal) {
    journal
        .wait_durable(core.journal_appended().expect("a durable core"))
        .await
        .expect("durable");
}

#[tokio::test]
async fn a_restart_recovers_accounts_otps_and_redemptions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (used, fresh) = {
        let (core, journal, replayed) = open(dir.path()).expect("opens");
        assert_eq!(replayed, 0);
        let used = one_otp(&core, "a@contoso.com");
        let fresh = one_otp(&core, "b@contoso.com");
        let vt = verified(&core, "S1", NOW);
        core.redeem(
            &RedeemRequest {
                otp: used.clone(),
                verification_token: vt.verification_token,
            },
            NOW,
        )
        .expect("redeem");
        durable(&core, &journal).await;
        (used, fresh)
    };
    // Dropping the last handle closed the journal (its writer joined): it reopens at once.
    let (core, _journal, replayed) = open(dir.path()).expect("reopens");
    assert!(replayed >= 5, "{replayed}");
    let vt = verified(&core, "S2", NOW);
    let again = core.redeem(
        &RedeemRequest {
            otp: used,
            verification_token: vt.verification_token.clone(),
        },
        NOW,
    );
    assert_eq!(again.map_err(|e| e.code.as_str()), Err("otp_already_used"));
    let ok = core.redeem(
        &RedeemRequest {
            otp: fresh.clone(),
            verification_token: vt.verification_token.clone(),
        },
        NOW,
    );
    assert!(
        ok.is_ok(),
        "an OTP generated before the restart still works: {ok:?}"
    );
    // Expiry keeps counting across the restart: 8 hours after generation it is gone.
    let later = NOW + 8 * 3_600_000;
    let vt = verified(&core, "S3", later);
    let late = core.redeem(
        &RedeemRequest {
            otp: one_otp(&core, "c@contoso.com"),
            verification_token: vt.verification_token,
        },
        later,
    );
    assert_eq!(late.map_err(|e| e.code.as_str()), Err("otp_expired"));
}

/// A data directory made in redb's file format 2 (by builds before this one) is upgraded to
/// format 3 when opened (format 2 can lose its allocator state to a power loss after a
/// repair), and keeps what it holds.
#[tokio::test]
async fn a_format_2_directory_is_upgraded_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("otpfleet.redb");
    {
        let v2 = redb::Database::builder()
            .create_with_file_format_v3(false)
            .create(&file)
            .expect("a format 2 file");
        v2.begin_write().expect("write").commit().expect("commit");
    }
    let (core, journal, _) = open(dir.path()).expect("opens a format 2 directory");
    one_otp(&core, "a@contoso.com");
    durable(&core, &journal).await;
    drop((core, journal));
    let mut v3 = redb::Database::open(&file).expect("redb opens it");
    assert!(!v3.upgrade().expect("upgrade"), "already in format 3");
    drop(v3);
    let (core, _, replayed) = open(dir.path()).expect("reopens");
    assert!(replayed >= 2, "{replayed}");
    assert_eq!(core.stats(NOW).accounts, 1);
}

/// A new journal is created aside and renamed into place: what a crash during an earlier
/// creation left under the temporary name is no obstacle, and nothing is left there after.
#[test]
fn a_journal_is_created_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aside = dir.path().join("otpfleet.redb.new");
    std::fs::write(&aside, b"half a database").unwrap();
    let (core, journal, _) = open(dir.path()).expect("creates");
    drop((core, journal));
    assert!(!aside.exists(), "the temporary file is gone");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["otpfleet.redb"], "{names:?}");
    open(dir.path()).expect("reopens");
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(dir.path()).expect("opens");
    let second = open(dir.path());
    assert!(
        matches!(second, Err(JournalError::InUse { .. })),
        "{second:?}"
    );
}

#[test]
fn a_corrupt_or_truncated_directory_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("otpfleet.redb");
    std::fs::write(&file, b"this is not a database, and it must not be reset").expect("write");
    let before = std::fs::read(&file).expect("read");
    let err = open(dir.path()).expect_err("refused");
    assert!(
        err.to_string().contains("otpfleet.redb"),
        "names the file: {err}"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        before,
        "never silently reset"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (core, _j, _) = open(dir.path()).expect("opens");
        for i in 0..50 {
            one_otp(&core, &format!("room{i}@contoso.com"));
        }
    }
    // The journal closed when its last handle went: nothing writes to the file any more.
    let file = dir.path().join("otpfleet.redb");
    let whole = std::fs::read(&file).expect("read");
    for cut in [whole.len() / 3, whole.len() / 2, 4096, 100] {
        std::fs::write(&file, &whole[..cut]).expect("truncate");
        let err = open(dir.path()).expect_err("a truncated journal is refused");
        assert!(err.to_string().contains("otpfleet.redb"), "{err}");
        let len = std::fs::metadata(&file).expect("meta").len();
        assert_eq!(len, cut as u64, "left as it is");
    }
}

#[tokio::test]
async fn auto_approval_set_before_a_restart_still_approves_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let otp = {
        let (core, journal, _) = open(dir.path()).expect("opens");
        let prefs = otpfleet_protocol::Preferences {
            otp_validity_hours: 8,
            auto_approve: true,
        };
        core.set_preferences(prefs, None)
            .expect("valid preferences");
        let otp = one_otp(&core, "a@contoso.com");
        durable(&core, &journal).await;
        otp
    };
    let (core, _journal, _) = open(dir.path()).expect("reopens");
    assert!(core.preferences().auto_approve);
    let vt = verified(&core, "S1", NOW);
    let redeemed = core
        .redeem(
            &RedeemRequest {
                otp,
                verification_token: vt.verification_token,
            },
            NOW,
        )
        .expect("redeem");
    assert_eq!(
        redeemed.status,
        otpfleet_protocol::RequestStatus::Approved,
        "approved at once, as before the restart"
    );
}

/// Four importers at once, of accounts they share and accounts of their own, on a durable
/// server, then a restart, five times over. Account ids were once handed out under one lock and
/// journaled under another, so concurrent imports wrote creations out of id order and the
/// directory refused to open after any restart (issue 13). Every acknowledged account must be
/// there after every restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_imports_open_again_after_every_restart() {
    use crate::helpers::TestApp;
    use http::Method;
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acknowledged: std::collections::BTreeMap<String, String> = Default::default();
    for round in 0..5 {
        let app = std::sync::Arc::new(TestApp::spawn_durable(dir.path()).await);
        let imports = (0..4).map(|importer| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                let rows: Vec<Value> = (0..300)
                    .map(|i| {
                        // A third shared by every importer (updates race creations), the rest new.
                        let upn = if i < 100 {
                            format!("shared-{i}@contoso.com")
                        } else {
                            format!("r{round}-i{importer}-{i}@contoso.com")
                        };
                        json!({"upn": upn, "display_name": format!("Room {i}"),
                               "license": "pro", "readiness": "no_action_needed"})
                    })
                    .collect();
                app.admin(Method::POST, "/v1/accounts", Some(Value::Array(rows)))
                    .await
            })
        });
        for import in futures::future::join_all(imports).await {
            let import = import.expect("the importer ran");
            assert_eq!(import.status, http::StatusCode::OK, "{}", import.text);
            for line in import.body["results"].as_array().expect("results") {
                let upn = line["upn"].as_str().expect("upn").to_lowercase();
                let id = line["account_id"].as_str().expect("id").to_owned();
                let known = acknowledged.entry(upn).or_insert_with(|| id.clone());
                assert_eq!(*known, id, "one account per upn");
            }
        }
        std::sync::Arc::into_inner(app)
            .expect("the last handle")
            .stop()
            .await;
        let (core, _journal, _) = open(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: the directory must open again: {e}"));
        for (upn, id) in &acknowledged {
            let detail = core
                .account_detail(id, NOW)
                .expect("an acknowledged account");
            assert_eq!(detail.account.upn.to_lowercase(), *upn, "{id}");
        }
    }
    assert_eq!(acknowledged.len(), 100 + 5 * 4 * 200);
}

/// A journal written before that fix can hold creations out of id order: replay holds a
/// creation back until the ones before it are applied, so such a directory opens; one that
/// misses a creation is refused naming the accounts.
#[test]
fn creations_out_of_order_replay_and_a_missing_one_is_named() {
    use otpfleet_server::domain::{Event, Replay};
    let created = |id: u64| Event::AccountUpserted {
        id,
        upn: format!("room-{id}@contoso.com"),
        display_name: format!("Room {id}"),
        license: License::Pro,
        readiness: Readiness::NoActionNeeded,
        password_hash: None,
        by: None,
    };
    let core = Core::with_defaults();
    let mut replay = Replay::new(&core);
    for id in [1, 3, 2, 4] {
        replay.apply(created(id)).expect("replays");
    }
    replay.finish().expect("nothing missing");
    for id in 1..=4 {
        let detail = core
            .account_detail(&format!("acc_{id}"), NOW)
            .expect("the account");
        assert_eq!(detail.account.upn, format!("room-{id}@contoso.com"));
    }

    let core = Core::with_defaults();
    let mut replay = Replay::new(&core);
    for id in [1, 3] {
        replay.apply(created(id)).expect("held back");
    }
    let err = replay.finish().expect_err("acc_2 never came");
    assert!(err.contains("acc_3") && err.contains("acc_2"), "{err}");
}
