//! `fleet --metrics-listen ADDR`: the run's live view served as Prometheus text on
//! `GET /metrics`, for a scraper (Prometheus, Grafana Agent, an OpenTelemetry collector's
//! Prometheus receiver). A tiny hyper server on the run's runtime; it answers 503 until the run
//! starts, and keeps answering with the final figures for `--metrics-linger-s` after it.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_emulator::Live;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

/// Serves `live` on `listener` until the runtime stops.
pub(crate) fn spawn(listener: TcpListener, live: Arc<OnceLock<Live>>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let live = Arc::clone(&live);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let live = Arc::clone(&live);
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &live)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

fn answer(req: &Request<Incoming>, live: &OnceLock<Live>) -> Response<Full<Bytes>> {
    let (status, body) = match (req.uri().path(), live.get()) {
        ("/metrics", Some(live)) => (StatusCode::OK, live.prometheus()),
        ("/metrics", None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the run has not started yet (seeding, or waiting for --start-at)\n".to_owned(),
        ),
        _ => (StatusCode::NOT_FOUND, "GET /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
