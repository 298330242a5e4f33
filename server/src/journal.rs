//! The durable journal: domain events in an embedded redb database, written by one thread with
//! group commit, hash-chained so that it is also the tamper-evident audit log.
//!
//! Why redb: a well-kept, pure-Rust, ACID embedded store with checksummed pages and a
//! crash-safe commit (no C toolchain, no background compaction to tune); our workload is an
//! append-only log of small records plus a few metadata keys, which one table keyed by sequence
//! number serves. Group commit: the writer takes every event waiting in its queue into one write
//! transaction, so one fsync covers many concurrent changes; a request is acknowledged only once
//! the journal is committed up to its event (`wait_durable`).
//!
//! The chain: every record carries `link = SHA-256(previous link || seq || at_ms || event JSON)`
//! (the first record's previous link is 32 zero bytes). Editing a record breaks its own link;
//! removing one breaks the next record's link, or leaves a gap in the sequence numbers. Opening
//! a journal checks the whole chain, so a server never starts on a log that was tampered with;
//! [`verify`] does the same offline and names the first broken entry. What a chain cannot show
//! on its own is a rewrite of every link from some point on, or a cut at the end: keep the head
//! link `otpfleet audit verify` prints somewhere else to detect those.

use crate::clock::Clock;
use crate::domain::{Event, EventSink, Reserved};
use crate::simdisk::Defect;
use parking_lot::Mutex;
use redb::{Database, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::watch;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Most events one commit takes.
const MAX_GROUP: usize = 8_192;
/// The database file inside a data directory.
pub const DB_FILE: &str = "otpfleet.redb";
/// The record layout this build writes and reads (stored under `format` in the meta table).
const FORMAT: &[u8] = b"2";
/// Bytes before a record's JSON: length (4), time (8), link (32).
const HEADER: usize = 4 + 8 + 32;

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
        "{path}: event {seq} cannot be replayed: {reason}. The data directory was left as it is: \
         keep a copy of it, and report the entry `otpfleet audit verify` names (a newer otpfleet \
         may replay it, as this one replays account creations an older one journaled out of order)"
    )]
    Replay {
        path: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error(
        "{path}: entry {seq} breaks the audit chain: {reason}. The log was edited or damaged after it was written; the data directory was left as it is"
    )]
    Broken {
        path: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error("{dir} is no data directory (it has no {DB_FILE}); give the --data-dir of a server")]
    Missing { dir: PathBuf },
    #[error("the journal could not be written: {0}")]
    Write(String),
}

/// One journaled record: an event, when it was recorded and its link in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub at_ms: u64,
    pub link: [u8; 32],
    pub event: Event,
}

/// What was recovered from a data directory.
#[derive(Debug)]
pub struct Recovered {
    /// The server secret (kept so OTP hashes stay valid across restarts).
    pub secret: [u8; 32],
    /// Every journaled record, in order, its chain checked.
    pub entries: Vec<Entry>,
    /// How many times this journal has been opened, this time included (1 for a new one): each
    /// start numbers its ids from its own range, so no id is handed out twice across a crash.
    pub starts: u64,
}

/// The journal of a durable server.
///
/// A write that fails (a full disk, an I/O error) stops this journal for good: the waiters of
/// everything not committed get the error, and so does every later wait. The server then
/// refuses changes and rebuilds its state from a journal opened anew (see `App::recover`), so
/// that a change it refused is not left applied in memory.
pub struct Journal {
    queue: Mutex<Queue>,
    appended: AtomicU64,
    progress: watch::Receiver<Progress>,
    /// Where records get their time (read under the queue lock, so times never go backwards
    /// along the log with a monotonic clock).
    clock: Arc<dyn Clock>,
    /// The database, until the journal is closed after a failure (a new journal can open the
    /// file only once nothing holds it).
    db: Mutex<Option<Arc<Database>>>,
    path: PathBuf,
    /// Where it lives, to open it anew after a failure.
    storage: crate::Storage,
    committer: Committer,
    counters: Arc<Counters>,
}

/// Who commits what is sent to the writer.
enum Committer {
    /// A thread of its own, which takes whatever has arrived when it is free (a real disk).
    Thread(Option<std::thread::JoinHandle<()>>),
    /// On a simulated disk, whoever waits for the journal, at that moment: what makes a group
    /// then depends on the order of the calls, never on how threads were scheduled, so a
    /// simulation replays byte for byte. `sent` wakes waiters whose change was not sent yet.
    /// The writer holds the database as long as the journal lives (requests waiting for a
    /// recovery hold it past the reopen); that is safe because redb writes nothing more once
    /// an I/O error has failed it, which is what stops a journal.
    Inline {
        writer: Mutex<Writer>,
        sent: tokio::sync::Notify,
    },
}

/// Where changes are numbered and handed to the writer (under one lock, so numbers follow the
/// order changes were applied in).
struct Queue {
    /// The last sequence number given out.
    last: u64,
    /// The writer's queue of units.
    to_writer: mpsc::Sender<Vec<Reserved>>,
}

/// How far the writer got, and why it stopped if it did.
#[derive(Debug, Clone)]
struct Progress {
    committed: u64,
    failure: Option<String>,
}

/// What the writer has done since the journal was opened (for `/metrics`).
#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    commit_us: AtomicU64,
    /// Set once a write failed (before the failure is published in `Progress`): every request
    /// asks whether the journal failed, and reads this rather than the watch's lock.
    failed: AtomicBool,
}

/// The journal's figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JournalStats {
    /// Entries in the log (committed), recovered ones included.
    pub entries: u64,
    /// Commit transactions (each one fsync) since the journal was opened.
    pub commits: u64,
    /// Time spent committing since the journal was opened.
    pub commit_seconds: f64,
    /// Whether the journal takes changes (no write has failed).
    pub writable: bool,
}

impl Committer {
    /// `writer` at work for a journal on `storage`.
    fn start(storage: &crate::Storage, writer: Writer) -> Result<Committer, JournalError> {
        Ok(match storage {
            crate::Storage::Simulated(_) => Committer::Inline {
                writer: Mutex::new(writer),
                sent: tokio::sync::Notify::new(),
            },
            crate::Storage::Durable(_) | crate::Storage::InMemory => Committer::Thread(Some(
                std::thread::Builder::new()
                    .name("otpfleet-journal".into())
                    .spawn(move || writer.run())
                    .map_err(|e| JournalError::Write(e.to_string()))?,
            )),
        })
    }
}

impl Drop for Journal {
    /// Closes the journal: the writer commits what is queued and lets go of the database, so
    /// the directory can be opened again as soon as this returns.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(
            &mut self.queue.get_mut().to_writer,
            closed,
        ));
        match &mut self.committer {
            Committer::Thread(writer) => {
                if let Some(writer) = writer.take() {
                    let _ = writer.join();
                }
            }
            Committer::Inline { writer, .. } => writer.get_mut().drain(),
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.path.display())
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, answering it and what it holds (the chain
    /// checked). A new directory gets a new server secret from the OS's CSPRNG; records get
    /// their time from `clock`.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<(Journal, Recovered), JournalError> {
        Journal::open_on(&crate::Storage::Durable(dir.to_path_buf()), clock)
    }

    /// Opens (or creates) the journal of `storage`: a data directory, or a simulated disk
    /// (`simdisk`, whose path in messages is `simulated-disk/otpfleet.redb`). Not in memory.
    pub fn open_on(
        storage: &crate::Storage,
        clock: Arc<dyn Clock>,
    ) -> Result<(Journal, Recovered), JournalError> {
        Journal::open_keeping(storage, clock, None)
    }

    /// [`Journal::open_on`] after this process's journal of `storage` failed, having
    /// acknowledged entries up to `kept_through`: the entries after it were refused (each of
    /// their requests answered `storage_unavailable`), so they are removed before anything is
    /// replayed, even if a sync that failed left them on the disk. Without this a refused
    /// change came back with the recovery (the simulated disk showed it).
    pub fn reopen_on(
        storage: &crate::Storage,
        clock: Arc<dyn Clock>,
        kept_through: u64,
    ) -> Result<(Journal, Recovered), JournalError> {
        Journal::open_keeping(storage, clock, Some(kept_through))
    }

    fn open_keeping(
        storage: &crate::Storage,
        clock: Arc<dyn Clock>,
        kept_through: Option<u64>,
    ) -> Result<(Journal, Recovered), JournalError> {
        let (db, path) = open_database(storage)?;
        let mut fresh_secret = [0u8; 32];
        storage.entropy().fill(&mut fresh_secret);
        // Opening writes (the time it was opened): a journal that opens is one that can be
        // written, so a server recovering from a full disk does not declare itself writable on
        // a disk that is still full (it once did, 12 times in 15 s, each replaying everything).
        let opened_ms = clock.now_ms();
        let (secret, starts) = load_or_store_meta(&db, fresh_secret, opened_ms).map_err(|e| {
            if e.starts_with(WRITE_FAILED) {
                JournalError::Write(e)
            } else {
                corrupt(&path, e)
            }
        })?;
        // After the write at open, which must find room of its own: removing refused rows
        // frees pages, and a server on a full disk would then take itself for writable.
        if let Some(kept) = kept_through {
            drop_refused(&db, kept).map_err(JournalError::Write)?;
        }
        let mut entries = read_all(&db, &path)?;
        if planted(storage) == Some(Defect::SkipLastGroup) {
            skip_last_group(&db, &path, &mut entries)?;
        }
        let (last, link) = entries.last().map_or((0, [0; 32]), |e| (e.seq, e.link));
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Vec<Reserved>>();
        let (progress_tx, progress) = watch::channel(Progress {
            committed: last,
            failure: None,
        });
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            db: Arc::clone(&db),
            waiting: Waiting::new(last),
            link,
            rx,
            progress: progress_tx,
            counters: Arc::clone(&counters),
        };
        let committer = Committer::start(storage, writer)?;
        let journal = Journal {
            queue: Mutex::new(Queue {
                last,
                to_writer: tx,
            }),
            appended: AtomicU64::new(last),
            progress,
            clock,
            db: Mutex::new(Some(db)),
            path,
            storage: storage.clone(),
            committer,
            counters,
        };
        Ok((
            journal,
            Recovered {
                secret,
                entries,
                starts,
            },
        ))
    }

    /// Entries committed so far, and the writer's work since the journal was opened.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            entries: self.progress.borrow().committed,
            writable: !self.counters.failed.load(Ordering::Acquire),
            commits: self.counters.commits.load(Ordering::Relaxed),
            commit_seconds: self.counters.commit_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// Up to `limit` committed entries after sequence number `after`, oldest first.
    pub fn page(&self, after: u64, limit: usize) -> Result<Vec<Entry>, JournalError> {
        let db = self.db.lock().clone().ok_or_else(|| self.stopped())?;
        let txn = db.begin_read().map_err(|e| corrupt(&self.path, e))?;
        let Some(table) = events_table(&txn, &self.path)? else {
            return Ok(Vec::new());
        };
        // The row holding entry `after + 1` starts at or before it.
        let start = table
            .range(..=after.saturating_add(1))
            .map_err(|e| corrupt(&self.path, e))?
            .next_back()
            .transpose()
            .map_err(|e| corrupt(&self.path, e))?
            .map_or(1, |(first, _)| first.value());
        let mut out = Vec::with_capacity(limit.min(1024));
        for row in table.range(start..).map_err(|e| corrupt(&self.path, e))? {
            let (first, bytes) = row.map_err(|e| corrupt(&self.path, e))?;
            let mut seq = first.value();
            let mut rest = bytes.value();
            while !rest.is_empty() {
                let (record, tail) =
                    split_record(rest).map_err(|reason| broken(&self.path, seq, reason))?;
                if seq > after {
                    out.push(record.entry(seq).map_err(|r| broken(&self.path, seq, r))?);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
                seq += 1;
                rest = tail;
            }
        }
        Ok(out)
    }

    /// Waits until every event up to `seq` is committed; an error once the writer has failed
    /// before getting there (what it did commit before failing stays acknowledged).
    pub async fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        if let Committer::Inline { writer, sent } = &self.committer {
            loop {
                let mut later = std::pin::pin!(sent.notified());
                later.as_mut().enable();
                writer.lock().drain();
                let p = self.progress.borrow().clone();
                if p.committed >= seq || p.failure.is_some() {
                    break;
                }
                later.await;
            }
        }
        let mut rx = self.progress.clone();
        let progress = rx
            .wait_for(|p| p.committed >= seq || p.failure.is_some())
            .await
            .map_err(|_| self.stopped())?;
        match &progress.failure {
            _ if progress.committed >= seq => Ok(()),
            Some(why) => Err(JournalError::Write(why.clone())),
            None => Err(self.stopped()),
        }
    }

    /// Why the journal stopped writing, once it has.
    pub fn failure(&self) -> Option<String> {
        if !self.counters.failed.load(Ordering::Acquire) {
            return None;
        }
        self.progress.borrow().failure.clone()
    }

    /// Resolves once the journal has stopped writing (at once if it has).
    pub async fn failed(&self) {
        let mut rx = self.progress.clone();
        let _ = rx.wait_for(|p| p.failure.is_some()).await;
    }

    /// Where this journal lives (to open it anew).
    pub fn storage(&self) -> &crate::Storage {
        &self.storage
    }

    /// The data directory this journal lives in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Lets go of the database after a failure, so that the directory can be opened anew once
    /// the requests still reading from it are done. The journal serves nothing after this.
    pub fn close(&self) {
        self.db.lock().take();
    }

    fn stopped(&self) -> JournalError {
        JournalError::Write(
            self.failure()
                .unwrap_or_else(|| "the journal writer stopped".into()),
        )
    }
}

impl EventSink for Journal {
    fn reserve(&self, event: &Event) -> Reserved {
        let bytes = serde_json::to_vec(event).expect("an event always serializes to JSON");
        // Numbering and stamping under one short lock: numbers follow the order changes were
        // applied in, and times never go backwards along the log with a monotonic clock.
        let mut q = self.queue.lock();
        q.last += 1;
        let seq = q.last;
        let at_ms = self.clock.now_ms();
        self.appended.store(seq, Ordering::Release);
        Reserved { seq, at_ms, bytes }
    }

    fn send_unit(&self, unit: Vec<Reserved>) {
        // A closed queue means the journal is being dropped; nothing waits for these any more.
        let _ = self.queue.lock().to_writer.send(unit);
        if let Committer::Inline { sent, .. } = &self.committer {
            sent.notify_waiters();
        }
    }

    fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }
}

/// What an offline check of a data directory found: how many entries, and the last link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub head: [u8; 32],
}

/// Reads a data directory without a server: every entry, the chain checked. Refused while a
/// server has the directory open (the database is locked).
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>, JournalError> {
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return Err(JournalError::Missing {
            dir: dir.to_path_buf(),
        });
    }
    let db = open_db(&path, |p| Database::open(p))?;
    read_all(&db, &path)
}

/// Checks the audit chain of a data directory offline; the error names the first broken entry.
pub fn verify(dir: &Path) -> Result<Verified, JournalError> {
    let entries = read_dir(dir)?;
    Ok(Verified {
        entries: entries.len() as u64,
        head: entries.last().map_or([0; 32], |e| e.link),
    })
}

/// The link of a record: SHA-256 over the previous link, the sequence number, the time and the
/// event's JSON.
pub fn link(previous: &[u8; 32], seq: u64, at_ms: u64, json: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(seq.to_le_bytes());
    h.update(at_ms.to_le_bytes());
    h.update(json);
    h.finalize().into()
}

/// Lower-case hex, for links shown to people.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The database of `storage` and its path (for messages): a data directory's file, created if
/// missing, or a simulated disk.
fn open_database(storage: &crate::Storage) -> Result<(Database, PathBuf), JournalError> {
    match storage {
        crate::Storage::Durable(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = dir.join(DB_FILE);
            if !path.exists() {
                create_whole(dir, &path)?;
            }
            let db = open_db(&path, |p| builder().create(p))?;
            restrict_permissions(&path);
            Ok((db, path))
        }
        crate::Storage::Simulated(disk) => {
            let path = Path::new("simulated-disk").join(DB_FILE);
            if disk.is_empty() {
                // As `create_whole` does on a real disk: made aside, then put in place at once.
                let aside = crate::simdisk::SimDisk::new(0, crate::simdisk::Faults::NONE);
                drop(open_db(&path, |_| {
                    builder().create_with_backend(aside.backend())
                })?);
                disk.install(aside.image()).map_err(|e| {
                    JournalError::Write(format!("cannot create {}: {e}", path.display()))
                })?;
            }
            let backend = disk.backend();
            let db = open_db(&path, |_| builder().create_with_backend(backend))?;
            Ok((db, path))
        }
        crate::Storage::InMemory => Err(JournalError::Write(
            "an in-memory server has no journal".into(),
        )),
    }
}

/// How a journal's database is opened: redb's file format 3, whose allocator state is written
/// transactionally. Format 2 writes it beside the header with no barrier between them when it
/// ends a repair (redb 2.6.4 `end_repair`), so a power loss can keep a header that says "clean"
/// over a stale allocator state, and the next commit then allocates a page still in use: the
/// simulation found it (a debug assertion, "Allocated a page that is still referenced!", about
/// once in 40 to 80 seeds). Directories made in format 2 are upgraded when opened.
fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    builder.create_with_file_format_v3(true);
    builder
}

/// Creates a new journal's database under a temporary name, synced, and renames it into place
/// (the directory synced too): a crash while a journal is created leaves no file or a whole
/// one. redb, cut while it creates a file, leaves one it refuses for good as "invalid data" (the
/// simulation found it).
fn create_whole(dir: &Path, path: &Path) -> Result<(), JournalError> {
    let io = |source| JournalError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let aside = path.with_extension("redb.new");
    match std::fs::remove_file(&aside) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    drop(open_db(&aside, |p| builder().create(p))?);
    std::fs::File::open(&aside)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&aside, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

/// Removes the rows after entry `kept` (refused groups a failed sync may have left).
fn drop_refused(db: &Database, kept: u64) -> Result<(), String> {
    let txn = db
        .begin_write()
        .map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
    {
        let mut table = txn
            .open_table(EVENTS)
            .map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
        let refused: Vec<u64> = table
            .range(kept.saturating_add(1)..)
            .map_err(|e| e.to_string())?
            .map(|row| row.map(|(first, _)| first.value()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for first in refused {
            table
                .remove(first)
                .map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
        }
    }
    txn.commit().map_err(|e| format!("{WRITE_FAILED}: {e}"))
}

/// The defect planted on `storage`, if it is a simulated disk with one.
pub(crate) fn planted(storage: &crate::Storage) -> Option<Defect> {
    match storage {
        crate::Storage::Simulated(disk) => disk.planted(),
        _ => None,
    }
}

/// The planted defect [`Defect::SkipLastGroup`]: recovery forgets the last group commit (the
/// last row), and the next commit then writes over it.
fn skip_last_group(
    db: &Database,
    path: &Path,
    entries: &mut Vec<Entry>,
) -> Result<(), JournalError> {
    let txn = db.begin_read().map_err(|e| corrupt(path, e))?;
    let Some(table) = events_table(&txn, path)? else {
        return Ok(());
    };
    if let Some((first, _)) = table.last().map_err(|e| corrupt(path, e))? {
        entries.truncate(usize::try_from(first.value().saturating_sub(1)).unwrap_or(usize::MAX));
    }
    Ok(())
}

fn open_db(
    path: &Path,
    open: impl FnOnce(&Path) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, JournalError> {
    // redb asserts (panics) on some truncated files instead of answering an error: a damaged
    // data directory must be reported, so the panic is caught and reported as one.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open(path)));
    match opened {
        // A directory made in redb's format 2 (before this build) moves to format 3 once.
        Ok(Ok(mut db)) => match db.upgrade() {
            Ok(_) => Ok(db),
            Err(e) => Err(JournalError::Write(format!(
                "cannot upgrade {} to redb's file format 3: {e}",
                path.display()
            ))),
        },
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(JournalError::InUse {
            path: path.to_path_buf(),
        }),
        // The disk failed (full, an I/O error), not the file: say so, and do not call the file
        // corrupt (the simulated disk found this message wrong for a full disk).
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))) => Err(
            JournalError::Write(format!("cannot open {}: {e}", path.display())),
        ),
        Ok(Err(other)) => Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            reason: other.to_string(),
        }),
        Err(_) => Err(JournalError::Corrupt {
            path: path.to_path_buf(),
            reason: "the file is shorter than its own header says (truncated)".into(),
        }),
    }
}

/// The writer: one transaction per group of waiting units, in sequence order, each record
/// linked to the one before.
struct Writer {
    db: Arc<Database>,
    waiting: Waiting,
    /// The link of the last record committed.
    link: [u8; 32],
    rx: mpsc::Receiver<Vec<Reserved>>,
    progress: watch::Sender<Progress>,
    counters: Arc<Counters>,
}

impl Writer {
    /// The writer thread: commits what arrives until the journal is dropped or a commit fails.
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            if !self.commit_with(first) {
                return;
            }
        }
    }

    /// Commits everything sent so far (a simulated disk's journal, which has no thread).
    fn drain(&mut self) {
        while !self.counters.failed.load(Ordering::Acquire) {
            match self.rx.try_recv() {
                Ok(first) => {
                    self.commit_with(first);
                }
                Err(_) => return,
            }
        }
    }

    /// Commits `first` with whatever else has arrived (a group); false once a commit failed.
    fn commit_with(&mut self, first: Vec<Reserved>) -> bool {
        self.waiting.add(first);
        while self.waiting.events() < MAX_GROUP {
            match self.rx.try_recv() {
                Ok(next) => self.waiting.add(next),
                Err(_) => break,
            }
        }
        let group = self.waiting.take_committable();
        let Some(last) = group.last().map(|r| r.seq) else {
            return true;
        };
        let started = std::time::Instant::now();
        let done = commit(&self.db, &group, &mut self.link);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters.commit_us.fetch_add(took, Ordering::Relaxed);
        match done {
            Ok(()) => {
                self.progress.send_modify(|p| p.committed = last);
                true
            }
            Err(e) => {
                // Nothing after a failed commit can be acknowledged: every waiter of it, and
                // of anything later, gets the error. redb answers nothing more after an I/O
                // error (not even reads): the database is let go of here, and the server
                // opens it anew (see `Journal::close`).
                self.counters.failed.store(true, Ordering::Release);
                self.progress.send_modify(|p| p.failure = Some(e));
                false
            }
        }
    }
}

/// Units the writer has received and not committed yet. Units arrive in any order (a long
/// import is sent when it ends, its numbers taken as it went); the writer commits only a run of
/// numbers with none missing, and never part of a unit.
struct Waiting {
    /// The first number not committed yet.
    next: u64,
    /// By the unit's lowest number: its highest number and its events.
    units: BTreeMap<u64, (u64, Vec<Reserved>)>,
    received: BTreeSet<u64>,
}

impl Waiting {
    fn new(last_committed: u64) -> Waiting {
        Waiting {
            next: last_committed + 1,
            units: BTreeMap::new(),
            received: BTreeSet::new(),
        }
    }

    fn add(&mut self, unit: Vec<Reserved>) {
        let (Some(low), Some(high)) = (
            unit.iter().map(|r| r.seq).min(),
            unit.iter().map(|r| r.seq).max(),
        ) else {
            return;
        };
        self.received.extend(unit.iter().map(|r| r.seq));
        self.units.insert(low, (high, unit));
    }

    fn events(&self) -> usize {
        self.received.len()
    }

    /// The events that can be committed now, in number order: the longest run from `next`
    /// with no number missing, cut before any unit that reaches past it.
    fn take_committable(&mut self) -> Vec<Reserved> {
        let mut end = self.next - 1;
        for seq in self.received.range(self.next..) {
            if *seq != end + 1 {
                break;
            }
            end = *seq;
        }
        while let Some(low) = self
            .units
            .range(..=end)
            .find(|(_, (high, _))| *high > end)
            .map(|(low, _)| *low)
        {
            end = low - 1;
        }
        let lows: Vec<u64> = self.units.range(..=end).map(|(low, _)| *low).collect();
        let mut out = Vec::new();
        for low in lows {
            if let Some((_, unit)) = self.units.remove(&low) {
                for r in &unit {
                    self.received.remove(&r.seq);
                }
                out.extend(unit);
            }
        }
        out.sort_by_key(|r| r.seq);
        self.next = end + 1;
        out
    }
}

/// One row per group, keyed by the group's first sequence number: each record as its length
/// (4 bytes, little-endian), time (8), link (32) and JSON. One B-tree insert per commit instead
/// of one per event.
fn commit(db: &Database, group: &[Reserved], chain: &mut [u8; 32]) -> Result<(), String> {
    let Some(first) = group.first().map(|r| r.seq) else {
        return Ok(());
    };
    let mut row = Vec::with_capacity(group.iter().map(|r| r.bytes.len() + HEADER).sum());
    let mut link_after = *chain;
    for Reserved { seq, at_ms, bytes } in group {
        link_after = link(&link_after, *seq, *at_ms, bytes);
        row.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        row.extend_from_slice(&at_ms.to_le_bytes());
        row.extend_from_slice(&link_after);
        row.extend_from_slice(bytes);
    }
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(EVENTS).map_err(|e| e.to_string())?;
        table
            .insert(first, row.as_slice())
            .map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())?;
    *chain = link_after;
    Ok(())
}

/// How an error of the write at open begins (not a corrupt file: a disk that cannot be written).
const WRITE_FAILED: &str = "the journal cannot be written at open";

/// Loads the server secret (storing `fresh` in a new database), checks the record format, and
/// stores when the journal was opened and how many times it has been (so opening writes).
/// Answers the secret and the number of starts, this one included.
fn load_or_store_meta(
    db: &Database,
    fresh: [u8; 32],
    opened_ms: u64,
) -> Result<([u8; 32], u64), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let opened = {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let existing = meta
            .get("secret")
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec());
        let format = meta
            .get("format")
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec());
        let secret = match (existing, format) {
            (Some(bytes), Some(format)) if format == FORMAT => {
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| "the stored server secret has the wrong length".to_owned())?
            }
            (Some(_), format) => {
                return Err(format!(
                    "its records are in format {}, and this build of otpfleet reads format {}",
                    format.map_or("1".into(), |f| String::from_utf8_lossy(&f).into_owned()),
                    String::from_utf8_lossy(FORMAT)
                ));
            }
            (None, _) => {
                meta.insert("secret", fresh.as_slice())
                    .map_err(|e| e.to_string())?;
                meta.insert("format", FORMAT).map_err(|e| e.to_string())?;
                fresh
            }
        };
        let starts = meta
            .get("starts")
            .map_err(|e| e.to_string())?
            .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
            .map_or(0, u64::from_le_bytes)
            .saturating_add(1);
        meta.insert("opened_ms", opened_ms.to_le_bytes().as_slice())
            .map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
        meta.insert("starts", starts.to_le_bytes().as_slice())
            .map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
        (secret, starts)
    };
    txn.commit().map_err(|e| format!("{WRITE_FAILED}: {e}"))?;
    Ok(opened)
}

/// One record of a row, not yet decoded.
struct RawRecord<'a> {
    at_ms: u64,
    link: [u8; 32],
    json: &'a [u8],
}

impl RawRecord<'_> {
    fn entry(&self, seq: u64) -> Result<Entry, String> {
        let event: Event =
            serde_json::from_slice(self.json).map_err(|e| format!("not an event: {e}"))?;
        Ok(Entry {
            seq,
            at_ms: self.at_ms,
            link: self.link,
            event,
        })
    }
}

/// The first record of `bytes` and what follows it.
fn split_record(bytes: &[u8]) -> Result<(RawRecord<'_>, &[u8]), String> {
    let cut = || "a record is cut short".to_owned();
    let (header, rest) = bytes.split_at_checked(HEADER).ok_or_else(cut)?;
    let (len, header) = header.split_at(4);
    let (at, link) = header.split_at(8);
    let len = u32::from_le_bytes(len.try_into().map_err(|_| cut())?) as usize;
    let (json, rest) = rest.split_at_checked(len).ok_or_else(cut)?;
    let record = RawRecord {
        at_ms: u64::from_le_bytes(at.try_into().map_err(|_| cut())?),
        link: link.try_into().map_err(|_| cut())?,
        json,
    };
    Ok((record, rest))
}

/// A storage error on `path`, reported as a corrupt file.
fn corrupt(path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The events table, or `None` while nothing was ever journaled.
fn events_table(
    txn: &redb::ReadTransaction,
    path: &Path,
) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, JournalError> {
    match txn.open_table(EVENTS) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(corrupt(path, e)),
    }
}

fn broken(path: &Path, seq: u64, reason: String) -> JournalError {
    JournalError::Broken {
        path: path.to_path_buf(),
        seq,
        reason,
    }
}

/// Every record, in order, each link checked against the one before.
fn read_all(db: &Database, path: &Path) -> Result<Vec<Entry>, JournalError> {
    let txn = db.begin_read().map_err(|e| corrupt(path, e))?;
    let Some(table) = events_table(&txn, path)? else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut previous = [0u8; 32];
    for row in table.iter().map_err(|e| corrupt(path, e))? {
        let (first, bytes) = row.map_err(|e| corrupt(path, e))?;
        let first = first.value();
        let expected = entries.len() as u64 + 1;
        if first != expected {
            let missing = match first - 1 {
                _ if first < expected => format!("entry {first} is stored twice"),
                last if last == expected => format!("entry {expected} is missing"),
                last => format!("entries {expected} to {last} are missing"),
            };
            return Err(broken(path, expected, missing));
        }
        let mut rest = bytes.value();
        while !rest.is_empty() {
            let seq = entries.len() as u64 + 1;
            let (record, tail) = split_record(rest).map_err(|r| broken(path, seq, r))?;
            if link(&previous, seq, record.at_ms, record.json) != record.link {
                return Err(broken(
                    path,
                    seq,
                    "its link does not match its content and the entry before it (edited, or an entry before it removed)".into(),
                ));
            }
            let entry = record.entry(seq).map_err(|r| broken(path, seq, r))?;
            previous = entry.link;
            entries.push(entry);
            rest = tail;
        }
    }
    Ok(entries)
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The journal holds the server secret and passwords awaiting hand-over.
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seqs: &[u64]) -> Vec<Reserved> {
        seqs.iter()
            .map(|seq| Reserved {
                seq: *seq,
                at_ms: 0,
                bytes: Vec::new(),
            })
            .collect()
    }

    fn seqs(group: &[Reserved]) -> Vec<u64> {
        group.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn units_are_committed_whole_in_order_and_never_past_a_gap() {
        let mut w = Waiting::new(0);
        // A long unit (1, 3, 5) interleaves with single events 2 and 4; 6 comes on its own.
        w.add(unit(&[2]));
        w.add(unit(&[4]));
        assert!(w.take_committable().is_empty(), "1 is missing");
        w.add(unit(&[6]));
        assert!(w.take_committable().is_empty());
        w.add(unit(&[1, 3, 5]));
        assert_eq!(seqs(&w.take_committable()), [1, 2, 3, 4, 5, 6]);
        // A unit reaching past a gap waits, and so does what follows it.
        w.add(unit(&[7, 9]));
        w.add(unit(&[10]));
        assert!(
            w.take_committable().is_empty(),
            "8 is missing, inside a unit"
        );
        w.add(unit(&[8]));
        assert_eq!(seqs(&w.take_committable()), [7, 8, 9, 10]);
        // A complete prefix is committed even while a later unit is incomplete.
        w.add(unit(&[11]));
        w.add(unit(&[12, 14]));
        assert_eq!(seqs(&w.take_committable()), [11]);
    }
}
