//! `fleet --otlp-endpoint`: a collector stand-in (a small HTTP server here that decodes each
//! export with OpenTelemetry's generated OTLP types) receives the run's step histograms and
//! counters, with the run's id on the resource, and the last export equals report.json.

use crate::{otpfleet, read_report};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data, number_data_point};
use prost::Message as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

/// The exports a stand-in collector received, decoded, in order, with the paths posted to.
type Received = Arc<Mutex<Vec<(String, ExportMetricsServiceRequest)>>>;

/// A collector on 127.0.0.1:0 that takes every export (HTTP/1.1, keep-alive, a known length)
/// and answers 200 with an empty body; answers its base URL.
fn collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let store = Arc::clone(&store);
            std::thread::spawn(move || serve(stream, &store));
        }
    });
    (url, received)
}

fn serve(stream: std::net::TcpStream, store: &Received) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut length = 0;
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => value.trim().clone_into(&mut content_type),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(content_type, "application/x-protobuf");
        let export = ExportMetricsServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        store.lock().unwrap().push((path, export));
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    kv.value.as_ref()?.value.as_ref()
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn metric<'a>(export: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    export.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == name)
}

/// A counter's value for the series whose `label` is `value` (0 when it has none).
fn counter(export: &ExportMetricsServiceRequest, name: &str, label: &str, value: &str) -> i64 {
    let Some(Data::Sum(sum)) = metric(export, name).and_then(|m| m.data.as_ref()) else {
        panic!("{name} is a sum");
    };
    assert!(sum.is_monotonic, "{name} is monotonic");
    sum.data_points
        .iter()
        .find(|p| text(&p.attributes, label).as_deref() == Some(value))
        .map_or(0, |p| match p.value {
            Some(number_data_point::Value::AsInt(n)) => n,
            other => panic!("{name}: {other:?}"),
        })
}

#[test]
fn exports_reach_a_collector_with_the_step_histograms_and_the_run_id() {
    let (url, received) = collector();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = otpfleet()
        .args(["fleet", "--consoles", "200", "--seed", "8", "--quiet"])
        .args(["--arrival-window-ms", "3000", "--reject-rate", "0.1"])
        .args(["--otlp-endpoint", &url, "--otlp-interval-s", "1"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("every one taken"), "{stderr}");
    let received = received.lock().unwrap();
    assert!(
        received.len() >= 3,
        "exports during the run and at its end: {}",
        received.len()
    );
    let mut start = None;
    for (path, export) in received.iter() {
        assert_eq!(path, "/v1/metrics");
        let resource = export.resource_metrics[0].resource.as_ref().unwrap();
        let attrs = &resource.attributes;
        assert_eq!(text(attrs, "otpfleet.run.id").as_deref(), Some("8"));
        assert_eq!(text(attrs, "service.name").as_deref(), Some("otpfleet"));
        assert_eq!(text(attrs, "otpfleet.role").as_deref(), Some("all"));
        assert_eq!(
            attribute(attrs, "otpfleet.shard.count"),
            Some(&any_value::Value::IntValue(1))
        );
        let Some(Data::Sum(sum)) = metric(export, "otpfleet.fleet.requests")
            .unwrap()
            .data
            .as_ref()
        else {
            panic!("requests is a sum");
        };
        // Cumulative: every export's series start when the run started.
        for p in &sum.data_points {
            assert!(p.time_unix_nano > p.start_time_unix_nano);
            assert_eq!(
                *start.get_or_insert(p.start_time_unix_nano),
                p.start_time_unix_nano
            );
        }
    }
    let (_, last) = received.last().unwrap();
    let report = read_report(&out);
    for (outcome, n) in report["outcomes"].as_object().unwrap() {
        let got = counter(last, "otpfleet.fleet.consoles", "outcome", outcome);
        assert_eq!(got, n.as_i64().unwrap(), "outcome {outcome}");
    }
    let durations = metric(last, "otpfleet.fleet.request.duration").unwrap();
    assert_eq!(durations.unit, "s");
    let Some(Data::Histogram(histogram)) = durations.data.as_ref() else {
        panic!("request duration is a histogram");
    };
    let steps = report["throughput"]["steps"].as_object().unwrap();
    assert!(steps.len() >= 5);
    for (step, t) in steps {
        let got = counter(last, "otpfleet.fleet.requests", "step", step);
        assert_eq!(got, t["requests"].as_i64().unwrap(), "requests of {step}");
        let service = histogram
            .data_points
            .iter()
            .find(|p| {
                text(&p.attributes, "step").as_deref() == Some(step)
                    && text(&p.attributes, "view").as_deref() == Some("service")
            })
            .unwrap_or_else(|| panic!("a service histogram of {step}"));
        assert_eq!(
            service.bucket_counts.len(),
            service.explicit_bounds.len() + 1
        );
        assert_eq!(service.bucket_counts.iter().sum::<u64>(), service.count);
        let reported = report["latency_us"][step]["service"]["count"].as_u64();
        assert_eq!(service.count, reported.unwrap_or(0), "histogram of {step}");
    }
}

/// A 20-console fleet with `otlp` flags, its folder in `dir/run`, which must succeed; answers
/// its stderr.
fn small_fleet_exporting(dir: &std::path::Path, otlp: &[&str]) -> String {
    let output = otpfleet()
        .args(["fleet", "--consoles", "20", "--seed", "2", "--quiet"])
        .args(otlp)
        .arg("--out")
        .arg(dir.join("run"))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_collector_that_is_not_there_fails_no_run() {
    // A port nobody listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/metrics");
    let stderr = small_fleet_exporting(dir.path(), &["--otlp-endpoint", &url]);
    assert!(stderr.contains("OTLP exports to"), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");
    assert!(dir.path().join("run/report.json").exists());
}

#[test]
fn a_collector_that_never_answers_holds_up_nothing_for_long() {
    // Takes connections and reads nothing, answers nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().flatten().collect();
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let flags = ["--otlp-endpoint", &url, "--otlp-interval-s", "3600"];
    let stderr = small_fleet_exporting(dir.path(), &flags);
    assert!(stderr.contains("did not answer within 10s"), "{stderr}");
    // Three attempts at the final figures of 10 s each (not of the hour-long interval), a
    // second apart: a bound on a hang, not a speed target.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
}
