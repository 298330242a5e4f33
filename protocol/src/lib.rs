//! The otpfleet HTTP contract, v1: wire types (serde), error codes, state names, the route
//! table and the OpenAPI document.
//!
//! **Architecture invariant:** this crate does no IO. Everything here is data and the rules for
//! reading it, so the server, the emulator, the scenarios and the reports agree by construction.

mod admin;
mod console;
mod error;
mod otp;
mod routes;
mod states;

pub use admin::*;
pub use console::*;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use otp::{OTP_ALPHABET, OTP_LEN, OtpCode, OtpParseError};
pub use routes::{Auth, ROUTES, Route, RouteId};
pub use states::*;

/// The OpenAPI 3.1 document of the whole contract, served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The bounds the contract promises, shared so clients can stay inside them.
pub mod limits {
    /// OTP validity bounds, in hours (1 hour to 2 weeks).
    pub const VALIDITY_HOURS_MIN: u32 = 1;
    pub const VALIDITY_HOURS_MAX: u32 = 336;
    pub const VALIDITY_HOURS_DEFAULT: u32 = 8;
    /// Most rows one account import or one OTP batch may carry.
    pub const MAX_ROWS_PER_REQUEST: usize = 100_000;
    /// Most accounts or requests one page may list.
    pub const MAX_PAGE_LIMIT: usize = 1_000;
    pub const DEFAULT_PAGE_LIMIT: usize = 100;
    /// Longest accepted text field (upn, display name, make, model, password), in bytes.
    pub const MAX_FIELD_BYTES: usize = 256;
    /// Longest accepted serial number, in bytes.
    pub const MAX_SERIAL_BYTES: usize = 64;
}
