//! Guessing OTPs does not pay: 100,000 random guesses against 10,000 live OTPs find none, and
//! the throttle engages.

use otpfleet_protocol::{
    AccountInput, BatchRequest, License, OTP_LEN, OtpCode, PasswordMode, Readiness, RedeemRequest,
    VerifyRequest,
};
use otpfleet_server::domain::accounts::ImportRow;
use otpfleet_server::{Core, handle};
use rand::{Rng, SeedableRng};
use std::net::IpAddr;

const LIVE: usize = 10_000;
const GUESSES: u64 = 100_000;

#[test]
fn a_hundred_thousand_guesses_against_ten_thousand_live_otps_find_none_and_get_throttled() {
    let core = Core::with_defaults();
    let now = crate::helpers::START_MS;
    let rows = (0..LIVE)
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
    let ids: Vec<String> = core
        .import_accounts(rows, None)
        .expect("import")
        .results
        .into_iter()
        .map(|r| r.account_id)
        .collect();
    let batch = BatchRequest {
        account_ids: ids,
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    core.create_batch(batch, now, None).expect("generate");
    assert_eq!(
        core.preferences_view(now).guessing_bound.live_otps,
        LIVE as u64
    );

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let attacker: IpAddr = [203, 0, 113, 9].into();
    let (mut successes, mut throttled, mut refused) = (0, 0, 0);
    for i in 0..GUESSES {
        // The attacker rotates console serials; the clock runs 10 ms per guess.
        let at = now + i * 10;
        let verify = VerifyRequest {
            make: "Logitech".into(),
            model: "Tap".into(),
            serial: format!("ATK{}", i % 5_000),
            hdmi_ingest: true,
        };
        let token = core.verify(&verify, at).expect("verify").verification_token;
        let guess = OtpCode::from_indices(std::array::from_fn::<u8, OTP_LEN, _>(|_| {
            rng.random_range(0..20)
        }));
        match core.redeem_from(
            &RedeemRequest {
                otp: guess.to_string(),
                verification_token: token,
            },
            Some(attacker),
            at,
        ) {
            Ok(_) => successes += 1,
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
    let (failures, by_source, _global) = core.throttle_counts();
    assert_eq!(failures, refused);
    assert_eq!(by_source, throttled);
    let bound = core.preferences_view(now).guessing_bound;
    assert!(bound.success_probability < 1e-9, "{bound:?}");
}

#[tokio::test]
async fn the_metrics_show_the_throttle_and_the_bound() {
    let app = otpfleet_server::App::new(
        Core::with_defaults(),
        std::sync::Arc::new(otpfleet_server::ManualClock::new(crate::helpers::START_MS)),
        otpfleet_server::http::AdminTokens::new(["t"]),
    );
    let req = http::Request::get("/metrics")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let reply = handle(&app, req).await;
    let body = http_body_util::BodyExt::collect(reply.into_body())
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    for metric in [
        "otpfleet_redeem_failures_total 0",
        "otpfleet_redeem_throttled_total{scope=\"source\"} 0",
        "otpfleet_guessing_bound 0e0",
    ] {
        assert!(text.contains(metric), "{metric} in {text}");
    }
}
