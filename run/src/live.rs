//! What watches a fleet from outside while it runs: `--metrics-listen` (Prometheus text),
//! `--dashboard` (a live page) and `--otlp-endpoint` (pushes to an OpenTelemetry collector),
//! all reading the run's one `Live` view.

mod dashboard;
mod http;
mod metrics;
mod otlp;

pub use dashboard::Source;
use dashboard::{Dashboard, QueueProbe};
use otlp::{Endpoint, Exporter};
use otpfleet_emulator::Live;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What watches a run, as asked on its command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// `--metrics-listen`
    pub metrics: Option<&'a str>,
    /// `--dashboard`
    pub dashboard: Option<&'a str>,
    /// `--otlp-endpoint` and `--otlp-interval-s`
    pub otlp: Option<(&'a str, Duration)>,
}

/// The listeners, bound, and the OTLP endpoint, parsed, before anything else happens (a taken
/// port or a bad URL changes nothing).
#[derive(Debug)]
pub struct Bound {
    metrics: Option<std::net::TcpListener>,
    dashboard: Option<std::net::TcpListener>,
    otlp: Option<(Endpoint, Duration)>,
}

impl Bound {
    pub fn new(asked: Asked<'_>) -> anyhow::Result<Bound> {
        Ok(Bound {
            metrics: asked
                .metrics
                .map(|a| bind(a, "--metrics-listen"))
                .transpose()?,
            dashboard: asked
                .dashboard
                .map(|a| bind(a, "--dashboard"))
                .transpose()?,
            otlp: asked
                .otlp
                .map(|(url, every)| Ok::<_, anyhow::Error>((Endpoint::parse(url)?, every)))
                .transpose()?,
        })
    }

    /// Starts serving; call within the run's runtime. The live view is set when the run starts.
    /// The dashboard shows `page`'s figures, or the live view's without it. `command` names
    /// the command in the lines printed.
    pub fn start(self, command: &str, page: Option<Source>) -> anyhow::Result<Watchers> {
        let live: Arc<OnceLock<Live>> = Arc::default();
        let watched = self.metrics.is_some() || self.dashboard.is_some() || self.otlp.is_some();
        if let Some(listener) = self.metrics {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            eprintln!(
                "{command}: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            metrics::spawn(listener, Arc::clone(&live));
        }
        let dashboard = match self.dashboard {
            Some(listener) => {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                eprintln!("{command}: dashboard on http://{}/", listener.local_addr()?);
                let page = page.unwrap_or_else(|| {
                    let live = Arc::clone(&live);
                    Arc::new(move || live.get().map(Live::snapshot))
                });
                Some(Dashboard::start(listener, page))
            }
            None => None,
        };
        let exporter = match self.otlp {
            Some((endpoint, every)) => {
                eprintln!(
                    "{command}: OTLP exports to {} every {} s",
                    endpoint.url(),
                    every.as_secs()
                );
                Some(Exporter::start(endpoint, every, Arc::clone(&live))?)
            }
            None => None,
        };
        Ok(Watchers {
            live: watched.then_some(live),
            dashboard,
            exporter,
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
pub struct Watchers {
    /// The run's live view, for `RunOptions::live` (none when nothing watches).
    pub live: Option<Arc<OnceLock<Live>>>,
    dashboard: Option<Dashboard>,
    exporter: Option<Exporter>,
}

impl Watchers {
    /// Whether a live page is served.
    pub fn has_dashboard(&self) -> bool {
        self.dashboard.is_some()
    }

    /// Has the dashboard (if there is one) show the approval queue of the server at `url`,
    /// read from its `/metrics` with `admin_token`.
    pub fn watch_queue(
        &self,
        url: &str,
        ca_cert: Option<&Path>,
        admin_token: &str,
    ) -> anyhow::Result<()> {
        if let Some(dashboard) = &self.dashboard {
            dashboard.watch_queue(QueueProbe {
                transport: crate::target::transport(url, ca_cert, 1, Duration::from_secs(1))?,
                admin_token: admin_token.to_owned(),
            });
        }
        Ok(())
    }

    /// After the run folder is written: the dashboard's last update and the last OTLP export.
    pub async fn finish(&mut self, out: &Path, report: &otpfleet_reports::RunReport) {
        let live = self.live.as_ref().and_then(|l| l.get());
        if let Some(dashboard) = &self.dashboard {
            dashboard.finish(out, report).await;
        }
        if let (Some(exporter), Some(live)) = (self.exporter.take(), live) {
            exporter.finish(live).await;
        }
    }

    /// Serves the final figures (metrics, and the finished page) `linger` more.
    pub async fn linger(self, linger: Duration) {
        if !linger.is_zero() && self.live.is_some() {
            eprintln!(
                "fleet: serving the final metrics and page for {} s (--metrics-linger-s)",
                linger.as_secs()
            );
            tokio::time::sleep(linger).await;
        }
    }
}
