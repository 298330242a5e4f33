//! The in-memory store: account records (one lock each) and the indexes that find them.

use super::ids::IdKind;
use super::secrets::{OtpKey, POLL_TOKEN_BYTES};
use crate::clock::rfc3339;
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use otpfleet_protocol::{
    AccountDetail, AccountSummary, Device, License, OtpTab, Provisioning, Readiness, RejectReason,
    RequestStatus, RequestView,
};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) type AccountRef = Arc<Mutex<AccountRecord>>;
type FastHash = foldhash::fast::RandomState;

/// Everything about one resource account, its current OTP and the console's request for it.
#[derive(Debug)]
pub(crate) struct AccountRecord {
    pub id: u64,
    pub upn: String,
    pub upn_lower: String,
    pub display_name: String,
    pub license: License,
    pub readiness: Readiness,
    /// Keyed hash of the account's password, once the server knows one.
    pub password_hash: Option<[u8; 32]>,
    /// Signed in by manual setup (email and password).
    pub signed_in_manually: bool,
    pub otp: Option<OtpSlot>,
}

/// The account's current OTP. Generating again replaces the whole slot.
#[derive(Debug)]
pub(crate) struct OtpSlot {
    pub key: OtpKey,
    pub batch_id: u64,
    pub generated_ms: u64,
    pub expires_ms: u64,
    /// The password handed to the console at sign-in; dropped once handed over.
    pub credential: Option<String>,
    pub request: Option<RequestRecord>,
    /// Whether this OTP's expiry is in the audit log already.
    pub expiry_logged: bool,
}

/// A console's redemption of the OTP. There is at most one per OTP: that is single use.
#[derive(Debug)]
pub(crate) struct RequestRecord {
    pub id: u64,
    pub device: Device,
    pub requested_ms: u64,
    pub state: Decision,
    pub decided_ms: Option<u64>,
    pub poll_token: [u8; POLL_TOKEN_BYTES],
    pub interval_s: u32,
    pub last_poll_ms: u64,
    /// When the verification token it was made with was issued: with `device`, it names that
    /// token (a token is its device and issue time, sealed), so the console's own retry of
    /// the redemption is known as such (`gate::sent_again`).
    pub verified_ms: u64,
}

/// The stored part of a request's status; `expired` is derived from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Pending,
    Approved,
    Rejected(RejectReason),
    SignedIn,
}

/// What an import says about an account.
#[derive(Debug)]
pub(crate) struct AccountFields {
    pub upn: String,
    /// The key of `upn` (see `accounts::upn_key`).
    pub upn_lower: String,
    pub display_name: String,
    pub license: License,
    pub readiness: Readiness,
    /// Keyed hash of a password given with the import.
    pub password_hash: Option<[u8; 32]>,
}

// The transitions of the store: each change of state is written here once, and the live
// operation and the replay of its event both call it (a property test in
// `server/tests/it/replay.rs` holds replayed state equal to live state).

impl AccountRecord {
    /// Account `id` as an import creates it.
    pub fn new(id: u64, f: AccountFields) -> AccountRecord {
        AccountRecord {
            id,
            upn: f.upn,
            upn_lower: f.upn_lower,
            display_name: f.display_name,
            license: f.license,
            readiness: f.readiness,
            password_hash: f.password_hash,
            signed_in_manually: false,
            otp: None,
        }
    }

    /// An import of an existing account (its key, `upn_lower`, is the same): names, licence
    /// and readiness replaced, the password only when the import gave one.
    pub fn update(&mut self, f: AccountFields) {
        self.upn = f.upn;
        self.display_name = f.display_name;
        self.license = f.license;
        self.readiness = f.readiness;
        if f.password_hash.is_some() {
            self.password_hash = f.password_hash;
        }
    }

    pub fn provisioning(&self, now_ms: u64) -> Provisioning {
        let Some(slot) = &self.otp else {
            return if self.signed_in_manually {
                Provisioning::SignedIn
            } else {
                Provisioning::NotProvisioned
            };
        };
        match slot
            .request
            .as_ref()
            .map(|r| slot.request_status(r, now_ms))
        {
            None if now_ms >= slot.expires_ms => Provisioning::OtpExpired,
            None => Provisioning::OtpGenerated,
            Some(RequestStatus::AwaitingApproval) => Provisioning::AwaitingOtpApproval,
            Some(RequestStatus::Approved) => Provisioning::OtpApproved,
            Some(RequestStatus::Rejected) => Provisioning::OtpRejected,
            Some(RequestStatus::Expired) => Provisioning::OtpExpired,
            Some(RequestStatus::SignedIn) => Provisioning::SignedIn,
        }
    }

    pub fn summary(&self, now_ms: u64) -> AccountSummary {
        AccountSummary {
            id: IdKind::Account.format(self.id),
            upn: self.upn.clone(),
            display_name: self.display_name.clone(),
            license: self.license,
            readiness: self.readiness,
            provisioning: self.provisioning(now_ms),
        }
    }

    pub fn detail(&self, now_ms: u64) -> AccountDetail {
        AccountDetail {
            account: self.summary(now_ms),
            otp: self.otp.as_ref().map(|slot| OtpTab {
                batch_id: IdKind::Batch.format(slot.batch_id),
                generated_at: rfc3339(slot.generated_ms),
                expires_at: rfc3339(slot.expires_ms),
                request: slot
                    .request
                    .as_ref()
                    .map(|r| self.request_view(slot, r, now_ms)),
            }),
        }
    }

    pub fn request_view(&self, slot: &OtpSlot, r: &RequestRecord, now_ms: u64) -> RequestView {
        self.tagged_view(slot, r, now_ms, r.vetted_tag(self.id, &self.upn))
    }

    /// [`AccountRecord::request_view`] with its tag already made (a decision checks it first).
    pub fn tagged_view(
        &self,
        slot: &OtpSlot,
        r: &RequestRecord,
        now_ms: u64,
        etag: String,
    ) -> RequestView {
        RequestFacts {
            account: self.id,
            upn: &self.upn,
            request: r.id,
            device: &r.device,
            requested_ms: r.requested_ms,
            expires_ms: slot.expires_ms,
            state: r.state,
            decided_ms: r.decided_ms,
        }
        .view(now_ms, etag)
    }
}

impl OtpSlot {
    /// An OTP of batch `batch_id`, not redeemed, with the password it will hand over.
    pub fn new(
        key: OtpKey,
        batch_id: u64,
        (generated_ms, expires_ms): (u64, u64),
        credential: String,
    ) -> OtpSlot {
        OtpSlot {
            key,
            batch_id,
            generated_ms,
            expires_ms,
            credential: Some(credential),
            request: None,
            expiry_logged: false,
        }
    }

    /// Hands the credentials over, once: the request is signed in and the password dropped.
    /// `None` (and nothing changed) when they are gone already.
    pub fn hand_over(&mut self) -> Option<String> {
        let password = self.credential.take()?;
        if let Some(r) = self.request.as_mut() {
            r.state = Decision::SignedIn;
        }
        Some(password)
    }

    pub fn request_status(&self, r: &RequestRecord, now_ms: u64) -> RequestStatus {
        r.status(self.expires_ms, now_ms)
    }
}

/// The seed of [`vetted_tag`]'s hash ("otpf").
const VETTED_TAG_SEED: u64 = 0x6f74_7066;

/// What the admin vets of request `request` of account `account` (`upn`): the account, the
/// console's make, model and serial, when it asked. As a strong entity tag: the same for the
/// same request (in either store), different for any other, so a decision sent with it in
/// `If-Match` cannot land on another console.
pub(crate) fn vetted_tag(
    account: u64,
    request: u64,
    requested_ms: u64,
    upn: &str,
    d: &Device,
) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    // A fixed seed: a tag read before a restart still matches after it. Not a secret nor a MAC
    // (the admin is trusted); 64 bits tell apart the requests one id could name.
    let mut h = foldhash::quality::FixedState::with_seed(VETTED_TAG_SEED).build_hasher();
    (account, request, requested_ms).hash(&mut h);
    (upn, &d.make, &d.model, &d.serial).hash(&mut h);
    // By hand: `format!` costs approve a fifth of its instructions (the callgrind gate).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = h.finish();
    let mut tag = String::with_capacity(18);
    tag.push('"');
    tag.extend(
        (0..16)
            .rev()
            .map(|i| char::from(HEX[((n >> (i * 4)) & 0xf) as usize])),
    );
    tag.push('"');
    tag
}

/// What a request's answer is made of, whichever store holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    pub account: u64,
    pub upn: &'a str,
    pub request: u64,
    pub device: &'a Device,
    pub requested_ms: u64,
    pub expires_ms: u64,
    pub state: Decision,
    pub decided_ms: Option<u64>,
}

impl RequestFacts<'_> {
    pub fn vetted_tag(&self) -> String {
        vetted_tag(
            self.account,
            self.request,
            self.requested_ms,
            self.upn,
            self.device,
        )
    }

    /// The request as an admin sees it at `now_ms`, tagged `etag` (made once by a decision,
    /// which checks it first).
    pub fn view(&self, now_ms: u64, etag: String) -> RequestView {
        RequestView {
            id: IdKind::Request.format(self.request),
            account_id: IdKind::Account.format(self.account),
            upn: self.upn.to_owned(),
            status: self.state.status(self.expires_ms, now_ms),
            requested_at: rfc3339(self.requested_ms),
            expires_at: rfc3339(self.expires_ms),
            device: self.device.clone(),
            etag,
            decided_at: self.decided_ms.map(rfc3339),
            reason: self.state.reason(),
        }
    }
}

impl RequestRecord {
    /// What the admin vets of this request of account `account` (`upn`): see [`vetted_tag`].
    pub fn vetted_tag(&self, account: u64, upn: &str) -> String {
        vetted_tag(account, self.id, self.requested_ms, upn, &self.device)
    }

    /// A console's redemption at `requested_ms`: approved at once or pending.
    pub fn new(
        id: u64,
        device: Device,
        requested_ms: u64,
        auto_approved: bool,
        (poll_token, interval_s, verified_ms): ([u8; POLL_TOKEN_BYTES], u32, u64),
    ) -> RequestRecord {
        RequestRecord {
            id,
            device,
            requested_ms,
            state: if auto_approved {
                Decision::Approved
            } else {
                Decision::Pending
            },
            decided_ms: auto_approved.then_some(requested_ms),
            poll_token,
            interval_s,
            last_poll_ms: requested_ms,
            verified_ms,
        }
    }

    /// A pending request expires with its OTP; decided ones keep their decision.
    pub fn status(&self, expires_ms: u64, now_ms: u64) -> RequestStatus {
        self.state.status(expires_ms, now_ms)
    }

    pub fn reason(&self) -> Option<RejectReason> {
        self.state.reason()
    }
}

impl Decision {
    /// The request's status: a pending request expires with its OTP; a decided one does not.
    pub fn status(self, expires_ms: u64, now_ms: u64) -> RequestStatus {
        match self {
            Decision::Pending if now_ms >= expires_ms => RequestStatus::Expired,
            Decision::Pending => RequestStatus::AwaitingApproval,
            Decision::Approved => RequestStatus::Approved,
            Decision::Rejected(_) => RequestStatus::Rejected,
            Decision::SignedIn => RequestStatus::SignedIn,
        }
    }

    pub fn reason(self) -> Option<RejectReason> {
        match self {
            Decision::Rejected(reason) => Some(reason),
            _ => None,
        }
    }
}

/// One OTP batch: its export rows (plaintext) until the download window closes.
#[derive(Debug)]
pub(crate) struct BatchRecord {
    pub export_expires_ms: u64,
    /// `None` once purged.
    pub rows: Option<Vec<ExportRow>>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExportRow {
    pub upn: String,
    pub display_name: String,
    pub otp: String,
    pub expires_ms: u64,
    pub password: String,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub accounts: u64,
    /// Accounts by provisioning state, in `Provisioning::ALL` order.
    pub by_provisioning: Vec<(otpfleet_protocol::Provisioning, u64)>,
    /// Requests awaiting approval (not expired).
    pub approval_queue_depth: u64,
    /// OTPs generated and not yet redeemed or expired.
    pub live_otps: u64,
}

impl Stats {
    /// The counts of accounts in these provisioning states.
    pub(crate) fn count(states: impl IntoIterator<Item = Provisioning>) -> Stats {
        let mut counts: BTreeMap<Provisioning, u64> =
            Provisioning::ALL.iter().map(|p| (*p, 0)).collect();
        let mut accounts = 0;
        for state in states {
            *counts.entry(state).or_default() += 1;
            accounts += 1;
        }
        let count = |p| counts.get(&p).copied().unwrap_or(0);
        Stats {
            accounts,
            approval_queue_depth: count(Provisioning::AwaitingOtpApproval),
            live_otps: count(Provisioning::OtpGenerated),
            by_provisioning: Provisioning::ALL.iter().map(|p| (*p, count(*p))).collect(),
        }
    }
}

/// A lock over state of the whole store or core, not of one account or one shard: a lock that
/// makes concurrent requests wait for each other. Every acquisition is counted in this crate's
/// tests (`global_locks_taken`), which hold the redemption path to taking none.
#[derive(Debug, Default)]
pub(crate) struct Global<L>(L);

#[cfg(test)]
thread_local! {
    static GLOBAL_LOCKS_TAKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Global locks this thread has taken so far (tests only).
#[cfg(test)]
pub(crate) fn global_locks_taken() -> u64 {
    GLOBAL_LOCKS_TAKEN.with(std::cell::Cell::get)
}

fn taking_global_lock() {
    #[cfg(test)]
    GLOBAL_LOCKS_TAKEN.with(|n| n.set(n.get() + 1));
}

impl<T> Global<Mutex<T>> {
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
        taking_global_lock();
        self.0.lock()
    }
}

impl<T> Global<RwLock<T>> {
    pub fn new(value: T) -> Self {
        Global(RwLock::new(value))
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, T> {
        taking_global_lock();
        self.0.read()
    }

    pub fn write(&self) -> parking_lot::RwLockWriteGuard<'_, T> {
        taking_global_lock();
        self.0.write()
    }
}

/// Accounts and the indexes that find them.
#[derive(Debug)]
pub(crate) struct Store {
    /// Account `n` is at index `n - 1`. Accounts are never removed.
    pub accounts: Global<RwLock<Vec<AccountRef>>>,
    pub by_upn: DashMap<String, AccountRef>,
    /// Keyed by the OTP's HMAC and by the request number: keys the server makes, which no
    /// client can choose, so a fast hasher (foldhash, randomly seeded) serves instead of SipHash.
    pub by_otp: DashMap<OtpKey, AccountRef, FastHash>,
    pub by_request: DashMap<u64, AccountRef, FastHash>,
    /// Request ids awaiting approval. Entries are hints (see the module docs).
    pub pending: ApprovalQueue,
    pub batches: Global<Mutex<BTreeMap<u64, BatchRecord>>>,
    pub next_batch: AtomicU64,
    /// Every redemption takes the next request id: on a cache line of its own, so that taking
    /// one does not evict the indexes' headers that every lookup reads.
    pub next_request: CachePadded<AtomicU64>,
}

/// Request ids awaiting approval, in shards by id: redemptions, which take consecutive ids, put
/// them under different locks on different cache lines. Read in id order by merging the shards.
#[derive(Debug)]
pub(crate) struct ApprovalQueue {
    shards: Box<[CachePadded<Mutex<BTreeSet<u64>>>]>,
}

/// Shards of the approval queue: more than the threads that redeem at once on most machines.
pub(crate) const QUEUE_SHARDS: u64 = 16;

impl Default for ApprovalQueue {
    fn default() -> Self {
        let shards = (0..QUEUE_SHARDS)
            .map(|_| CachePadded::new(Mutex::new(BTreeSet::new())))
            .collect();
        ApprovalQueue { shards }
    }
}

impl ApprovalQueue {
    fn shard(&self, id: u64) -> &Mutex<BTreeSet<u64>> {
        // The remainder is below QUEUE_SHARDS, the number of shards.
        &self.shards[(id % QUEUE_SHARDS) as usize]
    }

    pub fn insert(&self, id: u64) {
        self.shard(id).lock().insert(id);
    }

    pub fn remove(&self, id: u64) {
        self.shard(id).lock().remove(&id);
    }

    /// The ids in each shard (tests only).
    #[cfg(test)]
    pub fn shard_sizes(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.lock().len()).collect()
    }

    /// Up to `limit` ids above `after`, in id order (oldest first).
    pub fn after(&self, after: u64, limit: usize) -> Vec<u64> {
        let Some(from) = after.checked_add(1) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for shard in &self.shards {
            ids.extend(shard.lock().range(from..).take(limit).copied());
        }
        ids.sort_unstable();
        ids.truncate(limit);
        ids
    }
}

/// Clones an index entry out, so the shard lock is released before the account is locked.
pub(crate) fn lookup<K: Eq + Hash, S: std::hash::BuildHasher + Clone>(
    map: &DashMap<K, AccountRef, S>,
    key: &K,
) -> Option<AccountRef> {
    map.get(key).map(|entry| Arc::clone(entry.value()))
}

/// Shards of the indexes every redemption reads or writes: enough that two redemptions seldom
/// meet on one shard's lock (dashmap's default is 4 per core: 8 on two cores).
const INDEX_SHARDS: usize = 64;

impl Default for Store {
    fn default() -> Self {
        Store {
            accounts: Global::default(),
            by_upn: DashMap::default(),
            by_otp: DashMap::with_hasher_and_shard_amount(FastHash::default(), INDEX_SHARDS),
            by_request: DashMap::with_hasher_and_shard_amount(FastHash::default(), INDEX_SHARDS),
            pending: ApprovalQueue::default(),
            batches: Global::default(),
            next_batch: AtomicU64::default(),
            next_request: CachePadded::default(),
        }
    }
}

impl Store {
    pub fn account(&self, id: u64) -> Option<AccountRef> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.accounts.read().get(index).cloned()
    }

    /// Up to `limit` accounts with ids from `first_id` on, in id order.
    pub fn accounts_from(&self, first_id: u64, limit: usize) -> Vec<AccountRef> {
        let accounts = self.accounts.read();
        let start = usize::try_from(first_id.saturating_sub(1)).unwrap_or(usize::MAX);
        accounts.iter().skip(start).take(limit).cloned().collect()
    }

    pub fn account_count(&self) -> u64 {
        self.accounts.read().len() as u64
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn next_batch_id(&self) -> u64 {
        self.next_batch.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Numbers the requests and batches to come after `floor` (and after every id replayed).
    pub fn number_after(&self, floor: u64) {
        self.next_request.fetch_max(floor, Ordering::Relaxed);
        self.next_batch.fetch_max(floor, Ordering::Relaxed);
    }

    pub fn stats(&self, now_ms: u64) -> Stats {
        let all = self.all_accounts();
        Stats::count(all.iter().map(|a| a.lock().provisioning(now_ms)))
    }

    /// Gives `account` (locked as `a`) a new OTP and the password it hands over; the old OTP,
    /// its request and their index entries are withdrawn.
    pub fn issue_otp(
        &self,
        account: &AccountRef,
        a: &mut AccountRecord,
        slot: OtpSlot,
        password_hash: [u8; 32],
    ) {
        a.password_hash = Some(password_hash);
        let key = slot.key;
        if let Some(old) = a.otp.replace(slot) {
            self.withdraw(old);
        }
        self.by_otp.insert(key, Arc::clone(account));
    }

    /// Opens `request` on the OTP of `account` (locked, `slot` its OTP): indexed by id, and in
    /// the approval queue when pending.
    pub fn open_request(&self, account: &AccountRef, slot: &mut OtpSlot, request: RequestRecord) {
        let (id, pending) = (request.id, request.state == Decision::Pending);
        slot.request = Some(request);
        self.by_request.insert(id, Arc::clone(account));
        if pending {
            self.pending.insert(id);
        }
    }

    /// An admin's decision on a pending request (its account locked): out of the queue.
    pub fn decide(&self, r: &mut RequestRecord, decision: Decision, at_ms: u64) {
        r.state = decision;
        r.decided_ms = Some(at_ms);
        self.pending.remove(r.id);
    }

    /// The account signed in by manual setup: its OTP, if any, is withdrawn.
    pub fn sign_in_manually(&self, a: &mut AccountRecord) {
        a.signed_in_manually = true;
        if let Some(old) = a.otp.take() {
            self.withdraw(old);
        }
    }

    /// A batch's record: its export rows (none after a restart: plaintext is never
    /// journaled) until `export_expires_ms`.
    pub fn add_batch(&self, batch_id: u64, export_expires_ms: u64, rows: Option<Vec<ExportRow>>) {
        let record = BatchRecord {
            export_expires_ms,
            rows,
        };
        self.batches.lock().insert(batch_id, record);
    }

    /// Drops the index entries of an OTP slot that was replaced or withdrawn: its key, its
    /// request and the request's place in the approval queue. Called under the account's lock
    /// (lock order: account, then queue).
    pub fn withdraw(&self, old: OtpSlot) {
        self.by_otp.remove(&old.key);
        if let Some(r) = old.request {
            self.by_request.remove(&r.id);
            self.pending.remove(r.id);
        }
    }

    /// Every account, in id order (a snapshot: the list lock is not held while walking it).
    pub fn all_accounts(&self) -> Vec<AccountRef> {
        self.accounts.read().clone()
    }

    pub fn purge_exports(&self, now_ms: u64) -> usize {
        let mut purged = 0;
        for batch in self.batches.lock().values_mut() {
            if now_ms >= batch.export_expires_ms && batch.rows.take().is_some() {
                purged += 1;
            }
        }
        purged
    }
}
