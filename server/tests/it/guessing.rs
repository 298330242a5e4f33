//! Guessing OTPs does not pay: 100,000 random guesses against 10,000 live OTPs find none, and
//! the throttle engages, on either store.

use otpfleet_protocol::{
    AccountInput, BatchRequest, License, OTP_LEN, OtpCode, PasswordMode, Readiness, RedeemRequest,
    VerifyRequest,
};
use otpfleet_server::domain::accounts::ImportRow;
use otpfleet_server::{ApiError, Core, handle};
use rand::{Rng, SeedableRng};
use std::net::IpAddr;

const LIVE: usize = 10_000;
const GUESSES: u64 = 100_000;

#[tokio::test]
async fn a_hundred_thousand_guesses_against_ten_thousand_live_otps_find_none_and_get_throttled() {
    let core = Core::with_defaults();
    let now = crate::helpers::START_MS;
    rooms_with_otps(&core, LIVE, now);
    assert_eq!(
        core.preferences_view(now).guessing_bound.live_otps,
        LIVE as u64
    );
    let guessed = guesses(
        |v, at| core.verify(v, at).map(|t| t.verification_token),
        async |r, from, at| core.redeem_from(&r, Some(from), at).map(|_| ()),
    )
    .await;
    guessed.check(core.throttle_counts());
    let bound = core.preferences_view(now).guessing_bound;
    assert!(bound.success_probability < 1e-9, "{bound:?}");
}

/// The same guesses against a replica on PostgreSQL (its throttle is the replica's own: README
/// "Keeping intruders out"). Needs a PostgreSQL (`helpers::Db`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_guesses_against_a_replica_on_postgres_find_none_and_get_throttled() {
    use otpfleet_server::pg::{PgCore, PgStore};
    let Some(db) = crate::helpers::Db::new("guessing").await else {
        return;
    };
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let config = otpfleet_server::ServerConfig::default();
    let catalogue = otpfleet_server::Catalogue::builtin();
    let pg = PgCore::open(store, config, catalogue).await.unwrap();
    let now = crate::helpers::START_MS;
    let imported = pg
        .import_accounts(room_rows(LIVE), None, now)
        .await
        .unwrap();
    let ids = imported.results.into_iter().map(|r| r.account_id).collect();
    pg.create_batch(batch_of(ids), now, None).await.unwrap();
    let live = pg.preferences_view(now).await.unwrap().guessing_bound;
    assert_eq!(live.live_otps, LIVE as u64);
    let guessed = guesses(
        |v, at| pg.verify(v, at).map(|t| t.verification_token),
        async |r, from, at| pg.redeem_from(&r, Some(from), at).await.map(|_| ()),
    )
    .await;
    guessed.check(pg.throttle_counts());
    let bound = pg.preferences_view(now).await.unwrap().guessing_bound;
    assert!(bound.success_probability < 1e-9, "{bound:?}");
    db.drop_schema().await;
}

/// What `GUESSES` random guesses from one address met.
#[derive(Clone, Copy)]
struct Guessed {
    successes: u64,
    throttled: u64,
    refused: u64,
}

impl Guessed {
    /// None found, the per-address back-off engaged, and the throttle counted what it saw.
    fn check(&self, counts: otpfleet_server::domain::throttle::ThrottleCounts) {
        let Guessed {
            successes,
            throttled,
            refused,
        } = *self;
        assert_eq!(successes, 0);
        assert!(
            throttled > GUESSES / 2,
            "the per-address back-off engaged: {throttled} throttled, {refused} refused"
        );
        assert_eq!(counts.failures, refused);
        assert_eq!(counts.throttled_source, throttled);
    }
}

/// `GUESSES` random OTPs redeemed from one address, the console serial rotated, the clock
/// running 10 ms per guess: `verify` and `redeem` are a store's.
async fn guesses(
    verify: impl Fn(&VerifyRequest, u64) -> Result<String, ApiError>,
    redeem: impl AsyncFn(RedeemRequest, IpAddr, u64) -> Result<(), ApiError>,
) -> Guessed {
    let now = crate::helpers::START_MS;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let attacker: IpAddr = [203, 0, 113, 9].into();
    let mut met = Guessed {
        successes: 0,
        throttled: 0,
        refused: 0,
    };
    for i in 0..GUESSES {
        let at = now + i * 10;
        let device = VerifyRequest {
            make: "Logitech".into(),
            model: "Tap".into(),
            serial: format!("ATK{}", i % 5_000),
            hdmi_ingest: true,
        };
        let token = verify(&device, at).expect("verify");
        let guess = OtpCode::from_indices(std::array::from_fn::<u8, OTP_LEN, _>(|_| {
            rng.random_range(0..20)
        }));
        let req = RedeemRequest {
            otp: guess.to_string(),
            verification_token: token,
        };
        match redeem(req, attacker, at).await {
            Ok(()) => met.successes += 1,
            Err(e) if e.code.as_str() == "too_many_attempts" => {
                assert!(e.retry_after_s.is_some_and(|s| s > 0));
                met.throttled += 1;
            }
            Err(e) => {
                assert_eq!(e.code.as_str(), "invalid_otp");
                met.refused += 1;
            }
        }
    }
    met
}

#[tokio::test]
async fn the_metrics_show_the_throttle_and_the_bound() {
    let app = otpfleet_server::App::new(
        Core::with_defaults(),
        None,
        std::sync::Arc::new(otpfleet_server::ManualClock::new(crate::helpers::START_MS)),
        otpfleet_server::http::AdminTokens::new(["t"]),
    );
    let scrape = |token: Option<&str>| {
        let mut req = http::Request::get("/metrics");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        let app = &app;
        async move {
            let reply = handle(app, req).await;
            let body = http_body_util::BodyExt::collect(reply.into_body())
                .await
                .expect("body")
                .to_bytes();
            String::from_utf8_lossy(&body).into_owned()
        }
    };
    let admin = scrape(Some("t")).await;
    for metric in [
        "otpfleet_redeem_failures_total 0",
        "otpfleet_redeem_throttled_total{scope=\"source\"} 0",
        "otpfleet_guessing_bound 0e0",
        "otpfleet_live_otps 0",
        "otpfleet_approval_queue_depth 0",
    ] {
        assert!(admin.contains(metric), "{metric} in {admin}");
    }
    // Without the admin token: the counters, not what the accounts hold.
    let public = scrape(None).await;
    assert!(
        public.contains("otpfleet_redeem_failures_total 0"),
        "{public}"
    );
    for hidden in [
        "otpfleet_accounts",
        "otpfleet_live_otps",
        "otpfleet_approval_queue_depth",
        "otpfleet_guessing_bound",
    ] {
        assert!(!public.contains(hidden), "{hidden} is for admins: {public}");
    }
}

/// `n` ready accounts to import, each with a known password.
fn room_rows(n: usize) -> Vec<ImportRow> {
    (0..n)
        .map(|i| ImportRow {
            line: i + 1,
            input: AccountInput {
                upn: format!("room-{i}@contoso.com"),
                display_name: format!("Room {i}"),
                license: License::Pro,
                readiness: Readiness::NoActionNeeded,
                password: Some(format!("right-password-{i}")),
            },
        })
        .collect()
}

/// A batch generating an OTP for each of `ids`.
fn batch_of(ids: Vec<String>) -> BatchRequest {
    BatchRequest {
        account_ids: ids,
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    }
}

/// A core with `n` ready accounts, each with an OTP and a known password; answers the OTPs.
fn rooms_with_otps(core: &Core, n: usize, now: u64) -> Vec<String> {
    let ids = core
        .import_accounts(room_rows(n), None)
        .expect("import")
        .results
        .into_iter()
        .map(|r| r.account_id)
        .collect();
    match core
        .create_batch(batch_of(ids), now, None)
        .expect("generate")
    {
        otpfleet_server::domain::batches::BatchOutcome::Created(c) => {
            c.generated.into_iter().map(|g| g.otp).collect()
        }
        otpfleet_server::domain::batches::BatchOutcome::Review(_) => panic!("not a review"),
    }
}

fn token(core: &Core, serial: &str, now: u64) -> String {
    let verify = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: serial.into(),
        hdmi_ingest: true,
    };
    core.verify(&verify, now)
        .expect("verify")
        .verification_token
}

fn redeem(core: &Core, otp: &str, token: String, from: IpAddr, now: u64) -> Result<(), String> {
    let req = RedeemRequest {
        otp: otp.into(),
        verification_token: token,
    };
    core.redeem_from(&req, Some(from), now)
        .map(|_| ())
        .map_err(|e| e.code.as_str().to_owned())
}

/// Strangers cannot lock everyone out: the global budget spent by 10,000 wrong OTPs from 200
/// addresses leaves a new address's valid OTP redeemable, and 100 wrong OTPs naming another
/// console's serial do not block that console.
#[test]
fn guessers_do_not_lock_out_other_consoles() {
    let core = Core::with_defaults();
    let now = crate::helpers::START_MS;
    let otps = rooms_with_otps(&core, 3, now);
    let wrong = "BBBB-BBBB-BBBB-BBBB";
    let mut throttled_global = 0;
    for i in 0..10_000u32 {
        let from: IpAddr = [198, 51, 100, (i % 200) as u8].into();
        let t = token(&core, &format!("ATK{i}"), now);
        if redeem(&core, wrong, t, from, now).is_err_and(|c| c == "too_many_attempts") {
            throttled_global += 1;
        }
    }
    let failures = core.throttle_counts().failures;
    assert!(failures >= 9_000, "the guesses were counted: {failures}");
    let t = token(&core, "ROOM-A", now);
    assert_eq!(
        redeem(&core, &otps[0], t, [203, 0, 113, 7].into(), now),
        Ok(()),
        "a new address's valid OTP redeems ({throttled_global} guesses throttled)"
    );

    // 100 wrong OTPs naming the victim's serial, from the attacker's address.
    let attacker: IpAddr = [198, 51, 100, 250].into();
    let victim: IpAddr = [192, 0, 2, 10].into();
    let later = now + 120_000;
    for _ in 0..100 {
        let _ = redeem(
            &core,
            wrong,
            token(&core, "VICTIM-9", later),
            attacker,
            later,
        );
    }
    let t = token(&core, "VICTIM-9", later);
    assert_eq!(redeem(&core, &otps[1], t, victim, later), Ok(()));
}

/// Manual sign-in is throttled like redemption: 1,000 wrong passwords for one account engage
/// the back-off, and while it lasts even the right password is refused.
#[test]
fn wrong_passwords_on_manual_sign_in_engage_the_throttle() {
    let core = Core::with_defaults();
    let now = crate::helpers::START_MS;
    rooms_with_otps(&core, 1, now);
    let attempt = |password: &str, from: IpAddr| {
        let req = otpfleet_protocol::ManualSignInRequest {
            email: "room-0@contoso.com".into(),
            password: password.into(),
            verification_token: token(&core, "MANUAL-1", now),
        };
        core.manual_sign_in(&req, Some(from), now)
            .map(|_| ())
            .map_err(|e| e.code.as_str().to_owned())
    };
    let mut throttled = 0;
    for i in 0..1_000u32 {
        // The guesser rotates addresses: the account's own count catches it.
        let from: IpAddr = [198, 51, 100, (i % 250) as u8].into();
        match attempt(&format!("guess-{i}"), from).unwrap_err().as_str() {
            "too_many_attempts" => throttled += 1,
            other => assert_eq!(other, "invalid_credentials"),
        }
    }
    assert!(
        throttled >= 800,
        "the throttle engaged: {throttled} of 1,000"
    );
    assert_eq!(
        attempt("right-password-0", [203, 0, 113, 1].into()),
        Err("too_many_attempts".into()),
        "the right password waits out the back-off too"
    );
}
