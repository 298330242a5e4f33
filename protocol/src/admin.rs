//! Wire types of the admin routes. Request types refuse unknown fields, so a typo in a field
//! name is an error that names the field instead of a silently ignored setting.

use crate::states::*;
use serde::{Deserialize, Serialize};

/// One account to create or update (`POST /v1/accounts`, JSON array element or CSV line
/// `upn,display_name,license,readiness`). Accounts are keyed by `upn`, case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    pub upn: String,
    pub display_name: String,
    pub license: License,
    pub readiness: Readiness,
    /// The account's current password (JSON only), so manual sign-in works before any OTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What the import did with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportAction {
    Created,
    Updated,
}

/// The answer to `POST /v1/accounts`: one result per input line, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResult {
    pub created: usize,
    pub updated: usize,
    pub results: Vec<ImportLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportLine {
    /// 1-based line (CSV) or element (JSON).
    pub line: usize,
    pub upn: String,
    pub account_id: String,
    pub action: ImportAction,
}

/// A resource account as listed (`GET /v1/accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub license: License,
    pub readiness: Readiness,
    pub provisioning: Provisioning,
}

/// One page of accounts; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPage {
    pub accounts: Vec<AccountSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One account with its OTP tab (`GET /v1/accounts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetail {
    #[serde(flatten)]
    pub account: AccountSummary,
    /// The current OTP, if one was generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp: Option<OtpTab>,
}

/// The OTP tab of an account: when it was generated and expires, and the console's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpTab {
    pub batch_id: String,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView>,
}

/// The console that redeemed an OTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub make: String,
    pub model: String,
    pub serial: String,
}

/// A console's sign-in request as the admin sees it (approval queue, OTP tab, decisions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub account_id: String,
    pub upn: String,
    pub status: RequestStatus,
    pub requested_at: String,
    pub expires_at: String,
    pub device: Device,
    /// What the admin vets (the account, the console's make, model and serial, when it
    /// asked), as an entity tag: sent in `If-Match` with a decision, it makes the server refuse
    /// (412 `request_changed`) a decision about anything else.
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// One page of requests (`GET /v1/requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPage {
    pub requests: Vec<RequestView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/otp-batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub account_ids: Vec<String>,
    pub password_mode: PasswordMode,
    /// With `from_csv`: `upn,password` lines (a header line is optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_csv: Option<String>,
    /// A dry run: answer what would be generated and refused, change nothing.
    #[serde(default)]
    pub review_only: bool,
}

/// An account as named in a batch answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRef {
    pub account_id: String,
    pub upn: String,
}

/// An account left out of a batch, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub account_id: String,
    pub upn: String,
    pub reason: RefusalReason,
    pub message: String,
}

/// The answer to a `review_only` batch request (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReview {
    pub would_generate: Vec<AccountRef>,
    pub refused: Vec<Refusal>,
    /// When OTPs generated now would expire.
    pub expires_at: String,
}

/// One generated OTP. The plaintext appears here and in the export, nowhere else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedOtp {
    pub account_id: String,
    pub upn: String,
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub otp: String,
    pub expires_at: String,
}

/// The answer to a generating batch request (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCreated {
    pub batch_id: String,
    pub generated: Vec<IssuedOtp>,
    pub refused: Vec<Refusal>,
    /// The export can be downloaded until then; afterwards its plaintext is purged.
    pub export_expires_at: String,
}

/// `GET/PUT /v1/preferences`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// OTP validity from generation, 1 to 336 hours.
    #[serde(deserialize_with = "crate::integral_u32")]
    pub otp_validity_hours: u32,
    /// Approve a redeemed OTP at once.
    pub auto_approve: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            otp_validity_hours: crate::limits::VALIDITY_HOURS_DEFAULT,
            auto_approve: false,
        }
    }
}

/// The answer of `GET` and `PUT /v1/preferences`: the preferences and the guessing bound they
/// imply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PreferencesView {
    pub otp_validity_hours: u32,
    pub auto_approve: bool,
    pub guessing_bound: GuessingBound,
}

/// How likely an attacker is to hit a live OTP by guessing, with the current settings: at most
/// `live_otps * failed_attempts_allowed / code_space` over one validity period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuessingBound {
    /// OTPs generated and neither redeemed nor expired.
    pub live_otps: u64,
    /// Failed redemptions the server lets through, from all sources, in one validity period.
    pub failed_attempts_allowed: u64,
    /// Possible OTPs: 20^16.
    pub code_space: f64,
    /// The bound on the chance that any guess redeems a live OTP.
    pub success_probability: f64,
}

/// `POST /v1/requests/{id}/reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: RejectReason,
}

/// One entry of the audit log (`GET /v1/audit`). Which optional fields are present depends on
/// the action; none ever holds an OTP, a password or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the server recorded it (RFC 3339, UTC).
    pub at: String,
    pub action: AuditAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The console's serial number (redemption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// With `request_rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// With `batch_exported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_passwords: Option<bool>,
    /// With `otp_redeemed`: whether auto approval decided the request at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approved: Option<bool>,
    /// With `preferences_changed`: the new preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Preferences>,
    /// With `otp_expired`: when the OTP expired (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// With the token actions: the token's id and name (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    /// Who made the change: the admin token's id (`tok_<n>`), `token-file` (the server's
    /// `--admin-token-file`) or `run-token` (the token a server made for one run). Absent for
    /// what consoles and the server itself did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The entry's link in the hash chain (hex SHA-256 over the previous link and the
    /// journaled record); the last entry's `hash` is what `otpfleet audit verify` prints.
    pub hash: String,
}

/// One page of the audit log, oldest first (`GET /v1/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// First characters that make a spreadsheet read a CSV cell as a formula (OWASP, "CSV
/// Injection"): `=`, `+`, `-`, `@`, tab and carriage return.
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A value as a batch export's cell holds it: one that would start a formula gets a leading
/// `'`, which spreadsheets take as "this is text" (the export also quotes every cell). The `'`
/// is not part of the value; [`export_value`] takes it off.
pub fn export_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// The value a batch export's cell stands for (the inverse of [`export_cell`]).
pub fn export_value(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod export_tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_read_back() {
        for value in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let cell = export_cell(value);
            assert!(cell.starts_with('\''), "{value:?}");
            assert_eq!(export_value(&cell), value);
        }
        for value in ["room-1@contoso.com", "Room 1", "'quoted", "a=b"] {
            assert_eq!(export_cell(value), value);
            assert_eq!(export_value(value), value);
        }
    }
}
