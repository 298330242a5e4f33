//! What can go wrong reading, rendering, merging or comparing run folders. Every message names
//! the file or folder, so a person knows where to look.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    // The cause is part of each message (and not a `source`, which a chained print would
    // write a second time).
    #[error("while reading {path}: {reason}")]
    Read { path: PathBuf, reason: io::Error },
    #[error("while writing {path}: {reason}")]
    Write { path: PathBuf, reason: io::Error },
    #[error("{path} is not a report.json otpfleet can read: {reason}")]
    Json {
        path: PathBuf,
        reason: serde_json::Error,
    },
    #[error(
        "{path} has report schema version {found} (written by otpfleet {written_by}); this \
         otpfleet reads version {reads}: render or compare it with the otpfleet that wrote it, \
         or run it again"
    )]
    Version {
        path: PathBuf,
        found: u32,
        written_by: String,
        /// The version this otpfleet reads.
        reads: u32,
    },
    #[error("{path}: {message}")]
    Hlog { path: PathBuf, message: String },
    /// A report.json that parses but holds what no run can have.
    #[error("{path} is not a report any run wrote: {message}")]
    Implausible { path: PathBuf, message: String },
    /// Runs given to `merge` that are not shards of one run.
    #[error("{dir} does not belong with {first}: {difference}")]
    Mismatch {
        dir: PathBuf,
        first: PathBuf,
        difference: String,
    },
    /// The shards given to `merge` do not make up a whole run.
    #[error("{0}")]
    Shards(String),
}
