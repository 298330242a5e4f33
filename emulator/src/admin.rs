//! Virtual admins working the approval queue: list, take a moment per decision, approve or
//! reject with a reason. Admins share a desk: a request one admin is deciding is skipped by the
//! others, as people in one portal see who is on what. Admins may keep working hours.

use crate::api::Requester;
use crate::config::{MsRange, Rate};
use crate::profile::{Stream, admin_verdict, stream_rng};
use crate::schedule::WorkSchedule;
use otpfleet_client::{CallError, Desk, Transport, calls};
use otpfleet_protocol::{ErrorCode, RequestPage};
use otpfleet_reports::Step;
use rand::Rng;
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
}

/// Runs one admin until `consoles_done` (every console has an outcome) or the run is stopped.
pub async fn run_admin<T: Transport>(
    requester: &Requester,
    transport: T,
    admin: Admin,
    desk: &Desk,
    consoles_done: CancellationToken,
) {
    // Admins draw from streams above every console's, so they never share one.
    let mut rng = stream_rng(requester.cfg.seed, Stream::Admin(admin.number));
    let timing = requester.cfg.timing;
    let list = calls::awaiting_approval(PAGE, &admin.token);
    while !consoles_done.is_cancelled() {
        if let Some(schedule) = &admin.schedule {
            let off_ms = schedule.ms_until_working(Instant::now());
            if off_ms > 0 && idle(requester, &consoles_done, off_ms).await {
                return;
            }
        }
        let answer = match requester
            .call(
                &transport,
                Some(Step::ListRequests),
                list.clone(),
                Instant::now(),
                &mut rng,
            )
            .await
        {
            Ok(a) => a,
            Err(CallError::Cancelled) => return,
            Err(CallError::Unreachable(e)) => {
                requester
                    .stop
                    .because(format!("the server could not be reached by an admin: {e}"));
                return;
            }
        };
        let Some(page) = answer.parse::<RequestPage>() else {
            requester.tally.error(format!(
                "unexpected_answer: list_requests {}",
                answer.status
            ));
            if idle(requester, &consoles_done, timing.admin_idle_ms.max(1_000)).await {
                return;
            }
            continue;
        };
        let mut decided = 0;
        for r in page.requests {
            if consoles_done.is_cancelled() {
                return;
            }
            if admin
                .schedule
                .as_ref()
                .is_some_and(|s| s.ms_until_working(Instant::now()) > 0)
            {
                break;
            }
            if !desk.claim(&r.id) {
                continue;
            }
            let think = rng.random_range(admin.decision.min_ms()..=admin.decision.max_ms());
            let at = Instant::now() + Duration::from_millis(think);
            let (step, req) =
                match admin_verdict(requester.cfg.seed, &r.device.serial, admin.reject) {
                    None => (Step::Approve, calls::approve(&r.id, &admin.token)),
                    Some(reason) => (Step::Reject, calls::reject(&r.id, reason, &admin.token)),
                };
            let result = requester
                .call(&transport, Some(step), req, at, &mut rng)
                .await;
            // A decided request stays claimed: another admin's older listing may still show it.
            if result.is_err() {
                desk.release(&r.id);
            } else {
                desk.decided(&r.id);
            }
            match result {
                Ok(a) if a.ok() => decided += 1,
                // Expired or already decided since it was listed: nothing to do.
                Ok(a) if a.error() == Some(ErrorCode::RequestNotPending) => {}
                Ok(a) => requester.tally.error(format!(
                    "unexpected_answer: {} {}",
                    step.as_str(),
                    a.status
                )),
                Err(CallError::Cancelled) => return,
                Err(CallError::Unreachable(e)) => {
                    requester
                        .stop
                        .because(format!("the server could not be reached by an admin: {e}"));
                    return;
                }
            }
        }
        if decided == 0 && idle(requester, &consoles_done, timing.admin_idle_ms).await {
            return;
        }
    }
}

/// Waits `ms`; true when the run was stopped or finished meanwhile.
async fn idle(requester: &Requester, consoles_done: &CancellationToken, ms: u64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => false,
        () = requester.stop.stopped() => true,
        () = consoles_done.cancelled() => true,
    }
}
