//! `otpfleet rehearse`: a shipped plan end to end, and a bad plan refused with file, line, field.

use crate::otpfleet;

#[test]
fn the_office_plan_rehearses_and_prints_its_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("run");
    let plan = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/rollouts/office-20.toml"
    );
    let out = otpfleet()
        .args(["rehearse", "--plan", plan, "--seed", "5", "--out"])
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("findings:") && stdout.contains("OTPs expired"),
        "{stdout}"
    );
    let report = crate::read_report(&out_dir);
    assert_eq!(report["kind"], "rehearsal");
    assert_eq!(report["seed"], 5);
    assert!(report["timeline"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(report["rehearsal"]["queue_depth_peak"].is_u64());
}

#[test]
fn a_bad_plan_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/rollouts/office-20.toml"
    ))
    .expect("read")
    .replace(
        "working_hours = \"09:00-17:00\"",
        "working_hours = \"17:00-09:00\"",
    );
    std::fs::write(&plan, text).expect("write");
    let out = otpfleet()
        .args(["rehearse", "--plan"])
        .arg(&plan)
        .arg("--out")
        .arg(dir.path().join("never"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:20: admins[0].working_hours"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("bad.toml:").count(),
        1,
        "one error, no cascade: {stderr}"
    );
    assert!(!dir.path().join("never").exists());
}

fn shipped(name: &str) -> String {
    format!("{}/scenarios/rollouts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The national plan's report.md leads with the rehearsal's answers: findings, the suggestion,
/// the approval queue and the waves, in words that read right; consoles.csv says per console
/// its wave, when it arrived and why an OTP expired; one count of late installers everywhere.
#[test]
fn a_national_rehearsal_report_leads_with_its_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("run");
    let out = otpfleet()
        .args([
            "rehearse",
            "--plan",
            &shipped("national-5000.toml"),
            "--seed",
            "1",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    let at = |text: &str| md.find(text).unwrap_or_else(|| panic!("{text:?} in\n{md}"));
    assert!(at("## Answers") < at("## Findings"), "answers first");
    assert!(at("## Findings") < at("## Outcomes"));
    assert!(at("- The last room signed in ") < at("## Findings"));
    assert!(at("- Second visits: ") < at("## Findings"));
    assert!(at("- Admin time: ") < at("## Findings"));
    assert!(at("**Suggestion:**") < at("## Outcomes"));
    assert!(at("The approval queue peaked at") < at("## Outcomes"));
    assert!(at("## Waves") < at("## Outcomes"));
    assert!(!md.contains("or more"), "percentiles as p50/p99: {md}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    let at_html = |text: &str| {
        html.find(text)
            .unwrap_or_else(|| panic!("{text:?} in report.html"))
    };
    assert!(at_html("<h2>Answers</h2>") < at_html("<h2>Findings</h2>"));
    assert!(at_html("Second visits: ") < at_html("<h2>Outcomes</h2>"));
    assert!(
        !html.contains("Latency by percentile") && !html.contains("No request latencies"),
        "no empty latency panel in a rehearsal's page"
    );
    assert!(
        html.contains("signed in with its OTP (signed_in_otp)"),
        "outcomes in words"
    );
    let report = crate::read_report(&out_dir);
    let late = report["faults"]["late_installers"].as_u64().expect("late");
    assert_eq!(
        Some(late),
        report["rehearsal"]["expired_installer_late"].as_u64()
    );
    let csv = std::fs::read_to_string(out_dir.join("consoles.csv")).expect("consoles.csv");
    let header: Vec<&str> = csv.lines().next().expect("header").split(',').collect();
    for column in ["wave", "arrival_s", "expired_cause", "signed_in_s"] {
        assert!(header.contains(&column), "{column}: {header:?}");
    }
    // consoles.csv has a line per room: those that ended holding an OTP typed after it
    // expired are the rooms the report says ran out of attempts so.
    let late_lines = csv
        .lines()
        .filter(|l| l.contains(",installer_late,"))
        .count() as u64;
    let out_of_attempts_late = report["rehearsal"]["not_signed_in"]
        ["out of attempts (3 OTPs), the last expired before the installer typed it"]
        .as_u64();
    assert_eq!(Some(late_lines), out_of_attempts_late);
}

/// A plan whose OTPs expire before its installers can arrive is warned about before the run,
/// and the finding names the wave and the cause.
#[test]
fn otps_that_expire_before_the_installers_arrive_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = dir.path().join("early.toml");
    let text = std::fs::read_to_string(shipped("office-20.toml"))
        .expect("read")
        .replace(
            "otps_generated_at = \"2026-12-07T08:00\"",
            "otps_generated_at = \"2026-12-07T00:30\"",
        );
    std::fs::write(&plan, text).expect("write");
    let out = otpfleet()
        .args(["rehearse", "--plan"])
        .arg(&plan)
        .args(["--seed", "1", "--out"])
        .arg(dir.path().join("run"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warned = stderr
        .find("warning: wave \"all rooms\": its OTPs generated")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        stderr[warned..].contains("before its first installer can arrive"),
        "{stderr}"
    );
    assert!(
        warned < stderr.find("rehearse: ").expect("the start line"),
        "before the run: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("expires unused"), "a finding: {stdout}");
}

/// `rehearse --vary` runs every combination, on any number of threads to the same bytes, and
/// writes its table as JSON, Markdown and a page; a setting it cannot vary is refused at once.
#[test]
fn a_sweep_writes_one_table_whatever_the_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sweep = |jobs: &str, out: &str| {
        let out_dir = dir.path().join(out);
        let run = otpfleet()
            .args([
                "rehearse",
                "--plan",
                &shipped("office-20.toml"),
                "--seed",
                "3",
            ])
            .args([
                "--vary",
                "validity=8h,24h",
                "--vary",
                "approvers=1,2",
                "--jobs",
                jobs,
            ])
            .arg("--out")
            .arg(&out_dir)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        (out_dir, stdout)
    };
    let (one, stdout) = sweep("1", "one");
    let (two, _) = sweep("2", "two");
    let json =
        |d: &std::path::Path| std::fs::read_to_string(d.join("sweep.json")).expect("sweep.json");
    assert_eq!(json(&one), json(&two), "the threads change nothing");
    let report: serde_json::Value = serde_json::from_str(&json(&one)).expect("json");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["settings"][0]["value"], "24h");
    assert_eq!(rows[3]["settings"][1]["value"], "2");
    assert!(rows.iter().any(|r| r["soonest"] == true));
    assert!(rows.iter().any(|r| r["least_admin_time"] == true));
    assert!(stdout.contains("validity=24h approvers=2"), "{stdout}");
    let md = std::fs::read_to_string(one.join("sweep.md")).expect("sweep.md");
    assert_eq!(md.matches("| `validity=").count(), 4, "{md}");
    let html = std::fs::read_to_string(one.join("report.html")).expect("report.html");
    assert!(html.contains("When the last room signed in") && html.contains("<svg"));

    let bad = otpfleet()
        .args([
            "rehearse",
            "--plan",
            &shipped("office-20.toml"),
            "--vary",
            "speed=1,2",
            "--out",
        ])
        .arg(dir.path().join("never"))
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("\"speed\" is not a setting a sweep varies"),
        "{stderr}"
    );
    assert!(!dir.path().join("never").exists());
}
