//! The three views are held apart by construction, not by eye: a transport that holds each
//! send back by a known amount shows that amount as generator lateness, one that holds each
//! answer back shows it as service time, and response time is their sum. A server made twice as
//! slow on redeem fails `report compare` at its default limits. Paused time makes every amount
//! exact, against the reference server in process.

use crate::harness::quick;
use otpfleet_client::{Answer, ApiRequest, Transport, TransportError};
use otpfleet_emulator::config::FleetConfig;
use otpfleet_emulator::{FleetRun, InProcessTransport, RunOptions, reference, run_fleet};
use otpfleet_reports::{Limits, NoiseFloors, Summary, compare};
use otpfleet_server::{ServerConfig, TokioClock};
use std::sync::Arc;
use std::time::Duration;

/// Holds every request back by `before` (the generator's delay: lateness) and its answer by
/// `after`, or `redeem_after` for redemptions (the server's time: service).
#[derive(Clone)]
struct Planted {
    inner: InProcessTransport,
    before: Duration,
    after: Duration,
    redeem_after: Duration,
}

impl Transport for Planted {
    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        tokio::time::sleep(self.before).await;
        let after = if req.path.ends_with("/console/redeem") {
            self.redeem_after
        } else {
            self.after
        };
        let answer = self.inner.send(req).await;
        tokio::time::sleep(after).await;
        answer
    }

    fn describe(&self) -> String {
        "planted delays".into()
    }
}

async fn run_planted(cfg: FleetConfig, before_ms: u64, after_ms: u64, redeem_ms: u64) -> FleetRun {
    let clock = Arc::new(TokioClock::new(1_795_248_000_000));
    let config = ServerConfig {
        poll_interval_s: 1,
        ..ServerConfig::default()
    };
    let (app, token) = reference::app(config, clock);
    let transport = Planted {
        inner: InProcessTransport::new(app),
        before: Duration::from_millis(before_ms),
        after: Duration::from_millis(after_ms),
        redeem_after: Duration::from_millis(redeem_ms),
    };
    run_fleet(cfg, transport, &token, RunOptions::default())
        .await
        .expect("the fleet runs")
}

/// `value` within `tolerance` (a share) of `expected`.
fn near(value: u64, expected: u64, tolerance: f64) -> bool {
    (value as f64 - expected as f64).abs() <= expected as f64 * tolerance
}

#[tokio::test(start_paused = true)]
async fn lateness_and_service_add_up_to_response_on_planted_delays() {
    let run = run_planted(quick(120, 3), 40, 10, 10).await;
    let r = &run.report;
    assert!(r.complete, "{:?}", r.stopped_because);
    for step in ["verify", "redeem", "poll", "approve", "sign_in"] {
        let l = &r.latency_us[step];
        let (late, service, response) = (&l.lateness, &l.service, &l.response);
        assert!(service.count > 0, "{step}");
        // The answer's delay is all service; the send's delay is lateness (plus up to a
        // millisecond of the timer wheel's tick on top of it).
        assert!(
            near(service.p50, 10_000, 0.002),
            "{step} service {service:?}"
        );
        assert!(
            near(service.max, 10_000, 0.002),
            "{step} service {service:?}"
        );
        assert!(
            (40_000..=41_100).contains(&late.p50),
            "{step} lateness {late:?}"
        );
        let sum = |s: &Summary| s.p50;
        assert!(
            near(response.p50, sum(late) + sum(service), 0.01),
            "{step}: response {response:?} vs lateness {late:?} + service {service:?}"
        );
        assert!(
            service.p99 <= response.p99 && late.p99 <= response.p99,
            "{step}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_twice_as_slow_on_redeem_fails_compare_at_the_default_limits() {
    let base = run_planted(quick(200, 5), 0, 5, 5).await.report;
    let slow = run_planted(quick(200, 5), 0, 5, 10).await.report;
    let (defaults, floors) = (Limits::default(), NoiseFloors::default());
    let c = compare(&base, &slow, &defaults, &floors, 100).expect("compares");
    let names: Vec<&str> = c.regressions.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"redeem.service.p50"), "{names:?}");
    assert!(
        names.iter().all(|n| n.starts_with("redeem.")),
        "only redeem moved: {names:?}"
    );
    // The same run against itself passes.
    assert!(
        compare(&base, &base, &defaults, &floors, 100)
            .expect("compares")
            .within_limits()
    );
}
