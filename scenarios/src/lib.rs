//! Goose 0.19 load scenarios of the OTP service's hot path, against any server implementing the
//! contract: `issue` (admins generating OTP batches), `redeem` (consoles at first boot),
//! `approve` (admins working the approval queue) and `mixed` (the three at a rollout's
//! weights). One file per scenario; the transactions they share are in `common`.
//!
//! A run ([`run_load`]) sets the server up through the admin API (accounts, OTPs issued before
//! the attack), starts the harness's background work (a feeder or an approver, per scenario),
//! runs goose with its own options, and keeps beside goose's metrics an HdrHistogram per step
//! (corrected and raw views) for `report.json` ([`build_report`]).
//!
//! No global state of ours: a run's counters and pre-issued OTPs live in its [`Harness`].
//! (Goose itself keeps a process-wide killswitch, logger and Ctrl-C handler, so one goose
//! attack runs per process at a time.)

mod background;
pub mod common;
mod record;
mod report;
mod run;
mod setup;
mod tickets;

pub mod approve;
pub mod issue;
pub mod mixed;
pub mod redeem;

pub use common::{Harness, HarnessConfig};
pub use record::{MAX_BACKFILL, Tally, backfill, record};
pub use report::{
    CoordinatedOmission, GooseSummary, HarnessFigures, LoadSettings, SetupFigures, build_report,
    load_settings, summarize_goose,
};
pub use run::{
    DEFAULT_RUN_TIME, LoadConfig, LoadError, LoadRun, Sizing, apply_goose_defaults, controllers,
    run_goose_only, run_load,
};
pub use setup::{MAX_ACCOUNTS, Seeded, SetupError, SetupPlan};
pub use tickets::{Handed, TicketQueue};

use goose::prelude::*;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A scenario of `otpfleet load --scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScenarioName {
    Issue,
    Redeem,
    Approve,
    #[default]
    Mixed,
}

impl ScenarioName {
    pub const ALL: [ScenarioName; 4] = [
        ScenarioName::Issue,
        ScenarioName::Redeem,
        ScenarioName::Approve,
        ScenarioName::Mixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioName::Issue => issue::NAME,
            ScenarioName::Redeem => redeem::NAME,
            ScenarioName::Approve => approve::NAME,
            ScenarioName::Mixed => mixed::NAME,
        }
    }

    /// Goose users when `--users` (or `--test-plan`) is not given.
    pub fn default_users(self) -> usize {
        match self {
            ScenarioName::Issue => issue::DEFAULT_USERS,
            ScenarioName::Redeem => redeem::DEFAULT_USERS,
            ScenarioName::Approve => approve::DEFAULT_USERS,
            ScenarioName::Mixed => mixed::DEFAULT_USERS,
        }
    }

    /// The share of goose users that are consoles (and need pre-issued OTPs).
    pub fn console_share(self) -> f64 {
        match self {
            ScenarioName::Redeem => 1.0,
            ScenarioName::Mixed => {
                let total: usize = mixed::WEIGHTS.iter().map(|(_, w)| w).sum();
                mixed::WEIGHTS[0].1 as f64 / total as f64
            }
            ScenarioName::Issue | ScenarioName::Approve => 0.0,
        }
    }

    /// Whether the harness feeds the approval queue (`approve`).
    pub fn feeds_queue(self) -> bool {
        self == ScenarioName::Approve
    }

    /// Whether the harness approves the consoles' requests (`redeem`).
    pub fn approves(self) -> bool {
        self == ScenarioName::Redeem
    }

    /// Whether the `issue` admins run (and need a pool of accounts).
    pub fn issues(self) -> bool {
        matches!(self, ScenarioName::Issue | ScenarioName::Mixed)
    }

    /// Registers this scenario's goose scenarios.
    pub fn register(
        self,
        attack: GooseAttack,
        h: &Arc<Harness>,
    ) -> Result<GooseAttack, GooseError> {
        Ok(match self {
            ScenarioName::Issue => attack.register_scenario(issue::scenario(h)),
            ScenarioName::Redeem => attack.register_scenario(redeem::scenario(h)),
            ScenarioName::Approve => attack.register_scenario(approve::scenario(h)),
            ScenarioName::Mixed => mixed::scenarios(h)?
                .into_iter()
                .fold(attack, GooseAttack::register_scenario),
        })
    }
}

impl fmt::Display for ScenarioName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScenarioName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScenarioName::ALL
            .into_iter()
            .find(|n| n.as_str() == s.trim())
            .ok_or_else(|| {
                format!("{s:?} is not a scenario: give one of issue, redeem, approve, mixed")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_mixed_is_mostly_consoles() {
        for n in ScenarioName::ALL {
            assert_eq!(n.as_str().parse::<ScenarioName>(), Ok(n));
        }
        assert!("mix".parse::<ScenarioName>().is_err());
        assert_eq!(ScenarioName::default(), ScenarioName::Mixed);
        assert!((ScenarioName::Mixed.console_share() - 0.8).abs() < 1e-9);
    }
}
