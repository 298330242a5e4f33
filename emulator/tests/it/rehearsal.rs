//! Rehearsals: deterministic, answer the rollout's question, and refuse bad plans clearly.

use otpfleet_emulator::rehearsal::plan::compile;
use otpfleet_emulator::rehearsal::{Watch, rehearse, rehearse_once, rehearse_until};

fn shipped(name: &str) -> String {
    let path = format!(
        "{}/../scenarios/rollouts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const SMALL: &str = r#"
name = "small"
start = "2026-12-07T00:00:00Z"
days = 5

[preferences]
otp_validity_hours = 24
auto_approve = true

[faults]
hdmi_missing_rate = 0
uncertified_rate = 0
typo_rate = 0
manual_rate = 0

[[sites]]
name = "HQ"
time_zone = "Europe/Paris"

[[waves]]
name = "one"
site = "HQ"
consoles = 150
start_date = "2026-12-07"
days = 2
otps_generated_at = "07:00"
"#;

#[test]
fn the_same_plan_and_seed_give_byte_identical_reports() {
    let plan = compile(&shipped("office-20.toml")).expect("the shipped plan compiles");
    let a = rehearse(&plan, 3, true).expect("runs");
    let b = rehearse(&plan, 3, true).expect("runs");
    let json = |r: &otpfleet_reports::RunReport| serde_json::to_string_pretty(r).expect("json");
    assert_eq!(json(&a.report), json(&b.report));
    assert!(
        !a.report.timeline.is_empty(),
        "a timeline per simulated hour"
    );
    let c = rehearse(&plan, 4, true).expect("runs");
    assert_ne!(
        json(&a.report),
        json(&c.report),
        "another seed is another rehearsal"
    );
}

/// Consoles awaiting approval sleep until an admin decides (or their OTP nears its expiry)
/// instead of polling every interval; the figures must be those every poll gives.
#[test]
fn skipping_the_polls_that_hear_nothing_new_changes_no_figure() {
    for name in ["national-5000.toml", "national-5000-24h-auto.toml"] {
        let plan = compile(&shipped(name)).expect("the shipped plan compiles");
        let polling = Watch {
            every_poll: true,
            ..Watch::default()
        };
        let every = rehearse_until(&plan, 2, false, &polling).expect("runs");
        let skipping = rehearse_until(&plan, 2, false, &Watch::default()).expect("runs");
        let json = |r: &otpfleet_reports::RunReport| serde_json::to_string_pretty(r).expect("json");
        assert_eq!(json(&every.report), json(&skipping.report), "{name}");
        let csv = |run: &otpfleet_emulator::rehearsal::RehearsalRun| {
            let mut out = Vec::new();
            otpfleet_emulator::write_consoles_csv(&run.consoles, &mut out).expect("csv");
            out
        };
        assert_eq!(csv(&every), csv(&skipping), "{name}: every console alike");
        let polls = |run: &otpfleet_emulator::rehearsal::RehearsalRun| {
            run.recorder.counts(otpfleet_reports::Step::Poll).requests
        };
        assert_eq!(polls(&every), polls(&skipping), "{name}: the polls counted");
        assert!(polls(&every) > 3_000, "{name}: consoles waited");
        assert_eq!(every.polls_skipped, 0);
        assert!(
            skipping.polls_skipped > 300,
            "{name}: polls skipped: {} of {}",
            skipping.polls_skipped,
            polls(&every)
        );
    }
}

#[test]
fn auto_approval_and_no_faults_sign_in_every_console() {
    let plan = compile(SMALL).expect("compiles");
    let run = rehearse_once(&plan, 1).expect("runs");
    let r = &run.report;
    assert_eq!(r.consoles, 150);
    assert_eq!(r.outcomes.signed_in_otp, 150, "{:?}", r.outcomes);
    assert!(r.complete);
    let last = r.timeline.last().expect("a timeline");
    assert_eq!(last.signed_in, 150);
    assert_eq!(r.rehearsal.as_ref().map(|f| f.queue_depth_peak), Some(0));
}

#[test]
fn eight_hour_otps_with_office_hours_approvers_expire_far_more_than_24_hours_with_auto_approval() {
    let eight = compile(&shipped("national-5000.toml")).expect("compiles");
    let auto = compile(&shipped("national-5000-24h-auto.toml")).expect("compiles");
    let share = |plan| {
        let r = rehearse_once(plan, 1).expect("runs").report;
        assert_eq!(r.outcomes.total(), 5_000);
        r.rehearsal.expect("findings").expired_share
    };
    let (s8, s24) = (share(&eight), share(&auto));
    assert!(s8 > 0.10, "8-hour OTPs expire a large share: {s8}");
    assert!(
        s24 < 0.01,
        "24-hour OTPs with auto approval out of hours: {s24}"
    );
    assert!(s8 > 10.0 * s24.max(0.001));
}

#[test]
fn a_wrong_field_type_or_value_names_the_line_and_field() {
    let cases = [
        (
            SMALL.replace("days = 5", "dayz = 5"),
            4,
            "unknown field `dayz`",
        ),
        (
            SMALL.replace("consoles = 150", "consoles = \"many\""),
            23,
            "consoles: invalid type",
        ),
        (
            SMALL.replace("otp_validity_hours = 24", "otp_validity_hours = 400"),
            7,
            "preferences.otp_validity_hours",
        ),
        (
            SMALL.replace("Europe/Paris", "Europe/Atlantis"),
            18,
            "time_zone",
        ),
        (
            SMALL.replace("site = \"HQ\"", "site = \"HQQ\""),
            22,
            "waves[0].site",
        ),
        (
            SMALL.replace("typo_rate = 0", "typo_rate = 1.5"),
            13,
            "faults.typo_rate",
        ),
        (
            SMALL.replace(
                "otps_generated_at = \"07:00\"",
                "otps_generated_at = \"soon\"",
            ),
            26,
            "otps_generated_at",
        ),
        (
            SMALL.replace("[faults]", "[reissue]\npolicy = \"later\"\n\n[faults]"),
            11,
            "reissue.policy: \"later\" is not a policy",
        ),
        (
            SMALL.replace(
                "[faults]",
                "[reissue]\npolicy = \"at_once\"\nrevisit_days = \"0..2\"\n\n[faults]",
            ),
            12,
            "reissue.revisit_days",
        ),
        (
            SMALL.replace(
                "[faults]",
                "[reissue]\npolicy = \"at_once\"\nattempts = 0\n\n[faults]",
            ),
            12,
            "reissue.attempts",
        ),
    ];
    for (text, line, says) in cases {
        let errors = compile(&text).expect_err(says);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.to_string().contains(says)),
            "{says} on line {line}: {shown:?}"
        );
    }
}

#[test]
fn a_wave_the_calendar_cannot_place_is_refused_not_moved_to_the_first_day() {
    let start = SMALL
        .lines()
        .find(|l| l.starts_with("start_date"))
        .expect("SMALL has a wave start date");
    for far in ["9999-12-31", "9999-01-04", "2400-01-03"] {
        let text = SMALL.replace(start, &format!("start_date = \"{far}\""));
        let errors = compile(&text).expect_err(far);
        assert!(
            errors
                .iter()
                .any(|e| e.field == "waves[0].start_date" && e.message.contains("the rehearsal's")),
            "{far}: {errors:?}"
        );
    }
}

/// Found by the fuzz pass (tests/fuzz): consoles and admins counted past their type's end
/// overflowed while the plan was being checked.
#[test]
fn counts_past_any_bound_are_refused_not_overflowed() {
    let huge = SMALL.replace("consoles = 150", "consoles = 18446744073709551615");
    let errors = compile(&huge).expect_err("too many consoles");
    assert!(
        errors
            .iter()
            .any(|e| e.field == "waves" && e.message.contains("at most")),
        "{errors:?}"
    );
    let admins = format!(
        "{SMALL}\n[[admins]]\nname = \"a\"\ncount = 4294967295\ntime_zone = \"UTC\"\nworking_hours = \"09:00-17:00\"\ndecision_seconds = \"10..20\"\n\n[[admins]]\nname = \"b\"\ncount = 4294967295\ntime_zone = \"UTC\"\nworking_hours = \"09:00-17:00\"\ndecision_seconds = \"10..20\"\n"
    );
    let errors = compile(&admins).expect_err("too many admins");
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("at most 1000 admins")),
        "{errors:?}"
    );
}

#[test]
fn impossible_plans_are_refused_or_warned_about() {
    let no_one = SMALL.replace("auto_approve = true", "auto_approve = false");
    let errors = compile(&no_one).expect_err("no admins, no auto approval");
    assert!(errors.iter().any(|e| e.field == "admins"), "{errors:?}");

    let night_shift = format!(
        "{}\n[[admins]]\nname = \"far away\"\ncount = 1\ntime_zone = \"Australia/Sydney\"\nworking_hours = \"09:00-12:00\"\ndecision_seconds = \"10..20\"\n",
        no_one
    );
    let plan = compile(&night_shift).expect("it runs");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("no admin works while its installers do")),
        "{:?}",
        plan.warnings
    );
}

/// Installers on a Friday afternoon, one approver on weekday office hours: requests made after
/// the approver's day wait the weekend, and the slowest console takes days, not the hour the
/// histograms once clamped at.
const WEEKEND: &str = r#"
name = "friday installs"
start = "2026-12-04T00:00:00Z"   # a Friday
days = 7

[preferences]
otp_validity_hours = 96
auto_approve = false

[faults]
hdmi_missing_rate = 0
uncertified_rate = 0
typo_rate = 0
manual_rate = 0

[[admins]]
name = "IT desk"
count = 1
time_zone = "Europe/London"
working_hours = "09:00-17:00"
decision_seconds = "30..60"

[[sites]]
name = "London office"
time_zone = "Europe/London"

[[waves]]
name = "friday"
site = "London office"
consoles = 40
start_date = "2026-12-04"
installer_hours = "13:00-19:00"
otps_generated_at = "2026-12-04T08:00"
"#;

#[test]
fn a_tail_of_days_is_reported_whole_and_equals_the_slowest_console() {
    let plan = compile(WEEKEND).expect("compiles");
    let run = rehearse_once(&plan, 1).expect("runs");
    let r = &run.report;
    let slowest_ms = run
        .consoles
        .iter()
        .filter_map(|c| c.time_to_signed_in_ms)
        .max()
        .expect("consoles signed in");
    let day_s = 86_400.0;
    assert!(
        slowest_ms as f64 / 1000.0 > day_s,
        "the plan makes someone wait over a day: {slowest_ms} ms"
    );
    let max = r.time_to_signed_in_s.max;
    let slowest = slowest_ms as f64 / 1000.0;
    // Three significant digits: within 0.1% (HdrHistogram's precision), never cut off.
    assert!(
        (max - slowest).abs() <= slowest * 0.001,
        "report max {max} s, slowest console {slowest} s"
    );
    assert_eq!(r.time_to_signed_in_s.over_range, 0);
    // The consoles.csv line of the slowest console says the same.
    let mut csv = Vec::new();
    otpfleet_emulator::write_consoles_csv(&run.consoles, &mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("utf-8");
    let column = csv
        .lines()
        .next()
        .and_then(|h| h.split(',').position(|c| c == "time_to_signed_in_ms"))
        .expect("a time_to_signed_in_ms column");
    let csv_max = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(column)?.parse::<u64>().ok())
        .max();
    assert_eq!(csv_max, Some(slowest_ms));
    // And a rehearsal reports no request latency of simulated time.
    assert!(r.latency_us.is_empty() && r.throughput.steps.is_empty());
}

/// A wave at a New York site, approvers on office hours there, OTPs valid 48 h (nothing
/// expires); `SITE_HOLIDAYS` and `ADMIN_HOLIDAYS` are replaced by each test.
const CALENDAR: &str = r#"
name = "calendar"
start = "2026-12-07T00:00:00Z"
days = 10

[preferences]
otp_validity_hours = 48

[faults]
hdmi_missing_rate = 0
uncertified_rate = 0
typo_rate = 0
manual_rate = 0

[[admins]]
name = "approvers"
count = 2
time_zone = "America/New_York"
working_hours = "09:00-17:00"
decision_seconds = "20..60"
reject_rate = 0
ADMIN_HOLIDAYS

[[sites]]
name = "east"
time_zone = "America/New_York"
SITE_HOLIDAYS

[[waves]]
name = "one"
site = "east"
consoles = 200
start_date = "2026-12-07"
days = 3
otps_generated_at = "07:30"
"#;

/// When each console signed in, ms from the rehearsal's start, of a CALENDAR plan.
fn sign_ins(site_holidays: &str, admin_holidays: &str) -> (Vec<u64>, otpfleet_reports::RunReport) {
    let text = CALENDAR
        .replace("SITE_HOLIDAYS", site_holidays)
        .replace("ADMIN_HOLIDAYS", admin_holidays);
    let run = rehearse_once(&compile(&text).expect("compiles"), 1).expect("runs");
    let mut at: Vec<u64> = run
        .consoles
        .iter()
        .filter_map(|c| Some(c.arrival_ms + c.time_to_signed_in_ms?))
        .collect();
    at.sort_unstable();
    (at, run.report)
}

/// A public holiday at a site moves its installations, and so the day its last room signs in,
/// by a working day; an approvers' holiday has nobody approving, and so nobody signing in, that
/// day, checked against the consoles' simulated sign-in times and the timeline's approvers.
#[test]
fn holidays_move_installations_and_stop_approvals() {
    const HOUR: u64 = 3_600_000;
    // New York is UTC-5 in December: Tuesday the 8th runs from 29 h to 53 h after the start.
    let (tuesday, wednesday_nine) = (29 * HOUR..53 * HOUR, 62 * HOUR);
    let (plain, plain_report) = sign_ins("", "");
    assert_eq!(plain.len(), 200, "all sign in");
    let on_tuesday = plain.iter().filter(|t| tuesday.contains(t)).count();
    assert!(
        on_tuesday > 30,
        "without holidays Tuesday's rooms sign in that day: {on_tuesday}"
    );
    assert!(
        plain_report
            .timeline
            .iter()
            .any(|p| tuesday.contains(&(u64::from(p.hour) * HOUR)) && p.approvers_at_work > 0)
    );

    // The report's completion dates are those moments, in the site's local time.
    let start: jiff::Timestamp = "2026-12-07T00:00:00Z".parse().expect("start");
    let seconds_at = |ms: u64| (start.as_millisecond() + ms as i64) / 1000;
    let read = |at: &Option<String>| -> i64 {
        let at = at.as_deref().expect("a moment");
        assert!(at.ends_with("-05:00"), "New York's local time: {at}");
        at.parse::<jiff::Timestamp>()
            .expect("RFC 3339")
            .as_millisecond()
            / 1000
    };
    let f = plain_report.rehearsal.as_ref().expect("findings");
    assert_eq!(read(&f.last_signed_in_at), seconds_at(plain[199]));
    assert_eq!(read(&f.waves[0].last_signed_in_at), seconds_at(plain[199]));
    assert_eq!(
        read(&f.signed_in_95_at),
        seconds_at(plain[189]),
        "the 190th of 200"
    );
    assert!(
        f.headline[0].starts_with("The last room signed in ") && f.headline[0].contains("EST"),
        "the first answer: {:?}",
        f.headline
    );

    let (site_off, _) = sign_ins(r#"holidays = ["2026-12-08"]"#, "");
    assert_eq!(site_off.len(), 200);
    let (last, last_off) = (plain[199], site_off[199]);
    assert!(
        last_off >= last + 20 * HOUR,
        "the site's last sign-in moves a working day: {} h -> {} h",
        last / HOUR,
        last_off / HOUR
    );

    let (approvers_off, report) = sign_ins("", r#"holidays = ["2026-12-08"]"#);
    // Most wait out the holiday; the rooms typed after Monday's approvers left hold OTPs made
    // Monday 07:30, which expire Wednesday 07:30, before anyone approves again.
    assert!(approvers_off.len() >= 180, "{}", approvers_off.len());
    assert_eq!(
        report.outcomes.expired,
        200 - approvers_off.len() as u64,
        "the others expired awaiting approval"
    );
    let between = approvers_off
        .iter()
        .filter(|t| (tuesday.start..wednesday_nine).contains(t))
        .count();
    assert_eq!(
        between, 0,
        "no approval, so no sign-in, on the approvers' holiday"
    );
    for p in &report.timeline {
        let hour = u64::from(p.hour) * HOUR;
        if tuesday.contains(&hour) {
            assert_eq!(p.approvers_at_work, 0, "hour {}", p.hour);
        }
    }

    let bad = CALENDAR
        .replace("SITE_HOLIDAYS", r#"holidays = ["25 December"]"#)
        .replace("ADMIN_HOLIDAYS", "");
    let errors = compile(&bad).expect_err("not a date");
    assert!(
        errors.iter().any(|e| e.field.contains("holidays")
            && e.message.contains("YYYY-MM-DD")
            && e.line > 0),
        "{errors:?}"
    );
}

/// The columns of consoles.csv by name, one map per console.
fn consoles_csv(
    run: &otpfleet_emulator::rehearsal::RehearsalRun,
) -> Vec<std::collections::HashMap<String, String>> {
    let mut out = Vec::new();
    otpfleet_emulator::write_consoles_csv(&run.consoles, &mut out).expect("csv");
    let text = String::from_utf8(out).expect("utf-8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|line| {
            // Only the last column (ended_because) may be quoted: split off the fixed ones.
            let cells: Vec<&str> = line.splitn(header.len(), ',').collect();
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.trim_matches('"').to_owned()))
                .collect()
        })
        .collect()
}

/// The shipped national plan with re-issue on plays every room to its end: signed in, or a
/// reason in words; the second visits are exactly the rooms whose first OTP expired or was
/// rejected and that got another, checked against consoles.csv.
#[test]
fn reissue_and_return_play_the_national_plan_to_its_end() {
    let plan = compile(&shipped("national-5000.toml")).expect("compiles");
    let reissue = plan.reissue.expect("the shipped plan re-issues");
    let run = rehearse_once(&plan, 1).expect("runs");
    let f = run.report.rehearsal.as_ref().expect("findings");
    assert!(run.report.complete, "{:?}", run.report.stopped_because);
    let rows = consoles_csv(&run);
    assert_eq!(rows.len(), 5_000);
    for row in &rows {
        let because = &row["ended_because"];
        match row["outcome"].as_str() {
            "signed_in_otp" => assert_eq!(because, "signed in with its OTP"),
            "signed_in_manual" => assert_eq!(because, "signed in by manual setup"),
            "verification_failed" => assert!(because.starts_with("uncertified model"), "{row:?}"),
            "rejected" => assert!(
                because.starts_with("rejected for good (unrecognized_device")
                    || because.starts_with("rejected for good (security_concern")
                    || because.starts_with("out of attempts (3 OTPs), the last rejected"),
                "{row:?}"
            ),
            "expired" => assert!(
                because.starts_with("out of attempts (3 OTPs), the last expired"),
                "{row:?}"
            ),
            other => panic!("a room ended {other}: {row:?}"),
        }
        let otps: u32 = row["otps"].parse().expect("otps");
        assert!((1..=reissue.attempts).contains(&otps), "{row:?}");
    }
    let reissued_after_a_failure = rows
        .iter()
        .filter(|r| {
            matches!(r["first_outcome"].as_str(), "expired" | "rejected")
                && r["otps"].parse::<u32>().expect("otps") >= 2
        })
        .count();
    let second_visits = rows
        .iter()
        .filter(|r| r["visits"].parse::<u32>().expect("visits") >= 2)
        .count();
    assert_eq!(second_visits, reissued_after_a_failure);
    assert!(
        second_visits > 1_000,
        "8-hour OTPs send many installers back: {second_visits}"
    );
    assert_eq!(f.second_visits, second_visits as u64);
    let otps: u64 = rows
        .iter()
        .map(|r| r["otps"].parse::<u64>().expect("otps"))
        .sum();
    assert_eq!(f.otps_generated, otps);
    assert_eq!(
        run.otps_issued, otps,
        "every OTP counted was generated by the server"
    );
    assert!(
        run.recorder.counts(otpfleet_reports::Step::Issue).requests < 200,
        "the rooms due at one moment are regenerated in one batch"
    );
    assert!(f.last_signed_in_at.is_some());
    assert!(
        f.headline[0].starts_with("The last room signed in "),
        "{:?}",
        f.headline
    );
    assert!(f.admin_hours > f.regeneration_hours && f.regeneration_hours > 0.0);
    // The waves split their expiries as the findings do.
    let (awaiting, late): (u64, u64) = f.waves.iter().fold((0, 0), |(a, l), w| {
        (
            a + w.expired_awaiting_approval,
            l + w.expired_installer_late,
        )
    });
    assert_eq!(
        (awaiting, late),
        (f.expired_awaiting_approval, f.expired_installer_late)
    );
}

const RETURNS: &str = r#"
name = "returns"
start = "2026-12-07T00:00:00Z"
days = 20

[preferences]
otp_validity_hours = 8

[reissue]
policy = "POLICY"
revisit_days = "1..1"
attempts = 3
regenerate_seconds = "60..60"

[[admins]]
name = "approvers"
count = 1
time_zone = "America/New_York"
working_hours = "09:00-17:00"
decision_seconds = "30..30"

[[sites]]
name = "east"
time_zone = "America/New_York"
holidays = ["2026-12-09"]

[[waves]]
name = "one"
site = "east"
consoles = 10
start_date = "2026-12-07"
days = 1
otps_generated_at = "07:30"
"#;

/// When the admins regenerate and the installer comes back, by policy, on the site's calendar.
#[test]
fn a_return_follows_the_policy_and_the_sites_calendar() {
    use otpfleet_emulator::rehearsal::reissue::plan_return;
    use rand::SeedableRng as _;
    const HOUR: u64 = 3_600_000;
    let at = |policy: &str, failed_ms: u64, on_site: bool, admins_in: u64| {
        let plan = compile(&RETURNS.replace("POLICY", policy)).expect("compiles");
        let r = plan.reissue.expect("re-issue");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        plan_return(
            &plan,
            &plan.waves[0],
            &r,
            (failed_ms, on_site),
            |_| admins_in,
            &mut rng,
        )
        .expect("a return")
    };
    // Monday 16:00 New York is 21 h after the start. An installer on site with admins at work
    // waits for the new OTP: the same visit.
    let now = at("at_once", 21 * HOUR, true, 0);
    assert!(now.same_visit);
    assert_eq!(now.regenerate_at_ms, 21 * HOUR);
    assert_eq!(now.arrival_ms, 21 * HOUR + 60_000 + 60_000);
    // Nobody at work until 17 h later: the installer returns Tuesday, the OTP made at once.
    let later = at("at_once", 21 * HOUR, true, 17 * HOUR);
    assert!(!later.same_visit);
    assert_eq!(later.regenerate_at_ms, 38 * HOUR);
    let tuesday = 37 * HOUR..47 * HOUR; // 08:00-18:00 New York
    assert!(tuesday.contains(&later.arrival_ms), "{later:?}");
    // With the next batch: Tuesday's 07:30 batch (36.5 h), never earlier than it.
    let batch = at("next_batch", 21 * HOUR, false, 0);
    assert_eq!(batch.regenerate_at_ms, 36 * HOUR + HOUR / 2);
    assert!(tuesday.contains(&batch.arrival_ms), "{batch:?}");
    // A failure on Tuesday returns Thursday: Wednesday is the site's holiday.
    let thursday = at("next_batch", 45 * HOUR, false, 0);
    assert_eq!(
        thursday.regenerate_at_ms,
        84 * HOUR + HOUR / 2,
        "{thursday:?}"
    );
}

/// A sweep's rows are what rehearsing each combination's plan alone gives: the plan file edited
/// by hand, with the same seed.
#[test]
fn a_sweeps_table_is_each_combination_rehearsed_alone() {
    use otpfleet_emulator::rehearsal::sweep::{Vary, mark, plans, row_of, sweep};
    let text = shipped("national-5000.toml");
    let base = compile(&text).expect("compiles");
    let varies: Vec<Vary> = ["validity=8h,24h", "policy=next_batch,at_once"]
        .iter()
        .map(|v| v.parse().expect("a --vary"))
        .collect();
    let combos = plans(&base, &varies).expect("every combination compiles");
    assert_eq!(combos.len(), 4);
    let rows = sweep(&combos, 1, 2, &|_, _| {}).expect("sweeps");
    let mut alone = Vec::new();
    for (validity, policy) in [
        ("8", "next_batch"),
        ("8", "at_once"),
        ("24", "next_batch"),
        ("24", "at_once"),
    ] {
        let edited = text
            .replace(
                "otp_validity_hours = 8",
                &format!("otp_validity_hours = {validity}"),
            )
            .replace("policy = \"next_batch\"", &format!("policy = \"{policy}\""));
        let plan = compile(&edited).expect("the edited plan compiles");
        let run = rehearse_once(&plan, 1).expect("runs");
        let combo = &combos[alone.len()].0;
        alone.push(row_of(combo, &plan, &run));
    }
    mark(&mut alone);
    assert_eq!(rows, alone);
    assert_eq!(rows.iter().filter(|r| r.soonest).count(), 1, "{rows:#?}");
    assert!(rows.iter().any(|r| r.least_admin_time));
    // Longer OTPs need fewer second visits; the figures are the findings'.
    assert!(rows[2].second_visits < rows[0].second_visits, "{rows:#?}");
}

#[test]
fn a_sweep_refuses_what_it_cannot_vary() {
    use otpfleet_emulator::rehearsal::sweep::{Vary, plans};
    assert!(
        "speed=1,2"
            .parse::<Vary>()
            .unwrap_err()
            .contains("validity, approvers")
    );
    assert!(
        "validity="
            .parse::<Vary>()
            .unwrap_err()
            .contains("at least one value")
    );
    let base = compile(SMALL).expect("compiles");
    let bad = |v: &str| plans(&base, &[v.parse().expect("parses")]).unwrap_err();
    assert!(
        bad("validity=soon").contains("write hours as 8h"),
        "{}",
        bad("validity=soon")
    );
    assert!(
        bad("validity=400h").contains("validity=400h: preferences.otp_validity_hours"),
        "{}",
        bad("validity=400h")
    );
    assert!(bad("policy=at_once").contains("no [reissue] section"));
    assert!(bad("approvers=2").contains("no [[admins]] group"));
    assert!(bad("batch-time=noon").contains("write a time of day"));
    assert!(bad("batch-time=2026-12-06T17:00").contains("write a time of day"));
    let twice: Vec<Vary> = ["validity=8h", "validity=24h"]
        .iter()
        .map(|v| v.parse().expect("parses"))
        .collect();
    assert!(
        plans(&base, &twice)
            .unwrap_err()
            .contains("validity is varied twice")
    );
}

/// A site's working days decide its installation days and its installers' return visits.
#[test]
fn a_sites_working_days_set_its_installations_and_returns() {
    use otpfleet_emulator::rehearsal::reissue::plan_return;
    use rand::SeedableRng as _;
    const HOUR: u64 = 3_600_000;
    let six_days = RETURNS
        .replace("POLICY", "next_batch")
        .replace(
            "holidays = [\"2026-12-09\"]",
            "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"]",
        )
        .replace("days = 1\n", "days = 6\n");
    let plan = compile(&six_days).expect("compiles");
    let dates: Vec<String> = plan.waves[0]
        .dates
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        dates,
        [
            "2026-12-07",
            "2026-12-08",
            "2026-12-09",
            "2026-12-10",
            "2026-12-11",
            "2026-12-12"
        ]
    );
    // A failure on Saturday 16:00 New York (141 h) returns Monday: Sunday is off.
    let r = plan.reissue.expect("re-issue");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let ret = plan_return(
        &plan,
        &plan.waves[0],
        &r,
        (141 * HOUR, false),
        |_| 0,
        &mut rng,
    )
    .expect("a return");
    assert_eq!(
        ret.regenerate_at_ms,
        180 * HOUR + HOUR / 2,
        "Monday's 07:30 batch: {ret:?}"
    );

    // A wave generating once, at a date-time, has no daily batch (its return days' OTPs are
    // made as the installers' day opens), though jiff reads a date-time as a time too.
    let once = compile(&shipped("office-20.toml")).expect("compiles");
    assert_eq!(once.waves[0].daily_batch, None);
    let bad = compile(&RETURNS.replace("holidays = [\"2026-12-09\"]", "days = [\"someday\"]"))
        .unwrap_err();
    assert!(
        bad.iter().any(|e| e.field == "site \"east\".days"),
        "{bad:?}"
    );
}
