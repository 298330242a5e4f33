//! The domain over the PostgreSQL store: the same decisions as the embedded core (`Gate`, the
//! refusals in the same words), each transition carried out by one conditional statement.
//! Every answer is a contract answer: a database that fails is `503 storage_unavailable`,
//! naming it (never its password).

use super::{Lost, NewRequest, PgError, PgStore, Verdict};
use crate::catalogue::Catalogue;
use crate::config::ServerConfig;
use crate::domain::gate::{
    Admitted, Gate, hand_over_refused, if_match_holds, invalid_otp, not_pending, not_vetted,
    otp_expired, otp_used,
};
use crate::domain::requests::RequestQuery;
use crate::domain::secrets::{Secrets, decode_poll_token, encode_poll_token};
use crate::domain::store::{Decision, RequestFacts};
use crate::domain::throttle::Throttle;
use crate::domain::{ApiError, IdKind};
use otpfleet_protocol::{
    Credentials, ErrorCode, RedeemRequest, RedeemResponse, RejectReason, RequestPage,
    RequestStatus, RequestView, VerifyRequest, VerifyResponse,
};
use std::net::IpAddr;

/// One replica's domain: its settings, the keys every replica shares, its own throttles (per
/// replica so far: which counters replicas must share is decided with `serve`'s wiring), and
/// the shared store.
#[derive(Debug)]
pub struct PgCore {
    config: ServerConfig,
    catalogue: Catalogue,
    secrets: Secrets,
    throttle: Throttle,
    store: PgStore,
}

impl PgCore {
    /// The domain over `store`, whose schema must be this build's; its keys are the shared
    /// secret's.
    pub async fn open(
        store: PgStore,
        config: ServerConfig,
        catalogue: Catalogue,
    ) -> Result<PgCore, PgError> {
        store.check_schema().await?;
        let secrets = store.secrets().await?;
        Ok(PgCore {
            throttle: Throttle::new(config.throttle),
            config,
            catalogue,
            secrets,
            store,
        })
    }

    pub fn store(&self) -> &PgStore {
        &self.store
    }

    fn gate(&self) -> Gate<'_> {
        Gate {
            config: &self.config,
            catalogue: &self.catalogue,
            secrets: &self.secrets,
            throttle: &self.throttle,
        }
    }

    /// Device verification (no state: the embedded core's decision, with the shared keys).
    pub fn verify(&self, req: &VerifyRequest, now_ms: u64) -> Result<VerifyResponse, ApiError> {
        self.gate().verify(req, now_ms)
    }

    /// Redeems an OTP: the first redemption, on any replica, opens the request; every later
    /// one is refused as the embedded core refuses it.
    pub async fn redeem_from(
        &self,
        req: &RedeemRequest,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<RedeemResponse, ApiError> {
        let Admitted {
            device,
            key,
            sources,
            n,
        } = self.gate().admit_redemption(req, address, now_ms)?;
        let sources = &sources[..n];
        let poll_token = self.secrets.entropy().poll_token();
        let device = device.into_device();
        let request = NewRequest {
            device: &device,
            requested_ms: now_ms,
            poll_token,
            interval_s: self.config.poll_interval_s,
        };
        let won = match self
            .store
            .redeem(&key, request)
            .await
            .map_err(unavailable)?
        {
            Ok(won) => won,
            Err(Lost::OtpUsed) => return Err(otp_used()),
            Err(Lost::OtpExpired { expires_ms }) => return Err(otp_expired(expires_ms)),
            Err(Lost::Unknown | Lost::Status(_)) => {
                self.throttle.failure(sources, now_ms);
                return Err(invalid_otp());
            }
        };
        self.throttle.success(sources);
        Ok(RedeemResponse {
            request_id: IdKind::Request.format(won.request),
            poll_token: encode_poll_token(&poll_token),
            status: match won.auto_approved {
                true => RequestStatus::Approved,
                false => RequestStatus::AwaitingApproval,
            },
            interval_s: self.config.poll_interval_s,
        })
    }

    /// Hands the credentials of an approved request to its console, once across replicas.
    pub async fn sign_in(
        &self,
        id: &str,
        poll_token: &str,
        now_ms: u64,
    ) -> Result<Credentials, ApiError> {
        let not_found = || IdKind::Request.not_found(id);
        let n = IdKind::Request.parse(id).ok_or_else(not_found)?;
        let token = decode_poll_token(poll_token).ok_or_else(not_found)?;
        match self
            .store
            .hand_over(n, &token, now_ms)
            .await
            .map_err(unavailable)?
        {
            Ok(handed) => Ok(Credentials {
                upn: handed.upn,
                display_name: handed.display_name,
                password: handed.credential,
            }),
            Err(Lost::Status(status)) => Err(hand_over_refused(status)),
            Err(_) => Err(not_found()),
        }
    }
}

impl PgCore {
    /// One page of requests with this status, oldest first, paged as the embedded core pages.
    pub async fn list_requests(
        &self,
        q: &RequestQuery,
        now_ms: u64,
    ) -> Result<RequestPage, ApiError> {
        let after = q.after()?;
        let rows = self
            .store
            .requests_with_status(q.status, after, q.limit + 1, now_ms)
            .await
            .map_err(unavailable)?;
        let views = rows
            .iter()
            .map(|row| {
                let facts = row.facts();
                facts.view(now_ms, facts.vetted_tag())
            })
            .collect();
        Ok(q.page(views))
    }

    /// Approves request `id`; with `if_match`, only if it is still what the admin vetted.
    pub async fn approve(
        &self,
        id: &str,
        if_match: Option<&str>,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, if_match, Verdict::Approve, now_ms, by)
            .await
    }

    /// Rejects request `id` for `reason`; `if_match` as with [`PgCore::approve`].
    pub async fn reject(
        &self,
        id: &str,
        if_match: Option<&str>,
        reason: RejectReason,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        self.decide(id, if_match, Verdict::Reject(reason), now_ms, by)
            .await
    }

    /// Decides a pending request once, across replicas: the store's conditional statement. What
    /// the admin vetted is checked on a read before it: a request id never names another
    /// request (ids come from a sequence), and of what its tag covers only the upn's spelling
    /// can change for an id (a re-import of the same account), so a decision racing that
    /// re-import still lands on the console the admin vetted.
    async fn decide(
        &self,
        id: &str,
        if_match: Option<&str>,
        verdict: Verdict,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<RequestView, ApiError> {
        let n = IdKind::Request.parse_or_not_found(id)?;
        let row = self.store.request_row(n).await.map_err(unavailable)?;
        let row = row.ok_or_else(|| IdKind::Request.not_found(id))?;
        let facts = row.facts();
        let tag = facts.vetted_tag();
        if let Some(tags) = if_match.filter(|tags| !if_match_holds(tags, &tag)) {
            return Err(not_vetted(
                id,
                tags,
                &row.upn,
                &row.device,
                row.requested_ms,
            ));
        }
        match self.store.decide(n, verdict, now_ms, by).await {
            Ok(Ok(_)) => {
                let state = match verdict {
                    Verdict::Approve => Decision::Approved,
                    Verdict::Reject(reason) => Decision::Rejected(reason),
                };
                let decided = RequestFacts {
                    state,
                    decided_ms: Some(now_ms),
                    ..facts
                };
                Ok(decided.view(now_ms, tag))
            }
            Ok(Err(Lost::Status(status))) => Err(not_pending(id, status, row.expires_ms)),
            Ok(Err(_)) => Err(IdKind::Request.not_found(id)),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// A database failure as the contract answers it. A statement whose answer was lost may have
/// committed, so the answer does not say that nothing was kept.
fn unavailable(e: PgError) -> ApiError {
    ApiError::new(
        ErrorCode::StorageUnavailable,
        format!(
            "{e}; this request may or may not have been applied: send it again once GET \
             /healthz answers 200"
        ),
    )
}
