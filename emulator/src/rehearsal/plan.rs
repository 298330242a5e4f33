//! Rollout plan files (TOML): sites and waves, OTP batches, preferences and their changes,
//! admins with working hours, fault rates, per-wave overrides. Every field is documented in
//! `scenarios/rollouts/README.md`; a wrong field, type or value is refused with the file, the
//! line and the field.

use crate::config::{MsRange, Rate};
use crate::schedule::{WorkSchedule, parse_hours, parse_weekday};
use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A plan as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    /// When the rehearsal starts, RFC 3339 (`2026-12-07T00:00:00Z`).
    pub start: Spanned<String>,
    /// How many days to simulate at most; consoles still going then are abandoned.
    #[serde(default = "default_days")]
    pub days: u32,
    /// Polling interval the server tells consoles, seconds.
    #[serde(default = "default_poll_interval_s")]
    pub poll_interval_s: u32,
    pub preferences: PlanPreferences,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub timing: PlanTiming,
    #[serde(default)]
    pub admins: Vec<AdminGroup>,
    pub sites: Vec<Site>,
    pub waves: Vec<Wave>,
    /// What happens after an OTP expires or a request is rejected; without it, nothing (the
    /// room stays as it ended).
    #[serde(default)]
    pub reissue: Option<ReissueSection>,
}

/// Re-issue and return, as written: the admins regenerate a room's OTP and the installer comes
/// back.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReissueSection {
    /// When the admins regenerate: `at_once` (the next moment one is at work) or `next_batch`
    /// (with the batch of the installer's return day).
    pub policy: Spanned<String>,
    /// Working days at the site from the failure to the installer's return, `MIN..MAX`
    /// (default `1..3`).
    pub revisit_days: Option<Spanned<String>>,
    /// OTPs a room gets at most, the first included (default 3).
    pub attempts: Option<Spanned<u32>>,
    /// Admin time per regenerated OTP, seconds `MIN..MAX` (default `30..90`).
    pub regenerate_seconds: Option<Spanned<String>>,
}

fn default_days() -> u32 {
    14
}

fn default_poll_interval_s() -> u32 {
    300
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPreferences {
    pub otp_validity_hours: Spanned<u32>,
    #[serde(default)]
    pub auto_approve: bool,
    /// Changes at given times (RFC 3339), in order.
    #[serde(default)]
    pub changes: Vec<PreferenceChange>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceChange {
    pub at: Spanned<String>,
    pub otp_validity_hours: Option<Spanned<u32>>,
    pub auto_approve: Option<bool>,
}

/// Fault rates (each 0 to 1); in a wave, only the rates given override the plan's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    pub hdmi_missing_rate: Option<Spanned<f64>>,
    pub uncertified_rate: Option<Spanned<f64>>,
    pub typo_rate: Option<Spanned<f64>>,
    pub manual_rate: Option<Spanned<f64>>,
    pub network_fault_rate: Option<Spanned<f64>>,
}

/// How long people take, as `MIN..MAX` ranges.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTiming {
    pub boot_seconds: Option<Spanned<String>>,
    pub think_seconds: Option<Spanned<String>>,
    pub typing_seconds: Option<Spanned<String>>,
    pub hdmi_fix_minutes: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminGroup {
    pub name: String,
    pub count: Spanned<u32>,
    pub time_zone: Spanned<String>,
    /// `HH:MM-HH:MM`, local time.
    pub working_hours: Spanned<String>,
    /// Default Monday to Friday.
    #[serde(default)]
    pub days: Option<Spanned<Vec<String>>>,
    /// `MIN..MAX` seconds per decision.
    pub decision_seconds: Spanned<String>,
    #[serde(default)]
    pub reject_rate: Option<Spanned<f64>>,
    /// Days off, `YYYY-MM-DD` in the group's time zone: nobody in the group approves on them.
    #[serde(default)]
    pub holidays: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub time_zone: Spanned<String>,
    /// Public holidays at the site, `YYYY-MM-DD`: nobody installs on them (a wave's
    /// installation days skip them as they skip days off).
    #[serde(default)]
    pub holidays: Option<Spanned<Vec<String>>>,
    /// The installers' working days (`mon`..`sun`); Monday to Friday if not given.
    #[serde(default)]
    pub days: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    pub name: String,
    pub site: Spanned<String>,
    pub consoles: Spanned<u64>,
    /// First installation day, `YYYY-MM-DD` at the site.
    pub start_date: Spanned<String>,
    /// Installation days (weekdays from `start_date`).
    #[serde(default = "one")]
    pub days: Spanned<u32>,
    /// When installers arrive, `HH:MM-HH:MM` at the site.
    #[serde(default = "default_installer_hours")]
    pub installer_hours: Spanned<String>,
    /// When the wave's OTPs are generated, at the site: a local date-time (`2026-12-06T17:00`,
    /// one batch for the whole wave) or a time of day (`07:30`, one batch each installation day
    /// for that day's rooms). Default: 17:00 on the day before `start_date`, one batch.
    pub otps_generated_at: Option<Spanned<String>>,
    #[serde(default)]
    pub faults: Faults,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

fn default_installer_hours() -> Spanned<String> {
    Spanned::new(0..0, "08:00-18:00".to_owned())
}

/// A plan checked and turned into times and numbers.
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    pub name: String,
    pub start_ms: i64,
    pub horizon_ms: u64,
    pub poll_interval_s: u32,
    pub validity_hours: u32,
    pub auto_approve: bool,
    /// Preference changes in time order.
    pub changes: Vec<CompiledChange>,
    pub faults: Rates,
    pub timing: Timings,
    pub admins: Vec<CompiledAdmins>,
    pub waves: Vec<CompiledWave>,
    pub reissue: Option<Reissue>,
    /// Warnings about the plan (it runs, but probably not as meant).
    pub warnings: Vec<String>,
    /// The plan as written, for the report.
    pub source: Plan,
}

/// A preference change: when, and what it sets (what it leaves out stays as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledChange {
    /// Milliseconds from the rehearsal's start.
    pub at_ms: u64,
    pub validity_hours: Option<u32>,
    pub auto_approve: Option<bool>,
}

/// Fault rates in force.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub hdmi_missing: Rate,
    pub uncertified: Rate,
    pub typo: Rate,
    pub manual: Rate,
    pub network_fault: Rate,
}

/// Durations in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub boot_ms: MsRange,
    pub think_ms: MsRange,
    pub typing_ms: MsRange,
    pub hdmi_fix_ms: MsRange,
}

#[derive(Debug, Clone)]
pub struct CompiledAdmins {
    pub name: String,
    pub count: u32,
    pub tz: TimeZone,
    pub hours: (Time, Time),
    pub days: Vec<Weekday>,
    /// Dates (in `tz`) the group does not work.
    pub holidays: Vec<Date>,
    pub decision_ms: MsRange,
    pub reject_rate: Rate,
}

#[derive(Debug, Clone)]
pub struct CompiledWave {
    pub name: String,
    pub consoles: u64,
    /// The first console's index in the whole rehearsal.
    pub first_index: u64,
    pub tz: TimeZone,
    /// Installation days (dates at the site).
    pub dates: Vec<Date>,
    pub installer_hours: (Time, Time),
    /// When the OTPs are generated, ms from the start: one time for the whole wave, or one per
    /// installation date (for that date's consoles).
    pub generate_at_ms: Vec<u64>,
    /// The time of day of the wave's daily batches (none when it generates once).
    pub daily_batch: Option<Time>,
    /// When installers work at the site.
    pub calendar: Calendar,
    pub faults: Rates,
}

/// Working days and public holidays at a site (dates at the site).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub days: Vec<Weekday>,
    pub holidays: Vec<Date>,
}

impl Calendar {
    /// Whether installers work on `d`: one of the working days, and not a holiday.
    pub fn works(&self, d: Date) -> bool {
        self.days.contains(&d.weekday()) && !self.holidays.contains(&d)
    }
}

/// Monday to Friday: the working days when a plan names none.
const WEEKDAYS: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];

/// When the admins regenerate a room's OTP after an expiry or a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReissuePolicy {
    /// The next moment an admin is at work; an installer still on site waits for it.
    AtOnce,
    /// With the batch of the installer's return day.
    NextBatch,
}

/// Re-issue and return, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reissue {
    pub policy: ReissuePolicy,
    /// Working days from the failure to the return visit, inclusive.
    pub revisit_days: (u32, u32),
    /// OTPs a room gets at most, the first included.
    pub attempts: u32,
    pub regenerate_ms: MsRange,
}

/// Most consoles one rehearsal runs.
pub const MAX_CONSOLES: u64 = 10_000_000;

/// Memory a rehearsal takes per console, at its peak: the 1,000,000-console office-hours
/// rehearsal peaked at 2.35 GB (docs/performance.md), rounded up.
pub const BYTES_PER_CONSOLE: u64 = 2_400;

/// The same with re-issue on: the 1,000,000-console office-hours rehearsal re-issuing 1.94
/// million OTPs peaked at 3.54 GB, rounded up.
pub const BYTES_PER_CONSOLE_REISSUING: u64 = 3_600;

impl CompiledPlan {
    /// Consoles in all the waves.
    pub fn consoles(&self) -> u64 {
        self.waves.iter().map(|w| w.consoles).sum()
    }

    /// Which wave (its place in `waves`) console `index` belongs to.
    pub fn wave_of(&self, index: u64) -> Option<usize> {
        self.waves.iter().position(|w| w.indexes().contains(&index))
    }

    /// About the most memory the rehearsal takes (see [`BYTES_PER_CONSOLE`]).
    pub fn memory_needed(&self) -> u64 {
        let per_console = match self.reissue {
            Some(_) => BYTES_PER_CONSOLE_REISSUING,
            None => BYTES_PER_CONSOLE,
        };
        self.consoles().saturating_mul(per_console)
    }
}

/// A refusal: the line (1-based, 0 when unknown), the field and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}: {}", self.line, self.field, self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The most a plan file may hold: far above any plan written by hand (the shipped ones are
/// about 2 KB).
const MAX_PLAN_BYTES: u64 = 16 * 1024 * 1024;

/// The plan in the file `path`, compiled; an unreadable file, or every error of the plan with
/// its file, line and field, as one message.
pub fn read(path: &std::path::Path) -> Result<CompiledPlan, String> {
    let file = path.display();
    let text = otpfleet_reports::read_text(path, MAX_PLAN_BYTES)
        .map_err(|e| format!("the plan {file} cannot be read: {e}"))?;
    compile(&text).map_err(|errors| {
        let list: Vec<String> = errors
            .iter()
            .map(|e| match e.line {
                0 => format!("  {file}: {}: {}", e.field, e.message),
                n => format!("  {file}:{n}: {}: {}", e.field, e.message),
            })
            .collect();
        format!(
            "the plan {file} has {} error(s):\n{}",
            errors.len(),
            list.join("\n")
        )
    })
}

/// Reads and checks a plan. Every error names the line and the field.
pub fn compile(text: &str) -> Result<CompiledPlan, Vec<PlanError>> {
    let plan: Plan = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        vec![PlanError {
            line,
            field: key_on_line(text, line),
            message: e.message().to_owned(),
        }]
    })?;
    check(&plan, text)
}

/// Checks a plan given as a value (a plan changed by a sweep): its errors have no lines.
pub fn compile_plan(plan: &Plan) -> Result<CompiledPlan, Vec<PlanError>> {
    check(plan, "")
}

/// Checks `plan`, written as `text` (for the lines of its errors).
fn check(plan: &Plan, text: &str) -> Result<CompiledPlan, Vec<PlanError>> {
    let mut c = Checker {
        text,
        errors: Vec::new(),
    };
    let compiled = c.plan(plan);
    match compiled {
        Some(compiled) if c.errors.is_empty() => Ok(compiled),
        _ => Err(c.errors),
    }
}

/// The key written on a line (`consoles = 5` -> `consoles`), or the table it opens.
fn key_on_line(text: &str, line: usize) -> String {
    let Some(l) = line.checked_sub(1).and_then(|i| text.lines().nth(i)) else {
        return "plan".into();
    };
    let l = l.trim();
    if l.starts_with('[') {
        return l.trim_matches(|c| c == '[' || c == ']').to_owned();
    }
    l.split('=')
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .unwrap_or("plan")
        .to_owned()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

struct Checker<'a> {
    text: &'a str,
    errors: Vec<PlanError>,
}

impl Checker<'_> {
    fn fail<T>(
        &mut self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Option<T> {
        // A plan changed by a sweep has no text: its errors have no lines.
        let line = if span == (0..0) || self.text.is_empty() {
            0
        } else {
            line_of(self.text, span.start)
        };
        self.errors.push(PlanError {
            line,
            field: field.to_owned(),
            message: message.into(),
        });
        None
    }

    fn timestamp(&mut self, v: &Spanned<String>, field: &str) -> Option<i64> {
        match v.get_ref().parse::<Timestamp>() {
            Ok(t) => Some(t.as_millisecond()),
            Err(_) => self.fail(
                v.span(),
                field,
                format!(
                    "{:?} is not a time: write RFC 3339, e.g. 2026-12-07T09:00:00Z",
                    v.get_ref()
                ),
            ),
        }
    }

    fn tz(&mut self, v: &Spanned<String>, field: &str) -> Option<TimeZone> {
        match TimeZone::get(v.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => self.fail(
                v.span(),
                field,
                format!(
                    "{:?} is not a time zone: use an IANA name like Europe/London",
                    v.get_ref()
                ),
            ),
        }
    }

    fn rate(&mut self, v: &Option<Spanned<f64>>, field: &str, default: Rate) -> Rate {
        match v {
            None => default,
            Some(r) => match Rate::new(*r.get_ref()) {
                Ok(rate) => rate,
                Err(_) => self
                    .fail(
                        r.span(),
                        field,
                        format!("{} is not a rate: give a number from 0 to 1", r.get_ref()),
                    )
                    .unwrap_or(default),
            },
        }
    }

    fn range(
        &mut self,
        v: &Option<Spanned<String>>,
        field: &str,
        unit_ms: u64,
        default: MsRange,
    ) -> MsRange {
        let Some(v) = v else { return default };
        let parsed = v.get_ref().split_once("..").and_then(|(a, b)| {
            let ms = |t: &str| t.trim().parse::<u64>().ok()?.checked_mul(unit_ms);
            MsRange::new(ms(a)?, ms(b)?).ok()
        });
        match parsed {
            Some(range) => range,
            None => self
                .fail(
                    v.span(),
                    field,
                    format!(
                        "{:?} is not a range: write MIN..MAX with MIN <= MAX, at most a week, \
                         e.g. 30..90",
                        v.get_ref()
                    ),
                )
                .unwrap_or(default),
        }
    }

    fn faults(&mut self, f: &Faults, prefix: &str, base: Rates) -> Rates {
        Rates {
            hdmi_missing: self.rate(
                &f.hdmi_missing_rate,
                &format!("{prefix}hdmi_missing_rate"),
                base.hdmi_missing,
            ),
            uncertified: self.rate(
                &f.uncertified_rate,
                &format!("{prefix}uncertified_rate"),
                base.uncertified,
            ),
            typo: self.rate(&f.typo_rate, &format!("{prefix}typo_rate"), base.typo),
            manual: self.rate(&f.manual_rate, &format!("{prefix}manual_rate"), base.manual),
            network_fault: self.rate(
                &f.network_fault_rate,
                &format!("{prefix}network_fault_rate"),
                base.network_fault,
            ),
        }
    }

    fn validity(&mut self, v: &Spanned<u32>, field: &str) -> u32 {
        let h = *v.get_ref();
        if (1..=336).contains(&h) {
            h
        } else {
            self.fail(
                v.span(),
                field,
                format!("{h} hours is outside 1 to 336 (two weeks)"),
            )
            .unwrap_or(8)
        }
    }

    fn plan(&mut self, p: &Plan) -> Option<CompiledPlan> {
        let start_ms = self.timestamp(&p.start, "start");
        if !(1..=60).contains(&p.days) {
            self.fail::<()>(
                0..0,
                "days",
                format!("{} days: simulate 1 to 60 days", p.days),
            );
        }
        if !(1..=3600).contains(&p.poll_interval_s) {
            self.fail::<()>(0..0, "poll_interval_s", "give 1 to 3600 seconds");
        }
        let validity_hours = self.validity(
            &p.preferences.otp_validity_hours,
            "preferences.otp_validity_hours",
        );
        let fleet = crate::config::Rates::DEFAULT;
        let defaults = Rates {
            hdmi_missing: fleet.hdmi_missing,
            uncertified: fleet.uncertified,
            typo: fleet.typo,
            manual: fleet.manual,
            network_fault: Rate::ZERO,
        };
        let faults = self.faults(&p.faults, "faults.", defaults);
        let timing = self.timings(&p.timing);
        let start_ms = start_ms?;
        let changes = self.changes(p, start_ms);
        let admins: Vec<_> = (p.admins.iter().enumerate())
            .filter_map(|(i, a)| self.admins(a, i))
            .collect();
        let (waves, first_index) = self.waves(p, start_ms, faults);
        if p.waves.is_empty() {
            self.fail::<()>(0..0, "waves", "a plan needs at least one [[waves]] entry");
        }
        if first_index > MAX_CONSOLES {
            self.fail::<()>(
                0..0,
                "waves",
                format!("{first_index} consoles in all: at most {MAX_CONSOLES}"),
            );
        }
        let ever_auto =
            p.preferences.auto_approve || changes.iter().any(|c| c.auto_approve == Some(true));
        // Counted as written, so a group refused above does not also count as "no admins".
        let admin_count = admins_written(p);
        if admin_count == 0 && !ever_auto {
            self.fail::<()>(0..0, "admins", "no admins and no auto approval: every request would wait until it expires; add [[admins]] or set preferences.auto_approve = true");
        }
        let mut compiled = CompiledPlan {
            name: p.name.clone(),
            start_ms,
            horizon_ms: u64::from(p.days) * 86_400_000,
            poll_interval_s: p.poll_interval_s,
            validity_hours,
            auto_approve: p.preferences.auto_approve,
            changes,
            faults,
            timing,
            admins,
            waves,
            reissue: p.reissue.as_ref().and_then(|r| self.reissue(r)),
            warnings: Vec::new(),
            source: p.clone(),
        };
        compiled.warnings = warnings(&compiled);
        Some(compiled)
    }

    /// The plan's timings, each a range in its unit with its default.
    fn timings(&mut self, t: &PlanTiming) -> Timings {
        Timings {
            boot_ms: self.range(
                &t.boot_seconds,
                "timing.boot_seconds",
                1000,
                MsRange::known(60_000, 180_000),
            ),
            think_ms: self.range(
                &t.think_seconds,
                "timing.think_seconds",
                1000,
                MsRange::known(10_000, 60_000),
            ),
            typing_ms: self.range(
                &t.typing_seconds,
                "timing.typing_seconds",
                1000,
                MsRange::known(20_000, 90_000),
            ),
            hdmi_fix_ms: self.range(
                &t.hdmi_fix_minutes,
                "timing.hdmi_fix_minutes",
                60_000,
                MsRange::known(300_000, 1_800_000),
            ),
        }
    }

    /// The preference changes, in time order, as offsets from the start.
    fn changes(&mut self, p: &Plan, start_ms: i64) -> Vec<CompiledChange> {
        let mut changes = Vec::new();
        for (i, ch) in p.preferences.changes.iter().enumerate() {
            let field = format!("preferences.changes[{i}]");
            let Some(at) = self.timestamp(&ch.at, &format!("{field}.at")) else {
                continue;
            };
            if at < start_ms {
                self.fail::<()>(
                    ch.at.span(),
                    &format!("{field}.at"),
                    "is before the rehearsal's start",
                );
                continue;
            }
            let validity = ch
                .otp_validity_hours
                .as_ref()
                .map(|v| self.validity(v, &format!("{field}.otp_validity_hours")));
            changes.push(CompiledChange {
                at_ms: (at - start_ms) as u64,
                validity_hours: validity,
                auto_approve: ch.auto_approve,
            });
        }
        changes.sort_by_key(|c| c.at_ms);
        changes
    }

    /// The waves, their consoles numbered one after another; answers them and the number of
    /// consoles in all.
    fn waves(&mut self, p: &Plan, start_ms: i64, faults: Rates) -> (Vec<CompiledWave>, u64) {
        let mut waves = Vec::new();
        let mut first_index = 0u64;
        let horizon_ms = i64::from(p.days) * 86_400_000;
        for (i, w) in p.waves.iter().enumerate() {
            let refused = self.errors.len();
            let compiled = self.wave(p, w, i, start_ms, first_index, faults);
            if compiled.is_none() && self.errors.len() == refused {
                // Every refusal names its field; a wave is never dropped in silence.
                self.fail::<()>(
                    w.start_date.span(),
                    &format!("waves[{i}]"),
                    "cannot be compiled",
                );
            }
            if let Some(wave) = compiled {
                // A date the calendar cannot place (a wave in 9999-12-31) ends after any
                // horizon, rather than on the first day.
                let last_day_ms = wave
                    .dates
                    .last()
                    .and_then(|d| d.to_zoned(wave.tz.clone()).ok())
                    .map_or(i64::MAX, |z| z.timestamp().as_millisecond() - start_ms);
                if last_day_ms.saturating_add(86_400_000) > horizon_ms {
                    self.fail::<()>(w.start_date.span(), &format!("waves[{i}].start_date"), format!("the wave's installation days end after the rehearsal's {} days; raise `days` or start the wave earlier", p.days));
                }
                first_index = first_index.saturating_add(wave.consoles);
                waves.push(wave);
            }
        }
        (waves, first_index)
    }

    fn admins(&mut self, a: &AdminGroup, i: usize) -> Option<CompiledAdmins> {
        let field = format!("admins[{i}]");
        let tz = self.tz(&a.time_zone, &format!("{field}.time_zone"));
        let hours = match parse_hours(a.working_hours.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => self.fail(a.working_hours.span(), &format!("{field}.working_hours"), e),
        };
        let days = self.weekdays(&a.days, &format!("{field}.days"));
        if *a.count.get_ref() > 1_000 {
            self.fail::<()>(
                a.count.span(),
                &format!("{field}.count"),
                "at most 1000 admins per group",
            );
        }
        let decision_ms = self.range(
            &Some(a.decision_seconds.clone()),
            &format!("{field}.decision_seconds"),
            1000,
            MsRange::known(30_000, 90_000),
        );
        let reject_rate = self.rate(
            &a.reject_rate,
            &format!("{field}.reject_rate"),
            Rate::known(0.01),
        );
        let holidays = self.holidays(&a.holidays, &format!("{field}.holidays"));
        Some(CompiledAdmins {
            name: a.name.clone(),
            count: *a.count.get_ref(),
            tz: tz?,
            hours: hours?,
            days: days?,
            holidays: holidays?,
            decision_ms,
            reject_rate,
        })
    }

    fn wave(
        &mut self,
        p: &Plan,
        w: &Wave,
        i: usize,
        start_ms: i64,
        first_index: u64,
        base: Rates,
    ) -> Option<CompiledWave> {
        let field = format!("waves[{i}]");
        let site = self.site(p, w, &field)?;
        let tz = self.tz(&site.time_zone, &format!("site {:?}.time_zone", site.name))?;
        let consoles = *w.consoles.get_ref();
        if consoles == 0 {
            self.fail::<()>(
                w.consoles.span(),
                &format!("{field}.consoles"),
                "a wave needs at least one console",
            );
        }
        let start_date: Option<Date> = w.start_date.get_ref().parse().ok();
        let Some(start_date) = start_date else {
            return self.fail(
                w.start_date.span(),
                &format!("{field}.start_date"),
                format!(
                    "{:?} is not a date: write YYYY-MM-DD",
                    w.start_date.get_ref()
                ),
            );
        };
        let days = *w.days.get_ref();
        if !(1..=60).contains(&days) {
            self.fail::<()>(
                w.days.span(),
                &format!("{field}.days"),
                "give 1 to 60 installation days",
            );
        }
        let hours = match parse_hours(w.installer_hours.get_ref()) {
            Ok(h) => h,
            Err(e) => {
                return self.fail(
                    w.installer_hours.span(),
                    &format!("{field}.installer_hours"),
                    e,
                );
            }
        };
        let calendar = self.calendar(site)?;
        let dates = installation_dates(start_date, days, &calendar);
        let generate_at_ms =
            self.generation_times(w, &field, (start_date, &dates), &tz, start_ms)?;
        let faults = self.faults(&w.faults, &format!("{field}.faults."), base);
        Some(CompiledWave {
            name: w.name.clone(),
            consoles,
            first_index,
            tz,
            dates,
            installer_hours: hours,
            generate_at_ms,
            daily_batch: w
                .otps_generated_at
                .as_ref()
                .and_then(|v| time_of_day(v.get_ref())),
            calendar,
            faults,
        })
    }

    /// A site's installers' working days and holidays.
    fn calendar(&mut self, site: &Site) -> Option<Calendar> {
        Some(Calendar {
            days: self.weekdays(&site.days, &format!("site {:?}.days", site.name))?,
            holidays: self.holidays(&site.holidays, &format!("site {:?}.holidays", site.name))?,
        })
    }

    /// Working days written `mon`..`sun` (Monday to Friday when not given).
    fn weekdays(
        &mut self,
        given: &Option<Spanned<Vec<String>>>,
        field: &str,
    ) -> Option<Vec<Weekday>> {
        let Some(d) = given else {
            return Some(WEEKDAYS.to_vec());
        };
        match d
            .get_ref()
            .iter()
            .map(|s| parse_weekday(s))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(days) if !days.is_empty() => Some(days),
            Ok(_) => self.fail(d.span(), field, "name at least one day"),
            Err(e) => self.fail(d.span(), field, e),
        }
    }

    /// The re-issue section: a policy, return days, attempts and time per regeneration.
    fn reissue(&mut self, r: &ReissueSection) -> Option<Reissue> {
        let policy = match r.policy.get_ref().as_str() {
            "at_once" => ReissuePolicy::AtOnce,
            "next_batch" => ReissuePolicy::NextBatch,
            other => {
                return self.fail(
                    r.policy.span(),
                    "reissue.policy",
                    format!("{other:?} is not a policy: write \"at_once\" or \"next_batch\""),
                );
            }
        };
        let day = 86_400_000;
        let days = self.range(
            &r.revisit_days,
            "reissue.revisit_days",
            day,
            MsRange::known(day, 3 * day),
        );
        if days.min_ms() == 0 {
            let span = r.revisit_days.as_ref().map_or(0..0, Spanned::span);
            self.fail::<()>(span, "reissue.revisit_days", "the installer returns 1 working day later at the soonest: write MIN..MAX from 1, e.g. 1..3");
        }
        let attempts = r.attempts.as_ref().map_or(3, |a| *a.get_ref());
        if !(1..=10).contains(&attempts) {
            let span = r.attempts.as_ref().map_or(0..0, Spanned::span);
            self.fail::<()>(span, "reissue.attempts", "give 1 to 10 OTPs per room");
        }
        let regenerate_ms = self.range(
            &r.regenerate_seconds,
            "reissue.regenerate_seconds",
            1000,
            MsRange::known(30_000, 90_000),
        );
        Some(Reissue {
            policy,
            revisit_days: ((days.min_ms() / day) as u32, (days.max_ms() / day) as u32),
            attempts,
            regenerate_ms,
        })
    }

    /// Dates written `YYYY-MM-DD` (none when not given).
    fn holidays(&mut self, given: &Option<Spanned<Vec<String>>>, field: &str) -> Option<Vec<Date>> {
        let Some(list) = given else {
            return Some(Vec::new());
        };
        let mut dates = Vec::new();
        for text in list.get_ref() {
            match text.parse::<Date>() {
                Ok(date) => dates.push(date),
                Err(_) => {
                    return self.fail(
                        list.span(),
                        field,
                        format!("{text:?} is not a date: write YYYY-MM-DD, e.g. \"2026-12-25\""),
                    );
                }
            }
        }
        Some(dates)
    }

    /// The site a wave names.
    fn site<'p>(&mut self, p: &'p Plan, w: &Wave, field: &str) -> Option<&'p Site> {
        let Some(site) = p.sites.iter().find(|s| s.name == *w.site.get_ref()) else {
            let names: Vec<&str> = p.sites.iter().map(|s| s.name.as_str()).collect();
            return self.fail(
                w.site.span(),
                &format!("{field}.site"),
                format!(
                    "no site {:?}; the sites are: {}",
                    w.site.get_ref(),
                    names.join(", ")
                ),
            );
        };
        Some(site)
    }

    /// When a wave's OTPs are generated, as offsets from the rehearsal's start: at one local
    /// date-time, at a time of day on each installation date, or by default at 17:00 the day
    /// before the first.
    fn generation_times(
        &mut self,
        w: &Wave,
        field: &str,
        (start_date, dates): (Date, &[Date]),
        tz: &TimeZone,
        start_ms: i64,
    ) -> Option<Vec<u64>> {
        let generate_local: Vec<DateTime> = match &w.otps_generated_at {
            Some(v) => {
                if let Ok(dt) = v.get_ref().parse::<DateTime>() {
                    vec![dt]
                } else if let Ok(time) = v.get_ref().parse::<Time>() {
                    dates.iter().map(|d| d.to_datetime(time)).collect()
                } else {
                    return self.fail(v.span(), &format!("{field}.otps_generated_at"), format!("{:?} is neither a local date-time (2026-12-06T17:00) nor a time of day (07:30)", v.get_ref()));
                }
            }
            None => start_date
                .yesterday()
                .ok()
                .map(|d| d.at(17, 0, 0, 0))
                .into_iter()
                .collect(),
        };
        let mut generate_at_ms = Vec::new();
        for dt in generate_local {
            let Ok(zoned) = dt.to_zoned(tz.clone()) else {
                return self.fail(
                    w.start_date.span(),
                    &format!("{field}.start_date"),
                    format!(
                        "{dt} cannot be placed in the site's time zone (past the calendar's \
                         end): start the wave within the rehearsal's days"
                    ),
                );
            };
            let ms = zoned.timestamp().as_millisecond();
            if ms < start_ms {
                let span = w
                    .otps_generated_at
                    .as_ref()
                    .map_or(w.start_date.span(), Spanned::span);
                return self.fail(
                    span,
                    &format!("{field}.otps_generated_at"),
                    "the OTPs would be generated before the rehearsal starts; move `start` earlier",
                );
            }
            generate_at_ms.push((ms - start_ms) as u64);
        }
        Some(generate_at_ms)
    }
}

impl CompiledWave {
    /// The indexes of the wave's consoles in the whole rehearsal.
    pub fn indexes(&self) -> std::ops::Range<u64> {
        self.first_index..self.first_index + self.consoles
    }

    /// The installation date (index into `dates`) of the wave's `j`th console.
    pub fn date_of(&self, j: u64) -> usize {
        (j % self.dates.len().max(1) as u64) as usize
    }

    /// The batch (index into `generate_at_ms`) of the wave's `j`th console.
    pub fn batch_of(&self, j: u64) -> usize {
        if self.generate_at_ms.len() == 1 {
            0
        } else {
            self.date_of(j)
        }
    }

    /// When the batch of the wave's `j`th console is generated, ms from the start.
    pub fn batch_time_ms(&self, j: u64) -> u64 {
        self.generate_at_ms
            .get(self.batch_of(j))
            .copied()
            .unwrap_or(0)
    }
}

/// Admins in all the plan's groups, as written (a count past any bound saturates).
fn admins_written(p: &Plan) -> u32 {
    p.admins
        .iter()
        .fold(0u32, |n, a| n.saturating_add(*a.count.get_ref()))
}

/// `text` as a time of day (`07:30`), not a date-time (`2026-12-06T17:00`, which jiff would also
/// read as a time).
pub fn time_of_day(text: &str) -> Option<Time> {
    match text.parse::<DateTime>() {
        Ok(_) => None,
        Err(_) => text.parse().ok(),
    }
}

/// `days` working days from `start` on the site's `calendar`.
fn installation_dates(start: Date, days: u32, calendar: &Calendar) -> Vec<Date> {
    let mut dates = Vec::new();
    let mut d = start;
    while dates.len() < days as usize {
        if calendar.works(d) {
            dates.push(d);
        }
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    dates
}

/// Things that run but probably not as meant: OTPs that expire before the installers who type
/// them can arrive, approvers who never work while installers do.
fn warnings(p: &CompiledPlan) -> Vec<String> {
    let mut out: Vec<String> = p
        .waves
        .iter()
        .filter_map(|w| expires_unused(p, w))
        .collect();
    if p.admins.is_empty() {
        return out;
    }
    for w in &p.waves {
        let overlap = w.dates.iter().any(|date| {
            let (Ok(open), Ok(close)) = (
                date.to_datetime(w.installer_hours.0).to_zoned(w.tz.clone()),
                date.to_datetime(w.installer_hours.1).to_zoned(w.tz.clone()),
            ) else {
                return false;
            };
            // Every quarter hour of the installers' day: is any admin at work?
            let mut t = open.timestamp();
            while t < close.timestamp() {
                if p.admins.iter().any(|a| works_at(a, t)) {
                    return true;
                }
                t = t
                    .checked_add(jiff::SignedDuration::from_mins(15))
                    .unwrap_or(close.timestamp());
            }
            false
        });
        if !overlap {
            out.push(format!(
                "wave {:?}: no admin works while its installers do; every request waits for the next working hours",
                w.name
            ));
        }
    }
    out
}

/// A wave whose OTPs expire before installers can type them: a batch that expires before the
/// first installer's day opens (every OTP of it expires unused), or before the installers' hours
/// of the last day it serves end (installers who come later type expired OTPs).
fn expires_unused(p: &CompiledPlan, w: &CompiledWave) -> Option<String> {
    let start = Timestamp::from_millisecond(p.start_ms).ok()?;
    let at = |ms: u64| {
        start
            .checked_add(jiff::SignedDuration::from_millis(i64::try_from(ms).ok()?))
            .ok()
    };
    let local = |t: Timestamp| {
        t.to_zoned(w.tz.clone())
            .strftime("%a %Y-%m-%d %H:%M")
            .to_string()
    };
    // Each batch with the days whose consoles it serves (one batch for all days, or one per day).
    for (batch, generated_ms) in w.generate_at_ms.iter().enumerate() {
        let days = w.days_of_batch(batch);
        let validity = p.validity_at(*generated_ms);
        let expires = at(generated_ms + u64::from(validity) * 3_600_000)?;
        let opens = |d: &Date| {
            d.to_datetime(w.installer_hours.0)
                .to_zoned(w.tz.clone())
                .ok()
                .map(|z| z.timestamp())
        };
        let closes = |d: &Date| {
            d.to_datetime(w.installer_hours.1)
                .to_zoned(w.tz.clone())
                .ok()
                .map(|z| z.timestamp())
        };
        let (first, last) = (opens(days.first()?)?, closes(days.last()?)?);
        let cause = format!(
            "OTPs generated {} are valid {validity} h and expire {}",
            local(at(*generated_ms)?),
            local(expires)
        );
        if expires <= first {
            return Some(format!(
                "wave {:?}: its {cause}, before its first installer can arrive ({}): every one \
                 of them expires unused; generate them later (otps_generated_at) or make them \
                 valid longer",
                w.name,
                local(first)
            ));
        }
        if expires < last {
            let advice = if days.len() > 1 {
                "or generate a batch per day"
            } else {
                "or generate each day's batch nearer the installers' hours"
            };
            return Some(format!(
                "wave {:?}: its {cause}, before its installers' hours end ({}): installers who \
                 come after the expiry type expired OTPs; make the OTPs valid for the whole \
                 installation time, {advice}",
                w.name,
                local(last)
            ));
        }
    }
    None
}

impl CompiledWave {
    /// The installation days whose consoles batch `batch` serves: every day for one batch, its
    /// own day for a batch per day.
    fn days_of_batch(&self, batch: usize) -> Vec<&Date> {
        if self.generate_at_ms.len() == 1 {
            self.dates.iter().collect()
        } else {
            self.dates.get(batch).into_iter().collect()
        }
    }
}

impl CompiledPlan {
    /// The OTP validity in force `ms` after the start (the last preference change before it).
    fn validity_at(&self, ms: u64) -> u32 {
        self.changes
            .iter()
            .filter(|c| c.at_ms <= ms)
            .filter_map(|c| c.validity_hours)
            .next_back()
            .unwrap_or(self.validity_hours)
    }

    /// Approvers at work `ms` after the rehearsal's start.
    pub fn approvers_at_work(&self, ms: u64) -> u32 {
        let Some(t) = Timestamp::from_millisecond(self.start_ms)
            .ok()
            .and_then(|s| {
                s.checked_add(jiff::SignedDuration::from_millis(i64::try_from(ms).ok()?))
                    .ok()
            })
        else {
            return 0;
        };
        self.admins
            .iter()
            .filter(|a| works_at(a, t))
            .map(|a| a.count)
            .sum()
    }
}

impl CompiledAdmins {
    /// The group's working hours on the clock of a rehearsal that started at `origin`
    /// (`origin_ms` on the wall).
    pub fn schedule(&self, origin_ms: i64, origin: tokio::time::Instant) -> WorkSchedule {
        WorkSchedule {
            tz: self.tz.clone(),
            start: self.hours.0,
            end: self.hours.1,
            days: self.days.clone(),
            holidays: self.holidays.clone(),
            origin_ms,
            origin,
        }
    }
}

fn works_at(a: &CompiledAdmins, t: Timestamp) -> bool {
    let z = t.to_zoned(a.tz.clone());
    a.days.contains(&z.weekday())
        && !a.holidays.contains(&z.date())
        && z.time() >= a.hours.0
        && z.time() < a.hours.1
}
