//! What must happen once happens once, however many consoles race for it.

use crate::helpers::*;
use futures::future::join_all;
use http::{Method, StatusCode};

const CONSOLES: usize = 64;
const ROUNDS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_consoles_racing_for_one_otp_one_wins_every_time() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::with_capacity(CONSOLES);
    for i in 0..CONSOLES {
        tokens.push(app.verification_token(&format!("RACE-{i:03}")).await);
    }
    let ids = app.import_rooms(ROUNDS).await;
    let batch = app.generate_otps(&ids).await;
    let otps: Vec<String> = batch["generated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["otp"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(otps.len(), ROUNDS);
    for (round, otp) in otps.iter().enumerate() {
        let answers = join_all(tokens.iter().map(|vt| app.redeem(otp, vt))).await;
        let won: Vec<_> = answers
            .iter()
            .filter(|a| a.status == StatusCode::ACCEPTED)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one console redeems");
        let lost = answers
            .iter()
            .filter(|a| a.error_code() == "otp_already_used")
            .count();
        assert_eq!(
            lost,
            CONSOLES - 1,
            "round {round}: every other one is told otp_already_used"
        );
        let serial = app.account(&ids[round]).await["otp"]["request"]["device"]["serial"].clone();
        let winner = tokens
            .iter()
            .zip(&answers)
            .position(|(_, a)| a.status == StatusCode::ACCEPTED);
        assert_eq!(
            serial,
            format!("RACE-{:03}", winner.unwrap()),
            "bound to the winning console"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_are_handed_over_once_under_a_race() {
    let app = TestApp::spawn().await;
    let (_, otp) = app.one_otp().await;
    let (request_id, poll_token) = request_of(
        &app.redeem(&otp, &app.verification_token("HAND-1").await)
            .await,
    );
    app.admin(
        Method::POST,
        &format!("/v1/requests/{request_id}/approve"),
        None,
    )
    .await;
    let answers = join_all((0..CONSOLES).map(|_| app.sign_in(&request_id, &poll_token))).await;
    let handed = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    assert_eq!(handed, 1);
    let refused = answers
        .iter()
        .filter(|a| a.error_code() == "credentials_already_issued")
        .count();
    assert_eq!(refused, CONSOLES - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_decisions_decide_once() {
    let app = TestApp::spawn().await;
    let (_, otp) = app.one_otp().await;
    let (request_id, _) = request_of(
        &app.redeem(&otp, &app.verification_token("DEC-1").await)
            .await,
    );
    let approve = format!("/v1/requests/{request_id}/approve");
    let answers = join_all((0..CONSOLES).map(|_| app.admin(Method::POST, &approve, None))).await;
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.status == StatusCode::OK)
            .count(),
        1
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.status == StatusCode::CONFLICT)
            .count(),
        CONSOLES - 1
    );
}
