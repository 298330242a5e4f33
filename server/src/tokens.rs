//! Admin tokens kept in a data directory: added and revoked by `otpfleet admin-token`, journaled
//! as events (so each change is an audit entry and the chain covers the stored hashes), and
//! read by the server when it starts. Only a token's SHA-256 is stored; the token itself is
//! shown once, when it is added.

use crate::clock::Clock;
use crate::domain::{Event, EventSink as _};
use crate::journal::{Entry, Journal, JournalError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// A fresh admin token: 256 bits from the CSPRNG, URL-safe.
pub fn new_admin_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("otpf_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A token the data directory accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Its number; shown as `tok_<n>`.
    pub id: u64,
    pub name: String,
    pub hash: [u8; 32],
    /// When it was added (ms since the Unix epoch).
    pub added_ms: u64,
}

impl StoredToken {
    /// The id people see and pass to `revoke`.
    pub fn label(&self) -> String {
        label(self.id)
    }
}

/// The id people see for token number `id`.
pub fn label(id: u64) -> String {
    format!("tok_{id}")
}

/// Why a token could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "there is no admin token {0} in this data directory; `otpfleet admin-token list` shows them"
    )]
    Unknown(String),
    #[error("a token name is 1 to 64 printable characters; {0:?} is not")]
    BadName(String),
}

/// SHA-256 of a token, as stored and compared.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The tokens the log leaves in force: every one added and not revoked since.
pub fn in_force(entries: &[Entry]) -> Vec<StoredToken> {
    let mut tokens: Vec<StoredToken> = Vec::new();
    for entry in entries {
        match &entry.event {
            Event::AdminTokenAdded { token, name, hash } => tokens.push(StoredToken {
                id: *token,
                name: name.clone(),
                hash: *hash,
                added_ms: entry.at_ms,
            }),
            Event::AdminTokenRevoked { token, .. } => tokens.retain(|t| t.id != *token),
            _ => {}
        }
    }
    tokens
}

/// The tokens of a data directory, read without a server.
pub fn list(dir: &Path) -> Result<Vec<StoredToken>, JournalError> {
    Ok(in_force(&crate::journal::read_dir(dir)?))
}

/// Adds a new token named `name` to the data directory (made if missing); answers the token,
/// which is shown only this once, and its record.
pub async fn add(
    dir: &Path,
    name: &str,
    clock: Arc<dyn Clock>,
) -> Result<(String, StoredToken), TokenError> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(TokenError::BadName(name.to_owned()));
    }
    let (journal, recovered) = Journal::open(dir, clock)?;
    let id = recovered
        .entries
        .iter()
        .filter_map(|e| match e.event {
            Event::AdminTokenAdded { token, .. } => Some(token),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        + 1;
    let token = new_admin_token();
    let event = Event::AdminTokenAdded {
        token: id,
        name: name.to_owned(),
        hash: hash(&token),
    };
    let seq = journal.append(&event);
    journal.wait_durable(seq).await?;
    let stored = in_force(&journal.page(seq - 1, 1)?)
        .pop()
        .ok_or_else(|| JournalError::Write("the new token was not read back".into()))?;
    Ok((token, stored))
}

/// Revokes the token `label` (`tok_<n>`); answers what was revoked.
pub async fn revoke(
    dir: &Path,
    label: &str,
    clock: Arc<dyn Clock>,
) -> Result<StoredToken, TokenError> {
    // Revoking in a directory that is none would make one: refuse a mistyped --data-dir.
    if !dir.join(crate::journal::DB_FILE).is_file() {
        return Err(JournalError::Missing {
            dir: dir.to_path_buf(),
        }
        .into());
    }
    let (journal, recovered) = Journal::open(dir, clock)?;
    let token = in_force(&recovered.entries)
        .into_iter()
        .find(|t| t.label() == label)
        .ok_or_else(|| TokenError::Unknown(label.to_owned()))?;
    let seq = journal.append(&Event::AdminTokenRevoked {
        token: token.id,
        name: token.name.clone(),
    });
    journal.wait_durable(seq).await?;
    Ok(token)
}
