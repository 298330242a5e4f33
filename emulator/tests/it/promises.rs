//! The fleet checks the server's promises: against the reference server, consoles racing for one
//! OTP and asking twice for credentials find none broken; against a deliberately broken server
//! (a transport in front of the reference server that lets a used OTP be redeemed again and
//! hands credentials out again) every broken promise is reported with its consoles' serials.

use crate::harness::{quick, rate};
use otpfleet_client::{Answer, ApiRequest, Transport, TransportError};
use otpfleet_emulator::config::FleetConfig;
use otpfleet_emulator::{FleetRun, InProcessTransport, RunOptions, reference, run_fleet};
use otpfleet_protocol::{ErrorCode, RouteId};
use otpfleet_server::{ServerConfig, TokioClock};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The reference server, broken on purpose when `broken`: a redemption refused as
/// `otp_already_used` is answered with the OTP's first successful redemption, and a sign-in
/// refused as `credentials_already_issued` with the request's first credentials.
#[derive(Clone)]
struct Broken {
    inner: InProcessTransport,
    broken: bool,
    /// First successful answers, by OTP (redeem) or by path (sign-in).
    first: Arc<Mutex<HashMap<String, Answer>>>,
}

impl Transport for Broken {
    async fn send(&self, req: ApiRequest) -> Result<Answer, TransportError> {
        let key = match req.route {
            Some(RouteId::Redeem) => serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|b| b["otp"].as_str().map(str::to_owned)),
            Some(RouteId::SignIn) => Some(req.path.clone()),
            _ => None,
        };
        let answer = self.inner.send(req).await?;
        let Some(key) = key.filter(|_| self.broken) else {
            return Ok(answer);
        };
        let mut first = self.first.lock();
        if answer.ok() {
            first.entry(key).or_insert_with(|| answer.clone());
            return Ok(answer);
        }
        let replayable = matches!(
            answer.error(),
            Some(ErrorCode::OtpAlreadyUsed | ErrorCode::CredentialsAlreadyIssued)
        );
        match first.get(&key) {
            Some(earlier) if replayable => Ok(Answer {
                sent: answer.sent,
                ..earlier.clone()
            }),
            _ => Ok(answer),
        }
    }

    fn describe(&self) -> String {
        "a server that breaks its promises".into()
    }
}

async fn run(cfg: FleetConfig, broken: bool) -> FleetRun {
    let clock = Arc::new(TokioClock::new(1_795_248_000_000));
    let config = ServerConfig {
        poll_interval_s: 1,
        ..ServerConfig::default()
    };
    let (app, token) = reference::app(config, clock);
    let transport = Broken {
        inner: InProcessTransport::new(app),
        broken,
        first: Arc::default(),
    };
    run_fleet(cfg, transport, &token, RunOptions::default())
        .await
        .expect("the fleet runs")
}

fn racing(consoles: u64) -> FleetConfig {
    let mut cfg = quick(consoles, 11);
    cfg.rates.race = rate(0.2);
    cfg.rates.double_sign_in = rate(0.2);
    cfg
}

#[tokio::test(start_paused = true)]
async fn the_reference_server_keeps_its_promises_under_races() {
    let cfg = racing(300);
    let profiles = otpfleet_emulator::profiles(&cfg);
    assert!(profiles.iter().filter(|p| p.race).count() > 30);
    assert!(profiles.iter().filter(|p| p.double_sign_in).count() > 30);
    let run = run(cfg, false).await;
    let r = &run.report;
    assert!(r.complete, "{:?}", r.stopped_because);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.outcomes.total(), 300);
}

#[tokio::test(start_paused = true)]
async fn a_broken_server_is_caught_with_the_consoles_involved() {
    let run = run(racing(300), true).await;
    let r = &run.report;
    let kinds: Vec<&str> = r.violations.iter().map(|v| v.kind.as_str()).collect();
    assert!(kinds.contains(&"otp_redeemed_twice"), "{kinds:?}");
    assert!(kinds.contains(&"credentials_handed_twice"), "{kinds:?}");
    let twice = r
        .violations
        .iter()
        .find(|v| v.kind == "otp_redeemed_twice")
        .expect("a double redemption");
    assert_eq!(twice.serials.len(), 2, "{twice:?}");
    assert_eq!(format!("{}-T", twice.serials[0]), twice.serials[1]);
    let serials: Vec<&str> = run.consoles.iter().map(|c| c.serial.as_str()).collect();
    assert!(serials.contains(&twice.serials[0].as_str()));
}
