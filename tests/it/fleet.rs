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
    let report = crate::read_report(&out_dir);
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

/// Consoles dropped past --max-in-flight are a loud warning, not a line of the table (k6 says
/// "Insufficient VUs"): the run did not apply the load it was asked to.
#[test]
fn dropped_consoles_are_a_loud_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = otpfleet()
        .args(["fleet", "--consoles", "200", "--seed", "3", "--quiet"])
        .args(["--max-in-flight", "10", "--arrival-window-ms", "300"])
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = crate::read_report(&dir.path().join("run"));
    let dropped = report["outcomes"]["dropped"].as_u64().expect("dropped");
    assert!(dropped > 100, "most were dropped: {dropped}");
    assert!(
        stdout.contains(&format!("WARNING: {dropped} of 200 consoles"))
            && stdout.contains("Raise --max-in-flight"),
        "{stdout}"
    );
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
            "--threshold",
            "redeem.service.p95<5s",
            "--threshold",
            "redeem.p97.5<5s",
        ])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BREACHED: verify.service.p50"), "{stdout}");
    assert!(stdout.contains("ok: redeem.service.p95"), "{stdout}");
    // The verdicts are in the report, with what was measured, as the terminal said them.
    let report = crate::read_report(&out_dir);
    let verdicts = report["thresholds"]
        .as_array()
        .expect("thresholds in report.json");
    assert_eq!(verdicts.len(), 3, "{verdicts:?}");
    let p95 = report["latency_us"]["redeem"]["service"]["p95"]
        .as_f64()
        .expect("a p95");
    assert!(p95 > 0.0);
    assert_eq!(verdicts[0]["threshold"], "verify.service.p50<1us");
    assert_eq!(verdicts[0]["passed"], false);
    assert_eq!(verdicts[1]["name"], "redeem.service.p95");
    assert_eq!(verdicts[1]["observed"], p95);
    assert_eq!(verdicts[1]["unit"], "µs");
    assert_eq!(verdicts[1]["passed"], true);
    // Any percentile, read from the run's histograms: between its neighbours the report holds.
    assert_eq!(verdicts[2]["name"], "redeem.service.p97.5");
    let p975 = verdicts[2]["observed"].as_f64().expect("measured");
    let p99 = report["latency_us"]["redeem"]["service"]["p99"]
        .as_f64()
        .expect("p99");
    assert!((p95..=p99).contains(&p975), "{p95} <= {p975} <= {p99}");
    // `report check` reads the folder's histograms for one too.
    let check = otpfleet()
        .args(["report", "check", "--threshold", "redeem.p97.5<1us"])
        .arg(&out_dir)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("BREACHED: redeem.service.p97.5 is {p975:.0} µs")),
        "{said}"
    );
    let problems = crate::schema_problems(&report);
    assert!(problems.is_empty(), "{problems:?}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    assert!(
        md.contains("## Thresholds") && md.contains("1 of 3 breached"),
        "{md}"
    );
    assert!(
        md.contains("| `redeem.service.p95<5s` | redeem.service.p95 |") && md.contains("BREACHED"),
        "{md}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(
        html.contains("<h2>Thresholds</h2>"),
        "report.html has them too"
    );
}

#[test]
fn bad_flags_are_refused_naming_the_flag_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-token");
    let missing = missing.to_str().expect("utf-8");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").expect("write");
    let token = token.to_str().expect("utf-8");
    let target = [
        "--target",
        "http://127.0.0.1:9",
        "--admin-token-file",
        token,
    ];
    let split = |more: &[&'static str]| [&target[..], more].concat();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--role", "consoles"], "--target"),
        (vec!["--role", "nobody"], "all, consoles or admins"),
        (
            split(&["--role", "consoles", "--admins", "2"]),
            "--role consoles, --admins",
        ),
        (
            split(&["--role", "admins", "--shard", "1/2"]),
            "--role admins, --shard",
        ),
        (
            split(&["--role", "admins", "--auto-approve"]),
            "--auto-approve",
        ),
        (vec!["--shard", "env/4"], "JOB_COMPLETION_INDEX is not set"),
        (vec!["--shard", "env/0"], "--shard"),
        (vec!["--start-at", "2026-12-01T09:00:00"], "RFC 3339"),
        (
            vec!["--start-at", "2999-01-01T00:00:00Z"],
            "more than 24 hours ahead",
        ),
        (
            vec!["--otlp-endpoint", "grpc://127.0.0.1:4317"],
            "--otlp-endpoint grpc://127.0.0.1:4317",
        ),
        (vec!["--otlp-interval-s", "5"], "--otlp-endpoint"),
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
            .env_remove("JOB_COMPLETION_INDEX")
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

/// A refused admin token, a directory given as the token file and a target URL ending in the
/// contract's version are bad input (exit 2), refused before anything is announced or written,
/// each with the fix; so is a report folder that holds no run.
#[test]
fn wrong_tokens_and_urls_are_refused_naming_the_fix_before_anything_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, first) = crate::serve(["--in-memory"]);
    let url = first.trim_start_matches("listening on ").to_owned();
    let wrong = dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token").expect("write");
    let (wrong, folder) = (
        wrong.to_str().expect("utf-8"),
        dir.path().to_str().expect("utf-8"),
    );
    let v1 = format!("{url}/v1");
    for (target, token, says) in [
        (
            url.as_str(),
            wrong,
            format!(
                "--admin-token-file {wrong}: the server at {url} refused the token in it (HTTP 401)"
            ),
        ),
        (
            url.as_str(),
            folder,
            format!("--admin-token-file {folder}: while reading"),
        ),
        (
            v1.as_str(),
            wrong,
            format!("give the server's base URL, {url:?}"),
        ),
    ] {
        let out = otpfleet()
            .args([
                "fleet",
                "--quiet",
                "--target",
                target,
                "--admin-token-file",
                token,
            ])
            .arg("--out")
            .arg(dir.path().join("never"))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target} {token}: {stderr}");
        assert!(stderr.contains(&says), "{stderr}");
        assert!(!stderr.contains("imports"), "nothing announced: {stderr}");
        assert!(!dir.path().join("never").exists(), "no run folder");
    }
    let _ = server.kill();
    let _ = server.wait();
    let missing = dir.path().join("no-run-here");
    let out = otpfleet()
        .args(["report", "check", "--threshold", "p99<5ms"])
        .arg(&missing)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no report.json there: give a run folder"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file").count(),
        0,
        "said once, plainly: {stderr}"
    );
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

/// SIGINT (and SIGTERM) a few seconds into a fleet started in the background of a script: the
/// run stops, writes its whole folder marked interrupted, and exits 128 + the signal. Without
/// a terminal the run printed progress lines while it ran.
#[test]
fn an_interrupted_fleet_writes_its_folder_and_exits_with_its_own_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (signal, code, after_s) in [("INT", 130, 4), ("TERM", 143, 3)] {
        let out = dir.path().join(signal);
        let out_arg = out.to_str().expect("utf-8");
        let (status, stderr) = crate::signalled(
            &[
                "fleet",
                "--consoles",
                "400",
                "--seed",
                "7",
                "--arrival-window-ms",
                "60000",
                "--progress-every-s",
                "1",
                "--out",
                out_arg,
            ],
            signal,
            std::time::Duration::from_secs(after_s),
        );
        assert_eq!(status, code, "SIG{signal}: {stderr}");
        assert!(stderr.contains("consoles done"), "progress lines: {stderr}");
        let report = crate::read_report(&out);
        assert_eq!(report["complete"], false);
        assert_eq!(report["stopped_because"], "interrupted");
        // Consoles not yet due are not started, not abandoned: abandoned counts only consoles
        // that started (consoles.csv: those with a start time).
        let csv = std::fs::read_to_string(out.join("consoles.csv")).expect("consoles.csv");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
        let (outcome, started) = (col("outcome"), col("started_s"));
        let (mut not_started, mut abandoned) = (0, 0);
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            match cells[outcome] {
                "not_started" => {
                    assert_eq!(
                        cells[started], "",
                        "a console not started has no start: {line}"
                    );
                    not_started += 1;
                }
                "abandoned" => {
                    assert_ne!(cells[started], "", "an abandoned console started: {line}");
                    abandoned += 1;
                }
                _ => {}
            }
        }
        assert!(
            not_started >= 300,
            "most of 400 over a minute were not due: {not_started}"
        );
        assert_eq!(
            report["outcomes"]["not_started"], not_started,
            "SIG{signal}"
        );
        assert_eq!(report["outcomes"]["abandoned"], abandoned, "SIG{signal}");
        let problems = crate::schema_problems(&report);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(out.join("report.html").exists() && out.join("consoles.csv").exists());
    }
}

/// `--out` is checked before anything runs; a run into the folder of an earlier run leaves
/// nothing of the earlier one; the report says where, when and with what it was made.
#[test]
fn the_run_folder_is_checked_first_and_replaced_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let started = std::time::Instant::now();
    let out = otpfleet()
        .args(["fleet", "--quiet", "--out"])
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&*file.to_string_lossy()) && stderr.contains("is a file"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "at once"
    );

    let run = dir.path().join("run");
    let small = |seed: &str| {
        let out = otpfleet()
            .args(["fleet", "--quiet", "--consoles", "20", "--seed", seed])
            .args(["--arrival-window-ms", "100", "--out"])
            .arg(&run)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    small("1");
    std::fs::write(run.join("left-from-before.hlog"), "stale").expect("write");
    small("2");
    assert!(
        !run.join("left-from-before.hlog").exists(),
        "nothing of the earlier run"
    );
    let report = crate::read_report(&run);
    assert_eq!(report["seed"], 2);
    let meta = &report["meta"];
    for key in ["started_at", "ended_at", "host", "git_commit"] {
        assert!(
            meta[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {meta}"
        );
    }
    assert_eq!(meta["command_line"][1], "fleet", "{meta}");
    let problems = crate::schema_problems(&report);
    assert!(problems.is_empty(), "{problems:?}");
}

/// What would be silently ignored or dropped is refused: a token file without a target, a
/// target URL with a query (a path is a base path every route is under, see `client`'s tests).
#[test]
fn target_flags_that_would_be_ignored_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").expect("write");
    let token = token.to_str().expect("utf-8");
    for (args, says) in [
        (vec!["--admin-token-file", token], "is for a --target"),
        (
            vec![
                "--target",
                "http://127.0.0.1:9/base?x=1",
                "--admin-token-file",
                token,
            ],
            "has a query or fragment",
        ),
    ] {
        let out = otpfleet()
            .args(["fleet", "--quiet"])
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `consoles.csv` as (index, arrival_s, outcome) rows.
fn arrivals(dir: &std::path::Path) -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string(dir.join("consoles.csv")).expect("consoles.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (index, arrival, outcome) = (col("index"), col("arrival_s"), col("outcome"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let index = cells[index].parse().expect("an index");
            (index, cells[arrival].to_owned(), cells[outcome].to_owned())
        })
        .collect()
}

fn fleet_in(dir: &std::path::Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let run = otpfleet()
        .args(["fleet", "--quiet", "--seed", "5", "--auto-approve"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// A constant rate is exact, and two shards arrive as the unsharded run does.
#[test]
fn consoles_arrive_on_the_schedule_and_shards_split_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--consoles", "40", "--arrival", "rate:200/s"];
    let whole_dir = fleet_in(dir.path(), "whole", &args);
    let whole = arrivals(&whole_dir);
    assert_eq!(whole.len(), 40);
    // The report's arrivals over time: every console intended and started, 200 a second.
    let report = crate::read_report(&whole_dir);
    let points = report["arrivals"].as_array().expect("arrivals");
    let sum = |key: &str| points.iter().filter_map(|p| p[key].as_u64()).sum::<u64>();
    assert_eq!(
        (sum("intended"), sum("started"), sum("dropped")),
        (40, 40, 0)
    );
    for (index, arrival_s, _) in &whole {
        let want = *index as f64 / 200.0;
        let got: f64 = arrival_s.parse().expect("seconds");
        assert!(
            (got - want).abs() < 0.0015,
            "console {index}: {got} s, not {want} s"
        );
    }
    let mut sharded = Vec::new();
    for shard in ["0/2", "1/2"] {
        let name = format!("shard{}", &shard[..1]);
        let mut args = args.to_vec();
        args.extend(["--shard", shard]);
        sharded.extend(arrivals(&fleet_in(dir.path(), &name, &args)));
    }
    sharded.sort();
    let times = |rows: &[(u64, String, String)]| -> Vec<(u64, String)> {
        rows.iter().map(|(i, a, _)| (*i, a.clone())).collect()
    };
    assert_eq!(times(&sharded), times(&whole));
}

/// A ramp's or steps' stages fix the shape and the duration, as in k6 and Gatling: the run has
/// the consoles they bring, reaches the ramp's last rate at its end, and a count that would cut
/// the stages short (or outlast them) is refused with the count they need.
#[test]
fn the_stages_of_a_schedule_fix_its_console_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, says) in [
        (
            ["--consoles", "1000", "--arrival", "ramp:0/s..200/s@30s"],
            [
                "brings 3000 consoles over its 30 s",
                "stop arriving at 17.3 s",
            ],
        ),
        (
            ["--consoles", "8000", "--arrival", "ramp:0/s..200/s@30s"],
            ["make it 3000", "more than it brings"],
        ),
        (
            ["--consoles", "10", "--arrival", "steps:10/s@1s,20/s@1s"],
            [
                "steps:10/s@1s,20/s@1s brings 30 consoles",
                "--arrival, --consoles",
            ],
        ),
    ] {
        let out = otpfleet()
            .arg("fleet")
            .args(args)
            .arg("--out")
            .arg(dir.path().join("never"))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for said in says {
            assert!(stderr.contains(said), "{args:?}: {stderr}");
        }
        assert!(!dir.path().join("never").exists(), "nothing started");
    }
    let seconds = |rows: &[(u64, String, String)]| -> Vec<f64> {
        let mut s: Vec<f64> = rows.iter().map(|r| r.1.parse().expect("s")).collect();
        s.sort_by(f64::total_cmp);
        s
    };
    let ramp = seconds(&arrivals(&fleet_in(
        dir.path(),
        "ramp",
        &["--arrival", "ramp:0/s..40/s@2s"],
    )));
    assert_eq!(ramp.len(), 40, "the ramp's area");
    assert!(
        (1.9..2.01).contains(&ramp[39]),
        "reaches 40/s at 2 s: {ramp:?}"
    );
    let steps = seconds(&arrivals(&fleet_in(
        dir.path(),
        "steps",
        &["--arrival", "steps:20/s@1s,0/s@1s,20/s@1s"],
    )));
    assert_eq!(steps.len(), 40, "what the steps bring");
    assert!(
        steps.iter().all(|s| !(1.01..2.0).contains(s)) && steps[39] > 2.9,
        "a pause, then the last step to its end: {steps:?}"
    );
}

/// With the in-flight bound low, consoles that arrive past it are dropped, counted and
/// reported, and every console still has exactly one outcome.
#[test]
fn consoles_past_the_in_flight_bound_are_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "--consoles",
        "60",
        "--arrival",
        "rate:500/s",
        "--max-in-flight",
        "2",
        "--boot-ms",
        "300..400",
    ];
    let out = fleet_in(dir.path(), "bounded", &args);
    let report = crate::read_report(&out);
    let dropped = report["outcomes"]["dropped"].as_u64().expect("dropped");
    assert!(
        dropped > 30,
        "most consoles arrive while two boot: {report}"
    );
    let rows = arrivals(&out);
    assert_eq!(rows.len(), 60);
    let in_csv = rows.iter().filter(|(_, _, o)| o == "dropped").count() as u64;
    assert_eq!(in_csv, dropped);
    let total = crate::outcomes_total(&report);
    assert_eq!(total, 60);
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(md.contains("dropped") && md.contains("## Arrivals"), "{md}");
    let points = report["arrivals"].as_array().expect("arrivals");
    let sum = |key: &str| points.iter().filter_map(|p| p[key].as_u64()).sum::<u64>();
    assert_eq!(sum("intended"), 60);
    assert_eq!(sum("dropped"), dropped);
    assert_eq!(sum("started") + dropped, 60);
}

/// Consoles racing for one OTP and asking twice for credentials find the reference server
/// keeping its promises: no `violations` in report.json, exit 0.
#[test]
fn the_reference_server_keeps_its_promises_under_races() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "--consoles",
        "100",
        "--race-rate",
        "0.2",
        "--double-sign-in-rate",
        "0.2",
    ];
    let out = fleet_in(dir.path(), "races", &args);
    let report = crate::read_report(&out);
    assert!(report.get("violations").is_none(), "{report}");
    let total = crate::outcomes_total(&report);
    assert_eq!(total, 100);
}

/// A process that would start after the run's common start and its grace period does not run:
/// its own exit code, and no run folder (nothing half-measured).
#[test]
fn a_process_after_the_common_start_and_its_grace_refuses_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = otpfleet()
        .args(["fleet", "--consoles", "10", "--quiet"])
        .args([
            "--start-at",
            "2026-01-01T00:00:00Z",
            "--start-grace-s",
            "30",
        ])
        .arg("--out")
        .arg(dir.path().join("late"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("past its grace period"), "{stderr}");
    assert!(!dir.path().join("late").exists(), "no run folder");
}
