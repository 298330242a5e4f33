//! `compare`: a run against itself passes any limit; a planted regression passes its limit and
//! shows in the table; decreases never count; thin steps are not gated; kinds must match.

use crate::runs;
use otpfleet_reports::{
    Limits, NoiseFloors, RunKind, RunReport, compare, write_comparison, write_comparison_json,
};

fn table(c: &otpfleet_reports::Comparison<'_>) -> String {
    let mut out = Vec::new();
    write_comparison(c, "runs/base", "runs/new", &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn limits(text: &str) -> Limits {
    text.parse().unwrap()
}

#[test]
fn a_run_compared_with_itself_passes() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let strict = limits("p50=0%,p99=0%,max=0%,response.p99=0%,rps=0%,error-rate=+0pp");
    let c = compare(&base, &base, &strict, &NoiseFloors::NONE, 100).unwrap();
    assert!(c.within_limits(), "{:?}", c.regressions);
    let md = table(&c);
    assert!(md.contains("✅ Within every limit"), "{md}");
    assert!(md.contains("| redeem | 200 → 200 |"), "{md}");
    assert!(md.contains("### Service time: from the actual send to the answer per step"));
}

#[test]
fn a_planted_p99_regression_passes_its_limit_and_is_marked() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    let redeem = &mut new.latency_us.get_mut("redeem").unwrap().service;
    redeem.p99 = redeem.p99 * 3 / 2;
    // Faster elsewhere: decreases never count.
    new.latency_us.get_mut("verify").unwrap().service.p99 /= 2;

    let p99 = limits("p99=10%");
    let c = compare(&base, &new, &p99, &NoiseFloors::NONE, 100).unwrap();
    assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
    let r = &c.regressions[0];
    assert_eq!(r.name, "redeem.service.p99");
    assert_eq!(r.change, "+50.0%");
    let md = table(&c);
    assert!(
        md.contains("❌ **1 limit exceeded:** redeem.service.p99 +50.0% (limit +10%)"),
        "{md}"
    );
    assert!(md.contains("(+50.0%) ❌"), "{md}");
    assert!(md.contains("(-50.1%)"), "{md}");

    // A looser limit, one on another step or another view lets it pass.
    for loose in ["p99=60%", "verify.p99=10%", "p50=1%", "response.p99=10%"] {
        assert!(
            compare(&base, &new, &limits(loose), &NoiseFloors::NONE, 100)
                .unwrap()
                .within_limits(),
            "{loose}"
        );
    }
}

/// Every value of one step's service (and so response) view doubled: a server twice as slow.
fn twice_as_slow(r: &RunReport, step: &str) -> RunReport {
    let mut new = r.clone();
    let l = new.latency_us.get_mut(step).unwrap();
    for s in [&mut l.service, &mut l.response] {
        for v in [&mut s.p50, &mut s.p90, &mut s.p99, &mut s.p999, &mut s.max] {
            *v *= 2;
        }
    }
    new
}

#[test]
fn a_server_twice_as_slow_fails_the_default_limits_and_a_thin_step_is_not_gated() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let new = twice_as_slow(&base, "redeem");
    let defaults = Limits::default();
    let floors = NoiseFloors::default();
    let c = compare(&base, &new, &defaults, &floors, 100).unwrap();
    let names: Vec<&str> = c.regressions.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"redeem.service.p50"), "{names:?}");

    // With a minimum above the run's 200 requests, nothing is gated, and the table says so.
    let c = compare(&base, &new, &defaults, &NoiseFloors::NONE, 1_000).unwrap();
    assert!(c.within_limits(), "{:?}", c.regressions);
    assert!(c.skipped.iter().any(|s| s.name == "redeem.service.p50"));
    let md = table(&c);
    assert!(md.contains("Not gated: "), "{md}");
    assert!(md.contains("(n < 1000: not gated)"), "{md}");
}

/// A rise past its limit's percentage but under its statistic's floor is noise, listed apart;
/// a floor set lower lets it fail; floors that do not parse say where and how to write them.
#[test]
fn a_rise_under_the_noise_floor_is_noise() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    let redeem = &mut new.latency_us.get_mut("redeem").unwrap().service;
    let p99 = redeem.p99;
    redeem.p99 = p99 * 3 / 2;
    assert!(p99 / 2 < 10_000, "under the default p99 floor: {p99}");
    let p99_limit = limits("p99=10%");
    let floors = NoiseFloors::default();
    let c = compare(&base, &new, &p99_limit, &floors, 100).unwrap();
    assert!(c.within_limits(), "{:?}", c.regressions);
    assert_eq!(c.under_floor[0].name, "redeem.service.p99");
    let md = table(&c);
    assert!(
        md.contains("Under the noise floor: redeem.service.p99: +50.0% (")
            && md.contains("under the p99 noise floor of 10.0 ms"),
        "{md}"
    );
    let lower: NoiseFloors = format!("p99={}us", p99 / 2 - 1).parse().unwrap();
    let c = compare(&base, &new, &p99_limit, &lower, 100).unwrap();
    assert_eq!(c.regressions.len(), 1, "a floor just under the rise");
    for (bad, says) in [
        ("p98=1ms", "names no statistic"),
        ("p99", "has no ="),
        ("p50=1ms,p99=fast", "not a number"),
        ("p99=5lightyears", "unknown unit"),
    ] {
        let e = bad.parse::<NoiseFloors>().expect_err(bad);
        assert!(e.contains(says) && e.contains("STAT=TIME"), "{bad}: {e}");
    }
}

#[test]
fn rates_errors_and_outcome_shares_are_gated() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    new.throughput.rps = base.throughput.rps * 0.8;
    new.throughput.error_rate = base.throughput.error_rate + 0.02;
    new.outcomes.rejected += 6;
    new.outcomes.signed_in_otp -= 6;
    let strict = limits("rps=-10%,error-rate=+1pp,rejected=+2pp");
    let c = compare(&base, &new, &strict, &NoiseFloors::NONE, 100).unwrap();
    let names: Vec<&str> = c.regressions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["error-rate", "outcomes.rejected", "rps"]);
    let loose = limits("rps=-25%,error-rate=+3pp,rejected=+4pp");
    assert!(
        compare(&base, &new, &loose, &NoiseFloors::NONE, 100)
            .unwrap()
            .within_limits()
    );

    let mut json = Vec::new();
    write_comparison_json(&c, &mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["within_limits"], false);
    assert_eq!(json["regressions"][2]["name"], "rps");
    assert_eq!(json["regressions"][2]["change"], "-20.0%");
}

#[test]
fn the_whole_flow_and_outcomes_are_compared_too() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    new.time_to_signed_in_s.p99 *= 2.0;
    new.outcomes.rejected += 5;
    let flow = limits("time_to_signed_in.p99=20%");
    let c = compare(&base, &new, &flow, &NoiseFloors::NONE, 100).unwrap();
    assert_eq!(c.regressions.len(), 1);
    let md = table(&c);
    assert!(md.contains("### Time to signed in"), "{md}");
    assert!(
        md.contains("| rejected | 20 (10.0%) | 25 (12.5%) | +5 |"),
        "{md}"
    );
    let err = "redeme.p99=5%"
        .parse::<Limits>()
        .expect_err("an unknown step");
    assert!(err.contains("redeme") && err.contains("redeem"), "{err}");
}

#[test]
fn runs_of_different_kinds_do_not_compare() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut rehearsal = base.clone();
    rehearsal.kind = RunKind::Rehearsal;
    let err = compare(
        &base,
        &rehearsal,
        &Limits::default(),
        &NoiseFloors::NONE,
        100,
    )
    .expect_err("kinds differ");
    assert!(err.contains("meaningless"), "{err}");
}
