//! The harness's own work beside goose's users, through the emulator's transport: a feeder that
//! keeps the approval queue full for the `approve` admins, and an approver that decides the
//! consoles' requests in `redeem` (so consoles measure their own path, not an admin's pace).
//! Both load the server too; neither is in goose's metrics. Both stop with `cancel`.

use crate::common::Harness;
use crate::tickets::TicketQueue;
use otpfleet_client::{Transport, calls};
use otpfleet_protocol::{
    RedeemRequest, RedeemResponse, RequestPage, VerifyRequest, VerifyResponse,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Redemptions the feeder has in flight at most.
const FEED_BURST: usize = 32;
/// How long the harness waits when it has nothing to do.
const NAP: Duration = Duration::from_millis(5);
/// Requests the approver lists at a time.
const APPROVER_PAGE: usize = 100;

/// Keeps about `depth` requests awaiting approval by redeeming pre-issued OTPs, until
/// `cancel` or the tickets run out. Answers why it stopped when that was not `cancel`.
pub async fn feed<T: Transport>(
    t: T,
    h: Arc<Harness>,
    tickets: Arc<TicketQueue>,
    depth: usize,
    cancel: CancellationToken,
) -> Option<String> {
    while !cancel.is_cancelled() {
        let fed = h.background.fed.load(Ordering::Relaxed);
        let pending = fed.saturating_sub(h.tally.decisions()) as usize;
        if pending >= depth {
            nap(&cancel).await;
            continue;
        }
        let burst: Vec<_> = (0..(depth - pending).min(FEED_BURST))
            .map_while(|_| tickets.take())
            .map(|handed| redeem_one(&t, &h, handed.ticket.otp, handed.serial))
            .collect();
        if burst.is_empty() {
            return Some(format!(
                "the feeder used all {} pre-issued OTPs; pass a larger --tickets",
                tickets.len()
            ));
        }
        let fed: u64 = futures::future::join_all(burst).await.into_iter().sum();
        h.background.fed.fetch_add(fed, Ordering::Relaxed);
    }
    None
}

/// Verifies a console and redeems one OTP; answers 1 when a request joined the queue.
async fn redeem_one<T: Transport>(t: &T, h: &Harness, otp: String, serial: String) -> u64 {
    let verify = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial,
        hdmi_ingest: true,
    };
    let token = match t.send(calls::verify(&verify)).await {
        Ok(a) if a.status == 200 => serde_json::from_slice::<VerifyResponse>(&a.body).ok(),
        Ok(a) => {
            h.tally.error(format!("feeder: verify status {}", a.status));
            None
        }
        Err(e) => {
            h.tally.error(format!("feeder: {e}"));
            None
        }
    };
    let Some(token) = token else { return 0 };
    let redeem = RedeemRequest {
        otp,
        verification_token: token.verification_token,
    };
    match t.send(calls::redeem(&redeem)).await {
        Ok(a) if a.parse::<RedeemResponse>().is_some() => 1,
        Ok(a) => {
            h.tally.error(format!("feeder: redeem status {}", a.status));
            0
        }
        Err(e) => {
            h.tally.error(format!("feeder: {e}"));
            0
        }
    }
}

/// Approves every request awaiting approval that no admin has taken, until `cancel`.
pub async fn approve_all<T: Transport>(t: T, h: Arc<Harness>, cancel: CancellationToken) {
    let token = h.config.admin_token.clone();
    let list = calls::awaiting_approval(APPROVER_PAGE, &token);
    while !cancel.is_cancelled() {
        let page = match t.send(list.clone()).await {
            Ok(a) if a.status == 200 => a.parse::<RequestPage>(),
            Ok(a) => {
                h.tally.error(format!("approver: list status {}", a.status));
                None
            }
            Err(e) => {
                h.tally.error(format!("approver: {e}"));
                None
            }
        };
        let requests = page.map(|p| p.requests).unwrap_or_default();
        if requests.is_empty() {
            nap(&cancel).await;
            continue;
        }
        for r in requests.iter().filter(|r| h.desk.claim(&r.id)) {
            let approve = calls::approve(r, &token);
            // 409: decided by someone else meanwhile, which is fine.
            match t.send(approve).await {
                Ok(a) => {
                    if a.status == 200 {
                        h.background.approved.fetch_add(1, Ordering::Relaxed);
                    }
                    h.desk.decided(&r.id);
                }
                Err(_) => h.desk.release(&r.id),
            }
        }
    }
}

async fn nap(cancel: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(NAP) => {}
        () = cancel.cancelled() => {}
    }
}
