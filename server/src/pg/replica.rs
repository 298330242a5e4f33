//! The domain over the PostgreSQL store: the same decisions as the embedded core (`Gate`, the
//! refusals in the same words), each transition carried out by one conditional statement.
//! Every answer is a contract answer: a database that fails is `503 storage_unavailable`,
//! naming it (never its password).

use super::polls::{Known, PollCache};
use super::{Lost, NewRequest, PgError, PgStore, Verdict};
use crate::catalogue::Catalogue;
use crate::config::ServerConfig;
use crate::domain::accounts::upn_key;
use crate::domain::gate::{
    Admitted, Gate, hand_over_refused, if_match_holds, invalid_otp, not_pending, not_vetted,
    otp_expired, otp_used,
};
use crate::domain::gate::{pace_poll, redeemed_again};
use crate::domain::requests::RequestQuery;
use crate::domain::secrets::poll_token_matches;
use crate::domain::secrets::{Secrets, decode_poll_token, encode_poll_token};
use crate::domain::store::{Decision, RequestFacts};
use crate::domain::throttle::Throttle;
use crate::domain::{ApiError, IdKind};
use otpfleet_protocol::{
    Credentials, ErrorCode, RedeemRequest, RedeemResponse, RejectReason, RequestPage,
    RequestStatus, RequestView, VerifyRequest, VerifyResponse,
};
use otpfleet_protocol::{ManualSignInRequest, ManualSignInResponse, PollResponse};
use std::net::IpAddr;
use std::sync::Arc;

/// How long a replica opening may wait for its listening connection.
const LISTENING_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// One replica's domain: its settings, the keys every replica shares, its own throttles (per
/// replica: README "Keeping intruders out" gives the guessing bound with several), its cache
/// of the requests consoles poll, and the shared store.
#[derive(Debug)]
pub struct PgCore {
    pub(super) config: ServerConfig,
    catalogue: Catalogue,
    pub(super) secrets: Secrets,
    throttle: Throttle,
    /// Wrong passwords of manual sign-ins, throttled apart from OTP guesses.
    sign_in_throttle: Throttle,
    pub(super) store: PgStore,
    pub(super) polls: Arc<PollCache>,
    /// The listener feeding `polls` (stopped with the core).
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgCore {
    fn drop(&mut self) {
        self.listener.abort();
    }
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
        let polls = Arc::new(PollCache::default());
        let listener = tokio::spawn(store.clone().listen(Arc::clone(&polls)));
        // Ready (healthy) once it hears of changes: within a moment of reaching the database.
        let mut waited = std::time::Duration::ZERO;
        while !polls.listening() {
            if waited >= LISTENING_WITHIN {
                listener.abort();
                return Err(PgError::Unreachable {
                    target: store.target().to_owned(),
                    why: format!("could not LISTEN for changes within {LISTENING_WITHIN:?}"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            waited += std::time::Duration::from_millis(10);
        }
        Ok(PgCore {
            throttle: Throttle::new(config.throttle),
            sign_in_throttle: Throttle::new(config.throttle),
            config,
            catalogue,
            secrets,
            store,
            polls,
            listener,
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether this replica reaches the database now (its listening connection is up): what
    /// `/healthz` answers, whatever the pool is doing.
    pub fn reaches_database(&self) -> bool {
        self.polls.listening()
    }

    /// The preferences in force, for every replica.
    pub async fn preferences(&self) -> Result<otpfleet_protocol::Preferences, ApiError> {
        self.store.preferences().await.map_err(unavailable)
    }

    /// Failed and throttled redemptions at this replica so far.
    pub fn throttle_counts(&self) -> crate::domain::throttle::ThrottleCounts {
        self.throttle.counts()
    }

    /// The guessing bound with `live_otps` live OTPs, at this replica's throttle: with N
    /// replicas, N times as many guesses are allowed (README "Keeping intruders out").
    pub fn guessing_bound(
        &self,
        live_otps: u64,
        validity_hours: u32,
    ) -> otpfleet_protocol::GuessingBound {
        crate::domain::guessing_bound(live_otps, self.throttle.allowed_failures(validity_hours))
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
        let mark = self.polls.before_read();
        let verified_ms = device.issued_ms;
        let device = device.into_device();
        let request = NewRequest {
            device: &device,
            requested_ms: now_ms,
            poll_token,
            interval_s: self.config.poll_interval_s,
            verified_ms,
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
        if let Some(again) = won.again {
            let status = again.state.status(won.expires_ms, now_ms);
            let (token, interval) = (&again.poll_token, again.interval_s);
            return Ok(redeemed_again(won.request, token, status, interval));
        }
        self.throttle.success(sources);
        // The console's first poll comes here or to another replica; here it is paced from
        // the redemption, as the embedded server paces it.
        let known = Known {
            poll_token,
            state: match won.auto_approved {
                true => Decision::Approved,
                false => Decision::Pending,
            },
            expires_ms: won.expires_ms,
            interval_s: self.config.poll_interval_s,
            last_poll_ms: now_ms,
        };
        self.polls.insert(won.request, known, mark);
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

    /// The console polls its request: answered from this replica's cache when nothing changed
    /// since it last read the request (no database round trip), paced per replica (a console
    /// told to slow down here may poll another replica sooner).
    pub async fn poll(
        &self,
        id: &str,
        poll_token: &str,
        now_ms: u64,
    ) -> Result<PollResponse, ApiError> {
        let not_found = || IdKind::Request.not_found(id);
        let n = IdKind::Request.parse(id).ok_or_else(not_found)?;
        let answer = |k: &mut Known| {
            if !poll_token_matches(&k.poll_token, poll_token) {
                return Err(not_found());
            }
            pace_poll(&mut k.interval_s, &mut k.last_poll_ms, now_ms)?;
            Ok(PollResponse {
                status: k.state.status(k.expires_ms, now_ms),
                reason: k.state.reason(),
                interval_s: k.interval_s,
            })
        };
        if let Some(answered) = self.polls.update(n, answer) {
            return answered;
        }
        let mark = self.polls.before_read();
        let row = self.store.poll_row(n).await.map_err(unavailable)?;
        let mut known = row.ok_or_else(not_found)?;
        let answered = answer(&mut known);
        self.polls.insert(n, known, mark);
        answered
    }

    /// Manual setup: the installer types the account's email and password on the console
    /// (decided by the domain's gate, as the embedded server decides it).
    pub async fn manual_sign_in(
        &self,
        req: &ManualSignInRequest,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<ManualSignInResponse, ApiError> {
        let account = self
            .store
            .account_by_key(&upn_key(&req.email))
            .await
            .map_err(unavailable)?;
        let gate = Gate {
            throttle: &self.sign_in_throttle,
            ..self.gate()
        };
        gate.admit_manual_sign_in(req, address, account.as_ref(), now_ms)?;
        let invalid = || {
            ApiError::new(
                ErrorCode::InvalidCredentials,
                "the email or password is not right; check them and try again",
            )
        };
        let a = account.ok_or_else(invalid)?;
        let hash = a.password_hash.ok_or_else(invalid)?;
        // Signed in only if the password is still the one checked.
        let signed_in = self
            .store
            .sign_in_manually(a.id, &hash, now_ms)
            .await
            .map_err(unavailable)?;
        if !signed_in {
            return Err(invalid());
        }
        Ok(ManualSignInResponse {
            account_id: IdKind::Account.format(a.id),
            upn: a.upn,
            status: RequestStatus::SignedIn,
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
pub(super) fn unavailable(e: PgError) -> ApiError {
    ApiError::new(
        ErrorCode::StorageUnavailable,
        format!(
            "{e}; this request may or may not have been applied: send it again once GET \
             /healthz answers 200"
        ),
    )
}
