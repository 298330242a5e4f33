//! `otpfleet audit`: the audit log of a data directory, checked offline.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use otpfleet_server::journal::{self, JournalError};
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct AuditOpts {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of every entry and that the log replays as a server would replay
    /// it on start; name the first broken entry or the event that does not replay (exit 1), or
    /// print the count and the head link to keep elsewhere (exit 0).
    Verify {
        /// The server's data directory (stop the server first: it holds the directory locked).
        #[arg(long, value_name = "DIR", default_value = "otpfleet-data")]
        data_dir: PathBuf,
        /// Check a PostgreSQL store's chain instead (servers may keep running: the entries
        /// linked so far are checked, and those not linked yet are counted).
        #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
        database_url: Option<String>,
    },
}

pub fn run(opts: AuditOpts) -> anyhow::Result<()> {
    match opts.command {
        AuditCommand::Verify {
            database_url: Some(url),
            ..
        } => verify_database(&url),
        AuditCommand::Verify { data_dir, .. } => match journal::verify(&data_dir) {
            Ok(v) => {
                otpfleet_server::check_replay(&data_dir)
                    .with_context(|| format!("while replaying {}", data_dir.display()))?;
                println!(
                    "{}: {} entries, chain intact; head {}",
                    data_dir.display(),
                    v.entries,
                    journal::hex(&v.head)
                );
                Ok(())
            }
            Err(JournalError::Broken { seq, reason, .. }) => {
                anyhow::bail!(
                    "{}: the audit chain is broken at entry {seq}: {reason}",
                    data_dir.display()
                )
            }
            Err(e) => Err(e).with_context(|| format!("while verifying {}", data_dir.display())),
        },
    }
}

/// `audit verify --database-url`: the PostgreSQL store's chain.
fn verify_database(url: &str) -> anyhow::Result<()> {
    let runtime = crate::current_thread_runtime()?;
    runtime.block_on(async {
        let store = otpfleet_server::pg::PgStore::connect(url, 1).await?;
        store.check_schema().await?;
        let v = store.verify_chain().await?;
        println!(
            "{}: {} entries, chain intact; head {} ({} not linked yet)",
            store.target(),
            v.entries,
            journal::hex(&v.head),
            v.unlinked
        );
        Ok(())
    })
}
