//! Loopback HTTP for the benches: the reference server and a bare hyper 1.x "hello" server, both
//! on `127.0.0.1:0`, and one keep-alive client that talks to both.
//!
//! The servers run as tasks of the caller's runtime. The HTTP benches use one current-thread
//! runtime for the client and both servers, so a round trip costs the CPU work of client,
//! kernel loopback and server, without cross-core wake-ups: on this two-vCPU VM, where the two
//! sides of a round trip land (same core or not) moved the bare hyper round trip between 15 and
//! 26 us from one run to the next, more than the whole difference under test.

use crate::Domain;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otpfleet_protocol::RouteId;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The body the hello server answers.
pub const HELLO: &[u8] = b"hello";

/// The two servers, running until this is dropped.
#[derive(Debug)]
pub struct Servers {
    /// The reference server, serving the fixture's [`Domain`].
    pub otp: SocketAddr,
    /// The bare hyper "hello" server.
    pub hello: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    hello_task: JoinHandle<()>,
}

impl Servers {
    /// Starts both servers as tasks of the current tokio runtime.
    pub async fn start(domain: &Domain) -> Servers {
        let otp_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bench: bind 127.0.0.1:0");
        let hello_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bench: bind 127.0.0.1:0");
        let otp = otp_listener.local_addr().expect("bench: a bound address");
        let hello = hello_listener.local_addr().expect("bench: a bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let app = std::sync::Arc::clone(&domain.app);
        tokio::spawn(otpfleet_server::serve(otp_listener, app, async {
            let _ = rx.await;
        }));
        Servers {
            otp,
            hello,
            shutdown: Some(tx),
            hello_task: tokio::spawn(serve_hello(hello_listener)),
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.hello_task.abort();
    }
}

/// The reference of the HTTP group: hyper's http1 connection with a service that answers
/// `200 hello` to anything, on a socket set up like the reference server's (`TCP_NODELAY`).
async fn serve_hello(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let service = service_fn(|_req| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(HELLO))))
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A keep-alive hyper-util client (`TCP_NODELAY`, as the servers): after the first request to
/// a server, every request reuses its pooled connection.
#[derive(Debug, Clone)]
pub struct BenchClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for BenchClient {
    fn default() -> Self {
        BenchClient::new()
    }
}

impl BenchClient {
    pub fn new() -> BenchClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        BenchClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// One round trip: sends the request and reads the whole answer.
    pub async fn round_trip(&self, req: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        let res = self
            .client
            .request(req)
            .await
            .expect("bench: the server answers");
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("bench: the whole body arrives")
            .to_bytes();
        (status, body)
    }
}

/// `GET /` to the hello server.
pub fn hello_request(addr: SocketAddr) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}/"))
        .body(Full::default())
        .expect("bench: a well-formed request")
}

/// `GET /v1/console/requests/{id}` with the console's poll token.
pub fn poll_request(addr: SocketAddr, request_id: &str, poll_token: &str) -> Request<Full<Bytes>> {
    Request::get(format!(
        "http://{addr}{}",
        RouteId::Poll.path_for(request_id)
    ))
    .header(header::AUTHORIZATION, format!("Bearer {poll_token}"))
    .body(Full::default())
    .expect("bench: a well-formed request")
}

/// `POST /v1/console/redeem` with a JSON body.
pub fn redeem_request(
    addr: SocketAddr,
    req: &otpfleet_protocol::RedeemRequest,
) -> Request<Full<Bytes>> {
    let body = serde_json::to_vec(req).expect("bench: a redeem request serializes");
    Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{}", RouteId::Redeem.path()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("bench: a well-formed request")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{POLL_STEP_MS, START_MS};

    #[test]
    fn both_servers_answer_over_loopback() {
        let domain = Domain::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = BenchClient::new();
        rt.block_on(async {
            let servers = Servers::start(&domain).await;
            let (status, body) = client.round_trip(hello_request(servers.hello)).await;
            assert_eq!((status, &body[..]), (StatusCode::OK, HELLO));

            let reqs = domain.redeem_requests(1);
            let (status, body) = client
                .round_trip(redeem_request(servers.otp, &reqs[0]))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");

            let r = &domain.redeemed(1)[0];
            domain.clock.set_ms(START_MS + POLL_STEP_MS);
            let req = poll_request(servers.otp, &r.request_id, &r.poll_token);
            let (status, body) = client.round_trip(req).await;
            assert_eq!(status, StatusCode::OK, "{body:?}");
        });
    }
}
