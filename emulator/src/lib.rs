//! The fleet emulator: virtual consoles walking the first boot with the faults real rollouts
//! meet, and virtual admins working the approval queue, against any server that implements the
//! contract, through a transport seam (real HTTP or the reference server in process).
//!
//! **Architecture invariant:** every choice a console makes comes from its own ChaCha stream,
//! seeded by (run seed, console index), so the same seed gives every console the same serial,
//! faults and typos whatever the scheduling. Every wait goes through tokio's clock, so a paused
//! runtime runs the same code in simulated time.

mod admin;
mod api;
pub mod arrival;
pub mod config;
mod console;
mod decisions;
mod error;
mod fleet;
pub mod live;
pub mod probe;
pub mod profile;
pub mod reference;
pub mod rehearsal;
pub mod schedule;
mod seed;
pub mod simulate;
mod stop;
mod streams;
mod tally;

pub use config::{FleetConfig, MsRange, Rate, Rates, Shard, Timing};
pub use console::ConsoleRecord;
pub use error::{ConfigError, RunError};
pub use fleet::{FleetRun, Progress, RunOptions, Start, profiles, run_fleet, write_consoles_csv};
pub use live::{Live, RehearsalLive};
pub use profile::{ConsoleProfile, admin_verdict};
pub use reference::InProcessTransport;
pub use seed::upn;
