//! `deploy/k8s/`: every container's args are otpfleet's (its own clap parser reads them), the
//! number of console shards agrees wherever the manifests write it, and the run played locally,
//! each pod a process started with the args and environment Kubernetes would give it, adds up
//! to the unsharded run of the same seed.

use crate::{first_line, otpfleet, read_report};
use clap::Parser as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Instant;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s");

/// Every resource of the manifests (kustomizations aside), with the file it is in.
fn resources() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for part in ["server", "run", "replicas"] {
        let dir = Path::new(DEPLOY).join(part);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .filter(|p| !p.ends_with("kustomization.yaml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in text.split("\n---\n") {
                let value: Value = serde_norway::from_str(doc)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                out.push((file.clone(), value));
            }
        }
    }
    out
}

/// The run's settings: the literals of the `otpfleet-run` ConfigMap the run's kustomization
/// generates.
fn run_settings() -> BTreeMap<String, String> {
    let path = Path::new(DEPLOY).join("run/kustomization.yaml");
    let k: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let generator = k["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "otpfleet-run")
        .expect("the otpfleet-run ConfigMap");
    generator["literals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let (k, v) = l.as_str().unwrap().split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// One container of a workload: where it is, its args and its volume mounts (path, volume).
struct Container {
    workload: String,
    args: Vec<String>,
    mounts: Vec<(String, String)>,
    spec: Value,
}

fn containers() -> Vec<Container> {
    let mut out = Vec::new();
    for (_, r) in resources() {
        let Some(pod) = r["spec"]["template"]["spec"].as_object() else {
            continue;
        };
        for c in pod["containers"].as_array().unwrap() {
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default()
            };
            let mounts = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let path = m["mountPath"].as_str().unwrap().to_owned();
                    (path, m["name"].as_str().unwrap().to_owned())
                })
                .collect();
            out.push(Container {
                workload: r["metadata"]["name"].as_str().unwrap().to_owned(),
                args: strings(&c["args"]),
                mounts,
                spec: c.clone(),
            });
        }
    }
    out
}

fn container(workload: &str) -> Container {
    containers()
        .into_iter()
        .find(|c| c.workload == workload)
        .unwrap_or_else(|| panic!("no workload {workload} in deploy/k8s"))
}

/// `$(VAR)` replaced from `env`, as Kubernetes expands a container's args (an unknown
/// variable is left as written).
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) if env.contains_key(&after[..end]) => {
                out.push_str(&env[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn every_containers_args_are_otpfleets_own() {
    let mut env = run_settings();
    env.insert("JOB_COMPLETION_INDEX".into(), "0".into());
    let all = containers();
    assert!(all.len() >= 4, "server, consoles, admins, merge");
    for c in all {
        assert!(
            c.spec.get("command").is_none(),
            "{}: the image's entrypoint is otpfleet; give args only",
            c.workload
        );
        let mut args: Vec<String> = c.args.iter().map(|a| expand(a, &env)).collect();
        for a in &args {
            assert!(!a.contains("$("), "{}: {a} is not expanded", c.workload);
        }
        // What a Secret gives in the environment, otpfleet reads as its flag would be.
        for var in secret_env(&c) {
            match var.as_str() {
                "DATABASE_URL" => args.extend(["--database-url".into(), "postgres://u@h/d".into()]),
                other => panic!(
                    "{}: {other} from a Secret is no variable otpfleet reads",
                    c.workload
                ),
            }
        }
        let parsed = otpfleet::Opts::try_parse_from(std::iter::once("otpfleet".into()).chain(args));
        if let Err(e) = parsed {
            panic!("{}: its args do not parse: {e}", c.workload);
        }
    }
}

/// The names of a container's environment variables that come from a Secret.
fn secret_env(c: &Container) -> Vec<String> {
    c.spec["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["valueFrom"]["secretKeyRef"].is_object())
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_number_of_console_shards_agrees_across_the_manifests() {
    let job = resources()
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| r["metadata"]["name"] == "otpfleet-consoles")
        .unwrap();
    let n = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(n), "parallelism");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(
        job["spec"]["backoffLimitPerIndex"], 0,
        "a shard is never re-run"
    );
    let consoles = container("otpfleet-consoles");
    let shard = consoles
        .args
        .iter()
        .skip_while(|a| *a != "--shard")
        .nth(1)
        .unwrap();
    assert_eq!(shard, &format!("env/{n}"), "--shard");
    let merge = container("otpfleet-merge");
    let mut shards: Vec<u64> = merge
        .args
        .iter()
        .filter_map(|a| a.strip_prefix("/runs/$(RUN)/shard-"))
        .map(|k| k.parse().unwrap())
        .collect();
    shards.sort_unstable();
    assert_eq!(shards, (0..n).collect::<Vec<_>>(), "the merge's folders");
}

/// A pod played as a local process: its args expanded from `env`, each volume's mount path
/// mapped to a folder under `root`, the Service's address to the local server's.
fn pod_args(c: &Container, env: &BTreeMap<String, String>, root: &Path, url: &str) -> Vec<String> {
    c.args
        .iter()
        .map(|a| {
            let a = expand(a, env);
            if a == "http://otpfleet-server:8080" {
                return url.to_owned();
            }
            if a == "0.0.0.0:8080" {
                // Loopback only, on a free port.
                return "127.0.0.1:0".to_owned();
            }
            for (path, volume) in &c.mounts {
                if let Some(rest) = a.strip_prefix(path.as_str()) {
                    return format!("{}{rest}", root.join(volume).display());
                }
            }
            a
        })
        .collect()
}

fn spawn(args: &[String], env: &BTreeMap<String, String>) -> Child {
    otpfleet()
        .args(args)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Requests of a step in a report (0 when it recorded none).
fn requests(report: &Value, step: &str) -> u64 {
    report["throughput"]["steps"][step]["requests"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn the_job_played_locally_adds_up_to_the_unsharded_run() {
    let root = tempfile::tempdir().unwrap();
    let token_dir = root.path().join("admin-token");
    std::fs::create_dir_all(&token_dir).unwrap();
    std::fs::write(token_dir.join("token"), "k8s-play-token-0123456789").unwrap();
    let mut env = run_settings();
    // A small run, as the test's settings of the run's ConfigMap.
    let start = unix_ms() + 8_000;
    env.extend(
        [
            ("RUN", "play".to_owned()),
            ("CONSOLES", "240".to_owned()),
            ("ARRIVAL", "rate:120/s".to_owned()),
            ("MAX_DURATION_S", "120".to_owned()),
            ("QUEUE_IDLE_S", "3".to_owned()),
            ("START_AT", rfc3339(start)),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let server = container("otpfleet-server");
    let mut serve = spawn(&pod_args(&server, &env, root.path(), ""), &env);
    let url = first_line(&mut serve)
        .strip_prefix("listening on ")
        .expect("the server starts")
        .to_owned();

    // The unsharded run of the same settings, beside it (its own server in process).
    let consoles = container("otpfleet-consoles");
    let n = consoles
        .args
        .iter()
        .find_map(|a| a.strip_prefix("env/"))
        .unwrap();
    let n: u32 = n.parse().unwrap();
    let admins = container("otpfleet-admins");
    let how_many = admins
        .args
        .iter()
        .skip_while(|a| *a != "--admins")
        .nth(1)
        .unwrap();
    let whole_dir = root.path().join("whole");
    let whole_args = unsharded(
        &pod_args(&consoles, &env, root.path(), &url),
        how_many,
        &whole_dir,
    );
    let whole = spawn(&whole_args, &env);

    let played = Instant::now();
    let mut pods = Vec::new();
    for k in 0..n {
        let mut pod_env = env.clone();
        pod_env.insert("JOB_COMPLETION_INDEX".into(), k.to_string());
        let args = pod_args(&consoles, &pod_env, root.path(), &url);
        pods.push((format!("console shard {k}"), spawn(&args, &pod_env)));
    }
    let args = pod_args(&admins, &env, root.path(), &url);
    pods.push(("the admin process".into(), spawn(&args, &env)));
    for (what, pod) in pods {
        finished(pod, &what);
    }
    let job_s = played.elapsed().as_secs_f64();
    let merging = Instant::now();
    let merge = container("otpfleet-merge");
    let merged = otpfleet()
        .args(pod_args(&merge, &env, root.path(), &url))
        .output()
        .unwrap();
    let merge_s = merging.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&merged.stdout);
    eprintln!(
        "played {n} console shards and the admin process in {job_s:.1} s (from the start of \
         seeding; the common start was 8 s after), merged and judged in {merge_s:.2} s, exit \
         {:?}:\n{stdout}",
        merged.status.code()
    );
    finished(whole, "the unsharded run");
    let _ = serve.kill();

    let runs = root.path().join("runs/play");
    let merged_report = read_report(&runs.join("merged"));
    let whole = read_report(&whole_dir);
    assert_eq!(merged_report["outcomes"], whole["outcomes"], "outcomes");
    assert_eq!(merged_report["consoles"], 240);
    // The admins number what --admins says: one admin process, none in the console shards.
    assert_eq!(merged_report["config"]["admins"].to_string(), *how_many);
    for k in 0..n {
        let shard = read_report(&runs.join(format!("shard-{k}")));
        assert_eq!(shard["shard"]["role"], "consoles");
        assert_eq!(
            requests(&shard, "list_requests"),
            0,
            "shard {k} ran no admins"
        );
    }
    // No request decided twice: as many decisions as the unsharded run's, none refused.
    let decisions = |r: &Value| requests(r, "approve") + requests(r, "reject");
    assert!(decisions(&whole) > 0);
    assert_eq!(decisions(&merged_report), decisions(&whole), "decisions");
    let admin = read_report(&runs.join("admins"));
    for r in [&merged_report, &admin] {
        let problems = crate::schema_problems(r);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    assert_eq!(
        admin["errors"],
        serde_json::json!({}),
        "the admins met no refusals"
    );
    for step in [
        "verify",
        "redeem",
        "sign_in",
        "manual_sign_in",
        "approve",
        "reject",
    ] {
        assert_eq!(
            requests(&merged_report, step),
            requests(&whole, step),
            "{step}"
        );
        let count = |r: &Value| r["latency_us"][step]["service"]["count"].clone();
        assert_eq!(
            count(&merged_report),
            count(&whole),
            "{step} histogram count"
        );
    }
    assert_eq!(
        merged_report["time_to_signed_in_s"]["count"],
        whole["time_to_signed_in_s"]["count"]
    );
    assert!(
        stdout.contains("thresholds:"),
        "the merge judged the run: {stdout}"
    );
    // The run's one verdict: the merge's exit status (a loaded test machine may breach the
    // example latency limit, but never the others).
    if !merged.status.success() {
        let breached: Vec<&str> = stdout.lines().filter(|l| l.contains("BREACHED")).collect();
        assert!(
            breached.iter().all(|l| l.contains("redeem.service.p99")),
            "{stdout}\n{}",
            String::from_utf8_lossy(&merged.stderr)
        );
    }
}

/// The console shard's args as one unsharded process of role all with the run's `admins`, its
/// own server in process, and its own run folder.
fn unsharded(args: &[String], admins: &str, out: &Path) -> Vec<String> {
    let mut whole = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--role" | "--shard" | "--target" | "--admin-token-file" | "--start-at" | "--out" => {
                it.next();
            }
            _ => whole.push(a.clone()),
        }
    }
    whole.extend(["--admins", admins, "--quiet", "--out"].map(String::from));
    whole.push(out.display().to_string());
    whole
}

fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    u64::try_from(since.unwrap().as_millis()).unwrap()
}

fn rfc3339(unix_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(unix_ms).unwrap())
        .unwrap()
        .to_string()
}

/// The replicas' manifests played locally on a PostgreSQL: the migration Job's container, then
/// the Deployment's three pods as processes with their args and the Secret's `DATABASE_URL`;
/// each is ready (its readiness probe's `/healthz` answers 200), and they serve one state (an
/// OTP generated through one is redeemed through another, once). Needs
/// `OTPFLEET_TEST_DATABASE_URL` (skipped without it, failed under `OTPFLEET_REQUIRE_PG`).
#[test]
fn the_replicas_played_locally_migrate_and_serve_one_state() {
    let Ok(base) = std::env::var("OTPFLEET_TEST_DATABASE_URL") else {
        assert!(std::env::var("OTPFLEET_REQUIRE_PG").is_err(), "no database");
        crate::skipped("k8s replicas: no PostgreSQL (OTPFLEET_TEST_DATABASE_URL)");
        return;
    };
    let schema = format!("k8s_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
    });
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("admin-token")).unwrap();
    let token = "k8s-replicas-token-0123456789";
    std::fs::write(root.path().join("admin-token/token"), token).unwrap();
    let env: BTreeMap<String, String> = [("DATABASE_URL".to_owned(), url)].into();
    let migrate = container("otpfleet-migrate");
    assert_eq!(secret_env(&migrate), ["DATABASE_URL"]);
    let job = spawn(&pod_args(&migrate, &env, root.path(), ""), &env);
    let said = finished(job, "the migration Job");
    assert!(String::from_utf8_lossy(&said.stdout).contains("schema migrated"));

    let pod = container("otpfleet-replicas");
    let probe = pod.spec["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap();
    let mut pods = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..3 {
        let mut child = spawn(&pod_args(&pod, &env, root.path(), ""), &env);
        let line = first_line(&mut child);
        urls.push(
            line.strip_prefix("listening on ")
                .expect("a replica starts")
                .to_owned(),
        );
        pods.push(child);
    }
    runtime.block_on(async {
        use otpfleet_client::{HttpTransport, Transport as _, calls};
        let t: Vec<HttpTransport> = urls
            .iter()
            .map(|u| HttpTransport::new(u, 2, std::time::Duration::from_secs(10)).unwrap())
            .collect();
        for replica in &t {
            let ready = replica
                .send(otpfleet_client::ApiRequest::get(probe))
                .await
                .unwrap();
            assert_eq!(
                ready.status,
                200,
                "{}",
                String::from_utf8_lossy(&ready.body)
            );
        }
        let admin = otpfleet_client::AdminClient::new(&t[0], token);
        let input = otpfleet_protocol::AccountInput {
            upn: "room-k8s@contoso.com".into(),
            display_name: "Room K8s".into(),
            license: otpfleet_protocol::License::Pro,
            readiness: otpfleet_protocol::Readiness::NoActionNeeded,
            password: None,
        };
        let ids = admin.import(&[input]).await.unwrap();
        let tickets = otpfleet_client::AdminClient::new(&t[1], token)
            .issue(&ids, 8, |_| false)
            .await
            .unwrap();
        let device = otpfleet_protocol::VerifyRequest {
            make: "Logitech".into(),
            model: "Tap".into(),
            serial: "K8S1".into(),
            hdmi_ingest: true,
        };
        let verified = t[2].send(calls::verify(&device)).await.unwrap();
        let token: otpfleet_protocol::VerifyResponse = verified.parse().unwrap();
        let redeem = |t: &HttpTransport, token: &str| {
            let body = otpfleet_protocol::RedeemRequest {
                otp: tickets[0].otp.clone(),
                verification_token: token.to_owned(),
            };
            let t = t.clone();
            async move { t.send(calls::redeem(&body)).await.unwrap() }
        };
        assert_eq!(redeem(&t[2], &token.verification_token).await.status, 202);
        let other = t[0].send(calls::verify(&otpfleet_protocol::VerifyRequest {
            serial: "K8S2".into(),
            ..device
        }));
        let other: otpfleet_protocol::VerifyResponse = other.await.unwrap().parse().unwrap();
        let refused = redeem(&t[0], &other.verification_token).await;
        assert_eq!(
            refused.status,
            409,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
    });
    for child in pods {
        crate::stop(child);
    }
    runtime.block_on(async {
        let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    });
}
