//! A run's settings, typed: what `report.json` keeps as `config` for each kind of run, read
//! back as the type that wrote it (a merge compares and adds them up this way).

use otpfleet_emulator::FleetConfig;
use otpfleet_emulator::config::Role;
use otpfleet_emulator::rehearsal::RehearsalSettings;
use otpfleet_reports::{RunKind, Settings, ShardSettings};
use otpfleet_scenarios::LoadSettings;
use serde::Serialize;

/// The settings of a fleet, a load run or a rehearsal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunConfig {
    Fleet(Box<FleetConfig>),
    Load(Box<LoadSettings>),
    Rehearsal(Box<RehearsalSettings>),
}

impl ShardSettings for RunConfig {
    fn read(kind: RunKind, settings: &Settings) -> Result<RunConfig, String> {
        Ok(match kind {
            RunKind::Fleet => RunConfig::Fleet(settings.read()?),
            RunKind::Load => RunConfig::Load(settings.read()?),
            RunKind::Rehearsal => RunConfig::Rehearsal(settings.read()?),
        })
    }

    fn whole(&self, admins: Option<u32>) -> RunConfig {
        match self {
            RunConfig::Fleet(cfg) => RunConfig::Fleet(Box::new(FleetConfig {
                shard: otpfleet_emulator::Shard::WHOLE,
                role: Role::All,
                admins: admins.unwrap_or(cfg.admins),
                ..(**cfg).clone()
            })),
            other => other.clone(),
        }
    }

    fn auto_approve(&self) -> bool {
        matches!(self, RunConfig::Fleet(cfg) if cfg.auto_approve)
    }
}
