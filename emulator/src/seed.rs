//! Seeding a server through the admin API (the client's [`AdminClient`]): accounts,
//! preferences, OTP batches, and the export with passwords for the consoles set up manually.
//! A fleet's admin calls go through the run's [`Ctx`] like any console's: injected faults,
//! retries, and generation recorded as the `issue` step.

use crate::api::Ctx;
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

/// An admin's calls through the run's `Ctx`, drawing faults from one random stream.
struct Seeding<'a, T> {
    ctx: &'a Ctx,
    transport: &'a T,
    rng: tokio::sync::Mutex<ChaCha8Rng>,
}

impl<T: Transport> Caller for Seeding<'_, T> {
    async fn call(&self, req: ApiRequest) -> Result<Answer, CallError> {
        let step = (req.route == Some(RouteId::CreateBatch)).then_some(Step::Issue);
        let mut rng = self.rng.lock().await;
        let now = Instant::now();
        self.ctx
            .call(self.transport, step, req, now, &mut rng)
            .await
    }
}

impl<'a, T> Seeding<'a, T> {
    /// Calls through `ctx` drawing from the random stream `stream`.
    fn new(ctx: &'a Ctx, transport: &'a T, stream: Stream) -> Self {
        let rng = tokio::sync::Mutex::new(stream_rng(ctx.cfg.seed, stream));
        Seeding {
            ctx,
            transport,
            rng,
        }
    }
}

/// Imports an account per console, sets the preferences and generates an OTP per account.
/// Answers a ticket per profile, in the same order.
pub async fn seed_server<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<Ticket>, AdminError> {
    let prefs = Preferences {
        otp_validity_hours: ctx.cfg.validity_hours,
        auto_approve: ctx.cfg.auto_approve,
    };
    set_preferences(ctx, transport, token, prefs).await?;
    let ids = import_accounts(ctx, transport, token, profiles).await?;
    let validity = ctx.cfg.validity_hours;
    issue_tickets(ctx, transport, token, profiles, &ids, validity).await
}

/// Puts the admin preferences.
pub async fn set_preferences<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    prefs: Preferences,
) -> Result<(), AdminError> {
    let seeding = Seeding::new(ctx, transport, Stream::Preferences);
    AdminClient::new(&seeding, token)
        .put_preferences(prefs)
        .await
}

/// Imports one account per console; answers the account ids in profile order.
pub async fn import_accounts<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<String>, AdminError> {
    let accounts: Vec<AccountInput> = profiles
        .iter()
        .map(|p| AccountInput {
            upn: upn(ctx.cfg.seed, p.index),
            display_name: format!("Room {}", p.index),
            license: License::Pro,
            readiness: Readiness::NoActionNeeded,
            password: None,
        })
        .collect();
    let seeding = Seeding::new(ctx, transport, Stream::Import);
    AdminClient::new(&seeding, token).import(&accounts).await
}

/// Generates an OTP for each console's account (ids in profile order), now; answers a ticket
/// per profile, with the account's password for a console set up manually. `validity_hours` is
/// the validity in force, to know when each OTP expires.
pub async fn issue_tickets<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
    account_ids: &[String],
    validity_hours: u32,
) -> Result<Vec<Ticket>, AdminError> {
    let seeding = Seeding::new(ctx, transport, Stream::Batches);
    AdminClient::new(&seeding, token)
        .issue(account_ids, validity_hours, |i| profiles[i].manual)
        .await
}
