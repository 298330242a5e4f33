//! A fleet reaches one outcome per console, meets exactly the faults its seed chose, and
//! splits into shards that cover the whole.

use crate::harness::{quick, run};
use otpfleet_emulator::{ConsoleProfile, admin_verdict, profiles};
use otpfleet_reports::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_ends_in_one_outcome_each_with_the_faults_the_seed_chose() {
    let cfg = quick(300, 11);
    let run = run(cfg.clone()).await;
    let r = &run.report;
    assert!(r.complete, "{:?}", r.stopped_because);
    assert_eq!(r.consoles, 300);
    assert_eq!(r.outcomes.total(), 300, "{:?}", r.outcomes);
    assert_eq!(run.consoles.len(), 300);
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // What the seed chose, console by console.
    let ps = profiles(&cfg);
    let certified: Vec<&ConsoleProfile> = ps.iter().filter(|p| p.model.certified).collect();
    let otp_consoles: Vec<&&ConsoleProfile> = certified.iter().filter(|p| !p.manual).collect();
    let f = &r.faults;
    assert_eq!(
        f.uncertified,
        ps.iter().filter(|p| !p.model.certified).count() as u64
    );
    assert_eq!(
        f.hdmi_ingest_missing,
        certified.iter().filter(|p| p.hdmi_missing).count() as u64
    );
    assert_eq!(f.hdmi_recovered, f.hdmi_ingest_missing);
    assert_eq!(
        f.manual_setup,
        certified.iter().filter(|p| p.manual).count() as u64
    );
    assert_eq!(
        f.otp_typos,
        otp_consoles.iter().map(|p| u64::from(p.typos)).sum::<u64>()
    );
    let rejected = otp_consoles
        .iter()
        .filter(|p| admin_verdict(cfg.seed, &p.serial, cfg.rates.reject).is_some())
        .count() as u64;
    assert!(
        f.uncertified > 0 && f.hdmi_ingest_missing > 0 && f.otp_typos > 0 && rejected > 0,
        "the rates chose some of each"
    );

    let o = &r.outcomes;
    assert_eq!(o.verification_failed, f.uncertified);
    assert_eq!(o.signed_in_manual, f.manual_setup);
    assert_eq!(o.rejected, rejected);
    assert_eq!(o.signed_in_otp, otp_consoles.len() as u64 - rejected);
    assert_eq!((o.expired, o.abandoned), (0, 0));

    // Each console's record matches its own draw.
    for (record, p) in run.consoles.iter().zip(&ps) {
        assert_eq!(
            (record.index, &record.serial, record.typos),
            (p.index, &p.serial, p.typos)
        );
    }
    for step in ["verify", "redeem", "poll", "approve", "sign_in", "issue"] {
        let l = &r.latency_us[step];
        assert!(l.service.count > 0, "{step} was measured");
        // Every answered request is in all three views, and no view is larger than the
        // response time it is a part of.
        assert_eq!(l.response.count, l.service.count, "{step}");
        assert_eq!(l.lateness.count, l.service.count, "{step}");
        assert!(
            l.service.p50 <= l.response.p50 && l.service.max <= l.response.max,
            "{step}: {l:?}"
        );
        assert!(l.lateness.max <= l.response.max, "{step}: {l:?}");
        assert_eq!(
            r.throughput.steps[step].counts.requests, l.service.count,
            "{step}"
        );
    }
    assert!(r.time_to_signed_in_s.count == o.signed_in_otp + o.signed_in_manual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_every_console_the_same_serial_faults_and_typos() {
    let key = |run: &otpfleet_emulator::FleetRun| -> Vec<(u64, String, bool, u32, bool, Outcome)> {
        run.consoles
            .iter()
            .map(|c| {
                (
                    c.index,
                    c.serial.clone(),
                    c.hdmi_missing,
                    c.typos,
                    c.manual,
                    c.outcome,
                )
            })
            .collect()
    };
    let a = run(quick(120, 5)).await;
    let b = run(quick(120, 5)).await;
    assert_eq!(key(&a), key(&b));
    assert_eq!(a.report.faults, b.report.faults);
    assert_eq!(a.report.outcomes, b.report.outcomes);
    let c = run(quick(120, 6)).await;
    let same = key(&a)
        .iter()
        .zip(key(&c).iter())
        .filter(|(x, y)| x.1 == y.1)
        .count();
    assert!(same < 5, "another seed gives other serials ({same} equal)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_cover_exactly_the_consoles_of_the_full_run() {
    let full = quick(200, 9);
    let mut shard0 = full.clone();
    shard0.shard = "0/2".parse().expect("shard");
    let mut shard1 = full.clone();
    shard1.shard = "1/2".parse().expect("shard");
    let whole = run(full).await;
    let a = run(shard0).await;
    let b = run(shard1).await;
    let mut merged: Vec<_> = a
        .consoles
        .iter()
        .chain(&b.consoles)
        .map(|c| (c.index, c.serial.clone(), c.outcome))
        .collect();
    merged.sort();
    let expected: Vec<_> = whole
        .consoles
        .iter()
        .map(|c| (c.index, c.serial.clone(), c.outcome))
        .collect();
    assert_eq!(merged, expected);
    assert!(a.consoles.iter().all(|c| c.index % 2 == 0));
    assert_eq!(a.report.outcomes.total() + b.report.outcomes.total(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_ends_it_with_a_report_of_what_was_measured() {
    use otpfleet_client::HttpTransport;
    use otpfleet_emulator::{RunOptions, reference, run_fleet};
    use std::sync::Arc;
    use std::time::Duration;
    let mut cfg = quick(200, 13);
    cfg.timing.arrival_window_ms = 4_000;
    cfg.max_retries = 2;
    let clock = Arc::new(otpfleet_server::TokioClock::new(1_795_248_000_000));
    let server = reference::start(otpfleet_server::ServerConfig::default(), clock)
        .await
        .expect("starts");
    let transport = HttpTransport::new(&server.url(), 8, Duration::from_secs(2))
        .expect("a loopback http:// URL");
    let token = server.admin_token.clone();
    let fleet =
        tokio::spawn(async move { run_fleet(cfg, transport, &token, RunOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(server);
    let run = tokio::time::timeout(Duration::from_secs(30), fleet)
        .await
        .expect("the run ends by itself")
        .expect("no panic")
        .expect("seeding had succeeded");
    let r = &run.report;
    assert!(!r.complete);
    assert!(
        r.stopped_because
            .as_deref()
            .unwrap_or("")
            .contains("could not be reached"),
        "{:?}",
        r.stopped_because
    );
    assert_eq!(
        r.outcomes.total(),
        200,
        "every console still gets an outcome"
    );
    assert!(r.outcomes.abandoned > 0);
    assert!(
        r.latency_us["verify"].service.count > 0,
        "what was measured before is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_drives_a_stateless_route_without_errors() {
    use otpfleet_client::HttpTransport;
    use otpfleet_emulator::probe::{Pace, probe};
    use otpfleet_emulator::reference;
    use std::sync::Arc;
    use std::time::Duration;
    let clock = Arc::new(otpfleet_server::TokioClock::new(1_795_248_000_000));
    let server = reference::start(otpfleet_server::ServerConfig::default(), clock)
        .await
        .expect("starts");
    let transport = HttpTransport::new(&server.url(), 4, Duration::from_secs(5))
        .expect("a loopback http:// URL");
    let pace = Pace::Closed { workers: 4 };
    let result = probe(transport, "/healthz", pace, Duration::from_millis(300)).await;
    assert!(result.requests > 10, "{result:?}");
    assert_eq!(result.errors, 0);
    assert_eq!(result.latency.response.count, result.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_sends_at_a_fixed_rate_on_time() {
    use otpfleet_client::HttpTransport;
    use otpfleet_emulator::probe::{Pace, probe};
    use otpfleet_emulator::reference;
    use std::sync::Arc;
    use std::time::Duration;
    let clock = Arc::new(otpfleet_server::TokioClock::new(1_795_248_000_000));
    let server = reference::start(otpfleet_server::ServerConfig::default(), clock)
        .await
        .expect("starts");
    let transport = HttpTransport::new(&server.url(), 8, Duration::from_secs(5))
        .expect("a loopback http:// URL");
    let pace = Pace::Rate {
        per_s: 200.0,
        precise: true,
    };
    let result = probe(transport, "/healthz", pace, Duration::from_secs(1)).await;
    // 200 requests due over the second, each sent and answered, none dropped.
    assert_eq!(
        (result.requests, result.errors, result.dropped),
        (200, 0, 0)
    );
    let l = &result.latency;
    assert_eq!(l.response.count, 200);
    assert_eq!(l.lateness.count, 200);
    assert!(l.service.p50 <= l.response.p50, "{l:?}");
}

/// Two console shards and one admin process against one server, started together, add up to
/// the unsharded run: every console's outcome, and each request decided once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_run_adds_up_to_the_unsharded_run() {
    use otpfleet_client::HttpTransport;
    use otpfleet_emulator::config::Role;
    use otpfleet_emulator::{RunOptions, Start, reference, run_fleet};
    use otpfleet_reports::Step;
    use otpfleet_server::{ServerConfig, TokioClock};
    use std::sync::Arc;
    use std::time::Duration;

    let full = quick(150, 4);
    let whole = run(full.clone()).await;

    let clock = Arc::new(TokioClock::new(1_795_248_000_000));
    let config = ServerConfig {
        poll_interval_s: 1,
        ..ServerConfig::default()
    };
    let server = reference::start(config, clock).await.expect("starts");
    let start = Start {
        at: tokio::time::Instant::now() + Duration::from_millis(1_500),
        grace: Duration::from_secs(5),
    };
    let process = |shard: &str, role: Role, admins: u32| {
        let cfg = otpfleet_emulator::FleetConfig {
            shard: shard.parse().expect("shard"),
            role,
            admins,
            ..full.clone()
        };
        let transport = HttpTransport::new(&server.url(), 32, Duration::from_secs(10)).unwrap();
        let token = server.admin_token.clone();
        let opts = RunOptions {
            start: Some(start),
            queue_idle: Some(Duration::from_secs(1)),
            ..RunOptions::default()
        };
        tokio::spawn(async move { run_fleet(cfg, transport, &token, opts).await })
    };
    let tasks = [
        process("0/2", Role::Consoles, 0),
        process("1/2", Role::Consoles, 0),
        process("0/1", Role::Admins, 2),
    ];
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.expect("joins").expect("runs"));
    }
    let admins = &runs[2].report;
    assert_eq!(admins.consoles, 0);
    assert!(admins.complete, "{:?}", admins.stopped_because);
    let mut outcomes = Vec::new();
    for r in &runs[..2] {
        assert!(r.report.complete, "{:?}", r.report.stopped_because);
        assert_eq!(
            r.recorder.counts(Step::ListRequests).requests,
            0,
            "no admins"
        );
        outcomes.extend(r.consoles.iter().map(|c| (c.index, c.outcome)));
    }
    outcomes.sort();
    let expected: Vec<_> = whole
        .consoles
        .iter()
        .map(|c| (c.index, c.outcome))
        .collect();
    assert_eq!(outcomes, expected, "every console's outcome, as unsharded");
    let decided = |r: &otpfleet_emulator::FleetRun| {
        r.recorder.counts(Step::Approve).requests + r.recorder.counts(Step::Reject).requests
    };
    assert_eq!(
        decided(&runs[2]),
        decided(&whole),
        "each request decided once"
    );
    assert!(decided(&whole) > 0);
    let admin_errors = &admins.errors;
    assert!(admin_errors.is_empty(), "{admin_errors:?}");
}

/// A process ready after the common start and its grace does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_ready_after_the_start_and_its_grace_does_not_run() {
    use otpfleet_emulator::{RunError, RunOptions, Start, reference, run_fleet};
    use otpfleet_server::{ServerConfig, TokioClock};
    use std::sync::Arc;
    use std::time::Duration;

    let clock = Arc::new(TokioClock::new(1_795_248_000_000));
    let server = reference::start(ServerConfig::default(), clock)
        .await
        .expect("starts");
    let transport =
        otpfleet_client::HttpTransport::new(&server.url(), 4, Duration::from_secs(10)).unwrap();
    let now = tokio::time::Instant::now();
    let opts = RunOptions {
        start: Some(Start {
            at: now
                .checked_sub(Duration::from_secs(3))
                .expect("a past instant"),
            grace: Duration::from_secs(1),
        }),
        ..RunOptions::default()
    };
    let err = run_fleet(quick(20, 3), transport, &server.admin_token, opts)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, RunError::MissedStart { late_ms, grace_ms: 1_000 } if late_ms >= 3_000),
        "{err}"
    );
}
