//! Virtual admins working the approval queue: list, take a moment per decision, approve or
//! reject with a reason. Each admin takes its share of the queue (request number modulo the
//! admin count) so two admins never decide the same request.

use crate::api::{Ctx, Failure};
use crate::profile::{admin_verdict, console_rng};
use crate::transport::{ApiRequest, Transport};
use otpfleet_protocol::{ErrorCode, RejectBody, RequestPage};
use otpfleet_reports::Step;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many requests an admin lists at a time.
const PAGE: usize = 100;

/// Runs admin `k` of `count` until `done` (every console has an outcome) or the run is stopped.
pub async fn run_admin<T: Transport>(
    ctx: &Ctx,
    transport: T,
    token: String,
    (k, count): (u32, u32),
    done: CancellationToken,
) {
    // Admins draw from streams above every console's, so they never share one.
    let mut rng = console_rng(ctx.cfg.seed, u64::MAX - u64::from(k));
    let timing = ctx.cfg.timing;
    let list = ApiRequest::get(format!(
        "/v1/requests?status=awaiting_approval&limit={PAGE}"
    ))
    .with_bearer(&token);
    while !done.is_cancelled() {
        let answer = match ctx
            .call(&transport, None, list.clone(), Instant::now(), &mut rng)
            .await
        {
            Ok(a) => a,
            Err(Failure::Cancelled) => return,
            Err(Failure::Unreachable(e)) => {
                ctx.tally
                    .stop(format!("the server could not be reached by an admin: {e}"));
                return;
            }
        };
        let Some(page) = answer.parse::<RequestPage>() else {
            ctx.tally.error(format!(
                "unexpected_answer: list_requests {}",
                answer.status
            ));
            if idle(ctx, &done, timing.admin_idle_ms.max(1_000)).await {
                return;
            }
            continue;
        };
        let mine: Vec<_> = page
            .requests
            .into_iter()
            .filter(|r| request_number(&r.id) % u64::from(count) == u64::from(k))
            .collect();
        if mine.is_empty() {
            if idle(ctx, &done, timing.admin_idle_ms).await {
                return;
            }
            continue;
        }
        for r in mine {
            if done.is_cancelled() {
                return;
            }
            let think = rng.random_range(timing.decision.min_ms..=timing.decision.max_ms);
            let at = Instant::now() + Duration::from_millis(think);
            let (step, req) =
                match admin_verdict(ctx.cfg.seed, &r.device.serial, ctx.cfg.rates.reject) {
                    None => (
                        Step::Approve,
                        ApiRequest::post_json(
                            format!("/v1/requests/{}/approve", r.id),
                            &serde_json::json!({}),
                        ),
                    ),
                    Some(reason) => (
                        Step::Reject,
                        ApiRequest::post_json(
                            format!("/v1/requests/{}/reject", r.id),
                            &RejectBody { reason },
                        ),
                    ),
                };
            match ctx
                .call(
                    &transport,
                    Some(step),
                    req.with_bearer(&token),
                    at,
                    &mut rng,
                )
                .await
            {
                Ok(a) if a.ok() => {}
                // Expired or already decided since it was listed: nothing to do.
                Ok(a) if a.error() == Some(ErrorCode::RequestNotPending) => {}
                Ok(a) => {
                    ctx.tally
                        .error(format!("unexpected_answer: {} {}", step.as_str(), a.status))
                }
                Err(Failure::Cancelled) => return,
                Err(Failure::Unreachable(e)) => {
                    ctx.tally
                        .stop(format!("the server could not be reached by an admin: {e}"));
                    return;
                }
            }
        }
    }
}

/// Waits `ms`; true when the run was stopped or finished meanwhile.
async fn idle(ctx: &Ctx, done: &CancellationToken, ms: u64) -> bool {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(ms)) => false,
        () = ctx.tally.cancel_token().cancelled() => true,
        () = done.cancelled() => true,
    }
}

/// The number in a request id (`req_42` -> 42); any other id hashes to a number.
fn request_number(id: &str) -> u64 {
    id.rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            id.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        })
}
