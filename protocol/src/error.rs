//! Error codes and the error body: `{"error": "<code>", "message": "<sentence for a person>"}`.
//!
//! A code is stable (clients and tests match on it); the message is for a person and says what
//! to do next.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! error_codes {
    ($($variant:ident = $text:literal => $status:literal),+ $(,)?) => {
        /// Every error code of the contract with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($variant,)+
            /// A code this build does not know (another server's extension). Never sent.
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code this build sends.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The HTTP status that goes with this code.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)+ ErrorCode::Unknown => 500 }
            }

            /// The wire name of this code.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)+ ErrorCode::Unknown => "unknown" }
            }
        }
    };
}

error_codes! {
    // Envelope and input errors. The first three are answered before any route is chosen.
    MalformedRequest = "malformed_request" => 400,
    UriTooLong = "uri_too_long" => 414,
    HeadersTooLarge = "headers_too_large" => 431,
    Unauthorized = "unauthorized" => 401,
    RouteNotFound = "route_not_found" => 404,
    MethodNotAllowed = "method_not_allowed" => 405,
    RequestTimeout = "request_timeout" => 408,
    BodyTooLarge = "body_too_large" => 413,
    UnsupportedMediaType = "unsupported_media_type" => 415,
    InvalidJson = "invalid_json" => 400,
    InvalidCsv = "invalid_csv" => 400,
    InvalidQuery = "invalid_query" => 400,
    InvalidField = "invalid_field" => 400,
    // Admin side.
    AccountNotFound = "account_not_found" => 404,
    RepeatedUpn = "repeated_upn" => 422,
    BatchNotFound = "batch_not_found" => 404,
    ExportExpired = "export_expired" => 410,
    ValidityOutOfRange = "validity_out_of_range" => 422,
    RequestNotFound = "request_not_found" => 404,
    RequestNotPending = "request_not_pending" => 409,
    RequestChanged = "request_changed" => 412,
    AuditUnavailable = "audit_unavailable" => 409,
    // Console side.
    VerificationInfoNotFound = "verification_info_not_found" => 422,
    UncertifiedDevice = "uncertified_device" => 422,
    InvalidVerificationToken = "invalid_verification_token" => 422,
    MalformedOtp = "malformed_otp" => 400,
    InvalidOtp = "invalid_otp" => 422,
    OtpExpired = "otp_expired" => 422,
    OtpAlreadyUsed = "otp_already_used" => 409,
    TooManyAttempts = "too_many_attempts" => 429,
    SlowDown = "slow_down" => 429,
    RequestNotApproved = "request_not_approved" => 409,
    CredentialsAlreadyIssued = "credentials_already_issued" => 409,
    InvalidCredentials = "invalid_credentials" => 401,
    PasswordExpired = "password_expired" => 403,
    SignInBlocked = "sign_in_blocked" => 403,
    // Server side.
    ServerBusy = "server_busy" => 503,
    StorageUnavailable = "storage_unavailable" => 503,
    Internal = "internal" => 500,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// A sentence for a person: what is wrong and what to do about it.
    pub message: String,
    /// One entry per bad line or field when a request was refused for several reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// With `too_many_attempts`: seconds to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// With `slow_down`: the polling interval to use from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
}

/// One bad line or field of a refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// 1-based line of a CSV body, or 1-based element of a JSON array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}
