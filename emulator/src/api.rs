//! Sending one request the way a console or admin does: at its intended time, with injected
//! network faults, retries with backoff, and its latency recorded from the intended send time.

use crate::config::FleetConfig;
use crate::tally::{Fault, Tally};
use crate::transport::{ApiRequest, ApiResponse, Transport, TransportError};
use otpfleet_protocol::{ErrorBody, ErrorCode};
use otpfleet_reports::{Answered, Recorder, Step};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// First backoff after a failure; doubled on each retry, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a run shares between its consoles and admins.
#[derive(Debug)]
pub struct Ctx {
    pub cfg: FleetConfig,
    pub recorder: Arc<Recorder>,
    pub tally: Arc<Tally>,
}

/// Why a request got no usable answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The run was stopped.
    Cancelled,
    /// No answer after every retry.
    Unreachable(TransportError),
}

/// An answer, with the contract's error code when it is an error.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl From<crate::transport::ApiResponse> for Answer {
    fn from(r: crate::transport::ApiResponse) -> Answer {
        Answer {
            status: r.status,
            body: r.body,
        }
    }
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error code of an error answer (`Unknown` for anything not in the contract).
    pub fn error(&self) -> Option<ErrorCode> {
        if self.ok() {
            return None;
        }
        Some(
            serde_json::from_slice::<ErrorBody>(&self.body).map_or(ErrorCode::Unknown, |b| b.error),
        )
    }

    /// How the answer counts for its step: 2xx ok, 4xx a refusal by code, 5xx an error.
    fn class(&self) -> AnswerClass {
        match self.status {
            200..=299 => AnswerClass::Ok,
            400..=499 => AnswerClass::Refused(code_name(self)),
            _ => AnswerClass::Failed(code_name(self)),
        }
    }

    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as a contract type, or `None` if it does not parse.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl Ctx {
    /// Sends `req` at `intended` (sleeping until then), retrying network faults and transport
    /// failures with backoff. For `step` it records the three views of the attempt that got the
    /// answer: lateness from the intended send to the actual send (the transport's `sent`),
    /// service from there to the answer, response their sum (so a slow generator shows up in
    /// the response view instead of hiding: coordinated omission), and the answer's class.
    pub async fn call<T: Transport>(
        &self,
        transport: &T,
        step: Option<Step>,
        req: ApiRequest,
        intended: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Result<Answer, Failure> {
        let cancel = self.tally.cancel_token();
        let mut intended = intended;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            // A timer costs a trip through tokio's timer wheel: only arm one to wait.
            if intended > Instant::now() {
                tokio::select! {
                    () = wait_until(intended, self.cfg.precise_timers) => {}
                    () = cancel.cancelled() => return Err(Failure::Cancelled),
                }
            } else if cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            let injected = rng.random::<f64>() < self.cfg.rates.network_fault.get();
            let result = if injected {
                self.tally.fault(Fault::Network);
                Err(TransportError::Io(
                    "injected network fault: connection reset".into(),
                ))
            } else {
                // No select on the cancellation here: a request in flight ends within the
                // transport's timeout anyway, and arming a waiter per request is generator CPU
                // spent on every request (scripts/generator-efficiency: median 0.77 -> 0.84).
                transport.send(req.clone()).await
            };
            match result {
                Ok(ApiResponse { status, body, sent }) => {
                    let answer = Answer { status, body };
                    if let Some(step) = step {
                        let lateness = sent.saturating_duration_since(intended);
                        let class = answer.class();
                        self.recorder.request(
                            step,
                            Some(lateness),
                            sent.elapsed(),
                            class.answered(),
                        );
                    }
                    return Ok(answer);
                }
                Err(e) if attempt >= self.cfg.max_retries => {
                    if let (Some(step), false) = (step, injected) {
                        self.recorder.no_answer(step, kind(&e));
                    }
                    return Err(Failure::Unreachable(e));
                }
                Err(e) => {
                    if !injected {
                        self.tally.error(format!("transport_retry: {}", kind(&e)));
                        if let Some(step) = step {
                            self.recorder.no_answer(step, kind(&e));
                        }
                    }
                    attempt += 1;
                    let jitter = rng.random_range(0..=backoff.as_millis() as u64 / 2);
                    intended = Instant::now() + backoff + Duration::from_millis(jitter);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// tokio's timer wheel ticks every millisecond and fires a sleep at the first tick after its
/// deadline (then the runtime has to get round to the task): up to two milliseconds late.
const TIMER_TICK: Duration = Duration::from_millis(2);

/// Waits until `deadline`. Coarse: tokio's timer alone, which wakes up to a couple of
/// milliseconds late (that delay is the generator's lateness). Precise: tokio's timer until two
/// ticks before the deadline, then a Linux timerfd armed for the deadline itself (nanosecond
/// resolution, woken through tokio's own reactor: no thread, no spinning), so a request leaves
/// within tens of microseconds of when it is due. The timerfd is held only for those last
/// milliseconds, so a fleet holds a few, not one per waiting console. Precise waits use the
/// system's clock, so they must stay off under tokio's paused clock (rehearsals).
///
/// Why tokio-timerfd: the smallest well-scoped crate that puts a timerfd on tokio's reactor
/// (`AsyncFd`); tokio's own timer cannot go below its millisecond wheel.
pub async fn wait_until(deadline: Instant, precise: bool) {
    if !precise {
        return tokio::time::sleep_until(deadline).await;
    }
    let coarse = deadline.checked_sub(TIMER_TICK).unwrap_or(deadline);
    if coarse > Instant::now() {
        tokio::time::sleep_until(coarse).await;
    }
    let precise = match tokio_timerfd::Delay::new(deadline.into_std()) {
        Ok(delay) => delay.await,
        Err(e) => Err(e),
    };
    if precise.is_err() {
        // Out of file descriptors, say: the coarse timer still waits, a tick late at worst.
        tokio::time::sleep_until(deadline).await;
    }
}

/// An answer's class, owning its code's name.
enum AnswerClass {
    Ok,
    Refused(String),
    Failed(String),
}

impl AnswerClass {
    fn answered(&self) -> Answered<'_> {
        match self {
            AnswerClass::Ok => Answered::Ok,
            AnswerClass::Refused(code) => Answered::Refused(code),
            AnswerClass::Failed(code) => Answered::Failed(code),
        }
    }
}

/// The contract's error code of an error answer, or `status N` when it has none.
fn code_name(answer: &Answer) -> String {
    match answer.error() {
        Some(ErrorCode::Unknown) | None => format!("status {}", answer.status),
        Some(code) => code.to_string(),
    }
}

fn kind(e: &TransportError) -> &'static str {
    match e {
        TransportError::Timeout(_) => "timeout",
        TransportError::Connect(_) => "connect",
        TransportError::Io(_) => "io",
    }
}
