//! `compare`: a run against itself passes any limit; a planted regression passes its limit and
//! shows in the table; decreases never count.

use crate::runs;
use otpfleet_reports::{Limits, Stat, compare, write_comparison};

fn table(c: &otpfleet_reports::Comparison<'_>) -> String {
    let mut out = Vec::new();
    write_comparison(c, "runs/base", "runs/new", &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_run_compared_with_itself_passes() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let limits: Limits = "p50=0%,p99=0%,max=0%".parse().unwrap();
    let c = compare(&base, &base, &limits).unwrap();
    assert!(c.within_limits(), "{:?}", c.regressions);
    let md = table(&c);
    assert!(md.contains("✅ Within every limit"), "{md}");
    assert!(md.contains("| redeem | 200 → 200 |"), "{md}");
}

#[test]
fn a_planted_p99_regression_passes_its_limit_and_is_marked() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    let redeem = new.latency_us.get_mut("redeem").unwrap();
    redeem.p99 = redeem.p99 * 3 / 2;
    // Faster elsewhere: decreases never count.
    new.latency_us.get_mut("verify").unwrap().p99 /= 2;

    let limits: Limits = "p99=10%".parse().unwrap();
    let c = compare(&base, &new, &limits).unwrap();
    assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
    let r = &c.regressions[0];
    assert_eq!((r.step.as_str(), r.stat), ("redeem", Stat::P99));
    assert!((r.change_pct - 50.0).abs() < 0.5, "{r:?}");
    let md = table(&c);
    assert!(
        md.contains("❌ **1 limit exceeded:** redeem p99 +50.0% (limit +10%)"),
        "{md}"
    );
    assert!(md.contains("(+50.0%) ❌"), "{md}");
    assert!(md.contains("(-50.0%)"), "{md}");

    // A looser limit, or one on another step, lets it pass.
    for loose in ["p99=60%", "verify.p99=10%", "p50=1%"] {
        let limits: Limits = loose.parse().unwrap();
        assert!(
            compare(&base, &new, &limits).unwrap().within_limits(),
            "{loose}"
        );
    }
}

#[test]
fn the_whole_flow_and_outcomes_are_compared_too() {
    let (base, _) = runs::run(1, (0, 1), 200);
    let mut new = base.clone();
    new.time_to_signed_in_s.p99 *= 2.0;
    new.outcomes.rejected += 5;
    let limits: Limits = "time_to_signed_in.p99=20%".parse().unwrap();
    let c = compare(&base, &new, &limits).unwrap();
    assert_eq!(c.regressions.len(), 1);
    let md = table(&c);
    assert!(md.contains("| time_to_signed_in |"), "{md}");
    assert!(
        md.contains("| rejected | 20 (10.0%) | 25 (12.5%) | +5 |"),
        "{md}"
    );

    let typo: Limits = "redeme.p99=5%".parse().unwrap();
    let err = compare(&base, &new, &typo).expect_err("an unknown step");
    assert!(err.contains("redeme") && err.contains("redeem"), "{err}");
}
