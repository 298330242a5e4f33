//! A server's complete answer to one request, as every client of the contract reads it.

use crate::transport::TransportError;
use bytes::Bytes;
use http_body_util::BodyExt;
use otpfleet_protocol::{ErrorBody, ErrorCode};
use tokio::time::Instant;

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// When the request actually left: a connection in hand (the wait for a pooled connection
    /// is over). From here to the answer is the service time; before it, generator lateness.
    pub sent: Instant,
}

impl Answer {
    /// Reads a whole response to a request sent at `sent`.
    pub async fn read<B>(
        response: http::Response<B>,
        sent: Instant,
    ) -> Result<Answer, TransportError>
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Display,
    {
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Io(e.to_string()))?
            .to_bytes();
        Ok(Answer { status, body, sent })
    }

    /// A 2xx answer.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as a contract type, or `None` if it does not parse.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The error body of an error answer, if it is the contract's.
    pub fn error_body(&self) -> Option<ErrorBody> {
        if self.ok() {
            return None;
        }
        self.parse()
    }

    /// The error code of an error answer (`Unknown` for anything not in the contract).
    pub fn error(&self) -> Option<ErrorCode> {
        if self.ok() {
            return None;
        }
        Some(self.error_body().map_or(ErrorCode::Unknown, |b| b.error))
    }

    /// The contract's error code of an error answer, or `status N` when it has none: how
    /// reports name a refusal.
    pub fn code(&self) -> String {
        match self.error() {
            Some(ErrorCode::Unknown) | None => format!("status {}", self.status),
            Some(code) => code.to_string(),
        }
    }

    /// What an error answer said, for a person: `code: message`, or `status N`.
    pub fn why(&self) -> String {
        self.error_body().map_or_else(
            || format!("status {}", self.status),
            |b| format!("{}: {}", b.error, b.message),
        )
    }
}
