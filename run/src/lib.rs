//! One owner of an otpfleet run, below the command line and above the crates that run it
//! (`emulator`, `scenarios`) and measure it (`reports`): the server a run drives
//! (`target`), the run folder and its metadata, the signals that stop a run (`interrupt`),
//! the summary it prints and the verdict it reaches (`summary`), how a command ends and its
//! exit code (`ending`), and the live views a run serves while it goes (`live`).

mod config;
mod ending;
pub mod folder;
pub mod interrupt;
pub mod live;
pub mod start;
pub mod summary;
pub mod target;

pub use config::RunConfig;
pub use ending::{BadInput, Ending, MissedStart, breached, ending, exit, judged};

/// Milliseconds since the Unix epoch: the wall clock, read only at the edge of the program.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Refuses a run that needs more memory than this process can have, before it starts (a
/// 10,000,000-console rehearsal once aborted 8 s in, allocating): the least of the memory
/// available (`/proc/meminfo`), the cgroup's limit (`memory.max`, as in a Kubernetes pod) and
/// the process's data limit (`ulimit -d`), read here at the edge. Where none can be read,
/// nothing is refused.
pub fn check_memory(needed: u64, what: &str) -> anyhow::Result<()> {
    let Some((available, source)) = memory_available() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    let gb = |b: u64| b as f64 / 1e9;
    Err(BadInput(format!(
        "{what} needs about {:.1} GB of memory, and this process can have {:.1} GB ({source}): \
         run fewer consoles, or split the run",
        gb(needed),
        gb(available)
    ))
    .into())
}

/// The least of what the system, the cgroup and the process's limit allow, and which it is.
fn memory_available() -> Option<(u64, &'static str)> {
    let field = |text: &str, name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let system = meminfo
        .as_deref()
        .and_then(|t| field(t, "MemAvailable:"))
        .map(|kb| (kb.saturating_mul(1024), "available memory"));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(|b| (b, "the cgroup's memory.max"));
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    let data = limits
        .as_deref()
        .and_then(|t| t.lines().find(|l| l.starts_with("Max data size")))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .map(|b| (b, "the data size limit, ulimit -d"));
    [system, cgroup, data]
        .into_iter()
        .flatten()
        .min_by_key(|(b, _)| *b)
}

/// The machine's cores (1 when it cannot tell): how much a run may do at once by default.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A seed for a run that was given none.
pub fn random_seed() -> u64 {
    // The seed is the one random choice of a run, so it comes from the OS once, here.
    let mut bytes = [0u8; 8];
    if getrandom(&mut bytes).is_err() {
        return u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes) % 1_000_000_000
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
