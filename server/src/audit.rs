//! The audit log as people and `GET /v1/audit` see it: journal entries rendered without their
//! secrets (no OTP hash, password, poll token or token hash ever leaves).

use crate::clock::rfc3339;
use crate::domain::{Event, IdKind};
use crate::journal::{Entry, hex};
use otpfleet_protocol::{AuditAction, AuditEntry};

/// The audit view of one journal entry.
pub fn entry(e: &Entry) -> AuditEntry {
    let account = |id: u64| Some(IdKind::Account.format(id));
    let batch = |id: u64| Some(IdKind::Batch.format(id));
    let request = |id: u64| Some(IdKind::Request.format(id));
    let mut out = AuditEntry {
        seq: e.seq,
        at: rfc3339(e.at_ms),
        action: AuditAction::AccountImported,
        account_id: None,
        upn: None,
        batch_id: None,
        request_id: None,
        serial: None,
        reason: None,
        with_passwords: None,
        auto_approved: None,
        preferences: None,
        expired_at: None,
        token_id: None,
        token_name: None,
        by: None,
        hash: hex(&e.link),
    };
    match &e.event {
        Event::AccountUpserted { id, upn, by, .. } => {
            out.account_id = account(*id);
            out.upn = Some(upn.clone());
            out.by.clone_from(by);
        }
        Event::OtpIssued {
            account: a,
            batch: b,
            by,
            ..
        } => {
            out.by.clone_from(by);
            out.action = AuditAction::OtpGenerated;
            out.account_id = account(*a);
            out.batch_id = batch(*b);
        }
        Event::BatchCreated { batch: b, by, .. } => {
            out.by.clone_from(by);
            out.action = AuditAction::BatchCreated;
            out.batch_id = batch(*b);
        }
        Event::BatchExported {
            batch: b,
            with_passwords,
            by,
        } => {
            out.by.clone_from(by);
            out.action = AuditAction::BatchExported;
            out.batch_id = batch(*b);
            out.with_passwords = Some(*with_passwords);
        }
        Event::Redeemed {
            account: a,
            request: r,
            device,
            auto_approved,
            ..
        } => {
            out.action = AuditAction::OtpRedeemed;
            out.account_id = account(*a);
            out.request_id = request(*r);
            out.serial = Some(device.serial.clone());
            out.auto_approved = Some(*auto_approved);
        }
        Event::Decided {
            account: a,
            request: r,
            rejected,
            by,
            ..
        } => {
            out.by.clone_from(by);
            out.action = match rejected {
                Some(_) => AuditAction::RequestRejected,
                None => AuditAction::RequestApproved,
            };
            out.account_id = account(*a);
            out.request_id = request(*r);
            out.reason = *rejected;
        }
        Event::CredentialsHanded {
            account: a,
            request: r,
        } => {
            out.action = AuditAction::CredentialsHandedOver;
            out.account_id = account(*a);
            out.request_id = request(*r);
        }
        Event::ManualSignedIn { account: a } => {
            out.action = AuditAction::ManualSignIn;
            out.account_id = account(*a);
        }
        Event::PreferencesSet { preferences, by } => {
            out.by.clone_from(by);
            out.action = AuditAction::PreferencesChanged;
            out.preferences = Some(*preferences);
        }
        Event::OtpExpired {
            account: a,
            batch: b,
            expires_ms,
        } => {
            out.action = AuditAction::OtpExpired;
            out.account_id = account(*a);
            out.batch_id = batch(*b);
            out.expired_at = Some(rfc3339(*expires_ms));
        }
        Event::AdminTokenAdded { token, name, .. } => {
            out.action = AuditAction::AdminTokenAdded;
            out.token_id = Some(crate::tokens::label(*token));
            out.token_name = Some(name.clone());
        }
        Event::AdminTokenRevoked { token, name } => {
            out.action = AuditAction::AdminTokenRevoked;
            out.token_id = Some(crate::tokens::label(*token));
            out.token_name = Some(name.clone());
        }
    }
    out
}
