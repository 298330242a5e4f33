//! The decisions every store shares: what a console's request may do before any state is
//! touched (its device, its verification token, its OTP's form, the throttles), and the
//! refusals both stores give in the same words. The embedded core (`Core`) and the PostgreSQL
//! core (`pg::PgCore`) each pass their requests through a `Gate` of their own keys and
//! throttles, then carry out the transition in their own store.

use super::ApiError;
use super::accounts::check_text;
use super::secrets::{OtpKey, Secrets, VerifiedDevice};
use super::store::AccountRecord;
use super::throttle::{Source, Throttle};
use crate::catalogue::{Catalogue, Certification};
use crate::clock::rfc3339;
use crate::config::ServerConfig;
use otpfleet_protocol::limits::MAX_SERIAL_BYTES;
use otpfleet_protocol::{
    Device, ErrorCode, ManualSignInRequest, OtpCode, Readiness, RedeemRequest, RedeemResponse,
    RequestStatus, VerifyRequest, VerifyResponse,
};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// A store's keys, settings and throttles, as the decisions need them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate<'a> {
    pub config: &'a ServerConfig,
    pub catalogue: &'a Catalogue,
    pub secrets: &'a Secrets,
    pub throttle: &'a Throttle,
}

/// A redemption let through the gate: the device its token vouches for, its OTP's keyed hash,
/// and the sources (`sources[..n]`) its outcome is counted against.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub device: VerifiedDevice,
    pub key: OtpKey,
    pub sources: [Source; 2],
    pub n: usize,
}

impl Gate<'_> {
    /// Device verification: a certified make and model with its HDMI ingest module connected
    /// gets a verification token.
    pub fn verify(&self, req: &VerifyRequest, now_ms: u64) -> Result<VerifyResponse, ApiError> {
        check_device(req)?;
        if self.catalogue.certification(&req.make, &req.model) == Certification::NotCertified {
            return Err(ApiError::new(
                ErrorCode::UncertifiedDevice,
                format!(
                    "{} {} is not a certified console; contact the manufacturer",
                    req.make, req.model
                ),
            ));
        }
        if !req.hdmi_ingest {
            return Err(ApiError::new(
                ErrorCode::VerificationInfoNotFound,
                "verification information not found: connect the HDMI ingest module that \
                 ships with the console and restart it; if that does not help, contact the \
                 manufacturer",
            ));
        }
        let device = VerifiedDevice {
            make: req.make.trim().to_owned(),
            model: req.model.trim().to_owned(),
            serial: req.serial.trim().to_owned(),
            issued_ms: now_ms,
        };
        Ok(VerifyResponse {
            verification_token: self.secrets.seal_verification(&device),
            expires_at: rfc3339(now_ms + self.config.verification_ttl_ms),
        })
    }

    /// The device a verification token vouches for, if this server sealed it and it has not
    /// expired.
    pub fn open_token(&self, token: &str, now_ms: u64) -> Result<VerifiedDevice, ApiError> {
        let device = self.secrets.open_verification(token).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidVerificationToken,
                "the verification token is not one this server issued; verify the console again",
            )
        })?;
        if now_ms
            >= device
                .issued_ms
                .saturating_add(self.config.verification_ttl_ms)
        {
            return Err(ApiError::new(
                ErrorCode::InvalidVerificationToken,
                "the verification token has expired; verify the console again",
            ));
        }
        Ok(device)
    }

    /// Lets a redemption through, or refuses it: a malformed OTP or a bad token, or a source
    /// past its budget of failures (per address, per console serial from that address).
    pub fn admit_redemption(
        &self,
        req: &RedeemRequest,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Result<Admitted, ApiError> {
        let code = OtpCode::parse(&req.otp)
            .map_err(|e| ApiError::new(ErrorCode::MalformedOtp, format!("{e}; check the OTP")));
        let device = match self.open_token(&req.verification_token, now_ms) {
            Ok(device) => device,
            Err(e) => return Err(code.err().unwrap_or(e)),
        };
        let serial = self.throttle.serial(&device.serial, address);
        let (sources, n) = match address {
            Some(ip) => ([serial, Source::Address(ip)], 2),
            None => ([serial, serial], 1),
        };
        if let Some(wait_s) = self.throttle.check(&sources[..n], now_ms) {
            return Err(too_many("OTPs", wait_s));
        }
        let code = code.inspect_err(|_| self.throttle.failure(&sources[..n], now_ms))?;
        Ok(Admitted {
            key: self.secrets.otp_key(&code),
            device,
            sources,
            n,
        })
    }
}

impl Gate<'_> {
    /// Lets a manual sign-in (the account's email and password typed on the console) through,
    /// or refuses it; `account` is the account its email names, if any. Wrong passwords are
    /// throttled per account, per client address and globally, like redemptions (NIST SP
    /// 800-63B section 5.2.2): this gate's throttle is the sign-in throttle.
    pub fn admit_manual_sign_in(
        &self,
        req: &ManualSignInRequest,
        address: Option<IpAddr>,
        account: Option<&AccountRecord>,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        self.open_token(&req.verification_token, now_ms)?;
        let mut sources = Vec::with_capacity(2);
        sources.extend(address.map(Source::Address));
        sources.extend(account.map(|a| Source::Account(a.id)));
        if let Some(wait_s) = self.throttle.check(&sources, now_ms) {
            return Err(too_many("passwords", wait_s));
        }
        let fail = || {
            self.throttle.failure(&sources, now_ms);
            ApiError::new(
                ErrorCode::InvalidCredentials,
                "the email or password is not right; check them and try again",
            )
        };
        if req.email.len() > 256 || req.password.len() > 256 {
            return Err(fail());
        }
        let a = account.ok_or_else(fail)?;
        let presented = self.secrets.password_hash(&a.upn_lower, &req.password);
        let matches = a
            .password_hash
            .is_some_and(|stored| bool::from(stored.ct_eq(&presented)));
        if !matches {
            return Err(fail());
        }
        self.throttle.success(&sources);
        match a.readiness {
            Readiness::PasswordExpired => Err(ApiError::new(
                ErrorCode::PasswordExpired,
                "the account's password has expired; the admin must reset it",
            )),
            Readiness::SignInBlocked => Err(ApiError::new(
                ErrorCode::SignInBlocked,
                "sign-in is blocked for this account; the admin must unblock it",
            )),
            Readiness::NoActionNeeded | Readiness::NeedsLicense => Ok(()),
        }
    }
}

/// RFC 8628 section 3.5: a console told to slow down adds 5 seconds to its interval.
const SLOW_DOWN_STEP_S: u32 = 5;
/// The interval never grows past this.
const MAX_INTERVAL_S: u32 = 60;

/// The pacing of a console's polls: one polling faster than its interval (`interval_s`, with
/// its last poll at `last_poll_ms`) is told to slow down, and its interval grows. Inline: it
/// is on every poll (the instruction counts of the hot path are gated in CI), the refusal not.
#[inline]
pub(crate) fn pace_poll(
    interval_s: &mut u32,
    last_poll_ms: &mut u64,
    now_ms: u64,
) -> Result<(), ApiError> {
    // A 10% tolerance absorbs timer jitter on the console's side.
    let min_gap_ms = u64::from(*interval_s) * 900;
    let too_fast = now_ms.saturating_sub(*last_poll_ms) < min_gap_ms;
    *last_poll_ms = now_ms;
    match too_fast {
        false => Ok(()),
        true => Err(slow_down(interval_s)),
    }
}

/// A console polling too fast: its interval grows by `SLOW_DOWN_STEP_S` (up to
/// `MAX_INTERVAL_S`), and it is told the new one.
#[cold]
fn slow_down(interval_s: &mut u32) -> ApiError {
    *interval_s = (*interval_s + SLOW_DOWN_STEP_S).min(MAX_INTERVAL_S);
    ApiError::new(
        ErrorCode::SlowDown,
        format!("polled too fast; poll at most every {} s", interval_s),
    )
    .with_interval(*interval_s)
}

/// Whether a redemption by `device` is the one already made with the OTP by `made_by`, verified
/// at `verified_ms`: the console sending its redemption again (its answer lost to a failed
/// connection or a replica that died) with the same verification token. A token is its device
/// and issue time, sealed with the server's key, so no other console (nor anyone holding only
/// the OTP) can present it; the retry is answered with the request it made, not refused as
/// `otp_already_used`.
pub(crate) fn sent_again(made_by: &Device, verified_ms: u64, by: &Device, by_ms: u64) -> bool {
    verified_ms == by_ms && made_by == by
}

/// The answer to a redemption sent again: the request it made, as it stands.
pub(crate) fn redeemed_again(
    request: u64,
    poll_token: &[u8; 16],
    status: RequestStatus,
    interval_s: u32,
) -> RedeemResponse {
    RedeemResponse {
        request_id: super::IdKind::Request.format(request),
        poll_token: super::secrets::encode_poll_token(poll_token),
        status,
        interval_s,
    }
}

/// A source past its budget of wrong `what` (OTPs, passwords) waits `wait_s`.
pub(crate) fn too_many(what: &str, wait_s: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooManyAttempts,
        format!("too many wrong {what}; wait {wait_s} s before trying again"),
    )
    .with_retry_after(wait_s)
}

pub(crate) fn invalid_otp() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidOtp,
        "this OTP is not recognised; check it for typos, or ask the admin for the current one",
    )
}

/// A redemption of an OTP redeemed already.
pub(crate) fn otp_used() -> ApiError {
    ApiError::new(
        ErrorCode::OtpAlreadyUsed,
        "this OTP has already been used by a console; each OTP signs in one console once, \
         ask the admin for a new one",
    )
}

/// A redemption of an OTP that expired at `expires_ms`.
pub(crate) fn otp_expired(expires_ms: u64) -> ApiError {
    ApiError::new(
        ErrorCode::OtpExpired,
        format!(
            "this OTP expired at {}; ask the admin to generate a new one",
            rfc3339(expires_ms)
        ),
    )
}

/// A credential hand-over refused because the request is `status`, not approved.
pub(crate) fn hand_over_refused(status: RequestStatus) -> ApiError {
    match status {
        RequestStatus::SignedIn => ApiError::new(
            ErrorCode::CredentialsAlreadyIssued,
            "the credentials of this request were already handed to the console; they are \
             handed over once",
        ),
        other => ApiError::new(
            ErrorCode::RequestNotApproved,
            format!("the request is {other}, not approved; keep polling until approved"),
        ),
    }
}

fn check_device(req: &VerifyRequest) -> Result<(), ApiError> {
    let mut bad = Vec::new();
    for (field, value) in [("make", &req.make), ("model", &req.model)] {
        if let Err(e) = check_text(field, value) {
            bad.push(e);
        }
    }
    let serial = req.serial.trim();
    let serial_ok = !serial.is_empty()
        && serial.len() <= MAX_SERIAL_BYTES
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !serial_ok {
        bad.push(format!(
            "serial must be 1 to {MAX_SERIAL_BYTES} letters, digits or dashes"
        ));
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(ErrorCode::InvalidField, bad.join("; ")))
}

/// The refusal of a decision whose `If-Match` does not name what request `id` (of account
/// `upn`, from `d`, asked at `requested_ms`) now is.
pub(crate) fn not_vetted(
    id: &str,
    tags: &str,
    upn: &str,
    d: &otpfleet_protocol::Device,
    requested_ms: u64,
) -> ApiError {
    let shown: String = tags.chars().take(80).collect();
    ApiError::new(
        ErrorCode::RequestChanged,
        format!(
            "request {id} is not the one you vetted (If-Match: {shown}): it is {upn}'s, from a {} {} serial {}, asked at {}; list the requests again and decide on what you see",
            d.make,
            d.model,
            d.serial,
            rfc3339(requested_ms)
        ),
    )
}

/// Whether an `If-Match` header holds for a request tagged `tag`: `*`, or a list holding `tag`
/// (compared strongly, as RFC 9110 13.1.1 says: a weak tag never matches).
pub(crate) fn if_match_holds(header: &str, tag: &str) -> bool {
    header.trim() == "*" || header.split(',').any(|t| t.trim() == tag)
}

/// A decision on request `id`, which is `status` (its OTP expiring at `expires_ms`), no longer
/// awaiting approval.
pub(crate) fn not_pending(id: &str, status: RequestStatus, expires_ms: u64) -> ApiError {
    let when = match status {
        RequestStatus::Expired => format!(" (its OTP expired at {})", rfc3339(expires_ms)),
        _ => String::new(),
    };
    ApiError::new(
        ErrorCode::RequestNotPending,
        format!("request {id} is {status}{when}, no longer awaiting approval"),
    )
}
