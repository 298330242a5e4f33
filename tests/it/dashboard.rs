//! `fleet --dashboard`: the event stream counts up to the fleet and ends with report.json's
//! outcomes; and Debian's headless Chromium, driven over its DevTools protocol, sees the page
//! update while the run goes, and takes a screenshot of it.

use crate::{otpfleet, read_report};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts `args` (a command given `--dashboard`); answers it, the dashboard's address (from
/// the `<command>: dashboard on` line) and its stderr lines.
fn with_dashboard(args: &[&str], out: &std::path::Path) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = otpfleet()
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::stderr_lines(&mut child);
    let printed = format!("{}: dashboard on ", args[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && let Some(url) = line.strip_prefix(&printed)
        {
            let addr = url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            return (child, addr, rx);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the dashboard's address was not printed");
}

/// Starts a fleet with a dashboard; answers it, the dashboard's address and its stderr lines.
fn fleet_with_dashboard(
    out: &std::path::Path,
    window_ms: &str,
) -> (Child, String, mpsc::Receiver<String>) {
    let args = ["fleet", "--consoles", "400", "--seed", "8", "--quiet"];
    let more = [
        "--arrival-window-ms",
        window_ms,
        "--dashboard",
        "127.0.0.1:0",
    ];
    with_dashboard(&[&args[..], &more[..]].concat(), out)
}

/// The dashboard's event stream read to its last event (`done`).
fn events(addr: &str) -> Vec<Value> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut events: Vec<Value> = Vec::new();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(data) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            let done = event["done"] == true;
            events.push(event);
            if done {
                break;
            }
        }
    }
    events
}

/// The `ended` counts of `events`, which only grow, the first below `total`.
fn ended_counts_grow(events: &[Value], total: u64) {
    assert!(events.len() >= 2, "{} events", events.len());
    let ended: Vec<u64> = events
        .iter()
        .map(|e| e["ended"].as_u64().unwrap())
        .collect();
    assert!(
        ended.windows(2).all(|w| w[0] <= w[1]),
        "counts only grow: {ended:?}"
    );
    assert!(
        ended[0] < total,
        "the stream began while the run went: {ended:?}"
    );
}

#[test]
fn the_event_stream_counts_up_and_ends_with_the_reports_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (mut child, addr, _stderr) = fleet_with_dashboard(&out, "4000");
    let events = events(&addr);
    assert!(child.wait().unwrap().success());
    ended_counts_grow(&events, 400);
    let due: Vec<u64> = events
        .iter()
        .map(|e| e["arrivals"]["due"].as_u64().unwrap())
        .collect();
    assert!(due.windows(2).all(|w| w[0] <= w[1]), "{due:?}");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "fleet");
    assert_eq!(last["done"], true, "the last event says the run is over");
    assert_eq!(last["ended"], 400);
    assert_eq!(last["arrivals"]["due"], 400, "every installer was due");
    assert_eq!(last["arrivals"]["arrived"], 400, "and arrived");
    let report = read_report(&out);
    assert_eq!(
        last["outcomes"], report["outcomes"],
        "the last event is the report's"
    );
    assert!(last["report"].as_str().unwrap().ends_with("report.html"));
}

#[test]
fn a_load_runs_page_ends_with_the_reports_outcomes_and_requests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = ["load", "--scenario", "mixed", "--seed", "3", "--users", "8"];
    let more = ["--run-time", "4s", "--dashboard", "--dashboard-port", "0"];
    let (mut child, addr, _stderr) = with_dashboard(&[&args[..], &more[..]].concat(), &out);
    let events = events(&addr);
    assert!(child.wait().unwrap().success());
    assert!(events.len() >= 3, "{} events", events.len());
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "load");
    assert_eq!(last["scenario"], "mixed");
    assert_eq!(last["done"], true);
    let report = read_report(&out);
    assert_eq!(
        last["outcomes"], report["outcomes"],
        "the report's outcomes"
    );
    let steps = report["throughput"]["steps"].as_object().unwrap();
    assert!(steps.len() >= 3, "{steps:?}");
    for (step, t) in steps {
        assert_eq!(
            last["steps"][step]["requests"], t["requests"],
            "requests of {step}"
        );
    }
}

#[test]
fn a_rehearsals_page_shows_the_simulated_clock_and_ends_with_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let plan = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/rollouts/national-5000.toml"
    );
    let args = ["rehearse", "--plan", plan];
    let more = ["--seed", "4", "--no-suggest", "--quiet", "--dashboard"];
    let (mut child, addr, _stderr) = with_dashboard(&[&args[..], &more[..]].concat(), &out);
    let events = events(&addr);
    assert!(child.wait().unwrap().success());
    ended_counts_grow(&events, 5_000);
    let hours: Vec<u64> = events
        .iter()
        .filter_map(|e| e["simulated"]["hour"].as_u64())
        .collect();
    assert!(hours.windows(2).all(|w| w[0] <= w[1]), "{hours:?}");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "rehearsal");
    let report = read_report(&out);
    assert_eq!(last["outcomes"], report["outcomes"]);
    assert_eq!(
        last["timeline"], report["timeline"],
        "the report's timeline"
    );
    let hour = report["timeline"].as_array().unwrap().last().unwrap()["hour"].clone();
    assert_eq!(last["simulated"]["hour"], hour, "the clock at the end");
}

/// A browser over the DevTools protocol: one tab's WebSocket.
struct Tab(tungstenite::WebSocket<std::net::TcpStream>, u64);

impl Tab {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.1 += 1;
        let id = self.1;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.0
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let reply: Value = match self.0.read().unwrap() {
                tungstenite::Message::Text(t) => serde_json::from_str(&t).unwrap(),
                _ => continue,
            };
            if reply["id"] == id {
                return reply["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }
}

/// `GET /json/list` of Chromium's DevTools server, read to its Content-Length (the server keeps
/// the connection open).
fn get_json_list(devtools: &str) -> String {
    let mut http = BufReader::new(std::net::TcpStream::connect(devtools).unwrap());
    write!(
        http.get_mut(),
        "GET /json/list HTTP/1.1\r\nHost: {devtools}\r\n\r\n"
    )
    .unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        http.read_line(&mut header).unwrap();
        let header = header.trim();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    http.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// Debian's headless Chromium showing `http://{addr}/`, with its tab's DevTools connection and
/// its profile folder (kept while the browser runs).
fn open_in_chromium(browser: &str, addr: &str) -> (Child, Tab, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let mut chrome = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args([
            "--hide-scrollbars",
            "--window-size=1280,1100",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{addr}/"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(chrome.stderr.take().unwrap());
    let mut line = String::new();
    let devtools = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "Chromium printed no DevTools address"
        );
        if let Some(ws) = line.trim().strip_prefix("DevTools listening on ws://") {
            break ws.split('/').next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = stderr.read_to_string(&mut sink);
    });
    let targets: Value = serde_json::from_str(&get_json_list(&devtools)).unwrap();
    let page = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page" && t["url"].as_str().unwrap_or("").contains(addr))
        .expect("the dashboard's tab");
    let ws_url = page["webSocketDebuggerUrl"].as_str().unwrap();
    let stream = std::net::TcpStream::connect(&devtools).unwrap();
    let (socket, _) = tungstenite::client::client(ws_url, stream).unwrap();
    (chrome, Tab(socket, 0), profile)
}

/// Debian's Chromium, or none (the test is skipped, unless CI says it must run).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("OTPFLEET_REQUIRE_CHROMIUM").is_none(),
            "OTPFLEET_REQUIRE_CHROMIUM is set but Chromium is missing (Debian: apt-get install chromium)"
        );
        crate::skipped(
            "Chromium is not installed (CI installs it and sets OTPFLEET_REQUIRE_CHROMIUM)",
        );
    }
    found
}

/// Microseconds as the page writes them (its `us`).
fn page_us(v: u64) -> String {
    match v {
        1_000_000.. => format!("{:.2} s", (v as f64 / 1e4).round() / 100.0),
        10_000.. => format!("{} ms", (v as f64 / 1000.0).round()),
        1_000.. => format!("{:.1} ms", (v as f64 / 100.0).round() / 10.0),
        _ => format!("{v} µs"),
    }
}

/// A number as the page shows it (`1,234`, `12.5`), read back.
fn shown_number(text: &Value) -> f64 {
    text.as_str()
        .unwrap_or_default()
        .replace(',', "")
        .parse()
        .unwrap_or(f64::NAN)
}

/// Connected 10 s into a run, headless Chromium draws the run from its first second (requests
/// per second and each step's p99 over time, axes labelled in their units); once the run is
/// over the page says finished and shows report.json's totals, and keeps them after the process
/// has gone. A screenshot of the live page is written for the README.
#[test]
fn a_browser_that_connects_late_sees_the_whole_run_and_then_its_totals() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = ["fleet", "--consoles", "1200", "--seed", "8", "--quiet"];
    let more = ["--arrival-window-ms", "16000", "--dashboard", "127.0.0.1:0"];
    let (mut fleet, addr, _stderr) = with_dashboard(&[&args[..], &more[..]].concat(), &out);
    std::thread::sleep(Duration::from_secs(10));
    let (mut chrome, mut tab, _profile) = open_in_chromium(browser, &addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tab
        .eval("Number(document.body.dataset.updates)")
        .as_u64()
        .unwrap_or(0)
        < 2
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(300));
    }
    let texts = |tab: &mut Tab, selector: &str| -> Vec<String> {
        let js = format!("[...document.querySelectorAll({selector:?})].map(e => e.textContent)");
        serde_json::from_value(tab.eval(&js)).unwrap_or_default()
    };
    let first_t = tab.eval("trail.length ? trail[0].t : null");
    let rps_points = tab.eval(
        "(document.querySelector('#rps-chart polyline')?.getAttribute('points') || '').split(' ').length",
    );
    let rps_y = texts(&mut tab, "#rps-chart text.tick.y");
    let rps_x = texts(&mut tab, "#rps-chart text.tick.x");
    let latency_lines = tab.eval("document.querySelectorAll('#latency-chart polyline').length");
    let latency_y = texts(&mut tab, "#latency-chart text.tick.y");
    let legend = texts(&mut tab, "#latency-legend span");
    let shot = tab.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    assert!(fleet.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tab.eval("document.getElementById('state').textContent") != "finished"
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    // The process has exited: what the page shows now is what it keeps.
    let state = tab.eval("document.getElementById('state').textContent");
    let steps: Vec<Vec<String>> = serde_json::from_value(tab.eval(
        "[...document.querySelectorAll('#steps tr')].map(r => [...r.children].map(c => c.textContent))",
    ))
    .unwrap();
    let outcomes: Vec<Vec<String>> = serde_json::from_value(tab.eval(
        "[...document.querySelectorAll('#outcomes tr')].map(r => [...r.children].map(c => c.textContent))",
    ))
    .unwrap();
    let rps = tab.eval("document.getElementById('rps').textContent");
    let outcomes_title = tab.eval("document.getElementById('outcomes-title').textContent");
    let _ = chrome.kill();
    let _ = chrome.wait();

    let first_t = first_t.as_f64().expect("a history");
    assert!(
        first_t <= 1.5,
        "the charts start at the run's first second: {first_t}"
    );
    assert!(
        rps_points.as_u64().unwrap_or(0) >= 8,
        "points from the start: {rps_points}"
    );
    assert!(
        rps_y.len() >= 3 && rps_y.iter().all(|t| t.ends_with("/s")),
        "{rps_y:?}"
    );
    assert!(
        rps_x.len() >= 3 && rps_x.iter().all(|t| t.ends_with(" s")),
        "{rps_x:?}"
    );
    assert!(latency_lines.as_u64().unwrap_or(0) >= 3, "{latency_lines}");
    // Durations on a log axis; past a second of latency (a busy machine: CI met it) in seconds.
    assert!(
        latency_y.len() >= 3
            && latency_y
                .iter()
                .all(|t| t.ends_with("µs") || t.ends_with("ms") || t.ends_with(" s")),
        "{latency_y:?}"
    );
    assert!(legend.iter().any(|l| l == "redeem p99"), "{legend:?}");

    let report = read_report(&out);
    assert_eq!(state, "finished");
    assert_eq!(outcomes_title, "Outcomes");
    assert_eq!(
        shown_number(&rps),
        (report["throughput"]["rps"].as_f64().unwrap() * 10.0).round() / 10.0
    );
    let reported = report["outcomes"].as_object().unwrap();
    assert_eq!(outcomes.len(), reported.len());
    for row in &outcomes {
        let n = reported[&row[0]].as_f64().unwrap();
        assert_eq!(
            shown_number(&Value::from(row[1].clone())),
            n,
            "outcome {}",
            row[0]
        );
    }
    let throughput = report["throughput"]["steps"].as_object().unwrap();
    assert_eq!(steps.len(), throughput.len(), "{steps:?}");
    assert_eq!(steps[0][0], "issue", "steps in the flow's order: {steps:?}");
    for row in &steps {
        let t = &throughput[&row[0]];
        assert_eq!(
            shown_number(&Value::from(row[1].clone())),
            t["requests"].as_f64().unwrap(),
            "requests of {}",
            row[0]
        );
        let service = &report["latency_us"][&row[0]]["service"];
        for (col, q) in [(5, "p50"), (6, "p99")] {
            assert_eq!(
                row[col],
                page_us(service[q].as_u64().unwrap()),
                "{q} of {row:?}"
            );
        }
    }

    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = std::env::var_os("OTPFLEET_DASHBOARD_SCREENSHOT").map_or_else(
        || dir.path().join("dashboard.png"),
        std::path::PathBuf::from,
    );
    std::fs::write(&path, png).unwrap();
    eprintln!("dashboard screenshot: {}", path.display());
}

#[test]
fn headless_chromium_draws_a_rehearsals_clock_and_timeline() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The shipped national plan with three times its consoles: long enough (some seconds) for
    // the browser to start while it runs.
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/rollouts/national-5000.toml"
    );
    let text = std::fs::read_to_string(shipped).unwrap();
    let text = text
        .replace("consoles = 1500", "consoles = 4500")
        .replace("consoles = 2000", "consoles = 6000");
    let plan = dir.path().join("national-15000.toml");
    std::fs::write(&plan, text).unwrap();
    let plan = plan.to_str().unwrap();
    let args = ["rehearse", "--plan", plan, "--seed", "4", "--no-suggest"];
    let (mut rehearsal, addr, _stderr) = with_dashboard(
        &[&args[..], &["--quiet", "--dashboard"]].concat(),
        &dir.path().join("run"),
    );
    let (mut chrome, mut tab, _profile) = open_in_chromium(browser, &addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut drawn = Value::Null;
    while drawn != true && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        drawn = tab.eval(
            "document.getElementById('timeline').innerHTML.includes('polyline') && \
             !document.getElementById('sim-card').hidden",
        );
    }
    let title = tab.eval("document.getElementById('title').textContent");
    let clock = tab.eval("document.getElementById('sim').textContent");
    let _ = chrome.kill();
    let _ = chrome.wait();
    assert!(rehearsal.wait().unwrap().success());
    assert_eq!(drawn, true, "the timeline is drawn and the clock shown");
    assert_eq!(title, "otpfleet rehearsal");
    assert!(
        clock.as_str().is_some_and(|c| c.starts_with("day ")),
        "the simulated clock: {clock}"
    );
}
