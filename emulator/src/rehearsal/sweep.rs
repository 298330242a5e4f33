//! What-if sweeps: a plan rehearsed for every combination of a few settings (`--vary
//! validity=8h,24h --vary approvers=2,4`), each with the same seed, on every core. A combination
//! is the plan as written with those settings changed and checked again, so a row is exactly
//! what rehearsing that plan alone gives.

use super::plan::{CompiledPlan, Plan, compile_plan};
use super::{RehearsalRun, rehearse_once};
use crate::error::RunError;
use otpfleet_reports::{Setting, SweepRow};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use toml::Spanned;

/// Most combinations one sweep runs.
pub const MAX_COMBINATIONS: usize = 1_000;

/// A setting a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// OTP validity, hours (`8h`, `2d` or `8`): the plan's, and every preference change's.
    Validity,
    /// Admins in every admin group.
    Approvers,
    /// The time of day every wave's daily OTP batch is generated (`07:30`).
    BatchTime,
    /// The re-issue policy (`at_once`, `next_batch`).
    Policy,
    /// OTPs a room gets at most.
    Attempts,
}

impl Knob {
    const ALL: [Knob; 5] = [
        Knob::Validity,
        Knob::Approvers,
        Knob::BatchTime,
        Knob::Policy,
        Knob::Attempts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Knob::Validity => "validity",
            Knob::Approvers => "approvers",
            Knob::BatchTime => "batch-time",
            Knob::Policy => "policy",
            Knob::Attempts => "attempts",
        }
    }

    /// Sets this knob to `value` in `plan` (as written); the plan is checked afterwards.
    fn set(self, plan: &mut Plan, value: &str) -> Result<(), String> {
        let new = |v| Spanned::new(0..0, v);
        match self {
            Knob::Validity => {
                let hours = hours(value)?;
                plan.preferences.otp_validity_hours = new(hours);
                for change in &mut plan.preferences.changes {
                    if change.otp_validity_hours.is_some() {
                        change.otp_validity_hours = Some(new(hours));
                    }
                }
            }
            Knob::Approvers => {
                let count: u32 = value
                    .parse()
                    .map_err(|_| format!("approvers={value}: give a whole number of admins"))?;
                if plan.admins.is_empty() {
                    return Err("approvers: the plan has no [[admins]] group to staff".into());
                }
                for group in &mut plan.admins {
                    group.count = new(count);
                }
            }
            Knob::BatchTime => {
                if super::plan::time_of_day(value).is_none() {
                    return Err(format!(
                        "batch-time={value}: write a time of day, e.g. 07:30"
                    ));
                }
                for wave in &mut plan.waves {
                    wave.otps_generated_at = Some(Spanned::new(0..0, value.to_owned()));
                }
            }
            Knob::Policy | Knob::Attempts => {
                let Some(reissue) = plan.reissue.as_mut() else {
                    return Err(format!(
                        "{}: the plan has no [reissue] section to vary",
                        self.name()
                    ));
                };
                match self {
                    Knob::Policy => reissue.policy = Spanned::new(0..0, value.to_owned()),
                    _ => {
                        let n = value.parse().map_err(|_| {
                            format!("attempts={value}: give a whole number of OTPs per room")
                        })?;
                        reissue.attempts = Some(new(n));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `8h`, `2d` or `8` (hours).
fn hours(value: &str) -> Result<u32, String> {
    let bad = || format!("validity={value}: write hours as 8h, days as 2d");
    let (number, unit) = match value.strip_suffix('d') {
        Some(days) => (days, 24),
        None => (value.strip_suffix('h').unwrap_or(value), 1),
    };
    let n: u32 = number.trim().parse().map_err(|_| bad())?;
    n.checked_mul(unit).ok_or_else(bad)
}

/// One `--vary NAME=V1,V2,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vary {
    pub knob: Knob,
    pub values: Vec<String>,
}

impl FromStr for Vary {
    type Err = String;

    fn from_str(text: &str) -> Result<Vary, String> {
        let names: Vec<&str> = Knob::ALL.iter().map(|k| k.name()).collect();
        let Some((name, values)) = text.split_once('=') else {
            return Err(format!(
                "{text:?}: write NAME=V1,V2,... with NAME one of {}",
                names.join(", ")
            ));
        };
        let knob = Knob::ALL
            .into_iter()
            .find(|k| k.name() == name.trim())
            .ok_or_else(|| {
                format!(
                    "{name:?} is not a setting a sweep varies: {}",
                    names.join(", ")
                )
            })?;
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(format!(
                "{name}: give at least one value, e.g. {name}=V1,V2"
            ));
        }
        Ok(Vary { knob, values })
    }
}

impl std::fmt::Display for Vary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.knob.name(), self.values.join(","))
    }
}

/// One combination: a value per varied knob.
pub type Combination = Vec<(Knob, String)>;

/// Every combination of `varies`, the first varying slowest.
pub fn combinations(varies: &[Vary]) -> Vec<Combination> {
    varies.iter().fold(vec![Vec::new()], |so_far, vary| {
        so_far
            .iter()
            .flat_map(|combo| {
                vary.values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.push((vary.knob, v.clone()));
                    c
                })
            })
            .collect()
    })
}

/// `base` with `combo`'s settings, checked as a plan is.
pub fn apply(base: &CompiledPlan, combo: &[(Knob, String)]) -> Result<CompiledPlan, String> {
    let mut plan = base.source.clone();
    for (knob, value) in combo {
        knob.set(&mut plan, value)?;
    }
    compile_plan(&plan).map_err(|errors| {
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("{}: {}", label(combo), shown.join("; "))
    })
}

fn label(combo: &[(Knob, String)]) -> String {
    let parts: Vec<String> = combo
        .iter()
        .map(|(k, v)| format!("{}={v}", k.name()))
        .collect();
    parts.join(" ")
}

/// Every combination's plan, checked before anything runs (a bad value stops the sweep at once).
pub fn plans(
    base: &CompiledPlan,
    varies: &[Vary],
) -> Result<Vec<(Combination, CompiledPlan)>, String> {
    for (i, vary) in varies.iter().enumerate() {
        if varies[..i].iter().any(|v| v.knob == vary.knob) {
            let name = vary.knob.name();
            return Err(format!(
                "{name} is varied twice: give all its values in one --vary {name}=V1,V2"
            ));
        }
    }
    let combos = combinations(varies);
    if combos.len() > MAX_COMBINATIONS {
        return Err(format!(
            "{} combinations: at most {MAX_COMBINATIONS}; vary fewer settings or values",
            combos.len()
        ));
    }
    combos
        .into_iter()
        .map(|c| apply(base, &c).map(|plan| (c, plan)))
        .collect()
}

/// Rehearses every plan with `seed` on `jobs` threads; `done(i)` is told as plan `i` finishes.
/// Answers a row per plan in their order, marked.
pub fn sweep(
    plans: &[(Combination, CompiledPlan)],
    seed: u64,
    jobs: usize,
    done: &(dyn Fn(usize, &SweepRow) + Sync),
) -> Result<Vec<SweepRow>, RunError> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Result<SweepRow, RunError>>>> =
        Mutex::new(plans.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, plans.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((combo, plan)) = plans.get(i) else {
                        break;
                    };
                    let row = rehearse_once(plan, seed).map(|run| row_of(combo, plan, &run));
                    if let Ok(row) = &row {
                        done(i, row);
                    }
                    rows.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(row);
                }
            });
        }
    });
    let rows = rows
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rows: Vec<SweepRow> = rows
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RunError::Runtime("a sweep's worker stopped".into()))))
        .collect::<Result<_, _>>()?;
    mark(&mut rows);
    Ok(rows)
}

/// A combination's row, from its rehearsal (unmarked).
pub fn row_of(combo: &[(Knob, String)], plan: &CompiledPlan, run: &RehearsalRun) -> SweepRow {
    let r = &run.report;
    let f = r.rehearsal.clone().unwrap_or_default();
    let days = f.last_signed_in_at.as_deref().and_then(|at| {
        let t: jiff::Timestamp = at.parse().ok()?;
        // To the second (as report.json writes it): the marks compare these.
        Some((t.as_millisecond() - plan.start_ms) as f64 / 86_400_000.0)
    });
    SweepRow {
        settings: combo
            .iter()
            .map(|(k, v)| Setting {
                name: k.name().to_owned(),
                value: v.clone(),
            })
            .collect(),
        rooms: r.consoles,
        signed_in: r.outcomes.signed_in_otp + r.outcomes.signed_in_manual,
        last_signed_in_at: f.last_signed_in_at,
        last_signed_in_days: days,
        signed_in_95_at: f.signed_in_95_at,
        second_visits: f.second_visits,
        otps_generated: f.otps_generated,
        expired_share: f.expired_share,
        admin_hours: f.admin_hours,
        soonest: false,
        least_admin_time: false,
    }
}

/// Marks the rows that finish soonest (of those that sign in the most rooms) and those with
/// the least admin time; ties are all marked.
pub fn mark(rows: &mut [SweepRow]) {
    let most = rows.iter().map(|r| r.signed_in).max().unwrap_or(0);
    let soonest = rows
        .iter()
        .filter(|r| r.signed_in == most)
        .filter_map(|r| r.last_signed_in_days)
        .fold(f64::INFINITY, f64::min);
    let least = rows
        .iter()
        .map(|r| r.admin_hours)
        .fold(f64::INFINITY, f64::min);
    for r in rows {
        r.soonest = r.signed_in == most && r.last_signed_in_days == Some(soonest);
        r.least_admin_time = r.admin_hours == least;
    }
}
