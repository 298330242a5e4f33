//! A console's first boot as goose transactions, one request each: verify, redeem, poll (at the
//! interval the server gives, as the contract asks), sign in. Each iteration takes a fresh
//! pre-issued OTP, so no OTP is typed twice.

use super::http::{send, unexpected};
use super::{ConsoleFlow, Harness, Redeemed, pause, state};
use goose::prelude::*;
use otpfleet_client::calls;
use otpfleet_protocol::{
    Credentials, ErrorCode, PollResponse, RedeemRequest, RedeemResponse, RequestStatus,
    VerifyRequest, VerifyResponse,
};
use otpfleet_reports::{Flow, Outcome, Step};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const VERIFY: Step = Step::Verify;
const REDEEM: Step = Step::Redeem;
const POLL: Step = Step::Poll;
const SIGN_IN: Step = Step::SignIn;

/// A certified console of the shipped catalogue (`server/catalogue.json`).
const MAKE: &str = "Logitech";
const MODEL: &str = "Tap";

/// The transactions of one console's first boot, in order.
pub(crate) fn transactions(h: &Arc<Harness>) -> Vec<Transaction> {
    vec![
        super::step!(h, "verify", 1, verify),
        super::step!(h, "redeem", 2, redeem),
        super::step!(h, "poll", 3, poll),
        super::step!(h, "sign_in", 4, sign_in),
    ]
}

/// Takes the next pre-issued OTP and verifies the console (HDMI ingest module connected).
async fn verify(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    {
        let mut s = st.lock();
        s.cadence.begin_iteration(Instant::now());
        s.console = None;
    }
    if h.wait_out().await {
        return Ok(());
    }
    let Some(handed) = h.tickets.take() else {
        // Every OTP was handed out: this console has nothing left to redeem. Never reuse one.
        if !std::mem::replace(&mut st.lock().out_of_tickets, true) {
            h.tally.ticket_missing();
        }
        pause(&h, &st, Duration::from_secs(1)).await;
        return Ok(());
    };
    h.tally.console_started();
    let body = VerifyRequest {
        make: MAKE.to_owned(),
        model: MODEL.to_owned(),
        serial: handed.serial.clone(),
        hdmi_ingest: true,
    };
    st.lock().console = Some(ConsoleFlow {
        handed,
        started: Instant::now(),
        verification_token: None,
        request: None,
    });
    let reply = send(user, &h, &st, VERIFY, calls::verify(&body)).await?;
    match reply.parse::<VerifyResponse>().filter(|_| reply.ok()) {
        Some(v) => {
            if let Some(flow) = st.lock().console.as_mut() {
                flow.verification_token = Some(v.verification_token);
            }
            Ok(())
        }
        None => {
            // A certified console with its module connected: a refusal is the server's bug.
            st.lock().console = None;
            h.tally.outcome(Outcome::VerificationFailed);
            unexpected(user, &h, VERIFY, reply)
        }
    }
}

/// Types the OTP.
async fn redeem(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let body = {
        let s = st.lock();
        match &s.console {
            Some(ConsoleFlow {
                handed,
                verification_token: Some(token),
                request: None,
                ..
            }) => RedeemRequest {
                otp: handed.ticket.otp.clone(),
                verification_token: token.clone(),
            },
            _ => return Ok(()),
        }
    };
    let reply = send(user, &h, &st, REDEEM, calls::redeem(&body)).await?;
    match reply.parse::<RedeemResponse>().filter(|_| reply.ok()) {
        Some(r) => {
            if let Some(flow) = st.lock().console.as_mut() {
                flow.request = Some(Redeemed {
                    id: r.request_id,
                    poll_token: r.poll_token,
                    status: r.status,
                    interval_s: r.interval_s,
                });
            }
            Ok(())
        }
        None => {
            // A pre-issued OTP, typed once, well within its validity: `otp_already_used`,
            // `otp_expired` or `invalid_otp` here is a bug in the scenario, not load.
            st.lock().console = None;
            if reply.error() == Some(ErrorCode::OtpExpired) {
                h.tally.outcome(Outcome::Expired);
            }
            unexpected(user, &h, REDEEM, reply)
        }
    }
}

/// Waits the interval the server gave, then polls, until the request is decided (at most
/// `max_polls` times; then the console gives up: `abandoned`).
async fn poll(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let Some(mut r) = st.lock().console.as_ref().and_then(|f| f.request.clone()) else {
        return Ok(());
    };
    let mut polls = 0;
    while r.status == RequestStatus::AwaitingApproval {
        if polls == h.config.max_polls {
            st.lock().console = None;
            h.tally
                .error("poll: still awaiting approval after the most polls".into());
            return Ok(());
        }
        polls += 1;
        let interval = Duration::from_secs(u64::from(r.interval_s.max(1)));
        if !pause(&h, &st, interval).await {
            // The attack is ending: this console is cut short (`abandoned`).
            st.lock().console = None;
            return Ok(());
        }
        let reply = send(user, &h, &st, POLL, calls::poll(&r.id, &r.poll_token)).await?;
        match reply.parse::<PollResponse>().filter(|_| reply.ok()) {
            Some(p) => {
                r.status = p.status;
                r.interval_s = p.interval_s;
            }
            None => {
                // Polling at the interval the server gave: `slow_down` is the scenario's bug.
                if reply.error() == Some(ErrorCode::SlowDown) {
                    h.tally.slow_down();
                }
                st.lock().console = None;
                return unexpected(user, &h, POLL, reply);
            }
        }
    }
    match r.status {
        RequestStatus::Approved => {
            if let Some(flow) = st.lock().console.as_mut() {
                flow.request = Some(r);
            }
            Ok(())
        }
        RequestStatus::Rejected => {
            st.lock().console = None;
            h.tally.outcome(Outcome::Rejected);
            Ok(())
        }
        other => {
            // Expired (the OTP outlived its validity) or signed in before collecting the
            // credentials: neither can happen to a fresh OTP typed once.
            st.lock().console = None;
            if other == RequestStatus::Expired {
                h.tally.outcome(Outcome::Expired);
            }
            h.tally.error(format!("poll: {other}"));
            Err(Box::new(TransactionError::Custom(format!(
                "request {} is {other}: not a state a fresh OTP reaches",
                r.id
            ))))
        }
    }
}

/// Collects the credentials of an approved request, once.
async fn sign_in(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let flow = st.lock().console.take();
    let Some((r, started)) = flow.and_then(|f| f.request.map(|r| (r, f.started))) else {
        return Ok(());
    };
    if r.status != RequestStatus::Approved {
        return Ok(());
    }
    let reply = send(user, &h, &st, SIGN_IN, calls::sign_in(&r.id, &r.poll_token)).await?;
    if reply
        .parse::<Credentials>()
        .filter(|_| reply.ok())
        .is_none()
    {
        return unexpected(user, &h, SIGN_IN, reply);
    }
    h.tally.outcome(Outcome::SignedInOtp);
    h.recorder.flow(Flow::TimeToSignedIn, started.elapsed());
    Ok(())
}
