//! What watches a fleet from outside while it runs: `--metrics-listen` (Prometheus text) and
//! `--dashboard` (a live page), both reading the run's one `Live` view.

use crate::dashboard::Dashboard;
use http_body_util::{BodyExt as _, Full, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_emulator::Live;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The body of a watcher's answer: a whole text, or a stream of events.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serves `answer` over HTTP/1.1 on `listener` until the runtime stops. A failed accept (a full
/// file table) waits a moment instead of spinning.
pub(crate) fn serve<F>(listener: tokio::net::TcpListener, answer: F)
where
    F: Fn(&Request<Incoming>) -> Response<Body> + Clone + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let reply = answer(&req);
                    async move { Ok::<_, Infallible>(reply) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

/// A whole answer.
pub(crate) fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// The listeners, bound before anything else happens (a taken port changes nothing).
#[derive(Debug)]
pub(crate) struct Bound {
    metrics: Option<std::net::TcpListener>,
    dashboard: Option<std::net::TcpListener>,
}

impl Bound {
    pub(crate) fn new(metrics: Option<&str>, dashboard: Option<&str>) -> anyhow::Result<Bound> {
        Ok(Bound {
            metrics: metrics.map(|a| bind(a, "--metrics-listen")).transpose()?,
            dashboard: dashboard.map(|a| bind(a, "--dashboard")).transpose()?,
        })
    }

    /// Starts serving; call within the run's runtime. The live view is set when the run starts.
    pub(crate) fn start(self) -> anyhow::Result<Watchers> {
        let live: Arc<OnceLock<Live>> = Arc::default();
        let watched = self.metrics.is_some() || self.dashboard.is_some();
        if let Some(listener) = self.metrics {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            eprintln!(
                "fleet: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            crate::metrics_listen::spawn(listener, Arc::clone(&live));
        }
        let dashboard = match self.dashboard {
            Some(listener) => {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                eprintln!("fleet: dashboard on http://{}/", listener.local_addr()?);
                Some(Dashboard::start(listener, Arc::clone(&live)))
            }
            None => None,
        };
        Ok(Watchers {
            live: watched.then_some(live),
            dashboard,
        })
    }
}

fn bind(addr: &str, flag: &str) -> anyhow::Result<std::net::TcpListener> {
    let bad = |e: std::io::Error| crate::BadInput(format!("{flag} {addr}: {e}"));
    let listener = std::net::TcpListener::bind(addr).map_err(bad)?;
    listener.set_nonblocking(true).map_err(bad)?;
    Ok(listener)
}

/// The running watchers of one run.
#[derive(Debug)]
pub(crate) struct Watchers {
    /// The run's live view, for `RunOptions::live` (none when nothing watches).
    pub live: Option<Arc<OnceLock<Live>>>,
    dashboard: Option<Dashboard>,
}

impl Watchers {
    /// After the run folder is written: the dashboard's last update, then `linger` more of
    /// the final metrics.
    pub(crate) async fn finish(self, out: &Path, linger: Duration) {
        let live = self.live.as_ref().and_then(|l| l.get());
        if let (Some(dashboard), Some(live)) = (self.dashboard, live) {
            dashboard.finish(live, out).await;
        }
        if !linger.is_zero() && self.live.is_some() {
            eprintln!(
                "fleet: serving the final metrics for {} s (--metrics-linger-s)",
                linger.as_secs()
            );
            tokio::time::sleep(linger).await;
        }
    }
}
