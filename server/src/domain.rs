//! The provisioning core: accounts, OTP batches, preferences, device verification, redemption,
//! approval and the credential hand-over.
//!
//! **Architecture invariant:** the core never reads a clock (every operation takes `now_ms`)
//! and does no IO.
//!
//! Concurrency: there is no global lock held across an operation. Each account is its own
//! `Mutex` and holds everything about its OTP (the slot, the console's request), so every
//! transition that must happen once (a redemption, a decision, a hand-over) is decided under
//! one account's lock. The indexes (OTP key, request id, upn -> account) are sharded maps whose
//! entries are hints: a lookup always re-checks the account under its lock, so a stale entry
//! can never make a replaced OTP or request usable. Lock order: account, then the approval
//! queue; an index shard is never held while an account is locked by the same thread.

pub mod accounts;
pub mod batches;
mod console;
#[cfg(test)]
mod contention;
mod error;
pub mod events;
pub(crate) mod gate;
mod ids;
mod replay;
pub mod requests;
pub mod secrets;
pub(crate) mod store;
pub mod throttle;

pub use error::ApiError;
pub use events::{Event, EventSink, Reserved};
pub use ids::IdKind;
pub use replay::Replay;
pub use store::Stats;

use crate::catalogue::Catalogue;
use crate::config::ServerConfig;
use otpfleet_protocol::Preferences;
use secrets::Secrets;
use store::Store;

/// The events of one request, numbered as its changes are applied and sent together.
pub(crate) struct Unit<'a> {
    sink: Option<&'a std::sync::Arc<dyn EventSink>>,
    reserved: Vec<events::Reserved>,
}

impl Unit<'_> {
    /// Numbers one event of the unit (built only when journaling).
    pub(crate) fn emit(&mut self, event: impl FnOnce() -> Event) {
        if let Some(sink) = self.sink {
            self.reserved.push(sink.reserve(&event()));
        }
    }
}

impl Drop for Unit<'_> {
    fn drop(&mut self) {
        if let (Some(sink), false) = (self.sink, self.reserved.is_empty()) {
            sink.send_unit(std::mem::take(&mut self.reserved));
        }
    }
}

/// The domain core. Share it behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Core {
    config: ServerConfig,
    catalogue: Catalogue,
    secrets: Secrets,
    preferences: store::Global<parking_lot::RwLock<Preferences>>,
    /// `preferences.auto_approve`, mirrored (written under the preferences lock) so that every
    /// redemption reads it without touching the lock's shared counter.
    auto_approve: std::sync::atomic::AtomicBool,
    store: Store,
    /// Shared with the core that replaces this one when a durable server rebuilds its state
    /// (`with_throttles_of`): a rebuild must not give guessers a fresh budget.
    throttle: std::sync::Arc<throttle::Throttle>,
    /// Wrong passwords of manual sign-ins, throttled apart from OTP guesses.
    sign_in_throttle: std::sync::Arc<throttle::Throttle>,
    /// Where changes are journaled, when the server is durable.
    sink: Option<std::sync::Arc<dyn EventSink>>,
    /// A defect planted for the simulation to catch (only on a simulated disk).
    planted: Option<crate::simdisk::Defect>,
}

impl Core {
    pub fn new(config: ServerConfig, catalogue: Catalogue, secrets: Secrets) -> Core {
        Core {
            throttle: std::sync::Arc::new(throttle::Throttle::new(config.throttle)),
            sign_in_throttle: std::sync::Arc::new(throttle::Throttle::new(config.throttle)),
            config,
            catalogue,
            secrets,
            preferences: store::Global::<parking_lot::RwLock<_>>::new(Preferences::default()),
            auto_approve: std::sync::atomic::AtomicBool::new(Preferences::default().auto_approve),
            store: Store::default(),
            sink: None,
            planted: None,
        }
    }

    /// Journals every change to `sink` from now on (after replaying what it recovered). The
    /// journal's `starts`th start numbers its requests and batches from a range of its own
    /// ([`ids::IDS_PER_START`]), so an id lost in a crash is never handed out again.
    pub fn set_sink(&mut self, sink: std::sync::Arc<dyn EventSink>, starts: u64) {
        if self.planted != Some(crate::simdisk::Defect::ShowBeforeKept) {
            self.store.number_after(ids::ids_after_start(starts));
        }
        self.sink = Some(sink);
    }

    /// Plants `defect` (a simulated disk's) in this core, for the simulation to catch.
    pub(crate) fn plant(&mut self, defect: Option<crate::simdisk::Defect>) {
        self.planted = defect;
    }

    /// The defect planted in this core, if any (only on a simulated disk).
    pub(crate) fn planted(&self) -> Option<crate::simdisk::Defect> {
        self.planted
    }

    /// The number of the last event appended to the journal, by any request (not only the
    /// caller's), if the core is durable: a caller that waits for the journal to be durable up
    /// to it after its change knows its own events are kept.
    pub fn journal_appended(&self) -> Option<u64> {
        self.sink.as_ref().map(|s| s.appended())
    }

    /// Emits one event; an in-memory core does not even build it (the hot path's
    /// instruction counts are gated in CI).
    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.sink {
            sink.append(&event());
        }
    }

    /// A unit of events: a request's changes journaled together, committed whole or not at all
    /// (see `EventSink`). Sent when dropped, on every path out of the request.
    fn unit(&self) -> Unit<'_> {
        Unit {
            sink: self.sink.as_ref(),
            reserved: Vec::new(),
        }
    }

    /// The decisions shared with the PostgreSQL core, with this core's keys and throttle.
    pub(crate) fn gate(&self) -> gate::Gate<'_> {
        gate::Gate {
            config: &self.config,
            catalogue: &self.catalogue,
            secrets: &self.secrets,
            throttle: &self.throttle,
        }
    }

    /// A core with the shipped catalogue, default settings and fresh keys.
    pub fn with_defaults() -> Core {
        Core::new(
            ServerConfig::default(),
            Catalogue::builtin(),
            Secrets::random(),
        )
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// This core, throttling with `other`'s throttles (what they counted included).
    pub fn with_throttles_of(mut self, other: &Core) -> Core {
        self.throttle = std::sync::Arc::clone(&other.throttle);
        self.sign_in_throttle = std::sync::Arc::clone(&other.sign_in_throttle);
        self
    }

    pub fn preferences(&self) -> Preferences {
        *self.preferences.read()
    }

    /// Replaces the preferences. Validity applies to OTPs generated from now on; turning auto
    /// approval on does not approve requests already waiting.
    pub fn set_preferences(
        &self,
        prefs: Preferences,
        by: Option<&str>,
    ) -> Result<Preferences, ApiError> {
        check_preferences(&prefs)?;
        let mut current = self.preferences.write();
        self.store_preferences(&mut current, prefs);
        // Emitted under the lock, so the journal orders changes as they were applied.
        self.emit(|| Event::PreferencesSet {
            preferences: prefs,
            by: by.map(str::to_owned),
        });
        drop(current);
        Ok(prefs)
    }

    /// Whether a redemption is approved at once (the hot path's read of the preferences).
    fn auto_approve(&self) -> bool {
        self.auto_approve.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces the preferences under their write lock, the mirror with them.
    fn store_preferences(&self, current: &mut Preferences, prefs: Preferences) {
        *current = prefs;
        self.auto_approve
            .store(prefs.auto_approve, std::sync::atomic::Ordering::Relaxed);
    }

    /// The preferences with the guessing bound they imply (walks every account for the count
    /// of live OTPs).
    pub fn preferences_view(&self, now_ms: u64) -> otpfleet_protocol::PreferencesView {
        let prefs = self.preferences();
        otpfleet_protocol::PreferencesView {
            otp_validity_hours: prefs.otp_validity_hours,
            auto_approve: prefs.auto_approve,
            guessing_bound: self.guessing_bound(self.stats(now_ms).live_otps),
        }
    }

    /// The chance bound of guessing any live OTP within one validity period.
    pub fn guessing_bound(&self, live_otps: u64) -> otpfleet_protocol::GuessingBound {
        let attempts = self
            .throttle
            .allowed_failures(self.preferences().otp_validity_hours);
        guessing_bound(live_otps, attempts)
    }

    /// Failed and throttled redemptions so far.
    pub fn throttle_counts(&self) -> throttle::ThrottleCounts {
        self.throttle.counts()
    }

    /// Counts for `/metrics`: accounts by provisioning state and the approval queue depth.
    /// Walks every account: O(accounts), meant for a scrape every few seconds, not a hot path.
    pub fn stats(&self, now_ms: u64) -> Stats {
        self.store.stats(now_ms)
    }

    /// Records in the journal (the audit log) each OTP that expired before sign-in and is not
    /// recorded yet; answers how many. Walks every account: the server calls it once a minute.
    /// A core without a journal has no log to write and returns at once.
    pub fn record_expiries(&self, now_ms: u64) -> usize {
        if self.sink.is_none() {
            return 0;
        }
        let mut recorded = 0;
        for account in self.store.all_accounts() {
            let mut a = account.lock();
            let expired = a.provisioning(now_ms) == otpfleet_protocol::Provisioning::OtpExpired;
            let id = a.id;
            if let Some(slot) = a.otp.as_mut().filter(|s| expired && !s.expiry_logged) {
                slot.expiry_logged = true;
                // Emitted under the account's lock, like every change of the account.
                self.emit(|| Event::OtpExpired {
                    account: id,
                    batch: slot.batch_id,
                    expires_ms: slot.expires_ms,
                });
                recorded += 1;
            }
        }
        recorded
    }

    /// Drops the plaintext of batch exports whose download window has passed.
    pub fn purge_expired_exports(&self, now_ms: u64) -> usize {
        self.store.purge_exports(now_ms)
    }
}

/// The chance bound of guessing any of `live_otps` OTPs with `attempts` failed guesses.
pub(crate) fn guessing_bound(live_otps: u64, attempts: u64) -> otpfleet_protocol::GuessingBound {
    let code_space =
        (otpfleet_protocol::OTP_ALPHABET.len() as f64).powi(otpfleet_protocol::OTP_LEN as i32);
    otpfleet_protocol::GuessingBound {
        live_otps,
        failed_attempts_allowed: attempts,
        code_space,
        success_probability: (live_otps as f64 * attempts as f64 / code_space).min(1.0),
    }
}

/// Preferences an admin may set (both stores refuse the same, with the same answer).
pub fn check_preferences(prefs: &Preferences) -> Result<(), ApiError> {
    use otpfleet_protocol::limits::{VALIDITY_HOURS_MAX, VALIDITY_HOURS_MIN};
    if (VALIDITY_HOURS_MIN..=VALIDITY_HOURS_MAX).contains(&prefs.otp_validity_hours) {
        return Ok(());
    }
    Err(ApiError::new(
        otpfleet_protocol::ErrorCode::ValidityOutOfRange,
        format!(
            "otp_validity_hours must be between {VALIDITY_HOURS_MIN} and {VALIDITY_HOURS_MAX} \
             (two weeks); {} was given",
            prefs.otp_validity_hours
        ),
    ))
}
