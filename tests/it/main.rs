//! End-to-end tests of the `otpfleet` command: the real binary, on port 0.

#![allow(clippy::unwrap_used)] // A test that unwraps fails with the value in its message.
mod architecture;
mod churn;
mod contract;
mod crash;
mod dashboard;
mod doors;
mod fleet;
mod full_disk;
mod k8s;
mod load;
mod metrics;
mod otlp;
mod promises;
mod readme;
mod rehearse;
mod report;
mod serve;
mod tls;
mod tokens;

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};

/// The lines `child` writes to its (piped) stderr, as they come.
pub fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Says that a test is skipped, and why, where a person running `cargo test` sees it: written to
/// the process's stderr directly, past libtest's capture of `eprintln!` (a skip that only a
/// failing test would show is a skip nobody notices).
pub fn skipped(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
}

/// The `otpfleet` binary under test.
pub fn otpfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otpfleet"))
}

/// Starts `otpfleet serve --listen 127.0.0.1:0 ARGS`; answers the server and its first line of
/// stdout (`listening on http://...` when it started).
pub fn serve<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> (Child, String) {
    let mut child = otpfleet()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let first = first_line(&mut child);
    (child, first)
}

/// The sum of report.json's outcomes (every console ends in exactly one).
pub fn outcomes_total(report: &serde_json::Value) -> u64 {
    report["outcomes"]
        .as_object()
        .expect("outcomes")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum()
}

/// The first line a started server prints on stdout (`listening on ...`), trimmed.
pub fn first_line(child: &mut Child) -> String {
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a first line");
    first.trim().to_owned()
}

/// Stops a server with SIGTERM and waits for it; asserts it stopped cleanly and answers its
/// stderr.
pub fn stop(mut child: Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("the server exits");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        exit.success(),
        "SIGTERM stops the server cleanly: {exit:?} {stderr}"
    );
    stderr
}

/// What the shipped schema finds wrong with a report.json (nothing, for a valid one).
pub fn schema_problems(report: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(otpfleet_reports::REPORT_SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    validator
        .iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Starts `otpfleet ARGS` in the background of a non-interactive shell (where SIGINT starts out
/// ignored), sends it `signal` (`INT`, `TERM`) after `after`, and answers its exit code and
/// stderr.
pub fn signalled(args: &[&str], signal: &str, after: std::time::Duration) -> (i32, String) {
    use std::io::Read as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let mut shell = std::process::Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" & echo $! > \"$PID_FILE\"; wait $!")
        .arg(env!("CARGO_BIN_EXE_otpfleet"))
        .args(args)
        .env("PID_FILE", &pid_file)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sh runs");
    std::thread::sleep(after);
    let pid = std::fs::read_to_string(&pid_file).expect("the shell wrote the pid");
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), pid.trim()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let mut stderr = String::new();
    let _ = shell
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    let status = shell.wait().expect("the shell ends");
    (status.code().expect("an exit code"), stderr)
}

/// The `report.json` of a run folder.
pub fn read_report(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("json")
}
