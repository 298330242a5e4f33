//! Resource accounts: import (JSON or CSV), listing, one account with its OTP tab.

use super::error::line_detail;
use super::ids::IdKind;
use super::store::{AccountFields, AccountRecord, AccountRef, lookup};
use super::{ApiError, Core, Event};
use crate::simdisk::Defect;
use otpfleet_protocol::limits::{MAX_FIELD_CHARS, MAX_ROWS_PER_REQUEST};
use otpfleet_protocol::{
    AccountDetail, AccountInput, AccountPage, ErrorCode, ErrorDetail, ImportAction, ImportLine,
    ImportResult, License, Provisioning, Readiness,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The filters and page of `GET /v1/accounts`.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    pub readiness: Option<Readiness>,
    pub provisioning: Option<Provisioning>,
    /// Case-insensitive substring of the upn or display name.
    pub search: Option<String>,
    pub limit: usize,
    /// The last account id of the previous page.
    pub cursor: Option<String>,
}

impl AccountQuery {
    /// The last account id of the previous page (0 for the first page).
    pub(crate) fn after(&self) -> Result<u64, ApiError> {
        let Some(c) = &self.cursor else {
            return Ok(0);
        };
        IdKind::Account.parse(c).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "cursor is not one this server gave out",
            )
        })
    }
}

/// One line of an import, as read, with its 1-based line number.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: usize,
    pub input: AccountInput,
}

/// Any JSON value, refused when an object repeats a key (which `serde_json::Value` would
/// silently resolve to the last one, where every typed body refuses it).
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(NoDuplicateKeys)
    }
}

/// Reads a JSON array of accounts; every bad element is named. A repeated key is refused, as
/// in every other body.
pub fn parse_accounts_json(body: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    serde_json::from_slice::<NoDuplicateKeys>(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body must be a JSON array of accounts: {e}"),
        )
    })?;
    let values: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body must be a JSON array of accounts: {e}"),
        )
    })?;
    check_row_count(values.len())?;
    let mut rows = Vec::with_capacity(values.len());
    let mut bad = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        match serde_json::from_value::<AccountInput>(value) {
            Ok(input) => rows.push(ImportRow { line: i + 1, input }),
            Err(e) => bad.push(line_detail(i + 1, None, e.to_string())),
        }
    }
    refuse_if_bad(ErrorCode::InvalidJson, bad)?;
    Ok(rows)
}

/// Reads `upn,display_name,license,readiness` lines (a header line is optional).
pub fn parse_accounts_csv(body: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad.push(line_detail(line, None, format!("not a CSV line: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(line, |p| p.line() as usize);
        if i == 0 && record.get(0).is_some_and(|f| f.eq_ignore_ascii_case("upn")) {
            continue;
        }
        check_row_count(rows.len() + bad.len() + 1)?;
        match csv_account(&record) {
            Ok(input) => rows.push(ImportRow { line, input }),
            Err((field, message)) => bad.push(line_detail(line, field, message)),
        }
    }
    refuse_if_bad(ErrorCode::InvalidCsv, bad)?;
    if rows.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidCsv,
            "the CSV has no accounts: send lines of upn,display_name,license,readiness",
        ));
    }
    Ok(rows)
}

fn csv_account(record: &csv::StringRecord) -> Result<AccountInput, (Option<&'static str>, String)> {
    if record.len() != 4 {
        return Err((
            None,
            format!(
                "expected 4 fields (upn,display_name,license,readiness), found {}",
                record.len()
            ),
        ));
    }
    let license = License::parse(&record[2]).ok_or_else(|| {
        (
            Some("license"),
            format!(
                "unknown license {:?}, expected one of: {}",
                &record[2],
                License::expected()
            ),
        )
    })?;
    let readiness = Readiness::parse(&record[3]).ok_or_else(|| {
        (
            Some("readiness"),
            format!(
                "unknown readiness {:?}, expected one of: {}",
                &record[3],
                Readiness::expected()
            ),
        )
    })?;
    Ok(AccountInput {
        upn: record[0].to_owned(),
        display_name: record[1].to_owned(),
        license,
        readiness,
        password: None,
    })
}

fn check_row_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_ROWS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("at most {MAX_ROWS_PER_REQUEST} rows per request; split the import"),
        ));
    }
    Ok(())
}

pub(crate) fn refuse_if_bad(code: ErrorCode, bad: Vec<ErrorDetail>) -> Result<(), ApiError> {
    if bad.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = bad
        .iter()
        .take(10)
        .map(|d| d.line.map_or_else(|| "?".into(), |l| l.to_string()))
        .collect();
    let more = if bad.len() > 10 { ", ..." } else { "" };
    Err(ApiError::new(
        code,
        format!(
            "{} bad line(s) ({}{more}); nothing was changed, fix them and send the request again",
            bad.len(),
            lines.join(", ")
        ),
    )
    .with_details(bad))
}

/// The key a upn is found by: its NFKC form (fullwidth and other compatibility variants fold
/// into their plain letters), lower-cased. Two upns with one key are one account.
///
/// Why unicode-normalization: the standard crate for Unicode normal forms (NFKC needs the
/// Unicode compatibility tables, which std does not carry).
pub fn upn_key(upn: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    upn.nfkc().collect::<String>().to_lowercase()
}

/// Characters a person cannot see, or that reorder what they see: zero-width characters,
/// bidirectional controls and other format characters. In a upn they make look-alikes of an
/// existing account; a display name of nothing else shows nothing.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks that a upn looks like an email address: `name@domain.tld`, no spaces, bounded. The
/// length is that of the upn as sent; the form is checked on its NFKC form, which is what is
/// stored (a character whose compatibility form holds a space, say `´`, is refused).
pub fn check_upn(sent: &str) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization as _;
    let ok_len = !sent.is_empty() && sent.chars().count() <= MAX_FIELD_CHARS;
    let upn: String = sent.nfkc().collect();
    if let Some(c) = upn.chars().find(|c| invisible(*c)) {
        return Err(format!(
            "upn contains U+{:04X}, an invisible or direction-changing character: type the \
             address plainly",
            u32::from(c)
        ));
    }
    let well_formed = upn.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    });
    if ok_len && well_formed && !upn.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(format!(
            "upn {:?} is not an address like room-101@contoso.com (at most {MAX_FIELD_CHARS} characters)",
            upn.chars().take(60).collect::<String>()
        ))
    }
}

/// Checks a free-text field: something visible in it, bounded, no control characters.
pub fn check_text(field: &str, value: &str) -> Result<(), String> {
    if !value
        .chars()
        .any(|c| !c.is_whitespace() && !invisible(c) && !c.is_control())
    {
        return Err(format!("{field} must hold a visible character"));
    }
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_FIELD_CHARS} characters"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}

/// The journal's record of an account as it now is.
fn upserted(a: &AccountRecord, by: Option<&str>) -> Event {
    Event::AccountUpserted {
        id: a.id,
        upn: a.upn.clone(),
        display_name: a.display_name.clone(),
        license: a.license,
        readiness: a.readiness,
        password_hash: a.password_hash,
        by: by.map(str::to_owned),
    }
}

fn check_row(input: &AccountInput) -> Vec<(Option<&'static str>, String)> {
    let mut problems = Vec::new();
    if let Err(e) = check_upn(&input.upn) {
        problems.push((Some("upn"), e));
    }
    if let Err(e) = check_text("display_name", &input.display_name) {
        problems.push((Some("display_name"), e));
    }
    if let Some(Err(e)) = input.password.as_deref().map(|p| check_text("password", p)) {
        problems.push((Some("password"), e));
    }
    problems
}

/// An import's rows checked (both stores refuse the same, in the same words): any bad row
/// refuses the whole import, naming every bad row; a upn named twice is `repeated_upn`. Upns
/// are put in NFKC (a fullwidth or otherwise compatible variant is the same upn).
pub(crate) fn check_import(rows: &mut [ImportRow]) -> Result<(), ApiError> {
    use unicode_normalization::UnicodeNormalization as _;
    let mut bad = Vec::new();
    for row in rows.iter() {
        for (field, message) in check_row(&row.input) {
            bad.push(line_detail(row.line, field, message));
        }
    }
    // Stored in NFKC: a fullwidth or otherwise compatible variant is the same upn.
    for row in rows.iter_mut() {
        if !unicode_normalization::is_nfkc(&row.input.upn) {
            row.input.upn = row.input.upn.nfkc().collect();
        }
    }
    let mut first_line: HashMap<String, usize> = HashMap::new();
    // A upn named twice breaks no field's rule but one across rows (422 when it is the
    // only problem; listed with the field problems otherwise).
    let mut repeated = Vec::new();
    for row in rows.iter() {
        if let Some(first) = first_line.insert(upn_key(&row.input.upn), row.line) {
            repeated.push(line_detail(
                row.line,
                Some("upn"),
                format!("{} is already on line {first}", row.input.upn),
            ));
        }
    }
    if !bad.is_empty() {
        bad.append(&mut repeated);
        refuse_if_bad(ErrorCode::InvalidField, bad)?;
    }
    refuse_if_bad(ErrorCode::RepeatedUpn, repeated)
}

/// The answer to an import: each row with the id and action the store gave it, in order.
pub(crate) fn import_result(
    rows: Vec<ImportRow>,
    done: impl IntoIterator<Item = (u64, ImportAction)>,
) -> ImportResult {
    let mut result = ImportResult {
        created: 0,
        updated: 0,
        results: Vec::with_capacity(rows.len()),
    };
    for (row, (account_id, action)) in rows.into_iter().zip(done) {
        match action {
            ImportAction::Created => result.created += 1,
            ImportAction::Updated => result.updated += 1,
        }
        result.results.push(ImportLine {
            line: row.line,
            upn: row.input.upn,
            account_id: IdKind::Account.format(account_id),
            action,
        });
    }
    result
}

impl Core {
    /// Creates or updates accounts (keyed by upn, case-insensitively); refused whole as
    /// [`check_import`] says.
    pub fn import_accounts(
        &self,
        mut rows: Vec<ImportRow>,
        by: Option<&str>,
    ) -> Result<ImportResult, ApiError> {
        if let Err(refused) = check_import(&mut rows) {
            if refused.code == ErrorCode::RepeatedUpn {
                self.planted_journal_refused(&rows, by);
            }
            return Err(refused);
        }
        // One unit: the whole import is journaled, and so survives a crash, or none of it.
        let mut unit = self.unit();
        let done: Vec<_> = rows
            .iter()
            .map(|row| self.upsert(&row.input, by, &mut unit))
            .collect();
        Ok(import_result(rows, done))
    }

    /// The planted defect [`Defect::JournalRefusedImport`]: the first row of a refused import
    /// is journaled (not applied), so the next start replays it.
    fn planted_journal_refused(&self, rows: &[ImportRow], by: Option<&str>) {
        let (Some(Defect::JournalRefusedImport), Some(row)) = (self.planted, rows.first()) else {
            return;
        };
        let input = &row.input;
        let id = self.store.account_count() + 1;
        self.emit(|| Event::AccountUpserted {
            id,
            upn: input.upn.clone(),
            display_name: input.display_name.clone(),
            license: input.license,
            readiness: input.readiness,
            password_hash: None,
            by: by.map(str::to_owned),
        });
    }

    fn upsert(
        &self,
        input: &AccountInput,
        by: Option<&str>,
        unit: &mut super::Unit<'_>,
    ) -> (u64, ImportAction) {
        let lower = upn_key(&input.upn);
        let password_hash = input
            .password
            .as_deref()
            .map(|p| self.secrets.password_hash(&lower, p));
        let fields = || AccountFields {
            upn: input.upn.clone(),
            upn_lower: lower.clone(),
            display_name: input.display_name.clone(),
            license: input.license,
            readiness: input.readiness,
            password_hash,
        };
        let mut created = None;
        let account = Arc::clone(
            self.store
                .by_upn
                .entry(lower.clone())
                .or_insert_with(|| {
                    let mut accounts = self.store.accounts.write();
                    let record = AccountRecord::new(accounts.len() as u64 + 1, fields());
                    // Emitted under the lock that numbers accounts: the journal then holds
                    // creations in id order, as replay appends them, however many imports run
                    // at once.
                    unit.emit(|| upserted(&record, by));
                    created = Some(record.id);
                    let account: AccountRef = Arc::new(Mutex::new(record));
                    accounts.push(Arc::clone(&account));
                    account
                })
                .value(),
        );
        if let Some(id) = created {
            return (id, ImportAction::Created);
        }
        let mut a = account.lock();
        a.update(fields());
        // Emitted under the account's lock, like every change of an account.
        unit.emit(|| upserted(&a, by));
        (a.id, ImportAction::Updated)
    }

    /// One page of accounts in id order, filtered.
    pub fn list_accounts(
        &self,
        query: &AccountQuery,
        now_ms: u64,
    ) -> Result<AccountPage, ApiError> {
        let after = query.after()?;
        let search = query.search.as_ref().map(|s| s.to_lowercase());
        let mut accounts = Vec::new();
        let mut next = after + 1;
        let mut last_seen = None;
        'scan: loop {
            let chunk = self.store.accounts_from(next, 1024);
            if chunk.is_empty() {
                break;
            }
            next += chunk.len() as u64;
            for account in chunk {
                let a = account.lock();
                last_seen = Some(a.id);
                if matches_query(&a, query, search.as_deref(), now_ms) {
                    accounts.push(a.summary(now_ms));
                    if accounts.len() == query.limit {
                        break 'scan;
                    }
                }
            }
        }
        let more = last_seen.is_some_and(|id| id < self.store.account_count());
        let next_cursor = match (accounts.len() == query.limit, more, last_seen) {
            (true, true, Some(id)) => Some(IdKind::Account.format(id)),
            _ => None,
        };
        Ok(AccountPage {
            accounts,
            next_cursor,
        })
    }

    /// One account with its OTP tab.
    pub fn account_detail(&self, id: &str, now_ms: u64) -> Result<AccountDetail, ApiError> {
        let n = IdKind::Account.parse_or_not_found(id)?;
        let account = self
            .store
            .account(n)
            .ok_or_else(|| IdKind::Account.not_found(id))?;
        let detail = account.lock().detail(now_ms);
        Ok(detail)
    }

    /// The account with this upn (case-insensitive), for manual sign-in.
    pub(crate) fn account_by_upn(&self, upn: &str) -> Option<AccountRef> {
        lookup(&self.store.by_upn, &upn_key(upn))
    }
}

pub(crate) fn matches_query(
    a: &AccountRecord,
    q: &AccountQuery,
    search: Option<&str>,
    now_ms: u64,
) -> bool {
    q.readiness.is_none_or(|r| a.readiness == r)
        && q.provisioning.is_none_or(|p| a.provisioning(now_ms) == p)
        && search
            .is_none_or(|s| a.upn_lower.contains(s) || a.display_name.to_lowercase().contains(s))
}
