//! Ineligible accounts are refused one by one with their reason; the rest are generated.

use crate::helpers::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn ineligible_accounts_are_refused_with_their_reason_and_the_rest_generated() {
    let app = TestApp::spawn().await;
    let row = |name: &str, license: &str, readiness: &str| {
        json!({"upn": format!("{name}@contoso.com"), "display_name": name,
               "license": license, "readiness": readiness})
    };
    let ids = app
        .import(json!([
            row("ok-1", "pro", "no_action_needed"),
            row("needs-license", "pro", "needs_license"),
            row("pw-expired", "pro", "password_expired"),
            row("blocked", "pro", "sign_in_blocked"),
            row("basic", "basic", "no_action_needed"),
            row("ok-2", "pro", "no_action_needed"),
        ]))
        .await;
    for review_only in [true, false] {
        let a = app
            .admin(
                Method::POST,
                "/v1/otp-batches",
                Some(json!({"account_ids": ids, "password_mode": "auto_generate", "review_only": review_only})),
            )
            .await;
        let refused: Vec<(String, String)> = a.body["refused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["account_id"].as_str().unwrap().into(),
                    r["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            (1, "needs_license"),
            (2, "password_expired"),
            (3, "sign_in_blocked"),
            (4, "basic_license"),
        ]
        .iter()
        .map(|(i, r)| (ids[*i].clone(), (*r).to_owned()))
        .collect();
        assert_eq!(refused, expected);
        let key = if review_only {
            "would_generate"
        } else {
            "generated"
        };
        let ok: Vec<&str> = a.body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["account_id"].as_str().unwrap())
            .collect();
        assert_eq!(ok, vec![ids[0].as_str(), ids[5].as_str()]);
    }
    assert_eq!(app.account(&ids[0]).await["provisioning"], "otp_generated");
    assert_eq!(
        app.account(&ids[4]).await["provisioning"],
        "not_provisioned"
    );
}

#[tokio::test]
async fn from_csv_keeps_the_given_passwords_and_refuses_accounts_without_one() {
    let app = TestApp::spawn().await;
    let ids = app.import_rooms(2).await;
    let a = app
        .admin(
            Method::POST,
            "/v1/otp-batches",
            Some(json!({"account_ids": ids, "password_mode": "from_csv",
                        "sign_in_csv": "upn,password\nroom-0@contoso.com,Kept Pa55word\n"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.body["refused"][0]["reason"], "missing_password");
    let otp = a.body["generated"][0]["otp"].as_str().unwrap();
    let (request_id, poll_token) =
        request_of(&app.redeem(otp, &app.verification_token("S1").await).await);
    app.admin(
        Method::POST,
        &format!("/v1/requests/{request_id}/approve"),
        None,
    )
    .await;
    let creds = app.sign_in(&request_id, &poll_token).await;
    assert_eq!(creds.body["password"], "Kept Pa55word");
}
