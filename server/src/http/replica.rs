//! Dispatch for a replica on the PostgreSQL store (`serve --database-url`): the same routes,
//! checks and answers as the embedded server's (`router.rs`, whose helpers this uses), each
//! route's work done by `PgCore`. Nothing here waits for a journal: a change is kept when its
//! statement commits, before it is answered.

use super::App;
use super::body::{Media, Reply, media, read, reply_bytes, reply_json};
use super::router::{
    account_query, audit_query, audit_reply, caller, export_reply, if_match, include_passwords,
    json_body, ok, poll_token, refuse_too_large, request_query,
};
use crate::domain::ApiError;
use crate::domain::accounts::{parse_accounts_csv, parse_accounts_json};
use crate::domain::batches::BatchOutcome;
use crate::pg::PgCore;
use http::{Request, StatusCode, header};
use hyper::body::Body;
use otpfleet_protocol::{
    BatchRequest, ErrorCode, Health, ManualSignInRequest, OPENAPI_JSON, Preferences, RedeemRequest,
    RejectBody, Route, RouteId, VerifyRequest,
};

/// Answers one routed request over the PostgreSQL store.
pub(super) async fn dispatch<B>(
    app: &App,
    route: &Route,
    id: Option<&str>,
    req: Request<B>,
) -> Result<Reply, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(pg) = app.postgres.as_deref() else {
        return Err(ApiError::new(ErrorCode::Internal, "no database"));
    };
    let (parts, body) = req.into_parts();
    let by = caller(app, route, &parts.headers)?;
    let id = id.unwrap_or_default();
    let max = pg.config().max_body_bytes;
    refuse_too_large(&parts.headers, max)?;
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let query = parts.uri.query();
    let address = parts.extensions.get::<super::ClientAddr>().map(|c| c.0);
    let now = app.now_ms();
    match route.id {
        RouteId::ImportAccounts => {
            let media = media(content_type, true)?;
            let bytes = read(body, max).await?;
            let rows = match media {
                Media::Json => parse_accounts_json(&bytes)?,
                Media::Csv => parse_accounts_csv(&bytes)?,
            };
            ok(&pg.import_accounts(rows, by, now).await?)
        }
        RouteId::ListAccounts => ok(&pg.list_accounts(&account_query(query)?, now).await?),
        RouteId::GetAccount => ok(&pg.account_detail(id, now).await?),
        RouteId::CreateBatch => {
            let req: BatchRequest = json_body(body, content_type, max).await?;
            match pg.create_batch(req, now, by).await? {
                BatchOutcome::Review(review) => ok(&review),
                BatchOutcome::Created(created) => Ok(reply_json(StatusCode::CREATED, &created)),
            }
        }
        RouteId::ExportBatch => {
            let with_passwords = include_passwords(query)?;
            let csv = pg.export_batch(id, with_passwords, now, by).await?;
            Ok(export_reply(id, csv, with_passwords))
        }
        RouteId::GetPreferences => ok(&pg.preferences_view(now).await?),
        RouteId::PutPreferences => {
            let prefs: Preferences = json_body(body, content_type, max).await?;
            pg.set_preferences(prefs, by, now).await?;
            ok(&pg.preferences_view(now).await?)
        }
        RouteId::ListRequests => ok(&pg.list_requests(&request_query(query)?, now).await?),
        RouteId::ApproveRequest => {
            let vetted = if_match(&parts.headers);
            ok(&pg.approve(id, vetted.as_deref(), now, by).await?)
        }
        RouteId::RejectRequest => {
            let reject: RejectBody = json_body(body, content_type, max).await?;
            let vetted = if_match(&parts.headers);
            ok(&pg
                .reject(id, vetted.as_deref(), reject.reason, now, by)
                .await?)
        }
        RouteId::ListAudit => {
            let (after, limit) = audit_query(query)?;
            audit_reply(&pg.audit_entries(after, limit + 1).await?, limit)
        }
        RouteId::Verify => {
            let req: VerifyRequest = json_body(body, content_type, max).await?;
            ok(&pg.verify(&req, now)?)
        }
        RouteId::Redeem => {
            let req: RedeemRequest = json_body(body, content_type, max).await?;
            let answer = pg.redeem_from(&req, address, now).await?;
            Ok(reply_json(StatusCode::ACCEPTED, &answer))
        }
        RouteId::Poll => ok(&pg.poll(id, poll_token(&parts.headers)?, now).await?),
        RouteId::SignIn => ok(&pg.sign_in(id, poll_token(&parts.headers)?, now).await?),
        RouteId::ManualSignIn => {
            let req: ManualSignInRequest = json_body(body, content_type, max).await?;
            ok(&pg.manual_sign_in(&req, address, now).await?)
        }
        RouteId::Healthz => healthz(pg),
        RouteId::Metrics => metrics(app, pg, admin(app, &parts.headers)).await,
        RouteId::OpenApi => Ok(reply_bytes(
            StatusCode::OK,
            "application/json",
            OPENAPI_JSON,
        )),
    }
}

fn admin(app: &App, headers: &http::HeaderMap) -> bool {
    super::router::admin_token(app, headers).is_some()
}

/// Healthy while the replica reaches its database (its listening connection, not the pool:
/// a pool exhausted by slow statements does not make the replica unready).
fn healthz(pg: &PgCore) -> Result<Reply, ApiError> {
    if !pg.reaches_database() {
        return Err(ApiError::new(
            ErrorCode::StorageUnavailable,
            format!(
                "the database {} cannot be reached: this replica refuses what needs it, and \
                 connects again every second",
                pg.store().target()
            ),
        ));
    }
    ok(&Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// `/metrics`: the counters for anyone, the accounts' counts for admins (walked at most every
/// few seconds, shared by the scrapes between).
async fn metrics(app: &App, pg: &PgCore, admin: bool) -> Result<Reply, ApiError> {
    let sensitive = match admin {
        true => {
            let stats = app.stats_of(pg).await?;
            let hours = pg.preferences().await?.otp_validity_hours;
            let bound = pg.guessing_bound(stats.live_otps, hours);
            Some((stats, bound))
        }
        false => None,
    };
    let mut text = app.metrics.render(
        sensitive.as_ref().map(|(s, b)| (s, b)),
        pg.throttle_counts(),
        None,
        &app.connections,
    );
    text.push_str(&format!(
        "# HELP otpfleet_db_retries_total Transactions run again after a deadlock or a \
         serialization failure.\n# TYPE otpfleet_db_retries_total counter\n\
         otpfleet_db_retries_total {}\n",
        pg.store().retries()
    ));
    Ok(reply_bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        text,
    ))
}
