//! `otpfleet admin-token`: the admin tokens a data directory holds. Only their SHA-256 is
//! stored; a new token is printed once. Changes are audit entries, and a running server reads
//! the tokens when it starts (it holds the directory locked meanwhile, so stop it first).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use otpfleet_server::clock::rfc3339;
use otpfleet_server::{TokioClock, tokens};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct AdminTokenOpts {
    #[command(subcommand)]
    pub command: AdminTokenCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminTokenCommand {
    /// List the tokens in force: id, name, when added (never the token).
    List(DataDir),
    /// Add a token and print it (once: only its hash is kept).
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// A name to tell it by (who or what uses it), 1 to 64 characters.
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// Revoke a token by its id (`tok_<n>`, from `list`).
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        /// The token's id.
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// The server's data directory (stop the server first: it holds the directory locked).
    #[arg(long, value_name = "DIR", default_value = "otpfleet-data")]
    pub data_dir: PathBuf,
}

pub fn run(opts: AdminTokenOpts) -> anyhow::Result<()> {
    let runtime = crate::current_thread_runtime()?;
    runtime.block_on(async {
        let clock = Arc::new(TokioClock::new(otpfleet_run::wall_clock_ms()));
        match opts.command {
            AdminTokenCommand::List(dir) => {
                let listed = tokens::list(&dir.data_dir).with_context(|| {
                    format!("while reading the tokens of {}", dir.data_dir.display())
                })?;
                if listed.is_empty() {
                    eprintln!(
                        "no admin tokens in {}; add one with otpfleet admin-token add",
                        dir.data_dir.display()
                    );
                }
                for t in listed {
                    println!("{}\t{}\tadded {}", t.label(), t.name, rfc3339(t.added_ms));
                }
            }
            AdminTokenCommand::Add { dir, name } => {
                let (token, stored) = tokens::add(&dir.data_dir, &name, clock)
                    .await
                    .with_context(|| {
                        format!("while adding a token to {}", dir.data_dir.display())
                    })?;
                eprintln!(
                    "added {} ({}); it is shown only now: keep it safe. A running server \
                     accepts it after a restart.",
                    stored.label(),
                    stored.name
                );
                println!("{token}");
            }
            AdminTokenCommand::Revoke { dir, id } => {
                let revoked = tokens::revoke(&dir.data_dir, &id, clock)
                    .await
                    .with_context(|| {
                        format!("while revoking {id} in {}", dir.data_dir.display())
                    })?;
                eprintln!(
                    "revoked {} ({}); the server refuses it from its next start",
                    revoked.label(),
                    revoked.name
                );
            }
        }
        Ok(())
    })
}
