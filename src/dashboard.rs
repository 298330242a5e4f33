//! `fleet --dashboard [ADDR]`: a live page of the run (same look as report.html), updated over
//! server-sent events once a second from the run's `Live` view. Bounded: every browser reads
//! the latest figures from a `watch` channel, so a slow or absent browser skips updates instead
//! of queueing them, and never slows the run. At the end the page gets the final figures with a
//! link to report.html (served here for the moments the process lingers), and the run does not
//! wait for any browser.

use crate::watchers::{Body, reply};
use futures::stream::{self, StreamExt as _};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use otpfleet_emulator::Live;
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

/// A running dashboard.
#[derive(Debug)]
pub(crate) struct Dashboard {
    updates: watch::Sender<Update>,
    clients: Arc<AtomicUsize>,
    report: Arc<OnceLock<PathBuf>>,
    publisher: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    /// Serves the page on `listener` and publishes `live`'s figures once a second once the run
    /// has started. Call from within the run's runtime.
    pub(crate) fn start(listener: tokio::net::TcpListener, live: Arc<OnceLock<Live>>) -> Self {
        let (updates, _) = watch::channel(Update::default());
        let publisher = {
            let updates = updates.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if let Some(live) = live.get() {
                        let json = live.snapshot().to_string().into();
                        updates.send_replace(Update { json, done: false });
                    }
                }
            })
        };
        let dashboard = Dashboard {
            updates,
            clients: Arc::default(),
            report: Arc::default(),
            publisher,
        };
        dashboard.accept(listener);
        dashboard
    }

    fn accept(&self, listener: tokio::net::TcpListener) {
        let (updates, clients, report) = (
            self.updates.clone(),
            Arc::clone(&self.clients),
            Arc::clone(&self.report),
        );
        crate::watchers::serve(listener, move |req| {
            answer(req, &updates, &clients, &report)
        });
    }

    /// Sends the final figures with the run folder's report, and gives the browsers that are
    /// watching a moment to receive them.
    pub(crate) async fn finish(self, live: &Live, out: &Path) {
        self.publisher.abort();
        let report = out.join("report.html");
        let _ = self.report.set(report.clone());
        let mut last = live.snapshot();
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
