//! `--dashboard`: a live page of a fleet, load or rehearsal run (same look as report.html),
//! updated over server-sent events once a second from the run's figures (a [`Source`]).
//!
//! The run's history is kept here from its start, one compact point a second (`point_of`,
//! at most `MAX_HISTORY`), and a browser that connects late gets it with its first event, so its
//! charts begin at the run's first second. Bounded: every browser reads the latest figures from a
//! `watch` channel, so a slow or absent browser skips updates instead of queueing them, and never
//! slows the run. At the end the page gets the whole run's figures from report.json (`final`),
//! which it keeps showing once the process has gone, and a link to report.html (served here
//! while the process lingers); the run does not wait for any browser.

use super::http::{Body, reply};
use futures::stream::{self, StreamExt as _};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_client::{Spread, Transport as _};
use serde_json::Value;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// The figures of one update (as sent, and as a value for a first event's history), and
/// whether they are the last.
#[derive(Debug, Clone, Default)]
struct Update {
    json: Arc<str>,
    snapshot: Arc<Value>,
    done: bool,
}

impl Update {
    fn new(snapshot: Value, done: bool) -> Update {
        Update {
            json: snapshot.to_string().into(),
            snapshot: Arc::new(snapshot),
            done,
        }
    }
}

/// Most points of the run's history a dashboard keeps (an hour at one a second); past it every
/// other point is dropped, so the history keeps its whole span at a coarser step.
const MAX_HISTORY: usize = 3_600;

/// The run's points so far, oldest first.
type History = Arc<Mutex<Vec<Value>>>;

/// The run's figures now for the page (a JSON object with its `kind`: fleet, load or
/// rehearsal), or none before the run has started.
pub type Source = Arc<dyn Fn() -> Option<serde_json::Value> + Send + Sync>;

/// A running dashboard.
pub(super) struct Dashboard {
    source: Source,
    updates: watch::Sender<Update>,
    history: History,
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
    pub(super) transport: Spread,
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
        let history: History = Arc::default();
        let clients: Arc<AtomicUsize> = Arc::default();
        let queue: Arc<OnceLock<QueueProbe>> = Arc::default();
        let publisher = tokio::spawn(publish(
            Arc::clone(&source),
            (updates.clone(), Arc::clone(&history)),
            Arc::clone(&clients),
            Arc::clone(&queue),
        ));
        let dashboard = Dashboard {
            source,
            updates,
            history,
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
        let (updates, history, clients, report) = (
            self.updates.clone(),
            Arc::clone(&self.history),
            Arc::clone(&self.clients),
            Arc::clone(&self.report),
        );
        super::http::serve(listener, move |req| {
            answer(req, (&updates, &history), &clients, &report)
        });
    }

    /// Sends the final figures with the whole run's from its report (as written to `out`), and
    /// gives the browsers that are watching a moment to receive them.
    pub(super) async fn finish(&self, out: &Path, report: &otpfleet_reports::RunReport) {
        self.publisher.abort();
        let page = out.join("report.html");
        let _ = self.report.set(page.clone());
        let Some(mut last) = (self.source)() else {
            return;
        };
        last["done"] = true.into();
        last["report"] = page.display().to_string().into();
        last["report_url"] = "/report.html".into();
        last["final"] = whole_run(report);
        stamp(&mut last, &self.history);
        self.updates.send_replace(Update::new(last, true));
        if self.clients.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
        }
    }
}

/// The whole run's figures from its report.json, for the finished page: outcomes, requests,
/// rates and errors, and per step its count and service and response p50 and p99 (null when the
/// report cannot be read).
fn whole_run(report: &otpfleet_reports::RunReport) -> Value {
    let latency: serde_json::Map<String, Value> = report
        .latency_us
        .iter()
        .map(|(step, l)| {
            let view = |s: &otpfleet_reports::Summary| {
                serde_json::json!({ "count": s.count, "p50": s.p50, "p99": s.p99 })
            };
            let views = serde_json::json!({ "service": view(&l.service), "response": view(&l.response) });
            (step.clone(), views)
        })
        .collect();
    serde_json::json!({
        "duration_s": report.duration_s,
        "complete": report.complete,
        "outcomes": report.outcomes,
        "throughput": report.throughput,
        "latency_us": latency,
    })
}

/// Adds the steps' flow order and this moment's point to `snapshot`, and keeps the point in the
/// run's history.
fn stamp(snapshot: &mut Value, history: &History) {
    let order: Vec<&str> = otpfleet_reports::Step::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    snapshot["step_order"] = order.into();
    let point = point_of(snapshot);
    let mut points = history
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if points.len() >= MAX_HISTORY {
        let mut i = 0;
        points.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
    points.push(point.clone());
    snapshot["point"] = point;
}

/// One moment of the run for its charts: the time (s), consoles ended, installers due and
/// arrived so far, and the last closed interval's start, length, requests per second and
/// service p50 and p99 per step.
fn point_of(s: &Value) -> Value {
    let interval = s.get("interval").filter(|i| i.is_object()).map(|i| {
        let empty = serde_json::Map::new();
        let steps = i["steps"].as_object().unwrap_or(&empty);
        let rps: f64 = steps.values().filter_map(|st| st["rps"].as_f64()).sum();
        let latency: serde_json::Map<String, Value> = steps
            .iter()
            .map(|(name, st)| {
                let p =
                    serde_json::json!({ "p50": st["service_p50_us"], "p99": st["service_p99_us"] });
                (name.clone(), p)
            })
            .collect();
        serde_json::json!({
            "start_s": i["start_s"], "length_s": i["length_s"], "rps": rps, "steps": latency,
        })
    });
    serde_json::json!({
        "t": s["elapsed_s"],
        "ended": s["ended"],
        "due": s["arrivals"]["due"],
        "arrived": s["arrivals"]["arrived"],
        "interval": interval,
    })
}

/// Once a second: the run's figures, with the server's approval queue while a browser watches.
async fn publish(
    source: Source,
    (updates, history): (watch::Sender<Update>, History),
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
        stamp(&mut snapshot, &history);
        let update = Update::new(snapshot, false);
        // A publish that overlaps the end never replaces the final figures.
        updates.send_if_modified(|current| {
            let live = !current.done;
            if live {
                *current = update;
            }
            live
        });
    }
}

fn answer(
    req: &Request<Incoming>,
    (updates, history): (&watch::Sender<Update>, &History),
    clients: &Arc<AtomicUsize>,
    report: &OnceLock<PathBuf>,
) -> Response<Body> {
    match req.uri().path() {
        "/" => page(),
        "/events" => events(
            updates.subscribe(),
            Arc::clone(history),
            Arc::clone(clients),
        ),
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

/// Server-sent events: the latest figures with the run's history so far, then each update,
/// until the last one.
fn events(
    rx: watch::Receiver<Update>,
    history: History,
    clients: Arc<AtomicUsize>,
) -> Response<Body> {
    let watching = Watching::new(clients);
    let frames = stream::unfold((rx, watching, history, false, true), |state| async move {
        let (mut rx, watching, history, ended, first) = state;
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
        let json = if first {
            let mut snapshot = (*update.snapshot).clone();
            let points = history.lock().map(|p| p.clone()).unwrap_or_default();
            snapshot["history"] = Value::Array(points);
            snapshot.to_string()
        } else {
            update.json.to_string()
        };
        let frame = Frame::data(Bytes::from(format!("data: {json}\n\n")));
        Some((
            Ok::<_, Infallible>(frame),
            (rx, watching, history, update.done, false),
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
