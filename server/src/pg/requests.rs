//! Reads of the requests (the approval queue, one request): rows as the domain's
//! `RequestFacts`, so a view and its tag are made as the embedded store makes them.

use super::polls::Known;
use super::transitions::decision_of;
use super::{PgError, PgStore};
use crate::domain::store::{Decision, RequestFacts};
use otpfleet_protocol::{Device, RequestStatus};

/// A request as the `otps` row holds it, with its account's upn.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    pub account: u64,
    pub upn: String,
    pub request: u64,
    pub device: Device,
    pub requested_ms: u64,
    pub expires_ms: u64,
    pub state: Decision,
    pub decided_ms: Option<u64>,
}

impl RequestRow {
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            account: self.account,
            upn: &self.upn,
            request: self.request,
            device: &self.device,
            requested_ms: self.requested_ms,
            expires_ms: self.expires_ms,
            state: self.state,
            decided_ms: self.decided_ms,
        }
    }

    fn of(row: &tokio_postgres::Row) -> RequestRow {
        RequestRow {
            account: row.get::<_, i64>(0) as u64,
            upn: row.get(1),
            request: row.get::<_, i64>(2) as u64,
            device: Device {
                make: row.get(3),
                model: row.get(4),
                serial: row.get(5),
            },
            requested_ms: row.get::<_, i64>(6) as u64,
            expires_ms: row.get::<_, i64>(7) as u64,
            state: decision_of(row.get(8), row.get(9)),
            decided_ms: row.get::<_, Option<i64>>(10).map(|ms| ms as u64),
        }
    }
}

/// The columns `RequestRow::of` reads, then `$tail` (the filter and order).
macro_rules! request_rows {
    ($tail:literal) => {
        concat!(
            "SELECT o.account_id, a.upn, o.request_id, o.make, o.model, o.serial, ",
            "o.requested_ms, o.expires_ms, o.state, o.reject_reason, o.decided_ms ",
            "FROM otps AS o JOIN accounts AS a ON a.id = o.account_id ",
            $tail
        )
    };
}

const ROW_BY_ID: &str = request_rows!("WHERE o.request_id = $1");

/// A pending request is awaiting approval until its OTP expires (`$3` = 1), then expired (2).
const ROWS_WITH_STATUS: &str = request_rows!(
    "WHERE o.request_id > $1 AND o.state = $2 AND ($3::int = 0 \
     OR ($3 = 1 AND o.expires_ms > $4) OR ($3 = 2 AND o.expires_ms <= $4)) \
     ORDER BY o.request_id LIMIT $5"
);

impl PgStore {
    /// Request `request`, if it is current (its OTP not replaced since).
    pub(crate) async fn request_row(&self, request: u64) -> Result<Option<RequestRow>, PgError> {
        let (client, statement) = self.prepared(ROW_BY_ID).await?;
        let row = client
            .query_opt(&statement, &[&super::sql_id(request)])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.as_ref().map(RequestRow::of))
    }

    /// Up to `want` requests with `status` at `now_ms` and ids above `after`, oldest first.
    pub(crate) async fn requests_with_status(
        &self,
        status: RequestStatus,
        after: u64,
        want: usize,
        now_ms: u64,
    ) -> Result<Vec<RequestRow>, PgError> {
        let (state, expiry): (&str, i32) = match status {
            RequestStatus::AwaitingApproval => ("pending", 1),
            RequestStatus::Expired => ("pending", 2),
            RequestStatus::Approved => ("approved", 0),
            RequestStatus::Rejected => ("rejected", 0),
            RequestStatus::SignedIn => ("signed_in", 0),
        };
        let (client, statement) = self.prepared(ROWS_WITH_STATUS).await?;
        let rows = client
            .query(
                &statement,
                &[
                    &super::sql_id(after),
                    &state,
                    &expiry,
                    &(now_ms as i64),
                    &(want as i64),
                ],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(rows.iter().map(RequestRow::of).collect())
    }
}

impl PgStore {
    /// What a poll needs of request `request`, if it is current.
    pub(crate) async fn poll_row(&self, request: u64) -> Result<Option<Known>, PgError> {
        let (client, statement) = self
            .prepared(
                "SELECT poll_token, state, reject_reason, expires_ms, interval_s FROM otps \
                 WHERE request_id = $1",
            )
            .await?;
        let row = client
            .query_opt(&statement, &[&super::sql_id(request)])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(row.map(|row| Known {
            poll_token: row
                .get::<_, Option<&[u8]>>(0)
                .and_then(|t| t.try_into().ok())
                .unwrap_or_default(),
            state: decision_of(row.get(1), row.get(2)),
            expires_ms: row.get::<_, i64>(3) as u64,
            interval_s: row.get::<_, Option<i32>>(4).unwrap_or(0) as u32,
            last_poll_ms: 0,
        }))
    }
}
