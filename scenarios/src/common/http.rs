//! One request of the contract, sent through goose (so it is in goose's metrics, reports and
//! thresholds, under the step's name) and recorded into our histograms.

use super::{Harness, UserState};
use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionError};
use goose::metrics::GooseRequestMetric;
use otpfleet_client::{Answer, ApiRequest};
use otpfleet_reports::{Answered, Step};
use parking_lot::Mutex;
use tokio::time::Instant;

/// An answer, with goose's record of the request (to mark it a success or failure).
#[derive(Debug)]
pub(crate) struct Reply {
    pub answer: Answer,
    pub metric: GooseRequestMetric,
}

impl Reply {
    /// `step: code` (or `step: status N`), the key of an unexpected answer in the report.
    pub fn kind(&self, step: Step) -> String {
        format!("{}: {}", step.as_str(), self.answer.code())
    }
}

impl std::ops::Deref for Reply {
    type Target = Answer;

    fn deref(&self) -> &Answer {
        &self.answer
    }
}

/// goose's name of a method.
fn goose_method(method: &http::Method) -> GooseMethod {
    match *method {
        http::Method::GET => GooseMethod::Get,
        http::Method::PUT => GooseMethod::Put,
        http::Method::DELETE => GooseMethod::Delete,
        http::Method::PATCH => GooseMethod::Patch,
        http::Method::HEAD => GooseMethod::Head,
        _ => GooseMethod::Post,
    }
}

/// Sends `req` as `user` for `step`, timing it from just before goose sends it to the end of
/// the body, and records it with the user's cadence as the expected interval.
///
/// A request that got no answer is already a failed request in goose's metrics; it is counted
/// here as `step: transport` and ends the transaction.
pub(crate) async fn send(
    user: &mut GooseUser,
    h: &Harness,
    state: &Mutex<UserState>,
    step: Step,
    req: ApiRequest,
) -> Result<Reply, Box<TransactionError>> {
    let name = step.as_str();
    let method = goose_method(&req.method);
    let mut builder = user.get_request_builder(&method, &req.path)?;
    if let Some(token) = &req.bearer {
        builder = builder.bearer_auth(token);
    }
    if let Some(tag) = &req.if_match {
        builder = builder.header(http::header::IF_MATCH, tag);
    }
    if let Some(content_type) = req.content_type {
        builder = builder
            .header(http::header::CONTENT_TYPE, content_type)
            .body(req.body);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(req.path.as_str())
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
            h.recorder.no_answer(step, "transport");
            return Err(Box::new(TransactionError::Reqwest(e)));
        }
    };
    let reply = Reply {
        answer: Answer {
            status,
            body,
            sent: started,
        },
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
    crate::record::record(&h.recorder, step, started.elapsed(), answered, expected);
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
