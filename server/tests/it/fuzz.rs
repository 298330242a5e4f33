//! No input makes the server panic or answer 5xx: random bodies, headers, paths and queries
//! go through the real handler in process (proptest; `PROPTEST_CASES` scales the run).

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use otpfleet_protocol::ROUTES;
use otpfleet_server::domain::secrets::Secrets;
use otpfleet_server::http::AdminTokens;
use otpfleet_server::{App, Catalogue, Core, ManualClock, ServerConfig, handle};
use proptest::prelude::*;
use std::sync::Arc;

fn app() -> App {
    let core = Core::new(
        ServerConfig::default(),
        Catalogue::builtin(),
        Secrets::random(),
    );
    App::new(
        core,
        None,
        Arc::new(ManualClock::new(crate::helpers::START_MS)),
        AdminTokens::new([crate::helpers::TOKEN]),
    )
}

/// Bodies that look like what the routes take, mutated, plus plain noise.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let json_like = prop::collection::vec(
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "null",
            "true",
            "1e999",
            "-1",
            "\"upn\"",
            "\"otp\"",
            "\"license\"",
            "\"pro\"",
            "\"account_ids\"",
            "\"acc_1\"",
            "\"reason\"",
            "\"make\"",
            "\"Logitech\"",
            "\"Tap\"",
            "\"hdmi_ingest\"",
            "\"otp_validity_hours\"",
            "\"\\u0000\"",
            "\"BCDF-GHJK-LMNP-QRST\"",
            "\"password_mode\"",
            "\"from_csv\"",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat().into_bytes());
    let csv_like = prop::collection::vec("[a-z@.,\"\n\r -]{0,12}", 0..20)
        .prop_map(|p| p.concat().into_bytes());
    prop_oneof![
        json_like,
        csv_like,
        prop::collection::vec(any::<u8>(), 0..512)
    ]
}

fn request(
    route: usize,
    id: String,
    query: String,
    ct: Option<String>,
    auth: u8,
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let r = &ROUTES[route % ROUTES.len()];
    let path = r.path.replace("{id}", &id);
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut req = Request::builder().method(r.method.parse::<Method>().unwrap_or(Method::GET));
    if let Some(uri) = Some(uri).filter(|u| u.parse::<http::Uri>().is_ok()) {
        req = req.uri(uri);
    } else {
        req = req.uri(r.path.replace("{id}", "x"));
    }
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    match auth % 3 {
        0 => req = req.header("authorization", format!("Bearer {}", crate::helpers::TOKEN)),
        1 => req = req.header("authorization", "Bearer zzz"),
        _ => {}
    }
    req.body(Full::new(Bytes::from(body))).expect("a request")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000), ..ProptestConfig::default() })]

    #[test]
    fn no_input_gets_a_5xx(
        route in 0..ROUTES.len(),
        id in prop_oneof![Just("acc_1".to_owned()), Just("req_1".to_owned()), "[a-z_0-9%]{0,12}"],
        query in "[a-z_=&%0-9]{0,30}",
        ct in prop::option::of(prop::sample::select(vec!["application/json".to_owned(), "text/csv".to_owned(), "text/plain".to_owned(), "application/x+json".to_owned(), ";;;".to_owned(), "APPLICATION/JSON; charset=utf-8".to_owned()])),
        auth in any::<u8>(),
        body in body(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let app = app();
        let reply = rt.block_on(async {
            // Some state for the handlers to trip over: one account with an OTP.
            let seed = request(0, String::new(), String::new(), Some("text/csv".into()), 0,
                b"room@contoso.com,Room,pro,no_action_needed".to_vec());
            handle(&app, seed).await;
            handle(&app, request(route, id, query, ct, auth, body)).await
        });
        prop_assert!(reply.status().as_u16() < 500, "{}", reply.status());
    }
}
