//! A fleet against a fresh reference server on a free loopback port, with short timings.

use otpfleet_client::HttpTransport;
use otpfleet_emulator::config::{FleetConfig, MsRange, Rate, Rates, Timing};
use otpfleet_emulator::{FleetRun, RunOptions, reference, run_fleet};
use otpfleet_server::{ServerConfig, TokioClock};
use std::sync::Arc;
use std::time::Duration;

/// Fast people: a fleet of a few hundred finishes in a few seconds.
pub fn quick(consoles: u64, seed: u64) -> FleetConfig {
    FleetConfig {
        consoles,
        seed,
        rates: Rates {
            hdmi_missing: rate(0.05),
            uncertified: rate(0.03),
            typo: rate(0.10),
            manual: rate(0.05),
            reject: rate(0.05),
            ..Rates::default()
        },
        timing: Timing {
            arrival_window_ms: 500,
            boot: MsRange::known(5, 20),
            think: MsRange::known(5, 20),
            typing: MsRange::known(5, 20),
            hdmi_fix: MsRange::known(10, 30),
            decision: MsRange::known(0, 2),
            admin_idle_ms: 20,
        },
        max_duration_ms: 60_000,
        ..FleetConfig::default()
    }
}

pub fn rate(p: f64) -> Rate {
    Rate::new(p).expect("a rate")
}

/// Runs a fleet against a new reference server (poll interval 1 s) over HTTP.
pub async fn run(cfg: FleetConfig) -> FleetRun {
    let clock = Arc::new(TokioClock::new(1_795_248_000_000));
    let config = ServerConfig {
        poll_interval_s: 1,
        ..ServerConfig::default()
    };
    let server = reference::start(config, clock)
        .await
        .expect("the server starts");
    let transport = HttpTransport::new(&server.url(), 32, Duration::from_secs(10))
        .expect("a loopback http:// URL");
    run_fleet(cfg, transport, &server.admin_token, RunOptions::default())
        .await
        .expect("the fleet runs")
}
