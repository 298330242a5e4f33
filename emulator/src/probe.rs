//! A probe: one stateless route through the emulator's own request path (transport, intended
//! send time, the three views), either as fast as it goes (closed loop: the generator-efficiency
//! measurement) or at a fixed rate (open loop: what oha's `-q RATE --latency-correction` does,
//! so the two can be held side by side).

use crate::api::{Requester, wait_until};
use crate::config::FleetConfig;
use crate::profile::console_rng;
use otpfleet_client::tick_intervals;
use otpfleet_client::{ApiRequest, CallError, Transport};
use otpfleet_reports::{IntervalPoint, Step, StepLatency, interval_length, latency_of};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long before its moment an open-loop request's task is started (more than tokio's timer
/// can be late by, so the task is waiting when the moment comes).
const SPAWN_AHEAD: Duration = Duration::from_millis(5);

/// Most requests of an open-loop probe in flight at once; a request due while this many are
/// still out is dropped (counted, not sent late without a record).
pub const MAX_IN_FLIGHT: u64 = 100_000;

/// What a probe measured.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// Requests answered with 2xx.
    pub requests: u64,
    /// Requests that failed (non-2xx or no answer).
    pub errors: u64,
    /// Open loop: requests due while `MAX_IN_FLIGHT` were out, never sent.
    pub dropped: u64,
    pub elapsed: Duration,
    /// The three views of the probed route, µs.
    pub latency: StepLatency,
    /// Requests per second and percentiles, second by second.
    pub over_time: Vec<IntervalPoint>,
}

/// How a probe sends.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `workers` workers, each sending its next request when the previous answer arrives.
    Closed { workers: usize },
    /// One request every `1 / per_s` seconds, whatever the answers do (open loop); `precise`
    /// sends each when due rather than at the timer's next tick (`api::wait_until`).
    Rate { per_s: f64, precise: bool },
}

/// Sends `GET path` for `duration` at `pace`.
pub async fn probe<T: Transport>(
    transport: T,
    path: &str,
    pace: Pace,
    duration: Duration,
) -> ProbeResult {
    let requester = Arc::new(Requester::new(FleetConfig::default()));
    let started = Instant::now();
    let recorder = Arc::clone(&requester.recorder);
    let ticker = tick_intervals(
        move |end| recorder.close_interval(end),
        started,
        interval_length(duration),
    );
    let shot = Shot {
        requester: Arc::clone(&requester),
        transport,
        req: ApiRequest::get(path),
        counts: Arc::new(Counts::default()),
    };
    match pace {
        Pace::Closed { workers } => closed(&shot, workers, started + duration).await,
        Pace::Rate { per_s, precise } => open(&shot, (per_s, precise), started, duration).await,
    }
    ticker.abort();
    let elapsed = started.elapsed();
    requester.recorder.close_interval(elapsed);
    let step = Step::Poll.as_str();
    let counts = &shot.counts;
    ProbeResult {
        requests: counts.ok.load(Ordering::Relaxed),
        errors: counts.failed.load(Ordering::Relaxed),
        dropped: counts.dropped.load(Ordering::Relaxed),
        elapsed,
        latency: latency_of(&requester.recorder.histograms())
            .remove(step)
            .unwrap_or_default(),
        over_time: requester.recorder.points(),
    }
}

#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicU64,
}

/// What every request of a probe needs, cloned into each task.
#[derive(Debug, Clone)]
struct Shot<T> {
    requester: Arc<Requester>,
    transport: T,
    req: ApiRequest,
    counts: Arc<Counts>,
}

impl<T: Transport> Shot<T> {
    /// Sends one request meant for `intended` and counts how it ended; false when the run
    /// stopped.
    async fn one(&self, intended: Instant, rng: &mut rand_chacha::ChaCha8Rng) -> bool {
        // The probe's route is recorded under `poll`: a stateless GET like a console's poll.
        let step = Some(Step::Poll);
        let counts = &self.counts;
        match self
            .requester
            .call(&self.transport, step, self.req.clone(), intended, rng)
            .await
        {
            Ok(a) if a.ok() => counts.ok.fetch_add(1, Ordering::Relaxed),
            Ok(_) | Err(CallError::Unreachable(_)) => counts.failed.fetch_add(1, Ordering::Relaxed),
            Err(CallError::Cancelled) => return false,
        };
        true
    }
}

async fn closed<T: Transport>(shot: &Shot<T>, workers: usize, until: Instant) {
    let tasks: Vec<_> = (0..workers.max(1) as u64)
        .map(|w| {
            let shot = shot.clone();
            tokio::spawn(async move {
                let mut rng = console_rng(0, w);
                while Instant::now() < until {
                    if !shot.one(Instant::now(), &mut rng).await {
                        break;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn open<T: Transport>(
    shot: &Shot<T>,
    (per_s, precise): (f64, bool),
    started: Instant,
    duration: Duration,
) {
    let counts = &shot.counts;
    let total = (per_s * duration.as_secs_f64()).floor() as u64;
    for i in 0..total {
        let intended = started + Duration::from_secs_f64(i as f64 / per_s);
        // Each request's task starts a little ahead and waits for its own moment (as a
        // console does), so its wake-up is the timer's, with no hop through this scheduler; the
        // timer's lateness shows in the lateness view.
        let ahead = intended.checked_sub(SPAWN_AHEAD).unwrap_or(intended);
        tokio::time::sleep_until(ahead).await;
        if counts.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counts.in_flight.fetch_add(1, Ordering::Relaxed);
        let shot = shot.clone();
        tokio::spawn(async move {
            let mut rng = console_rng(0, i);
            wait_until(intended, precise).await;
            shot.one(intended, &mut rng).await;
            shot.counts.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // The last requests are answered within the transport's timeout.
    while counts.in_flight.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
