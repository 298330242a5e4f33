//! The transitions of the PostgreSQL store. Each single-use one is one conditional statement
//! whose `WHERE` says the state it must still be in; a transition that updated nothing lost,
//! and a read after it only names the refusal (see the module above).

use super::{PgError, PgStore};
use crate::domain::Event;
use crate::domain::gate::sent_again;
use crate::domain::store::Decision;
use otpfleet_protocol::{Device, License, Readiness, RejectReason, RequestStatus};

/// An account as an import gives it.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    pub upn: &'a str,
    /// `accounts::upn_key(upn)`.
    pub upn_key: &'a str,
    pub display_name: &'a str,
    pub license: License,
    pub readiness: Readiness,
    /// Kept when `None`: an import without a password does not clear the one known.
    pub password_hash: Option<[u8; 32]>,
}

/// An OTP generated for an account (its keyed hash, never the OTP).
#[derive(Debug, Clone, Copy)]
pub struct NewOtp<'a> {
    pub key: [u8; 32],
    pub generated_ms: u64,
    pub expires_ms: u64,
    /// The password to hand over at sign-in.
    pub credential: &'a str,
    /// Its keyed hash (`Secrets::password_hash`), the account's password from now on.
    pub password_hash: [u8; 32],
}

/// A console's redemption, as the domain made it. Whether it is approved at once is the
/// shared preference's (`auto_approve`), read by the statement that redeems.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    pub device: &'a Device,
    pub requested_ms: u64,
    pub poll_token: [u8; 16],
    pub interval_s: u32,
    /// When the verification token was issued (see `RequestRecord::verified_ms`).
    pub verified_ms: u64,
}

/// The redemption that won: its account, the request id the database handed out, when the
/// OTP expires, and whether it was approved at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    pub account: u64,
    pub request: u64,
    pub expires_ms: u64,
    pub auto_approved: bool,
    /// The console's own redemption sent again (`gate::sent_again`): its request as it
    /// stands, not a new one.
    pub again: Option<Again>,
}

/// A request found again by the redemption that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Again {
    pub poll_token: [u8; 16],
    pub(crate) state: Decision,
    pub interval_s: u32,
}

/// An admin's decision on a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject(RejectReason),
}

/// The hand-over that won: the account, its names, and the password it hands to the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedOver {
    pub account: u64,
    pub upn: String,
    pub display_name: String,
    pub credential: String,
}

/// What the loser of a transition learns: why it did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// No such OTP or request (or not this console's: a wrong poll token).
    Unknown,
    /// The OTP was redeemed already, by this console or another.
    OtpUsed,
    OtpExpired {
        expires_ms: u64,
    },
    /// The request is not in the state the transition needs; this is the one it is in.
    Status(RequestStatus),
}

/// A transition's result: done (`Ok`), or lost and why (`Err`); a database failure is the outer
/// error.
pub type Outcome<T> = Result<Result<T, Lost>, PgError>;

// Each transition inserts its audit event in the same statement (a data-modifying `WITH`), so
// a change and its entry commit together; the event's JSON is made here (`Event`, redacted)
// and the ids the database hands out are merged into it (`||`).

/// The redemption's statement (public for `scripts/pg-redeem-ceiling`, which runs it under
/// pgbench to measure what the database alone can do).
pub const REDEEM: &str = "WITH p AS (SELECT auto_approve FROM server), \
     t AS (UPDATE otps SET request_id = nextval('request_ids'), \
     make = $2, model = $3, serial = $4, requested_ms = $5, \
     state = CASE WHEN p.auto_approve THEN 'approved' ELSE 'pending' END, \
     decided_ms = CASE WHEN p.auto_approve THEN $5 END, \
     poll_token = $6, interval_s = $7, last_poll_ms = $5, verified_ms = $9 FROM p \
     WHERE otp_key = $1 AND request_id IS NULL AND expires_ms > $5 \
     RETURNING account_id, request_id, expires_ms, p.auto_approve), \
     e AS (INSERT INTO events (at_ms, body) SELECT $5, $8::text::jsonb || \
     jsonb_build_object('account', account_id, 'request', request_id, \
     'auto_approved', auto_approve) FROM t) \
     SELECT account_id, request_id, expires_ms, auto_approve FROM t";

/// What a redemption that updated nothing finds of the OTP: whether a request was made with
/// it, and by which device and token.
const LOST_REDEMPTION: &str = "SELECT request_id, expires_ms, make, model, serial, verified_ms, \
     poll_token, state, reject_reason, account_id, interval_s FROM otps WHERE otp_key = $1";

const DECIDE: &str = "WITH t AS (UPDATE otps SET state = $2, reject_reason = $3, \
     decided_ms = $4 WHERE request_id = $1 AND state = 'pending' AND expires_ms > $4 \
     RETURNING account_id), \
     e AS (INSERT INTO events (at_ms, body) SELECT $4, $5::text::jsonb || \
     jsonb_build_object('account', account_id) FROM t) \
     SELECT account_id FROM t";

/// `old` is the row as the statement's snapshot saw it: the password before it is cleared.
/// The poll token is compared by its hash, so the comparison's time says nothing of it.
const HAND_OVER: &str = "WITH t AS (UPDATE otps SET state = 'signed_in', credential = NULL \
     FROM otps AS old \
     WHERE otps.account_id = old.account_id AND otps.request_id = $1 \
     AND sha256(otps.poll_token) = sha256($2) AND otps.state = 'approved' \
     AND otps.credential IS NOT NULL \
     RETURNING otps.account_id, old.credential), \
     e AS (INSERT INTO events (at_ms, body) SELECT $3, $4::text::jsonb || \
     jsonb_build_object('account', account_id) FROM t) \
     SELECT t.account_id, t.credential, a.upn, a.display_name \
     FROM t JOIN accounts AS a ON a.id = t.account_id";

/// Regeneration: the new OTP replaces the old one and withdraws its request, in one statement;
/// the account's password becomes the one the OTP hands over (a manual sign-in checks it).
pub(super) const ISSUE: &str = "WITH p AS (UPDATE accounts SET password_hash = $8 WHERE id = $1), \
     t AS (INSERT INTO otps (account_id, otp_key, batch_id, \
     generated_ms, expires_ms, credential) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (account_id) DO UPDATE SET otp_key = EXCLUDED.otp_key, \
     batch_id = EXCLUDED.batch_id, generated_ms = EXCLUDED.generated_ms, \
     expires_ms = EXCLUDED.expires_ms, credential = EXCLUDED.credential, \
     expiry_logged = false, request_id = NULL, make = NULL, model = NULL, \
     serial = NULL, requested_ms = NULL, state = NULL, reject_reason = NULL, \
     decided_ms = NULL, poll_token = NULL, interval_s = NULL, last_poll_ms = NULL, \
     verified_ms = NULL \
     RETURNING account_id), \
     e AS (INSERT INTO events (at_ms, body) SELECT $4, $7::text::jsonb FROM t) \
     SELECT account_id FROM t";

/// An event as the `events` table keeps it: redacted, as JSON text (ids the database hands out
/// are merged in by the statement).
pub(super) fn body(event: Event) -> String {
    serde_json::to_string(&event.redacted()).unwrap_or_default()
}

impl PgStore {
    /// Creates the account, or updates the one with the same `upn_key`; answers its id. `by`
    /// (the admin token) and `at_ms` go to the audit event.
    pub async fn upsert_account(
        &self,
        a: NewAccount<'_>,
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, PgError> {
        let done = self.import(&[a], by, at_ms).await?;
        Ok(done[0].0)
    }

    /// Redeems the OTP whose keyed hash is `key`: the first redemption opens the request (the
    /// database hands out its id); every later one, on any replica, loses.
    pub async fn redeem(&self, key: &[u8; 32], r: NewRequest<'_>) -> Outcome<Redeemed> {
        let (client, statement) = self.prepared(REDEEM).await?;
        let event = body(Event::Redeemed {
            account: 0,
            request: 0,
            device: r.device.clone(),
            requested_ms: r.requested_ms,
            auto_approved: false,
            poll_token: [0; 16],
            interval_s: r.interval_s,
            verified_ms: r.verified_ms,
        });
        let won = client
            .query_opt(
                &statement,
                &[
                    &&key[..],
                    &r.device.make,
                    &r.device.model,
                    &r.device.serial,
                    &(r.requested_ms as i64),
                    &&r.poll_token[..],
                    &(r.interval_s as i32),
                    &event,
                    &(r.verified_ms as i64),
                ],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        if let Some(row) = won {
            return Ok(Ok(Redeemed {
                account: row.get::<_, i64>(0) as u64,
                request: row.get::<_, i64>(1) as u64,
                expires_ms: row.get::<_, i64>(2) as u64,
                auto_approved: row.get(3),
                again: None,
            }));
        }
        self.lost_redemption(&client, key, &r).await
    }

    /// Why a redemption that updated nothing lost: only which refusal to give is read now (or
    /// the request it made, when this is the console's own redemption sent again).
    async fn lost_redemption(
        &self,
        client: &deadpool_postgres::Client,
        key: &[u8; 32],
        r: &NewRequest<'_>,
    ) -> Outcome<Redeemed> {
        let row = client
            .query_opt(LOST_REDEMPTION, &[&&key[..]])
            .await
            .map_err(|e| self.failed(&e))?;
        let Some(row) = row else {
            return Ok(Err(Lost::Unknown));
        };
        let expires_ms = row.get::<_, i64>(1) as u64;
        let Some(request) = row.get::<_, Option<i64>>(0) else {
            return Ok(Err(Lost::OtpExpired { expires_ms }));
        };
        let made_by = Device {
            make: row.get(2),
            model: row.get(3),
            serial: row.get(4),
        };
        let verified_ms = row.get::<_, Option<i64>>(5).unwrap_or(0) as u64;
        if !sent_again(&made_by, verified_ms, r.device, r.verified_ms) {
            return Ok(Err(Lost::OtpUsed));
        }
        Ok(Ok(Redeemed {
            account: row.get::<_, i64>(9) as u64,
            request: request as u64,
            expires_ms,
            auto_approved: false,
            again: Some(Again {
                poll_token: row.get::<_, &[u8]>(6).try_into().unwrap_or_default(),
                state: decision_of(row.get(7), row.get(8)),
                interval_s: row.get::<_, i32>(10) as u32,
            }),
        }))
    }

    /// Decides pending request `request` once: the first decision wins, on any replica; a
    /// request no longer pending (decided, expired) loses with its status. Answers the
    /// request's account.
    pub async fn decide(
        &self,
        request: u64,
        verdict: Verdict,
        at_ms: u64,
        by: Option<&str>,
    ) -> Outcome<u64> {
        let (client, statement) = self.prepared(DECIDE).await?;
        let (state, reason) = match verdict {
            Verdict::Approve => ("approved", None),
            Verdict::Reject(reason) => ("rejected", Some(reason.as_str())),
        };
        let event = body(Event::Decided {
            account: 0,
            request,
            rejected: match verdict {
                Verdict::Approve => None,
                Verdict::Reject(reason) => Some(reason),
            },
            at_ms,
            by: by.map(str::to_owned),
        });
        let won = client
            .query_opt(
                &statement,
                &[&(request as i64), &state, &reason, &(at_ms as i64), &event],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        match won {
            Some(row) => Ok(Ok(row.get::<_, i64>(0) as u64)),
            None => Ok(Err(self.status_of(&client, request, None, at_ms).await?)),
        }
    }

    /// Hands the credentials of approved request `request` to the console holding its poll
    /// token, once: the first hand-over wins, on any replica.
    pub async fn hand_over(
        &self,
        request: u64,
        poll_token: &[u8; 16],
        now_ms: u64,
    ) -> Outcome<HandedOver> {
        let (client, statement) = self.prepared(HAND_OVER).await?;
        let event = body(Event::CredentialsHanded {
            account: 0,
            request,
        });
        let won = client
            .query_opt(
                &statement,
                &[
                    &(request as i64),
                    &&poll_token[..],
                    &(now_ms as i64),
                    &event,
                ],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        match won {
            Some(row) => Ok(Ok(HandedOver {
                account: row.get::<_, i64>(0) as u64,
                credential: row.get(1),
                upn: row.get(2),
                display_name: row.get(3),
            })),
            None => Ok(Err(self
                .status_of(&client, request, Some(poll_token), now_ms)
                .await?)),
        }
    }

    /// Why a transition on `request` lost: its status now, or `Unknown` (no such request, or
    /// `poll_token` given and not its own).
    async fn status_of(
        &self,
        client: &deadpool_postgres::Client,
        request: u64,
        poll_token: Option<&[u8; 16]>,
        now_ms: u64,
    ) -> Result<Lost, PgError> {
        let row = client
            .query_opt(
                "SELECT state, reject_reason, expires_ms, \
                 $2::bytea IS NULL OR sha256(poll_token) = sha256($2) \
                 FROM otps WHERE request_id = $1",
                &[&(request as i64), &poll_token.map(|t| &t[..])],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        let Some(row) = row.filter(|row| row.get::<_, bool>(3)) else {
            return Ok(Lost::Unknown);
        };
        let decision = decision_of(row.get(0), row.get(1));
        Ok(Lost::Status(
            decision.status(row.get::<_, i64>(2) as u64, now_ms),
        ))
    }
}

/// A request's stored state as the domain's [`Decision`].
pub(super) fn decision_of(state: &str, reason: Option<&str>) -> Decision {
    match state {
        "approved" => Decision::Approved,
        "signed_in" => Decision::SignedIn,
        "rejected" => Decision::Rejected(
            reason
                .and_then(RejectReason::parse)
                .unwrap_or(RejectReason::Other),
        ),
        _ => Decision::Pending,
    }
}
