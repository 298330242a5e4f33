//! Preferences: validity 1 to 336 hours (default 8), auto approval (default off).

use crate::helpers::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn defaults_are_8_hours_and_no_auto_approval() {
    let app = TestApp::spawn().await;
    let a = app.admin(Method::GET, "/v1/preferences", None).await;
    assert_eq!(a.body["otp_validity_hours"], 8);
    assert_eq!(a.body["auto_approve"], false);
    assert_eq!(a.body["guessing_bound"]["live_otps"], 0);
    assert_eq!(a.body["guessing_bound"]["success_probability"], 0.0);
}

#[tokio::test]
async fn validity_outside_1_to_336_hours_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    for bad in [0, 337, 100_000] {
        let a = app.set_preferences(bad, true).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(a.error_code(), "validity_out_of_range");
        assert!(
            a.body["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 336")
        );
    }
    for bad in [json!(-1), json!("8"), json!(8.5), json!(null)] {
        let a = app
            .admin(
                Method::PUT,
                "/v1/preferences",
                Some(json!({"otp_validity_hours": bad, "auto_approve": true})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let a = app.admin(Method::GET, "/v1/preferences", None).await;
    assert_eq!(
        (&a.body["otp_validity_hours"], &a.body["auto_approve"]),
        (&json!(8), &json!(false)),
        "nothing changed"
    );
    for good in [1, 336] {
        let a = app.set_preferences(good, false).await;
        assert_eq!(a.status, StatusCode::OK, "{good}");
        assert_eq!(a.body["otp_validity_hours"], good);
    }
}

#[tokio::test]
async fn validity_counts_from_generation() {
    let app = TestApp::spawn().await;
    app.set_preferences(336, false).await;
    let (_, otp) = app.one_otp().await;
    app.set_preferences(1, false).await;
    app.advance_hours(335);
    let a = app.redeem(&otp, &app.verification_token("S2").await).await;
    assert_eq!(
        a.status,
        StatusCode::ACCEPTED,
        "the validity at generation applies: {}",
        a.text
    );
}
