//! The PostgreSQL store: the server's state in PostgreSQL, shared by any number of replicas.
//!
//! **Single use is the database's job.** Every transition that must happen once (a redemption,
//! a decision, a credential hand-over; a regeneration is one upsert, so the old OTP stops
//! working as the new one starts) is one conditional statement, `UPDATE … WHERE <still in the
//! state it must be in> RETURNING …`, under READ COMMITTED: when two replicas race, PostgreSQL locks the row for the first, and the second
//! re-checks the condition on the row the first committed (the statement's `WHERE` is
//! re-evaluated on the new version) and updates nothing. So the loser learns that it lost from
//! its own statement; a read that follows a lost update only says which refusal to give, it
//! never decides. Never a read then a write: that pattern double-redeems (the test double in
//! `tests/it/pg.rs` shows it).
//!
//! A database is named in errors by user, host, port and name (`target`), never with its
//! password.

mod accounts;
mod audit;
mod batches;
mod desk;
mod polls;
mod replica;
mod requests;
mod schema;
mod shared;
mod transitions;

pub use audit::{ChainVerified, Chainer};
pub use replica::PgCore;
pub use schema::{Migrated, SCHEMA_VERSION};
pub use transitions::{
    Again, HandedOver, Lost, NewAccount, NewOtp, NewRequest, Outcome, REDEEM as REDEEM_STATEMENT,
    Redeemed, Verdict,
};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;

/// The state in one PostgreSQL database, through a pool of connections.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The connection settings, for connections outside the pool (the poll cache's listener).
    config: tokio_postgres::Config,
    /// The database as errors name it: `user@host:port/dbname`, never the password.
    target: String,
    /// Transactions run again after a deadlock or a serialization failure (`retrying`).
    retries: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What went wrong with the database; every message names it and none holds its password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "the database URL is not one PostgreSQL understands ({0}); give \
         postgres://USER:PASSWORD@HOST:PORT/DBNAME"
    )]
    BadUrl(String),
    #[error("cannot reach the database {target}: {why}")]
    Unreachable { target: String, why: String },
    #[error(
        "the database {target} has no otpfleet schema; create it with `otpfleet db migrate \
         --database-url …`"
    )]
    NoSchema { target: String },
    #[error(
        "the database {target} has otpfleet schema version {found}, older than this otpfleet's \
         {known}; migrate it with `otpfleet db migrate --database-url …`"
    )]
    SchemaOlder {
        target: String,
        found: i32,
        known: i32,
    },
    #[error(
        "the database {target} has otpfleet schema version {found}, newer than this otpfleet \
         knows ({known}); run the otpfleet that migrated it, or a newer one"
    )]
    SchemaNewer {
        target: String,
        found: i32,
        known: i32,
    },
    #[error("the audit chain of the database {target} is broken at entry {pos}: {why}")]
    ChainBroken {
        target: String,
        pos: i64,
        why: String,
    },
    #[error("the database {target} failed: {why}")]
    Failed { target: String, why: String },
    /// A deadlock or a serialization failure: the transaction was rolled back, and running it
    /// again may succeed.
    #[error("the database {target} rolled a transaction back: {why}")]
    Conflict { target: String, why: String },
}

/// How many times a transaction that lost to a deadlock or a serialization failure is run
/// again before the failure is answered.
const RETRIES: u32 = 3;

impl PgStore {
    /// A store on the database at `url` (`postgres://…` or `key=value …`), with at most
    /// `connections` connections. Connects once, so an unreachable database is an error here.
    pub async fn connect(url: &str, connections: usize) -> Result<PgStore, PgError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::BadUrl(describe(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("otpfleet");
        let target = target_of(&config);
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(1))
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::BadUrl(e.to_string()))?;
        let store = PgStore {
            pool,
            config,
            target,
            retries: Default::default(),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// The database as errors name it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        self.pool.get().await.map_err(|e| PgError::Unreachable {
            target: self.target.clone(),
            why: match &e {
                deadpool_postgres::PoolError::Backend(e) => describe(e),
                other => other.to_string(),
            },
        })
    }

    /// A connection from the pool with `sql` prepared on it (each connection caches its
    /// prepared statements).
    async fn prepared(
        &self,
        sql: &str,
    ) -> Result<(deadpool_postgres::Client, tokio_postgres::Statement), PgError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.failed(&e))?;
        Ok((client, statement))
    }

    /// A statement that failed, named with the database.
    fn failed(&self, e: &tokio_postgres::Error) -> PgError {
        use tokio_postgres::error::SqlState;
        let (target, why) = (self.target.clone(), describe(e));
        match e.code() {
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => PgError::Conflict { target, why },
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                PgError::Conflict { target, why }
            }
            _ => PgError::Failed { target, why },
        }
    }

    /// Runs the transaction `attempt` again, at most [`RETRIES`] times, when it lost to a
    /// deadlock or a serialization failure (each run counted in `retries`); any other outcome
    /// is its answer.
    async fn retrying<T, Fut>(&self, mut attempt: impl FnMut() -> Fut) -> Result<T, PgError>
    where
        Fut: std::future::Future<Output = Result<T, PgError>>,
    {
        let mut left = RETRIES;
        loop {
            match attempt().await {
                Err(PgError::Conflict { .. }) if left > 0 => {
                    left -= 1;
                    self.retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                done => return done,
            }
        }
    }

    /// Transactions run again after a deadlock or a serialization failure, so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An id as a bound in SQL: ids past `i64::MAX` (which no row has) are `i64::MAX`, not a
/// negative number that every row is above.
fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// `user@host:port/dbname` of a connection's configuration.
fn target_of(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().or(c.get_user()).unwrap_or("?")
    )
}

/// An error with its causes (tokio-postgres puts the server's message in the source).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
