//! Seeding a server through the admin API (the client's [`AdminClient`]): accounts,
//! preferences, OTP batches, and the export with passwords for the consoles set up manually.
//! A fleet's admin calls go through the run's [`Requester`] like any console's: injected faults,
//! retries, and generation recorded as the `issue` step.

use crate::api::Requester;
use crate::profile::{ConsoleProfile, Stream, stream_rng};
use otpfleet_client::{
    AdminClient, AdminError, Answer, ApiRequest, CallError, Caller, Ticket, Transport,
};
use otpfleet_protocol::{AccountInput, License, Preferences, Readiness, RouteId};
use otpfleet_reports::Step;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

/// The sign-in name of console `index` in a run with `seed` (distinct per run, so fleets can
/// share a server).
pub fn upn(seed: u64, index: u64) -> String {
    format!("room-{index:07}-s{seed}@fleet.otpfleet.test")
}

/// An admin's calls through the run's `Requester`, drawing faults from one random stream.
struct Seeding<'a, T> {
    requester: &'a Requester,
    transport: &'a T,
    rng: tokio::sync::Mutex<ChaCha8Rng>,
}

impl<T: Transport> Caller for Seeding<'_, T> {
    async fn call(&self, req: ApiRequest) -> Result<Answer, CallError> {
        let step = (req.route == Some(RouteId::CreateBatch)).then_some(Step::Issue);
        let mut rng = self.rng.lock().await;
        let now = Instant::now();
        self.requester
            .call(self.transport, step, req, now, &mut rng)
            .await
    }
}

impl<'a, T> Seeding<'a, T> {
    /// Calls through `requester` drawing from the random stream `stream`.
    fn new(requester: &'a Requester, transport: &'a T, stream: Stream) -> Self {
        let rng = tokio::sync::Mutex::new(stream_rng(requester.cfg.seed, stream));
        Seeding {
            requester,
            transport,
            rng,
        }
    }
}

/// Imports an account per console, sets the preferences and generates an OTP per account.
/// Answers a ticket per profile, in the same order.
pub async fn seed_server<T: Transport>(
    requester: &Requester,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<Ticket>, AdminError> {
    let prefs = Preferences {
        otp_validity_hours: requester.cfg.validity_hours,
        auto_approve: requester.cfg.auto_approve,
    };
    set_preferences(requester, transport, token, prefs).await?;
    let ids = import_accounts(requester, transport, token, profiles).await?;
    let validity = requester.cfg.validity_hours;
    issue_tickets(requester, transport, token, profiles, &ids, validity).await
}

/// Puts the admin preferences.
pub async fn set_preferences<T: Transport>(
    requester: &Requester,
    transport: &T,
    token: &str,
    prefs: Preferences,
) -> Result<(), AdminError> {
    let seeding = Seeding::new(requester, transport, Stream::Preferences);
    AdminClient::new(&seeding, token)
        .put_preferences(prefs)
        .await
}

/// Imports one account per console; answers the account ids in profile order.
pub async fn import_accounts<T: Transport>(
    requester: &Requester,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<String>, AdminError> {
    let accounts: Vec<AccountInput> = profiles
        .iter()
        .map(|p| AccountInput {
            upn: upn(requester.cfg.seed, p.index),
            display_name: format!("Room {}", p.index),
            license: License::Pro,
            readiness: Readiness::NoActionNeeded,
            password: None,
        })
        .collect();
    let seeding = Seeding::new(requester, transport, Stream::Import);
    AdminClient::new(&seeding, token).import(&accounts).await
}

/// Generates an OTP for each console's account (ids in profile order), now; answers a ticket
/// per profile, with the account's password for a console set up manually. `validity_hours` is
/// the validity in force, to know when each OTP expires.
pub async fn issue_tickets<T: Transport>(
    requester: &Requester,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
    account_ids: &[String],
    validity_hours: u32,
) -> Result<Vec<Ticket>, AdminError> {
    let seeding = Seeding::new(requester, transport, Stream::Batches);
    AdminClient::new(&seeding, token)
        .issue(account_ids, validity_hours, |i| profiles[i].manual)
        .await
}
