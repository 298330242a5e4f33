//! Before the attack: preferences, accounts and pre-issued OTPs, through the admin API of any
//! server implementing the contract (the emulator's transport), so nothing a scenario measures
//! competes with setting up.

use crate::tickets::Ticket;
use otpfleet_emulator::transport::{ApiRequest, ApiResponse, Transport};
use otpfleet_protocol::RouteId;
use otpfleet_protocol::{
    AccountInput, BatchCreated, BatchRequest, ErrorBody, ImportResult, License, PasswordMode,
    Preferences, Readiness,
};
use std::collections::HashMap;

/// Accounts imported and OTPs generated per request.
const CHUNK: usize = 5_000;
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
    pub console_tickets: Vec<Ticket>,
    pub feeder_tickets: Vec<Ticket>,
    /// Account ids of the issue pool.
    pub issue_accounts: Vec<String>,
}

/// The accounts of a pool: `c` consoles, `f` feeder, `i` issue.
fn upn(seed: u64, pool: char, index: usize) -> String {
    format!("load-{pool}{index:07}-s{seed}@load.otpfleet.test")
}

/// A serial number in the style of the make's (synthetic, unique per run and ticket).
fn serial(seed: u64, pool: char, index: usize) -> String {
    format!(
        "LT{:04}{}{index:07}",
        seed % 10_000,
        pool.to_ascii_uppercase()
    )
}

/// Sets the preferences (manual approval, the validity given), imports the pools' accounts and
/// generates the tickets' OTPs.
pub async fn seed<T: Transport>(t: &T, token: &str, plan: &SetupPlan) -> Result<Seeded, String> {
    let total = plan.console_tickets + plan.feeder_tickets + plan.issue_accounts;
    if total > MAX_ACCOUNTS {
        return Err(format!(
            "{total} accounts to set up: at most {MAX_ACCOUNTS} (lower --tickets or the users)"
        ));
    }
    let prefs = Preferences {
        otp_validity_hours: plan.validity_hours,
        auto_approve: false,
    };
    let req = ApiRequest {
        method: http::Method::PUT,
        ..ApiRequest::post_json(RouteId::PutPreferences.path(), &prefs).with_bearer(token)
    };
    expect_ok(t.send(req).await, "setting the preferences")?;
    let issue: Vec<AccountInput> = (0..plan.issue_accounts)
        .map(|i| account(upn(plan.seed, 'i', i), ready(i)))
        .collect();
    let issue_accounts = import(t, token, &issue).await?;
    Ok(Seeded {
        console_tickets: tickets(t, token, plan.seed, 'c', plan.console_tickets).await?,
        feeder_tickets: tickets(t, token, plan.seed, 'f', plan.feeder_tickets).await?,
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

/// Imports accounts; answers their ids in order.
async fn import<T: Transport>(
    t: &T,
    token: &str,
    accounts: &[AccountInput],
) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(accounts.len());
    for chunk in accounts.chunks(CHUNK) {
        let req = ApiRequest::post_json(RouteId::ImportAccounts.path(), &chunk).with_bearer(token);
        let answer = expect_ok(t.send(req).await, "importing accounts")?;
        let imported: ImportResult = parse(&answer, "the account import")?;
        if imported.results.len() != chunk.len() {
            return Err("the account import answered a different number of accounts".into());
        }
        ids.extend(imported.results.into_iter().map(|r| r.account_id));
    }
    Ok(ids)
}

/// Imports `count` ready accounts of `pool` and generates an OTP for each.
async fn tickets<T: Transport>(
    t: &T,
    token: &str,
    seed: u64,
    pool: char,
    count: usize,
) -> Result<Vec<Ticket>, String> {
    let ready = (License::Pro, Readiness::NoActionNeeded);
    let accounts: Vec<AccountInput> = (0..count)
        .map(|i| account(upn(seed, pool, i), ready))
        .collect();
    let ids = import(t, token, &accounts).await?;
    let mut tickets = Vec::with_capacity(count);
    for (chunk, base) in ids.chunks(CHUNK).zip((0..).step_by(CHUNK)) {
        let body = BatchRequest {
            account_ids: chunk.to_vec(),
            password_mode: PasswordMode::AutoGenerate,
            sign_in_csv: None,
            review_only: false,
        };
        let req = ApiRequest::post_json(RouteId::CreateBatch.path(), &body).with_bearer(token);
        let answer = expect_ok(t.send(req).await, "generating OTPs")?;
        let created: BatchCreated = parse(&answer, "the OTP batch")?;
        if let Some(r) = created.refused.first() {
            return Err(format!(
                "the server refused an OTP for {}: {}",
                r.upn, r.message
            ));
        }
        let otps: HashMap<&str, &str> = created
            .generated
            .iter()
            .map(|g| (g.account_id.as_str(), g.otp.as_str()))
            .collect();
        for (k, id) in chunk.iter().enumerate() {
            let otp = otps
                .get(id.as_str())
                .ok_or_else(|| format!("no OTP was generated for {id}"))?;
            tickets.push(Ticket {
                upn: upn(seed, pool, base + k),
                otp: (*otp).to_owned(),
                serial: serial(seed, pool, base + k),
            });
        }
    }
    Ok(tickets)
}

fn parse<T: serde::de::DeserializeOwned>(answer: &ApiResponse, what: &str) -> Result<T, String> {
    serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{what} answer does not match the contract: {e}"))
}

fn expect_ok<E: std::fmt::Display>(
    result: Result<ApiResponse, E>,
    doing: &str,
) -> Result<ApiResponse, String> {
    match result {
        Ok(a) if (200..300).contains(&a.status) => Ok(a),
        Ok(a) => {
            let why = serde_json::from_slice::<ErrorBody>(&a.body).map_or_else(
                |_| format!("status {}", a.status),
                |b| format!("{}: {}", b.error, b.message),
            );
            Err(format!("while {doing}, the server answered {why}"))
        }
        Err(e) => Err(format!("while {doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_per_pool_and_run() {
        assert_ne!(upn(1, 'c', 0), upn(1, 'f', 0));
        assert_ne!(upn(1, 'c', 0), upn(2, 'c', 0));
        assert_ne!(serial(1, 'c', 0), serial(1, 'f', 0));
        assert!(
            serial(u64::MAX, 'c', 9_999_999).len() <= otpfleet_protocol::limits::MAX_SERIAL_BYTES
        );
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
