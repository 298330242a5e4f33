//! What every replica shares besides the accounts: the server secret and the preferences (the
//! `server` row, made by the migration).

use super::{PgError, PgStore};
use crate::domain::secrets::Secrets;
use crate::domain::{ApiError, Event, check_preferences};
use otpfleet_protocol::Preferences;

impl PgStore {
    /// The keys every replica derives from the shared secret.
    pub async fn secrets(&self) -> Result<Secrets, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT secret FROM server", &[])
            .await
            .map_err(|e| self.failed(&e))?;
        let secret: [u8; 32] = row
            .get::<_, &[u8]>(0)
            .try_into()
            .map_err(|_| PgError::Failed {
                target: self.target.clone(),
                why: "the server secret is not 32 bytes".into(),
            })?;
        Ok(Secrets::from_secret(&secret))
    }

    /// The preferences as they stand.
    pub async fn preferences(&self) -> Result<Preferences, PgError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT otp_validity_hours, auto_approve FROM server", &[])
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(Preferences {
            otp_validity_hours: row.get::<_, i32>(0) as u32,
            auto_approve: row.get(1),
        })
    }

    /// Replaces the preferences (refused as the embedded store refuses them), with its audit
    /// event in the same statement.
    pub async fn set_preferences(
        &self,
        prefs: Preferences,
        by: Option<&str>,
        at_ms: u64,
    ) -> Result<Result<Preferences, ApiError>, PgError> {
        if let Err(e) = check_preferences(&prefs) {
            return Ok(Err(e));
        }
        let client = self.client().await?;
        let event = super::transitions::body(Event::PreferencesSet {
            preferences: prefs,
            by: by.map(str::to_owned),
        });
        client
            .execute(
                "WITH t AS (UPDATE server SET otp_validity_hours = $1, auto_approve = $2 \
                 RETURNING 1) \
                 INSERT INTO events (at_ms, body) SELECT $3, $4::text::jsonb FROM t",
                &[
                    &(prefs.otp_validity_hours as i32),
                    &prefs.auto_approve,
                    &(at_ms as i64),
                    &event,
                ],
            )
            .await
            .map_err(|e| self.failed(&e))?;
        Ok(Ok(prefs))
    }
}
