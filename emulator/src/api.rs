//! Sending one request the way a console or admin does: at its intended time, with injected
//! network faults, retries with backoff, and its latency recorded from the intended send time.

use crate::config::FleetConfig;
use crate::decisions::Decisions;
use crate::stop::Stop;
use crate::tally::{Fault, Tally};
use otpfleet_client::{Answer, ApiRequest, CallError, Transport, TransportError};
use otpfleet_reports::{Answered, Recorder, Step};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// First backoff after a failure; doubled on each retry, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A run's request sender, shared by its consoles and admins: sends each request the way they
/// do (`call`), records it, and holds what the run counts and its stop signal.
#[derive(Debug)]
pub struct Requester {
    pub cfg: FleetConfig,
    pub recorder: Arc<Recorder>,
    pub tally: Arc<Tally>,
    pub stop: Stop,
    /// In a rehearsal (in-process server, simulated time, no network faults): decisions told
    /// to the consoles awaiting them, which skip the polls that would hear nothing new.
    pub(crate) decisions: Option<Decisions>,
}

impl Requester {
    /// The sender of a run with `cfg`: nothing recorded, counted or stopped yet.
    pub fn new(cfg: FleetConfig) -> Requester {
        Requester {
            cfg,
            recorder: Arc::new(Recorder::default()),
            tally: Arc::new(Tally::default()),
            stop: Stop::default(),
            decisions: None,
        }
    }

    /// The sender of a rehearsal whose consoles skip the polls that only hear "awaiting
    /// approval" (see `decisions`), when its network faults would not make those polls differ.
    pub(crate) fn telling_decisions(mut self) -> Requester {
        if self.cfg.rates.network_fault.get() == 0.0 {
            self.decisions = Some(Decisions::default());
        }
        self
    }

    /// Request `id` was decided by an admin of the run now.
    pub(crate) fn decided(&self, id: &str) {
        if let Some(decisions) = &self.decisions {
            decisions.decided(id);
        }
    }

    /// Sends `req` at `intended` (sleeping until then), retrying network faults, transport
    /// failures and 503 answers with backoff. For `step` it records the three views of the attempt that got the
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
    ) -> Result<Answer, CallError> {
        let mut intended = intended;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            self.wait_for(intended).await?;
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
                // A server unavailable for now (a replica whose database is away, one at its
                // connection bound) is asked again, as a console would after a while.
                Ok(answer) if answer.status == 503 && attempt < self.cfg.max_retries => {
                    self.record(step, intended, &answer);
                    self.tally.error(format!("retry: 503 {}", answer.code()));
                    attempt += 1;
                    intended = back_off(rng, &mut backoff);
                }
                Ok(answer) => {
                    self.record(step, intended, &answer);
                    return Ok(answer);
                }
                Err(e) if attempt >= self.cfg.max_retries => {
                    if let (Some(step), false) = (step, injected) {
                        self.recorder.no_answer(step, e.kind());
                    }
                    return Err(CallError::Unreachable(e));
                }
                Err(e) => {
                    if !injected {
                        self.tally.error(format!("transport_retry: {}", e.kind()));
                        if let Some(step) = step {
                            self.recorder.no_answer(step, e.kind());
                        }
                    }
                    attempt += 1;
                    intended = back_off(rng, &mut backoff);
                }
            }
        }
    }
}

impl Requester {
    /// Waits until `intended`, or answers `Cancelled` if the run is stopped first. A timer costs
    /// a trip through tokio's timer wheel: only one that must wait is armed.
    async fn wait_for(&self, intended: Instant) -> Result<(), CallError> {
        if intended > Instant::now() {
            tokio::select! {
                biased;
                () = wait_until(intended, self.cfg.precise_timers) => Ok(()),
                () = self.stop.stopped() => Err(CallError::Cancelled),
            }
        } else if self.stop.is_stopped() {
            Err(CallError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Records an answer of `step` (if the request is one): its lateness from `intended` to
    /// when it was sent, its service time and its class.
    fn record(&self, step: Option<Step>, intended: Instant, answer: &Answer) {
        if let Some(step) = step {
            let lateness = answer.sent.saturating_duration_since(intended);
            let class = AnswerClass::of(answer);
            self.recorder.request(
                step,
                Some(lateness),
                answer.sent.elapsed(),
                class.answered(),
            );
        }
    }
}

/// When to try again after a failure: `backoff` from now with up to half of it in jitter;
/// the next backoff is twice as long, up to `MAX_BACKOFF`.
fn back_off(rng: &mut ChaCha8Rng, backoff: &mut Duration) -> Instant {
    let jitter = rng.random_range(0..=backoff.as_millis() as u64 / 2);
    let at = Instant::now() + *backoff + Duration::from_millis(jitter);
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    at
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
    /// How an answer counts for its step: 2xx ok, 4xx a refusal by code, 5xx an error.
    fn of(answer: &Answer) -> AnswerClass {
        match answer.status {
            200..=299 => AnswerClass::Ok,
            400..=499 => AnswerClass::Refused(answer.code()),
            _ => AnswerClass::Failed(answer.code()),
        }
    }

    fn answered(&self) -> Answered<'_> {
        match self {
            AnswerClass::Ok => Answered::Ok,
            AnswerClass::Refused(code) => Answered::Refused(code),
            AnswerClass::Failed(code) => Answered::Failed(code),
        }
    }
}
