//! The emulator's errors at its library boundary. Messages name what is wrong in the run's own
//! terms; a front end (the CLI) says which of its flags sets it.

use otpfleet_client::AdminError;

/// A fleet setting out of range, or settings that cannot work together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the number of consoles must be between 1 and {max}, not {got}")]
    Consoles { got: u64, max: u64 },
    #[error(
        "no admins and no auto approval: nobody would approve; add admins or turn on auto approval"
    )]
    NobodyApproves,
    #[error("at most {max} admins, not {got}")]
    Admins { got: u32, max: u32 },
    #[error("the OTP validity must be between 1 and 336 hours, not {0}")]
    ValidityHours(u32),
    #[error("at most {max} retries, not {got}")]
    Retries { got: u32, max: u32 },
    #[error("the request timeout and the run's time limit must be above zero")]
    ZeroTime,
    #[error("at least one console must be allowed in flight")]
    NoneInFlight,
    #[error(
        "the replayed arrivals are {rows}, fewer than the {consoles} consoles: run at most {rows}"
    )]
    ReplayTooShort { rows: u64, consoles: u64 },
    #[error(
        "{schedule} brings {brings} consoles over its {stages_s} s: its stages fix the count (as \
         k6's and Gatling's do), so leave the console count out or make it {brings}; {consoles} \
         consoles {would}"
    )]
    StagesFixCount {
        schedule: String,
        brings: u64,
        stages_s: String,
        consoles: u64,
        would: String,
    },
    #[error(
        "a console shard runs no admins: the admin process (role admins) works the approval \
         queue for every shard; give it the number of admins"
    )]
    AdminsInConsoleShard,
    #[error("with auto approval there is no approval queue for an admin process to work")]
    NothingToApprove,
    #[error(
        "the admin process is one for the whole run: shard the console processes, not the admins"
    )]
    ShardedAdmins,
}

/// Why a fleet or a rehearsal could not run (one that starts and then meets a dead server ends
/// early with a report instead: `complete: false`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server refused to be set up (or could not be reached while it was).
    #[error(transparent)]
    Setup(#[from] AdminError),
    /// The plan cannot be rehearsed (it starts before 1970, say).
    #[error("{0}")]
    Plan(String),
    /// This process was ready only after the run's common start and its grace period: it does
    /// not run, so that a late shard cannot skew the run.
    #[error(
        "ready {late_ms} ms after the common start, past its grace period of {grace_ms} ms: \
         this process does not run (a late shard would skew the run); start the run again with \
         a later start time"
    )]
    MissedStart { late_ms: u64, grace_ms: u64 },
    /// The simulated-time runtime could not start.
    #[error("could not start the simulated-time runtime: {0}")]
    Runtime(String),
}
