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
pub use routes::{Auth, ROUTES, Route, RouteId, VERSION_PREFIX, lookup};
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
    /// Longest accepted text field (upn, display name, make, model, password), in characters
    /// (as JSON Schema's `maxLength` counts them).
    pub const MAX_FIELD_CHARS: usize = 256;
    /// Longest accepted serial number, in bytes (ASCII only, so characters too).
    pub const MAX_SERIAL_BYTES: usize = 64;
}

/// An integer field that also takes a number with no fraction (`336.0`): JSON Schema counts
/// that as the integer 336, so a client generating JSON from the schema may send it.
fn integral_u32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    struct Integral;
    impl serde::de::Visitor<'_> for Integral {
        type Value = u32;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number from 0 to 4294967295")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u32, E> {
            let whole = v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v);
            if whole {
                // Exact: a whole number in u32's range.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(v as u32)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(Integral)
}

#[cfg(test)]
mod tests {
    #[test]
    fn integer_fields_take_whole_numbers_written_as_floats() {
        let prefs = |json: &str| serde_json::from_str::<super::Preferences>(json);
        let p = prefs(r#"{"otp_validity_hours": 336.0, "auto_approve": false}"#).unwrap();
        assert_eq!(p.otp_validity_hours, 336);
        assert_eq!(
            prefs(r#"{"otp_validity_hours": 8e0, "auto_approve": false}"#)
                .unwrap()
                .otp_validity_hours,
            8
        );
        for bad in ["8.5", "-1", "1e20", "\"8\"", "null"] {
            let json = format!(r#"{{"otp_validity_hours": {bad}, "auto_approve": false}}"#);
            assert!(
                prefs(&json).is_err(),
                "{bad} is not a whole number of hours"
            );
        }
    }
}
