//! Admin routes need the admin token and reveal nothing without it; the server answers exactly
//! the routes the OpenAPI document lists.

use crate::helpers::*;
use http::{Method, StatusCode};
use otpfleet_protocol::OPENAPI_JSON;
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// (method, path with `{id}` filled in, security scheme names) for every operation.
fn documented_operations() -> Vec<(Method, String, Vec<String>)> {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("the OpenAPI document parses");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !METHODS.contains(&m.as_str()) {
                continue;
            }
            let schemes = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .filter_map(|r| r.as_object())
                        .flat_map(|r| r.keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            ops.push((m, path.replace("{id}", "acc_1"), schemes));
        }
    }
    assert!(ops.len() >= 18, "the document lists every route");
    ops
}

#[tokio::test]
async fn every_admin_route_in_the_document_answers_401_without_the_token() {
    let app = TestApp::spawn().await;
    let ids = app.import_rooms(1).await;
    app.generate_otps(&ids).await;
    let mut admin_routes = 0;
    for (method, path, schemes) in documented_operations() {
        if !schemes.iter().any(|s| s == "adminToken") {
            continue;
        }
        admin_routes += 1;
        for token in [None, Some("wrong-token"), Some("")] {
            let a = app
                .send(method.clone(), &path, token, Some("application/json"), "{}")
                .await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(a.error_code(), "unauthorized");
            assert_eq!(a.headers["www-authenticate"], "Bearer");
            assert!(
                !a.text.contains("acc_1") && !a.text.contains("room-0"),
                "no hints: {}",
                a.text
            );
        }
    }
    assert_eq!(admin_routes, 11);
}

#[tokio::test]
async fn the_server_answers_exactly_the_documented_routes() {
    let app = TestApp::spawn().await;
    let ops = documented_operations();
    for (method, path, _) in &ops {
        let a = app
            .send(
                method.clone(),
                path,
                Some(TOKEN),
                Some("application/json"),
                "{}",
            )
            .await;
        assert!(
            !matches!(a.error_code(), "route_not_found" | "method_not_allowed"),
            "{method} {path} is documented but not served: {}",
            a.text
        );
        for other in METHODS {
            if ops.iter().any(|(m, p, _)| p == path && m.as_str() == other) {
                continue;
            }
            let a = app
                .send(other.parse().unwrap(), path, Some(TOKEN), None, "")
                .await;
            assert_eq!(
                a.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path} is not documented"
            );
        }
    }
    let a = app
        .send(Method::GET, "/v1/nothing-here", Some(TOKEN), None, "")
        .await;
    assert_eq!(a.error_code(), "route_not_found");
    let a = app.send(Method::GET, "/openapi.json", None, None, "").await;
    assert_eq!(a.text, OPENAPI_JSON);
}
