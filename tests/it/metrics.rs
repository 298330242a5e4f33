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
    let addr = url.strip_prefix("http://")?.split('/').next()?.to_owned();
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    use std::io::Write as _;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // The body may be chunked; hyper sends a known length for a full body.
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
