//! What the run commands share: the server a run drives (given, or the reference server started
//! in this process) and the run folder of an emulated run.

use anyhow::Context as _;
use otpfleet_client::{HttpTransport, Spread, Target, tls_config};
use otpfleet_emulator::reference::{self, EmbeddedServer};
use otpfleet_server::{ServerConfig, TokioClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The admin token in an `--admin-token-file`.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let bad = |why: String| {
        crate::BadInput(format!(
            "--admin-token-file {}: {why}: give a file that holds the admin token",
            path.display()
        ))
    };
    let text = otpfleet_reports::read_text(path, 64 * 1024)
        .map_err(|e| bad(format!("while reading the admin token file: {e}")))?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(bad("the file is empty".to_owned()).into());
    }
    Ok(token)
}

/// The server a run drives.
#[derive(Debug)]
pub struct Driven {
    pub url: String,
    pub admin_token: String,
    /// The reference server started for the run, kept running while this lives (none with
    /// `--target`).
    pub embedded: Option<EmbeddedServer>,
}

/// The server to drive: `target` with its token, or the reference server started on
/// `127.0.0.1:0`.
pub async fn server(
    target: Option<&str>,
    token: Option<String>,
    poll_interval_s: u32,
) -> anyhow::Result<Driven> {
    if let (Some(url), Some(token)) = (target, token) {
        let urls: Vec<&str> = replicas(url).map(|u| u.trim_end_matches('/')).collect();
        return Ok(Driven {
            url: urls.join(","),
            admin_token: token,
            embedded: None,
        });
    }
    let config = ServerConfig {
        poll_interval_s,
        ..ServerConfig::default()
    };
    let clock = Arc::new(TokioClock::new(crate::wall_clock_ms()));
    let server = reference::start(config, clock)
        .await
        .context("while starting the reference server")?;
    Ok(Driven {
        url: server.url(),
        admin_token: server.admin_token.clone(),
        embedded: Some(server),
    })
}

/// The edge a command starts at: the wall clock and the machine's CPU counters, read once.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub ms: u64,
    cpu: Option<CpuTicks>,
}

impl Started {
    pub fn now() -> Started {
        Started {
            ms: crate::wall_clock_ms(),
            cpu: CpuTicks::read(),
        }
    }
}

/// Where, when and how a run was made: `started` read when the command started, the end read
/// now (both at the edges of the run).
pub fn run_meta(
    started: &Started,
    goose_options: Option<serde_json::Value>,
) -> otpfleet_reports::RunMeta {
    use otpfleet_server::clock::rfc3339;
    otpfleet_reports::RunMeta {
        started_at: rfc3339(started.ms),
        ended_at: rfc3339(crate::wall_clock_ms()),
        host: host_name(),
        command_line: std::env::args().collect(),
        git_commit: env!("OTPFLEET_GIT_COMMIT").to_owned(),
        goose_options,
        machine: started
            .cpu
            .zip(CpuTicks::read())
            .and_then(|(start, end)| start.others_until(end)),
    }
}

/// CPU time in clock ticks (`/proc`'s USER_HZ): the whole machine's and this process's.
#[derive(Debug, Clone, Copy)]
struct CpuTicks {
    total: u64,
    busy: u64,
    own: u64,
    cpus: u32,
}

impl CpuTicks {
    /// Read from `/proc/stat` and `/proc/self/stat`; `None` where they are not (not Linux).
    fn read() -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // user nice system idle iowait irq softirq steal (guest time is counted in user).
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = fields.iter().sum();
        let idle = fields.get(3)? + fields.get(4)?;
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name (which may hold spaces): state, then utime and stime 11 and
        // 12 fields on.
        let after: Vec<&str> = own_stat.rsplit_once(')')?.1.split_whitespace().collect();
        let own = after.get(11)?.parse::<u64>().ok()? + after.get(12)?.parse::<u64>().ok()?;
        Some(CpuTicks {
            total,
            busy: total.saturating_sub(idle),
            own,
            cpus: u32::try_from(cpus).ok()?,
        })
    }

    /// What other processes took of the machine from `self` to `end`.
    fn others_until(self, end: CpuTicks) -> Option<otpfleet_reports::MachineLoad> {
        let total = end.total.checked_sub(self.total).filter(|t| *t > 0)?;
        let busy = end.busy.saturating_sub(self.busy);
        let own = end.own.saturating_sub(self.own);
        let pct = busy.saturating_sub(own) as f64 / total as f64 * 100.0;
        Some(otpfleet_reports::MachineLoad {
            cpus: end.cpus,
            others_cpu_pct: (pct * 10.0).round() / 10.0,
        })
    }
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The run folder: `--out` as given, or the default one under `runs/` (never one that holds an
/// earlier run), made ready before the run starts: a file, an unwritable place or a folder of
/// other things is refused at once; the folder of an earlier run is emptied (see
/// `reports::prepare_out`).
pub fn run_folder(given: Option<&Path>, default: &Path) -> anyhow::Result<PathBuf> {
    let out = given.map_or_else(
        || otpfleet_reports::unused_folder(default),
        Path::to_path_buf,
    );
    match otpfleet_reports::prepare_out(&out) {
        Ok(otpfleet_reports::Prepared::ReplacedEarlierRun) => {
            eprintln!("--out {}: the earlier run there is replaced", out.display());
            Ok(out)
        }
        Ok(otpfleet_reports::Prepared::Fresh) => Ok(out),
        Err(e) => Err(crate::BadInput(e.to_string()).into()),
    }
}

/// The replicas a `--target` names: one URL, or several separated by commas (replicas of one
/// server, each request to the next).
pub fn replicas(target: &str) -> impl Iterator<Item = &str> {
    target.split(',').map(str::trim)
}

/// Checks `--target`, `--admin-token-file` and `--ca-cert` together: a token file without a
/// target would be ignored, and so would a CA certificate without an https:// target, so both
/// are refused; each URL must be one the client can drive (scheme, host, port, base path), and
/// the replicas of one target speak one scheme.
pub fn check_target(
    target: Option<&str>,
    token_file: Option<&Path>,
    ca_cert: Option<&Path>,
) -> anyhow::Result<()> {
    let bad = |m: String| Err(crate::BadInput(m).into());
    if let (None, Some(file)) = (target, token_file) {
        return bad(format!(
            "--admin-token-file {} is for a --target; the embedded reference server makes its own \
             token (drop the flag, or add --target URL)",
            file.display()
        ));
    }
    let mut parsed: Option<Target> = None;
    for url in target.into_iter().flat_map(replicas) {
        let t = match url.parse::<Target>() {
            Ok(t) => t,
            Err(e) => return bad(format!("--target: {e}")),
        };
        match &parsed {
            Some(first) if first.tls != t.tls => {
                return bad(format!(
                    "--target: {} and {} are replicas of one server but one is https:// and \
                     the other not: give them one scheme",
                    first.url(),
                    t.url()
                ));
            }
            Some(_) => {}
            None => parsed = Some(t),
        }
    }
    match (parsed, ca_cert) {
        (Some(t), Some(_)) if !t.tls => bad(format!(
            "--ca-cert is for an https:// target; {} is plain HTTP (drop the flag, or use https://)",
            t.url()
        )),
        (None, Some(_)) => bad(
            "--ca-cert is for an https:// --target; the embedded reference server speaks plain \
             HTTP (drop the flag, or add --target https://...)"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Checks, before anything is said or changed on it, that the server at `target` (each of its
/// replicas) answers and takes the admin token read from `token_file`: one GET of its
/// preferences. A refused token or a URL that is not the contract's base is bad input, said
/// with the fix.
pub async fn check_access(
    target: &str,
    ca_cert: Option<&Path>,
    token: &str,
    token_file: &Path,
) -> anyhow::Result<()> {
    for url in replicas(target) {
        check_replica(url, ca_cert, token, token_file).await?;
    }
    Ok(())
}

async fn check_replica(
    url: &str,
    ca_cert: Option<&Path>,
    token: &str,
    token_file: &Path,
) -> anyhow::Result<()> {
    use otpfleet_client::Transport as _;
    let transport = transport(url, ca_cert, 1, std::time::Duration::from_secs(10))?;
    let req = otpfleet_client::calls::get_preferences(token);
    let answer = transport.send(req).await.map_err(|e| {
        anyhow::anyhow!("--target {url}: {e}: check its address and port, and that the server runs")
    })?;
    let bad = |why: String| Err(crate::BadInput(why).into());
    match answer.status {
        _ if answer.ok() => Ok(()),
        401 | 403 => bad(format!(
            "--admin-token-file {}: the server at {url} refused the token in it (HTTP {}): put \
             this server's admin token in the file",
            token_file.display(),
            answer.status
        )),
        404 => bad(format!(
            "--target {url}: the server answered 404 to its preferences route: give the base \
             URL of a server implementing the contract (the one its routes are under)"
        )),
        status => Err(anyhow::anyhow!(
            "--target {url}: asked for its preferences, the server answered HTTP {status}: {}",
            String::from_utf8_lossy(&answer.body).trim()
        )),
    }
}

/// The client transport to `target` (its replicas in turn, `max_connections` to each): TLS
/// with the platform's roots or `--ca-cert`'s for https://.
pub fn transport(
    target: &str,
    ca_cert: Option<&Path>,
    max_connections: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<Spread> {
    let mut all = Vec::new();
    for url in replicas(target) {
        let target: Target = url
            .parse()
            .map_err(|e| crate::BadInput(format!("--target: {e}")))?;
        let tls = if target.tls {
            Some(tls_config(ca_cert).map_err(|e| crate::BadInput(format!("--ca-cert: {e}")))?)
        } else {
            None
        };
        all.push(HttpTransport::to(target, tls, max_connections, timeout));
    }
    Ok(Spread::over(all))
}
