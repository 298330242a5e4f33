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
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).expect("read"))
            .expect("json");
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
        stderr.contains("bad.toml:14: admins[0].working_hours"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("bad.toml:").count(),
        1,
        "one error, no cascade: {stderr}"
    );
    assert!(!dir.path().join("never").exists());
}
