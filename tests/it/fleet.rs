//! `otpfleet fleet`: the main command runs end to end and refuses bad flags before starting.

use crate::otpfleet;

#[test]
fn a_small_fleet_runs_end_to_end_and_writes_its_run_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("run");
    let out = otpfleet()
        .args([
            "fleet",
            "--consoles",
            "80",
            "--seed",
            "42",
            "--arrival-window-ms",
            "300",
            "--quiet",
        ])
        .args([
            "--boot-ms",
            "5..20",
            "--think-ms",
            "5..20",
            "--typing-ms",
            "5..20",
            "--hdmi-fix-ms",
            "5..20",
        ])
        .args([
            "--threshold",
            "verify.service.p99<10s",
            "--threshold",
            "outcomes.abandoned<1%",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for text in [
        "service time (µs)",
        "response time (µs)",
        "generator lateness",
        "req/s",
        "ok: verify.service.p99 is",
    ] {
        assert!(stdout.contains(text), "{text}: {stdout}");
    }
    assert!(stderr.contains("seed 42"), "the seed is printed: {stderr}");
    assert!(
        stdout.contains("signed_in_otp") && stdout.contains("run folder:"),
        "{stdout}"
    );
    for file in [
        "report.json",
        "report.md",
        "consoles.csv",
        "verify.response.hlog",
        "verify.service.hlog",
        "verify.lateness.hlog",
        "redeem.service.hlog",
        "time_to_signed_in.hlog",
    ] {
        assert!(out_dir.join(file).exists(), "{file} is written");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).expect("read"))
            .expect("json");
    assert_eq!(report["seed"], 42);
    assert_eq!(report["consoles"], 80);
    let sum: u64 = report["outcomes"]
        .as_object()
        .expect("outcomes")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(sum, 80);
    for key in [
        "faults",
        "latency_us",
        "throughput",
        "over_time",
        "time_to_signed_in_s",
    ] {
        assert!(report.get(key).is_some(), "{key}");
    }
}

#[test]
fn a_breached_threshold_fails_the_run_after_its_report_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("run");
    let out = otpfleet()
        .args(["fleet", "--consoles", "20", "--seed", "5", "--quiet"])
        .args([
            "--arrival-window-ms",
            "100",
            "--boot-ms",
            "1..2",
            "--think-ms",
            "1..2",
        ])
        .args([
            "--typing-ms",
            "1..2",
            "--threshold",
            "verify.service.p50<1us",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BREACHED: verify.service.p50"), "{stdout}");
    assert!(
        out_dir.join("report.json").exists(),
        "the report is written first"
    );
}

#[test]
fn bad_flags_are_refused_naming_the_flag_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-token");
    let missing = missing.to_str().expect("utf-8");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--typo-rate", "1.5"], "--typo-rate"),
        (vec!["--reject-rate", "-0.1"], "--reject-rate"),
        (vec!["--consoles", "0"], "--consoles"),
        (vec!["--shard", "3/2"], "--shard"),
        (vec!["--boot-ms", "9..1"], "--boot-ms"),
        (vec!["--admins", "0"], "--admins"),
        (vec!["--threshold", "p99<<1ms"], "at character 4"),
        (vec!["--threshold", "redeem.raw.p99<1ms"], "unknown view"),
        (vec!["--target", "http://127.0.0.1:9"], "--admin-token-file"),
        (
            vec![
                "--target",
                "http://127.0.0.1:9",
                "--admin-token-file",
                missing,
            ],
            "--admin-token-file",
        ),
    ];
    for (args, names) in cases {
        let out = otpfleet()
            .arg("fleet")
            .args(&args)
            .arg("--out")
            .arg(dir.path().join("never"))
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(
            !dir.path().join("never").exists(),
            "{args:?}: nothing started"
        );
    }
}

#[test]
fn an_unreachable_target_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").expect("write");
    // Port 9 (discard) on loopback: nothing listens there on a test machine.
    let out = otpfleet()
        .args([
            "fleet",
            "--consoles",
            "5",
            "--quiet",
            "--max-retries",
            "1",
            "--target",
            "http://127.0.0.1:9",
            "--admin-token-file",
        ])
        .arg(&token)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not reach the server") || stderr.contains("Connection refused"),
        "{stderr}"
    );
}
