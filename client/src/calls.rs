//! The contract's calls, typed: each builds the request of one route, its method and path taken
//! from `protocol`'s route table (no path is written anywhere else), with the body and token the
//! route wants. Sending is the transport's business.

use crate::transport::ApiRequest;
use bytes::Bytes;
use http::Method;
use otpfleet_protocol::{
    AccountInput, BatchRequest, ManualSignInRequest, Preferences, RedeemRequest, RejectBody,
    RejectReason, RequestView, RouteId, VerifyRequest,
};

/// The request of `route` (for the resource `id`, when its path has one), without a body.
fn to(route: RouteId, id: Option<&str>) -> ApiRequest {
    let entry = route.route();
    ApiRequest {
        route: Some(route),
        method: Method::from_bytes(entry.method.as_bytes())
            .expect("the route table's methods are HTTP methods"),
        path: id.map_or_else(|| entry.path.to_owned(), |id| route.path_for(id)),
        bearer: None,
        if_match: None,
        content_type: None,
        body: Bytes::new(),
    }
}

/// The request of `route` with `body` as JSON.
fn with_json(route: RouteId, id: Option<&str>, body: &impl serde::Serialize) -> ApiRequest {
    let bare = to(route, id);
    ApiRequest {
        route: Some(route),
        method: bare.method,
        ..ApiRequest::post_json(bare.path, body)
    }
}

/// `POST /v1/console/verify`: the console's device verification.
pub fn verify(body: &VerifyRequest) -> ApiRequest {
    with_json(RouteId::Verify, None, body)
}

/// `POST /v1/console/redeem`: the OTP typed.
pub fn redeem(body: &RedeemRequest) -> ApiRequest {
    with_json(RouteId::Redeem, None, body)
}

/// `POST /v1/console/manual-sign-in`: the account's email and password typed instead.
pub fn manual_sign_in(body: &ManualSignInRequest) -> ApiRequest {
    with_json(RouteId::ManualSignIn, None, body)
}

/// `GET /v1/console/requests/{id}` with the request's poll token.
pub fn poll(request_id: &str, poll_token: &str) -> ApiRequest {
    to(RouteId::Poll, Some(request_id)).with_bearer(poll_token)
}

/// `POST /v1/console/requests/{id}/sign-in` with the request's poll token.
pub fn sign_in(request_id: &str, poll_token: &str) -> ApiRequest {
    to(RouteId::SignIn, Some(request_id)).with_bearer(poll_token)
}

/// `GET /v1/requests?status=awaiting_approval&limit=N`: the oldest requests an admin can decide.
pub fn awaiting_approval(limit: usize, admin_token: &str) -> ApiRequest {
    let mut req = to(RouteId::ListRequests, None).with_bearer(admin_token);
    req.path = format!("{}?status=awaiting_approval&limit={limit}", req.path);
    req
}

/// `POST /v1/requests/{id}/approve` of `request` as the admin saw it: its tag goes in
/// `If-Match`, so the approval cannot land on anything else under that id.
pub fn approve(request: &RequestView, admin_token: &str) -> ApiRequest {
    to(RouteId::ApproveRequest, Some(&request.id))
        .with_bearer(admin_token)
        .with_if_match(&request.etag)
}

/// `POST /v1/requests/{id}/reject` of `request` as the admin saw it, with a reason.
pub fn reject(request: &RequestView, reason: RejectReason, admin_token: &str) -> ApiRequest {
    let body = RejectBody { reason };
    with_json(RouteId::RejectRequest, Some(&request.id), &body)
        .with_bearer(admin_token)
        .with_if_match(&request.etag)
}

/// `POST /v1/accounts`: an import.
pub fn import_accounts(accounts: &[AccountInput], admin_token: &str) -> ApiRequest {
    with_json(RouteId::ImportAccounts, None, &accounts).with_bearer(admin_token)
}

/// `POST /v1/otp-batches`: the wizard's review (`review_only`) or generation.
pub fn create_batch(body: &BatchRequest, admin_token: &str) -> ApiRequest {
    with_json(RouteId::CreateBatch, None, body).with_bearer(admin_token)
}

/// `GET /v1/otp-batches/{id}/export`, with or without the accounts' passwords.
pub fn export_batch(batch_id: &str, include_passwords: bool, admin_token: &str) -> ApiRequest {
    let mut req = to(RouteId::ExportBatch, Some(batch_id)).with_bearer(admin_token);
    req.path = format!("{}?include_passwords={include_passwords}", req.path);
    req
}

/// `GET /v1/preferences`.
pub fn get_preferences(admin_token: &str) -> ApiRequest {
    to(RouteId::GetPreferences, None).with_bearer(admin_token)
}

/// `PUT /v1/preferences`.
pub fn put_preferences(prefs: Preferences, admin_token: &str) -> ApiRequest {
    with_json(RouteId::PutPreferences, None, &prefs).with_bearer(admin_token)
}

/// `GET /metrics` with the admin token (which adds what the accounts hold: the approval
/// queue's depth among them).
pub fn metrics(admin_token: &str) -> ApiRequest {
    to(RouteId::Metrics, None).with_bearer(admin_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_take_method_and_path_from_the_route_table() {
        let put = put_preferences(
            Preferences {
                otp_validity_hours: 24,
                auto_approve: false,
            },
            "t",
        );
        assert_eq!(put.method, Method::PUT);
        assert_eq!(put.path, RouteId::PutPreferences.path());
        assert_eq!(put.content_type, Some("application/json"));
        let vetted: RequestView = serde_json::from_value(serde_json::json!({
            "id": "req_7", "account_id": "acc_1", "upn": "room@r.test",
            "status": "awaiting_approval", "requested_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z", "etag": "\"tag7\"",
            "device": {"make": "Logitech", "model": "Tap", "serial": "LT1"}
        }))
        .unwrap();
        let approve = approve(&vetted, "t");
        assert_eq!(approve.method, Method::POST);
        assert_eq!(approve.path, RouteId::ApproveRequest.path_for("req_7"));
        assert!(approve.body.is_empty());
        assert_eq!(
            approve.if_match.as_deref(),
            Some("\"tag7\""),
            "names what was vetted"
        );
        let reject = reject(&vetted, RejectReason::WrongRoom, "t");
        assert_eq!(reject.if_match.as_deref(), Some("\"tag7\""));
        assert_eq!(
            awaiting_approval(50, "t").path,
            format!(
                "{}?status=awaiting_approval&limit=50",
                RouteId::ListRequests.path()
            )
        );
        assert_eq!(poll("req_1", "p").bearer.as_deref(), Some("p"));
    }
}
