//! Reading request bodies (bounded) and writing responses.

use crate::domain::ApiError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use otpfleet_protocol::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub type Reply = Response<Full<Bytes>>;

/// The media type of a request body, as far as the contract cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    Csv,
}

/// Reads the whole body, refusing anything past `max_bytes` with 413.
pub async fn read<B>(body: B, max_bytes: usize) -> Result<Bytes, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(max_bytes)),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("the request body could not be read: {e}"),
        )),
    }
}

pub fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        format!("the body is larger than {max_bytes} bytes; send less per request"),
    )
}

/// The media type named by `Content-Type`; a missing header counts as JSON.
pub fn media(content_type: Option<&HeaderValue>, csv_allowed: bool) -> Result<Media, ApiError> {
    let Some(value) = content_type else {
        return Ok(Media::Json);
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Media::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(Media::Json),
        "text/csv" if csv_allowed => Ok(Media::Csv),
        other => {
            let accepted = if csv_allowed {
                "application/json or text/csv"
            } else {
                "application/json"
            };
            Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("Content-Type {other:?} is not accepted here; send {accepted}"),
            ))
        }
    }
}

/// Parses a JSON body into a request type; serde's message names the field and position.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        // serde_json reports some mismatches (a null where an enum belongs) as syntax errors:
        // the body is named invalid JSON only if it is.
        let valid = e.is_data() || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        let message = match (valid, e.is_data()) {
            (true, true) => format!("the body does not match the contract: {e}"),
            (true, false) => format!(
                "the body does not match the contract: the value at line {} column {} is not \
                 of the kind its field takes (GET /openapi.json has the schema)",
                e.line(),
                e.column()
            ),
            (false, _) => format!("the body is not valid JSON: {e}"),
        };
        ApiError::new(ErrorCode::InvalidJson, message)
    })
}

/// A JSON answer.
pub fn reply_json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            // A trailing newline keeps answers apart in a terminal (curl) and costs nothing.
            bytes.push(b'\n');
            reply_bytes(status, "application/json", bytes)
        }
        Err(e) => reply_error(ApiError::new(
            ErrorCode::Internal,
            format!("the answer could not be encoded: {e}"),
        )),
    }
}

pub fn reply_bytes(
    status: StatusCode,
    content_type: &'static str,
    bytes: impl Into<Bytes>,
) -> Reply {
    let mut response = Response::new(Full::new(bytes.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An error answer: the code's status and `{"error", "message", ...}`. `too_many_attempts`
/// and `slow_down` also carry `Retry-After`.
pub fn reply_error(err: ApiError) -> Reply {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = err.retry_after_s.or(err.interval_s.map(u64::from));
    let mut response = reply_json(status, &err.into_body());
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
