//! Guessing OTPs does not pay, on either store (each test runs on the embedded core and on a
//! replica on PostgreSQL, when one is reachable: `helpers::Db`): 100,000 random guesses
//! against 10,000 live OTPs find none and the throttle engages; guessers cannot lock other
//! consoles out; wrong passwords on manual sign-in engage the throttle.

use otpfleet_protocol::{
    AccountInput, BatchRequest, License, ManualSignInRequest, OTP_LEN, OtpCode, PasswordMode,
    Readiness, RedeemRequest, VerifyRequest,
};
use otpfleet_server::domain::accounts::ImportRow;
use otpfleet_server::domain::batches::BatchOutcome;
use otpfleet_server::domain::throttle::ThrottleCounts;
use otpfleet_server::pg::{PgCore, PgStore};
use otpfleet_server::{ApiError, Catalogue, Core, ServerConfig, handle};
use rand::{Rng, SeedableRng};
use std::net::IpAddr;

const LIVE: usize = 10_000;
const GUESSES: u64 = 100_000;

/// What the guessing tests need of a store.
trait Guessed {
    /// `n` ready accounts with an OTP each (and a known password); answers the OTPs.
    async fn rooms(&self, n: usize, now: u64) -> Vec<String>;
    fn token(&self, serial: &str, now: u64) -> String;
    async fn redeem(
        &self,
        otp: &str,
        token: String,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError>;
    async fn manual(
        &self,
        req: &ManualSignInRequest,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError>;
    fn counts(&self) -> ThrottleCounts;
    async fn live_otps(&self, now: u64) -> u64;
}

fn device(serial: &str) -> VerifyRequest {
    VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: serial.into(),
        hdmi_ingest: true,
    }
}

fn redeem_request(otp: &str, token: String) -> RedeemRequest {
    RedeemRequest {
        otp: otp.into(),
        verification_token: token,
    }
}

fn otps_of(outcome: BatchOutcome) -> Vec<String> {
    match outcome {
        BatchOutcome::Created(c) => c.generated.into_iter().map(|g| g.otp).collect(),
        BatchOutcome::Review(_) => panic!("not a review"),
    }
}

impl Guessed for Core {
    async fn rooms(&self, n: usize, now: u64) -> Vec<String> {
        let imported = self.import_accounts(room_rows(n), None).expect("import");
        let ids = imported.results.into_iter().map(|r| r.account_id).collect();
        otps_of(
            self.create_batch(batch_of(ids), now, None)
                .expect("generate"),
        )
    }
    fn token(&self, serial: &str, now: u64) -> String {
        self.verify(&device(serial), now)
            .expect("verify")
            .verification_token
    }
    async fn redeem(
        &self,
        otp: &str,
        token: String,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError> {
        self.redeem_from(&redeem_request(otp, token), Some(from), now)
            .map(|_| ())
    }
    async fn manual(
        &self,
        req: &ManualSignInRequest,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError> {
        self.manual_sign_in(req, Some(from), now).map(|_| ())
    }
    fn counts(&self) -> ThrottleCounts {
        self.throttle_counts()
    }
    async fn live_otps(&self, now: u64) -> u64 {
        self.preferences_view(now).guessing_bound.live_otps
    }
}

impl Guessed for PgCore {
    async fn rooms(&self, n: usize, now: u64) -> Vec<String> {
        let imported = self
            .import_accounts(room_rows(n), None, now)
            .await
            .expect("import");
        let ids = imported.results.into_iter().map(|r| r.account_id).collect();
        otps_of(
            self.create_batch(batch_of(ids), now, None)
                .await
                .expect("generate"),
        )
    }
    fn token(&self, serial: &str, now: u64) -> String {
        self.verify(&device(serial), now)
            .expect("verify")
            .verification_token
    }
    async fn redeem(
        &self,
        otp: &str,
        token: String,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError> {
        self.redeem_from(&redeem_request(otp, token), Some(from), now)
            .await
            .map(|_| ())
    }
    async fn manual(
        &self,
        req: &ManualSignInRequest,
        from: IpAddr,
        now: u64,
    ) -> Result<(), ApiError> {
        self.manual_sign_in(req, Some(from), now).await.map(|_| ())
    }
    fn counts(&self) -> ThrottleCounts {
        self.throttle_counts()
    }
    async fn live_otps(&self, now: u64) -> u64 {
        let view = self.preferences_view(now).await.expect("preferences");
        view.guessing_bound.live_otps
    }
}

/// A replica on a migrated schema of its own, or `None` without a PostgreSQL.
async fn replica(test: &str) -> Option<(PgCore, crate::helpers::Db)> {
    let db = crate::helpers::Db::new(test).await?;
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let pg = PgCore::open(store, ServerConfig::default(), Catalogue::builtin());
    Some((pg.await.unwrap(), db))
}

/// Runs `check` on the embedded core and on a replica on PostgreSQL (when one is reachable).
macro_rules! on_both_stores {
    ($core_test:ident, $pg_test:ident, $check:ident) => {
        #[tokio::test]
        async fn $core_test() {
            $check(&Core::with_defaults()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $pg_test() {
            let Some((pg, db)) = replica(stringify!($pg_test)).await else {
                return;
            };
            $check(&pg).await;
            db.drop_schema().await;
        }
    };
}

on_both_stores!(
    a_hundred_thousand_guesses_against_ten_thousand_live_otps_find_none_and_get_throttled,
    the_same_guesses_on_postgres,
    hundred_thousand_guesses
);
on_both_stores!(
    guessers_do_not_lock_out_other_consoles,
    guessers_do_not_lock_out_other_consoles_on_postgres,
    no_lock_out
);
on_both_stores!(
    wrong_passwords_on_manual_sign_in_engage_the_throttle,
    wrong_passwords_engage_the_throttle_on_postgres,
    manual_throttle
);

/// 100,000 random guesses from one address, the console serial rotated and the clock running
/// 10 ms per guess, against 10,000 live OTPs: none found, the per-address back-off engaged, and
/// the throttle counted what it saw.
async fn hundred_thousand_guesses(store: &impl Guessed) {
    let now = crate::helpers::START_MS;
    store.rooms(LIVE, now).await;
    assert_eq!(store.live_otps(now).await, LIVE as u64);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let attacker: IpAddr = [203, 0, 113, 9].into();
    let (mut successes, mut throttled, mut refused) = (0u64, 0u64, 0u64);
    for i in 0..GUESSES {
        let at = now + i * 10;
        let token = store.token(&format!("ATK{}", i % 5_000), at);
        let guess = OtpCode::from_indices(std::array::from_fn::<u8, OTP_LEN, _>(|_| {
            rng.random_range(0..20)
        }));
        match store.redeem(&guess.to_string(), token, attacker, at).await {
            Ok(()) => successes += 1,
            Err(e) if e.code.as_str() == "too_many_attempts" => {
                assert!(e.retry_after_s.is_some_and(|s| s > 0));
                throttled += 1;
            }
            Err(e) => {
                assert_eq!(e.code.as_str(), "invalid_otp");
                refused += 1;
            }
        }
    }
    assert_eq!(successes, 0);
    assert!(
        throttled > GUESSES / 2,
        "the per-address back-off engaged: {throttled} throttled, {refused} refused"
    );
    let counts = store.counts();
    assert_eq!(counts.failures, refused);
    assert_eq!(counts.throttled_source, throttled);
}

/// Strangers cannot lock everyone out: the global budget spent by 10,000 wrong OTPs from 200
/// addresses leaves a new address's valid OTP redeemable, and 100 wrong OTPs naming another
/// console's serial do not block that console.
async fn no_lock_out(core: &impl Guessed) {
    let now = crate::helpers::START_MS;
    let otps = core.rooms(3, now).await;
    let wrong = "BBBB-BBBB-BBBB-BBBB";
    let mut throttled_global = 0;
    for i in 0..10_000u32 {
        let from: IpAddr = [198, 51, 100, (i % 200) as u8].into();
        let t = core.token(&format!("ATK{i}"), now);
        let answer = core.redeem(wrong, t, from, now).await;
        if answer.is_err_and(|e| e.code.as_str() == "too_many_attempts") {
            throttled_global += 1;
        }
    }
    let failures = core.counts().failures;
    assert!(failures >= 9_000, "the guesses were counted: {failures}");
    let t = core.token("ROOM-A", now);
    assert_eq!(
        core.redeem(&otps[0], t, [203, 0, 113, 7].into(), now).await,
        Ok(()),
        "a new address's valid OTP redeems ({throttled_global} guesses throttled)"
    );

    // 100 wrong OTPs naming the victim's serial, from the attacker's address.
    let attacker: IpAddr = [198, 51, 100, 250].into();
    let victim: IpAddr = [192, 0, 2, 10].into();
    let later = now + 120_000;
    for _ in 0..100 {
        let t = core.token("VICTIM-9", later);
        let _ = core.redeem(wrong, t, attacker, later).await;
    }
    let t = core.token("VICTIM-9", later);
    assert_eq!(core.redeem(&otps[1], t, victim, later).await, Ok(()));
}

/// Manual sign-in is throttled like redemption: 1,000 wrong passwords for one account engage
/// the back-off, and while it lasts even the right password is refused.
async fn manual_throttle(core: &impl Guessed) {
    let now = crate::helpers::START_MS;
    core.rooms(1, now).await;
    let attempt = async |password: &str, from: IpAddr| {
        let req = ManualSignInRequest {
            email: "room-0@contoso.com".into(),
            password: password.into(),
            verification_token: core.token("MANUAL-1", now),
        };
        let answer = core.manual(&req, from, now).await;
        answer.map_err(|e| e.code.as_str().to_owned())
    };
    let mut throttled = 0;
    for i in 0..1_000u32 {
        // The guesser rotates addresses: the account's own count catches it.
        let from: IpAddr = [198, 51, 100, (i % 250) as u8].into();
        match attempt(&format!("guess-{i}"), from)
            .await
            .unwrap_err()
            .as_str()
        {
            "too_many_attempts" => throttled += 1,
            other => assert_eq!(other, "invalid_credentials"),
        }
    }
    assert!(
        throttled >= 800,
        "the throttle engaged: {throttled} of 1,000"
    );
    assert_eq!(
        attempt("right-password-0", [203, 0, 113, 1].into()).await,
        Err("too_many_attempts".into()),
        "the right password waits out the back-off too"
    );
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
