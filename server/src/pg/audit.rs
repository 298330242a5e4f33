//! The audit chain of the PostgreSQL store, off the request path. Changes insert their events
//! unlinked (no row every transaction must lock: a chain head locked by every change serialises
//! them all); one chainer, elected with a session advisory lock, links them afterwards.
//!
//! Rows become visible at commit, not in `seq` order, so the chainer never tails `seq > last`
//! (that skips a transaction that commits late). It links, in `seq` order, the unlinked rows of
//! transactions older than the oldest still running (`xid < pg_snapshot_xmin(…)`): those are
//! all visible, and nothing can be added among them any more. A late commit is linked once its
//! transaction is finished, after what was linked meanwhile: the chain's order is `chain_pos`.

use super::{PgError, PgStore};
use crate::journal::link;

/// `pg_advisory_lock` key of the chainer ("otpc" in ASCII), with the schema's hash beside it:
/// stores in different schemas of one database have a chainer each.
const CHAINER_LOCK: i32 = 0x6f74_7063;
/// Entries linked per transaction.
const LINK_BATCH: i64 = 1_000;

/// The elected chainer: holds the lock on a connection of its own (taken out of the pool, so
/// that dropping the chainer closes it and a replica that dies frees the lock with it).
pub struct Chainer {
    client: deadpool_postgres::ClientWrapper,
}

impl std::fmt::Debug for Chainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chainer").finish_non_exhaustive()
    }
}

/// What a check of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerified {
    /// Entries linked, all checked.
    pub entries: u64,
    /// The last link (zeros when there is none).
    pub head: [u8; 32],
    /// Entries not linked yet (their transactions still running, or the chainer behind).
    pub unlinked: u64,
}

impl PgStore {
    /// Becomes the chainer if no replica is: `None` while another holds the lock.
    pub async fn elect_chainer(&self) -> Result<Option<Chainer>, PgError> {
        let client = deadpool_postgres::Object::take(self.client().await?);
        let elected: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                &[&CHAINER_LOCK],
            )
            .await
            .map_err(|e| self.failed(&e))?
            .get(0);
        Ok(elected.then_some(Chainer { client }))
    }

    /// Links what is ready to be linked (see the module); answers how many entries it linked.
    pub async fn link_ready(&self, chainer: &mut Chainer) -> Result<u64, PgError> {
        let mut linked = 0;
        loop {
            let n = self.link_batch(chainer).await?;
            linked += n;
            if n < LINK_BATCH as u64 {
                return Ok(linked);
            }
        }
    }

    async fn link_batch(&self, chainer: &mut Chainer) -> Result<u64, PgError> {
        let failed = |e: tokio_postgres::Error| self.failed(&e);
        let tx = chainer.client.transaction().await.map_err(failed)?;
        let head = tx
            .query_opt(
                "SELECT chain_pos, link FROM events WHERE chain_pos IS NOT NULL \
                 ORDER BY chain_pos DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(failed)?;
        let (mut pos, mut previous) = match head {
            Some(row) => (row.get::<_, i64>(0), to_link(row.get(1))),
            None => (0, [0; 32]),
        };
        let ready = tx
            .query(
                "SELECT seq, at_ms, body::text FROM events WHERE chain_pos IS NULL \
                 AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY seq LIMIT $1",
                &[&LINK_BATCH],
            )
            .await
            .map_err(failed)?;
        let (mut seqs, mut places, mut links) = (Vec::new(), Vec::new(), Vec::new());
        for row in &ready {
            pos += 1;
            let text: &str = row.get(2);
            previous = link(
                &previous,
                pos as u64,
                row.get::<_, i64>(1) as u64,
                text.as_bytes(),
            );
            seqs.push(row.get::<_, i64>(0));
            places.push(pos);
            links.push(previous.to_vec());
        }
        tx.execute(
            "UPDATE events SET chain_pos = v.pos, link = v.link \
             FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS v(seq, pos, link) \
             WHERE events.seq = v.seq",
            &[&seqs, &places, &links],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(ready.len() as u64)
    }

    /// Checks every link of the chain in order; the error names the first broken entry.
    pub async fn verify_chain(&self) -> Result<ChainVerified, PgError> {
        let client = self.client().await?;
        let failed = |e: tokio_postgres::Error| self.failed(&e);
        let rows = client
            .query(
                "SELECT chain_pos, at_ms, body::text, link FROM events \
                 WHERE chain_pos IS NOT NULL ORDER BY chain_pos",
                &[],
            )
            .await
            .map_err(failed)?;
        let mut head = [0u8; 32];
        for (i, row) in rows.iter().enumerate() {
            let pos = row.get::<_, i64>(0);
            let text: &str = row.get(2);
            let expected = link(
                &head,
                pos as u64,
                row.get::<_, i64>(1) as u64,
                text.as_bytes(),
            );
            let broken = |why: &str| PgError::ChainBroken {
                target: self.target.clone(),
                pos,
                why: why.to_owned(),
            };
            if pos != i as i64 + 1 {
                return Err(broken(&format!("entry {} is missing", i + 1)));
            }
            if to_link(row.get(3)) != expected {
                return Err(broken(
                    "its link is not the hash of its record and the one before",
                ));
            }
            head = expected;
        }
        let unlinked: i64 = client
            .query_one("SELECT count(*) FROM events WHERE chain_pos IS NULL", &[])
            .await
            .map_err(failed)?
            .get(0);
        Ok(ChainVerified {
            entries: rows.len() as u64,
            head,
            unlinked: unlinked as u64,
        })
    }
}

/// A stored link as 32 bytes (a wrong length reads as zeros, which no link is).
fn to_link(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap_or([0; 32])
}

impl PgStore {
    /// Up to `limit` linked entries after chain position `after`, in chain order (the audit
    /// page: only what the chainer has linked, as the embedded server shows only what its
    /// journal committed).
    pub(crate) async fn audit_entries(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::journal::Entry>, PgError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT chain_pos, at_ms, body::text, link FROM events \
                 WHERE chain_pos > $1 ORDER BY chain_pos LIMIT $2",
                &[&super::sql_id(after), &(limit as i64)],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        rows.iter()
            .map(|row| {
                let pos = row.get::<_, i64>(0);
                let event = serde_json::from_str(row.get(2)).map_err(|e| PgError::Failed {
                    target: self.target.clone(),
                    why: format!("audit entry {pos} is not an event this otpfleet knows: {e}"),
                })?;
                Ok(crate::journal::Entry {
                    seq: pos as u64,
                    at_ms: row.get::<_, i64>(1) as u64,
                    link: row.get::<_, &[u8]>(3).try_into().unwrap_or_default(),
                    event,
                })
            })
            .collect()
    }
}
