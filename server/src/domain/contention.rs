//! Redemptions of distinct accounts share no lock and write no word the other reads, so that
//! the server's redemption rate grows with its cores (issue 19). A lock over the whole store or
//! core is a `store::Global`, whose every acquisition these tests count; the approval queue and
//! the indexes are sharded; the throttle is left alone by a success when nobody has failed.

use super::batches::BatchOutcome;
use super::secrets::Secrets;
use super::store::{QUEUE_SHARDS, global_locks_taken};
use super::{Core, accounts::ImportRow};
use crate::{Catalogue, ServerConfig};
use otpfleet_protocol::{
    AccountInput, BatchRequest, License, PasswordMode, Preferences, Readiness, RedeemRequest,
    VerifyRequest,
};

const NOW_MS: u64 = 1_795_248_000_000;

/// A core with `n` fresh OTPs, and a verification token to redeem them with.
fn core_with_otps(n: usize) -> (Core, Vec<RedeemRequest>) {
    let core = Core::new(
        ServerConfig::default(),
        Catalogue::builtin(),
        Secrets::random(),
    );
    let prefs = Preferences {
        otp_validity_hours: 8,
        auto_approve: false,
    };
    core.set_preferences(prefs, None)
        .expect("valid preferences");
    let rows = (0..n)
        .map(|i| ImportRow {
            line: i + 1,
            input: AccountInput {
                upn: format!("room-{i}@contoso.com"),
                display_name: format!("Room {i}"),
                license: License::Pro,
                readiness: Readiness::NoActionNeeded,
                password: None,
            },
        })
        .collect();
    let imported = core.import_accounts(rows, None).expect("imports");
    let batch = BatchRequest {
        account_ids: imported.results.into_iter().map(|r| r.account_id).collect(),
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    let Ok(BatchOutcome::Created(created)) = core.create_batch(batch, NOW_MS, None) else {
        panic!("the batch is generated");
    };
    let verify = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: "CONTENTION-1".into(),
        hdmi_ingest: true,
    };
    let token = core
        .verify(&verify, NOW_MS)
        .expect("verifies")
        .verification_token;
    let requests = created
        .generated
        .into_iter()
        .map(|g| RedeemRequest {
            otp: g.otp,
            verification_token: token.clone(),
        })
        .collect();
    (core, requests)
}

#[test]
fn a_redemption_takes_no_global_lock() {
    let (core, requests) = core_with_otps(40);
    let before = global_locks_taken();
    for r in &requests {
        core.redeem(r, NOW_MS + 1_000).expect("redeems");
    }
    assert_eq!(
        global_locks_taken() - before,
        0,
        "redemptions of distinct accounts took a lock over the whole store or core"
    );
    // The count is real: a listing of the accounts does take the accounts' lock.
    let before = global_locks_taken();
    let _ = core.store.all_accounts();
    assert!(global_locks_taken() > before, "the counter counts");
}

#[test]
fn consecutive_requests_wait_in_different_shards_of_the_queue() {
    let (core, requests) = core_with_otps(2 * QUEUE_SHARDS as usize);
    for r in &requests {
        core.redeem(r, NOW_MS + 1_000).expect("redeems");
    }
    let shards = core.store.pending.shard_sizes();
    assert_eq!(shards.len(), QUEUE_SHARDS as usize);
    assert!(
        shards.iter().all(|&n| n == 2),
        "{} requests in {QUEUE_SHARDS} shards, two in each: {shards:?}",
        requests.len()
    );
    let oldest = core.store.pending.after(0, 5);
    assert_eq!(
        oldest,
        vec![1, 2, 3, 4, 5],
        "read back in id order across shards"
    );
}

#[test]
fn a_success_leaves_the_throttle_alone_while_nobody_fails() {
    let (core, requests) = core_with_otps(3);
    core.redeem(&requests[0], NOW_MS + 1_000).expect("redeems");
    assert_eq!(core.throttle.tracked_sources(), 0);
    let wrong = RedeemRequest {
        otp: "BBBB-BBBB-BBBB-BBBB".into(),
        ..requests[1].clone()
    };
    assert!(core.redeem(&wrong, NOW_MS + 2_000).is_err());
    assert_eq!(core.throttle.tracked_sources(), 1, "a failure is tracked");
    core.redeem(&requests[1], NOW_MS + 3_000).expect("redeems");
    assert_eq!(
        core.throttle.tracked_sources(),
        0,
        "and forgotten on success"
    );
}
