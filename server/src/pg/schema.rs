//! Versioned migrations: the schema's versions, each a SQL file compiled in, applied in order by
//! `otpfleet db migrate`, and recorded in `otpfleet_schema`. A server refuses a database whose
//! schema is older or newer than the one it knows, naming both versions.
//!
//! A table of applied versions of our own rather than a migration crate: the schema is a few
//! files applied in one transaction, and PostgreSQL's transactional DDL makes a migration whole
//! or absent; what a crate would add (checksums of edited files, out-of-order versions) is
//! refused here by construction (a version's SQL never changes once shipped).

use super::{PgError, PgStore};

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "accounts and otps",
        include_str!("migrations/0001_accounts_and_otps.sql"),
    ),
    (
        "audit events",
        include_str!("migrations/0002_audit_events.sql"),
    ),
    ("server", include_str!("migrations/0003_server.sql")),
    (
        "batches and changes",
        include_str!("migrations/0004_batches_and_changes.sql"),
    ),
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Serialises concurrent `db migrate` runs (a migration Job and a replica's `--migrate`, say):
/// `pg_advisory_xact_lock` key, "otpfleet" in ASCII.
const MIGRATION_LOCK: i64 = 0x6f74_7066_6c65_6574;

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

impl PgStore {
    /// Applies the migrations this database lacks, in one transaction (a failure applies none).
    /// A schema newer than this build's is refused and left as it is.
    pub async fn migrate(&self) -> Result<Migrated, PgError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.failed(&e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| self.failed(&e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS otpfleet_schema (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| self.failed(&e))?;
        let from = applied(&tx).await.map_err(|e| self.failed(&e))?;
        if from > SCHEMA_VERSION {
            return Err(self.newer(from));
        }
        for (version, (name, sql)) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let version = version as i32 + 1;
            tx.batch_execute(sql).await.map_err(|e| self.failed(&e))?;
            tx.execute(
                "INSERT INTO otpfleet_schema (version, name) VALUES ($1, $2)",
                &[&version, name],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        }
        // The shared row, made once: the secret every replica derives its keys from, and the
        // default preferences.
        let mut secret = [0u8; 32];
        crate::domain::secrets::Entropy::Os.fill(&mut secret);
        let prefs = otpfleet_protocol::Preferences::default();
        tx.execute(
            "INSERT INTO server (secret, otp_validity_hours, auto_approve) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[
                &&secret[..],
                &(prefs.otp_validity_hours as i32),
                &prefs.auto_approve,
            ],
        )
        .await
        .map_err(|e| self.failed(&e))?;
        tx.commit().await.map_err(|e| self.failed(&e))?;
        Ok(Migrated {
            from,
            to: SCHEMA_VERSION,
        })
    }

    /// Refuses a database whose schema is not this build's: none, older (migrate it) or newer
    /// (a newer otpfleet migrated it).
    pub async fn check_schema(&self) -> Result<(), PgError> {
        let client = self.client().await?;
        let exists = client
            .query_one("SELECT to_regclass('otpfleet_schema') IS NOT NULL", &[])
            .await
            .map_err(|e| self.failed(&e))?
            .get::<_, bool>(0);
        let found = match exists {
            true => applied(&client).await.map_err(|e| self.failed(&e))?,
            false => 0,
        };
        match found {
            0 => Err(PgError::NoSchema {
                target: self.target.clone(),
            }),
            f if f < SCHEMA_VERSION => Err(PgError::SchemaOlder {
                target: self.target.clone(),
                found: f,
                known: SCHEMA_VERSION,
            }),
            f if f > SCHEMA_VERSION => Err(self.newer(f)),
            _ => Ok(()),
        }
    }

    fn newer(&self, found: i32) -> PgError {
        PgError::SchemaNewer {
            target: self.target.clone(),
            found,
            known: SCHEMA_VERSION,
        }
    }
}

/// The highest version applied (0: none).
async fn applied(c: &impl deadpool_postgres::GenericClient) -> Result<i32, tokio_postgres::Error> {
    let row = c
        .query_one("SELECT coalesce(max(version), 0) FROM otpfleet_schema", &[])
        .await?;
    Ok(row.get(0))
}
