//! Virtual admins working the approval queue: list, take a moment per decision, approve or
//! reject with a reason. Admins share a desk: a request one admin is deciding is skipped by the
//! others, as people in one portal see who is on what. Admins may keep working hours.

use crate::api::Requester;
use crate::config::{MsRange, Rate};
use crate::profile::{Stream, admin_verdict, stream_rng};
use crate::schedule::WorkSchedule;
use otpfleet_client::{Answer, ApiRequest, CallError, Desk, Transport, calls};
use otpfleet_protocol::{ErrorCode, RequestPage, RequestView};
use otpfleet_reports::Step;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many requests an admin lists at a time.
const PAGE: usize = 100;

/// One virtual admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Distinct per admin: names its random stream.
    pub number: u32,
    pub token: String,
    /// When the admin works; always, if `None`.
    pub schedule: Option<WorkSchedule>,
    /// Time per decision.
    pub decision: MsRange,
    /// Share of requests rejected (decided per console serial, see `admin_verdict`).
    pub reject: Rate,
    /// Rooms whose rejection a return visit fixed: their next request is approved.
    pub fixed: Arc<FixedRooms>,
}

/// The serials of rooms rejected for something their installer's return visit fixes (a wrong
/// room, a duplicate request): the admins approve the room's next request. Shared by a
/// rehearsal's admins and its re-issues; empty in a fleet run, which never re-issues.
#[derive(Debug, Default)]
pub struct FixedRooms(parking_lot::Mutex<HashSet<String>>);

impl FixedRooms {
    pub fn insert(&self, serial: &str) {
        self.0.lock().insert(serial.to_owned());
    }

    fn contains(&self, serial: &str) -> bool {
        self.0.lock().contains(serial)
    }
}

/// Runs one admin until `consoles_done` (every console has an outcome) or the run is stopped.
pub async fn run_admin<T: Transport>(
    requester: &Requester,
    transport: T,
    admin: Admin,
    desk: &Desk,
    consoles_done: CancellationToken,
) {
    let timing = requester.cfg.timing;
    let list = calls::awaiting_approval(PAGE, &admin.token);
    let mut session = Session {
        requester,
        transport,
        // Admins draw from streams above every console's, so they never share one.
        rng: stream_rng(requester.cfg.seed, Stream::Admin(admin.number)),
        admin,
    };
    while !consoles_done.is_cancelled() {
        let off_ms = session.off_ms();
        if off_ms > 0 && idle(requester, &consoles_done, off_ms).await {
            return;
        }
        let Ok(answer) = session
            .call(Step::ListRequests, list.clone(), Instant::now())
            .await
        else {
            return;
        };
        let Some(page) = answer.parse::<RequestPage>() else {
            let status = answer.status;
            requester
                .tally
                .error(format!("unexpected_answer: list_requests {status}"));
            if idle(requester, &consoles_done, timing.admin_idle_ms.max(1_000)).await {
                return;
            }
            continue;
        };
        if !page.requests.is_empty() {
            requester.tally.admin_worked();
        }
        let mut decided = 0;
        for r in page.requests {
            if consoles_done.is_cancelled() {
                return;
            }
            if session.off_ms() > 0 {
                break;
            }
            if desk.claim(&r.id) {
                match session.decide(&r, desk).await {
                    Ok(true) => decided += 1,
                    Ok(false) => {}
                    Err(Quit) => return,
                }
            }
        }
        if decided == 0 && idle(requester, &consoles_done, timing.admin_idle_ms).await {
            return;
        }
    }
}

/// One admin at work: what each of its calls needs.
struct Session<'a, T> {
    requester: &'a Requester,
    transport: T,
    admin: Admin,
    rng: ChaCha8Rng,
}

/// The admin stops: the run was stopped, or the server could not be reached (which stops it).
struct Quit;

impl<T: Transport> Session<'_, T> {
    /// Milliseconds until the admin's working hours begin (0 while at work, or with none).
    fn off_ms(&self) -> u64 {
        self.admin
            .schedule
            .as_ref()
            .map_or(0, |s| s.ms_until_working(Instant::now()))
    }

    async fn call(&mut self, step: Step, req: ApiRequest, at: Instant) -> Result<Answer, Quit> {
        let sent = self
            .requester
            .call(&self.transport, Some(step), req, at, &mut self.rng);
        match sent.await {
            Ok(answer) => Ok(answer),
            Err(CallError::Cancelled) => Err(Quit),
            Err(CallError::Unreachable(e)) => {
                self.requester
                    .stop
                    .because(format!("the server could not be reached by an admin: {e}"));
                Err(Quit)
            }
        }
    }

    /// Takes a moment over request `r` (claimed on the desk), then approves or rejects it;
    /// answers whether this admin decided it. A decided request stays claimed: another admin's
    /// older listing may still show it.
    async fn decide(&mut self, r: &RequestView, desk: &Desk) -> Result<bool, Quit> {
        let decision = self.admin.decision;
        let think = self.rng.random_range(decision.min_ms()..=decision.max_ms());
        let at = Instant::now() + Duration::from_millis(think);
        let (seed, token) = (self.requester.cfg.seed, &self.admin.token);
        let verdict = match self.admin.fixed.contains(&r.device.serial) {
            true => None,
            false => admin_verdict(seed, &r.device.serial, self.admin.reject),
        };
        let (step, req) = match verdict {
            None => (Step::Approve, calls::approve(r, token)),
            Some(reason) => (Step::Reject, calls::reject(r, reason, token)),
        };
        let Ok(answer) = self.call(step, req, at).await else {
            desk.release(&r.id);
            return Err(Quit);
        };
        desk.decided(&r.id);
        self.requester.tally.admin_worked();
        self.requester.tally.admin_time(think);
        match answer.error() {
            None => {
                self.requester.decided(&r.id);
                Ok(true)
            }
            // Expired or already decided since it was listed: nothing to do.
            Some(ErrorCode::RequestNotPending) => Ok(false),
            Some(_) => {
                let (step, status) = (step.as_str(), answer.status);
                self.requester
                    .tally
                    .error(format!("unexpected_answer: {step} {status}"));
                Ok(false)
            }
        }
    }
}

/// Waits `ms`; true when the run was stopped or finished meanwhile.
async fn idle(requester: &Requester, consoles_done: &CancellationToken, ms: u64) -> bool {
    tokio::select! {
        biased;
        () = tokio::time::sleep(Duration::from_millis(ms)) => false,
        () = requester.stop.stopped() => true,
        () = consoles_done.cancelled() => true,
    }
}
