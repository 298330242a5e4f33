//! The console's first boot: device verification, redemption, polling, the one-time credential
//! hand-over, and manual sign-in.

use super::gate::{
    Admitted, Gate, hand_over_refused, invalid_otp, otp_expired, otp_used, pace_poll,
    redeemed_again, sent_again,
};
use super::ids::IdKind;
use super::secrets::{encode_poll_token, poll_token_matches};
use super::store::{AccountRef, OtpSlot, RequestRecord, lookup};
use super::{ApiError, Core, Event};
use otpfleet_protocol::{
    Credentials, ErrorCode, ManualSignInRequest, ManualSignInResponse, PollResponse, RedeemRequest,
    RedeemResponse, RequestStatus, VerifyRequest, VerifyResponse,
};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

impl Core {
    /// Device verification: a certified make and model with its HDMI ingest module connected
    /// gets a verification token.
    pub fn verify(&self, req: &VerifyRequest, now_ms: u64) -> Result<VerifyResponse, ApiError> {
        self.gate().verify(req, now_ms)
    }

    /// Redeems an OTP: the first redemption binds it to this console and opens a request;
    /// every later one, from any console, is refused.
    pub fn redeem(&self, req: &RedeemRequest, now_ms: u64) -> Result<RedeemResponse, ApiError> {
        self.redeem_from(req, None, now_ms)
    }

    /// Like [`Core::redeem`], from a client address: failed redemptions are throttled per
    /// address, per console serial from that address, and globally.
    pub fn redeem_from(
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
        let verified_ms = device.issued_ms;
        let device = device.into_device();
        let account = lookup(&self.store.by_otp, &key).ok_or_else(|| {
            self.throttle.failure(sources, now_ms);
            invalid_otp()
        })?;
        let auto_approve = self.auto_approve();
        let mut a = account.lock();
        let account_id = a.id;
        let slot = match a.otp.as_mut() {
            Some(slot) if bool::from(slot.key.ct_eq(&key)) => slot,
            // The OTP was replaced since the index was read.
            _ => {
                self.throttle.failure(sources, now_ms);
                return Err(invalid_otp());
            }
        };
        if let Some(again) = sent_again_to(slot, (&device, verified_ms), now_ms) {
            return Ok(again);
        }
        unredeemed(slot, now_ms)?;
        let id = self.store.next_request_id();
        let poll_token = self.secrets.entropy().poll_token();
        let interval_s = self.config.poll_interval_s;
        self.emit(|| Event::Redeemed {
            account: account_id,
            request: id,
            device: device.clone(),
            requested_ms: now_ms,
            auto_approved: auto_approve,
            poll_token,
            interval_s,
            verified_ms,
        });
        let request = RequestRecord::new(
            id,
            device,
            now_ms,
            auto_approve,
            (poll_token, interval_s, verified_ms),
        );
        self.store.open_request(&account, slot, request);
        self.throttle.success(sources);
        Ok(RedeemResponse {
            request_id: IdKind::Request.format(id),
            poll_token: encode_poll_token(&poll_token),
            status: if auto_approve {
                RequestStatus::Approved
            } else {
                RequestStatus::AwaitingApproval
            },
            interval_s: self.config.poll_interval_s,
        })
    }

    /// Finds a request by id. The caller checks the console's poll token under the account's
    /// lock: unknown ids and wrong tokens get the same answer, so the route reveals nothing.
    fn console_request(&self, id: &str) -> Result<(u64, AccountRef), ApiError> {
        let not_found = || IdKind::Request.not_found(id);
        let n = IdKind::Request.parse(id).ok_or_else(not_found)?;
        let account = lookup(&self.store.by_request, &n).ok_or_else(not_found)?;
        Ok((n, account))
    }

    /// The console polls its request. Polling faster than `interval_s` gets `slow_down` and a
    /// longer interval (RFC 8628).
    pub fn poll(&self, id: &str, poll_token: &str, now_ms: u64) -> Result<PollResponse, ApiError> {
        let (n, account) = self.console_request(id)?;
        let mut a = account.lock();
        let slot = a
            .otp
            .as_mut()
            .ok_or_else(|| IdKind::Request.not_found(id))?;
        let expires_ms = slot.expires_ms;
        let r = slot
            .request
            .as_mut()
            .filter(|r| r.id == n && poll_token_matches(&r.poll_token, poll_token))
            .ok_or_else(|| IdKind::Request.not_found(id))?;
        pace_poll(&mut r.interval_s, &mut r.last_poll_ms, now_ms)?;
        Ok(PollResponse {
            status: r.status(expires_ms, now_ms),
            reason: r.reason(),
            interval_s: r.interval_s,
        })
    }

    /// Hands the credentials to the console of an approved request, exactly once.
    pub fn sign_in(
        &self,
        id: &str,
        poll_token: &str,
        now_ms: u64,
    ) -> Result<Credentials, ApiError> {
        let (n, account) = self.console_request(id)?;
        let mut guard = account.lock();
        let a = &mut *guard;
        let slot = a
            .otp
            .as_mut()
            .ok_or_else(|| IdKind::Request.not_found(id))?;
        let status = match &slot.request {
            Some(r) if r.id == n && poll_token_matches(&r.poll_token, poll_token) => {
                slot.request_status(r, now_ms)
            }
            _ => return Err(IdKind::Request.not_found(id)),
        };
        if status != RequestStatus::Approved {
            return Err(hand_over_refused(status));
        }
        let password = slot.hand_over().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "the credentials of this request are gone",
            )
        })?;
        self.emit(|| Event::CredentialsHanded {
            account: a.id,
            request: n,
        });
        Ok(Credentials {
            upn: a.upn.clone(),
            display_name: a.display_name.clone(),
            password,
        })
    }

    /// Manual setup: the installer types the account's email and password on the console.
    /// Wrong passwords are throttled per account, per client address and globally, like
    /// redemptions (NIST SP 800-63B section 5.2.2).
    pub fn manual_sign_in(
        &self,
        req: &ManualSignInRequest,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<ManualSignInResponse, ApiError> {
        let account = self.account_by_upn(&req.email);
        let a = account.as_ref().map(|a| a.lock());
        let gate = Gate {
            throttle: &self.sign_in_throttle,
            ..self.gate()
        };
        gate.admit_manual_sign_in(req, address, a.as_deref(), now_ms)?;
        // Admitted, so the account exists; its lock is held from the check to the change.
        let Some(mut a) = a else {
            return Err(IdKind::Account.not_found(&req.email));
        };
        self.emit(|| Event::ManualSignedIn { account: a.id });
        // The account is signed in by other means: its OTP, if any, is withdrawn.
        self.store.sign_in_manually(&mut a);
        Ok(ManualSignInResponse {
            account_id: IdKind::Account.format(a.id),
            upn: a.upn.clone(),
            status: RequestStatus::SignedIn,
        })
    }
}

/// The answer to a redemption by `device` (verified at `verified_ms`) that is the one already
/// made with this OTP, sent again (see `gate::sent_again`): its request as it stands.
fn sent_again_to(
    slot: &OtpSlot,
    (device, verified_ms): (&otpfleet_protocol::Device, u64),
    now_ms: u64,
) -> Option<RedeemResponse> {
    let r = slot
        .request
        .as_ref()
        .filter(|r| sent_again(&r.device, r.verified_ms, device, verified_ms))?;
    let status = r.status(slot.expires_ms, now_ms);
    Some(redeemed_again(r.id, &r.poll_token, status, r.interval_s))
}

/// A redemption's OTP must be unused and unexpired.
fn unredeemed(slot: &OtpSlot, now_ms: u64) -> Result<(), ApiError> {
    if slot.request.is_some() {
        return Err(otp_used());
    }
    if now_ms >= slot.expires_ms {
        return Err(otp_expired(slot.expires_ms));
    }
    Ok(())
}
