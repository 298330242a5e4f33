//! Seeding a server through the admin API: accounts, preferences, OTP batches, and the export
//! with passwords for the consoles set up manually.

use crate::api::{Answer, Ctx, Failure};
use crate::console::Ticket;
use crate::profile::{ConsoleProfile, Stream, stream_rng};
use crate::transport::{ApiRequest, Transport};
use otpfleet_protocol::RouteId;
use otpfleet_protocol::{
    AccountInput, BatchCreated, BatchRequest, ImportResult, License, PasswordMode, Preferences,
    Readiness, export_value,
};
use otpfleet_reports::Step;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Accounts imported and OTPs generated per request.
const CHUNK: usize = 5_000;

/// The sign-in name of console `index` in a run with `seed` (distinct per run, so fleets can
/// share a server).
pub fn upn(seed: u64, index: u64) -> String {
    format!("room-{index:07}-s{seed}@fleet.otpfleet.test")
}

/// Imports an account per console, sets the preferences and generates an OTP per account.
/// Answers a ticket per profile, in the same order.
pub async fn seed_server<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<Ticket>, String> {
    let prefs = Preferences {
        otp_validity_hours: ctx.cfg.validity_hours,
        auto_approve: ctx.cfg.auto_approve,
    };
    set_preferences(ctx, transport, token, prefs).await?;
    let ids = import_accounts(ctx, transport, token, profiles).await?;
    issue_tickets(
        ctx,
        transport,
        token,
        profiles,
        &ids,
        ctx.cfg.validity_hours,
    )
    .await
}

/// Puts the admin preferences.
pub async fn set_preferences<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    prefs: Preferences,
) -> Result<(), String> {
    let mut rng = stream_rng(ctx.cfg.seed, Stream::Preferences);
    let req = put_preferences(prefs, token);
    let answer = ctx
        .call(transport, None, req, Instant::now(), &mut rng)
        .await;
    expect_ok(answer, "setting the preferences").map(|_| ())
}

/// Imports one account per console; answers the account ids in profile order.
pub async fn import_accounts<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
) -> Result<Vec<String>, String> {
    let mut rng = stream_rng(ctx.cfg.seed, Stream::Import);
    let mut ids = Vec::with_capacity(profiles.len());
    for chunk in profiles.chunks(CHUNK) {
        let accounts: Vec<AccountInput> = chunk
            .iter()
            .map(|p| AccountInput {
                upn: upn(ctx.cfg.seed, p.index),
                display_name: format!("Room {}", p.index),
                license: License::Pro,
                readiness: Readiness::NoActionNeeded,
                password: None,
            })
            .collect();
        let req =
            ApiRequest::post_json(RouteId::ImportAccounts.path(), &accounts).with_bearer(token);
        let answer = ctx
            .call(transport, None, req, Instant::now(), &mut rng)
            .await;
        let imported: ImportResult = expect_ok(answer, "importing accounts")?
            .parse()
            .ok_or("the account import answer does not match the contract")?;
        if imported.results.len() != chunk.len() {
            return Err("the account import answered a different number of accounts".into());
        }
        ids.extend(imported.results.into_iter().map(|r| r.account_id));
    }
    Ok(ids)
}

/// Generates an OTP for each console's account (ids in profile order), now; answers a ticket
/// per profile. `validity_hours` is the validity in force, to know when each OTP expires.
pub async fn issue_tickets<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    profiles: &[ConsoleProfile],
    account_ids: &[String],
    validity_hours: u32,
) -> Result<Vec<Ticket>, String> {
    let mut rng = stream_rng(ctx.cfg.seed, Stream::Batches);
    let mut tickets = Vec::with_capacity(profiles.len());
    for (chunk, ids) in profiles.chunks(CHUNK).zip(account_ids.chunks(CHUNK)) {
        let batch = BatchRequest {
            account_ids: ids.to_vec(),
            password_mode: PasswordMode::AutoGenerate,
            sign_in_csv: None,
            review_only: false,
        };
        let req = ApiRequest::post_json(RouteId::CreateBatch.path(), &batch).with_bearer(token);
        let answer = ctx
            .call(transport, Some(Step::Issue), req, Instant::now(), &mut rng)
            .await;
        let created: BatchCreated = expect_ok(answer, "generating OTPs")?
            .parse()
            .ok_or("the OTP batch answer does not match the contract")?;
        if let Some(r) = created.refused.first() {
            return Err(format!(
                "the server refused to generate an OTP for {}: {}",
                r.upn, r.message
            ));
        }
        let expires_at = Instant::now() + Duration::from_secs(u64::from(validity_hours) * 3600);
        let passwords = if chunk.iter().any(|p| p.manual) {
            export_passwords(ctx, transport, token, &created.batch_id, &mut rng).await?
        } else {
            HashMap::new()
        };
        let otps: HashMap<&str, &str> = created
            .generated
            .iter()
            .map(|g| (g.account_id.as_str(), g.otp.as_str()))
            .collect();
        for (p, id) in chunk.iter().zip(ids) {
            let otp = otps
                .get(id.as_str())
                .ok_or_else(|| format!("no OTP was generated for {id}"))?;
            let upn = upn(ctx.cfg.seed, p.index);
            tickets.push(Ticket {
                password: if p.manual {
                    passwords.get(&upn).cloned()
                } else {
                    None
                },
                upn,
                otp: (*otp).to_owned(),
                expires_at,
            });
        }
    }
    Ok(tickets)
}

async fn export_passwords<T: Transport>(
    ctx: &Ctx,
    transport: &T,
    token: &str,
    batch_id: &str,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<HashMap<String, String>, String> {
    let req = ApiRequest::get(format!(
        "{}?include_passwords=true",
        RouteId::ExportBatch.path_for(batch_id)
    ))
    .with_bearer(token);
    let answer = expect_ok(
        ctx.call(transport, None, req, Instant::now(), rng).await,
        "exporting the batch",
    )?;
    let mut reader = csv::Reader::from_reader(answer.body.as_ref());
    let header = reader
        .headers()
        .map_err(|e| format!("the batch export is not CSV: {e}"))?
        .clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(upn_col), Some(pw_col)) = (col("upn"), col("password")) else {
        return Err("the batch export has no upn and password columns".into());
    };
    let mut passwords = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("the batch export is not CSV: {e}"))?;
        if let (Some(upn), Some(pw)) = (record.get(upn_col), record.get(pw_col)) {
            // A cell that would start a formula carries a leading ' that is not the value.
            passwords.insert(export_value(upn).to_owned(), export_value(pw).to_owned());
        }
    }
    Ok(passwords)
}

fn expect_ok(result: Result<Answer, Failure>, doing: &str) -> Result<Answer, String> {
    match result {
        Ok(a) if a.ok() => Ok(a),
        Ok(a) => {
            let why = a.error_body().map_or_else(
                || format!("status {}", a.status),
                |b| format!("{}: {}", b.error, b.message),
            );
            Err(format!("while {doing}, the server answered {why}"))
        }
        Err(Failure::Cancelled) => Err(format!("stopped while {doing}")),
        Err(Failure::Unreachable(e)) => Err(format!("while {doing}: {e}")),
    }
}

/// The target's preferences, read before a run changes them (outside any run: not recorded,
/// not cancelled).
pub async fn found_preferences<T: Transport>(
    transport: &T,
    token: &str,
) -> Result<Preferences, String> {
    let doing = "reading the target's preferences";
    let req = ApiRequest::get(RouteId::GetPreferences.path()).with_bearer(token);
    let answer = transport
        .send(req)
        .await
        .map_err(|e| format!("while {doing}: {e}"))?;
    let answer = expect_ok(Ok(answer.into()), doing)?;
    serde_json::from_slice::<otpfleet_protocol::PreferencesView>(&answer.body)
        .map(|v| Preferences {
            otp_validity_hours: v.otp_validity_hours,
            auto_approve: v.auto_approve,
        })
        .map_err(|e| format!("while {doing}: the answer is not the contract's: {e}"))
}

/// Puts back the preferences a run found (after the run, even an interrupted one: not
/// cancelled).
pub async fn restore_preferences<T: Transport>(
    transport: &T,
    token: &str,
    prefs: Preferences,
) -> Result<(), String> {
    let doing = "restoring the target's preferences";
    let req = put_preferences(prefs, token);
    let answer = transport
        .send(req)
        .await
        .map_err(|e| format!("while {doing}: {e}"))?;
    expect_ok(Ok(answer.into()), doing).map(|_| ())
}

/// `PUT /v1/preferences` with the admin token.
fn put_preferences(prefs: Preferences, token: &str) -> ApiRequest {
    ApiRequest {
        method: http::Method::PUT,
        ..ApiRequest::post_json(RouteId::PutPreferences.path(), &prefs).with_bearer(token)
    }
}
