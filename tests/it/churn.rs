//! Replicas on PostgreSQL under churn (issue 30): a fleet with races and double sign-ins runs
//! through three `serve --database-url` replicas while replicas are SIGKILLed and restarted at
//! random (at least 10 times) and PostgreSQL itself is crash-stopped (`pg_ctl stop -m
//! immediate`) and restarted (at least twice). Then: the fleet's promise checks found nothing
//! (no OTP redeemed twice, no credentials handed twice, no status going back), no console was
//! told a false `otp_already_used`, every sign-in a console was told of is in the database,
//! and `audit verify` finds the chain whole.
//!
//! It runs a PostgreSQL of its own (`scripts/pg-local` in a temporary directory, on a free
//! port), since it crashes it; without PostgreSQL installed it says so and passes, unless
//! `OTPFLEET_REQUIRE_PG` is set (CI), where it fails. `CHURN_SEED` replays a schedule.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPLICAS: usize = 3;
const KILLS: usize = 10;
const DATABASE_CRASHES: usize = 2;
const TOKEN: &str = "churn-test-token";

/// A PostgreSQL of the test's own, through `scripts/pg-local`.
struct Database {
    dir: tempfile::TempDir,
    port: u16,
    url: String,
}

fn pg_local(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-local");
    Command::new(script)
        .args(args)
        .output()
        .expect("scripts/pg-local runs")
}

impl Database {
    /// Started, or `None` (and why) when this machine has no PostgreSQL.
    fn start() -> Option<Database> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let out = pg_local(&[
            "start",
            &dir.path().display().to_string(),
            &port.to_string(),
        ]);
        if out.status.code() == Some(2) {
            assert!(
                std::env::var("OTPFLEET_REQUIRE_PG").is_err(),
                "OTPFLEET_REQUIRE_PG is set but PostgreSQL is not installed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            crate::skipped("churn: no PostgreSQL installed (apt-get install postgresql)");
            return None;
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let url = text
            .trim()
            .strip_prefix("export OTPFLEET_TEST_DATABASE_URL=")
            .unwrap_or_else(|| panic!("pg-local said {text:?}"))
            .to_owned();
        Some(Database { dir, port, url })
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// A crash: `pg_ctl stop -m immediate` (no checkpoint; recovery replays the WAL).
    fn crash_and_restart(&self) {
        let out = pg_local(&["stop", &self.path(), "immediate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(800));
        let out = pg_local(&["start", &self.path(), &self.port.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = pg_local(&["stop", &self.path(), "immediate"]);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// One replica: `serve --database-url` on a port of its own, restarted on the same port.
struct Replica {
    port: u16,
    child: Option<Child>,
}

impl Replica {
    /// Starts it; `false` when it did not start (the database away: it exits, saying so).
    fn start(&mut self, db: &Database, token: &Path) -> bool {
        let mut child = crate::otpfleet()
            .args(["serve", "--poll-interval-s", "1", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--database-url", &db.url, "--admin-token-file"])
            .arg(token)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let started = crate::first_line(&mut child).starts_with("listening on");
        if !started {
            let _ = child.wait();
            return false;
        }
        self.child = Some(child);
        true
    }

    /// Starts it again until it runs (the database may be restarting), at most 30 s.
    fn start_until_up(&mut self, db: &Database, token: &Path) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.start(db, token) {
            assert!(
                Instant::now() < until,
                "replica {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The schedule's random stream: `CHURN_SEED` when set, else a fresh seed (printed).
fn schedule_rng() -> ChaCha8Rng {
    let seed = std::env::var("CHURN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("churn schedule seed {seed} (CHURN_SEED={seed} replays it)");
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn a_fleet_through_replicas_killed_and_a_crashed_database_breaks_no_promise() {
    let Some(db) = Database::start() else {
        return;
    };
    let migrated = crate::otpfleet()
        .args(["db", "migrate", "--database-url", &db.url])
        .output()
        .expect("the binary runs");
    assert!(migrated.status.success(), "{migrated:?}");
    let work = tempfile::tempdir().unwrap();
    let token = work.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|_| Replica {
            port: free_port(),
            child: None,
        })
        .collect();
    for r in &mut replicas {
        r.start_until_up(&db, &token);
    }
    let targets: Vec<String> = replicas
        .iter()
        .map(|r| format!("http://127.0.0.1:{}", r.port))
        .collect();
    let out = work.path().join("run");
    let mut fleet = crate::otpfleet()
        .args(["fleet", "--consoles", "400", "--arrival-window-ms", "30000"])
        .args(["--race-rate", "0.2", "--double-sign-in-rate", "0.2"])
        .args(["--manual-rate", "0.05", "--reject-rate", "0.05"])
        .args(["--poll-interval-s", "1", "--max-retries", "40"])
        .args([
            "--max-duration-s",
            "240",
            "--quiet",
            "--target",
            &targets.join(","),
        ])
        .arg("--admin-token-file")
        .arg(&token)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fleet starts");

    let (kills, crashes) = churn(&mut fleet, &mut replicas, &db, &token);
    let status = fleet.wait().expect("the fleet ends");
    let mut stderr = String::new();
    use std::io::Read as _;
    let _ = fleet.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        kills >= KILLS && crashes >= DATABASE_CRASHES,
        "the fleet ended after {kills} kills and {crashes} database crashes: {stderr}"
    );
    assert!(status.success(), "the fleet failed: {status:?} {stderr}");
    check(&crate::read_report(&out), &db, &targets[0], &out);
    for r in &mut replicas {
        r.kill();
    }
}

/// Kills replicas and crashes the database at random moments while the fleet runs; answers
/// how many of each.
fn churn(
    fleet: &mut Child,
    replicas: &mut [Replica],
    db: &Database,
    token: &Path,
) -> (usize, usize) {
    let mut rng = schedule_rng();
    let (mut kills, mut crashes) = (0, 0);
    // Let the admins import and generate first: the churn is for the consoles' traffic.
    std::thread::sleep(Duration::from_secs(4));
    while fleet.try_wait().expect("the fleet's status").is_none() {
        std::thread::sleep(Duration::from_millis(rng.random_range(400..1_200)));
        let crash_due = crashes < DATABASE_CRASHES && kills >= 4 * (crashes + 1);
        if crash_due {
            db.crash_and_restart();
            crashes += 1;
            continue;
        }
        if kills >= KILLS + 6 {
            continue;
        }
        let r = &mut replicas[rng.random_range(0..replicas.len())];
        r.kill();
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng.random_range(0..800)));
        r.start_until_up(db, token);
    }
    (kills, crashes)
}

/// What must hold after the run.
fn check(report: &serde_json::Value, db: &Database, replica: &str, out: &Path) {
    let violations = report["violations"].as_array().map_or(0, Vec::len);
    assert_eq!(violations, 0, "promises broken: {}", report["violations"]);
    let errors = report["errors"].as_object().cloned().unwrap_or_default();
    let false_used: Vec<&String> = errors
        .keys()
        .filter(|k| k.contains("otp_already_used"))
        .collect();
    assert!(
        false_used.is_empty(),
        "consoles told otp_already_used: {errors:?}"
    );
    // Every sign-in a console was told of is in the database (more may be: a hand-over whose
    // answer was lost to a kill is kept, and its console gave up).
    let told = report["outcomes"]["signed_in_otp"].as_u64().unwrap()
        + report["outcomes"]["signed_in_manual"].as_u64().unwrap();
    let kept = signed_in_accounts(replica);
    assert!(
        kept >= told,
        "{told} consoles were told they signed in, {kept} accounts are (run {})",
        out.display()
    );
    assert!(
        told >= 300,
        "too few consoles signed in for the run to mean much: {told}"
    );
    // The chain, once the chainer has caught up.
    std::thread::sleep(Duration::from_secs(2));
    let verified = crate::otpfleet()
        .args(["audit", "verify", "--database-url", &db.url])
        .output()
        .expect("the binary runs");
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && said.contains("chain intact"),
        "{verified:?}"
    );
    eprintln!("churn: {told} consoles signed in, {kept} accounts signed in; {said}");
    eprintln!("churn: outcomes {}; errors {errors:?}", report["outcomes"]);
}

/// Accounts signed in, as a replica's admin `/metrics` counts them.
fn signed_in_accounts(replica: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use otpfleet_client::Transport as _;
        let t = otpfleet_client::HttpTransport::new(replica, 1, Duration::from_secs(30)).unwrap();
        let answer = t
            .send(otpfleet_client::calls::metrics(TOKEN))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("otpfleet_accounts{provisioning=\"signed_in\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no signed-in count in /metrics: {text}"))
    })
}
