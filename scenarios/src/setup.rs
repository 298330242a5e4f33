//! Before the attack: preferences, accounts and pre-issued OTPs, through the client's admin
//! API of any server implementing the contract, so nothing a scenario measures competes with
//! setting up.

use crate::tickets::TicketQueue;
use otpfleet_client::{AdminClient, AdminError, Transport};
use otpfleet_protocol::{AccountInput, License, Preferences, Readiness};
/// Most accounts one run sets up.
pub const MAX_ACCOUNTS: usize = 2_000_000;

/// What to set up.
#[derive(Debug, Clone, Copy)]
pub struct SetupPlan {
    pub seed: u64,
    /// OTPs for the goose console users.
    pub console_tickets: usize,
    /// OTPs for the feeder that keeps the approval queue full.
    pub feeder_tickets: usize,
    /// Accounts the `issue` admins generate OTPs for (one in ten is not ready, so reviews
    /// refuse some, as real selections do).
    pub issue_accounts: usize,
    pub validity_hours: u32,
}

/// What was set up.
#[derive(Debug, Default)]
pub struct Seeded {
    pub console_tickets: TicketQueue,
    pub feeder_tickets: TicketQueue,
    /// Account ids of the issue pool.
    pub issue_accounts: Vec<String>,
}

/// The accounts of a pool: `c` consoles, `f` feeder, `i` issue.
fn upn(seed: u64, pool: char, index: usize) -> String {
    format!("load-{pool}{index:07}-s{seed}@load.otpfleet.test")
}

/// The start of the serial numbers of a pool's consoles: in the style of the make's,
/// synthetic, unique per run and pool; a console's index in the pool ends it
/// ([`TicketQueue::take`]).
fn serial_prefix(seed: u64, pool: char) -> String {
    format!("LT{:04}{}", seed % 10_000, pool.to_ascii_uppercase())
}

/// Why setting the server up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{total} accounts to set up: at most {MAX_ACCOUNTS}")]
    TooMany { total: usize },
    #[error(transparent)]
    Server(#[from] AdminError),
}

/// Sets the preferences (manual approval, the validity given), imports the pools' accounts and
/// generates the tickets' OTPs.
pub async fn seed<T: Transport>(
    t: &T,
    token: &str,
    plan: &SetupPlan,
) -> Result<Seeded, SetupError> {
    let total = plan.console_tickets + plan.feeder_tickets + plan.issue_accounts;
    if total > MAX_ACCOUNTS {
        return Err(SetupError::TooMany { total });
    }
    let admin = AdminClient::new(t, token);
    admin
        .put_preferences(Preferences {
            otp_validity_hours: plan.validity_hours,
            auto_approve: false,
        })
        .await?;
    let issue: Vec<AccountInput> = (0..plan.issue_accounts)
        .map(|i| account(upn(plan.seed, 'i', i), ready(i)))
        .collect();
    let issue_accounts = admin.import(&issue).await?;
    let tickets = async |pool: char, count: usize| -> Result<TicketQueue, AdminError> {
        let ready = (License::Pro, Readiness::NoActionNeeded);
        let accounts: Vec<AccountInput> = (0..count)
            .map(|i| account(upn(plan.seed, pool, i), ready))
            .collect();
        let ids = admin.import(&accounts).await?;
        let tickets = admin.issue(&ids, plan.validity_hours, |_| false).await?;
        Ok(TicketQueue::new(tickets, serial_prefix(plan.seed, pool)))
    };
    Ok(Seeded {
        console_tickets: tickets('c', plan.console_tickets).await?,
        feeder_tickets: tickets('f', plan.feeder_tickets).await?,
        issue_accounts,
    })
}

/// One in ten accounts of the issue pool is not ready: a basic licence or one missing.
fn ready(index: usize) -> (License, Readiness) {
    match index % 20 {
        9 => (License::Basic, Readiness::NoActionNeeded),
        19 => (License::Pro, Readiness::NeedsLicense),
        _ => (License::Pro, Readiness::NoActionNeeded),
    }
}

fn account(upn: String, (license, readiness): (License, Readiness)) -> AccountInput {
    AccountInput {
        display_name: format!("Load room {upn}"),
        upn,
        license,
        readiness,
        password: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_per_pool_and_run() {
        assert_ne!(upn(1, 'c', 0), upn(1, 'f', 0));
        assert_ne!(upn(1, 'c', 0), upn(2, 'c', 0));
        assert_ne!(serial_prefix(1, 'c'), serial_prefix(1, 'f'));
        let longest = TicketQueue::serial(&serial_prefix(u64::MAX, 'c'), 9_999_999);
        assert!(longest.len() <= otpfleet_protocol::limits::MAX_SERIAL_BYTES);
    }

    #[test]
    fn one_issue_account_in_ten_is_refused() {
        let refused = (0..1_000)
            .filter(|i| {
                let (license, readiness) = ready(*i);
                license != License::Pro || readiness.refusal().is_some()
            })
            .count();
        assert_eq!(refused, 100);
    }
}
