//! Nothing is shown before it is kept (issue 28): on a durable server no answer shows a change
//! the journal does not hold yet, so nothing an answer said can be undone by a crash. Each test
//! holds the journal still (a change numbered and not sent: the writer commits in order and
//! waits for it), makes a change that then waits, reads what a console or an admin would, and
//! takes a copy of the data directory at that moment, which is what a crash would leave.

use crate::helpers::{Answer, TestApp, request_of};
use http::{Method, StatusCode};
use otpfleet_server::domain::{Event, EventSink as _, Reserved};
use otpfleet_server::journal::Journal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a read gets to answer while the journal is held: an answer in this time would
/// show what is not kept.
const HELD: Duration = Duration::from_millis(500);

/// Holds the journal of `app` still until the answer is sent.
fn hold(app: &TestApp) -> (Arc<Journal>, Reserved) {
    let journal = app.app.served().journal.clone().expect("a durable server");
    let preferences = app.app.served().core.preferences();
    let held = journal.reserve(&Event::PreferencesSet {
        preferences,
        by: None,
    });
    (journal, held)
}

/// A copy of the data directory: what a crash at this moment would leave (the writer is held,
/// so no commit is under way).
fn crash_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `read`, if it answers while the journal is held.
async fn answered_while_held(read: impl Future<Output = Answer>) -> Option<Answer> {
    tokio::time::timeout(HELD, read).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_never_shows_an_approval_a_crash_could_undo() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let app = Arc::new(TestApp::spawn_durable(&live).await);
    let (_, otp) = app.one_otp().await;
    let token = app.verification_token("CONSOLEA1").await;
    let (request_id, poll_token) = request_of(&app.redeem(&otp, &token).await);

    let (journal, held) = hold(&app);
    let approving = tokio::spawn({
        let (app, id) = (Arc::clone(&app), request_id.clone());
        async move {
            let path = format!("/v1/requests/{id}/approve");
            app.admin(Method::POST, &path, None).await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.clock.advance_ms(5_000); // the polling interval
    let polled = answered_while_held(app.poll(&request_id, &poll_token)).await;
    if let Some(polled) = &polled {
        assert_ne!(
            polled.body["status"], "approved",
            "a poll said approved before the approval was kept"
        );
    }
    let crashed = dir.path().join("crashed");
    crash_copy(&live, &crashed);

    journal.send_unit(vec![held]);
    let approved = approving.await.unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    app.clock.advance_ms(60_000); // past the polling interval (the held poll counted)
    let polled = app.poll(&request_id, &poll_token).await;
    assert_eq!(polled.body["status"], "approved", "{}", polled.text);
    drop(journal);
    Arc::into_inner(app).expect("one owner").stop().await;

    // The crash would have lost the approval: the poll that was held had nothing to take back.
    let after = TestApp::spawn_durable(&crashed).await;
    after.clock.advance_ms(10_000);
    let polled = after.poll(&request_id, &poll_token).await;
    assert_eq!(
        polled.body["status"], "awaiting_approval",
        "{}",
        polled.text
    );
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_never_vets_a_request_id_a_crash_could_give_to_another_console() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let app = Arc::new(TestApp::spawn_durable(&live).await);
    let ids = app.import_rooms(2).await;
    let batch = app.generate_otps(&ids).await;
    let otp = |i: usize| batch["generated"][i]["otp"].as_str().unwrap().to_owned();
    let token_a = app.verification_token("CONSOLEA1").await;
    let token_b = app.verification_token("CONSOLEB2").await;

    let (journal, held) = hold(&app);
    let redeeming = tokio::spawn({
        let (app, otp, token) = (Arc::clone(&app), otp(0), token_a.clone());
        async move { app.redeem(&otp, &token).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listing = app.admin(Method::GET, "/v1/requests?status=awaiting_approval", None);
    if let Some(listed) = answered_while_held(listing).await {
        assert_eq!(
            listed.body["requests"].as_array().map(Vec::len),
            Some(0),
            "the admin was shown a request the journal does not hold: {}",
            listed.text
        );
    }
    let crashed = dir.path().join("crashed");
    crash_copy(&live, &crashed);

    journal.send_unit(vec![held]);
    let (id_a, _) = request_of(&redeeming.await.unwrap());
    drop(journal);
    Arc::into_inner(app).expect("one owner").stop().await;

    // After the crash the first request was never made: console B's takes its id, and what the
    // admin now sees under that id is console B, the one they approve.
    let after = TestApp::spawn_durable(&crashed).await;
    let (id_b, _) = request_of(&after.redeem(&otp(1), &token_b).await);
    assert_eq!(
        id_a, id_b,
        "the id is handed out again (no one was shown it)"
    );
    let listed = after
        .admin(Method::GET, "/v1/requests?status=awaiting_approval", None)
        .await;
    assert_eq!(
        listed.body["requests"][0]["device"]["serial"], "CONSOLEB2",
        "{}",
        listed.text
    );
    after.stop().await;
}
