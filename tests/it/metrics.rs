//! `fleet --metrics-listen`: scrapes during a run parse with a Prometheus text parser nobody
//! here wrote (the `prometheus-parse` crate), and the last one, served after the run for
//! `--metrics-linger-s`, equals report.json's counts.

use crate::{otpfleet, read_report};
use prometheus_parse::{Sample, Scrape, Value};
use std::io::Read as _;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn scrape(url: &str) -> Option<Scrape> {
    let addr = url.strip_prefix("http://")?.split('/').next()?;
    // hyper sends a known length for a full body: no chunks to undo.
    let body = get(addr, "/metrics")?;
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    Some(Scrape::parse(lines).expect("the exposition parses"))
}

fn value(scrape: &Scrape, metric: &str, label: (&str, &str)) -> f64 {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .collect();
    match found.as_slice() {
        [s] => match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{metric}: {other:?}"),
        },
        [] => 0.0,
        more => panic!("{metric} {label:?}: {} samples", more.len()),
    }
}

#[test]
fn scrapes_parse_and_the_last_equals_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = otpfleet()
        .args(["fleet", "--consoles", "300", "--seed", "5", "--quiet"])
        .args([
            "--arrival-window-ms",
            "3000",
            "--typo-rate",
            "0.1",
            "--reject-rate",
            "0.1",
        ])
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger-s",
            "30",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut url = None;
    let mut during = 0;
    let mut lingering = false;
    while !lingering && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.starts_with("fleet: metrics on ") => {
                url = Some(line["fleet: metrics on ".len()..].to_owned());
            }
            Ok(line) if line.contains("serving the final metrics") => lingering = true,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(url) = &url
                    && scrape(url).is_some()
                {
                    during += 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(lingering, "the run ended and lingered");
    let last = scrape(url.as_deref().unwrap()).expect("a scrape after the run");
    let _ = child.kill();
    let _ = child.wait();
    assert!(during >= 2, "scraped while it ran: {during}");
    let report = read_report(&out);
    for (outcome, n) in report["outcomes"].as_object().unwrap() {
        let got = value(&last, "otpfleet_fleet_consoles_total", ("outcome", outcome));
        assert_eq!(got, n.as_f64().unwrap(), "outcome {outcome}");
    }
    for (fault, n) in report["faults"].as_object().unwrap() {
        let got = value(&last, "otpfleet_fleet_faults_total", ("fault", fault));
        assert_eq!(got, n.as_f64().unwrap(), "fault {fault}");
    }
    let steps = report["throughput"]["steps"].as_object().unwrap();
    assert!(steps.len() >= 5);
    for (step, t) in steps {
        let got = value(&last, "otpfleet_fleet_requests_total", ("step", step));
        assert_eq!(got, t["requests"].as_f64().unwrap(), "requests of {step}");
        let count = last
            .samples
            .iter()
            .find(|s| {
                s.metric == "otpfleet_fleet_request_duration_seconds"
                    && s.labels.get("step") == Some(step)
                    && s.labels.get("view") == Some("service")
            })
            .map(|s| match &s.value {
                Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                other => panic!("{other:?}"),
            });
        let reported = report["latency_us"][step]["service"]["count"]
            .as_f64()
            .unwrap_or(0.0);
        assert_eq!(count.unwrap_or(0.0), reported, "histogram of {step}");
    }
}

/// Debian's Prometheus, or none (the test is skipped, unless CI says it must run).
fn prometheus() -> Option<&'static str> {
    let found = std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("OTPFLEET_REQUIRE_PROMETHEUS").is_none(),
            "OTPFLEET_REQUIRE_PROMETHEUS is set but Prometheus is missing (Debian: apt-get install prometheus)"
        );
        crate::skipped(
            "Prometheus is not installed (CI installs it and sets OTPFLEET_REQUIRE_PROMETHEUS)",
        );
    }
    found.then_some("prometheus")
}

/// `GET path` of a local HTTP server, the body (read to the end of a closed connection).
fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A free port on the loopback address (free when asked: Prometheus binds it a moment later).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A real Prometheus scraping a fleet computes redeem's service p99 with `histogram_quantile`
/// within 5% of report.json's exact p99: the buckets are fine enough for sub-millisecond steps.
#[test]
fn a_real_prometheus_reads_the_reports_p99_within_5_percent() {
    let Some(prometheus) = prometheus() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut fleet = otpfleet()
        .args(["fleet", "--consoles", "1500", "--seed", "6", "--quiet"])
        .args([
            "--arrival-window-ms",
            "6000",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-linger-s", "60", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::stderr_lines(&mut fleet);
    let metrics = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the metrics address");
        if let Some(url) = line.strip_prefix("fleet: metrics on http://") {
            break url.trim_end_matches("/metrics").to_owned();
        }
    };
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fleet\n    \
             static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut server = std::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lingering = false;
    while !lingering && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lingering = line.contains("serving the final metrics");
        }
    }
    // Two scrape intervals more: Prometheus holds the final figures.
    std::thread::sleep(Duration::from_secs(3));
    let query = "histogram_quantile(0.99,otpfleet_fleet_request_duration_seconds_bucket\
                 {step=\"redeem\",view=\"service\"})";
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let answer = get(&web, &format!("/api/v1/query?query={encoded}"));
    let _ = server.kill();
    let _ = server.wait();
    let _ = fleet.kill();
    let _ = fleet.wait();
    assert!(lingering, "the run ended and lingered");
    let answer: serde_json::Value =
        serde_json::from_str(&answer.expect("Prometheus answers")).unwrap();
    let seconds: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no quantile in {answer}"));
    let report = read_report(&out);
    let exact = report["latency_us"]["redeem"]["service"]["p99"]
        .as_f64()
        .unwrap()
        / 1e6;
    let off = (seconds - exact).abs() / exact;
    eprintln!(
        "redeem service p99: Prometheus {seconds} s, report.json {exact} s ({:+.1}%)",
        100.0 * (seconds - exact) / exact
    );
    assert!(
        off <= 0.05,
        "Prometheus {seconds} s vs report.json {exact} s: {:.1}% off",
        off * 100.0
    );
}
