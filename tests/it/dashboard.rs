//! `fleet --dashboard`: the event stream counts up to the fleet and ends with report.json's
//! outcomes; and Debian's headless Chromium, driven over its DevTools protocol, sees the page
//! update while the run goes, and takes a screenshot of it.

use crate::{otpfleet, read_report};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts a fleet with a dashboard; answers it, the dashboard's address and its stderr lines.
fn fleet_with_dashboard(
    out: &std::path::Path,
    window_ms: &str,
) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = otpfleet()
        .args(["fleet", "--consoles", "400", "--seed", "8", "--quiet"])
        .args([
            "--arrival-window-ms",
            window_ms,
            "--dashboard",
            "127.0.0.1:0",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && let Some(url) = line.strip_prefix("fleet: dashboard on ")
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

#[test]
fn the_event_stream_counts_up_and_ends_with_the_reports_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (mut child, addr, _stderr) = fleet_with_dashboard(&out, "4000");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
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
    assert!(child.wait().unwrap().success());
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
        ended[0] < 400,
        "the stream began while the run went: {ended:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["done"], true, "the last event says the run is over");
    assert_eq!(last["ended"], 400);
    let report = read_report(&out);
    assert_eq!(
        last["outcomes"], report["outcomes"],
        "the last event is the report's"
    );
    assert!(last["report"].as_str().unwrap().ends_with("report.html"));
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

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn headless_chromium_sees_the_page_update_and_screenshots_it() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("OTPFLEET_REQUIRE_CHROMIUM").is_none(),
            "OTPFLEET_REQUIRE_CHROMIUM is set but Chromium is missing (Debian: apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED: Chromium is not installed (CI installs it and sets OTPFLEET_REQUIRE_CHROMIUM)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut fleet, addr, _stderr) = fleet_with_dashboard(&dir.path().join("run"), "9000");
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
        .find(|t| t["type"] == "page" && t["url"].as_str().unwrap_or("").contains(&addr))
        .expect("the dashboard's tab");
    let ws_url = page["webSocketDebuggerUrl"].as_str().unwrap();
    let stream = std::net::TcpStream::connect(&devtools).unwrap();
    let (socket, _) = tungstenite::client::client(ws_url, stream).unwrap();
    let mut tab = Tab(socket, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut updates = 0;
    while updates < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        updates = tab
            .eval("Number(document.body.dataset.updates)")
            .as_u64()
            .unwrap_or(0);
    }
    let ended = tab.eval("document.getElementById('ended').textContent");
    let shot = tab.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let _ = chrome.kill();
    let _ = chrome.wait();
    assert!(fleet.wait().unwrap().success());
    assert!(updates >= 2, "the page updated {updates} times");
    assert!(
        ended.as_str().is_some_and(|t| t != "-"),
        "figures shown: {ended}"
    );
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
    eprintln!(
        "dashboard screenshot: {} ({updates} updates seen)",
        path.display()
    );
}
