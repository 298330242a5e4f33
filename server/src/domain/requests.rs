//! The approval queue: list requests, approve, reject with a reason.

use super::ids::IdKind;
use super::store::{AccountRef, Decision, lookup};
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

    pub fn approve(
        &self,
        id: &str,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, Decision::Approved, now_ms, by)
    }

    pub fn reject(
        &self,
        id: &str,
        reason: RejectReason,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, Decision::Rejected(reason), now_ms, by)
    }

    /// Decides a pending request once; a request no longer pending answers 409 with its status.
    fn decide(
        &self,
        id: &str,
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
            a.request_view(slot, r, now_ms)
        };
        Ok(view)
    }
}
