//! The admin's side over the PostgreSQL store: imports, the accounts, OTP batches and their
//! exports, the preferences, the audit log, the counts for `/metrics` and the housekeeping.
//! Every decision is the domain's (the same checks, refusals and views as the embedded core);
//! the store reads and writes.

use super::batches::Export;
use super::replica::unavailable;
use super::{NewAccount, NewOtp, PgCore};
use crate::clock::rfc3339;
use crate::domain::accounts::{
    AccountQuery, ImportRow, check_import, import_result, matches_query, upn_key,
};
use crate::domain::batches::{
    BatchOutcome, export_csv, export_expired, fresh, issued, passwords_of, refusal, refused_for,
    resolve_ids, sign_in_csv_keys, wire_ref,
};
use crate::domain::store::AccountRecord;
use crate::domain::{ApiError, IdKind, Stats};
use otpfleet_protocol::{
    AccountDetail, AccountPage, BatchCreated, BatchRequest, BatchReview, ImportAction,
    ImportResult, IssuedOtp, Preferences, PreferencesView,
};
use std::collections::{HashMap, HashSet};

/// Accounts read per round trip while a filtered listing looks for a page's worth.
const SCAN_CHUNK: usize = 1_024;

impl PgCore {
    /// Creates or updates accounts (keyed by upn, case-insensitively), all in one transaction;
    /// refused whole as the embedded core refuses it.
    pub async fn import_accounts(
        &self,
        mut rows: Vec<ImportRow>,
        by: Option<&str>,
        now_ms: u64,
    ) -> Result<ImportResult, ApiError> {
        check_import(&mut rows)?;
        let keys: Vec<String> = rows.iter().map(|r| upn_key(&r.input.upn)).collect();
        let accounts: Vec<NewAccount<'_>> = rows
            .iter()
            .zip(&keys)
            .map(|(row, key)| NewAccount {
                upn: &row.input.upn,
                upn_key: key,
                display_name: &row.input.display_name,
                license: row.input.license,
                readiness: row.input.readiness,
                password_hash: row
                    .input
                    .password
                    .as_deref()
                    .map(|p| self.secrets.password_hash(key, p)),
            })
            .collect();
        let done = self
            .store
            .import(&accounts, by, now_ms)
            .await
            .map_err(unavailable)?;
        drop(accounts);
        let done = done.into_iter().map(|(id, created)| match created {
            true => (id, ImportAction::Created),
            false => (id, ImportAction::Updated),
        });
        Ok(import_result(rows, done))
    }

    /// One page of accounts in id order, filtered as the embedded core filters them.
    pub async fn list_accounts(
        &self,
        query: &AccountQuery,
        now_ms: u64,
    ) -> Result<AccountPage, ApiError> {
        let mut after = query.after()?;
        let search = query.search.as_ref().map(|s| s.to_lowercase());
        let mut accounts = Vec::new();
        loop {
            let chunk = self
                .store
                .accounts_after(after, SCAN_CHUNK)
                .await
                .map_err(unavailable)?;
            let exhausted = chunk.len() < SCAN_CHUNK;
            for (i, a) in chunk.iter().enumerate() {
                after = a.id;
                if !matches_query(a, query, search.as_deref(), now_ms) {
                    continue;
                }
                accounts.push(a.summary(now_ms));
                if accounts.len() == query.limit {
                    let more = i + 1 < chunk.len() || !exhausted;
                    return Ok(AccountPage {
                        accounts,
                        next_cursor: more.then(|| IdKind::Account.format(a.id)),
                    });
                }
            }
            if exhausted {
                return Ok(AccountPage {
                    accounts,
                    next_cursor: None,
                });
            }
        }
    }

    /// One account with its OTP tab.
    pub async fn account_detail(&self, id: &str, now_ms: u64) -> Result<AccountDetail, ApiError> {
        let n = IdKind::Account.parse_or_not_found(id)?;
        let found = self.store.accounts_by_id(&[n]).await.map_err(unavailable)?;
        let a = found.first().ok_or_else(|| IdKind::Account.not_found(id))?;
        Ok(a.detail(now_ms))
    }

    /// Reviews or generates an OTP batch, deciding as the embedded core decides; a batch is
    /// generated in one transaction, every OTP of it or none.
    pub async fn create_batch(
        &self,
        req: BatchRequest,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<BatchOutcome, ApiError> {
        // The ids that parse, read at once; then the domain resolves them against what exists.
        let wanted: Vec<u64> = req
            .account_ids
            .iter()
            .filter_map(|id| IdKind::Account.parse(id))
            .collect();
        let found = self
            .store
            .accounts_by_id(&wanted)
            .await
            .map_err(unavailable)?;
        let exists: HashSet<u64> = found.iter().map(|a| a.id).collect();
        let order = resolve_ids(&req.account_ids, |n| exists.contains(&n))?;
        let known = self
            .store
            .known_keys(&sign_in_csv_keys(&req))
            .await
            .map_err(unavailable)?;
        let passwords = passwords_of(&req, |upn| known.contains(upn))?;
        let prefs = self.preferences().await?;
        let expires_ms = now_ms + u64::from(prefs.otp_validity_hours) * 3_600_000;
        let mut by_id: HashMap<u64, AccountRecord> = found.into_iter().map(|a| (a.id, a)).collect();
        let mut eligible = Vec::new();
        let mut refused = Vec::new();
        for a in order.iter().filter_map(|n| by_id.remove(n)) {
            match refusal(&a, passwords.as_ref()) {
                Some(reason) => refused.push(refused_for(&a, reason)),
                None => eligible.push(a),
            }
        }
        if req.review_only {
            return Ok(BatchOutcome::Review(BatchReview {
                would_generate: eligible.iter().map(wire_ref).collect(),
                refused,
                expires_at: rfc3339(expires_ms),
            }));
        }
        let export_expires_ms = now_ms + self.config.export_window_ms;
        let times = (now_ms, expires_ms, export_expires_ms);
        let (batch, generated) = self
            .generate(&eligible, passwords.as_ref(), times, by)
            .await?;
        Ok(BatchOutcome::Created(BatchCreated {
            batch_id: IdKind::Batch.format(batch),
            generated,
            refused,
            export_expires_at: rfc3339(export_expires_ms),
        }))
    }

    /// Generates an OTP (and the password it hands over) for each of `eligible`, as one batch
    /// in one transaction, its export kept until `export_expires_ms`; answers the batch id and
    /// what each was given.
    async fn generate(
        &self,
        eligible: &[AccountRecord],
        passwords: Option<&HashMap<String, String>>,
        (now_ms, expires_ms, export_expires_ms): (u64, u64, u64),
        by: Option<&str>,
    ) -> Result<(u64, Vec<IssuedOtp>), ApiError> {
        let mut generated = Vec::with_capacity(eligible.len());
        let mut rows = Vec::with_capacity(eligible.len());
        let mut otps = Vec::with_capacity(eligible.len());
        for a in eligible {
            let f = fresh(&self.secrets, passwords, &a.upn_lower);
            let (answer, row) = issued(a, f.code.to_string(), expires_ms, f.password);
            generated.push(answer);
            rows.push(row);
            otps.push((f.key, f.password_hash));
        }
        let new: Vec<(u64, NewOtp<'_>)> = eligible
            .iter()
            .zip(&otps)
            .zip(&rows)
            .map(|((a, (key, hash)), row)| {
                let otp = NewOtp {
                    key: *key,
                    generated_ms: now_ms,
                    expires_ms,
                    credential: &row.password,
                    password_hash: *hash,
                };
                (a.id, otp)
            })
            .collect();
        let batch = self
            .store
            .create_batch(&new, (&rows, export_expires_ms), by, now_ms)
            .await
            .map_err(unavailable)?;
        Ok((batch, generated))
    }

    /// The batch export as CSV, from whichever replica generated it.
    pub async fn export_batch(
        &self,
        id: &str,
        include_passwords: bool,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<String, ApiError> {
        let n = IdKind::Batch.parse_or_not_found(id)?;
        let export = self
            .store
            .export(n, include_passwords, by, now_ms)
            .await
            .map_err(unavailable)?;
        match export {
            Export::NoBatch => Err(IdKind::Batch.not_found(id)),
            Export::Expired { export_expires_ms } => Err(export_expired(id, export_expires_ms)),
            Export::Rows(rows) => Ok(export_csv(&rows, include_passwords)),
        }
    }

    /// The preferences with the guessing bound they imply at this replica.
    pub async fn preferences_view(&self, now_ms: u64) -> Result<PreferencesView, ApiError> {
        let prefs = self.preferences().await?;
        let live = self.stats(now_ms).await?.live_otps;
        Ok(PreferencesView {
            otp_validity_hours: prefs.otp_validity_hours,
            auto_approve: prefs.auto_approve,
            guessing_bound: self.guessing_bound(live, prefs.otp_validity_hours),
        })
    }

    /// Replaces the preferences, for every replica.
    pub async fn set_preferences(
        &self,
        prefs: Preferences,
        by: Option<&str>,
        now_ms: u64,
    ) -> Result<Preferences, ApiError> {
        self.store
            .set_preferences(prefs, by, now_ms)
            .await
            .map_err(unavailable)?
    }

    /// Up to `limit` audit entries after chain position `after`.
    pub async fn audit_entries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::journal::Entry>, ApiError> {
        self.store
            .audit_entries(after, limit)
            .await
            .map_err(unavailable)
    }

    /// Counts for `/metrics`: accounts by provisioning state, walked in chunks (meant for a
    /// scrape every few seconds, as the embedded core's).
    pub async fn stats(&self, now_ms: u64) -> Result<Stats, ApiError> {
        let mut states = Vec::new();
        let mut after = 0;
        loop {
            let chunk = self
                .store
                .accounts_after(after, SCAN_CHUNK)
                .await
                .map_err(unavailable)?;
            states.extend(chunk.iter().map(|a| a.provisioning(now_ms)));
            match chunk.last() {
                Some(a) if chunk.len() == SCAN_CHUNK => after = a.id,
                _ => return Ok(Stats::count(states)),
            }
        }
    }

    /// The housekeeping of a minute (every replica does it; each step is idempotent): exports
    /// past their window purged, expired OTPs recorded in the audit log, and marks of changed
    /// requests older than `mark` (taken a sweep ago) dropped. Answers the next mark.
    pub async fn sweep(&self, now_ms: u64, mark: u64) -> u64 {
        let next = self.polls.before_read();
        self.polls.sweep(mark, now_ms);
        let purged = self.store.purge_exports(now_ms).await;
        let recorded = self.store.record_expiries(now_ms).await;
        if let Err(e) = purged.and(recorded) {
            eprintln!("housekeeping: {e}");
        }
        next
    }
}
