//! A rehearsal's answers: expiries by cause, the approval queue, waits, waves, and findings in
//! plain language.

use super::plan::{CompiledPlan, CompiledWave};
use super::reissue::Expiries;
use crate::api::Requester;
use crate::console::ConsoleRecord;
use otpfleet_reports::{
    Flow, Outcome, Outcomes, RehearsalFindings, TimeToSignedIn, TimelinePoint, WaveResult,
    summarize,
};
use otpfleet_server::clock::rfc3339;
use tokio::time::Instant;

/// What a rehearsal saw: every room's final record, its waves' expiries over every visit, its
/// timeline, and when simulated time started.
pub struct Seen<'a> {
    pub records: &'a [ConsoleRecord],
    pub expiries: &'a [Expiries],
    pub timeline: &'a [TimelinePoint],
    pub origin: Instant,
}

pub fn findings(plan: &CompiledPlan, requester: &Requester, seen: &Seen) -> RehearsalFindings {
    let records = seen.records;
    let expired_awaiting_approval = seen.expiries.iter().map(|e| e.awaiting_approval).sum();
    let expired_installer_late = seen.expiries.iter().map(|e| e.installer_late).sum::<u64>();
    let otps_generated: u64 = records.iter().map(|r| u64::from(r.otps)).sum();
    let expired_share = round4(
        (expired_awaiting_approval + expired_installer_late) as f64 / otps_generated.max(1) as f64,
    );
    let (peak, peak_when) = requester.tally.queue_peak();
    let peak_ms = peak_when.map_or(0, |t| {
        u64::try_from(t.saturating_duration_since(seen.origin).as_millis()).unwrap_or(0)
    });
    let (decision_ms, regeneration_ms) = requester.tally.admin_ms();
    let done = completion(plan, records);
    let mut f = RehearsalFindings {
        headline: Vec::new(),
        expired_awaiting_approval,
        expired_installer_late,
        expired_share,
        second_visits: records.iter().filter(|r| r.visits > 1).count() as u64,
        otps_generated,
        admin_hours: round4((decision_ms + regeneration_ms) as f64 / 3_600_000.0),
        regeneration_hours: round4(regeneration_ms as f64 / 3_600_000.0),
        not_signed_in: not_signed_in(records),
        queue_depth_peak: peak,
        queue_depth_peak_at: rfc3339(u64::try_from(plan.start_ms).unwrap_or(0) + peak_ms),
        queue_depth_peak_local: plan.admins.first().map(|a| in_words(plan, peak_ms, &a.tz)),
        wait_for_approval_s: TimeToSignedIn::from_us(&summarize(
            &requester.recorder.flow_histogram(Flow::WaitForApproval),
        )),
        stuck_in_verification: records
            .iter()
            .filter(|r| r.outcome == Outcome::VerificationFailed)
            .count() as u64,
        last_signed_in_at: done.last.map(|(ms, w)| local(plan, ms, w).0),
        signed_in_95_at: done.p95.map(|(ms, w)| local(plan, ms, w).0),
        waves: (plan.waves.iter().zip(seen.expiries))
            .map(|(w, e)| wave_result(plan, w, records, *e))
            .collect(),
        findings: Vec::new(),
        suggestion: None,
    };
    f.headline = headline(plan, &f, &done, records.len() as u64);
    f.findings = sentences(plan, &f, records.len() as u64, seen.timeline);
    f
}

/// The rooms that did not sign in, by why.
fn not_signed_in(records: &[ConsoleRecord]) -> std::collections::BTreeMap<String, u64> {
    let mut why = std::collections::BTreeMap::new();
    for r in records.iter().filter(|r| signed_in_ms(r).is_none()) {
        let because = r
            .ended_because
            .clone()
            .unwrap_or_else(|| r.outcome.as_str().to_owned());
        *why.entry(because).or_insert(0) += 1;
    }
    why
}

/// The rollout manager's answers, in words, in the order they ask them.
fn headline(
    plan: &CompiledPlan,
    f: &RehearsalFindings,
    done: &Completion,
    rooms: u64,
) -> Vec<String> {
    let share = |n: u64| n as f64 * 100.0 / rooms.max(1) as f64;
    let reissued = f.otps_generated.saturating_sub(rooms);
    let mut out = vec![
        done.sentence(plan, rooms),
        format!(
            "Second visits: {} of {rooms} rooms ({:.1}%) needed their installer to come back.",
            f.second_visits,
            share(f.second_visits)
        ),
        format!(
            "OTPs generated: {} ({rooms} first OTPs and {reissued} re-issued).",
            f.otps_generated
        ),
        format!(
            "Admin time: {:.1} hours ({:.1} h approving and rejecting, {:.1} h regenerating OTPs).",
            f.admin_hours,
            f.admin_hours - f.regeneration_hours,
            f.regeneration_hours
        ),
    ];
    match &f.queue_depth_peak_local {
        Some(at) if f.queue_depth_peak > 0 => out.push(format!(
            "The approval queue peaked at {} requests, {at} (the approvers' time).",
            f.queue_depth_peak
        )),
        _ => {}
    }
    let missing: u64 = f.not_signed_in.values().sum();
    if missing > 0 {
        let mut why: Vec<(&String, &u64)> = f.not_signed_in.iter().collect();
        why.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let why: Vec<String> = why.iter().map(|(w, n)| format!("{n} {w}")).collect();
        let rooms_word = if missing == 1 { "room" } else { "rooms" };
        out.push(format!(
            "Not signed in: {missing} {rooms_word} ({:.1}%): {}.",
            share(missing),
            why.join("; ")
        ));
    }
    out
}

/// When rooms signed in: the last one, and the one that made 95% of all the rooms (each with
/// its wave, whose site's clock tells the time).
struct Completion<'p> {
    last: Option<(u64, &'p CompiledWave)>,
    p95: Option<(u64, &'p CompiledWave)>,
    signed_in: u64,
}

/// The sign-in moments (ms from the start) of every room that signed in, in order.
fn completion<'p>(plan: &'p CompiledPlan, records: &[ConsoleRecord]) -> Completion<'p> {
    let mut signed: Vec<(u64, &CompiledWave)> = plan
        .waves
        .iter()
        .flat_map(|w| of_wave(w, records).filter_map(move |r| Some((signed_in_ms(r)?, w))))
        .collect();
    signed.sort_by_key(|(ms, w)| (*ms, w.first_index));
    let needed = (records.len() as u64 * 95).div_ceil(100).max(1);
    Completion {
        last: signed.last().copied(),
        p95: usize::try_from(needed - 1)
            .ok()
            .and_then(|i| signed.get(i))
            .copied(),
        signed_in: signed.len() as u64,
    }
}

impl Completion<'_> {
    /// The rollout manager's first answer, in words.
    fn sentence(&self, plan: &CompiledPlan, rooms: u64) -> String {
        let Some((ms, w)) = self.last else {
            return "No room signed in.".to_owned();
        };
        let ninety_five = match self.p95 {
            Some((at, w95)) => {
                format!("95% of the {rooms} rooms had by {}", local(plan, at, w95).1)
            }
            // Rounded down: 94.96% is not 95%.
            None => format!(
                "95% of the rooms never did: {} of {rooms} ({:.1}%) signed in",
                self.signed_in,
                (self.signed_in as f64 * 1000.0 / rooms.max(1) as f64).floor() / 10.0
            ),
        };
        format!(
            "The last room signed in {} (wave {:?}); {ninety_five}.",
            local(plan, ms, w).1,
            w.name
        )
    }
}

/// When a console signed in, ms from the start (none if it did not).
fn signed_in_ms(r: &ConsoleRecord) -> Option<u64> {
    matches!(r.outcome, Outcome::SignedInOtp | Outcome::SignedInManual)
        .then_some(r.arrival_ms + r.time_to_signed_in_ms?)
}

/// `ms` from the plan's start at wave `w`'s site: RFC 3339 with its offset, and as a person
/// reads it (`Thu 2026-12-24 17:05 PST`).
fn local(plan: &CompiledPlan, ms: u64, w: &CompiledWave) -> (String, String) {
    zoned(plan, ms, &w.tz)
}

/// `ms` from the plan's start in `tz`, as a person reads it.
fn in_words(plan: &CompiledPlan, ms: u64, tz: &jiff::tz::TimeZone) -> String {
    zoned(plan, ms, tz).1
}

fn zoned(plan: &CompiledPlan, ms: u64, tz: &jiff::tz::TimeZone) -> (String, String) {
    let at = i64::try_from(ms)
        .ok()
        .and_then(|ms| plan.start_ms.checked_add(ms));
    match at.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(t) => {
            let z = t.to_zoned(tz.clone());
            (
                z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                z.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            )
        }
        // Past jiff's range: the moment in UTC, as the queue peak's is written.
        None => {
            let utc = rfc3339(u64::try_from(plan.start_ms).unwrap_or(0).saturating_add(ms));
            (utc.clone(), utc)
        }
    }
}

/// The records of wave `w`'s consoles.
fn of_wave<'r>(
    w: &CompiledWave,
    records: &'r [ConsoleRecord],
) -> impl Iterator<Item = &'r ConsoleRecord> {
    let indexes = w.indexes();
    records.iter().filter(move |r| indexes.contains(&r.index))
}

/// One wave's consoles, outcomes, expiries, second visits, times to sign-in and last sign-in.
fn wave_result(
    plan: &CompiledPlan,
    w: &CompiledWave,
    records: &[ConsoleRecord],
    expiries: Expiries,
) -> WaveResult {
    let mut outcomes = Outcomes::default();
    let mut times = Vec::new();
    let mut consoles = 0;
    let mut second_visits = 0;
    let mut last = None;
    for r in of_wave(w, records) {
        consoles += 1;
        second_visits += u64::from(r.visits > 1);
        outcomes.add(r.outcome);
        times.extend(r.time_to_signed_in_ms);
        last = last.max(signed_in_ms(r));
    }
    times.sort_unstable();
    WaveResult {
        name: w.name.clone(),
        consoles,
        outcomes,
        time_to_signed_in_s: quantiles_s(&times),
        expired_awaiting_approval: expiries.awaiting_approval,
        expired_installer_late: expiries.installer_late,
        second_visits,
        last_signed_in_at: last.map(|ms| local(plan, ms, w).0),
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Percentiles of sorted milliseconds, in seconds.
fn quantiles_s(sorted_ms: &[u64]) -> TimeToSignedIn {
    let at = |q: f64| {
        if sorted_ms.is_empty() {
            return 0.0;
        }
        let i = ((sorted_ms.len() as f64 * q).ceil() as usize).clamp(1, sorted_ms.len()) - 1;
        sorted_ms[i] as f64 / 1000.0
    };
    TimeToSignedIn {
        count: sorted_ms.len() as u64,
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
        over_range: 0,
    }
}

fn hours(seconds: f64) -> String {
    if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

fn sentences(
    plan: &CompiledPlan,
    f: &RehearsalFindings,
    consoles: u64,
    timeline: &[TimelinePoint],
) -> Vec<String> {
    let mut out = Vec::new();
    let expired = f.expired_awaiting_approval + f.expired_installer_late;
    out.push(format!(
        "{expired} OTPs expired of {} generated for {consoles} rooms ({:.1}%): {} while the request waited for approval, {} late installers (the installer typed the OTP after it expired).",
        f.otps_generated,
        f.expired_share * 100.0,
        f.expired_awaiting_approval,
        f.expired_installer_late
    ));
    let wait = &f.wait_for_approval_s;
    let waited = if wait.count == 0 {
        "no request was approved".to_owned()
    } else {
        format!(
            "wait for approval p50 {}, p99 {}",
            hours(wait.p50),
            hours(wait.p99)
        )
    };
    if f.queue_depth_peak > 0 {
        out.push(format!(
            "The approval queue peaked at {} requests ({}); {waited}.",
            f.queue_depth_peak, f.queue_depth_peak_at,
        ));
    } else if plan.auto_approve {
        out.push("Auto approval was on: no request waited for an admin.".into());
    }
    out.extend(f.waves.iter().map(wave_sentence));
    if f.stuck_in_verification > 0 {
        out.push(format!(
            "{} consoles are stuck in verification (not certified): their installers must contact the manufacturer.",
            f.stuck_in_verification
        ));
    }
    if let Some(last) = timeline.last() {
        if last.awaiting_approval > 0 {
            out.push(format!(
                "{} requests were still waiting for approval at the end.",
                last.awaiting_approval
            ));
        }
    }
    out.extend(plan.warnings.iter().cloned());
    out
}

/// What happened to one wave, in a sentence.
fn wave_sentence(w: &WaveResult) -> String {
    let late = w.expired_installer_late;
    let signed = w.outcomes.signed_in_otp + w.outcomes.signed_in_manual;
    let times = if w.time_to_signed_in_s.count == 0 {
        "no console signed in".to_owned()
    } else {
        format!(
            "time to sign-in p50 {}, p99 {}",
            hours(w.time_to_signed_in_s.p50),
            hours(w.time_to_signed_in_s.p99)
        )
    };
    let late = if late > 0 {
        format!("; {late} late installers typed an OTP that had expired")
    } else {
        String::new()
    };
    format!(
        "Wave {:?}: {signed} of {} consoles signed in; {times}{late}.",
        w.name, w.consoles,
    )
}

/// The suggestion from re-running with longer validities.
pub fn suggestion(validity_hours: u32, share: f64, found: Option<(u32, f64, u64)>) -> String {
    match found {
        Some((hours, other, n)) => format!(
            "OTPs valid {hours} hours would have kept expiries at {:.1}% ({n} OTPs) instead of {:.1}% with {validity_hours} hours (found by re-running the plan with the same seed).",
            other * 100.0,
            share * 100.0
        ),
        None => format!(
            "Even OTPs valid 336 hours (the maximum) leave more than 1% expired ({:.1}% with {validity_hours} hours): add approvers, align their hours with the installers', or turn on auto approval.",
            share * 100.0
        ),
    }
}
