//! The harness's own doors (issue 29): its listeners hold to their bounds under a flood of idle
//! connections, and the inputs it reads are bounded by the run, not by numbers in a file.

use crate::read_report;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `otpfleet ARGS` under `prlimit LIMIT` (e.g. `--nofile=1024:1024`).
fn limited(limit: &str) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(limit).arg("--").arg(env!("CARGO_BIN_EXE_otpfleet"));
    c
}

/// Waits for the line `prefix<url>` on stderr; answers `host:port`.
fn address(rx: &std::sync::mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && let Some(url) = line.strip_prefix(prefix)
        {
            let url = url.trim_start_matches("http://");
            return url.split('/').next().unwrap().to_owned();
        }
    }
    panic!("{prefix:?} was not printed");
}

/// Whether the listener closed `stream` within `within` (it read end-of-file or a reset).
fn closed_within(stream: &mut TcpStream, within: Duration, trickle: bool) -> bool {
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if trickle && stream.write_all(b"X").is_err() {
            return true;
        }
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // an answer (a refusal) before the close
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true, // reset
        }
    }
    false
}

/// About 956 idle connections to a dashboard once ran a fleet under a 1,024 descriptor limit
/// out of file descriptors (its own accept failed and the run stopped with 2,692 of 3,000
/// consoles abandoned), and silent or trickling connections stayed open for minutes.
#[test]
fn two_thousand_idle_connections_to_each_listener_leave_the_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = limited("--nofile=1024:1024")
        .args(["fleet", "--consoles", "3000", "--seed", "9", "--quiet"])
        .args(["--arrival-window-ms", "20000"])
        .args([
            "--dashboard",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = crate::stderr_lines(&mut child);
    let metrics = address(&rx, "fleet: metrics on ");
    let dashboard = address(&rx, "fleet: dashboard on ");
    let mut held = Vec::new();
    for addr in [&metrics, &dashboard] {
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        for _ in 0..2_000 {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                held.push(s);
            }
        }
    }
    // Of the connections let in, a silent one and a trickling one are let go within the head
    // deadline (10 s), while the run goes on.
    let mut silent = TcpStream::connect(&dashboard).unwrap();
    let mut trickling = TcpStream::connect(&metrics).unwrap();
    trickling.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(15), false));
    assert!(closed_within(&mut trickling, Duration::from_secs(15), true));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still going"
    );
    let status = child.wait().unwrap();
    let log: Vec<String> = rx.try_iter().collect();
    assert!(status.success(), "{status:?}\n{}", log.join("\n"));
    let report = read_report(&out);
    assert_eq!(
        report["stopped_because"],
        serde_json::Value::Null,
        "{}",
        log.join("\n")
    );
    assert_eq!(report["outcomes"]["abandoned"], 0);
    drop(held);
}

/// A fleet run whose schedule reaches far past its end, under a 1 GiB data limit: it runs its
/// few seconds and writes a report of that size (the arrivals table spanned the schedule: a
/// replay line 3,000 years out asked for 4.8 TB, `rate:1/h` for 5 s wrote 265 MB).
#[test]
fn a_schedule_far_past_the_run_costs_what_the_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("far.csv");
    std::fs::write(&replay, "0\n100000000000\n").unwrap();
    let arrivals = [
        format!("replay:{}", replay.display()),
        "rate:0.00000001/s".to_owned(),
        "rate:1/h".to_owned(),
    ];
    for (i, arrival) in arrivals.iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let o = limited("--data=1073741824")
            .args(["fleet", "--consoles", "2", "--seed", "1", "--quiet"])
            .args(["--arrival", arrival, "--max-duration-s", "3", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{arrival}: stopped early, at 3 s\n{said}"
        );
        let size = std::fs::metadata(out.join("report.json")).unwrap().len();
        assert!(size < 200_000, "{arrival}: report.json is {size} bytes");
        let report = read_report(&out);
        let points = report["arrivals"].as_array().unwrap().len();
        assert!(
            points <= 5,
            "{arrival}: {points} arrival points for a 3 s run"
        );
    }
}

/// A rehearsal too large for the memory this process may have is refused before it starts,
/// saying how much it needs (a 10,000,000-console plan once aborted 8 s in).
#[test]
fn a_rehearsal_larger_than_the_memory_it_may_have_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios/rollouts/national-5000.toml"),
    )
    .unwrap()
    .replace("consoles = 2000", "consoles = 9997000");
    let path = dir.path().join("huge.toml");
    std::fs::write(&path, plan).unwrap();
    let started = Instant::now();
    let o = limited("--data=2147483648")
        .args(["rehearse", "--plan"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains("10000000 consoles") && said.contains("GB"),
        "{said}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused before it starts"
    );
    assert!(!dir.path().join("run").exists(), "nothing written");
}
