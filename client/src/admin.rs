//! The admin side of the contract as set-up code uses it: preferences, account imports and OTP
//! batches in chunks, the export with the passwords for consoles set up by hand. The fleet's
//! seeding and the load scenarios' set-up both go through [`AdminClient`], over any [`Caller`]:
//! a bare transport, or the emulator's recorded calls with injected faults and retries.

use crate::answer::Answer;
use crate::calls;
use crate::transport::{ApiRequest, Transport, TransportError};
use otpfleet_protocol::{
    AccountInput, BatchCreated, BatchRequest, ImportResult, PasswordMode, Preferences,
    PreferencesView, export_value,
};
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Accounts imported and OTPs generated per request.
pub const CHUNK: usize = 5_000;

/// Why a call got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The run was stopped.
    #[error("the run was stopped")]
    Cancelled,
    /// No answer (after every retry the caller makes).
    #[error(transparent)]
    Unreachable(#[from] TransportError),
}

/// Something that sends a request and answers the server's answer.
pub trait Caller: Sync {
    fn call(&self, req: ApiRequest) -> impl Future<Output = Result<Answer, CallError>> + Send;
}

/// A transport is a caller: one attempt, nothing recorded.
impl<T: Transport> Caller for T {
    async fn call(&self, req: ApiRequest) -> Result<Answer, CallError> {
        Ok(self.send(req).await?)
    }
}

/// What the admin handed a console's installer: the OTP (or, for manual setup, the account's
/// email and password) and when the OTP expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The account the OTP was generated for.
    pub upn: String,
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub otp: String,
    /// The account's password, when it was exported for manual setup.
    pub password: Option<String>,
    /// When the OTP expires, on the caller's clock (tokio's: simulated in a rehearsal).
    pub expires_at: Instant,
}

/// Why setting a server up failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    #[error("while {doing}, the server answered {why}")]
    Refused { doing: &'static str, why: String },
    #[error("stopped while {doing}")]
    Stopped { doing: &'static str },
    #[error("while {doing}: {source}")]
    Unreachable {
        doing: &'static str,
        source: TransportError,
    },
    #[error("while {doing}: the answer does not match the contract: {detail}")]
    NotTheContract { doing: &'static str, detail: String },
    #[error("the server refused to generate an OTP for {upn}: {message}")]
    OtpRefused { upn: String, message: String },
}

/// An admin with a token, calling through `caller`.
#[derive(Debug)]
pub struct AdminClient<'a, C> {
    caller: &'a C,
    token: &'a str,
}

impl<'a, C: Caller> AdminClient<'a, C> {
    pub fn new(caller: &'a C, token: &'a str) -> Self {
        AdminClient { caller, token }
    }

    /// Sends `req`; a 2xx answer or why not.
    async fn ok(&self, req: ApiRequest, doing: &'static str) -> Result<Answer, AdminError> {
        match self.caller.call(req).await {
            Ok(a) if a.ok() => Ok(a),
            Ok(a) => Err(AdminError::Refused {
                doing,
                why: a.why(),
            }),
            Err(CallError::Cancelled) => Err(AdminError::Stopped { doing }),
            Err(CallError::Unreachable(source)) => Err(AdminError::Unreachable { doing, source }),
        }
    }

    /// Sends `req` and reads its 2xx answer as `T`.
    async fn parsed<T: serde::de::DeserializeOwned>(
        &self,
        req: ApiRequest,
        doing: &'static str,
    ) -> Result<T, AdminError> {
        let answer = self.ok(req, doing).await?;
        serde_json::from_slice(&answer.body).map_err(|e| AdminError::NotTheContract {
            doing,
            detail: e.to_string(),
        })
    }

    /// The preferences in force.
    pub async fn preferences(&self) -> Result<Preferences, AdminError> {
        let req = calls::get_preferences(self.token);
        let v: PreferencesView = self.parsed(req, "reading the preferences").await?;
        Ok(Preferences {
            otp_validity_hours: v.otp_validity_hours,
            auto_approve: v.auto_approve,
        })
    }

    pub async fn put_preferences(&self, prefs: Preferences) -> Result<(), AdminError> {
        let req = calls::put_preferences(prefs, self.token);
        self.ok(req, "setting the preferences").await.map(|_| ())
    }

    /// Imports `accounts`, [`CHUNK`] per request; answers their ids in order.
    pub async fn import(&self, accounts: &[AccountInput]) -> Result<Vec<String>, AdminError> {
        let doing = "importing accounts";
        let mut ids = Vec::with_capacity(accounts.len());
        for chunk in accounts.chunks(CHUNK) {
            let req = calls::import_accounts(chunk, self.token);
            let imported: ImportResult = self.parsed(req, doing).await?;
            if imported.results.len() != chunk.len() {
                return Err(AdminError::NotTheContract {
                    doing,
                    detail: format!(
                        "{} accounts answered for {} imported",
                        imported.results.len(),
                        chunk.len()
                    ),
                });
            }
            ids.extend(imported.results.into_iter().map(|r| r.account_id));
        }
        Ok(ids)
    }

    /// Generates an OTP for each account of `account_ids`, [`CHUNK`] per batch, now; answers a
    /// ticket per account, in order. `validity_hours` is the validity in force (to know when
    /// each OTP expires); the ticket of account `i` carries its password when
    /// `wants_password(i)` (exported once per batch that has any).
    pub async fn issue(
        &self,
        account_ids: &[String],
        validity_hours: u32,
        wants_password: impl Fn(usize) -> bool,
    ) -> Result<Vec<Ticket>, AdminError> {
        let doing = "generating OTPs";
        let mut tickets = Vec::with_capacity(account_ids.len());
        for (chunk, first) in account_ids.chunks(CHUNK).zip((0..).step_by(CHUNK)) {
            let batch = BatchRequest {
                account_ids: chunk.to_vec(),
                password_mode: PasswordMode::AutoGenerate,
                sign_in_csv: None,
                review_only: false,
            };
            let created: BatchCreated = self
                .parsed(calls::create_batch(&batch, self.token), doing)
                .await?;
            if let Some(r) = created.refused.first() {
                return Err(AdminError::OtpRefused {
                    upn: r.upn.clone(),
                    message: r.message.clone(),
                });
            }
            let expires_at = Instant::now() + Duration::from_secs(u64::from(validity_hours) * 3600);
            let wanted = |k: usize| wants_password(first + k);
            let passwords = if (0..chunk.len()).any(wanted) {
                self.passwords(&created.batch_id).await?
            } else {
                HashMap::new()
            };
            let generated: HashMap<&str, _> = created
                .generated
                .iter()
                .map(|g| (g.account_id.as_str(), g))
                .collect();
            for (k, id) in chunk.iter().enumerate() {
                let g = generated
                    .get(id.as_str())
                    .ok_or_else(|| AdminError::NotTheContract {
                        doing,
                        detail: format!("no OTP was generated for {id}"),
                    })?;
                tickets.push(Ticket {
                    password: if wanted(k) {
                        passwords.get(&g.upn).cloned()
                    } else {
                        None
                    },
                    upn: g.upn.clone(),
                    otp: g.otp.clone(),
                    expires_at,
                });
            }
        }
        Ok(tickets)
    }

    /// The passwords of a batch's accounts by upn, from its export.
    async fn passwords(&self, batch_id: &str) -> Result<HashMap<String, String>, AdminError> {
        let doing = "exporting the batch";
        let answer = self
            .ok(calls::export_batch(batch_id, true, self.token), doing)
            .await?;
        let not_csv = |e: csv::Error| AdminError::NotTheContract {
            doing,
            detail: format!("the export is not CSV: {e}"),
        };
        let mut reader = csv::Reader::from_reader(answer.body.as_ref());
        let header = reader.headers().map_err(not_csv)?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(upn_col), Some(pw_col)) = (col("upn"), col("password")) else {
            return Err(AdminError::NotTheContract {
                doing,
                detail: "the export has no upn and password columns".into(),
            });
        };
        let mut passwords = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(not_csv)?;
            if let (Some(upn), Some(pw)) = (record.get(upn_col), record.get(pw_col)) {
                // A cell that would start a formula carries a leading ' that is not the value.
                passwords.insert(export_value(upn).to_owned(), export_value(pw).to_owned());
            }
        }
        Ok(passwords)
    }
}
