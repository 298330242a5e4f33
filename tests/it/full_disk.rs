//! A journal that cannot write: the server refuses changes with 503 `storage_unavailable`, keeps
//! none of them in memory, says so on `/healthz`, `/metrics` and stderr, and takes changes again
//! by itself once the disk has room, with every change it acknowledged before still there.
//!
//! The disk is real: the server's data directory is on an 8 MiB tmpfs, mounted in a user and
//! mount namespace of the server's own (`unshare`, so no root is needed), which the test fills
//! with a file (reached through `/proc/<pid>/root`) and then empties.

use otpfleet_client::{Answer, ApiRequest, HttpTransport, Transport};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "full-disk-test-token";

/// `otpfleet serve` with its data directory on a fresh tmpfs at `mount`; answers the server,
/// its URL and the mount point as the test reaches it.
fn serve_on_tmpfs(mount: &Path, token: &Path) -> (Child, String, PathBuf) {
    let script = "mount -t tmpfs -o size=8m otpfleet-test \"$0\" || exit 97; \
                  exec \"$1\" serve --listen 127.0.0.1:0 --data-dir \"$0/data\" \
                  --admin-token-file \"$2\" --poll-interval-s 1";
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .arg(mount)
        .arg(env!("CARGO_BIN_EXE_otpfleet"))
        .arg(token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a first line");
    let Some(url) = first.trim().strip_prefix("listening on ") else {
        let _ = child.wait();
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut stderr));
        panic!("the server did not start on a tmpfs (user namespaces needed): {first:?} {stderr}");
    };
    let seen = PathBuf::from(format!("/proc/{}/root", child.id()))
        .join(mount.strip_prefix("/").expect("an absolute mount point"));
    (child, url.to_owned(), seen)
}

async fn send(t: &HttpTransport, req: ApiRequest) -> (u16, Value) {
    let Answer { status, body, .. } = t.send(req.with_bearer(TOKEN)).await.expect("answers");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn rooms(prefix: &str, n: usize) -> Value {
    (0..n)
        .map(|i| {
            json!({"upn": format!("{prefix}-{i}@disk.test"), "display_name": format!("Room {i}"),
                   "license": "pro", "readiness": "no_action_needed"})
        })
        .collect()
}

async fn count_accounts(t: &HttpTransport, prefix: &str) -> usize {
    let (status, page) = send(
        t,
        ApiRequest::get(format!("/v1/accounts?search={prefix}-&limit=1000")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["accounts"].as_array().expect("accounts").len()
}

fn put_preferences(hours: u32) -> ApiRequest {
    ApiRequest {
        method: http::Method::PUT,
        ..ApiRequest::post_json(
            "/v1/preferences",
            &json!({"otp_validity_hours": hours, "auto_approve": true}),
        )
    }
}

async fn redeem(t: &HttpTransport, otp: &str) -> (u16, Value) {
    let verify =
        json!({"make": "Logitech", "model": "Tap", "serial": "DISK-1", "hdmi_ingest": true});
    let (_, v) = send(t, ApiRequest::post_json("/v1/console/verify", &verify)).await;
    let body = json!({"otp": otp, "verification_token": v["verification_token"]});
    send(t, ApiRequest::post_json("/v1/console/redeem", &body)).await
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(t: &HttpTransport) -> String {
    let a = t.send(ApiRequest::get("/metrics")).await.expect("answers");
    String::from_utf8_lossy(&a.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_changes_keeps_none_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mount, token) = (dir.path().join("mnt"), dir.path().join("token"));
    std::fs::create_dir(&mount).expect("mount point");
    std::fs::write(&token, TOKEN).expect("token");
    let (child, url, disk) = serve_on_tmpfs(&mount, &token);
    let t = HttpTransport::new(&url, 2, Duration::from_secs(10)).expect("a loopback http:// URL");

    // Acknowledged before the disk fills: ten accounts and their OTPs.
    let (status, imported) = send(
        &t,
        ApiRequest::post_json("/v1/accounts", &rooms("kept", 10)),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    let ids: Vec<Value> = imported["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["account_id"].clone())
        .collect();
    let (status, batch) = send(
        &t,
        ApiRequest::post_json(
            "/v1/otp-batches",
            &json!({"account_ids": ids, "password_mode": "auto_generate"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let otp = batch["generated"][0]["otp"]
        .as_str()
        .expect("an otp")
        .to_owned();

    // The disk fills up.
    let filler = disk.join("filler");
    let mut file = std::fs::File::create(&filler).expect("the tmpfs is reachable");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    drop(file);

    // A large import cannot be journaled: refused, and nothing of it kept. Its refusal waits
    // until it is kept too (the recovery removed it from the disk), so it is answered last.
    let patient =
        HttpTransport::new(&url, 1, Duration::from_secs(60)).expect("a loopback http:// URL");
    let refused = tokio::spawn(async move {
        send(
            &patient,
            ApiRequest::post_json("/v1/accounts", &rooms("lost", 5_000)),
        )
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while send(&t, ApiRequest::get("/healthz")).await.0 == 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import never met the full disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Until it has recovered the server refuses every change (and read), and says why.
    let (status, health) = send(&t, ApiRequest::get("/healthz")).await;
    assert_eq!(
        (status, health["error"].as_str()),
        (503, Some("storage_unavailable")),
        "{health}"
    );
    let (status, answer) = send(&t, put_preferences(24)).await;
    assert_eq!(status, 503, "a preference change is refused: {answer}");
    let (status, answer) = redeem(&t, &otp).await;
    assert_eq!(status, 503, "a redemption is refused: {answer}");
    let text = metrics(&t).await;
    assert_eq!(
        metric(&text, "otpfleet_journal_writable"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "otpfleet_journal_failures_total"),
        Some(1.0),
        "{text}"
    );

    // While the disk stays full the server does not declare itself writable: opening the
    // journal writes, and fails (it once reopened, said "writable again" and failed on the
    // next write, 12 times in 15 s). Tries at about 1 s and 3 s have been made by now.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let text = metrics(&t).await;
    assert_eq!(
        metric(&text, "otpfleet_journal_recoveries_total"),
        Some(0.0),
        "no recovery while the disk is full: {text}"
    );
    let (status, _) = send(&t, ApiRequest::get("/healthz")).await;
    assert_eq!(status, 503, "still refusing while the disk is full");

    // Room again: the server takes changes by itself, without a restart.
    std::fs::remove_file(&filler).expect("the filler goes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = send(&t, ApiRequest::get("/healthz")).await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not recover within 20 s of the disk having room"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, refused) = refused.await.expect("the import's task");
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "storage_unavailable", "{refused}");
    assert_eq!(count_accounts(&t, "lost").await, 0, "the refused import");
    assert_eq!(
        count_accounts(&t, "kept").await,
        10,
        "acknowledged accounts"
    );
    let (_, prefs) = send(&t, ApiRequest::get("/v1/preferences")).await;
    assert_eq!(
        prefs["auto_approve"], false,
        "the refused preference change is not in force: {prefs}"
    );
    let (status, answer) = redeem(&t, &otp).await;
    assert_eq!(
        status, 202,
        "the OTP of the refused redemption is still unused: {answer}"
    );
    let (status, answer) = send(
        &t,
        ApiRequest::post_json("/v1/accounts", &rooms("after", 3)),
    )
    .await;
    assert_eq!(status, 200, "changes are taken again: {answer}");
    let text = metrics(&t).await;
    assert_eq!(
        metric(&text, "otpfleet_journal_writable"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "otpfleet_journal_recoveries_total"),
        Some(1.0),
        "{text}"
    );
    let stderr = crate::stop(child);
    assert!(
        stderr.contains("journal write failed") && stderr.contains("journal writable again"),
        "the failure and the recovery are logged: {stderr}"
    );
}
