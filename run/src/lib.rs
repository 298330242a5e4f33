//! One owner of an otpfleet run, below the command line and above the crates that run it
//! (`emulator`, `scenarios`) and measure it (`reports`): the server a run drives
//! (`target`), the run folder and its metadata, the signals that stop a run (`interrupt`),
//! the summary it prints and the verdict it reaches (`summary`), how a command ends and its
//! exit code (`ending`), and the live views a run serves while it goes (`live`).

mod ending;
pub mod interrupt;
pub mod live;
pub mod summary;
pub mod target;

pub use ending::{BadInput, Ending, MissedStart, breached, ending, exit};

/// Milliseconds since the Unix epoch: the wall clock, read only at the edge of the program.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
