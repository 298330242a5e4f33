//! Admins as goose transactions, one request each: the OTP wizard (review, generate, export)
//! and the approval queue (list, then approve or reject one request).

use super::http::{send, unexpected};
use super::{BatchFlow, Harness, pause, state};
use goose::prelude::*;
use otpfleet_client::calls;
use otpfleet_protocol::{
    BatchCreated, BatchRequest, BatchReview, ErrorCode, PasswordMode, RejectReason, RequestPage,
};
use otpfleet_reports::Step;
use rand::Rng as _;
use std::sync::Arc;
use tokio::time::Instant;

const GENERATE: Step = Step::Issue;
const APPROVE: Step = Step::Approve;
const REJECT: Step = Step::Reject;

/// The OTP wizard, in order: review (dry run), generate what the review allows, export the
/// batch for the installers.
pub(crate) fn issue_transactions(h: &Arc<Harness>) -> Vec<Transaction> {
    vec![
        super::step!(h, "review", 1, review),
        super::step!(h, "generate", 2, generate),
        super::step!(h, "export", 3, export),
    ]
}

/// The approval queue, in order: list it and take a request, then decide it.
pub(crate) fn approve_transactions(h: &Arc<Harness>) -> Vec<Transaction> {
    vec![
        super::step!(h, "list_requests", 1, list_requests),
        super::step!(h, "decide", 2, decide),
    ]
}

fn batch(account_ids: Vec<String>, review_only: bool) -> BatchRequest {
    BatchRequest {
        account_ids,
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only,
    }
}

/// The wizard's review: what would be generated for the next accounts, and what is refused
/// (the pool holds accounts that are not ready, as real selections do).
async fn review(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    {
        let mut s = st.lock();
        s.cadence.begin_iteration(Instant::now());
        s.batch = None;
    }
    if h.wait_out().await {
        return Ok(());
    }
    let ids = h.next_batch();
    if ids.is_empty() {
        return Ok(());
    }
    if !pause(&h, &st, h.config.issue_think).await {
        return Ok(());
    }
    let body = batch(ids, true);
    let token = h.config.admin_token.clone();
    let step = Step::Review;
    let reply = send(user, &h, &st, step, calls::create_batch(&body, &token)).await?;
    match reply.parse::<BatchReview>().filter(|_| reply.ok()) {
        Some(r) => {
            let account_ids = r.would_generate.into_iter().map(|a| a.account_id).collect();
            st.lock().batch = Some(BatchFlow {
                account_ids,
                batch_id: None,
            });
            Ok(())
        }
        None => unexpected(user, &h, step, reply),
    }
}

/// Generates OTPs for the accounts the review allowed.
async fn generate(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let ids = match &st.lock().batch {
        Some(b) if !b.account_ids.is_empty() => b.account_ids.clone(),
        _ => return Ok(()),
    };
    if !pause(&h, &st, h.config.issue_think).await {
        return Ok(());
    }
    let body = batch(ids, false);
    let token = h.config.admin_token.clone();
    let req = calls::create_batch(&body, &token);
    let reply = send(user, &h, &st, GENERATE, req).await?;
    match reply.parse::<BatchCreated>().filter(|_| reply.ok()) {
        Some(created) => {
            if let Some(b) = st.lock().batch.as_mut() {
                b.batch_id = Some(created.batch_id);
            }
            Ok(())
        }
        None => {
            st.lock().batch = None;
            unexpected(user, &h, GENERATE, reply)
        }
    }
}

/// Downloads the batch as CSV without passwords (the installers' list).
async fn export(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let Some(id) = st.lock().batch.take().and_then(|b| b.batch_id) else {
        return Ok(());
    };
    if !pause(&h, &st, h.config.issue_think).await {
        return Ok(());
    }
    let req = calls::export_batch(&id, false, &h.config.admin_token);
    let step = Step::Export;
    let reply = send(user, &h, &st, step, req).await?;
    // A CSV with a header line and one line per generated OTP.
    if reply.ok() && reply.body.starts_with(b"upn") {
        Ok(())
    } else {
        unexpected(user, &h, step, reply)
    }
}

/// Lists the oldest requests awaiting approval and takes the first no other admin has.
/// With nothing to take, the admin pauses (as a person refreshing the page would).
async fn list_requests(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    {
        let mut s = st.lock();
        s.cadence.begin_iteration(Instant::now());
        if let Some(stale) = s.claimed.take() {
            h.desk.release(&stale.id);
        }
    }
    if h.wait_out().await {
        return Ok(());
    }
    let req = calls::awaiting_approval(h.config.page_limit, &h.config.admin_token);
    let step = Step::ListRequests;
    let reply = send(user, &h, &st, step, req).await?;
    let Some(page) = reply.parse::<RequestPage>().filter(|_| reply.ok()) else {
        return unexpected(user, &h, step, reply);
    };
    match page.requests.iter().find(|r| h.desk.claim(&r.id)) {
        Some(r) => st.lock().claimed = Some(r.clone()),
        None => {
            pause(&h, &st, h.config.idle).await;
        }
    }
    Ok(())
}

/// Approves the request taken, or rejects it with a reason (`reject_rate` of them).
/// `request_not_pending` means another admin (a `--fleet`'s, say) decided it first: a normal
/// race between admin teams, counted (`already_decided`) and not a failure.
async fn decide(user: &mut GooseUser, h: Arc<Harness>) -> TransactionResult {
    let st = state(user, h.config.seed);
    let (vetted, reason) = {
        let mut s = st.lock();
        let Some(vetted) = s.claimed.take() else {
            return Ok(());
        };
        let reject = s.rng.random::<f64>() < h.config.reject_rate;
        (vetted, reject.then(|| reject_reason(s.rng.random())))
    };
    let token = &h.config.admin_token;
    let (step, req) = match reason {
        None => (APPROVE, calls::approve(&vetted, token)),
        Some(reason) => (REJECT, calls::reject(&vetted, reason, token)),
    };
    let id = vetted.id;
    let result = send(user, &h, &st, step, req).await;
    let mut reply = match result {
        Ok(reply) => reply,
        Err(e) => {
            h.desk.release(&id);
            return Err(e);
        }
    };
    h.desk.decided(&id);
    if reply.ok() {
        h.tally.decided(false);
        return Ok(());
    }
    if reply.error() == Some(ErrorCode::RequestNotPending) {
        h.tally.decided(true);
        return user.set_success(&mut reply.metric);
    }
    unexpected(user, &h, step, reply)
}

/// A reason, weighted as admins pick them: mostly unrecognised devices.
fn reject_reason(draw: f64) -> RejectReason {
    match draw {
        d if d < 0.5 => RejectReason::UnrecognizedDevice,
        d if d < 0.7 => RejectReason::WrongRoom,
        d if d < 0.85 => RejectReason::DuplicateRequest,
        d if d < 0.95 => RejectReason::SecurityConcern,
        _ => RejectReason::Other,
    }
}
