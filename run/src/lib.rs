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
pub use ending::{BadInput, Ending, MissedStart, breached, ending, exit};

/// Milliseconds since the Unix epoch: the wall clock, read only at the edge of the program.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
