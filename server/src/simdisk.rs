//! A simulated disk under the journal (issue 28): redb's `StorageBackend` over memory, with
//! the volatile cache real disks have. Writes land in the cache; `sync_data` makes everything
//! written before it durable (the write barrier redb relies on; `eventual` is treated as
//! immediate). A power loss keeps what was synced and, of what was not, a seeded choice: none
//! of it, all of it, a prefix or a random part of the writes, each perhaps torn at a sector
//! boundary. Seeded faults fail a read, a write or a sync, or find the disk full; `cut_after`
//! cuts the power after a given number of operations, so a crash lands at a chosen point of a
//! commit. Nothing touches a real file.
//!
//! The same seed and the same calls give the same bytes, even though redb flushes the pages of
//! a commit in an order that varies from run to run (its write buffer is a hash map seeded per
//! process). Between two barriers a disk may reorder writes anyway, so nothing here depends on
//! their order: a power loss chooses among them in the order of their offsets; a write error
//! is decided by the write's place and epoch, not by when it came, and is reported by the next
//! sync (as Linux reports a failed write-back at `fsync`; unlike Linux, which then drops the
//! failed pages while its page cache still shows them, the writes stay unsynced, as after a
//! transient error, so "the cache has it, the disk never will" is not modelled); and a cut that falls among the
//! writes of an epoch takes effect at its barrier, with all of them unsynced.
//!
//! A crash with SIGKILL (`tests/it/crash.rs`) cannot lose what the page cache holds; this disk
//! can, which is what shows an fsync missing or misplaced.

use parking_lot::Mutex;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use std::io;
use std::sync::Arc;

/// The odds of each fault, per operation, and the disk's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    pub read_error: f64,
    pub write_error: f64,
    pub sync_error: f64,
    /// Bytes the disk holds; growing the file past it fails as a full disk does.
    pub capacity: u64,
    /// A defect planted in the server on this disk, for showing that the simulation catches
    /// it (none in any real run).
    pub planted: Option<Defect>,
}

/// A defect the simulation must catch, planted on a simulated disk: compiled in, reachable only
/// through [`crate::Storage::Simulated`] (as FoundationDB's BUGGIFY is), never in a real run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// `sync_data` answers success and makes nothing durable: the same as acknowledging an
    /// approval before its group commit is synced.
    LyingSync,
    /// Recovery skips the last group commit of the journal.
    SkipLastGroup,
    /// An import refused for a repeated upn is journaled anyway, so replay applies it.
    JournalRefusedImport,
    /// The server before issue 28: answers do not wait for the journal, and a restart numbers
    /// requests on from the last one kept, so a GET shows an approval a crash can undo, or a
    /// request id a crash can give to another console.
    ShowBeforeKept,
    /// A change the journal failed to keep is refused at once, before a recovery has removed
    /// it from the disk (the server before this was found): a crash then brings back a change
    /// the client was told was refused.
    RefuseBeforeKept,
}

impl Faults {
    pub const NONE: Faults = Faults {
        read_error: 0.0,
        write_error: 0.0,
        sync_error: 0.0,
        capacity: u64::MAX,
        planted: None,
    };

    /// The faults of one stretch of a simulation on `disk`: the `standing` ones (none, or a
    /// planted defect) most of the time; else some of read, write and sync errors, and a disk
    /// with little room left.
    pub fn draw(rng: &mut impl rand::Rng, disk: &SimDisk, standing: Faults) -> Faults {
        if rng.random_bool(0.7) {
            return standing;
        }
        Faults {
            read_error: if rng.random_bool(0.3) { 0.002 } else { 0.0 },
            write_error: if rng.random_bool(0.5) { 0.01 } else { 0.0 },
            sync_error: if rng.random_bool(0.5) { 0.05 } else { 0.0 },
            capacity: if rng.random_bool(0.3) {
                disk.len() + rng.random_range(0..64 * 1024)
            } else {
                u64::MAX
            },
            ..standing
        }
    }
}

/// How the simulated disk names the faults it injects: an error that names one is the disk's
/// doing, not the file's.
const INJECTED: [&str; 5] = [
    "simulated power loss",
    "simulated read error",
    "simulated write error",
    "simulated sync error",
    "simulated full disk",
];

/// Whether `error` names a fault the simulated disk injected.
pub fn injected(error: &str) -> bool {
    INJECTED.iter().any(|fault| error.contains(fault))
}

/// What a disk went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub operations: u64,
    pub syncs: u64,
    pub io_errors: u64,
    pub full: u64,
    pub power_losses: u64,
    /// Writes cut at a sector boundary by a power loss.
    pub torn_writes: u64,
    /// Unsynced writes a power loss dropped whole.
    pub lost_writes: u64,
}

/// The unit a torn write is cut at: a disk sector, the most a disk promises to write whole.
const SECTOR: usize = 512;

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// What kind of call an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Write,
    /// A sync or a resize: where a cut that fell among an epoch's writes takes effect.
    Barrier,
}

#[derive(Debug)]
struct State {
    /// The bytes as of the last sync: what survives a power loss for sure.
    durable: Vec<u8>,
    /// The bytes as the database sees them now.
    cache: Vec<u8>,
    /// Changes since the last sync, in order.
    unsynced: Vec<Pending>,
    rng: ChaCha8Rng,
    faults: Faults,
    stats: DiskStats,
    /// Counts power losses: a database opened before the last one is talking to a machine
    /// that is off, and every call it makes fails.
    power: u64,
    /// Operations left before the power is cut, when a cut is set.
    cut_in: Option<u64>,
    /// The simulation's seed, and how many seeds of it processes have drawn.
    seed: u64,
    seeds_drawn: u64,
    /// A write of this epoch failed: the next sync reports it.
    write_failed: bool,
    /// The cut has refused a call: the machine is off until the power loss.
    off: bool,
}

/// A simulated disk; clones share it.
#[derive(Debug, Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl SimDisk {
    /// An empty disk whose faults and power losses draw from `seed`.
    pub fn new(seed: u64, faults: Faults) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(State {
                durable: Vec::new(),
                cache: Vec::new(),
                unsynced: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                faults,
                stats: DiskStats::default(),
                power: 0,
                cut_in: None,
                seed,
                seeds_drawn: 0,
                write_failed: false,
                off: false,
            })),
        }
    }

    /// The backend a database opened now uses (it dies with the next power loss).
    pub fn backend(&self) -> SimBackend {
        SimBackend {
            disk: self.clone(),
            power: self.state.lock().power,
        }
    }

    /// Puts a whole file in place at once, durably, on an empty disk: what writing a file under a
    /// temporary name, syncing it and renaming it does on a real one. One operation: a cut or a
    /// write fault lands before it (nothing in place) or after it (all of it).
    pub fn install(&self, image: Vec<u8>) -> io::Result<()> {
        self.backend()
            .operate(Call::Barrier, (|f| f.write_error, "write error"), |s| {
                if !s.cache.is_empty() {
                    return Err(failure("install on a disk that holds a file"));
                }
                if image.len() as u64 > s.faults.capacity {
                    s.stats.full += 1;
                    return Err(failure("full disk: no space left on device"));
                }
                s.cache.clone_from(&image);
                s.durable = image;
                s.unsynced.clear();
                Ok(())
            })
    }

    /// A seed for what a server on this disk draws (its secret, OTPs, tokens): a new one each
    /// call, the same sequence for the same disk seed, so a simulation replays byte for byte.
    pub fn next_seed(&self) -> u64 {
        let mut s = self.state.lock();
        s.seeds_drawn += 1;
        hash_of(&(s.seed, s.seeds_drawn))
    }

    /// A hash of the bytes as the database sees them now, the same in every run of one build:
    /// two runs of a seed that end with the same digest left the same bytes.
    pub fn digest(&self) -> u64 {
        hash_of(&self.state.lock().cache)
    }

    /// The bytes as the database sees them now.
    pub fn image(&self) -> Vec<u8> {
        self.state.lock().cache.clone()
    }

    /// The defect planted on this disk, if any.
    pub fn planted(&self) -> Option<Defect> {
        self.state.lock().faults.planted
    }

    /// Replaces the fault odds (e.g. none, once a simulation lets the disk heal).
    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().faults = faults;
    }

    /// Cuts the power after `operations` more operations (reads, writes, syncs, resizes):
    /// that one and every later one fail until [`SimDisk::power_loss`].
    pub fn cut_after(&self, operations: u64) {
        self.state.lock().cut_in = Some(operations);
    }

    /// A power loss: the cache is gone; what was synced stays, and of what was not, a seeded
    /// choice survives (none, all, a prefix or a random part of the changes in the order of
    /// their offsets, each write of it perhaps torn at a sector).
    /// Databases opened before it fail every further call.
    pub fn power_loss(&self) {
        let mut s = self.state.lock();
        let pending = in_offset_order(std::mem::take(&mut s.unsynced));
        let mut image = std::mem::take(&mut s.durable);
        let (keep, scattered) = match s.rng.random_range(0..5u8) {
            0 => (0, false),
            1 => (pending.len(), false),
            2 => (pending.len(), true),
            _ => (s.rng.random_range(0..=pending.len()), false),
        };
        let torn = s.rng.random_bool(0.25);
        for (i, change) in pending.into_iter().enumerate() {
            if i >= keep || (scattered && s.rng.random_bool(0.5)) {
                s.stats.lost_writes += u64::from(matches!(change, Pending::Write(..)));
                continue;
            }
            match change {
                Pending::SetLen(len) => image.resize(usize::try_from(len).unwrap_or(0), 0),
                Pending::Write(at, mut bytes) => {
                    if torn && bytes.len() > SECTOR {
                        let sectors = bytes.len().div_ceil(SECTOR);
                        let kept = s.rng.random_range(1..sectors) * SECTOR;
                        bytes.truncate(kept);
                        s.stats.torn_writes += 1;
                    }
                    apply(&mut image, at, &bytes);
                }
            }
        }
        s.cache = image.clone();
        s.durable = image;
        s.power += 1;
        s.cut_in = None;
        s.write_failed = false;
        s.off = false;
        s.stats.power_losses += 1;
    }

    /// Starts a server on this disk after a power loss, as a simulation does: one time in five
    /// with faults (drawn around `standing`) and a cut set while it recovers (they stay set
    /// after a start that works, until the caller draws the next). A start that an
    /// injected fault or the cut fails is a crash while recovering: the power is lost again
    /// and it starts again. Answers what `open` opened and how many such crashes it took; an
    /// error names a start that failed for anything else (a disk it cannot open), or more than
    /// `most` crashes in a row.
    pub fn start_again<T>(
        &self,
        rng: &mut impl rand::Rng,
        (standing, most): (Faults, u64),
        mut open: impl FnMut() -> Result<T, String>,
    ) -> Result<(T, u64), String> {
        let mut crashes = 0;
        loop {
            if rng.random_bool(0.2) {
                self.set_faults(Faults::draw(rng, self, standing));
                self.cut_after(rng.random_range(1..200));
            }
            match open() {
                Ok(opened) => return Ok((opened, crashes)),
                // A fault injected while it opened: the error must name it.
                Err(e) if injected(&e) => {
                    self.power_loss();
                    self.set_faults(standing);
                    crashes += 1;
                    if crashes > most {
                        return Err(format!("the server never started again: {e}"));
                    }
                }
                Err(e) => return Err(format!("the server cannot start: {e}")),
            }
        }
    }

    /// Whether the power is off: the cut has refused a call, and nothing more leaves the
    /// machine until the power loss that follows.
    pub fn is_off(&self) -> bool {
        self.state.lock().off
    }

    /// The file's length as the database sees it.
    pub fn len(&self) -> u64 {
        self.state.lock().cache.len() as u64
    }

    /// Whether the disk holds nothing yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> DiskStats {
        self.state.lock().stats
    }

    /// The bytes a power loss would surely keep (for a failure's evidence).
    pub fn durable_len(&self) -> usize {
        self.state.lock().durable.len()
    }
}

/// Two handles are equal when they are the same disk.
impl PartialEq for SimDisk {
    fn eq(&self, other: &SimDisk) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for SimDisk {}

/// The changes of one epoch in a canonical order: between two resizes (whose places among the
/// calls do not vary), writes by offset; two writes to one offset keep their order.
fn in_offset_order(mut pending: Vec<Pending>) -> Vec<Pending> {
    for run in pending.split_mut(|p| matches!(p, Pending::SetLen(_))) {
        run.sort_by_key(|p| match p {
            Pending::Write(at, _) => *at,
            Pending::SetLen(_) => u64::MAX,
        });
    }
    pending
}

/// A hash that is the same in every run of the same build.
fn hash_of(value: &impl std::hash::Hash) -> u64 {
    std::hash::BuildHasher::hash_one(
        &std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default(),
        value,
    )
}

fn apply(image: &mut Vec<u8>, at: u64, bytes: &[u8]) {
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    let end = at.saturating_add(bytes.len());
    if image.len() < end {
        image.resize(end, 0);
    }
    image[at..end].copy_from_slice(bytes);
}

/// One database's handle on a [`SimDisk`].
#[derive(Debug)]
pub struct SimBackend {
    disk: SimDisk,
    power: u64,
}

fn failure(what: &str) -> io::Error {
    io::Error::other(format!("simulated {what}"))
}

impl SimBackend {
    /// Runs `f` on the disk's state unless the power is off or a fault of odds `odds` strikes
    /// (`what` names it). A cut that fell among an epoch's writes waits for its barrier.
    fn operate<T>(
        &self,
        call: Call,
        (odds, what): (impl FnOnce(&Faults) -> f64, &str),
        f: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut s = self.disk.state.lock();
        if s.power != self.power {
            return Err(failure("power loss: the machine is off"));
        }
        match s.cut_in {
            Some(0) if call == Call::Barrier || s.unsynced.is_empty() => {
                s.off = true;
                return Err(failure("power loss: the power was cut"));
            }
            Some(0) | None => {}
            Some(left) => s.cut_in = Some(left - 1),
        }
        s.stats.operations += 1;
        let odds = odds(&s.faults);
        if odds > 0.0 && s.rng.random_bool(odds.min(1.0)) {
            s.stats.io_errors += 1;
            return Err(failure(what));
        }
        f(&mut s)
    }
}

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> io::Result<u64> {
        self.operate(Call::Read, (|_| 0.0, ""), |s| Ok(s.cache.len() as u64))
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.operate(Call::Read, (|f| f.read_error, "read error"), |s| {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(len);
            s.cache
                .get(start..end)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.operate(Call::Barrier, (|f| f.write_error, "write error"), |s| {
            if len > s.faults.capacity {
                s.stats.full += 1;
                return Err(failure("full disk: no space left on device"));
            }
            s.cache.resize(usize::try_from(len).unwrap_or(0), 0);
            s.unsynced.push(Pending::SetLen(len));
            Ok(())
        })
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.operate(Call::Barrier, (|f| f.sync_error, "sync error"), |s| {
            s.stats.syncs += 1;
            if std::mem::take(&mut s.write_failed) {
                // A write of the epoch failed: what it wrote stays unsynced.
                s.stats.io_errors += 1;
                return Err(failure("write error"));
            }
            if s.faults.planted == Some(Defect::LyingSync) {
                return Ok(());
            }
            for change in std::mem::take(&mut s.unsynced) {
                match change {
                    Pending::SetLen(len) => {
                        s.durable.resize(usize::try_from(len).unwrap_or(0), 0);
                    }
                    Pending::Write(at, bytes) => apply(&mut s.durable, at, &bytes),
                }
            }
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.operate(Call::Write, (|_| 0.0, ""), |s| {
            let end = offset.saturating_add(data.len() as u64);
            if end > s.faults.capacity {
                s.stats.full += 1;
                return Err(failure("full disk: no space left on device"));
            }
            // Decided by the write's place and epoch, not by when it came among the
            // epoch's writes; reported by the next sync.
            let odds = s.faults.write_error;
            let draw = hash_of(&(s.seed, s.stats.syncs, offset, data.len()));
            if odds > 0.0 && (draw as f64) < odds * u64::MAX as f64 {
                s.write_failed = true;
            }
            apply(&mut s.cache, offset, data);
            s.unsynced.push(Pending::Write(offset, data.to_vec()));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend as _;

    /// Writes pages 0..8 in `order` after a synced first page, then loses the power.
    fn crash_after(order: &[u64], seed: u64) -> (Vec<u8>, DiskStats) {
        let disk = SimDisk::new(seed, Faults::NONE);
        let b = disk.backend();
        b.set_len(8 * 4096).unwrap();
        b.write(0, &[1; 4096]).unwrap();
        b.sync_data(false).unwrap();
        for page in order {
            b.write(page * 4096, &[u8::try_from(*page).unwrap() + 2; 4096])
                .unwrap();
        }
        disk.power_loss();
        (disk.image(), disk.stats())
    }

    /// What a power loss keeps of an epoch does not depend on the order its writes came in
    /// (redb's flush order varies between runs), over seeds that keep none, all, a prefix and
    /// a random part.
    #[test]
    fn a_power_loss_keeps_the_same_bytes_whatever_the_order_of_the_writes() {
        let mut kept = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let (a, stats) = crash_after(&[1, 2, 3, 4, 5, 6, 7], seed);
            let (b, _) = crash_after(&[5, 7, 1, 3, 2, 6, 4], seed);
            assert_eq!(a, b, "seed {seed}");
            assert_eq!(&a[..4096], &[1; 4096][..], "what was synced stays");
            kept.insert(stats.lost_writes);
        }
        assert!(kept.len() > 3, "the choices vary: {kept:?}");
    }

    /// A cut that falls among an epoch's writes lets the others land and fails the barrier, and
    /// a write error is told by the next sync, whichever write it struck.
    #[test]
    fn a_cut_and_a_write_error_land_at_the_barrier() {
        let disk = SimDisk::new(7, Faults::NONE);
        let b = disk.backend();
        b.set_len(4 * 4096).unwrap();
        disk.cut_after(1);
        b.write(0, &[1; 4096]).unwrap();
        b.write(4096, &[2; 4096]).unwrap();
        let cut = b.sync_data(false).unwrap_err().to_string();
        assert!(cut.contains("power was cut"), "{cut}");

        let disk = SimDisk::new(7, Faults::NONE);
        let b = disk.backend();
        b.set_len(64 * 4096).unwrap();
        disk.set_faults(Faults {
            write_error: 0.05,
            ..Faults::NONE
        });
        for page in 0..64 {
            b.write(page * 4096, &[3; 4096]).unwrap();
        }
        let failed = b.sync_data(false).unwrap_err().to_string();
        assert!(failed.contains("write error"), "{failed}");
        assert_eq!(
            disk.durable_len(),
            0,
            "nothing of the failed epoch is durable"
        );
        assert!(b.sync_data(false).is_ok(), "the error is told once");
    }
}
