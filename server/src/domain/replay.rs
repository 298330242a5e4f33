//! Replaying journaled events into a fresh core: recovery after a restart.

use super::Core;
use super::events::Event;
use super::ids::IdKind;
use super::store::{AccountFields, AccountRecord, AccountRef, Decision, OtpSlot, RequestRecord};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Most account creations a replay holds back waiting for the ones before them.
const MAX_REORDER: usize = 100_000;

/// Replays a journal into a fresh core, in order.
///
/// Journals written before account creations were numbered under the lock that assigns account
/// ids (fixed with the concurrent-import test) can hold two concurrent imports' creations out of
/// id order. Such a creation waits here until the creations before it have been applied, so
/// those data directories open again; anything else out of order is refused, as before.
#[derive(Debug)]
pub struct Replay<'a> {
    core: &'a Core,
    waiting: BTreeMap<u64, Event>,
}

impl<'a> Replay<'a> {
    pub fn new(core: &'a Core) -> Replay<'a> {
        Replay {
            core,
            waiting: BTreeMap::new(),
        }
    }

    /// Applies one event (and any held-back creations it makes next in line).
    pub fn apply(&mut self, event: Event) -> Result<(), String> {
        if let Event::AccountUpserted { id, .. } = &event {
            let next = self.core.store.accounts.read().len() as u64 + 1;
            if *id > next && self.core.store.account(*id).is_none() {
                if self.waiting.len() >= MAX_REORDER {
                    return Err(format!(
                        "more than {MAX_REORDER} accounts appear before {} was created",
                        IdKind::Account.format(next)
                    ));
                }
                self.waiting.insert(*id, event);
                return Ok(());
            }
        }
        self.core.apply(event)?;
        loop {
            let next = self.core.store.accounts.read().len() as u64 + 1;
            match self.waiting.remove(&next) {
                Some(held) => self.core.apply(held)?,
                None => return Ok(()),
            }
        }
    }

    /// Ends the replay: refused when a creation still waits for one the journal never had.
    pub fn finish(self) -> Result<(), String> {
        match self.waiting.keys().next() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} was created but {} never was: the journal is missing events",
                IdKind::Account.format(*first),
                IdKind::Account.format(self.core.store.accounts.read().len() as u64 + 1)
            )),
        }
    }
}

impl Core {
    /// Applies one journaled event. Events must come in journal order; one that does not fit
    /// the state (an unknown account, a request that is not the account's) is refused with what
    /// is wrong, never skipped silently.
    pub fn apply(&self, event: Event) -> Result<(), String> {
        match event {
            Event::AccountUpserted {
                id,
                upn,
                display_name,
                license,
                readiness,
                password_hash,
                by: _,
            } => {
                let fields = AccountFields {
                    upn_lower: super::accounts::upn_key(&upn),
                    upn,
                    display_name,
                    license,
                    readiness,
                    password_hash,
                };
                match self.store.account(id) {
                    Some(existing) => existing.lock().update(fields),
                    None => self.create_account(id, fields)?,
                }
            }
            Event::OtpIssued {
                account,
                key,
                batch,
                generated_ms,
                expires_ms,
                credential,
                password_hash,
                by: _,
            } => {
                let acc = self.known(account)?;
                let slot = OtpSlot::new(key, batch, (generated_ms, expires_ms), credential);
                self.store
                    .issue_otp(&acc, &mut acc.lock(), slot, password_hash);
                self.store.next_batch.fetch_max(batch, Ordering::Relaxed);
            }
            Event::BatchCreated {
                batch,
                export_expires_ms,
                by: _,
            } => {
                // The export's plaintext is never journaled: after a restart it is gone.
                self.store.add_batch(batch, export_expires_ms, None);
                self.store.next_batch.fetch_max(batch, Ordering::Relaxed);
            }
            event @ (Event::Redeemed { .. }
            | Event::Decided { .. }
            | Event::CredentialsHanded { .. }) => self.apply_to_request(event)?,
            Event::ManualSignedIn { account } => {
                self.store
                    .sign_in_manually(&mut self.known(account)?.lock());
            }
            Event::PreferencesSet { preferences, .. } => {
                self.store_preferences(&mut self.preferences.write(), preferences);
            }
            Event::OtpExpired {
                account,
                batch,
                expires_ms,
            } => {
                let acc = self.known(account)?;
                let mut a = acc.lock();
                // A later OTP replaced this one: its expiry is still to be recorded.
                if let Some(slot) = a
                    .otp
                    .as_mut()
                    .filter(|s| s.batch_id == batch && s.expires_ms == expires_ms)
                {
                    slot.expiry_logged = true;
                }
            }
            // In the log for the audit; no state of the core.
            Event::BatchExported { .. }
            | Event::AdminTokenAdded { .. }
            | Event::AdminTokenRevoked { .. } => {}
        }
        Ok(())
    }

    /// Applies an event of a console's request: redeemed, decided, signed in.
    fn apply_to_request(&self, event: Event) -> Result<(), String> {
        match event {
            Event::Redeemed {
                account,
                request,
                device,
                requested_ms,
                auto_approved,
                poll_token,
                interval_s,
                verified_ms,
            } => {
                let acc = self.known(account)?;
                let mut a = acc.lock();
                let slot = a
                    .otp
                    .as_mut()
                    .ok_or_else(|| format!("request {request} redeems no OTP"))?;
                let record = RequestRecord::new(
                    request,
                    device,
                    requested_ms,
                    auto_approved,
                    (poll_token, interval_s, verified_ms),
                );
                self.store.open_request(&acc, slot, record);
                self.store
                    .next_request
                    .fetch_max(request, Ordering::Relaxed);
            }
            Event::Decided {
                account,
                request,
                rejected,
                at_ms,
                by: _,
            } => {
                let acc = self.known(account)?;
                let mut a = acc.lock();
                let decision = rejected.map_or(Decision::Approved, Decision::Rejected);
                self.store
                    .decide(current(&mut a, request)?, decision, at_ms);
            }
            Event::CredentialsHanded { account, request } => {
                let acc = self.known(account)?;
                let mut a = acc.lock();
                current(&mut a, request)?;
                let handed = a.otp.as_mut().and_then(|slot| slot.hand_over());
                if handed.is_none() {
                    return Err(format!(
                        "{} hands over credentials that were handed over before",
                        IdKind::Request.format(request)
                    ));
                }
            }
            other => return Err(format!("{other:?} is not an event of a request")),
        }
        Ok(())
    }

    /// Creates account `id`, which must be the next one.
    fn create_account(&self, id: u64, fields: AccountFields) -> Result<(), String> {
        let mut accounts = self.store.accounts.write();
        if accounts.len() as u64 + 1 != id {
            return Err(format!(
                "account {} appears out of order",
                IdKind::Account.format(id)
            ));
        }
        let lower = fields.upn_lower.clone();
        let account: AccountRef = Arc::new(Mutex::new(AccountRecord::new(id, fields)));
        accounts.push(Arc::clone(&account));
        self.store.by_upn.insert(lower, account);
        Ok(())
    }

    fn known(&self, id: u64) -> Result<AccountRef, String> {
        self.store.account(id).ok_or_else(|| {
            format!(
                "an event names {}, which was never created",
                IdKind::Account.format(id)
            )
        })
    }
}

fn current(a: &mut AccountRecord, request: u64) -> Result<&mut RequestRecord, String> {
    a.otp
        .as_mut()
        .and_then(|s| s.request.as_mut())
        .filter(|r| r.id == request)
        .ok_or_else(|| {
            format!(
                "an event names {}, which is not its account's current request",
                IdKind::Request.format(request)
            )
        })
}
