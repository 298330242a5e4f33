//! One request of the contract, sent through goose (so it is in goose's metrics, reports and
//! thresholds, under the step's name) and recorded into our histograms.

use super::{Harness, UserState};
use bytes::Bytes;
use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionError};
use goose::metrics::GooseRequestMetric;
use otpfleet_protocol::{ErrorBody, ErrorCode};
use otpfleet_reports::{Answered, Step};
use parking_lot::Mutex;
use tokio::time::Instant;

/// A request to send.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub step: Step,
    pub method: GooseMethod,
    pub path: &'a str,
    pub bearer: Option<&'a str>,
    pub json: Option<serde_json::Value>,
}

impl<'a> Call<'a> {
    pub fn get(step: Step, path: &'a str) -> Self {
        Call {
            step,
            method: GooseMethod::Get,
            path,
            bearer: None,
            json: None,
        }
    }

    pub fn post(step: Step, path: &'a str, body: &impl serde::Serialize) -> Self {
        Call {
            step,
            method: GooseMethod::Post,
            path,
            bearer: None,
            json: Some(serde_json::to_value(body).unwrap_or_default()),
        }
    }

    /// A POST without a body (approve, sign in).
    pub fn post_empty(step: Step, path: &'a str) -> Self {
        Call {
            method: GooseMethod::Post,
            ..Call::get(step, path)
        }
    }

    pub fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }
}

/// A complete answer, with goose's record of the request (to mark it a success or failure).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub metric: GooseRequestMetric,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as a contract type.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The contract's error code of an error answer (`Unknown` when the body is not one).
    pub fn error(&self) -> Option<ErrorCode> {
        if self.ok() {
            return None;
        }
        Some(
            self.parse::<ErrorBody>()
                .map_or(ErrorCode::Unknown, |b| b.error),
        )
    }

    /// The contract's error code of an error answer, or `status N` when it has none.
    pub fn code(&self) -> String {
        match self.error() {
            Some(ErrorCode::Unknown) | None => format!("status {}", self.status),
            Some(code) => code.to_string(),
        }
    }

    /// `step: code` (or `step: status N`), the key of an unexpected answer in the report.
    pub fn kind(&self, step: Step) -> String {
        format!("{}: {}", step.as_str(), self.code())
    }
}

/// Sends `call` as `user`, timing it from just before goose sends it to the end of the body,
/// and records it for `call.step` with the user's cadence as the expected interval.
///
/// A request that got no answer is already a failed request in goose's metrics; it is counted
/// here as `step: transport` and ends the transaction.
pub(crate) async fn send(
    user: &mut GooseUser,
    h: &Harness,
    state: &Mutex<UserState>,
    call: Call<'_>,
) -> Result<Reply, Box<TransactionError>> {
    let name = call.step.as_str();
    let mut builder = user.get_request_builder(&call.method, call.path)?;
    if let Some(token) = call.bearer {
        builder = builder.bearer_auth(token);
    }
    if let Some(body) = &call.json {
        builder = builder.json(body);
    }
    let request = GooseRequest::builder()
        .method(call.method)
        .path(call.path)
        .name(name)
        .set_request_builder(builder)
        .build();
    let started = Instant::now();
    let goose = user.request(request).await?;
    let answer = match goose.response {
        Ok(response) => {
            let status = response.status().as_u16();
            response.bytes().await.map(|body| (status, body))
        }
        Err(e) => Err(e),
    };
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(e) => {
            h.tally.error(format!("{name}: transport"));
            h.recorder.no_answer(call.step, "transport");
            return Err(Box::new(TransactionError::Reqwest(e)));
        }
    };
    let reply = Reply {
        status,
        body,
        metric: goose.request,
    };
    let expected = h
        .config
        .co_mitigation
        .then(|| state.lock().cadence.expected())
        .flatten();
    let code = reply.code();
    let answered = match status {
        200..=299 => Answered::Ok,
        400..=499 => Answered::Refused(&code),
        _ => Answered::Failed(&code),
    };
    crate::record::record(
        &h.recorder,
        call.step,
        started.elapsed(),
        answered,
        expected,
    );
    Ok(reply)
}

/// Ends a transaction on an answer the scenario did not expect: counted by kind, and a failed
/// request in goose's metrics (already, for a non-2xx status).
pub(crate) fn unexpected(
    user: &mut GooseUser,
    h: &Harness,
    step: Step,
    mut reply: Reply,
) -> Result<(), Box<TransactionError>> {
    if reply.ok() {
        let kind = format!("{}: answer not in the contract", step.as_str());
        h.tally.error(kind.clone());
        return user.set_failure(&kind, &mut reply.metric, None, None);
    }
    h.tally.error(reply.kind(step));
    Err(Box::new(TransactionError::RequestFailed {
        raw_request: Box::new(reply.metric),
    }))
}
