//! The OpenAPI document and the server agree on what text they take: for random strings made of
//! the characters that trip rules up (spaces of every kind, controls, invisible and
//! direction-changing characters, compatibility forms of `@`, `.` and spaces, commas, quotes),
//! a value matches the document's schema exactly when the server accepts it. Checked with the
//! JSON Schema validator a client would use, not with our own reading of the patterns.

use otpfleet_protocol::{OPENAPI_JSON, VerifyRequest};
use otpfleet_server::Core;
use otpfleet_server::domain::accounts::{check_text, check_upn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const TRICKY: &[&str] = &[
    "a", "Z", "0", "é", "e\u{301}", "ß", "ａ", "½", ".", "@", "-", "_", ",", "\"", "'", " ", "\t",
    "\u{a0}", "\u{85}", "\u{7}", "\u{9f}", "\u{b4}", "\u{2024}", "\u{2025}", "\u{ff20}",
    "\u{fe6b}", "\u{ff0e}", "\u{200b}", "\u{202e}", "\u{2060}", "\u{feff}", "\u{3000}", "\u{fdfa}",
    "😀", "中",
];

/// A schema of the document, its `$ref`s left out (the text rules have none).
fn schema_at(pointer: &str) -> jsonschema::Validator {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    let schema = doc.pointer(pointer).unwrap_or_else(|| panic!("{pointer}"));
    jsonschema::draft202012::new(schema).unwrap()
}

/// Random strings: short mixes of the tricky characters, and valid-looking values with one or
/// two of them put in.
fn samples(seed: u64, base: &str, n: usize) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let pick = |rng: &mut ChaCha8Rng| TRICKY[rng.random_range(0..TRICKY.len())];
        if i % 2 == 0 {
            let len = rng.random_range(0..10);
            out.push((0..len).map(|_| pick(&mut rng)).collect());
        } else {
            let mut s: Vec<String> = base.chars().map(String::from).collect();
            for _ in 0..rng.random_range(1..3) {
                let at = rng.random_range(0..=s.len());
                s.insert(at, pick(&mut rng).to_owned());
            }
            out.push(s.concat());
        }
    }
    out
}

/// Asserts the schema matches exactly the values the server accepts.
fn assert_agree(schema: &jsonschema::Validator, values: &[String], server: impl Fn(&str) -> bool) {
    // Both answers occur (at least 1 in 100), or the comparison shows nothing.
    let accepted = values.iter().filter(|v| server(v)).count();
    assert!(
        accepted > values.len() / 100 && accepted < values.len() * 99 / 100,
        "{accepted} of {} accepted",
        values.len()
    );
    let wrong: Vec<String> = values
        .iter()
        .filter(|v| schema.is_valid(&Value::String((*v).clone())) != server(v))
        .map(|v| {
            format!(
                "{v:?}: document {}",
                schema.is_valid(&Value::String(v.clone()))
            )
        })
        .collect();
    let shown = &wrong[..wrong.len().min(10)];
    assert!(wrong.is_empty(), "{} disagree: {shown:?}", wrong.len());
}

#[test]
fn upn_pattern_is_the_servers_rule() {
    let schema = schema_at("/components/schemas/AccountInput/properties/upn");
    let values = samples(1, "room-101@contoso.com", 20_000);
    assert_agree(&schema, &values, |v| check_upn(v).is_ok());
}

#[test]
fn free_text_pattern_is_the_servers_rule() {
    let schema = schema_at("/components/schemas/AccountInput/properties/display_name");
    let mut values = samples(2, "Room 101", 20_000);
    values.push("x".repeat(256));
    values.push("é".repeat(257));
    assert_agree(&schema, &values, |v| check_text("display_name", v).is_ok());
}

#[test]
fn serial_pattern_is_the_servers_rule() {
    let schema = schema_at("/components/schemas/VerifyRequest/properties/serial");
    let core = Core::with_defaults();
    let mut values = samples(3, "2231LZ0A1B2C", 20_000);
    values.push("A".repeat(64));
    values.push("A".repeat(65));
    assert_agree(&schema, &values, |serial| {
        let req = VerifyRequest {
            make: "Logitech".into(),
            model: "Tap".into(),
            serial: serial.into(),
            hdmi_ingest: true,
        };
        core.verify(&req, 0).is_ok()
    });
}
