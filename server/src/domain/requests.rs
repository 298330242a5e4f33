//! The approval queue: list requests, approve, reject with a reason.

use super::ids::IdKind;
use super::store::{AccountRef, Decision, RequestRecord, lookup};
use super::{ApiError, Core, Event};
use crate::clock::rfc3339;
use otpfleet_protocol::{ErrorCode, RejectReason, RequestPage, RequestStatus, RequestView};

/// The filter and page of `GET /v1/requests`.
#[derive(Debug, Clone)]
pub struct RequestQuery {
    pub status: RequestStatus,
    pub limit: usize,
    /// The last request id of the previous page.
    pub cursor: Option<String>,
}

impl Core {
    /// One page of requests with this status, oldest first. The approval queue
    /// (`awaiting_approval`) is read from its own index; other statuses walk the accounts.
    pub fn list_requests(&self, q: &RequestQuery, now_ms: u64) -> Result<RequestPage, ApiError> {
        let after = match &q.cursor {
            Some(c) => IdKind::Request.parse(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "cursor is not one this server gave out",
                )
            })?,
            None => 0,
        };
        let mut requests = if q.status == RequestStatus::AwaitingApproval {
            self.pending_after(after, q.limit + 1, now_ms)
        } else {
            self.requests_with_status(q.status, after, now_ms)
        };
        requests.truncate(q.limit + 1);
        let next_cursor = if requests.len() > q.limit {
            requests.truncate(q.limit);
            requests.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(RequestPage {
            requests,
            next_cursor,
        })
    }

    /// Up to `want` pending requests with ids above `after`; drops stale queue entries.
    fn pending_after(&self, after: u64, want: usize, now_ms: u64) -> Vec<RequestView> {
        let mut views = Vec::new();
        let mut stale = Vec::new();
        let mut from = after;
        while views.len() < want {
            let ids = self.store.pending.after(from, 256);
            let Some(&last) = ids.last() else { break };
            from = last;
            for id in ids {
                match self.view_if(id, RequestStatus::AwaitingApproval, now_ms) {
                    Some(view) => views.push(view),
                    None => stale.push(id),
                }
            }
        }
        for id in stale {
            self.store.pending.remove(id);
        }
        views.truncate(want);
        views
    }

    fn requests_with_status(
        &self,
        status: RequestStatus,
        after: u64,
        now_ms: u64,
    ) -> Vec<RequestView> {
        let mut ids: Vec<u64> = self
            .store
            .by_request
            .iter()
            .map(|e| *e.key())
            .filter(|id| *id > after)
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.view_if(id, status, now_ms))
            .collect()
    }

    /// The view of request `id` if it is still current and has this status.
    fn view_if(&self, id: u64, status: RequestStatus, now_ms: u64) -> Option<RequestView> {
        let account = lookup(&self.store.by_request, &id)?;
        let a = account.lock();
        let slot = a.otp.as_ref()?;
        let r = slot.request.as_ref().filter(|r| r.id == id)?;
        (slot.request_status(r, now_ms) == status).then(|| a.request_view(slot, r, now_ms))
    }

    fn admin_request(&self, id: &str) -> Result<(u64, AccountRef), ApiError> {
        let n = IdKind::Request.parse_or_not_found(id)?;
        let account =
            lookup(&self.store.by_request, &n).ok_or_else(|| IdKind::Request.not_found(id))?;
        Ok((n, account))
    }

    /// Approves request `id`; with `if_match` (an `If-Match` header), only if it is still what
    /// the admin vetted (its `etag`).
    pub fn approve(
        &self,
        id: &str,
        if_match: Option<&str>,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, if_match, Decision::Approved, now_ms, by)
    }

    /// Rejects request `id` for `reason`; `if_match` as with [`Core::approve`].
    pub fn reject(
        &self,
        id: &str,
        if_match: Option<&str>,
        reason: RejectReason,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, if_match, Decision::Rejected(reason), now_ms, by)
    }

    /// Decides a pending request once; a request no longer pending answers 409 with its status.
    fn decide(
        &self,
        id: &str,
        if_match: Option<&str>,
        decision: Decision,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        let (n, account) = self.admin_request(id)?;
        let mut guard = account.lock();
        let a = &mut *guard;
        let slot = a
            .otp
            .as_mut()
            .ok_or_else(|| IdKind::Request.not_found(id))?;
        let expires_ms = slot.expires_ms;
        let r = slot
            .request
            .as_mut()
            .filter(|r| r.id == n)
            .ok_or_else(|| IdKind::Request.not_found(id))?;
        // Made once: checked against If-Match, then shown in the answer.
        let tag = r.vetted_tag(a.id, &a.upn);
        if let Some(tags) = if_match.filter(|tags| !if_match_holds(tags, &tag)) {
            return Err(not_vetted(id, tags, &a.upn, r));
        }
        let status = r.status(expires_ms, now_ms);
        if status != RequestStatus::AwaitingApproval {
            let when = match status {
                RequestStatus::Expired => format!(" (its OTP expired at {})", rfc3339(expires_ms)),
                _ => String::new(),
            };
            return Err(ApiError::new(
                ErrorCode::RequestNotPending,
                format!("request {id} is {status}{when}, no longer awaiting approval"),
            ));
        }
        self.store.decide(r, decision, now_ms);
        let rejected = match decision {
            Decision::Rejected(reason) => Some(reason),
            _ => None,
        };
        let account_id = a.id;
        self.emit(|| Event::Decided {
            account: account_id,
            request: n,
            rejected,
            at_ms: now_ms,
            by: by.map(str::to_owned),
        });
        let view = {
            let slot = a
                .otp
                .as_ref()
                .ok_or_else(|| IdKind::Request.not_found(id))?;
            let r = slot
                .request
                .as_ref()
                .ok_or_else(|| IdKind::Request.not_found(id))?;
            a.tagged_view(slot, r, now_ms, tag)
        };
        Ok(view)
    }
}

/// The refusal of a decision whose `If-Match` does not name what request `id` (of account
/// `upn`) now is.
fn not_vetted(id: &str, tags: &str, upn: &str, r: &RequestRecord) -> ApiError {
    let shown: String = tags.chars().take(80).collect();
    let d = &r.device;
    ApiError::new(
        ErrorCode::RequestChanged,
        format!(
            "request {id} is not the one you vetted (If-Match: {shown}): it is {upn}'s, from a {} {} serial {}, asked at {}; list the requests again and decide on what you see",
            d.make,
            d.model,
            d.serial,
            rfc3339(r.requested_ms)
        ),
    )
}

/// Whether an `If-Match` header holds for a request tagged `tag`: `*`, or a list holding `tag`
/// (compared strongly, as RFC 9110 13.1.1 says: a weak tag never matches).
fn if_match_holds(header: &str, tag: &str) -> bool {
    header.trim() == "*" || header.split(',').any(|t| t.trim() == tag)
}
