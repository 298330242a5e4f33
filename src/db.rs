//! `otpfleet db`: the schema of a PostgreSQL store (`otpfleet_server::pg`).

use clap::{Args, Subcommand};
use otpfleet_server::pg::{PgStore, SCHEMA_VERSION};

#[derive(Debug, Clone, Args)]
pub struct DbOpts {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Apply the schema migrations the database lacks, all in one transaction (a failure
    /// applies none); a database migrated by a newer otpfleet is refused and left as it is.
    Migrate(DatabaseUrl),
    /// Print the database's schema version and whether this otpfleet can serve it (exit 1
    /// when it cannot).
    Status(DatabaseUrl),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseUrl {
    /// The PostgreSQL database (15 or later): postgres://USER:PASSWORD@HOST:PORT/DBNAME. Errors
    /// name it without its password.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: String,
}

pub fn run(opts: DbOpts) -> anyhow::Result<()> {
    let runtime = crate::current_thread_runtime()?;
    runtime.block_on(async {
        match opts.command {
            DbCommand::Migrate(db) => {
                let store = PgStore::connect(&db.database_url, 1).await?;
                let m = store.migrate().await?;
                match m.from == m.to {
                    true => println!("{}: schema version {} already", store.target(), m.to),
                    false => println!(
                        "{}: schema migrated from version {} to {}",
                        store.target(),
                        m.from,
                        m.to
                    ),
                }
            }
            DbCommand::Status(db) => {
                let store = PgStore::connect(&db.database_url, 1).await?;
                store.check_schema().await?;
                println!(
                    "{}: schema version {SCHEMA_VERSION}, the one this otpfleet serves",
                    store.target()
                );
            }
        }
        Ok(())
    })
}
