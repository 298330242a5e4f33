//! Keeps `protocol/openapi.json` honest: its paths, security, error codes, enums and object
//! shapes are compared with the Rust tables and wire types, so a change on either side that is
//! not made on the other fails here.

use otpfleet_protocol::limits::{
    DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, VALIDITY_HOURS_DEFAULT, VALIDITY_HOURS_MAX,
    VALIDITY_HOURS_MIN,
};
use otpfleet_protocol::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// Every operation of the document: (METHOD, path) -> operation object.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut ops = BTreeMap::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (key, op) in item {
            if METHODS.contains(&key.as_str()) {
                ops.insert((key.to_ascii_uppercase(), path.clone()), op.clone());
            }
        }
    }
    ops
}

fn operation<'d>(ops: &'d BTreeMap<(String, String), Value>, route: &Route) -> &'d Value {
    ops.get(&(route.method.to_owned(), route.path.to_owned()))
        .unwrap_or_else(|| panic!("no operation {} {}", route.method, route.path))
}

/// Follows a local `$ref` (`#/components/...`) to its target.
fn resolve<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// The value itself, or the target of its `$ref`.
fn deref<'d>(doc: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => deref(
            doc,
            resolve(doc, r).unwrap_or_else(|| panic!("{r} does not resolve")),
        ),
        None => value,
    }
}

fn schema<'d>(doc: &'d Value, name: &str) -> &'d Value {
    doc["components"]["schemas"]
        .get(name)
        .unwrap_or_else(|| panic!("no schema {name}"))
}

fn string_set<'a>(values: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[test]
fn paths_and_methods_are_the_route_table() {
    let doc = doc();
    let in_doc: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let in_routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = in_routes.difference(&in_doc).collect();
    let extra: Vec<_> = in_doc.difference(&in_routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from openapi.json: {missing:?}; not in ROUTES: {extra:?}"
    );
}

#[test]
fn operation_ids_are_the_route_ids() {
    let doc = doc();
    let ops = operations(&doc);
    for route in ROUTES {
        let want = lower_camel(&format!("{:?}", route.id));
        assert_eq!(
            operation(&ops, route)["operationId"].as_str(),
            Some(want.as_str()),
            "{} {}",
            route.method,
            route.path
        );
    }
}

#[test]
fn security_follows_the_route_auth() {
    let doc = doc();
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["adminToken", "pollToken"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    assert!(
        doc.get("security").is_none(),
        "security is set per operation, not globally"
    );
    let ops = operations(&doc);
    for route in ROUTES {
        let want = match route.auth {
            Auth::Admin => json!([{ "adminToken": [] }]),
            Auth::PollToken => json!([{ "pollToken": [] }]),
            Auth::None => json!([]),
        };
        let op = operation(&ops, route);
        assert_eq!(
            op.get("security"),
            Some(&want),
            "{} {} ({:?})",
            route.method,
            route.path,
            route.auth
        );
        // Every route that checks a token says what happens without one.
        if route.auth != Auth::None {
            let codes = error_codes_of(&doc, &op["responses"]["401"]);
            assert!(
                codes.contains("unauthorized"),
                "{} {} has no 401 unauthorized",
                route.method,
                route.path
            );
        }
    }
}

#[test]
fn error_schema_lists_every_error_code() {
    let doc = doc();
    let error = schema(&doc, "Error");
    let in_doc = string_set(
        error["properties"]["error"]["enum"]
            .as_array()
            .expect("Error.error has an enum"),
    );
    let in_rust: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let missing: Vec<_> = in_rust.difference(&in_doc).collect();
    let extra: Vec<_> = in_doc.difference(&in_rust).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "codes missing from the Error schema: {missing:?}; not in ErrorCode::ALL: {extra:?}"
    );
}

/// The codes an error response names in its schema's `error` enum.
fn error_codes_of(doc: &Value, response: &Value) -> BTreeSet<String> {
    let response = deref(doc, response);
    let mut codes = BTreeSet::new();
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return codes;
    };
    for media in content.values() {
        let schema = &media["schema"];
        let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
        for part in parts.iter().chain([schema]) {
            if let Some(values) = part["properties"]["error"]["enum"].as_array() {
                codes.extend(string_set(values));
            }
        }
    }
    codes
}

#[test]
fn error_responses_name_codes_of_their_status() {
    let doc = doc();
    let ops = operations(&doc);
    let mut used = BTreeSet::new();
    for ((method, path), op) in &ops {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let status: u16 = status.parse().expect("explicit status codes");
            let codes = error_codes_of(&doc, response);
            if status < 400 {
                assert!(codes.is_empty(), "{method} {path} {status} names codes");
                continue;
            }
            assert!(
                !codes.is_empty(),
                "{method} {path} {status}: an error response names its codes"
            );
            let schema = &deref(&doc, response)["content"]["application/json"]["schema"];
            let names_error = schema["$ref"] == "#/components/schemas/Error"
                || schema["allOf"][0]["$ref"] == "#/components/schemas/Error";
            assert!(names_error, "{method} {path} {status}: not an Error body");
            for code in codes {
                let known = ErrorCode::ALL
                    .iter()
                    .find(|c| c.as_str() == code)
                    .unwrap_or_else(|| panic!("{method} {path}: unknown code {code}"));
                assert_eq!(
                    known.status(),
                    status,
                    "{method} {path}: {code} is listed under {status}"
                );
                used.insert(code);
            }
        }
    }
    // Codes not tied to one operation: no route matched, or the server as a whole.
    let unattached = ["malformed_request", "route_not_found", "method_not_allowed"];
    for code in ErrorCode::ALL {
        assert!(
            used.contains(code.as_str()) || unattached.contains(&code.as_str()),
            "{code} is answered by no operation of openapi.json"
        );
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_to_a_component() {
    let doc = doc();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        assert!(
            r.starts_with("#/components/"),
            "{r} does not point into components"
        );
        assert!(resolve(&doc, r).is_some(), "{r} does not resolve");
    }
    // And every component is used somewhere.
    let used: BTreeSet<&str> = refs.iter().map(String::as_str).collect();
    for kind in ["schemas", "responses"] {
        for name in doc["components"][kind].as_object().expect(kind).keys() {
            let r = format!("#/components/{kind}/{name}");
            assert!(used.contains(r.as_str()), "{r} is never referenced");
        }
    }
}

fn wire_names<T: Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|v| match serde_json::to_value(v).expect("serializes") {
            Value::String(s) => s,
            other => panic!("not a string enum: {other}"),
        })
        .collect()
}

#[test]
fn enum_schemas_are_the_wire_enums() {
    let doc = doc();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("License", wire_names(License::ALL)),
        ("Readiness", wire_names(Readiness::ALL)),
        ("Provisioning", wire_names(Provisioning::ALL)),
        ("RequestStatus", wire_names(RequestStatus::ALL)),
        ("RejectReason", wire_names(RejectReason::ALL)),
        ("PasswordMode", wire_names(PasswordMode::ALL)),
        ("RefusalReason", wire_names(RefusalReason::ALL)),
        ("AuditAction", wire_names(AuditAction::ALL)),
        (
            "ImportAction",
            wire_names(&[ImportAction::Created, ImportAction::Updated]),
        ),
    ];
    for (name, want) in cases {
        let s = schema(&doc, name);
        assert_eq!(s["type"], "string", "{name}");
        let got: Vec<String> = s["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no enum"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

/// The object shape a schema describes: properties (merged over `allOf`), required names and
/// whether other properties are refused.
#[derive(Default)]
struct Shape {
    properties: BTreeMap<String, Value>,
    required: BTreeSet<String>,
    closed: bool,
}

fn shape(doc: &Value, schema: &Value) -> Shape {
    let schema = deref(doc, schema);
    let mut out = Shape::default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let inner = shape(doc, part);
        out.properties.extend(inner.properties);
        out.required.extend(inner.required);
    }
    if let Some(props) = schema["properties"].as_object() {
        out.properties
            .extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(required) = schema["required"].as_array() {
        out.required.extend(string_set(required));
    }
    out.closed = schema["additionalProperties"] == Value::Bool(false);
    out
}

/// The JSON type a property schema promises, following `$ref` and `allOf`.
fn json_type(doc: &Value, schema: &Value) -> Option<String> {
    let schema = deref(doc, schema);
    if let Some(t) = schema["type"].as_str() {
        return Some(t.to_owned());
    }
    // `["string", "null"]`: an optional field that may also be sent as null.
    if let Some(types) = schema["type"].as_array() {
        return types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_owned);
    }
    schema["allOf"]
        .as_array()?
        .iter()
        .find_map(|part| json_type(doc, part))
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks one wire type against its schema. `full` has every optional field set, `minimal`
/// none: the schema's properties are the fields of `full`, its required ones those of
/// `minimal` that deserialization cannot do without, and it is closed exactly when the type
/// refuses unknown fields.
fn check_shape<T: Serialize + DeserializeOwned>(doc: &Value, name: &str, full: &T, minimal: &T) {
    let s = shape(doc, schema(doc, name));
    let full = serde_json::to_value(full).expect("serializes");
    let full = full.as_object().expect("an object");
    let minimal = serde_json::to_value(minimal).expect("serializes");
    let minimal = minimal.as_object().expect("an object");

    let keys: BTreeSet<String> = full.keys().cloned().collect();
    let props: BTreeSet<String> = s.properties.keys().cloned().collect();
    assert_eq!(
        props, keys,
        "{name}: schema properties vs serialized fields"
    );

    let needed: BTreeSet<String> = full
        .keys()
        .filter(|k| {
            let mut without: Map<String, Value> = full.clone();
            without.remove(*k);
            serde_json::from_value::<T>(Value::Object(without)).is_err()
        })
        .cloned()
        .collect();
    assert_eq!(s.required, needed, "{name}: required vs fields serde needs");
    for key in &s.required {
        assert!(
            minimal.contains_key(key),
            "{name}.{key} is required but can be left out of an answer"
        );
    }
    for key in minimal.keys() {
        // `#[serde(default)]` fields that are always sent are optional only on input.
        let defaulted = s.properties[key].get("default").is_some();
        assert!(
            s.required.contains(key) || defaulted,
            "{name}.{key} is always sent but not required"
        );
    }

    let mut extended = full.clone();
    extended.insert("surely_not_a_field".into(), json!(1));
    let refuses_unknown = serde_json::from_value::<T>(Value::Object(extended)).is_err();
    assert_eq!(
        s.closed, refuses_unknown,
        "{name}: additionalProperties false vs deny_unknown_fields"
    );

    for (key, value) in full {
        let prop = &s.properties[key];
        let want = json_type(doc, prop)
            .unwrap_or_else(|| panic!("{name}.{key} has no type (directly or by $ref)"));
        assert_eq!(want, type_of(value), "{name}.{key}: schema type vs value");
        if key.ends_with("_at") {
            assert_eq!(
                deref(doc, prop)["format"],
                "date-time",
                "{name}.{key} is a timestamp"
            );
        }
    }
}

const TS: &str = "2026-11-21T22:13:51.123Z";

fn s(text: &str) -> String {
    text.to_owned()
}

fn summary() -> AccountSummary {
    AccountSummary {
        id: s("acc_1"),
        upn: s("room-101@contoso.com"),
        display_name: s("Room 101"),
        license: License::Pro,
        readiness: Readiness::NoActionNeeded,
        provisioning: Provisioning::OtpApproved,
    }
}

fn request_view(full: bool) -> RequestView {
    RequestView {
        id: s("req_40"),
        account_id: s("acc_1"),
        upn: s("room-101@contoso.com"),
        status: RequestStatus::Rejected,
        requested_at: s(TS),
        expires_at: s(TS),
        device: device(),
        etag: s("\"5be0c3a1d2f49e07\""),
        decided_at: full.then(|| s(TS)),
        reason: full.then_some(RejectReason::WrongRoom),
    }
}

fn device() -> Device {
    Device {
        make: s("Logitech"),
        model: s("Tap"),
        serial: s("2231LZ0ABC12"),
    }
}

fn refusal() -> Refusal {
    Refusal {
        account_id: s("acc_2"),
        upn: s("room-102@contoso.com"),
        reason: RefusalReason::BasicLicense,
        message: s("OTPs need a pro licence"),
    }
}

fn account_ref() -> AccountRef {
    AccountRef {
        account_id: s("acc_1"),
        upn: s("room-101@contoso.com"),
    }
}

fn issued() -> IssuedOtp {
    IssuedOtp {
        account_id: s("acc_1"),
        upn: s("room-101@contoso.com"),
        otp: s("BCDF-GHJK-LMNP-QRST"),
        expires_at: s(TS),
    }
}

fn account_input(full: bool) -> AccountInput {
    AccountInput {
        upn: s("room-101@contoso.com"),
        display_name: s("Room 101"),
        license: License::Pro,
        readiness: Readiness::NoActionNeeded,
        password: full.then(|| s("secret")),
    }
}

fn import_line() -> ImportLine {
    ImportLine {
        line: 1,
        upn: s("room-101@contoso.com"),
        account_id: s("acc_1"),
        action: ImportAction::Created,
    }
}

fn otp_tab(full: bool) -> OtpTab {
    OtpTab {
        batch_id: s("bat_3"),
        generated_at: s(TS),
        expires_at: s(TS),
        request: full.then(|| request_view(true)),
    }
}

fn audit_entry(full: bool) -> AuditEntry {
    AuditEntry {
        seq: 7,
        at: s(TS),
        action: AuditAction::RequestRejected,
        account_id: full.then(|| s("acc_1")),
        upn: full.then(|| s("room-101@contoso.com")),
        batch_id: full.then(|| s("bat_3")),
        request_id: full.then(|| s("req_40")),
        serial: full.then(|| s("2231LZ0ABC12")),
        reason: full.then_some(RejectReason::WrongRoom),
        with_passwords: full.then_some(false),
        auto_approved: full.then_some(true),
        preferences: full.then(Preferences::default),
        expired_at: full.then(|| s(TS)),
        token_id: full.then(|| s("tok_2")),
        token_name: full.then(|| s("ci")),
        by: full.then(|| s("tok_1")),
        hash: s("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    }
}

fn error_detail(full: bool) -> ErrorDetail {
    ErrorDetail {
        line: full.then_some(3),
        field: full.then(|| s("upn")),
        message: s("bad upn"),
    }
}

#[test]
fn object_schemas_are_the_wire_types() {
    let doc = doc();
    let d = &doc;

    check_shape(
        d,
        "AccountInput",
        &account_input(true),
        &account_input(false),
    );
    let import = ImportResult {
        created: 1,
        updated: 0,
        results: vec![import_line()],
    };
    check_shape(d, "ImportResult", &import, &import);
    check_shape(d, "ImportLine", &import_line(), &import_line());
    check_shape(d, "AccountSummary", &summary(), &summary());
    let page = |full: bool| AccountPage {
        accounts: vec![summary()],
        next_cursor: full.then(|| s("acc_1")),
    };
    check_shape(d, "AccountPage", &page(true), &page(false));
    let detail = |full: bool| AccountDetail {
        account: summary(),
        otp: full.then(|| otp_tab(true)),
    };
    check_shape(d, "AccountDetail", &detail(true), &detail(false));
    check_shape(d, "OtpTab", &otp_tab(true), &otp_tab(false));
    check_shape(d, "Device", &device(), &device());
    check_shape(d, "RequestView", &request_view(true), &request_view(false));
    let requests = |full: bool| RequestPage {
        requests: vec![request_view(true)],
        next_cursor: full.then(|| s("req_40")),
    };
    check_shape(d, "RequestPage", &requests(true), &requests(false));
    let batch = |full: bool| BatchRequest {
        account_ids: vec![s("acc_1")],
        password_mode: PasswordMode::FromCsv,
        sign_in_csv: full.then(|| s("upn,password\nroom-101@contoso.com,secret\n")),
        review_only: full,
    };
    check_shape(d, "BatchRequest", &batch(true), &batch(false));
    check_shape(d, "AccountRef", &account_ref(), &account_ref());
    check_shape(d, "Refusal", &refusal(), &refusal());
    let review = BatchReview {
        would_generate: vec![account_ref()],
        refused: vec![refusal()],
        expires_at: s(TS),
    };
    check_shape(d, "BatchReview", &review, &review);
    check_shape(d, "IssuedOtp", &issued(), &issued());
    let created = BatchCreated {
        batch_id: s("bat_3"),
        generated: vec![issued()],
        refused: vec![refusal()],
        export_expires_at: s(TS),
    };
    check_shape(d, "BatchCreated", &created, &created);
    let prefs = Preferences::default();
    check_shape(d, "Preferences", &prefs, &prefs);
    let bound = GuessingBound {
        live_otps: 10,
        failed_attempts_allowed: 4_800_000,
        code_space: 6.5536e20,
        success_probability: 7.3e-14,
    };
    check_shape(d, "GuessingBound", &bound, &bound);
    let view = PreferencesView {
        otp_validity_hours: 8,
        auto_approve: false,
        guessing_bound: bound,
    };
    check_shape(d, "PreferencesView", &view, &view);
    let reject = RejectBody {
        reason: RejectReason::Other,
    };
    check_shape(d, "RejectBody", &reject, &reject);
    check_shape(d, "AuditEntry", &audit_entry(true), &audit_entry(false));
    let audit = |full: bool| AuditPage {
        entries: vec![audit_entry(true)],
        next_cursor: full.then(|| s("7")),
    };
    check_shape(d, "AuditPage", &audit(true), &audit(false));

    let verify = VerifyRequest {
        make: s("Logitech"),
        model: s("Tap"),
        serial: s("2231LZ0ABC12"),
        hdmi_ingest: true,
    };
    check_shape(d, "VerifyRequest", &verify, &verify);
    let verified = VerifyResponse {
        verification_token: s("token"),
        expires_at: s(TS),
    };
    check_shape(d, "VerifyResponse", &verified, &verified);
    let redeem = RedeemRequest {
        otp: s("BCDF-GHJK-LMNP-QRST"),
        verification_token: s("token"),
    };
    check_shape(d, "RedeemRequest", &redeem, &redeem);
    let redeemed = RedeemResponse {
        request_id: s("req_40"),
        poll_token: s("poll"),
        status: RequestStatus::AwaitingApproval,
        interval_s: 5,
    };
    check_shape(d, "RedeemResponse", &redeemed, &redeemed);
    let poll = |full: bool| PollResponse {
        status: RequestStatus::Rejected,
        reason: full.then_some(RejectReason::Other),
        interval_s: 5,
    };
    check_shape(d, "PollResponse", &poll(true), &poll(false));
    let credentials = Credentials {
        upn: s("room-101@contoso.com"),
        display_name: s("Room 101"),
        password: s("secret"),
    };
    check_shape(d, "Credentials", &credentials, &credentials);
    let manual = ManualSignInRequest {
        email: s("room-101@contoso.com"),
        password: s("secret"),
        verification_token: s("token"),
    };
    check_shape(d, "ManualSignInRequest", &manual, &manual);
    let signed_in = ManualSignInResponse {
        account_id: s("acc_1"),
        upn: s("room-101@contoso.com"),
        status: RequestStatus::SignedIn,
    };
    check_shape(d, "ManualSignInResponse", &signed_in, &signed_in);
    let health = Health {
        status: s("ok"),
        version: s("1.0.0"),
    };
    check_shape(d, "Health", &health, &health);

    let error = |full: bool| ErrorBody {
        error: ErrorCode::SlowDown,
        message: s("polled too fast"),
        details: if full {
            vec![error_detail(true)]
        } else {
            vec![]
        },
        retry_after_s: full.then_some(30),
        interval_s: full.then_some(10),
    };
    check_shape(d, "Error", &error(true), &error(false));
    check_shape(d, "ErrorDetail", &error_detail(true), &error_detail(false));
}

fn parameter<'d>(doc: &'d Value, op: &'d Value, name: &str) -> &'d Value {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| deref(doc, p))
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

#[test]
fn bounds_are_the_contract_limits() {
    let doc = doc();
    let validity = &schema(&doc, "Preferences")["properties"]["otp_validity_hours"];
    assert_eq!(validity["minimum"], json!(VALIDITY_HOURS_MIN));
    assert_eq!(validity["maximum"], json!(VALIDITY_HOURS_MAX));
    assert_eq!(validity["default"], json!(VALIDITY_HOURS_DEFAULT));
    let auto = &schema(&doc, "Preferences")["properties"]["auto_approve"];
    assert_eq!(auto["default"], json!(Preferences::default().auto_approve));

    let ops = operations(&doc);
    for id in [
        RouteId::ListAccounts,
        RouteId::ListRequests,
        RouteId::ListAudit,
    ] {
        let op = operation(&ops, id.route());
        let limit = &parameter(&doc, op, "limit")["schema"];
        assert_eq!(limit["minimum"], json!(1), "{id:?}");
        assert_eq!(limit["maximum"], json!(MAX_PAGE_LIMIT), "{id:?}");
        assert_eq!(limit["default"], json!(DEFAULT_PAGE_LIMIT), "{id:?}");
        let cursor = parameter(&doc, op, "cursor");
        assert_eq!(cursor["in"], "query", "{id:?}");
        assert_eq!(cursor["schema"]["type"], "string", "{id:?}");
    }

    // Every route with `{id}` in its path declares it.
    for route in ROUTES.iter().filter(|r| r.path.contains("{id}")) {
        let id = parameter(&doc, operation(&ops, route), "id");
        assert_eq!(id["in"], "path", "{:?}", route.id);
        assert_eq!(id["required"], true, "{:?}", route.id);
    }

    let alphabet = std::str::from_utf8(OTP_ALPHABET).expect("ASCII");
    let otp = &schema(&doc, "RedeemRequest")["properties"]["otp"];
    let description = otp["description"].as_str().expect("described");
    assert!(description.contains(alphabet), "{description}");
    assert!(description.contains(&OTP_LEN.to_string()), "{description}");
    let shown = &schema(&doc, "IssuedOtp")["properties"]["otp"]["pattern"];
    assert!(
        shown.as_str().expect("a pattern").contains(alphabet),
        "{shown}"
    );
}
