//! `fleet --metrics-listen`: the run's live view served as Prometheus text on
//! `GET /metrics`, for a scraper (Prometheus, Grafana Agent, an OpenTelemetry collector's
//! Prometheus receiver). It answers 503 until the run starts, and keeps answering with the final
//! figures for `--metrics-linger-s` after it.

use super::http::{Body, reply};
use hyper::StatusCode;
use otpfleet_emulator::Live;
use std::sync::{Arc, OnceLock};

/// Serves `live` on `listener` until the runtime stops.
pub(super) fn spawn(listener: tokio::net::TcpListener, live: Arc<OnceLock<Live>>) {
    super::http::serve(listener, move |req| answer(req.uri().path(), &live));
}

fn answer(path: &str, live: &OnceLock<Live>) -> hyper::Response<Body> {
    const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
    match (path, live.get()) {
        ("/metrics", Some(live)) => reply(StatusCode::OK, TEXT, live.prometheus().into()),
        ("/metrics", None) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "the run has not started yet (seeding, or waiting for --start-at)\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "GET /metrics\n".into()),
    }
}
