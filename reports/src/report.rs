//! `report.json`: the schema of a run's results.

use crate::histograms::{Step, StepCounts, Summary, View, summarize};
use crate::intervals::IntervalPoint;
use crate::run_histograms::RunHistograms;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `stopped_because` of a run interrupted from outside (a signal).
pub const INTERRUPTED: &str = "interrupted";

/// How `stopped_because` begins for a run that a breached threshold stopped (goose's
/// `--threshold` stops a load run): the breach is how it ended, not an early stop.
pub const STOPPED_BY_THRESHOLD: &str = "a threshold was breached:";

/// Bumped whenever a field changes meaning or disappears. Version 2: the three views of every
/// request (`latency_us.<step>.response|service|lateness`), `throughput` and `over_time`;
/// `latency_raw_us` is gone.
pub const SCHEMA_VERSION: u32 = 2;

/// A request step's three views (see `View`), microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StepLatency {
    /// From the intended send to the answer: what a console waited.
    pub response: Summary,
    /// From the actual send to the answer: what the server and the network took.
    pub service: Summary,
    /// From the intended send to the actual send: the generator's own delay.
    pub lateness: Summary,
}

impl StepLatency {
    pub fn get(&self, view: View) -> &Summary {
        match view {
            View::Response => &self.response,
            View::Service => &self.service,
            View::Lateness => &self.lateness,
        }
    }
}

/// Per step, the three views of what `histograms` holds; the steps of `Step::ALWAYS` appear even
/// when nothing was measured, so runs line up in a comparison.
pub fn latency_of(histograms: &RunHistograms) -> BTreeMap<String, StepLatency> {
    let mut out: BTreeMap<String, StepLatency> = Step::ALWAYS
        .iter()
        .map(|s| (s.as_str().to_owned(), StepLatency::default()))
        .collect();
    for (step, views) in &histograms.steps {
        out.insert(
            step.clone(),
            StepLatency {
                response: summarize(&views.response),
                service: summarize(&views.service),
                lateness: summarize(&views.lateness),
            },
        );
    }
    out
}

/// A step's requests: counts, rate and errors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepThroughput {
    #[serde(flatten)]
    pub counts: StepCounts,
    /// Real requests per second over the measured period.
    pub rps: f64,
    /// Errors (5xx answers and requests without an answer) per request, 0 to 1.
    pub error_rate: f64,
}

/// Requests per second and errors, per step and in total.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// The period rates are counted over, seconds: the run's length.
    pub measured_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub errors: u64,
    pub error_rate: f64,
    pub steps: BTreeMap<String, StepThroughput>,
}

impl Throughput {
    /// Rates of `counts` over `measured_s` seconds.
    pub fn of(counts: BTreeMap<String, StepCounts>, measured_s: f64) -> Throughput {
        let rate = |n: u64| {
            if measured_s > 0.0 {
                (n as f64 / measured_s * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        let share = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        let steps: BTreeMap<String, StepThroughput> = counts
            .into_iter()
            .filter(|(_, c)| c.requests > 0 || c.synthetic > 0)
            .map(|(step, counts)| {
                let t = StepThroughput {
                    rps: rate(counts.requests),
                    error_rate: share(counts.error_count(), counts.requests),
                    counts,
                };
                (step, t)
            })
            .collect();
        let requests = steps.values().map(|s| s.counts.requests).sum();
        let errors = steps.values().map(|s| s.counts.error_count()).sum();
        Throughput {
            measured_s,
            requests,
            rps: rate(requests),
            errors,
            error_rate: share(errors, requests),
            steps,
        }
    }
}

/// What kind of run produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Fleet,
    Rehearsal,
    Load,
}

/// Arrivals of one interval of a fleet run: how many consoles the schedule meant to start, how
/// many started, how many were dropped, and how late the latest start was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalPoint {
    /// From the run's start.
    pub start_s: f64,
    pub length_s: f64,
    /// Consoles the schedule has arriving in this interval.
    pub intended: u64,
    /// Consoles whose start fell in this interval.
    pub started: u64,
    /// Consoles of this interval's schedule that were dropped (`--max-in-flight`).
    pub dropped: u64,
    /// The most a console of this interval's schedule started after its intended moment, ms:
    /// the launcher's own lateness.
    pub late_ms_max: u64,
}

/// A promise of the contract the server broke.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Violation {
    /// `otp_redeemed_twice`, `credentials_handed_twice`, `signed_in_after_refusal` or
    /// `status_went_back`.
    pub kind: String,
    /// The serials of the consoles involved.
    pub serials: Vec<String>,
    /// What was seen, for a person.
    pub detail: String,
}

/// How a console's first boot ended. Every console ends in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    SignedInOtp,
    SignedInManual,
    Rejected,
    Expired,
    VerificationFailed,
    Abandoned,
    /// Never started: it arrived when the run already had its most consoles in flight (k6's
    /// dropped iterations), so it was not sent late instead.
    Dropped,
    /// Never started: the run stopped (interrupted, a time limit, a broken threshold) before
    /// the console was due, or its OTP was never generated. Apart from `abandoned`, which
    /// counts consoles that started and did not finish.
    NotStarted,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::SignedInOtp,
        Outcome::SignedInManual,
        Outcome::Rejected,
        Outcome::Expired,
        Outcome::VerificationFailed,
        Outcome::Abandoned,
        Outcome::Dropped,
        Outcome::NotStarted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::SignedInOtp => "signed_in_otp",
            Outcome::SignedInManual => "signed_in_manual",
            Outcome::Rejected => "rejected",
            Outcome::Expired => "expired",
            Outcome::VerificationFailed => "verification_failed",
            Outcome::Abandoned => "abandoned",
            Outcome::Dropped => "dropped",
            Outcome::NotStarted => "not_started",
        }
    }

    /// The outcome as an IT manager reads it, beside its code in reports.
    pub fn in_words(self) -> &'static str {
        match self {
            Outcome::SignedInOtp => "signed in with its OTP",
            Outcome::SignedInManual => "signed in by manual setup",
            Outcome::Rejected => "rejected by an admin",
            Outcome::Expired => "OTP expired",
            Outcome::VerificationFailed => "failed device verification (uncertified)",
            Outcome::Abandoned => "gave up (errors, or the run ended first)",
            Outcome::Dropped => "never started (too many in flight)",
            Outcome::NotStarted => "never started (the run ended first)",
        }
    }
}

/// Counts of each outcome; always sums to the console count of a complete run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outcomes {
    pub signed_in_otp: u64,
    pub signed_in_manual: u64,
    pub rejected: u64,
    pub expired: u64,
    pub verification_failed: u64,
    pub abandoned: u64,
    /// Absent in reports written before arrival schedules: none were dropped then.
    #[serde(default)]
    pub dropped: u64,
    /// Absent in reports written before it was counted apart (they called these `abandoned`).
    #[serde(default)]
    pub not_started: u64,
}

impl Outcomes {
    pub fn add(&mut self, outcome: Outcome) {
        *self.get_mut(outcome) += 1;
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::SignedInOtp => self.signed_in_otp,
            Outcome::SignedInManual => self.signed_in_manual,
            Outcome::Rejected => self.rejected,
            Outcome::Expired => self.expired,
            Outcome::VerificationFailed => self.verification_failed,
            Outcome::Abandoned => self.abandoned,
            Outcome::Dropped => self.dropped,
            Outcome::NotStarted => self.not_started,
        }
    }

    fn get_mut(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::SignedInOtp => &mut self.signed_in_otp,
            Outcome::SignedInManual => &mut self.signed_in_manual,
            Outcome::Rejected => &mut self.rejected,
            Outcome::Expired => &mut self.expired,
            Outcome::VerificationFailed => &mut self.verification_failed,
            Outcome::Abandoned => &mut self.abandoned,
            Outcome::Dropped => &mut self.dropped,
            Outcome::NotStarted => &mut self.not_started,
        }
    }

    pub fn total(&self) -> u64 {
        Outcome::ALL.iter().map(|o| self.get(*o)).sum()
    }
}

/// The faults consoles met, counted per occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Consoles whose first verification failed because the HDMI ingest module was missing.
    pub hdmi_ingest_missing: u64,
    /// Of those, consoles that verified after the installer connected it and restarted.
    pub hdmi_recovered: u64,
    /// Consoles that are not in the certified catalogue (stuck).
    pub uncertified: u64,
    /// Mistyped OTPs (each one refused and retyped).
    pub otp_typos: u64,
    /// Consoles set up manually (email and password).
    pub manual_setup: u64,
    /// Late installers: consoles whose installer typed the OTP after it expired (the same count
    /// as a rehearsal's `expired_installer_late` and the `late` column of consoles.csv).
    pub late_installers: u64,
    /// Injected network faults (each one retried with backoff).
    pub network_faults: u64,
    /// `slow_down` answers to polls.
    pub slow_downs: u64,
}

impl Faults {
    /// Every counter with its `report.json` name, in schema order (for tables and charts).
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("hdmi_ingest_missing", self.hdmi_ingest_missing),
            ("hdmi_recovered", self.hdmi_recovered),
            ("uncertified", self.uncertified),
            ("otp_typos", self.otp_typos),
            ("manual_setup", self.manual_setup),
            ("late_installers", self.late_installers),
            ("network_faults", self.network_faults),
            ("slow_downs", self.slow_downs),
        ]
    }
}

/// Seconds from a console's arrival to its sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TimeToSignedIn {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Values longer than the histograms hold (366 days), counted and left out of the others.
    #[serde(default, skip_serializing_if = "crate::histograms::is_zero")]
    pub over_range: u64,
}

impl TimeToSignedIn {
    /// From a summary in microseconds.
    pub fn from_us(s: &Summary) -> TimeToSignedIn {
        let secs = |us: u64| (us as f64 / 1e6 * 1000.0).round() / 1000.0;
        TimeToSignedIn {
            count: s.count,
            p50: secs(s.p50),
            p90: secs(s.p90),
            p99: secs(s.p99),
            max: secs(s.max),
            over_range: 0,
        }
    }
}

/// One part of a fleet split over processes: this one ran consoles with `index % count == index`
/// and the admins its role says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// What the process ran (reports written before roles ran both).
    #[serde(default)]
    pub role: Role,
}

impl ShardInfo {
    /// The whole of a run in one process.
    pub const WHOLE: ShardInfo = ShardInfo {
        index: 0,
        count: 1,
        role: Role::All,
    };
}

/// What one process of a fleet runs: its shard's consoles and the admins (`all`, one process or
/// shards that each bring their own admins), only its shard's consoles (`consoles`), or only the
/// admins, one process working the approval queue for every console shard (`admins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    All,
    Consoles,
    Admins,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Consoles => "consoles",
            Role::Admins => "admins",
        }
    }

    /// Whether the process runs consoles.
    pub fn runs_consoles(self) -> bool {
        self != Role::Admins
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Role::All),
            "consoles" => Ok(Role::Consoles),
            "admins" => Ok(Role::Admins),
            _ => Err(format!(
                "{s:?} is not a role: write all, consoles or admins"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub kind: RunKind,
    pub otpfleet_version: String,
    /// The one seed of the run: every console's choices derive from it.
    pub seed: u64,
    /// Consoles this run drove (its shard's share).
    pub consoles: u64,
    pub shard: ShardInfo,
    /// What was measured: `in-process reference server` or the target URL.
    pub target: String,
    /// False when the run stopped early (see `stopped_because`); counts cover what was measured.
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
    pub outcomes: Outcomes,
    pub faults: Faults,
    /// Answers a console did not expect, and transport failures, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Promises of the contract the server broke, as the consoles saw them: an OTP redeemed by
    /// two consoles, credentials handed out twice, a sign-in after a refusal, a status that went
    /// back. Empty (and absent) for a server that keeps them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// Every `--threshold` of the run judged, on each step it applies to (none without one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Verdict>,
    /// A fleet's arrivals over time: intended by the schedule vs started (absent for other
    /// runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arrivals: Vec<ArrivalPoint>,
    /// Per request step, in microseconds, the three views: response, service and lateness
    /// (see the README). Empty for rehearsals: their requests take no time.
    pub latency_us: BTreeMap<String, StepLatency>,
    /// Requests per second and errors, per step and in total (empty for rehearsals).
    pub throughput: Throughput,
    /// Per interval of the run: requests per second and response and service p50/p99 per step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_time: Vec<IntervalPoint>,
    pub time_to_signed_in_s: TimeToSignedIn,
    /// Wall time of the run, in seconds (simulated time for rehearsals).
    pub duration_s: f64,
    /// The settings of the run, as given.
    pub config: Settings,
    /// Rehearsals: consoles in each state at the end of every simulated hour.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    /// Rehearsals: the answers to the rollout's questions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<RehearsalFindings>,
    /// Merged runs (`otpfleet report merge`): the shard runs this report adds up, by shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedFrom>,
    /// Where, when and how the run was made. Filled in by the command line at its edges (the
    /// wall clock read at the start and at the end, never inside a run): a rehearsal's report is
    /// the same for the same plan and seed but for this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RunMeta>,
}

/// The settings of a run as given, in `report.json`'s `config`: written from the run's typed
/// settings and read back typed by the one that knows their type (`otpfleet_run::RunConfig`),
/// never queried by key. This crate sits below the crates that define them, so it holds them
/// as they are written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Settings(pub(crate) serde_json::Value);

impl Settings {
    /// `settings` as they are written into report.json (objects' keys in order).
    pub fn of<T: Serialize>(settings: &T) -> Settings {
        Settings(serde_json::to_value(settings).unwrap_or_default())
    }

    /// The settings read back as a `T`.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(&self.0).map_err(|e| format!("the run's settings (config): {e}"))
    }
}

/// What a run is: its kind, seed, shard, target and settings (`RunReport::new`).
#[derive(Debug, Clone)]
pub struct RunOf {
    pub kind: RunKind,
    pub seed: u64,
    pub shard: ShardInfo,
    /// What was measured: `in-process reference server` or the target URL.
    pub target: String,
    pub config: Settings,
}

/// What a run measured, from which its report is derived (`RunReport::new`).
#[derive(Debug, Default)]
pub struct Measured {
    pub consoles: u64,
    /// Why the run stopped early, if it did (`INTERRUPTED` for a signal).
    pub stopped_because: Option<String>,
    pub outcomes: Outcomes,
    pub faults: Faults,
    pub errors: BTreeMap<String, u64>,
    pub violations: Vec<Violation>,
    pub arrivals: Vec<ArrivalPoint>,
    /// Every step's three views and the flows (time to signed in).
    pub histograms: RunHistograms,
    /// Every step's requests.
    pub counts: BTreeMap<String, StepCounts>,
    /// The period rates are counted over, seconds.
    pub measured_s: f64,
    pub over_time: Vec<IntervalPoint>,
    /// Consoles whose time to signed in was past the histograms' range.
    pub signed_in_over_range: u64,
    /// The run's length, seconds (simulated time for rehearsals).
    pub duration_s: f64,
}

impl RunReport {
    /// The one way a report is made: latency, throughput and time to signed in derived from
    /// what was measured. A rehearsal's requests take no time (the in-process server in
    /// simulated time): it reports no latency, no rates and no points over time.
    pub fn new(run: RunOf, m: Measured) -> RunReport {
        let (latency_us, throughput, over_time) = if run.kind == RunKind::Rehearsal {
            Default::default()
        } else {
            (
                latency_of(&m.histograms),
                Throughput::of(m.counts, m.measured_s),
                m.over_time,
            )
        };
        let signed_in = m
            .histograms
            .time_to_signed_in()
            .map(|h| TimeToSignedIn::from_us(&summarize(h)))
            .unwrap_or_default();
        RunReport {
            schema_version: SCHEMA_VERSION,
            kind: run.kind,
            otpfleet_version: env!("CARGO_PKG_VERSION").to_owned(),
            seed: run.seed,
            consoles: m.consoles,
            shard: run.shard,
            target: run.target,
            complete: m.stopped_because.is_none(),
            stopped_because: m.stopped_because,
            outcomes: m.outcomes,
            faults: m.faults,
            errors: m.errors,
            violations: m.violations,
            thresholds: Vec::new(),
            arrivals: m.arrivals,
            latency_us,
            throughput,
            over_time,
            time_to_signed_in_s: TimeToSignedIn {
                over_range: m.signed_in_over_range,
                ..signed_in
            },
            duration_s: m.duration_s,
            config: run.config,
            timeline: Vec::new(),
            rehearsal: None,
            merged_from: Vec::new(),
            meta: None,
        }
    }
}

/// One threshold judged on one step (or the run): what `--threshold` said, in the report so a
/// verdict can be read and shared after the terminal is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The threshold as written, e.g. `redeem.service.p99<5ms`.
    pub threshold: String,
    /// What was judged, e.g. `redeem.service.p99`.
    pub name: String,
    /// In the metric's unit; `None` when there was nothing to judge.
    pub observed: Option<f64>,
    /// `µs`, `req/s`, `%` or `s` (`ms` for a load run's goose rules).
    pub unit: String,
    pub passed: bool,
}

impl Verdict {
    /// What was measured, with its unit (`5,120 µs`, `0.125 %`), or `no samples`.
    pub fn measured(&self) -> String {
        match self.observed {
            Some(v) if v.fract() == 0.0 || v.abs() >= 100.0 => format!("{v:.0} {}", self.unit),
            Some(v) => format!("{v:.3} {}", self.unit),
            None => "no samples".to_owned(),
        }
    }

    /// `ok` or `BREACHED`.
    pub fn mark(&self) -> &'static str {
        if self.passed { "ok" } else { "BREACHED" }
    }
}

/// Where, when and how a run was made, so a figure can say what it was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// When the run started and ended, RFC 3339 in UTC.
    pub started_at: String,
    pub ended_at: String,
    /// The machine it ran on.
    pub host: String,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// The git commit otpfleet was built from (`unknown` outside a git checkout).
    pub git_commit: String,
    /// `load`: goose's options as the attack ran with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goose_options: Option<serde_json::Value>,
    /// How busy the machine was with other work while the run ran (absent where the operating
    /// system does not say, and in reports written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineLoad>,
}

/// The machine a run ran on, and how much of it other processes took during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    pub cpus: u32,
    /// Other processes' share of the machine's CPU time over the run, percent (the busy time in
    /// `/proc/stat` less this process's own): a server under test on the same machine counts
    /// here too.
    pub others_cpu_pct: f64,
}

/// One shard run that a merged report adds up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedFrom {
    /// The shard's run folder, as given to `otpfleet report merge`.
    pub dir: String,
    pub seed: u64,
    pub shard: ShardInfo,
}

/// The state of a rehearsed rollout at the end of one simulated hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Hours since the rehearsal's start.
    pub hour: u32,
    /// The end of that hour, RFC 3339 UTC.
    pub at: String,
    /// Consoles signed in so far (by OTP or manually).
    pub signed_in: u64,
    /// Requests waiting for an admin at that moment (the approval queue depth).
    pub awaiting_approval: u64,
    /// OTPs or requests expired so far.
    pub expired: u64,
    /// Consoles verifying at that moment (booting, failed verification awaiting the installer).
    pub in_verification: u64,
    /// Approvers at work in the middle of that hour (by the plan's working hours and days).
    #[serde(default)]
    pub approvers_at_work: u32,
}

/// What a rehearsal found out.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RehearsalFindings {
    /// The rollout manager's answers, in words, first: when the last room (and 95% of them)
    /// signed in, second visits, OTPs generated, admin hours, the approval queue's peak, and the
    /// rooms that did not sign in and why.
    #[serde(default)]
    pub headline: Vec<String>,
    /// OTPs (every visit's) that expired while the request waited for approval.
    pub expired_awaiting_approval: u64,
    /// OTPs (every visit's) that had expired when the installer typed them.
    pub expired_installer_late: u64,
    /// Expired OTPs over OTPs generated.
    pub expired_share: f64,
    /// Rooms whose installer came more than once.
    #[serde(default)]
    pub second_visits: u64,
    /// OTPs generated in all, re-issues included.
    #[serde(default)]
    pub otps_generated: u64,
    /// Admin hours spent on approvals, rejections and regenerations, at the plan's times per
    /// action.
    #[serde(default)]
    pub admin_hours: f64,
    /// Of `admin_hours`, those spent regenerating OTPs.
    #[serde(default)]
    pub regeneration_hours: f64,
    /// Rooms that did not sign in, by why, in words.
    #[serde(default)]
    pub not_signed_in: BTreeMap<String, u64>,
    pub queue_depth_peak: u64,
    pub queue_depth_peak_at: String,
    /// The queue's peak in the first approvers' local time, as a person reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth_peak_local: Option<String>,
    /// Seconds from redemption to the admin's decision.
    pub wait_for_approval_s: TimeToSignedIn,
    /// Consoles that never passed verification (uncertified, or HDMI never fixed).
    pub stuck_in_verification: u64,
    /// When the last room signed in, RFC 3339 in its site's local time (none if no room did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_signed_in_at: Option<String>,
    /// When 95% of all the rooms had signed in, in the local time of the site of the room that
    /// made it 95% (none if fewer ever did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in_95_at: Option<String>,
    pub waves: Vec<WaveResult>,
    /// Plain-language findings, most important first.
    pub findings: Vec<String>,
    /// A setting that would have helped, found by re-running the plan with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// One wave of a rehearsed rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveResult {
    pub name: String,
    pub consoles: u64,
    pub outcomes: Outcomes,
    pub time_to_signed_in_s: TimeToSignedIn,
    /// The wave's OTPs (every visit's) that expired awaiting approval, and that had expired
    /// when the installer typed them: split as the findings split them.
    #[serde(default)]
    pub expired_awaiting_approval: u64,
    #[serde(default)]
    pub expired_installer_late: u64,
    /// The wave's rooms whose installer came more than once.
    #[serde(default)]
    pub second_visits: u64,
    /// When the wave's last room signed in, RFC 3339 in the site's local time (none if none
    /// did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_signed_in_at: Option<String>,
}

/// Fewer requests than this make a percentile too shaky to judge or to headline.
pub const MIN_SAMPLES: u64 = 100;

/// A step whose response times were mostly the generator's own lateness.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorNote {
    pub step: String,
    pub lateness_p50_us: u64,
    pub service_p50_us: u64,
    pub response_p50_us: u64,
}

impl std::fmt::Display for GeneratorNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let share = self.lateness_p50_us as f64 * 100.0 / self.response_p50_us.max(1) as f64;
        write!(
            f,
            "the generator, not the server, dominated the response times: {} waited {} µs on \
             the generator (lateness p50) for {} µs of service (p50), {share:.0}% of its median \
             response time; read the service view for the server",
            self.step, self.lateness_p50_us, self.service_p50_us
        )
    }
}

impl RunReport {
    /// The rule (README, "The three views"): among steps with at least `MIN_SAMPLES` requests,
    /// the one whose median lateness is the largest share of its median response time, when
    /// that lateness is at least its median service time (the generator's delay is half or more
    /// of what a typical request waited).
    pub fn generator_dominated(&self) -> Option<GeneratorNote> {
        self.latency_us
            .iter()
            .filter(|(_, l)| l.service.count >= MIN_SAMPLES && l.lateness.count > 0)
            .filter(|(_, l)| l.lateness.p50 >= l.service.p50)
            .max_by(|(_, a), (_, b)| {
                let share = |l: &StepLatency| l.lateness.p50 as f64 / l.response.p50.max(1) as f64;
                share(a).total_cmp(&share(b))
            })
            .map(|(step, l)| GeneratorNote {
                step: step.clone(),
                lateness_p50_us: l.lateness.p50,
                service_p50_us: l.service.p50,
                response_p50_us: l.response.p50,
            })
    }
}
