//! The approval queue: list requests, approve, reject with a reason.

use super::gate::{if_match_holds, not_pending, not_vetted};
use super::ids::IdKind;
use super::store::{AccountRef, Decision, lookup};
use super::{ApiError, Core, Event};
use otpfleet_protocol::{ErrorCode, RejectReason, RequestPage, RequestStatus, RequestView};

/// The filter and page of `GET /v1/requests`.
#[derive(Debug, Clone)]
pub struct RequestQuery {
    pub status: RequestStatus,
    pub limit: usize,
    /// The last request id of the previous page.
    pub cursor: Option<String>,
}

impl RequestQuery {
    /// The request id the page starts after (0: the first page).
    pub(crate) fn after(&self) -> Result<u64, ApiError> {
        match &self.cursor {
            Some(c) => IdKind::Request.parse(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "cursor is not one this server gave out",
                )
            }),
            None => Ok(0),
        }
    }

    /// The page of `requests` (oldest first, at least the page's worth and one more when
    /// there are more): the next cursor is the last id shown when more follow.
    pub(crate) fn page(&self, mut requests: Vec<RequestView>) -> RequestPage {
        requests.truncate(self.limit + 1);
        let next_cursor = if requests.len() > self.limit {
            requests.truncate(self.limit);
            requests.last().map(|r| r.id.clone())
        } else {
            None
        };
        RequestPage {
            requests,
            next_cursor,
        }
    }
}

impl Core {
    /// One page of requests with this status, oldest first. The approval queue
    /// (`awaiting_approval`) is read from its own index; other statuses walk the accounts.
    pub fn list_requests(&self, q: &RequestQuery, now_ms: u64) -> Result<RequestPage, ApiError> {
        let after = q.after()?;
        let requests = if q.status == RequestStatus::AwaitingApproval {
            self.pending_after(after, q.limit + 1, now_ms)
        } else {
            self.requests_with_status(q.status, after, now_ms)
        };
        Ok(q.page(requests))
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
            return Err(not_vetted(id, tags, &a.upn, &r.device, r.requested_ms));
        }
        let status = r.status(expires_ms, now_ms);
        if status != RequestStatus::AwaitingApproval {
            return Err(not_pending(id, status, expires_ms));
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
