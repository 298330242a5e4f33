//! Nothing is shown before it is kept (issue 28): on a durable server no answer shows a change
//! the journal does not hold yet, so nothing an answer said can be undone by a crash. Each test
//! holds the journal still (a change numbered and not sent: the writer commits in order and
//! waits for it), makes a change that then waits, reads what a console or an admin would, and
//! takes a copy of the data directory at that moment, which is what a crash would leave.

use crate::helpers::{Answer, TOKEN, TestApp, request_of};
use http::{Method, StatusCode};
use otpfleet_server::domain::{Event, EventSink as _, Reserved};
use otpfleet_server::journal::Journal;
use serde_json::json;
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

    // After the crash the first request was never made. Console B's request does not take its
    // id (ids never repeat across a restart): an approval of console A's id, by an admin who
    // learnt it from the lost answer, finds nothing instead of approving console B.
    let after = TestApp::spawn_durable(&crashed).await;
    let (id_b, _) = request_of(&after.redeem(&otp(1), &token_b).await);
    assert_ne!(id_a, id_b, "an id lost in a crash was handed out again");
    let approve_a = after
        .admin(Method::POST, &format!("/v1/requests/{id_a}/approve"), None)
        .await;
    assert_eq!(
        approve_a.status,
        StatusCode::NOT_FOUND,
        "{}",
        approve_a.text
    );
    let listed = after
        .admin(Method::GET, "/v1/requests?status=awaiting_approval", None)
        .await;
    assert_eq!(listed.body["requests"][0]["id"], id_b.as_str());
    assert_eq!(
        listed.body["requests"][0]["device"]["serial"], "CONSOLEB2",
        "{}",
        listed.text
    );
    after.stop().await;
}

/// A decision names what the admin vetted (the request's `etag`, in `If-Match`): a decision
/// with another request's tag changes nothing and answers 412, whatever the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_lands_only_on_what_the_admin_vetted() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_durable(dir.path()).await;
    let ids = app.import_rooms(2).await;
    let batch = app.generate_otps(&ids).await;
    for (i, serial) in ["CONSOLEA1", "CONSOLEB2"].into_iter().enumerate() {
        let otp = batch["generated"][i]["otp"].as_str().unwrap();
        let token = app.verification_token(serial).await;
        request_of(&app.redeem(otp, &token).await);
    }
    let listed = app
        .admin(Method::GET, "/v1/requests?status=awaiting_approval", None)
        .await;
    let view = |i: usize| {
        let r = &listed.body["requests"][i];
        (
            r["id"].as_str().unwrap().to_owned(),
            r["etag"].as_str().unwrap().to_owned(),
        )
    };
    let ((id_a, tag_a), (id_b, tag_b)) = (view(0), view(1));
    assert!(
        tag_a.starts_with('"') && tag_a.ends_with('"') && tag_a.len() > 10,
        "{tag_a}"
    );
    assert_ne!(tag_a, tag_b);

    let decide = |id: String, verb: &'static str, tag: String| {
        let app = &app;
        async move {
            let path = format!("/v1/requests/{id}/{verb}");
            let body = (verb == "reject").then(|| json!({"reason": "wrong_room"}).to_string());
            let ct = body.is_some().then_some("application/json");
            let headers = [("if-match", tag.as_str())];
            app.send_with(
                Method::POST,
                &path,
                &headers,
                Some(TOKEN),
                ct,
                body.unwrap_or_default(),
            )
            .await
        }
    };
    for (verb, tag) in [
        ("approve", tag_b.clone()),
        ("reject", tag_b.clone()),
        ("approve", format!("W/{tag_a}")),
        ("approve", "\"x\", \"y\"".to_owned()),
    ] {
        let refused = decide(id_a.clone(), verb, tag.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::PRECONDITION_FAILED,
            "{verb} {tag}: {}",
            refused.text
        );
        assert_eq!(refused.body["error"], "request_changed");
        assert!(
            refused.text.contains("CONSOLEA1"),
            "says what the id names: {}",
            refused.text
        );
    }
    let still = app
        .admin(Method::GET, "/v1/requests?status=awaiting_approval", None)
        .await;
    assert_eq!(
        still.body["requests"].as_array().map(Vec::len),
        Some(2),
        "nothing decided"
    );

    let approved = decide(id_a, "approve", format!("\"x\", {tag_a}")).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(
        approved.body["etag"],
        tag_a.as_str(),
        "the tag names the request, not its state"
    );
    let rejected = decide(id_b, "reject", "*".to_owned()).await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.text);
    app.stop().await;
}
