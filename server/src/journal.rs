//! The durable journal: domain events in an embedded redb database, written by one thread with
//! group commit.
//!
//! Why redb: a well-kept, pure-Rust, ACID embedded store with checksummed pages and a
//! crash-safe commit (no C toolchain, no background compaction to tune); our workload is an
//! append-only log of small records plus a few metadata keys, which one table keyed by sequence
//! number serves. Group commit: the writer takes every event waiting in its queue into one write
//! transaction, so one fsync covers many concurrent changes; a request is acknowledged only once
//! the journal is committed up to its event (`wait_durable`).

use crate::domain::{Event, EventSink};
use parking_lot::Mutex;
use redb::{Database, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::watch;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Most events one commit takes.
const MAX_GROUP: usize = 8_192;
const DB_FILE: &str = "otpfleet.redb";

/// Why a data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot create the data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the data directory {path} is in use by another server (its database is locked); stop that server or pick another --data-dir"
    )]
    InUse { path: PathBuf },
    #[error(
        "cannot open {path}: {reason}; the file is corrupt or truncated. It was left as it is: restore it from a backup or move it away to start empty"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: event {seq} cannot be replayed: {reason}. The data directory was left as it is"
    )]
    Replay {
        path: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error("the journal could not be written: {0}")]
    Write(String),
}

/// What was recovered from a data directory.
#[derive(Debug)]
pub struct Recovered {
    /// The server secret (kept so OTP hashes stay valid across restarts).
    pub secret: [u8; 32],
    /// Every journaled event, in order.
    pub events: Vec<(u64, Event)>,
}

/// An event on its way to the writer: sequence number and encoded bytes.
type Queued = (u64, Vec<u8>);

/// The journal of a durable server.
#[derive(Debug)]
pub struct Journal {
    /// The last sequence number given out, and the writer's queue.
    queue: Mutex<(u64, mpsc::Sender<Queued>)>,
    appended: AtomicU64,
    committed: watch::Receiver<Result<u64, String>>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, answering it and what it holds. `fresh_secret`
    /// is stored as the server secret when the directory is new.
    pub fn open(dir: &Path, fresh_secret: [u8; 32]) -> Result<(Journal, Recovered), JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        // redb asserts (panics) on some truncated files instead of answering an error: a
        // damaged data directory must be reported, so the panic is caught and reported as one.
        let opened =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Database::create(&path)));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(JournalError::InUse { path: path.clone() });
            }
            Ok(Err(other)) => {
                return Err(JournalError::Corrupt {
                    path: path.clone(),
                    reason: other.to_string(),
                });
            }
            Err(_) => {
                return Err(JournalError::Corrupt {
                    path: path.clone(),
                    reason: "the file is shorter than its own header says (truncated)".into(),
                });
            }
        };
        restrict_permissions(&path);
        let corrupt = |e: &dyn std::fmt::Display| JournalError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        };
        let secret = load_or_store_secret(&db, fresh_secret).map_err(|e| corrupt(&e))?;
        let events = read_events(&db, &path)?;
        let last = events.last().map_or(0, |(seq, _)| *seq);
        let (tx, rx) = mpsc::channel::<(u64, Vec<u8>)>();
        let (committed_tx, committed) = watch::channel(Ok(last));
        std::thread::Builder::new()
            .name("otpfleet-journal".into())
            .spawn(move || writer(db, rx, committed_tx))
            .map_err(|e| JournalError::Write(e.to_string()))?;
        let journal = Journal {
            queue: Mutex::new((last, tx)),
            appended: AtomicU64::new(last),
            committed,
        };
        Ok((journal, Recovered { secret, events }))
    }

    /// Waits until every event up to `seq` is committed.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        let mut rx = self.committed.clone();
        let result = rx
            .wait_for(|c| match c {
                Ok(done) => *done >= seq,
                Err(_) => true,
            })
            .await
            .map_err(|_| JournalError::Write("the journal writer stopped".into()))?;
        match &*result {
            Ok(_) => Ok(()),
            Err(e) => Err(JournalError::Write(e.clone())),
        }
    }
}

impl EventSink for Journal {
    fn append(&self, event: &Event) -> u64 {
        let bytes = serde_json::to_vec(event).unwrap_or_default();
        // Numbering and queueing under one short lock keeps the queue in sequence order.
        let mut q = self.queue.lock();
        q.0 += 1;
        let seq = q.0;
        let _ = q.1.send((seq, bytes));
        self.appended.store(seq, Ordering::Release);
        seq
    }

    fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }
}

/// The writer thread: one transaction per group of waiting events.
fn writer(
    db: Database,
    rx: mpsc::Receiver<(u64, Vec<u8>)>,
    committed: watch::Sender<Result<u64, String>>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let last = group.last().map_or(0, |(seq, _)| *seq);
        match commit(&db, &group) {
            Ok(()) => {
                let _ = committed.send_replace(Ok(last));
            }
            Err(e) => {
                // Nothing after a failed commit can be acknowledged: every waiter gets the error.
                let _ = committed.send_replace(Err(e));
                return;
            }
        }
    }
}

/// One row per group, keyed by the group's first sequence number: each event as a 4-byte
/// little-endian length and its JSON. One B-tree insert per commit instead of one per event.
fn commit(db: &Database, group: &[(u64, Vec<u8>)]) -> Result<(), String> {
    let Some((first, _)) = group.first() else {
        return Ok(());
    };
    let mut row = Vec::with_capacity(group.iter().map(|(_, b)| b.len() + 4).sum());
    for (_, bytes) in group {
        row.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        row.extend_from_slice(bytes);
    }
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(EVENTS).map_err(|e| e.to_string())?;
        table
            .insert(*first, row.as_slice())
            .map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())
}

fn load_or_store_secret(db: &Database, fresh: [u8; 32]) -> Result<[u8; 32], String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let secret = {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let existing = meta
            .get("secret")
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec());
        match existing {
            Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| "the stored server secret has the wrong length".to_owned())?,
            None => {
                meta.insert("secret", fresh.as_slice())
                    .map_err(|e| e.to_string())?;
                fresh
            }
        }
    };
    txn.commit().map_err(|e| e.to_string())?;
    Ok(secret)
}

fn read_events(db: &Database, path: &Path) -> Result<Vec<(u64, Event)>, JournalError> {
    let corrupt = |e: &dyn std::fmt::Display| JournalError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let txn = db.begin_read().map_err(|e| corrupt(&e))?;
    let table = match txn.open_table(EVENTS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(corrupt(&e)),
    };
    let mut events = Vec::new();
    for entry in table.iter().map_err(|e| corrupt(&e))? {
        let (first, row) = entry.map_err(|e| corrupt(&e))?;
        let first = first.value();
        let expected = events.len() as u64 + 1;
        if first != expected {
            return Err(JournalError::Replay {
                path: path.to_path_buf(),
                seq: expected,
                reason: format!("events {expected} to {} are missing", first - 1),
            });
        }
        let mut rest = row.value();
        while !rest.is_empty() {
            let seq = events.len() as u64 + 1;
            let replay = |reason: String| JournalError::Replay {
                path: path.to_path_buf(),
                seq,
                reason,
            };
            let (len, tail) = rest
                .split_at_checked(4)
                .ok_or_else(|| replay("a record is cut short".into()))?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let (bytes, tail) = tail
                .split_at_checked(len)
                .ok_or_else(|| replay("a record is cut short".into()))?;
            let event: Event =
                serde_json::from_slice(bytes).map_err(|e| replay(format!("not an event: {e}")))?;
            events.push((seq, event));
            rest = tail;
        }
    }
    Ok(events)
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The journal holds the server secret and passwords awaiting hand-over.
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}
