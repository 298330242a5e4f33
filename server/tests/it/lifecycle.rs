//! One OTP's whole life over real HTTP: generation to sign-in, with approval, auto approval,
//! rejection and expiry (driven by the injected clock, not by sleeping).

use crate::helpers::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn one_otp_from_import_to_a_single_sign_in() {
    let app = TestApp::spawn().await;
    // Import (CSV, with a header line) and review.
    let csv =
        "upn,display_name,license,readiness\nroom-a@contoso.com,Room A,pro,no_action_needed\n";
    let imported = app
        .send(
            Method::POST,
            "/v1/accounts",
            Some(TOKEN),
            Some("text/csv"),
            csv,
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.text);
    assert_eq!(imported.body["created"], 1);
    let id = imported.body["results"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.account(&id).await["provisioning"], "not_provisioned");

    let review = app
        .admin(
            Method::POST,
            "/v1/otp-batches",
            Some(
                json!({"account_ids": [id], "password_mode": "auto_generate", "review_only": true}),
            ),
        )
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.text);
    assert_eq!(review.body["would_generate"][0]["account_id"], id.as_str());
    assert_eq!(
        app.account(&id).await["provisioning"],
        "not_provisioned",
        "a review changes nothing"
    );

    // Generate, then export with and without passwords.
    let batch = app.generate_otps(std::slice::from_ref(&id)).await;
    let otp = batch["generated"][0]["otp"].as_str().unwrap().to_owned();
    assert_eq!(otp.len(), 19, "XXXX-XXXX-XXXX-XXXX");
    assert_eq!(app.account(&id).await["provisioning"], "otp_generated");
    let batch_id = batch["batch_id"].as_str().unwrap();
    let with = app
        .admin(
            Method::GET,
            &format!("/v1/otp-batches/{batch_id}/export?include_passwords=true"),
            None,
        )
        .await;
    assert_eq!(with.status, StatusCode::OK);
    let mut lines = with.text.lines();
    assert_eq!(
        lines.next(),
        Some("upn,display_name,otp,expires_at,password")
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row[0], "room-a@contoso.com");
    assert_eq!(row[2], otp);
    let password = row[4].to_owned();
    let without = app
        .admin(
            Method::GET,
            &format!("/v1/otp-batches/{batch_id}/export?include_passwords=false"),
            None,
        )
        .await;
    assert_eq!(
        without.text.lines().next(),
        Some("upn,display_name,otp,expires_at")
    );
    assert!(!without.text.contains(&password));

    // Verification fails without the HDMI ingest module, passes with it.
    let failed = app.verify("2231LZ0A1B2C", false).await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(failed.error_code(), "verification_info_not_found");
    assert!(
        failed.body["message"]
            .as_str()
            .unwrap()
            .contains("HDMI ingest")
    );
    let vt = app.verification_token("2231LZ0A1B2C").await;

    // Redeem (typed in lower case without dashes) and wait for approval.
    let typed = otp.replace('-', "").to_lowercase();
    let (request_id, poll_token) = request_of(&app.redeem(&typed, &vt).await);
    let detail = app.account(&id).await;
    assert_eq!(detail["provisioning"], "awaiting_otp_approval");
    assert_eq!(detail["otp"]["request"]["device"]["serial"], "2231LZ0A1B2C");
    assert_eq!(detail["otp"]["request"]["device"]["make"], "Logitech");
    app.clock.advance_ms(5_000);
    let polled = app.poll(&request_id, &poll_token).await;
    assert_eq!(
        polled.body["status"], "awaiting_approval",
        "{}",
        polled.text
    );
    assert_eq!(polled.body["interval_s"], 5);
    let early = app.sign_in(&request_id, &poll_token).await;
    assert_eq!(early.error_code(), "request_not_approved");

    // The approval queue shows it; approve.
    let queue = app
        .admin(Method::GET, "/v1/requests?status=awaiting_approval", None)
        .await;
    assert_eq!(queue.body["requests"][0]["id"], request_id.as_str());
    let approved = app
        .admin(
            Method::POST,
            &format!("/v1/requests/{request_id}/approve"),
            None,
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.body["status"], "approved");
    let again = app
        .admin(
            Method::POST,
            &format!("/v1/requests/{request_id}/approve"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "request_not_pending");
    app.clock.advance_ms(5_000);
    assert_eq!(
        app.poll(&request_id, &poll_token).await.body["status"],
        "approved"
    );

    // Sign in once; the second is refused; the OTP cannot be used again.
    let creds = app.sign_in(&request_id, &poll_token).await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.text);
    assert_eq!(creds.body["upn"], "room-a@contoso.com");
    assert_eq!(creds.body["password"], password.as_str());
    let second = app.sign_in(&request_id, &poll_token).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.error_code(), "credentials_already_issued");
    assert_eq!(app.account(&id).await["provisioning"], "signed_in");
    let reuse = app
        .redeem(&otp, &app.verification_token("OTHERSERIAL1").await)
        .await;
    assert_eq!(reuse.error_code(), "otp_already_used");
}

#[tokio::test]
async fn auto_approval_approves_at_redemption() {
    let app = TestApp::spawn().await;
    assert_eq!(app.set_preferences(8, true).await.status, StatusCode::OK);
    let (id, otp) = app.one_otp().await;
    let redeemed = app
        .redeem(&otp, &app.verification_token("SER-1").await)
        .await;
    assert_eq!(redeemed.body["status"], "approved");
    let (request_id, poll_token) = request_of(&redeemed);
    assert_eq!(app.account(&id).await["provisioning"], "otp_approved");
    let queue = app.admin(Method::GET, "/v1/requests", None).await;
    assert_eq!(
        queue.body["requests"],
        json!([]),
        "nothing waits for an admin"
    );
    let creds = app.sign_in(&request_id, &poll_token).await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.text);
    assert_eq!(app.account(&id).await["provisioning"], "signed_in");
}

#[tokio::test]
async fn rejection_with_each_reason_reaches_the_console() {
    let app = TestApp::spawn().await;
    for reason in [
        "unrecognized_device",
        "wrong_room",
        "duplicate_request",
        "security_concern",
        "other",
    ] {
        let (id, otp) = app.one_otp().await;
        let (request_id, poll_token) = request_of(
            &app.redeem(&otp, &app.verification_token("SER-2").await)
                .await,
        );
        let rejected = app
            .admin(
                Method::POST,
                &format!("/v1/requests/{request_id}/reject"),
                Some(json!({"reason": reason})),
            )
            .await;
        assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.text);
        assert_eq!(rejected.body["reason"], reason);
        assert_eq!(app.account(&id).await["provisioning"], "otp_rejected");
        app.clock.advance_ms(5_000);
        let polled = app.poll(&request_id, &poll_token).await;
        assert_eq!(polled.body["status"], "rejected");
        assert_eq!(polled.body["reason"], reason);
        assert_eq!(
            app.sign_in(&request_id, &poll_token).await.error_code(),
            "request_not_approved"
        );
        let late = app
            .admin(
                Method::POST,
                &format!("/v1/requests/{request_id}/approve"),
                None,
            )
            .await;
        assert_eq!(
            late.status,
            StatusCode::CONFLICT,
            "a rejected request stays rejected"
        );
    }
    let unknown = app
        .admin(
            Method::POST,
            "/v1/requests/req_1/reject",
            Some(json!({"reason": "bored"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .contains("unrecognized_device")
    );
}

#[tokio::test]
async fn an_unredeemed_otp_expires_with_its_validity() {
    let app = TestApp::spawn().await;
    let (id, otp) = app.one_otp().await;
    app.advance_hours(8);
    let vt = app.verification_token("SER-3").await;
    let late = app.redeem(&otp, &vt).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(late.error_code(), "otp_expired");
    assert_eq!(app.account(&id).await["provisioning"], "otp_expired");
}

#[tokio::test]
async fn a_pending_request_expires_with_its_otp() {
    let app = TestApp::spawn().await;
    let (id, otp) = app.one_otp().await;
    app.advance_hours(7);
    let (request_id, poll_token) = request_of(
        &app.redeem(&otp, &app.verification_token("SER-4").await)
            .await,
    );
    app.advance_hours(1);
    assert_eq!(
        app.poll(&request_id, &poll_token).await.body["status"],
        "expired"
    );
    assert_eq!(app.account(&id).await["provisioning"], "otp_expired");
    let queue = app.admin(Method::GET, "/v1/requests", None).await;
    assert_eq!(queue.body["requests"], json!([]));
    let approve = app
        .admin(
            Method::POST,
            &format!("/v1/requests/{request_id}/approve"),
            None,
        )
        .await;
    assert_eq!(approve.status, StatusCode::CONFLICT);
    assert!(
        approve.body["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn regenerating_replaces_the_old_otp() {
    let app = TestApp::spawn().await;
    let (id, old) = app.one_otp().await;
    let batch = app.generate_otps(std::slice::from_ref(&id)).await;
    let new = batch["generated"][0]["otp"].as_str().unwrap();
    assert_ne!(old, new);
    let vt = app.verification_token("SER-5").await;
    assert_eq!(app.redeem(&old, &vt).await.error_code(), "invalid_otp");
    assert_eq!(app.redeem(new, &vt).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn polling_too_fast_gets_slow_down_and_a_longer_interval() {
    let app = TestApp::spawn().await;
    let (_, otp) = app.one_otp().await;
    let (request_id, poll_token) = request_of(
        &app.redeem(&otp, &app.verification_token("SER-6").await)
            .await,
    );
    let fast = app.poll(&request_id, &poll_token).await;
    assert_eq!(fast.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fast.error_code(), "slow_down");
    assert_eq!(fast.body["interval_s"], 10);
    assert_eq!(fast.headers["retry-after"], "10");
    app.clock.advance_ms(10_000);
    let ok = app.poll(&request_id, &poll_token).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["interval_s"], 10);
    let wrong = app.poll(&request_id, "not-the-token").await;
    assert_eq!(
        wrong.status,
        StatusCode::NOT_FOUND,
        "a wrong token reveals nothing"
    );
}

#[tokio::test]
async fn manual_sign_in_with_the_account_password() {
    let app = TestApp::spawn().await;
    app.import(json!([
        {"upn": "room-m@contoso.com", "display_name": "Room M", "license": "pro",
         "readiness": "no_action_needed", "password": "Correct horse 1"},
        {"upn": "room-x@contoso.com", "display_name": "Room X", "license": "pro",
         "readiness": "password_expired", "password": "Correct horse 2"}
    ]))
    .await;
    let vt = app.verification_token("SER-7").await;
    let manual = |email: &str, password: &str| json!({"email": email, "password": password, "verification_token": vt});
    let wrong = app
        .console(
            "/v1/console/manual-sign-in",
            manual("room-m@contoso.com", "nope"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error_code(), "invalid_credentials");
    let expired = app
        .console(
            "/v1/console/manual-sign-in",
            manual("room-x@contoso.com", "Correct horse 2"),
        )
        .await;
    assert_eq!(expired.error_code(), "password_expired");
    let ok = app
        .console(
            "/v1/console/manual-sign-in",
            manual("ROOM-M@contoso.com", "Correct horse 1"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let id = ok.body["account_id"].as_str().unwrap();
    assert_eq!(app.account(id).await["provisioning"], "signed_in");
}

#[tokio::test]
async fn the_export_is_purged_after_its_window() {
    let app = TestApp::spawn().await;
    let ids = app.import_rooms(2).await;
    let batch = app.generate_otps(&ids).await;
    let path = format!(
        "/v1/otp-batches/{}/export",
        batch["batch_id"].as_str().unwrap()
    );
    assert_eq!(
        app.admin(Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    app.advance_hours(1);
    let gone = app.admin(Method::GET, &path, None).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert_eq!(gone.error_code(), "export_expired");
}

#[tokio::test]
async fn uncertified_consoles_fail_verification_for_good() {
    let app = TestApp::spawn().await;
    for hdmi in [false, true] {
        let a = app
            .console(
                "/v1/console/verify",
                json!({"make": "Generic", "model": "NUC", "serial": "N1", "hdmi_ingest": hdmi}),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(a.error_code(), "uncertified_device");
    }
}

#[tokio::test]
async fn accounts_page_by_cursor_and_filter() {
    let app = TestApp::spawn().await;
    let ids = app.import_rooms(5).await;
    app.generate_otps(&ids[..2]).await;
    let first = app.admin(Method::GET, "/v1/accounts?limit=3", None).await;
    assert_eq!(first.body["accounts"].as_array().unwrap().len(), 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .admin(
            Method::GET,
            &format!("/v1/accounts?limit=3&cursor={cursor}"),
            None,
        )
        .await;
    let rest_ids: Vec<&Value> = rest.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(rest_ids, vec![&json!(ids[3]), &json!(ids[4])]);
    assert!(rest.body.get("next_cursor").is_none());
    let generated = app
        .admin(Method::GET, "/v1/accounts?provisioning=otp_generated", None)
        .await;
    assert_eq!(generated.body["accounts"].as_array().unwrap().len(), 2);
    let search = app
        .admin(Method::GET, "/v1/accounts?search=ROOM%204", None)
        .await;
    assert_eq!(search.body["accounts"][0]["id"], ids[4].as_str());
}

/// Installers open the export in a spreadsheet: a display name or upn that starts a formula
/// (`=HYPERLINK(...)`, `@SUM(...)`, `+`, `-`) is written as text, its bytes checked (OWASP,
/// CSV injection); generated passwords never start one.
#[tokio::test]
async fn an_export_cannot_carry_a_formula_into_a_spreadsheet() {
    let app = TestApp::spawn().await;
    let rows = json!([
        {"upn": "=cmd@contoso.com", "display_name": "=HYPERLINK(\"http://evil.example\",\"Room\")",
         "license": "pro", "readiness": "no_action_needed"},
        {"upn": "room-b@contoso.com", "display_name": "@SUM(A1:A9)",
         "license": "pro", "readiness": "no_action_needed"},
        {"upn": "room-c@contoso.com", "display_name": "-2+3",
         "license": "pro", "readiness": "no_action_needed"},
    ]);
    let ids = app.import(rows).await;
    let batch = app.generate_otps(&ids).await;
    let batch_id = batch["batch_id"].as_str().unwrap();
    let export = app
        .admin(
            Method::GET,
            &format!("/v1/otp-batches/{batch_id}/export?include_passwords=true"),
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let text = &export.text;
    assert!(
        text.contains(
            "'=cmd@contoso.com,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"Room\"\")\""
        ),
        "{text}"
    );
    assert!(text.contains("room-b@contoso.com,'@SUM(A1:A9),"), "{text}");
    assert!(text.contains("room-c@contoso.com,'-2+3,"), "{text}");
    // No cell of any line starts a formula.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} starts a formula"
            );
        }
    }
}

/// A console whose redemption's answer was lost (a dropped connection, a replica that died)
/// sends it again with the same verification token: it is answered with the request it made,
/// not refused as `otp_already_used` (a false "already used"); another console, with a token
/// of its own, is refused. On either store (`OTPFLEET_TEST_STORE`).
#[tokio::test]
async fn a_redemption_sent_again_is_answered_with_its_own_request() {
    let app = TestApp::spawn().await;
    let (_, otp) = app.one_otp().await;
    let token = app.verification_token("AGAIN1").await;
    let first = app.redeem(&otp, &token).await;
    let (request, poll_token) = request_of(&first);
    app.clock.advance_ms(2_000);
    let again = app.redeem(&otp, &token).await;
    assert_eq!(
        request_of(&again),
        (request.clone(), poll_token),
        "{}",
        again.text
    );
    assert_eq!(again.body["status"], "awaiting_approval");
    let other = app.verification_token("AGAIN2").await;
    let refused = app.redeem(&otp, &other).await;
    assert_eq!(refused.error_code(), "otp_already_used", "{}", refused.text);
    // The same device verified again is another token: refused too.
    app.clock.advance_ms(1);
    let reverified = app.verification_token("AGAIN1").await;
    assert_ne!(reverified, token);
    let refused = app.redeem(&otp, &reverified).await;
    assert_eq!(refused.error_code(), "otp_already_used", "{}", refused.text);
    // Once decided, sending it again shows the decision.
    let approve = format!("/v1/requests/{request}/approve");
    assert_eq!(
        app.admin(Method::POST, &approve, None).await.status,
        StatusCode::OK
    );
    let again = app.redeem(&otp, &token).await;
    assert_eq!(again.body["status"], "approved", "{}", again.text);
}
