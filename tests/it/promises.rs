//! A deliberately broken target, over real HTTP: the reference server's handler behind a server
//! that lets a used OTP be redeemed again (it answers the OTP's first redemption) and hands
//! credentials out again (it answers the first sign-in). `fleet --target` against it reports the
//! broken promises with the consoles' serials and exits 4.

use crate::{otpfleet, read_report};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use otpfleet_protocol::RouteId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Cache = Arc<Mutex<HashMap<Bytes, (hyper::StatusCode, Bytes)>>>;

/// Serves the broken server on `listener` until the runtime ends.
async fn broken_server(listener: tokio::net::TcpListener, app: Arc<otpfleet_server::App>) {
    let first: Cache = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (app, first) = (Arc::clone(&app), Arc::clone(&first));
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let (app, first) = (Arc::clone(&app), Arc::clone(&first));
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await?.to_bytes();
                let redeem = parts.uri.path() == RouteId::Redeem.path();
                let sign_in = parts.uri.path().ends_with("/sign-in");
                // A redemption is known by its body's OTP, a sign-in by its path.
                let key = match (redeem, sign_in) {
                    (true, _) => serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|b| b["otp"].as_str().map(|o| Bytes::from(o.to_owned()))),
                    (_, true) => Some(Bytes::from(parts.uri.path().to_owned())),
                    _ => None,
                };
                let req = http::Request::from_parts(parts, Full::new(body));
                let answer = otpfleet_server::handle(&app, req).await;
                let Some(key) = key else {
                    return Ok::<_, hyper::Error>(answer);
                };
                let (parts, body) = answer.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let mut cache = first.lock().expect("cache");
                if parts.status.is_success() {
                    cache.entry(key).or_insert((parts.status, body.clone()));
                } else if parts.status == hyper::StatusCode::CONFLICT {
                    if let Some((status, earlier)) = cache.get(&key) {
                        let mut again = http::Response::new(Full::new(earlier.clone()));
                        *again.status_mut() = *status;
                        again.headers_mut().extend(parts.headers.clone());
                        again.headers_mut().remove(http::header::CONTENT_LENGTH);
                        return Ok(again);
                    }
                }
                Ok(http::Response::from_parts(parts, Full::new(body)))
            }
        });
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

#[test]
fn a_broken_target_is_reported_with_the_serials_and_exit_4() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = otpfleet_server::ServerConfig {
        poll_interval_s: 1,
        ..otpfleet_server::ServerConfig::default()
    };
    let clock = Arc::new(otpfleet_server::TokioClock::new(1_795_248_000_000));
    let (app, token) = runtime.block_on(async { otpfleet_emulator::reference::app(config, clock) });
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    runtime.spawn(broken_server(listener, app));

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), &token).expect("token");
    let out = otpfleet()
        .args([
            "fleet",
            "--quiet",
            "--seed",
            "4",
            "--consoles",
            "80",
            "--auto-approve",
        ])
        .args(["--race-rate", "0.3", "--double-sign-in-rate", "0.3"])
        .arg("--target")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--admin-token-file")
        .arg(dir.path().join("token"))
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .expect("fleet runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("BROKEN PROMISES"), "{stdout}");
    let report = read_report(&dir.path().join("run"));
    let violations = report["violations"].as_array().expect("violations");
    let kinds: Vec<&str> = violations
        .iter()
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"otp_redeemed_twice"), "{kinds:?}");
    assert!(kinds.contains(&"credentials_handed_twice"), "{kinds:?}");
    let twice = violations
        .iter()
        .find(|v| v["kind"] == "otp_redeemed_twice")
        .expect("one");
    assert_eq!(
        twice["serials"].as_array().map(Vec::len),
        Some(2),
        "{twice}"
    );
    let md = std::fs::read_to_string(dir.path().join("run").join("report.md")).expect("md");
    let first_section = md.find("## ").map(|i| &md[i..]).unwrap_or_default();
    assert!(first_section.starts_with("## Broken promises"), "{md}");
    assert!(crate::schema_problems(&report).is_empty());
}
