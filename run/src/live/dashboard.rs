//! `--dashboard`: a live page of a fleet, load or rehearsal run (same look as report.html),
//! updated over server-sent events once a second from the run's figures (a [`Source`]). Bounded: every browser reads
//! the latest figures from a `watch` channel, so a slow or absent browser skips updates instead
//! of queueing them, and never slows the run. At the end the page gets the final figures with a
//! link to report.html (served here for the moments the process lingers), and the run does not
//! wait for any browser.

use super::http::{Body, reply};
use futures::stream::{self, StreamExt as _};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_client::{HttpTransport, Transport as _};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// The figures of one update, and whether they are the last.
#[derive(Debug, Clone, Default)]
struct Update {
    json: Arc<str>,
    done: bool,
}

/// The run's figures now for the page (a JSON object with its `kind`: fleet, load or
/// rehearsal), or none before the run has started.
pub type Source = Arc<dyn Fn() -> Option<serde_json::Value> + Send + Sync>;

/// A running dashboard.
pub(super) struct Dashboard {
    source: Source,
    updates: watch::Sender<Update>,
    clients: Arc<AtomicUsize>,
    report: Arc<OnceLock<PathBuf>>,
    /// The server whose approval queue the page shows, once the run knows it.
    queue: Arc<OnceLock<QueueProbe>>,
    publisher: tokio::task::JoinHandle<()>,
}

/// The approval queue's depth as the server itself counts it: the
/// `otpfleet_approval_queue_depth` gauge of its `/metrics`, read with the admin token.
#[derive(Debug)]
pub(super) struct QueueProbe {
    pub(super) transport: HttpTransport,
    pub(super) admin_token: String,
}

impl QueueProbe {
    async fn depth(&self) -> Result<u64, String> {
        let req = otpfleet_client::calls::metrics(&self.admin_token);
        let answer = self.transport.send(req).await.map_err(|e| e.to_string())?;
        if !answer.ok() {
            return Err(format!("its /metrics answered HTTP {}", answer.status));
        }
        String::from_utf8_lossy(&answer.body)
            .lines()
            .find_map(|l| l.strip_prefix("otpfleet_approval_queue_depth "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| "its /metrics has no otpfleet_approval_queue_depth".to_owned())
    }
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("clients", &self.clients)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Serves the page on `listener` and publishes `source`'s figures once a second once the
    /// run has started. Call from within a runtime that runs in real time.
    pub(super) fn start(listener: tokio::net::TcpListener, source: Source) -> Self {
        let (updates, _) = watch::channel(Update::default());
        let clients: Arc<AtomicUsize> = Arc::default();
        let queue: Arc<OnceLock<QueueProbe>> = Arc::default();
        let publisher = tokio::spawn(publish(
            Arc::clone(&source),
            updates.clone(),
            Arc::clone(&clients),
            Arc::clone(&queue),
        ));
        let dashboard = Dashboard {
            source,
            updates,
            clients,
            report: Arc::default(),
            queue,
            publisher,
        };
        dashboard.accept(listener);
        dashboard
    }

    /// Shows the approval queue of the server the run drives (read only while a browser
    /// watches: a scrape of it walks every account).
    pub(super) fn watch_queue(&self, probe: QueueProbe) {
        let _ = self.queue.set(probe);
    }

    fn accept(&self, listener: tokio::net::TcpListener) {
        let (updates, clients, report) = (
            self.updates.clone(),
            Arc::clone(&self.clients),
            Arc::clone(&self.report),
        );
        super::http::serve(listener, move |req| {
            answer(req, &updates, &clients, &report)
        });
    }

    /// Sends the final figures with the run folder's report, and gives the browsers that are
    /// watching a moment to receive them.
    pub(super) async fn finish(&self, out: &Path) {
        self.publisher.abort();
        let report = out.join("report.html");
        let _ = self.report.set(report.clone());
        let Some(mut last) = (self.source)() else {
            return;
        };
        last["done"] = true.into();
        last["report"] = report.display().to_string().into();
        last["report_url"] = "/report.html".into();
        self.updates.send_replace(Update {
            json: last.to_string().into(),
            done: true,
        });
        if self.clients.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
        }
    }
}

/// Once a second: the run's figures, with the server's approval queue while a browser watches.
async fn publish(
    source: Source,
    updates: watch::Sender<Update>,
    clients: Arc<AtomicUsize>,
    queue: Arc<OnceLock<QueueProbe>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(mut snapshot) = source() else {
            continue;
        };
        if let (Some(probe), true) = (queue.get(), clients.load(Ordering::Relaxed) > 0) {
            let depth = tokio::time::timeout(Duration::from_millis(900), probe.depth()).await;
            snapshot["server_queue"] = match depth {
                Ok(Ok(n)) => serde_json::json!({ "depth": n }),
                Ok(Err(why)) => serde_json::json!({ "unknown": why }),
                Err(_) => serde_json::json!({ "unknown": "its /metrics took over 0.9 s" }),
            };
        }
        let json = snapshot.to_string().into();
        updates.send_replace(Update { json, done: false });
    }
}

fn answer(
    req: &Request<Incoming>,
    updates: &watch::Sender<Update>,
    clients: &Arc<AtomicUsize>,
    report: &OnceLock<PathBuf>,
) -> Response<Body> {
    match req.uri().path() {
        "/" => page(),
        "/events" => events(updates.subscribe(), Arc::clone(clients)),
        "/report.html" => match report.get().and_then(|p| std::fs::read(p).ok()) {
            Some(html) => reply(StatusCode::OK, "text/html; charset=utf-8", html.into()),
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not written yet\n".into(),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "GET / or /events\n".into(),
        ),
    }
}

fn page() -> Response<Body> {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        include_str!("dashboard/page.html").replace("/*CSS*/", otpfleet_reports::PAGE_CSS)
    });
    reply(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Bytes::from(page.as_str()),
    )
}

/// Counts a browser watching while it lives (the stream of its events is dropped when it
/// leaves).
struct Watching(Arc<AtomicUsize>);

impl Watching {
    fn new(clients: Arc<AtomicUsize>) -> Watching {
        clients.fetch_add(1, Ordering::Relaxed);
        Watching(clients)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Server-sent events: the latest figures, then each update, until the last one.
fn events(rx: watch::Receiver<Update>, clients: Arc<AtomicUsize>) -> Response<Body> {
    let watching = Watching::new(clients);
    let frames = stream::unfold((rx, watching, false, true), |state| async move {
        let (mut rx, watching, ended, first) = state;
        if ended {
            return None;
        }
        let mut wait = !first;
        let update = loop {
            if wait && rx.changed().await.is_err() {
                return None;
            }
            wait = true;
            let current = rx.borrow_and_update().clone();
            if !current.json.is_empty() {
                break current;
            }
        };
        let frame = Frame::data(Bytes::from(format!("data: {}\n\n", update.json)));
        Some((
            Ok::<_, Infallible>(frame),
            (rx, watching, update.done, false),
        ))
    });
    let body = StreamBody::new(frames.boxed()).boxed_unsync();
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    let value = hyper::header::HeaderValue::from_static;
    headers.insert(hyper::header::CONTENT_TYPE, value("text/event-stream"));
    headers.insert(hyper::header::CACHE_CONTROL, value("no-cache"));
    response
}
