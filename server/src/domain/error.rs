//! The domain's error: a stable code from the contract plus a message for a person.

use otpfleet_protocol::{ErrorBody, ErrorCode, ErrorDetail};
use std::fmt;

/// A refused operation. Every refusal changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<ErrorDetail>,
    pub retry_after_s: Option<u64>,
    pub interval_s: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after_s: None,
            interval_s: None,
        }
    }

    /// A refusal naming every bad line or field.
    pub fn with_details(mut self, details: Vec<ErrorDetail>) -> ApiError {
        self.details = details;
        self
    }

    pub fn with_interval(mut self, interval_s: u32) -> ApiError {
        self.interval_s = Some(interval_s);
        self
    }

    pub fn with_retry_after(mut self, retry_after_s: u64) -> ApiError {
        self.retry_after_s = Some(retry_after_s);
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: self.code,
            message: self.message,
            details: self.details,
            retry_after_s: self.retry_after_s,
            interval_s: self.interval_s,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// One bad line (1-based) with what is wrong with it.
pub fn line_detail(line: usize, field: Option<&str>, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        line: Some(line),
        field: field.map(str::to_owned),
        message: message.into(),
    }
}
