//! The accounts in PostgreSQL: read as the embedded store's `AccountRecord`s (so a summary, a
//! detail, a provisioning state and a filter are the domain's, made once), an import in one
//! transaction, and a manual sign-in as one conditional statement.

use super::transitions::{body, decision_of};
use super::{NewAccount, PgError, PgStore};
use crate::domain::Event;
use crate::domain::store::{AccountRecord, OtpSlot, RequestRecord};
use otpfleet_protocol::{Device, License, Readiness};

/// An account's row with its OTP's (if any), in the columns `record` reads.
macro_rules! account_rows {
    ($tail:literal) => {
        concat!(
            "SELECT a.id, a.upn, a.upn_key, a.display_name, a.license, a.readiness, ",
            "a.password_hash, a.signed_in_manually, o.otp_key, o.batch_id, o.generated_ms, ",
            "o.expires_ms, o.credential, o.expiry_logged, o.request_id, o.make, o.model, ",
            "o.serial, o.requested_ms, o.state, o.reject_reason, o.decided_ms, o.poll_token, ",
            "o.interval_s, o.last_poll_ms, o.verified_ms ",
            "FROM accounts AS a LEFT JOIN otps AS o ON o.account_id = a.id ",
            $tail
        )
    };
}

const RECORDS_AFTER: &str = account_rows!("WHERE a.id > $1 ORDER BY a.id LIMIT $2");
const RECORDS_BY_ID: &str = account_rows!("WHERE a.id = ANY($1) ORDER BY a.id");
const RECORD_BY_KEY: &str = account_rows!("WHERE a.upn_key = $1");

/// Creates or updates one account (by `upn_key`); answers its id and whether it was created.
/// `xmax = 0` on the returned row: the row was inserted, not updated.
const UPSERT: &str = "WITH t AS (INSERT INTO accounts (upn, upn_key, display_name, \
     license, readiness, password_hash) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (upn_key) DO UPDATE SET upn = EXCLUDED.upn, \
     display_name = EXCLUDED.display_name, license = EXCLUDED.license, \
     readiness = EXCLUDED.readiness, \
     password_hash = coalesce(EXCLUDED.password_hash, accounts.password_hash) \
     RETURNING id, xmax = 0 AS created), \
     e AS (INSERT INTO events (at_ms, body) SELECT $7, $8::text::jsonb || \
     jsonb_build_object('id', id) FROM t) \
     SELECT id, created FROM t";

/// Manual sign-in, only while the password is the one checked: the account is signed in and
/// its OTP (with any request made with it) withdrawn.
const SIGN_IN_MANUALLY: &str = "WITH t AS (UPDATE accounts SET signed_in_manually = true \
     WHERE id = $1 AND password_hash = $2 RETURNING id), \
     d AS (DELETE FROM otps WHERE account_id IN (SELECT id FROM t)), \
     e AS (INSERT INTO events (at_ms, body) SELECT $3, $4::text::jsonb FROM t) \
     SELECT id FROM t";

/// How an account row reads as the domain's record.
fn record(row: &tokio_postgres::Row) -> AccountRecord {
    let ms = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v as u64);
    let bytes = |i: usize| row.get::<_, Option<&[u8]>>(i);
    let request = row.get::<_, Option<i64>>(14).map(|id| RequestRecord {
        id: id as u64,
        device: Device {
            make: row.get::<_, Option<String>>(15).unwrap_or_default(),
            model: row.get::<_, Option<String>>(16).unwrap_or_default(),
            serial: row.get::<_, Option<String>>(17).unwrap_or_default(),
        },
        requested_ms: ms(18).unwrap_or(0),
        state: decision_of(row.get::<_, Option<&str>>(19).unwrap_or(""), row.get(20)),
        decided_ms: ms(21),
        poll_token: bytes(22)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default(),
        interval_s: row.get::<_, Option<i32>>(23).unwrap_or(0) as u32,
        last_poll_ms: ms(24).unwrap_or(0),
        verified_ms: ms(25).unwrap_or(0),
    });
    let otp = bytes(8).map(|key| OtpSlot {
        key: key.try_into().unwrap_or_default(),
        batch_id: ms(9).unwrap_or(0),
        generated_ms: ms(10).unwrap_or(0),
        expires_ms: ms(11).unwrap_or(0),
        credential: row.get(12),
        request,
        expiry_logged: row.get::<_, Option<bool>>(13).unwrap_or(false),
    });
    AccountRecord {
        id: row.get::<_, i64>(0) as u64,
        upn: row.get(1),
        upn_lower: row.get(2),
        display_name: row.get(3),
        license: License::parse(row.get(4)).unwrap_or(License::Basic),
        readiness: Readiness::parse(row.get(5)).unwrap_or(Readiness::SignInBlocked),
        password_hash: bytes(6).and_then(|b| b.try_into().ok()),
        signed_in_manually: row.get(7),
        otp,
    }
}

impl PgStore {
    /// Up to `limit` accounts with ids above `after`, in id order.
    pub(crate) async fn accounts_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AccountRecord>, PgError> {
        let (client, statement) = self.prepared(RECORDS_AFTER).await?;
        let rows = client
            .query(&statement, &[&super::sql_id(after), &(limit as i64)])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows.iter().map(record).collect())
    }

    /// The accounts of these ids that exist, in id order.
    pub(crate) async fn accounts_by_id(&self, ids: &[u64]) -> Result<Vec<AccountRecord>, PgError> {
        let ids: Vec<i64> = ids.iter().map(|&id| super::sql_id(id)).collect();
        let (client, statement) = self.prepared(RECORDS_BY_ID).await?;
        let rows = client
            .query(&statement, &[&ids])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows.iter().map(record).collect())
    }

    /// The account whose upn has this key (`accounts::upn_key`), if any.
    pub(crate) async fn account_by_key(
        &self,
        upn_key: &str,
    ) -> Result<Option<AccountRecord>, PgError> {
        let (client, statement) = self.prepared(RECORD_BY_KEY).await?;
        let row = client
            .query_opt(&statement, &[&upn_key])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.as_ref().map(record))
    }

    /// Which of these upn keys are accounts'.
    pub(crate) async fn known_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, PgError> {
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT upn_key FROM accounts WHERE upn_key = ANY($1)",
                &[&keys],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Creates or updates every account of an import in one transaction (all or none); answers
    /// each one's id and whether it was created, in the order given. Rows are written in
    /// `upn_key` order, so two imports naming the same accounts lock them in the same order
    /// and never deadlock each other; one that deadlocks with a batch (which locks in id order)
    /// is run again.
    pub async fn import(
        &self,
        accounts: &[NewAccount<'_>],
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<Vec<(u64, bool)>, PgError> {
        self.retrying(|| self.import_once(accounts, by, at_ms))
            .await
    }

    async fn import_once(
        &self,
        accounts: &[NewAccount<'_>],
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<Vec<(u64, bool)>, PgError> {
        let mut order: Vec<usize> = (0..accounts.len()).collect();
        order.sort_by_key(|&i| accounts[i].upn_key);
        let mut client = self.client().await?;
        let failed = |e: tokio_postgres::Error| self.failed(&e);
        let tx = client.transaction().await.map_err(failed)?;
        let statement = tx.prepare_cached(UPSERT).await.map_err(failed)?;
        let mut answers = vec![(0, false); accounts.len()];
        for i in order {
            let a = &accounts[i];
            let event = body(Event::AccountUpserted {
                id: 0,
                upn: a.upn.to_owned(),
                display_name: a.display_name.to_owned(),
                license: a.license,
                readiness: a.readiness,
                password_hash: None,
                by: by.map(str::to_owned),
            });
            let hash = a.password_hash.as_ref().map(|h| &h[..]);
            let row = tx
                .query_one(
                    &statement,
                    &[
                        &a.upn,
                        &a.upn_key,
                        &a.display_name,
                        &a.license.as_str(),
                        &a.readiness.as_str(),
                        &hash,
                        &(at_ms as i64),
                        &event,
                    ],
                )
                .await
                .map_err(failed)?;
            answers[i] = (row.get::<_, i64>(0) as u64, row.get(1));
        }
        tx.commit().await.map_err(failed)?;
        Ok(answers)
    }

    /// Signs account `account` in by manual setup if its password hash is still
    /// `password_hash`: its OTP and any request made with it are withdrawn. `false` when the
    /// password changed meanwhile (or the account is gone).
    pub(crate) async fn sign_in_manually(
        &self,
        account: u64,
        password_hash: &[u8; 32],
        at_ms: u64,
    ) -> Result<bool, PgError> {
        let (client, statement) = self.prepared(SIGN_IN_MANUALLY).await?;
        let event = body(Event::ManualSignedIn { account });
        let row = client
            .query_opt(
                &statement,
                &[
                    &(account as i64),
                    &&password_hash[..],
                    &(at_ms as i64),
                    &event,
                ],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.is_some())
    }
}
