//! `otpfleet load`: each goose scenario runs a few seconds against a port-0 reference server
//! with successful requests and no failure, its run folder holds goose's reports beside a
//! report.json that validates and compares, a `--fleet` runs beside it, goose's options keep
//! their meaning, and a threshold that cannot be met makes the command exit non-zero.

use crate::otpfleet;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// A short run: 4 users started at once, 3 s after that, no telnet controller (tests run side
/// by side and goose's port is fixed), goose's console output at warnings.
fn load(scenario: &str, out: &Path, extra: &[&str]) -> Output {
    otpfleet()
        .args(["load", "--scenario", scenario, "--seed", "3"])
        .args(["--no-telnet", "-q", "-u", "4", "-t", "3s"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `scenario` and checks what every clean run must show; answers its report.json.
fn clean_run(scenario: &str, out: &Path, measured: &[&str], extra: &[&str]) -> Value {
    let o = load(scenario, out, extra);
    assert!(o.status.success(), "{}", text(&o));
    let report = read_json(&out.join("report.json"));
    let goose = &report["config"]["goose_summary"];
    assert!(
        goose["requests"].as_u64().unwrap() > 0,
        "{goose}\n{}",
        text(&o)
    );
    assert_eq!(goose["failures"], 0, "{goose}\n{}", text(&o));
    assert_eq!(report["errors"], serde_json::json!({}), "{}", text(&o));
    assert_eq!(report["kind"], "load");
    assert_eq!(
        report["config"]["coordinated_omission"]["goose_co_mitigation"], "Disabled",
        "mitigation is off by default (deliberate pauses are not stalls) and the report says so"
    );
    for step in measured {
        let count = report["latency_us"][step]["service"]["count"]
            .as_u64()
            .unwrap_or(0);
        assert!(count > 0, "{step} was measured: {}", report["latency_us"]);
        assert_eq!(
            report["throughput"]["steps"][step]["requests"].as_u64(),
            Some(count),
            "one count per request"
        );
        assert!(
            out.join(format!("{step}.service.hlog")).exists(),
            "{step}.service.hlog"
        );
    }
    for file in [
        "goose-report.html",
        "goose-report.json",
        "report.md",
        "report.html",
    ] {
        assert!(out.join(file).exists(), "{file} is in the run folder");
    }
    let outcomes: u64 = report["outcomes"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(outcomes, report["consoles"].as_u64().unwrap());
    assert_eq!(report["outcomes"]["expired"], 0, "no OTP expires in a run");
    assert_eq!(crate::schema_problems(&report), Vec::<String>::new());
    report
}

#[test]
fn issue_runs_clean_beside_a_background_fleet_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("issue");
    clean_run(
        "issue",
        &out,
        &["review", "issue", "export"],
        &["--fleet", "20"],
    );
    let fleet = read_json(&out.join("fleet/report.json"));
    assert_eq!(fleet["kind"], "fleet");
    assert_eq!(fleet["consoles"], 20);
    let o = otpfleet()
        .args(["report", "compare"])
        .args([&out, &out])
        .arg("--max-regression")
        .arg("p99=10%")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("| review |"),
        "{}",
        text(&o)
    );
}

#[test]
fn redeem_runs_clean_and_consoles_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("redeem");
    let report = clean_run(
        "redeem",
        &out,
        &["verify", "redeem", "poll", "sign_in"],
        &[],
    );
    assert!(report["outcomes"]["signed_in_otp"].as_u64().unwrap() > 0);
    assert_eq!(
        report["faults"]["slow_downs"], 0,
        "consoles poll at the interval given"
    );
    assert!(report["time_to_signed_in_s"]["p50"].as_f64().unwrap() >= 0.9);
    let setup = &report["config"]["setup"];
    assert!(setup["console_tickets_used"].as_u64() <= setup["console_tickets"].as_u64());
}

#[test]
fn approve_runs_clean_with_the_queue_fed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("approve");
    let report = clean_run(
        "approve",
        &out,
        &["list_requests", "approve"],
        &["--tickets", "20000"],
    );
    let harness = &report["config"]["harness"];
    assert!(harness["fed"].as_u64().unwrap() > 0, "{harness}");
    assert_eq!(
        harness["already_decided"], 0,
        "our admins never race each other: {harness}"
    );
}

#[test]
fn mixed_runs_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mixed");
    let report = clean_run("mixed", &out, &["verify", "redeem", "list_requests"], &[]);
    assert_eq!(report["config"]["scenario"], "mixed");
}

#[test]
fn a_threshold_that_cannot_be_met_exits_non_zero_with_every_report_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("threshold");
    let o = load("issue", &out, &["--threshold", "p99<1us"]);
    assert_eq!(o.status.code(), Some(1), "a breach exits 1: {}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("threshold") && stderr.contains("p99<1us"),
        "{}",
        text(&o)
    );
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["config"]["goose_thresholds"][0]["passed"], false);
    // goose's verdict is a verdict of the run like any other: in report.json and report.md.
    let verdict = &report["thresholds"][0];
    assert_eq!(
        (
            &verdict["threshold"],
            &verdict["name"],
            &verdict["unit"],
            &verdict["passed"]
        ),
        (
            &"p99<1us".into(),
            &"p99".into(),
            &"ms".into(),
            &false.into()
        ),
        "{verdict}"
    );
    assert!(
        verdict["observed"].as_f64().is_some_and(|v| v > 0.0),
        "{verdict}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Thresholds") && md.contains("| `p99<1us` | p99 |"),
        "{md}"
    );
    let problems = crate::schema_problems(&report);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(out.join("goose-report.html").exists());
}

#[test]
fn goose_options_keep_their_names_and_bad_ones_are_refused() {
    let o = otpfleet().args(["load", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--scenario",
        "--target",
        "--fleet",
        "--users",
        "--increase-rate",
        "--run-time",
        "--report-file",
        "--threshold",
        "--co-mitigation",
    ] {
        assert!(help.contains(flag), "{flag} in load --help:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["-H", "http://127.0.0.1:9"], "--target"),
        (&["--run-time", "0"], "--run-time"),
        (&["--co-mitigation", "sometimes"], "--co-mitigation"),
        (&["-u", "0"], "--users 0"),
        (&["--threshold", "p99<<1ms"], "--threshold \"p99<<1ms\""),
    ];
    for (args, named) in cases {
        let o = otpfleet()
            .args(["load", "--scenario", "issue", "--no-telnet", "--out"])
            .arg(dir.path().join("refused"))
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(named),
            "{args:?}: {}",
            text(&o)
        );
    }
    let o = otpfleet()
        .args(["load", "--scenario", "nope"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("issue, redeem, approve, mixed"));
}

/// A scenario of known size: 2 issue admins, 3 iterations each, 3 requests an iteration
/// (review, generate, export). Requests per second are the real requests over the run's
/// measured time; with coordinated-omission correction on, synthetic samples are counted apart
/// and are not requests.
#[test]
fn requests_per_second_count_real_requests_only() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("plain", &[][..]),
        ("mitigated", &["--co-mitigation", "average"][..]),
    ] {
        let out = dir.path().join(name);
        let o = otpfleet()
            .args([
                "load",
                "--scenario",
                "issue",
                "--seed",
                "3",
                "--no-telnet",
                "-q",
            ])
            .args(["-u", "2", "--iterations", "3"])
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let report = read_json(&out.join("report.json"));
        let t = &report["throughput"];
        assert_eq!(t["requests"], 18, "{name}: {t}");
        for step in ["review", "issue", "export"] {
            assert_eq!(t["steps"][step]["requests"], 6, "{name} {step}: {t}");
        }
        let measured = t["measured_s"].as_f64().unwrap();
        assert_eq!(measured, report["duration_s"].as_f64().unwrap());
        let rps = t["rps"].as_f64().unwrap();
        assert!(
            (rps - 18.0 / measured).abs() <= 0.05,
            "{name}: {rps} vs 18 / {measured}"
        );
        let synthetic: u64 = ["review", "issue", "export"]
            .iter()
            .filter_map(|s| t["steps"][s]["synthetic"].as_u64())
            .sum();
        let response: u64 = ["review", "issue", "export"]
            .iter()
            .map(|s| {
                report["latency_us"][s]["response"]["count"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        assert_eq!(
            response,
            18 + synthetic,
            "{name}: synthetic samples are in the response view only"
        );
        if name == "plain" {
            assert_eq!(synthetic, 0, "no correction unless asked");
        }
    }
}

/// SIGINT (taken by goose's own handler) and SIGTERM (ours) stop an attack started in the
/// background of a script: every report is written, report.json says interrupted, and the
/// command exits 128 + the signal.
#[test]
fn an_interrupted_load_says_so_and_exits_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = dir.path().join(signal);
        let (status, stderr) = crate::signalled(
            &[
                "load",
                "--scenario",
                "redeem",
                "--seed",
                "3",
                "--no-telnet",
                "-q",
                "-u",
                "4",
                "-t",
                "60s",
                "--out",
                out.to_str().unwrap(),
            ],
            signal,
            std::time::Duration::from_secs(5),
        );
        assert_eq!(status, code, "SIG{signal}: {stderr}");
        let report = read_json(&out.join("report.json"));
        assert_eq!(report["complete"], false, "{stderr}");
        assert_eq!(report["stopped_because"], "interrupted");
        assert!(report["meta"]["goose_options"].is_object());
        let problems = crate::schema_problems(&report);
        assert!(problems.is_empty(), "{problems:?}");
    }
}

/// Goose's telnet controller, open by default on 127.0.0.1:5116 with no authentication, once let
/// a local user send `stop`, `host http://127.0.0.1:<theirs>`, `start` and receive the run's
/// requests with the target's admin token: no controller listens unless asked for, and none is
/// accepted beside a real target's token.
#[test]
fn no_goose_controller_listens_unless_asked_and_none_beside_a_targets_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = otpfleet()
        .args(["load", "--scenario", "issue", "--seed", "3", "-q"])
        .args(["-u", "2", "-t", "3s", "--out"])
        .arg(dir.path().join("run"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reached = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for port in [5116, 5117] {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                reached.push(port);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(child.wait().unwrap().success());
    assert!(reached.is_empty(), "a controller answered on {reached:?}");

    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let o = otpfleet()
        .args([
            "load",
            "--target",
            "http://127.0.0.1:9",
            "--admin-token-file",
        ])
        .arg(&token)
        .args(["--telnet-port", "6116"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no authentication"), "{}", text(&o));
}
