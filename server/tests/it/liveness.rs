//! Liveness (issue 28): once the disk's faults stop, a durable server serves again by itself
//! within a bounded time, whatever failed (a sync, a write, or a read while it recovers), with
//! every change it acknowledged before still there, and it never says it recovered while the
//! faults last, nor brings back a change it refused (a sync that failed may have left it on the
//! disk). On the simulated disk and tokio's paused clock: the minute of faults takes no
//! wall time.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use otpfleet_server::simdisk::{Faults, SimDisk};
use otpfleet_server::{App, Catalogue, ManualClock, ServerConfig, Storage, assemble, handle};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "liveness-test-token";
/// How long the faults last.
const FAULTY_FOR: Duration = Duration::from_secs(60);
/// The longest a server may take to serve again once the faults stop: the longest wait between
/// two tries to reopen (8 s), and a second for the try.
const BACK_WITHIN: Duration = Duration::from_secs(9);

async fn call(app: &App, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let answer = handle(app, req.body(Full::new(Bytes::from(bytes))).unwrap()).await;
    let status = answer.status();
    let bytes = answer.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Sets the OTP validity to `hours`: a change the journal must keep.
async fn set_validity(app: &App, hours: u32) -> StatusCode {
    let prefs = json!({"otp_validity_hours": hours, "auto_approve": false});
    call(app, Method::PUT, "/v1/preferences", Some(prefs))
        .await
        .0
}

/// A minute of `faults`, then none: answers how long the server took to serve again.
async fn survive(faults: Faults) -> Duration {
    let disk = SimDisk::new(7, Faults::NONE);
    let clock = Arc::new(ManualClock::new(crate::helpers::START_MS));
    let storage = Storage::Simulated(disk.clone());
    let assembled = assemble(
        ServerConfig::default(),
        Catalogue::builtin(),
        &storage,
        clock,
        &[(TOKEN, "test")],
    )
    .expect("opens");
    let app = Arc::new(assembled.app);
    let recovery = tokio::spawn(Arc::clone(&app).recover());
    assert_eq!(set_validity(&app, 12).await, StatusCode::OK);

    disk.set_faults(faults);
    // The change the failure meets is refused only once the refusal is kept: after the
    // recovery has removed it from the disk (a crash before that would bring it back).
    let refused = tokio::spawn({
        let app = Arc::clone(&app);
        async move { set_validity(&app, 24).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !refused.is_finished(),
        "{faults:?}: refused before it was kept"
    );
    let faulty_until = tokio::time::Instant::now() + FAULTY_FOR;
    while tokio::time::Instant::now() < faulty_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (health, _) = call(&app, Method::GET, "/healthz", None).await;
        assert_eq!(
            health,
            StatusCode::SERVICE_UNAVAILABLE,
            "healthy while faulty"
        );
        assert_eq!(
            set_validity(&app, 36).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    disk.set_faults(Faults::NONE);
    let healed = tokio::time::Instant::now();
    loop {
        let (status, prefs) = call(&app, Method::GET, "/v1/preferences", None).await;
        if status == StatusCode::OK {
            assert_eq!(
                prefs["otp_validity_hours"], 12,
                "{faults:?}: a change refused while the disk failed came back: {prefs}"
            );
            break;
        }
        assert!(
            healed.elapsed() <= BACK_WITHIN,
            "{faults:?}: not serving {BACK_WITHIN:?} after the faults stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back_after = healed.elapsed();
    assert_eq!(
        refused.await.expect("answers"),
        StatusCode::SERVICE_UNAVAILABLE,
        "{faults:?}: the change the failure met is refused once the server recovered"
    );
    assert_eq!(
        set_validity(&app, 48).await,
        StatusCode::OK,
        "takes changes again"
    );
    recovery.abort();
    back_after
}

#[tokio::test(start_paused = true)]
async fn after_sync_errors_it_serves_again_by_itself() {
    let faults = Faults {
        sync_error: 1.0,
        ..Faults::NONE
    };
    let back = survive(faults).await;
    eprintln!("liveness: serving again {back:?} after sync errors stopped");
}

#[tokio::test(start_paused = true)]
async fn after_write_errors_it_serves_again_by_itself() {
    let faults = Faults {
        write_error: 1.0,
        ..Faults::NONE
    };
    let back = survive(faults).await;
    eprintln!("liveness: serving again {back:?} after write errors stopped");
}

/// Reads fail while the server recovers (it reads the whole journal to replay it).
#[tokio::test(start_paused = true)]
async fn after_read_errors_while_recovering_it_serves_again_by_itself() {
    let faults = Faults {
        sync_error: 1.0,
        read_error: 1.0,
        ..Faults::NONE
    };
    let back = survive(faults).await;
    eprintln!("liveness: serving again {back:?} after read errors stopped");
}
