//! OTP batches in PostgreSQL: a batch generated in one transaction (every OTP of it or none),
//! its export kept for its download window where every replica can serve it, and the
//! housekeeping the sweeper does (exports purged, expired OTPs recorded in the audit log).

use super::transitions::{ISSUE, body};
use super::{NewOtp, PgError, PgStore};
use crate::domain::Event;
use crate::domain::store::ExportRow;

/// A batch's export as it stands: its rows while the window is open. The download is recorded
/// in the audit log in the same statement.
const EXPORT: &str = "WITH b AS (SELECT export_expires_ms, rows FROM batches WHERE id = $1), \
     e AS (INSERT INTO events (at_ms, body) SELECT $2, $3::text::jsonb FROM b \
     WHERE b.rows IS NOT NULL AND b.export_expires_ms > $2) \
     SELECT export_expires_ms, CASE WHEN export_expires_ms > $2 THEN rows::text END FROM b";

/// Each OTP that expired before sign-in (unredeemed, or its request still pending) and is not
/// recorded yet, recorded once.
const RECORD_EXPIRIES: &str = "WITH t AS (UPDATE otps SET expiry_logged = true \
     WHERE NOT expiry_logged AND expires_ms <= $1 AND (state IS NULL OR state = 'pending') \
     RETURNING account_id, batch_id, expires_ms), \
     e AS (INSERT INTO events (at_ms, body) SELECT $1, jsonb_build_object('event', \
     'otp_expired', 'account', account_id, 'batch', batch_id, 'expires_ms', expires_ms) FROM t) \
     SELECT count(*) FROM t";

/// What a download of a batch's export found.
#[derive(Debug)]
pub(crate) enum Export {
    NoBatch,
    /// The window closed at `export_expires_ms`.
    Expired {
        export_expires_ms: u64,
    },
    Rows(Vec<ExportRow>),
}

impl PgStore {
    /// Generates a batch in one transaction: a batch id no replica has handed out, each
    /// account's OTP (replacing the one it had, in account order so that two batches never
    /// deadlock), the export rows kept until `export_expires_ms`, and the audit entries.
    /// Answers the batch id. One that deadlocks with an import is run again.
    pub(crate) async fn create_batch(
        &self,
        otps: &[(u64, NewOtp<'_>)],
        export: (&[ExportRow], u64),
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, PgError> {
        self.retrying(|| self.create_batch_once(otps, export, by, at_ms))
            .await
    }

    async fn create_batch_once(
        &self,
        otps: &[(u64, NewOtp<'_>)],
        export: (&[ExportRow], u64),
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, PgError> {
        let (rows, export_expires_ms) = export;
        let mut client = self.client().await?;
        let failed = |e: tokio_postgres::Error| self.failed(&e);
        let tx = client.transaction().await.map_err(failed)?;
        let batch = tx
            .query_one("SELECT nextval('batch_ids')", &[])
            .await
            .map_err(failed)?
            .get::<_, i64>(0);
        let statement = tx.prepare_cached(ISSUE).await.map_err(failed)?;
        let mut order: Vec<&(u64, NewOtp<'_>)> = otps.iter().collect();
        order.sort_by_key(|(account, _)| *account);
        for &(account, otp) in order {
            let event = body(Event::OtpIssued {
                account,
                key: otp.key,
                batch: batch as u64,
                generated_ms: otp.generated_ms,
                expires_ms: otp.expires_ms,
                credential: String::new(),
                password_hash: [0; 32],
                by: by.map(str::to_owned),
            });
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                &(account as i64),
                &&otp.key[..],
                &batch,
                &(otp.generated_ms as i64),
                &(otp.expires_ms as i64),
                &otp.credential,
                &event,
                &&otp.password_hash[..],
            ];
            tx.execute(&statement, &params).await.map_err(failed)?;
        }
        let rows = serde_json::to_string(rows).unwrap_or_else(|_| "[]".into());
        let event = body(Event::BatchCreated {
            batch: batch as u64,
            export_expires_ms,
            by: by.map(str::to_owned),
        });
        tx.execute(
            "WITH b AS (INSERT INTO batches (id, export_expires_ms, rows) \
             VALUES ($1, $2, $3::text::jsonb)) \
             INSERT INTO events (at_ms, body) VALUES ($4, $5::text::jsonb)",
            &[
                &batch,
                &(export_expires_ms as i64),
                &rows,
                &(at_ms as i64),
                &event,
            ],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(batch as u64)
    }

    /// Gives `account` the OTP `otp` in a batch of its own, without an export (tests and
    /// benches); answers the batch id.
    pub async fn issue_otp(
        &self,
        account: u64,
        otp: NewOtp<'_>,
        by: Option<&str>,
    ) -> Result<u64, PgError> {
        self.create_batch(&[(account, otp)], (&[], 0), by, otp.generated_ms)
            .await
    }

    /// Batch `batch`'s export, recording the download when its rows are given.
    pub(crate) async fn export(
        &self,
        batch: u64,
        with_passwords: bool,
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<Export, PgError> {
        let (client, statement) = self.prepared(EXPORT).await?;
        let event = body(Event::BatchExported {
            batch,
            with_passwords,
            by: by.map(str::to_owned),
        });
        let row = client
            .query_opt(&statement, &[&(batch as i64), &(at_ms as i64), &event])
            .await
            .map_err(|e| self.failed(&e))?;
        let Some(row) = row else {
            return Ok(Export::NoBatch);
        };
        let export_expires_ms = row.get::<_, i64>(0) as u64;
        Ok(match row.get::<_, Option<String>>(1) {
            None => Export::Expired { export_expires_ms },
            Some(rows) => {
                Export::Rows(serde_json::from_str(&rows).map_err(|e| PgError::Failed {
                    target: self.target.clone(),
                    why: format!("the export of batch {batch} is not readable: {e}"),
                })?)
            }
        })
    }

    /// Clears the plaintext of exports whose window has closed; answers how many.
    pub(crate) async fn purge_exports(&self, now_ms: u64) -> Result<u64, PgError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE batches SET rows = NULL WHERE rows IS NOT NULL \
                 AND export_expires_ms <= $1",
                &[&(now_ms as i64)],
            )
            .await
            .map_err(|e| self.failed(&e))
    }

    /// Records in the audit log each OTP that expired before sign-in, once; answers how many.
    pub(crate) async fn record_expiries(&self, now_ms: u64) -> Result<u64, PgError> {
        let (client, statement) = self.prepared(RECORD_EXPIRIES).await?;
        let row = client
            .query_one(&statement, &[&(now_ms as i64)])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
