//! Routing and dispatch: from an HTTP request to a domain call and back.

use super::auth::bearer;
use super::body::{Media, Reply, json, media, read, reply_bytes, reply_error, reply_json};
use super::{App, Served};
use crate::domain::accounts::{AccountQuery, parse_accounts_csv, parse_accounts_json};
use crate::domain::batches::BatchOutcome;
use crate::domain::requests::RequestQuery;
use crate::domain::{ApiError, Core};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Body;
use otpfleet_protocol::limits::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use otpfleet_protocol::{
    AuditPage, Auth, BatchRequest, ErrorCode, Health, ManualSignInRequest, OPENAPI_JSON,
    Preferences, Provisioning, ROUTES, Readiness, RedeemRequest, RejectBody, RequestStatus, Route,
    RouteId, VerifyRequest,
};
use std::collections::BTreeMap;

/// Answers one request. Never panics on input; every refusal is a contract error body. A
/// durable app needs [`App::recover`] running beside it (as `serve` runs it): a request whose
/// change its journal failed to keep is answered only once a recovery has removed the change.
pub async fn handle<B>(app: &App, req: Request<B>) -> Reply
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // HEAD is GET without the body (RFC 9110 section 9.3.2), on every GET route.
    let head = req.method() == Method::HEAD;
    let method = if head { &Method::GET } else { req.method() };
    let found = find_route(method, req.uri().path());
    let route_index = found.as_ref().ok().map(|(i, _, _)| *i);
    // One request is served from one state, even if a durable server replaces it meanwhile.
    // Held through arc-swap's guard, not a clone of the Arc: requests on different cores do not
    // write its reference count in turn.
    let guard = app.served.load();
    let served: &Served = &guard;
    let mut reply = match found {
        Ok((_, route, id)) if app.postgres.is_some() => {
            match super::replica::dispatch(app, route, id.as_deref(), req).await {
                Ok(reply) => reply,
                Err(e) => reply_error(e),
            }
        }
        Ok((_, route, id)) => {
            // Refused at the door (nothing of it applied) when the journal has failed already.
            let at_the_door = served.journal_failure().is_some();
            let reply = match dispatch(app, served, route, id.as_deref(), req).await {
                Ok(reply) => reply,
                Err(e) => reply_error(e),
            };
            match at_the_door {
                true => reply,
                false => kept(app, served, route, reply).await,
            }
        }
        Err((e, allow)) => {
            let mut reply = reply_error(e);
            if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
                reply.headers_mut().insert(header::ALLOW, allow);
            }
            reply
        }
    };
    app.metrics.count(route_index, reply.status().as_u16());
    if head {
        let length = http_body_util::BodyExt::collect(reply.body_mut())
            .await
            .map_or(0, |b| b.to_bytes().len());
        reply
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    reply
}

/// Nothing is shown before it is kept (durable servers): every answer waits until the journal
/// holds every change numbered by the time it was made, its own and any other request's. So a
/// change is acknowledged only once kept, and no answer (a poll, a listing, a refusal such as
/// "already used") shows a state that a crash could undo, or an id that a crash could hand to
/// something else: a poll once answered `approved` for an approval a crash then lost, and an
/// admin's listing showed `req_1` for one console before a crash and another's after. The
/// changes a read saw were numbered before it read them (each is numbered under the lock it is
/// made under), so the number read after the answer was made covers them. Health, metrics, the
/// audit log (committed entries only) and this document show nothing of the kind and never
/// wait. A refusal is shown state too: when the journal fails to keep the change, the write may
/// still have reached the disk (a sync that failed), and a crash would bring it back; so the
/// refusal waits until a recovery has removed it from the disk (`App::replaced_since`). A crash
/// before then leaves the request unanswered, which promises nothing.
async fn kept(app: &App, served: &Served, route: &Route, reply: Reply) -> Reply {
    let shows_no_state = matches!(
        route.id,
        RouteId::Healthz | RouteId::Metrics | RouteId::OpenApi | RouteId::ListAudit
    ) || served.core.planted() == Some(crate::simdisk::Defect::ShowBeforeKept);
    let (Some(journal), Some(seq), false) = (
        &served.journal,
        served.core.journal_appended(),
        shows_no_state,
    ) else {
        return reply;
    };
    let why = match journal.wait_durable(seq).await {
        Ok(()) => return reply,
        Err(crate::journal::JournalError::Write(why)) => why,
        Err(other) => other.to_string(),
    };
    if served.core.planted() != Some(crate::simdisk::Defect::RefuseBeforeKept) {
        app.replaced_since(served).await;
    }
    reply_error(storage_unavailable(&why))
}

/// The refusal of every request but health, metrics and this document while the journal
/// cannot be written: the state in memory may hold changes that were refused, until the
/// server has rebuilt it from the journal.
fn storage_unavailable(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StorageUnavailable,
        format!(
            "the server cannot write its journal ({why}); nothing of this request was kept. \
             Send it again once GET /healthz answers 200: the server recovers by itself when \
             its data directory can be written"
        ),
    )
}

/// The route for a method and path: 404 when no template matches, 405 when only the method
/// is wrong (with the methods the path allows, for the `Allow` header).
#[allow(clippy::type_complexity)]
fn find_route(
    method: &Method,
    path: &str,
) -> Result<(usize, &'static Route, Option<String>), (ApiError, Option<String>)> {
    let (candidates, id) = otpfleet_protocol::lookup(path).unwrap_or((&[], None));
    if let Some(&i) = candidates
        .iter()
        .find(|i| ROUTES[**i].method == method.as_str())
    {
        return Ok((i, &ROUTES[i], id.map(str::to_owned)));
    }
    let mut allowed: Vec<&str> = candidates.iter().map(|i| ROUTES[*i].method).collect();
    if allowed.is_empty() {
        let shown: String = path.chars().take(100).collect();
        return Err((
            ApiError::new(
                ErrorCode::RouteNotFound,
                format!("no route {shown}; GET /openapi.json lists them"),
            ),
            None,
        ));
    }
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    Err((
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed here; use {}", allowed.join(" or ")),
        ),
        Some(allowed.join(", ")),
    ))
}

async fn dispatch<B>(
    app: &App,
    served: &Served,
    route: &Route,
    id: Option<&str>,
    req: Request<B>,
) -> Result<Reply, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let by = caller(app, route, &parts.headers)?;
    let id = id.unwrap_or_default();
    let core = &served.core;
    let failure = served.journal_failure();
    if let (Some(why), false) = (
        &failure,
        matches!(
            route.id,
            RouteId::Healthz | RouteId::Metrics | RouteId::OpenApi
        ),
    ) {
        return Err(storage_unavailable(why));
    }
    let max = core.config().max_body_bytes;
    refuse_too_large(&parts.headers, max)?;
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let query = parts.uri.query();
    match route.id {
        RouteId::ImportAccounts => {
            let media = media(content_type, true)?;
            let bytes = read(body, max).await?;
            let rows = match media {
                Media::Json => parse_accounts_json(&bytes)?,
                Media::Csv => parse_accounts_csv(&bytes)?,
            };
            ok(&core.import_accounts(rows, by)?)
        }
        RouteId::ListAccounts => {
            let q = account_query(query)?;
            ok(&core.list_accounts(&q, app.now_ms())?)
        }
        RouteId::GetAccount => ok(&core.account_detail(id, app.now_ms())?),
        RouteId::CreateBatch => {
            let req: BatchRequest = json_body(body, content_type, max).await?;
            match core.create_batch(req, app.now_ms(), by)? {
                BatchOutcome::Review(review) => ok(&review),
                BatchOutcome::Created(created) => Ok(reply_json(StatusCode::CREATED, &created)),
            }
        }
        RouteId::ExportBatch => export(core, id, query, app.now_ms(), by),
        RouteId::GetPreferences => ok(&core.preferences_view(app.now_ms())),
        RouteId::PutPreferences => {
            let prefs: Preferences = json_body(body, content_type, max).await?;
            core.set_preferences(prefs, by)?;
            ok(&core.preferences_view(app.now_ms()))
        }
        RouteId::ListRequests => {
            let q = request_query(query)?;
            ok(&core.list_requests(&q, app.now_ms())?)
        }
        RouteId::ApproveRequest => {
            let vetted = if_match(&parts.headers);
            ok(&core.approve(id, vetted.as_deref(), app.now_ms(), by)?)
        }
        RouteId::RejectRequest => {
            let reject: RejectBody = json_body(body, content_type, max).await?;
            let vetted = if_match(&parts.headers);
            ok(&core.reject(id, vetted.as_deref(), reject.reason, app.now_ms(), by)?)
        }
        RouteId::ListAudit => audit_page(served, query),
        RouteId::Verify => {
            let req: VerifyRequest = json_body(body, content_type, max).await?;
            ok(&core.verify(&req, app.now_ms())?)
        }
        RouteId::Redeem => {
            let req: RedeemRequest = json_body(body, content_type, max).await?;
            let address = parts.extensions.get::<super::ClientAddr>().map(|c| c.0);
            let answer = core.redeem_from(&req, address, app.now_ms())?;
            Ok(reply_json(StatusCode::ACCEPTED, &answer))
        }
        RouteId::Poll => ok(&core.poll(id, poll_token(&parts.headers)?, app.now_ms())?),
        RouteId::SignIn => ok(&core.sign_in(id, poll_token(&parts.headers)?, app.now_ms())?),
        RouteId::ManualSignIn => {
            let req: ManualSignInRequest = json_body(body, content_type, max).await?;
            let address = parts.extensions.get::<super::ClientAddr>().map(|c| c.0);
            ok(&core.manual_sign_in(&req, address, app.now_ms())?)
        }
        RouteId::Healthz => match failure {
            Some(why) => Err(ApiError::new(
                ErrorCode::StorageUnavailable,
                format!(
                    "the server cannot write its journal ({why}): it refuses requests, and \
                     tries every second to open the journal anew and rebuild its state from it"
                ),
            )),
            None => ok(&Health {
                status: "ok".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            }),
        },
        RouteId::Metrics => {
            // What the accounts hold (states, live OTPs, the queue, the guessing bound) is for
            // admins only; the counters of requests, connections, throttling and the journal
            // are for anyone who can reach the server.
            let stats = admin_token(app, &parts.headers).map(|_| app.stats(core));
            let sensitive = stats
                .as_ref()
                .map(|s| (s, core.guessing_bound(s.live_otps)));
            let text = app.metrics.render(
                sensitive.as_ref().map(|(s, b)| (*s, b)),
                core.throttle_counts(),
                served.journal.as_ref().map(|j| j.stats()),
                &app.connections,
            );
            Ok(reply_bytes(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                text,
            ))
        }
        RouteId::OpenApi => Ok(reply_bytes(
            StatusCode::OK,
            "application/json",
            OPENAPI_JSON,
        )),
    }
}

pub(super) fn ok<T: serde::Serialize>(value: &T) -> Result<Reply, ApiError> {
    Ok(reply_json(StatusCode::OK, value))
}

/// Which admin token is calling an admin route (for the audit log); refused without one.
pub(super) fn caller<'a>(
    app: &'a App,
    route: &Route,
    headers: &HeaderMap,
) -> Result<Option<&'a str>, ApiError> {
    Ok(match route.auth {
        Auth::Admin => Some(admin_token(app, headers).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "this route needs Authorization: Bearer <admin token>",
            )
        })?),
        Auth::PollToken | Auth::None => None,
    })
}

/// A body its `Content-Length` says is larger than `max` is refused before it is read.
pub(super) fn refuse_too_large(headers: &HeaderMap, max: usize) -> Result<(), ApiError> {
    match content_length(headers) {
        Some(len) if len > max as u64 => Err(super::body::too_large(max)),
        _ => Ok(()),
    }
}

/// The name of the admin token the request bears, if it bears one.
pub(super) fn admin_token<'a>(app: &'a App, headers: &HeaderMap) -> Option<&'a str> {
    bearer(headers.get(header::AUTHORIZATION)).and_then(|t| app.admin_tokens.accepts(t))
}

pub(super) fn poll_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    bearer(headers.get(header::AUTHORIZATION)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "this route needs Authorization: Bearer <poll token> (from the redeem answer)",
        )
    })
}

/// The `If-Match` header lines, joined as one list (a line that is not text matches nothing).
pub(super) fn if_match(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub(super) async fn json_body<T, B>(
    body: B,
    content_type: Option<&HeaderValue>,
    max: usize,
) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    media(content_type, false)?;
    json(&read(body, max).await?)
}

fn export(
    core: &Core,
    id: &str,
    query: Option<&str>,
    now_ms: u64,
    by: Option<&str>,
) -> Result<Reply, ApiError> {
    let include_passwords = include_passwords(query)?;
    let csv = core.export_batch(id, include_passwords, now_ms, by)?;
    Ok(export_reply(id, csv, include_passwords))
}

/// The export's `include_passwords` parameter.
pub(super) fn include_passwords(query: Option<&str>) -> Result<bool, ApiError> {
    let params = query_params(query, &["include_passwords"])?;
    match params.get("include_passwords").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad_param("include_passwords", other, "true or false")),
    }
}

/// A batch export as the download it is.
pub(super) fn export_reply(id: &str, csv: String, include_passwords: bool) -> Reply {
    let mut reply = reply_bytes(StatusCode::OK, "text/csv; charset=utf-8", csv);
    let suffix = if include_passwords {
        "-with-passwords"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}{suffix}.csv\"")) {
        reply.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    reply
}

/// One page of the audit log, read from the journal (only committed entries).
fn audit_page(served: &Served, query: Option<&str>) -> Result<Reply, ApiError> {
    // The query is checked first, so a bad one is named whatever the server keeps.
    let (after, limit) = audit_query(query)?;
    let Some(journal) = &served.journal else {
        return Err(ApiError::new(
            ErrorCode::AuditUnavailable,
            "this server runs --in-memory and keeps no audit log; start it with --data-dir",
        ));
    };
    let entries = journal.page(after, limit + 1).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the audit log could not be read: {e}"),
        )
    })?;
    audit_reply(&entries, limit)
}

/// The audit page asked for: after which entry, and how many.
pub(super) fn audit_query(query: Option<&str>) -> Result<(u64, usize), ApiError> {
    let p = query_params(query, &["limit", "cursor"])?;
    let limit = limit(&p)?;
    // An empty cursor is the first page, as on every listing.
    let after = match p.get("cursor").map(String::as_str) {
        None | Some("") => 0,
        Some(c) => c
            .parse::<u64>()
            .map_err(|_| bad_param("cursor", c, "the next_cursor of the previous page"))?,
    };
    Ok((after, limit))
}

/// One audit page of up to `limit` of `entries` (one more was read to know whether there are).
pub(super) fn audit_reply(
    entries: &[crate::journal::Entry],
    limit: usize,
) -> Result<Reply, ApiError> {
    let more = entries.len() > limit;
    let entries: Vec<_> = entries
        .iter()
        .take(limit)
        .map(crate::audit::entry)
        .collect();
    let next_cursor = more
        .then(|| entries.last().map(|e| e.seq.to_string()))
        .flatten();
    ok(&AuditPage {
        entries,
        next_cursor,
    })
}

pub(super) fn account_query(query: Option<&str>) -> Result<AccountQuery, ApiError> {
    let mut p = query_params(
        query,
        &["readiness", "provisioning", "search", "limit", "cursor"],
    )?;
    Ok(AccountQuery {
        readiness: p
            .get("readiness")
            .map(|v| {
                Readiness::parse(v).ok_or_else(|| bad_param("readiness", v, &Readiness::expected()))
            })
            .transpose()?,
        provisioning: p
            .get("provisioning")
            .map(|v| {
                Provisioning::parse(v)
                    .ok_or_else(|| bad_param("provisioning", v, &Provisioning::expected()))
            })
            .transpose()?,
        search: p.remove("search").filter(|s| !s.is_empty()),
        limit: limit(&p)?,
        cursor: first_page_if_empty(p.remove("cursor")),
    })
}

pub(super) fn request_query(query: Option<&str>) -> Result<RequestQuery, ApiError> {
    let mut p = query_params(query, &["status", "limit", "cursor"])?;
    let status = match p.get("status") {
        None => RequestStatus::AwaitingApproval,
        Some(v) => RequestStatus::parse(v)
            .ok_or_else(|| bad_param("status", v, &RequestStatus::expected()))?,
    };
    Ok(RequestQuery {
        status,
        limit: limit(&p)?,
        cursor: first_page_if_empty(p.remove("cursor")),
    })
}

/// A listing's cursor: `cursor=` (empty) asks for the first page, as no cursor does.
fn first_page_if_empty(cursor: Option<String>) -> Option<String> {
    cursor.filter(|c| !c.is_empty())
}

fn limit(p: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    let Some(v) = p.get("limit") else {
        return Ok(DEFAULT_PAGE_LIMIT);
    };
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad_param(
            "limit",
            v,
            &format!("a number from 1 to {MAX_PAGE_LIMIT}"),
        )),
    }
}

/// The query parameters, refusing unknown and repeated ones so a typo is an error.
fn query_params(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut params = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !allowed.contains(&key.as_ref()) {
            let shown: String = key.chars().take(40).collect();
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "unknown query parameter {shown:?}; this route takes: {}",
                    allowed.join(", ")
                ),
            ));
        }
        if params.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("query parameter {key:?} is given twice"),
            ));
        }
    }
    Ok(params)
}

fn bad_param(name: &str, value: &str, expected: &str) -> ApiError {
    let shown: String = value.chars().take(40).collect();
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("{name}={shown:?} is not valid; expected {expected}"),
    )
}
