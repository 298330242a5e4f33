//! No one client can take the server from the others: a client holding connections at its
//! address's bound does not stop another client's `/healthz` and redemption, its next
//! connection is answered 503 and closed at once, and connections that go quiet or stop reading
//! their answers are closed.

use crate::helpers::TestApp;
use otpfleet_server::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `server` from the loopback address `from` (127.0.0.0/8 is all loopback).
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); answers what it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_at_its_bound_does_not_stop_others() {
    let config = ServerConfig {
        max_connections: 100,
        max_connections_per_address: 20,
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    let (_, otp) = app.one_otp().await;
    // A stranger on 127.0.0.2 opens its 20 connections and holds them, idle.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from("127.0.0.2", app.addr).await);
    }
    // Its next one is answered 503 and closed, without waiting.
    let mut extra = connect_from("127.0.0.2", app.addr).await;
    let answer = read_to_close(&mut extra, Duration::from_secs(5))
        .await
        .expect("closed at once");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("server_busy"),
        "{answer}"
    );
    // Everyone else is served.
    let health = app
        .send(http::Method::GET, "/healthz", None, None, "")
        .await;
    assert_eq!(health.status, http::StatusCode::OK);
    let token = app.verification_token("2231LZ0A1B2C").await;
    let redeemed = app.redeem(&otp, &token).await;
    assert_eq!(
        redeemed.status,
        http::StatusCode::ACCEPTED,
        "{}",
        redeemed.text
    );
    let metrics = app
        .send(http::Method::GET, "/metrics", None, None, "")
        .await
        .text;
    assert!(
        metrics.contains("otpfleet_connections_refused_total 1"),
        "{metrics}"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_connections_and_clients_that_never_read_are_closed() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let app = TestApp::spawn_with(config).await;
    // Sends nothing: closed after the idle timeout.
    let mut quiet = connect_from("127.0.0.2", app.addr).await;
    assert_eq!(
        read_to_close(&mut quiet, Duration::from_secs(5)).await,
        Some(String::new()),
        "the quiet connection is closed"
    );
    // Asks for the OpenAPI document over and over and never reads: once the socket buffers
    // are full the server's write stalls, and the connection is closed.
    let mut greedy = connect_from("127.0.0.3", app.addr).await;
    let request = b"GET /openapi.json HTTP/1.1\r\nhost: x\r\n\r\n".repeat(2_000);
    let _ = tokio::time::timeout(Duration::from_secs(5), greedy.write_all(&request)).await;
    let closed = async {
        loop {
            let metrics = app
                .send(http::Method::GET, "/metrics", None, None, "")
                .await
                .text;
            // Only this /metrics request's own connection remains.
            if metrics.contains("otpfleet_connections_open 1\n") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the connection that never reads is closed");
}
