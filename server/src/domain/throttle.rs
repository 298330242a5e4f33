//! Throttling of failed attempts (OTP redemptions; manual sign-ins), per source and globally.
//!
//! NIST SP 800-63B allows at most 100 consecutive failed attempts per secret before a back-off;
//! with many live OTPs an attacker spreads guesses over them, so the guessing budget is also
//! global: past `global_failures_per_min` failures in a minute, a source that failed in that
//! minute waits for the next one. A source with no failure in the minute is spared, so a guesser
//! cannot lock out everyone else; the price is that, past the budget, each new source gets one
//! failure a minute (the guessing bound says so). A success resets its sources.
//!
//! Sources are claims the server can check only so far: a console's serial is whatever the
//! client says, so failures are never counted against a serial alone (anyone could lock a
//! console out by naming it) but against the serial *from that address*.

use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use crate::config::ThrottleConfig;

/// Who a redemption comes from. A serial is kept as a keyed 64-bit hash (see
/// [`Throttle::serial`]): no allocation on the hot path, and with a per-process random key a
/// console cannot pick a serial that shares another's failure count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Address(IpAddr),
    /// A console serial from one address (keyed hash of both).
    Serial(u64),
    /// An account (manual sign-in: failures per account, as NIST asks).
    Account(u64),
}

#[derive(Debug, Default, Clone, Copy)]
struct SourceState {
    consecutive: u32,
    blocked_until_ms: u64,
    blocks: u32,
    /// The minute of its last failure plus one (0: none), for the global budget.
    failed_in_minute: u64,
}

/// Most sources remembered; past it, sources neither blocked nor close to it are forgotten.
const MAX_SOURCES: usize = 1_000_000;

/// Failed and throttled redemptions at one moment (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleCounts {
    /// Failed redemptions (malformed or unknown OTPs).
    pub failures: u64,
    /// Refused `too_many_attempts` because the source was throttled.
    pub throttled_source: u64,
    /// Refused `too_many_attempts` because the global budget was spent.
    pub throttled_global: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ThrottleCounters {
    pub failures: AtomicU64,
    pub throttled_source: AtomicU64,
    pub throttled_global: AtomicU64,
}

/// Redemptions that succeed (the common case) write nothing here and read two words that only
/// failures write: distinct redemptions share no cache line that one of them writes.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    serial_key: std::hash::RandomState,
    sources: DashMap<Source, SourceState>,
    /// At least the number of entries in `sources` (raised before an insert, lowered after a
    /// removal): while it is 0 nobody has failed lately, and the map is not looked at.
    tracked: CachePadded<AtomicUsize>,
    /// The minute number (high 32 bits) and the failures counted in it (low 32 bits).
    global: CachePadded<AtomicU64>,
    pub counters: ThrottleCounters,
}

/// `global`'s word: a minute and its failures.
fn minute_word(minute: u64, failures: u64) -> u64 {
    (minute << 32) | failures.min(u64::from(u32::MAX))
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            serial_key: std::hash::RandomState::new(),
            sources: DashMap::new(),
            tracked: CachePadded::new(AtomicUsize::new(0)),
            global: CachePadded::new(AtomicU64::new(0)),
            counters: ThrottleCounters::default(),
        }
    }

    /// The source of a console serial claimed from `address` (from nowhere in particular
    /// when called in process).
    pub fn serial(&self, serial: &str, address: Option<IpAddr>) -> Source {
        use std::hash::BuildHasher as _;
        Source::Serial(self.serial_key.hash_one((serial, address)))
    }

    /// Sources with failures on record (at least: see `tracked`).
    pub fn tracked_sources(&self) -> usize {
        self.tracked.load(Ordering::Acquire)
    }

    pub fn config(&self) -> ThrottleConfig {
        self.config
    }

    /// Seconds to wait before these sources may try again, if they must.
    pub fn check(&self, sources: &[Source], now_ms: u64) -> Option<u64> {
        if self.tracked.load(Ordering::Acquire) == 0 {
            // No source has failed since its last success: none waits, whatever the budget.
            return None;
        }
        let minute = now_ms / 60_000;
        let exhausted = {
            let g = self.global.load(Ordering::Acquire);
            g >> 32 == minute && g & u64::from(u32::MAX) >= self.config.global_failures_per_min
        };
        // Past the budget only sources that failed this minute wait: the others are spared.
        let failed_this_minute = || {
            sources.iter().any(|s| {
                self.sources
                    .get(s)
                    .is_some_and(|st| st.failed_in_minute == minute + 1)
            })
        };
        if exhausted && failed_this_minute() {
            self.counters
                .throttled_global
                .fetch_add(1, Ordering::Relaxed);
            return Some(((minute + 1) * 60_000 - now_ms).div_ceil(1000).max(1));
        }
        let wait_ms = sources
            .iter()
            .filter_map(|s| {
                self.sources
                    .get(s)
                    .map(|st| st.blocked_until_ms.saturating_sub(now_ms))
            })
            .max()
            .unwrap_or(0);
        if wait_ms > 0 {
            self.counters
                .throttled_source
                .fetch_add(1, Ordering::Relaxed);
            return Some(wait_ms.div_ceil(1000).max(1));
        }
        None
    }

    /// Counts a failed redemption against its sources and the global budget.
    pub fn failure(&self, sources: &[Source], now_ms: u64) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let minute = now_ms / 60_000;
        let _ = self
            .global
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| {
                let count = if g >> 32 == minute {
                    g & u64::from(u32::MAX)
                } else {
                    0
                };
                Some(minute_word(minute, count + 1))
            });
        if self.sources.len() >= MAX_SOURCES {
            let limit = self.config.per_source_failures / 2;
            let mut removed = 0;
            self.sources.retain(|_, st| {
                let keep = st.blocked_until_ms > now_ms || st.consecutive > limit;
                removed += usize::from(!keep);
                keep
            });
            self.tracked.fetch_sub(removed, Ordering::AcqRel);
        }
        for s in sources {
            let mut st = match self.sources.entry(*s) {
                Entry::Occupied(e) => e.into_ref(),
                Entry::Vacant(e) => {
                    self.tracked.fetch_add(1, Ordering::AcqRel);
                    e.insert(SourceState::default())
                }
            };
            st.consecutive += 1;
            st.failed_in_minute = now_ms / 60_000 + 1;
            if st.consecutive >= self.config.per_source_failures {
                let backoff_s = self
                    .config
                    .backoff_s
                    .saturating_mul(1 << st.blocks.min(16))
                    .min(self.config.max_backoff_s);
                st.blocked_until_ms = now_ms + backoff_s * 1000;
                st.blocks += 1;
                st.consecutive = 0;
            }
        }
    }

    /// A successful redemption forgets its sources' failures.
    pub fn success(&self, sources: &[Source]) {
        if self.tracked.load(Ordering::Acquire) == 0 {
            return;
        }
        for s in sources {
            if self.sources.remove(s).is_some() {
                self.tracked.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Failed attempts the server lets through over `hours`, from all sources.
    /// Failed and throttled attempts so far.
    pub fn counts(&self) -> ThrottleCounts {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.counters;
        ThrottleCounts {
            failures: c.failures.load(Relaxed),
            throttled_source: c.throttled_source.load(Relaxed),
            throttled_global: c.throttled_global.load(Relaxed),
        }
    }

    pub fn allowed_failures(&self, hours: u32) -> u64 {
        self.config
            .global_failures_per_min
            .saturating_mul(60 * u64::from(hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_backs_off_after_100_consecutive_failures_and_a_success_resets_it() {
        let t = Throttle::new(ThrottleConfig::default());
        let ip = [Source::Address(
            "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        )];
        for _ in 0..99 {
            assert_eq!(t.check(&ip, 0), None);
            t.failure(&ip, 0);
        }
        t.success(&ip);
        for _ in 0..99 {
            t.failure(&ip, 0);
        }
        assert_eq!(t.check(&ip, 0), None, "the success reset the count");
        t.failure(&ip, 0);
        assert_eq!(t.check(&ip, 0), Some(60));
        assert_eq!(t.check(&ip, 60_000), None, "the back-off ends");
        for _ in 0..100 {
            t.failure(&ip, 60_000);
        }
        assert_eq!(t.check(&ip, 60_000), Some(120), "the next back-off doubles");
    }

    #[test]
    fn past_the_global_budget_sources_that_failed_wait_and_others_are_spared() {
        let t = Throttle::new(ThrottleConfig {
            global_failures_per_min: 10,
            ..ThrottleConfig::default()
        });
        let guesser = [t.serial("S0", None)];
        for i in 0..10 {
            t.failure(&[t.serial(&format!("S{i}"), None)], 1_000);
        }
        assert_eq!(t.check(&guesser, 1_000), Some(59), "it failed this minute");
        assert_eq!(t.check(&[t.serial("other", None)], 1_000), None, "spared");
        // A fresh source that fails joins the waiting ones.
        t.failure(&[t.serial("other", None)], 1_000);
        assert_eq!(t.check(&[t.serial("other", None)], 1_000), Some(59));
        assert_eq!(t.check(&guesser, 60_000), None, "a new minute");
    }

    #[test]
    fn a_serial_named_from_elsewhere_does_not_block_the_console() {
        let t = Throttle::new(ThrottleConfig::default());
        let (console, stranger) = ("10.0.0.5".parse().ok(), "10.9.9.9".parse().ok());
        for _ in 0..100 {
            t.failure(&[t.serial("VICTIM-1", stranger)], 0);
        }
        assert!(t.check(&[t.serial("VICTIM-1", stranger)], 0).is_some());
        assert_eq!(t.check(&[t.serial("VICTIM-1", console)], 0), None);
    }
}
