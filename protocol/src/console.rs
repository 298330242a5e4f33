//! Wire types of the console routes (the first-boot flow).

use crate::states::RequestStatus;
use serde::{Deserialize, Serialize};

/// `POST /v1/console/verify`: the console's verification data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub make: String,
    pub model: String,
    pub serial: String,
    /// Whether the HDMI ingest module is connected. Without it verification information is
    /// not found.
    pub hdmi_ingest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    pub verification_token: String,
    pub expires_at: String,
}

/// `POST /v1/console/redeem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub otp: String,
    pub verification_token: String,
}

/// The answer to a redemption (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemResponse {
    pub request_id: String,
    /// The bearer token for polling and sign-in of this request.
    pub poll_token: String,
    /// `awaiting_approval`, or `approved` with auto approval.
    pub status: RequestStatus,
    /// Poll no faster than this.
    pub interval_s: u32,
}

/// The answer to `GET /v1/console/requests/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResponse {
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::RejectReason>,
    pub interval_s: u32,
}

/// The credentials, handed to the console once (`POST /v1/console/requests/{id}/sign-in`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub upn: String,
    pub display_name: String,
    pub password: String,
}

/// `POST /v1/console/manual-sign-in`: the account's email (upn) and password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualSignInRequest {
    pub email: String,
    pub password: String,
    pub verification_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualSignInResponse {
    pub account_id: String,
    pub upn: String,
    pub status: RequestStatus,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}
