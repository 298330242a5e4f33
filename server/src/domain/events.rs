//! Domain events: every acknowledged change, as data. The core emits one per change to an
//! [`EventSink`] while it holds the lock that orders the change, so the sink's order replays
//! to the same state; [`Core::apply`](super::Core::apply) replays one. The journal of events is
//! also the audit log, so a few events record what changed no state the core keeps (an export,
//! an admin token) but must be in the log.
//!
//! **Architecture invariant:** events carry no plaintext OTP (only its keyed hash). The password
//! awaiting hand-over travels in `OtpIssued` so a restarted server can still hand it over once.

use otpfleet_protocol::{Device, License, Preferences, Readiness, RejectReason};
use serde::{Deserialize, Serialize};

/// One change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    AccountUpserted {
        id: u64,
        upn: String,
        display_name: String,
        license: License,
        readiness: Readiness,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_hash: Option<[u8; 32]>,
        /// The admin token that made the change (`tok_<n>`, `token-file`, `run-token`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    OtpIssued {
        account: u64,
        key: [u8; 32],
        batch: u64,
        generated_ms: u64,
        expires_ms: u64,
        credential: String,
        password_hash: [u8; 32],
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    BatchCreated {
        batch: u64,
        export_expires_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Redeemed {
        account: u64,
        request: u64,
        device: Device,
        requested_ms: u64,
        auto_approved: bool,
        poll_token: [u8; 16],
        interval_s: u32,
        /// When the verification token it was made with was issued (with the device, what
        /// makes a retry of this redemption this one; 0 in journals older than it).
        #[serde(default)]
        verified_ms: u64,
    },
    Decided {
        account: u64,
        request: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<RejectReason>,
        at_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    CredentialsHanded {
        account: u64,
        request: u64,
    },
    ManualSignedIn {
        account: u64,
    },
    PreferencesSet {
        preferences: Preferences,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A batch export was downloaded (audit only).
    BatchExported {
        batch: u64,
        with_passwords: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The account's OTP (or the request made with it) expired at `expires_ms` before sign-in;
    /// recorded once per OTP by the sweeper.
    OtpExpired {
        account: u64,
        batch: u64,
        expires_ms: u64,
    },
    /// An admin token was added: its number, name and SHA-256 (never the token).
    AdminTokenAdded {
        token: u64,
        name: String,
        hash: [u8; 32],
    },
    AdminTokenRevoked {
        token: u64,
        name: String,
    },
}

impl Event {
    /// The event as an audit log that is not also the state keeps it (the PostgreSQL store's
    /// `events`: the state is in its tables): its secrets (an OTP's keyed hash, a password
    /// awaiting hand-over, a password's or a token's hash, a poll token) zeroed.
    pub fn redacted(mut self) -> Event {
        match &mut self {
            Event::OtpIssued {
                key,
                credential,
                password_hash,
                ..
            } => {
                *key = [0; 32];
                credential.clear();
                *password_hash = [0; 32];
            }
            Event::AccountUpserted { password_hash, .. } => *password_hash = None,
            Event::Redeemed { poll_token, .. } => *poll_token = [0; 16],
            Event::AdminTokenAdded { hash, .. } => *hash = [0; 32],
            _ => {}
        }
        self
    }
}

/// An event with its place in the journal taken, waiting to be sent with the rest of its unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub seq: u64,
    pub at_ms: u64,
    pub bytes: Vec<u8>,
}

/// Where events go: a journal that makes them durable, in the order appended.
///
/// A request that changes many things (an import, an OTP batch) journals its events as one
/// unit: each is numbered when its change is applied (`reserve`, under the lock that orders the
/// change), and all are sent together (`send_unit`). The journal commits a unit whole or not at
/// all, so a crash leaves every request wholly applied or not at all.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Appends one event (a unit of one); answers its sequence number.
    fn append(&self, event: &Event) -> u64 {
        let reserved = self.reserve(event);
        let seq = reserved.seq;
        self.send_unit(vec![reserved]);
        seq
    }
    /// The sequence number of the last event numbered so far.
    fn appended(&self) -> u64;
    /// Numbers `event` (its place among every change) without sending it.
    fn reserve(&self, event: &Event) -> Reserved;
    /// Sends the events of one unit. Every reserved event must be sent: the journal commits in
    /// order and waits for a missing number.
    fn send_unit(&self, unit: Vec<Reserved>);
}
