//! `reports/schema/report.schema.json` describes every report this crate writes, and refuses
//! what is not one.

use crate::runs;
use otpfleet_reports::{REPORT_SCHEMA, RunReport};
use serde_json::Value;

pub fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(REPORT_SCHEMA).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// The schema's complaints about a report, one line each (empty when it is valid).
pub fn complaints(report: &Value) -> Vec<String> {
    let v = validator();
    v.iter_errors(report)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn json(r: &RunReport) -> Value {
    serde_json::to_value(r).unwrap()
}

#[test]
fn the_shipped_schema_is_draft_2020_12_and_accepts_every_kind_of_report() {
    let schema: Value = serde_json::from_str(REPORT_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let (fleet, _) = runs::run(7, (0, 1), 40);
    let (shard, _) = runs::run(7, (1, 2), 40);
    for report in [fleet, shard, runs::full_report()] {
        let problems = complaints(&json(&report));
        assert!(problems.is_empty(), "{:?}: {problems:#?}", report.kind);
    }
}

#[test]
fn the_schema_refuses_what_is_not_a_report() {
    let good = json(&runs::full_report());
    type Breakage = (&'static str, fn(&mut Value));
    let broken: [Breakage; 8] = [
        ("a missing field", |r| {
            drop(r.as_object_mut().unwrap().remove("outcomes"))
        }),
        ("an unknown field", |r| r["outcomes_total"] = 3.into()),
        ("an unknown kind", |r| r["kind"] = "soak".into()),
        ("a negative count", |r| {
            r["latency_us"]["redeem"]["service"]["p99"] = (-1).into()
        }),
        ("a misspelt outcome", |r| {
            r["outcomes"]["signed_in"] = 1.into()
        }),
        ("a shard of zero", |r| r["shard"]["count"] = 0.into()),
        ("a text timeline hour", |r| {
            r["timeline"][0]["hour"] = "1".into()
        }),
        ("another schema version", |r| r["schema_version"] = 1.into()),
    ];
    for (what, f) in broken {
        let mut report = good.clone();
        f(&mut report);
        assert!(!complaints(&report).is_empty(), "{what} passed the schema");
    }
}
