//! The knobs of a fleet run, each with a bound, checked before anything starts.

use crate::arrival::{Arrival, Schedule};
use crate::error::ConfigError;
pub use otpfleet_reports::Role;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A uniform range of milliseconds, written `MIN..MAX` (or one number for a fixed value): the
/// minimum at most the maximum, at most a week (valid by construction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MsRangeParts")]
pub struct MsRange {
    min_ms: u64,
    max_ms: u64,
}

/// A range as written in a report, checked as it is read back.
#[derive(Deserialize)]
struct MsRangeParts {
    min_ms: u64,
    max_ms: u64,
}

impl TryFrom<MsRangeParts> for MsRange {
    type Error = String;

    fn try_from(p: MsRangeParts) -> Result<MsRange, String> {
        MsRange::new(p.min_ms, p.max_ms)
    }
}

/// The longest range a knob takes: a week.
const MS_RANGE_MAX: u64 = 7 * 24 * 3_600_000;

impl MsRange {
    /// A range; refused when the minimum is above the maximum or the maximum above a week.
    pub fn new(min_ms: u64, max_ms: u64) -> Result<MsRange, String> {
        if min_ms > max_ms {
            return Err(format!(
                "{min_ms}..{max_ms}: the minimum is above the maximum"
            ));
        }
        if max_ms > MS_RANGE_MAX {
            return Err(format!(
                "{min_ms}..{max_ms}: at most a week ({MS_RANGE_MAX} ms)"
            ));
        }
        Ok(MsRange { min_ms, max_ms })
    }

    /// A range known valid where it is written (a constant of ours).
    pub const fn known(min_ms: u64, max_ms: u64) -> MsRange {
        assert!(min_ms <= max_ms && max_ms <= MS_RANGE_MAX, "a valid range");
        MsRange { min_ms, max_ms }
    }

    pub fn min_ms(self) -> u64 {
        self.min_ms
    }

    pub fn max_ms(self) -> u64 {
        self.max_ms
    }
}

impl FromStr for MsRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{t:?} is not a whole number of milliseconds"))
        };
        let (min_ms, max_ms) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let v = parse(s)?;
                (v, v)
            }
        };
        MsRange::new(min_ms, max_ms).map_err(|why| format!("{s:?}: {why}"))
    }
}

impl fmt::Display for MsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min_ms, self.max_ms)
    }
}

/// `K/N`: this process runs consoles whose index modulo `N` is `K`; `0 <= K < N <= 10,000`
/// (valid by construction: a count of 0 would divide by zero in `owns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ShardParts")]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard as written in a report, checked as it is read back.
#[derive(Deserialize)]
struct ShardParts {
    index: u32,
    count: u32,
}

impl TryFrom<ShardParts> for Shard {
    type Error = String;

    fn try_from(p: ShardParts) -> Result<Shard, String> {
        Shard::new(p.index, p.count)
    }
}

/// Most shards a fleet is split into.
const MAX_SHARDS: u32 = 10_000;

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; refused unless `index < count <= 10,000`.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || index >= count || count > MAX_SHARDS {
            return Err(format!(
                "{index}/{count} is not a shard: write K/N with 0 <= K < N <= {MAX_SHARDS}, e.g. 0/2"
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    pub fn owns(&self, console: u64) -> bool {
        console % u64::from(self.count) == u64::from(self.index)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard: write K/N with 0 <= K < N, e.g. 0/2");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).map_err(|_| bad())
    }
}

/// A probability, checked to be within 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64")]
pub struct Rate(f64);

impl TryFrom<f64> for Rate {
    type Error = String;

    fn try_from(p: f64) -> Result<Rate, String> {
        Rate::new(p)
    }
}

impl Rate {
    pub const ZERO: Rate = Rate(0.0);

    /// A rate known valid where it is written (a constant of ours).
    pub const fn known(p: f64) -> Rate {
        assert!(p >= 0.0 && p <= 1.0, "a rate is within 0..=1");
        Rate(p)
    }

    pub fn new(p: f64) -> Result<Rate, String> {
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            Ok(Rate(p))
        } else {
            Err(format!(
                "{p} is not a rate: give a number from 0 to 1 (0.03 is 3%)"
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let p: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a rate: give a number from 0 to 1 (0.03 is 3%)"))?;
        Rate::new(p)
    }
}

/// Fault and behaviour rates, each the share of consoles (or of attempts, for typos and
/// network faults) it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Consoles booted without the HDMI ingest module (verification fails, the installer
    /// connects it and restarts).
    pub hdmi_missing: Rate,
    /// Consoles whose make and model are not certified (stuck).
    pub uncertified: Rate,
    /// Chance that typing the OTP goes wrong (each attempt).
    pub typo: Rate,
    /// Consoles set up manually with email and password.
    pub manual: Rate,
    /// Requests the admins reject.
    pub reject: Rate,
    /// Installers who arrive after the OTP expired.
    pub late: Rate,
    /// Chance that a request meets a network fault (reset before it reaches the server).
    pub network_fault: Rate,
    /// OTPs typed on two consoles at the same moment (an installer mixing up a sheet): the
    /// second console's redemption must be refused.
    pub race: Rate,
    /// Consoles that ask for their credentials again, as after a lost answer (and, refused or
    /// expired, ask for them anyway): the server must not hand them out twice, or at all.
    pub double_sign_in: Rate,
}

impl Rates {
    /// The fault rates when none is given, as rollouts meet them: the one place they are
    /// written (the CLI's defaults and a plan's are these).
    pub const DEFAULT: Rates = Rates {
        hdmi_missing: Rate(0.03),
        uncertified: Rate(0.005),
        typo: Rate(0.05),
        manual: Rate(0.02),
        reject: Rate(0.01),
        late: Rate::ZERO,
        network_fault: Rate::ZERO,
        race: Rate::ZERO,
        double_sign_in: Rate::ZERO,
    };
}

impl Default for Rates {
    fn default() -> Self {
        Rates::DEFAULT
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How long people and consoles take, each a uniform range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Consoles arrive spread evenly over this window (ms).
    pub arrival_window_ms: u64,
    pub boot: MsRange,
    /// Reading each page (welcome, agreement).
    pub think: MsRange,
    /// Typing the OTP or the email and password.
    pub typing: MsRange,
    /// From a failed verification to the restart with the HDMI ingest module connected.
    pub hdmi_fix: MsRange,
    /// An admin's time per decision.
    pub decision: MsRange,
    /// An admin's pause when the queue is empty.
    pub admin_idle_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            arrival_window_ms: 10_000,
            boot: MsRange::known(200, 800),
            think: MsRange::known(100, 500),
            typing: MsRange::known(300, 1_500),
            hdmi_fix: MsRange::known(1_000, 3_000),
            decision: MsRange::known(2, 10),
            admin_idle_ms: 100,
        }
    }
}

/// A fleet run's settings (as given, in its report's `config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetConfig {
    pub consoles: u64,
    pub seed: u64,
    pub shard: Shard,
    /// What this process runs: consoles, admins or both.
    pub role: Role,
    pub rates: Rates,
    pub timing: Timing,
    /// How consoles arrive (`Even` spreads them over `timing.arrival_window_ms`).
    pub arrival: Arrival,
    /// Most consoles in flight at once: one that arrives past it is `dropped`, never started
    /// late.
    pub max_in_flight: u64,
    pub admins: u32,
    pub auto_approve: bool,
    pub validity_hours: u32,
    /// Retries of a request after a network fault or a transport error, with backoff.
    pub max_retries: u32,
    /// A single request's time limit.
    pub request_timeout_ms: u64,
    /// The whole run's time limit: consoles still running then are `abandoned`.
    pub max_duration_ms: u64,
    /// Send each request when it is due rather than at tokio's next millisecond tick: the last
    /// 2 ms are waited on a timerfd armed for the deadline (CPU spent for precision; see
    /// `api::wait_until`). Off for simulated time, which no timerfd follows.
    #[serde(default)]
    pub precise_timers: bool,
}

/// Most consoles one process drives.
pub const MAX_CONSOLES: u64 = 10_000_000;
/// Consoles in flight at once by default (each holds a task and a few KB while it runs).
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 100_000;
/// Most admins of one run.
pub const MAX_ADMINS: u32 = 1_000;
/// Most retries of one request.
pub const MAX_RETRIES: u32 = 100;

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            consoles: 2_000,
            seed: 1,
            shard: Shard::WHOLE,
            role: Role::All,
            rates: Rates::default(),
            timing: Timing::default(),
            arrival: Arrival::Even,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            admins: 2,
            auto_approve: false,
            validity_hours: 8,
            max_retries: 5,
            request_timeout_ms: 10_000,
            max_duration_ms: 10 * 60_000,
            precise_timers: false,
        }
    }
}

impl FleetConfig {
    /// Checks what the types cannot: counts and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.consoles == 0 || self.consoles > MAX_CONSOLES {
            return Err(ConfigError::Consoles {
                got: self.consoles,
                max: MAX_CONSOLES,
            });
        }
        self.check_role()?;
        if self.admins == 0 && !self.auto_approve && self.role != Role::Consoles {
            return Err(ConfigError::NobodyApproves);
        }
        if self.admins > MAX_ADMINS {
            return Err(ConfigError::Admins {
                got: self.admins,
                max: MAX_ADMINS,
            });
        }
        if !(1..=336).contains(&self.validity_hours) {
            return Err(ConfigError::ValidityHours(self.validity_hours));
        }
        if self.max_retries > MAX_RETRIES {
            return Err(ConfigError::Retries {
                got: self.max_retries,
                max: MAX_RETRIES,
            });
        }
        if self.request_timeout_ms == 0 || self.max_duration_ms == 0 {
            return Err(ConfigError::ZeroTime);
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::NoneInFlight);
        }
        self.check_count()
    }

    /// A console count the schedule contradicts: stages fix their count, a replay its most.
    fn check_count(&self) -> Result<(), ConfigError> {
        let (Some(fixed), consoles) = (self.arrival.fixed_count(), self.consoles) else {
            return Ok(());
        };
        match self.arrival.stages_ms() {
            None if fixed < consoles => Err(ConfigError::ReplayTooShort {
                rows: fixed,
                consoles,
            }),
            Some(stages_ms) if fixed != consoles => {
                let would = if consoles < fixed {
                    let schedule = Schedule::new(&self.arrival, fixed, 0, self.seed);
                    let last_s = schedule.at_ms(consoles - 1) as f64 / 1000.0;
                    format!("would stop arriving at {last_s:.1} s")
                } else {
                    "are more than it brings".to_owned()
                };
                Err(ConfigError::StagesFixCount {
                    schedule: self.arrival.to_string(),
                    brings: fixed,
                    stages_s: (stages_ms as f64 / 1000.0).to_string(),
                    consoles,
                    would,
                })
            }
            _ => Ok(()),
        }
    }
}

impl FleetConfig {
    /// Settings this process's role contradicts.
    fn check_role(&self) -> Result<(), ConfigError> {
        match self.role {
            Role::All => Ok(()),
            Role::Consoles if self.admins > 0 => Err(ConfigError::AdminsInConsoleShard),
            Role::Consoles => Ok(()),
            Role::Admins if self.auto_approve => Err(ConfigError::NothingToApprove),
            Role::Admins if self.shard != Shard::WHOLE => Err(ConfigError::ShardedAdmins),
            Role::Admins => Ok(()),
        }
    }
}

/// A request's time limit as a `Duration`.
pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_holds_as_many_arrivals_as_a_fleet_has_consoles() {
        assert_eq!(crate::arrival::MAX_REPLAY_ROWS as u64, MAX_CONSOLES);
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("1/2".parse(), Shard::new(1, 2));
        assert!(Shard::new(0, 0).is_err(), "no division by zero");
        for bad in ["3/2", "2/2", "0/0", "1", "a/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_between_0_and_1() {
        assert_eq!("0.03".parse::<Rate>().map(Rate::get), Ok(0.03));
        for bad in ["1.5", "-0.1", "NaN", "inf", "3%"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_parse() {
        assert_eq!("100..500".parse(), MsRange::new(100, 500));
        assert!(
            MsRange::new(9, 1).is_err(),
            "the minimum at most the maximum"
        );
        assert_eq!("7".parse(), MsRange::new(7, 7));
        assert!("500..100".parse::<MsRange>().is_err());
    }
}
