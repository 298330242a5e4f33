//! A probe: hammer one stateless route through the emulator's own request path (transport,
//! intended send time, histogram), to measure what the generator itself can drive.

use crate::api::{Ctx, Failure};
use crate::config::FleetConfig;
use crate::profile::console_rng;
use crate::tally::Tally;
use crate::transport::{ApiRequest, Transport};
use otpfleet_reports::{Recorder, Step, Summary, summarize};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a probe measured.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_us: Summary,
}

/// Sends `GET path` back to back from `workers` concurrent workers for `duration` (closed
/// loop: each worker sends its next request when the previous answer arrives).
pub async fn probe<T: Transport>(
    transport: T,
    path: &str,
    workers: usize,
    duration: Duration,
) -> ProbeResult {
    let ctx = Arc::new(Ctx {
        cfg: FleetConfig::default(),
        recorder: Arc::new(Recorder::default()),
        tally: Arc::new(Tally::default()),
    });
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|w| {
            let (ctx, transport, req) =
                (Arc::clone(&ctx), transport.clone(), ApiRequest::get(path));
            tokio::spawn(async move {
                let mut rng = console_rng(0, w as u64);
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < until {
                    match ctx
                        .call(
                            &transport,
                            Some(Step::Poll),
                            req.clone(),
                            Instant::now(),
                            &mut rng,
                        )
                        .await
                    {
                        Ok(a) if a.ok() => ok += 1,
                        Ok(_) | Err(Failure::Unreachable(_)) => failed += 1,
                        Err(Failure::Cancelled) => break,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut requests, mut errors) = (0, 0);
    for t in tasks {
        if let Ok((ok, failed)) = t.await {
            requests += ok;
            errors += failed;
        }
    }
    ProbeResult {
        requests,
        errors,
        elapsed: started.elapsed(),
        latency_us: summarize(&ctx.recorder.raw_histogram(Step::Poll)),
    }
}
