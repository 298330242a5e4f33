//! The generate wizard: review (dry run) and generate OTP batches; the batch export as CSV.

use super::accounts::{check_text, refuse_if_bad};
use super::error::line_detail;
use super::ids::IdKind;
use super::store::{AccountRecord, AccountRef, ExportRow, OtpSlot};
use super::{ApiError, Core, Event};
use crate::clock::rfc3339;
use otpfleet_protocol::limits::MAX_ROWS_PER_REQUEST;
use otpfleet_protocol::{
    AccountRef as WireAccountRef, BatchCreated, BatchRequest, BatchReview, ErrorCode, IssuedOtp,
    License, PasswordMode, Refusal, RefusalReason, export_cell,
};
use std::collections::{HashMap, HashSet};

/// A batch answer: a review (dry run) or the generated batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    Review(BatchReview),
    Created(BatchCreated),
}

/// The accounts a batch can generate for, and the refusals of the others with their reason.
fn eligible(
    accounts: Vec<AccountRef>,
    passwords: Option<&HashMap<String, String>>,
) -> (Vec<AccountRef>, Vec<Refusal>) {
    let mut eligible = Vec::new();
    let mut refused = Vec::new();
    for account in accounts {
        let a = account.lock();
        match refusal(&a, passwords) {
            Some(reason) => refused.push(refused_for(&a, reason)),
            None => {
                drop(a);
                eligible.push(account);
            }
        }
    }
    (eligible, refused)
}

impl Core {
    /// Reviews or generates an OTP batch. Unknown accounts and bad CSV lines refuse the whole
    /// request; ineligible accounts are refused one by one with their reason, and the eligible
    /// ones are generated. Generating again for an account replaces its OTP.
    pub fn create_batch(
        &self,
        req: BatchRequest,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<BatchOutcome, ApiError> {
        let accounts = resolve_ids(&req.account_ids, |n| self.store.account(n).is_some())?
            .into_iter()
            .filter_map(|n| self.store.account(n))
            .collect();
        let passwords = passwords_of(&req, |upn| self.store.by_upn.contains_key(upn))?;
        let expires_ms = now_ms + u64::from(self.preferences().otp_validity_hours) * 3_600_000;
        let (eligible, refused) = eligible(accounts, passwords.as_ref());
        if req.review_only {
            let would_generate = eligible.iter().map(|a| wire_ref(&a.lock())).collect();
            return Ok(BatchOutcome::Review(BatchReview {
                would_generate,
                refused,
                expires_at: rfc3339(expires_ms),
            }));
        }
        let batch_id = self.store.next_batch_id();
        let mut generated = Vec::with_capacity(eligible.len());
        let mut rows = Vec::with_capacity(eligible.len());
        // One unit: the batch is journaled, and so survives a crash, whole or not at all (an
        // account never keeps an OTP of a batch that does not exist, nor loses its old one).
        let mut unit = self.unit();
        for account in eligible {
            let (issued, row) = self.issue(
                &account,
                batch_id,
                passwords.as_ref(),
                (now_ms, expires_ms),
                (by, &mut unit),
            );
            generated.push(issued);
            rows.push(row);
        }
        let export_expires_ms = now_ms + self.config.export_window_ms;
        unit.emit(|| Event::BatchCreated {
            batch: batch_id,
            export_expires_ms,
            by: by.map(str::to_owned),
        });
        self.store
            .add_batch(batch_id, export_expires_ms, Some(rows));
        Ok(BatchOutcome::Created(BatchCreated {
            batch_id: IdKind::Batch.format(batch_id),
            generated,
            refused,
            export_expires_at: rfc3339(export_expires_ms),
        }))
    }

    /// Gives one account a new OTP, replacing its old OTP and any request for it.
    fn issue(
        &self,
        account: &AccountRef,
        batch_id: u64,
        passwords: Option<&HashMap<String, String>>,
        (now_ms, expires_ms): (u64, u64),
        (by, unit): (Option<&str>, &mut super::Unit<'_>),
    ) -> (IssuedOtp, ExportRow) {
        let mut a = account.lock();
        let Fresh {
            code,
            key,
            password,
            password_hash,
        } = fresh(&self.secrets, passwords, &a.upn_lower);
        unit.emit(|| Event::OtpIssued {
            account: a.id,
            key,
            batch: batch_id,
            generated_ms: now_ms,
            expires_ms,
            credential: password.clone(),
            password_hash,
            by: by.map(str::to_owned),
        });
        let slot = OtpSlot::new(key, batch_id, (now_ms, expires_ms), password.clone());
        self.store.issue_otp(account, &mut a, slot, password_hash);
        issued(&a, code.to_string(), expires_ms, password)
    }

    /// The batch export as CSV: `upn,display_name,otp,expires_at[,password]`.
    pub fn export_batch(
        &self,
        id: &str,
        include_passwords: bool,
        now_ms: u64,
        by: Option<&str>,
    ) -> Result<String, ApiError> {
        let n = IdKind::Batch.parse_or_not_found(id)?;
        let mut batches = self.store.batches.lock();
        let batch = batches
            .get_mut(&n)
            .ok_or_else(|| IdKind::Batch.not_found(id))?;
        if now_ms >= batch.export_expires_ms {
            batch.rows = None;
        }
        let Some(rows) = &batch.rows else {
            return Err(export_expired(id, batch.export_expires_ms));
        };
        let csv = export_csv(rows, include_passwords);
        // Under the batches lock, so the log orders exports with the batch's other entries.
        self.emit(|| Event::BatchExported {
            batch: n,
            with_passwords: include_passwords,
            by: by.map(str::to_owned),
        });
        Ok(csv)
    }
}

/// The passwords a batch gives its accounts: none (generated), or those of its sign-in CSV.
pub(crate) fn passwords_of(
    req: &BatchRequest,
    known: impl Fn(&str) -> bool,
) -> Result<Option<HashMap<String, String>>, ApiError> {
    Ok(match (req.password_mode, &req.sign_in_csv) {
        (PasswordMode::FromCsv, Some(csv)) => Some(parse_sign_in_csv(csv, known)?),
        (PasswordMode::FromCsv, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "password_mode from_csv needs sign_in_csv: upn,password lines",
            ));
        }
        (PasswordMode::AutoGenerate, Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "sign_in_csv is only for password_mode from_csv; remove it or switch modes",
            ));
        }
        (PasswordMode::AutoGenerate, None) => None,
    })
}

/// The account numbers named, deduplicated in request order; unknown ids (`exists` says which
/// are known) refuse the request.
pub(crate) fn resolve_ids(
    ids: &[String],
    exists: impl Fn(u64) -> bool,
) -> Result<Vec<u64>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "account_ids is empty: select at least one account",
        ));
    }
    if ids.len() > MAX_ROWS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("at most {MAX_ROWS_PER_REQUEST} accounts per batch; split the batch"),
        ));
    }
    let mut seen = HashSet::new();
    let mut accounts = Vec::with_capacity(ids.len());
    let mut unknown = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match IdKind::Account.parse(id).filter(|n| exists(*n)) {
            Some(n) if seen.insert(n) => accounts.push(n),
            Some(_) => {}
            None => unknown.push(line_detail(
                i + 1,
                Some("account_ids"),
                IdKind::Account.not_found(id).message,
            )),
        }
    }
    if !unknown.is_empty() {
        let n = unknown.len();
        return Err(ApiError::new(
            ErrorCode::AccountNotFound,
            format!("{n} of the selected accounts do not exist; nothing was generated"),
        )
        .with_details(unknown));
    }
    Ok(accounts)
}

/// The keys of the upns a batch's sign-in CSV names (a store that cannot look each up as it
/// reads them finds these first).
pub(crate) fn sign_in_csv_keys(req: &BatchRequest) -> Vec<String> {
    let Some(text) = &req.sign_in_csv else {
        return Vec::new();
    };
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .filter_map(|r| Some(super::accounts::upn_key(r.ok()?.get(0)?.trim())))
        .collect()
}

/// Reads `upn,password` lines into lower-case upn -> password. Unknown accounts, missing
/// passwords and repeated upns are bad lines.
fn parse_sign_in_csv(
    text: &str,
    known: impl Fn(&str) -> bool,
) -> Result<HashMap<String, String>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut passwords = HashMap::new();
    let mut bad = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(line_detail(i + 1, None, format!("not a CSV line: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        if i == 0
            && record
                .get(0)
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("upn"))
        {
            continue;
        }
        match sign_in_line(&record, &passwords, &known) {
            Ok((upn, password)) => {
                passwords.insert(upn, password);
            }
            Err((field, message)) => bad.push(line_detail(line, field, message)),
        }
    }
    refuse_if_bad(ErrorCode::InvalidCsv, bad)?;
    Ok(passwords)
}

fn sign_in_line(
    record: &csv::StringRecord,
    seen: &HashMap<String, String>,
    known: &impl Fn(&str) -> bool,
) -> Result<(String, String), (Option<&'static str>, String)> {
    if record.len() != 2 {
        let n = record.len();
        return Err((None, format!("expected 2 fields (upn,password), found {n}")));
    }
    let upn = super::accounts::upn_key(record[0].trim());
    // Passwords are taken as typed: leading or trailing spaces may be part of them.
    let password = record[1].to_owned();
    check_text("password", &password).map_err(|e| (Some("password"), e))?;
    if !known(&upn) {
        return Err((Some("upn"), format!("there is no account {:?}", &record[0])));
    }
    if seen.contains_key(&upn) {
        return Err((Some("upn"), format!("{} is listed twice", &record[0])));
    }
    Ok((upn, password))
}

/// The export installers open in a spreadsheet: a cell that would start a formula is
/// neutralised with a leading `'` (OWASP's advice on CSV injection; see
/// `otpfleet_protocol::export_cell`), and a cell holding a comma, quote or line break is quoted,
/// so no value can spill into another cell.
pub(crate) fn export_csv(rows: &[ExportRow], include_passwords: bool) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["upn", "display_name", "otp", "expires_at"];
    if include_passwords {
        header.push("password");
    }
    // Writing CSV into a Vec cannot fail.
    let _ = w.write_record(&header);
    for r in rows {
        let expires_at = rfc3339(r.expires_ms);
        let mut record = vec![r.upn.as_str(), &r.display_name, &r.otp, &expires_at];
        if include_passwords {
            record.push(&r.password);
        }
        let cells: Vec<_> = record.into_iter().map(export_cell).collect();
        let _ = w.write_record(cells.iter().map(|c| c.as_bytes()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub(crate) fn refusal(
    a: &AccountRecord,
    passwords: Option<&HashMap<String, String>>,
) -> Option<RefusalReason> {
    if let Some(reason) = a.readiness.refusal() {
        return Some(reason);
    }
    if a.license == License::Basic {
        return Some(RefusalReason::BasicLicense);
    }
    match passwords {
        Some(p) if !p.contains_key(&a.upn_lower) => Some(RefusalReason::MissingPassword),
        _ => None,
    }
}

fn refusal_message(reason: RefusalReason) -> String {
    match reason {
        RefusalReason::NeedsLicense => "the account needs a licence before it can get an OTP",
        RefusalReason::PasswordExpired => "the account's password has expired; reset it first",
        RefusalReason::SignInBlocked => "sign-in is blocked for this account; unblock it first",
        RefusalReason::BasicLicense => "OTPs need a pro licence; this account has basic",
        RefusalReason::MissingPassword => "sign_in_csv has no password line for this account",
    }
    .to_owned()
}

pub(crate) fn wire_ref(a: &AccountRecord) -> WireAccountRef {
    WireAccountRef {
        account_id: IdKind::Account.format(a.id),
        upn: a.upn.clone(),
    }
}

/// A new OTP for the account keyed `upn_lower`, the password it hands over (the sign-in CSV's,
/// or a generated one) and the keyed hashes each store keeps of both.
pub(crate) struct Fresh {
    pub code: otpfleet_protocol::OtpCode,
    pub key: super::secrets::OtpKey,
    pub password: String,
    pub password_hash: [u8; 32],
}

pub(crate) fn fresh(
    secrets: &super::secrets::Secrets,
    passwords: Option<&HashMap<String, String>>,
    upn_lower: &str,
) -> Fresh {
    let code = secrets.entropy().otp();
    let password = passwords
        .and_then(|p| p.get(upn_lower).cloned())
        .unwrap_or_else(|| secrets.entropy().password());
    Fresh {
        key: secrets.otp_key(&code),
        password_hash: secrets.password_hash(upn_lower, &password),
        code,
        password,
    }
}

/// The refusal of account `a` for `reason`.
pub(crate) fn refused_for(a: &AccountRecord, reason: RefusalReason) -> Refusal {
    Refusal {
        account_id: IdKind::Account.format(a.id),
        upn: a.upn.clone(),
        reason,
        message: refusal_message(reason),
    }
}

/// What a batch answers and exports of the OTP `otp` it generated for account `a`.
pub(crate) fn issued(
    a: &AccountRecord,
    otp: String,
    expires_ms: u64,
    password: String,
) -> (IssuedOtp, ExportRow) {
    let issued = IssuedOtp {
        account_id: IdKind::Account.format(a.id),
        upn: a.upn.clone(),
        otp: otp.clone(),
        expires_at: rfc3339(expires_ms),
    };
    let row = ExportRow {
        upn: a.upn.clone(),
        display_name: a.display_name.clone(),
        otp,
        expires_ms,
        password,
    };
    (issued, row)
}

/// The refusal of a download after the export's window closed at `export_expires_ms`.
pub(crate) fn export_expired(id: &str, export_expires_ms: u64) -> ApiError {
    ApiError::new(
        ErrorCode::ExportExpired,
        format!(
            "the export of {id} could be downloaded until {} and has been purged; \
             generate the OTPs again to get a new export",
            rfc3339(export_expires_ms)
        ),
    )
}
