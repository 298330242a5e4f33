//! What the wire showed: every change the server acknowledged and every state it showed, read
//! off the requests and answers as they pass (as Jepsen reads a history), and the check of a
//! restarted server against it.

use otpfleet_client::Answer;
use otpfleet_protocol::RouteId;
use otpfleet_protocol::{
    AccountInput, BatchCreated, ErrorCode, ImportResult, ManualSignInRequest, PollResponse,
    Provisioning, RedeemRequest, RedeemResponse, RequestPage, RequestStatus,
};
use otpfleet_server::Core;
use otpfleet_server::domain::accounts::AccountQuery;
use otpfleet_server::domain::requests::RequestQuery;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the server acknowledged and showed, by kind; each a promise after any crash.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Accounts whose import was acknowledged, and whether an OTP of theirs was.
    accounts: BTreeMap<String, bool>,
    /// The account of every OTP handed out, and of every upn imported.
    otp_account: HashMap<String, String>,
    upn_account: HashMap<String, String>,
    /// Accounts signed in manually (which withdraws their OTP).
    manual: BTreeSet<String>,
    /// Upns of imports refused (a repeated upn): never there.
    refused: BTreeSet<String>,
    /// Acknowledged redemptions: request id, and its account.
    redeemed: BTreeMap<String, String>,
    approved: BTreeSet<String>,
    rejected: BTreeSet<String>,
    handed: BTreeSet<String>,
    /// Requests a poll showed approved (or signed in): never back.
    shown_approved: BTreeSet<String>,
    /// Request ids a listing showed, with the console's serial: an id names that console.
    shown_serial: BTreeMap<String, String>,
    /// Changes acknowledged on the wire.
    pub(super) acknowledged: u64,
}

/// The request id in a path `/v1/requests/{id}/approve` or `/v1/console/requests/{id}/...`.
fn request_in(path: &str) -> Option<String> {
    let rest = path.split("requests/").nth(1)?;
    let id = rest.split(['/', '?']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

impl Ledger {
    /// Reads one exchange: what `route` at `path` with `body` was answered.
    pub(super) fn record(&mut self, route: Option<RouteId>, path: &str, body: &[u8], a: &Answer) {
        if !a.ok() {
            // Refused: for a repeated upn, or because the journal could not keep it (a refusal
            // is an answer: the change must not come back with a restart).
            let refused = matches!(
                a.error(),
                Some(ErrorCode::RepeatedUpn | ErrorCode::StorageUnavailable)
            );
            if route == Some(RouteId::ImportAccounts) && refused {
                let rows: Vec<AccountInput> = serde_json::from_slice(body).unwrap_or_default();
                self.refused.extend(rows.into_iter().map(|r| r.upn));
            }
            return;
        }
        let changed = matches!(
            route,
            Some(
                RouteId::ImportAccounts
                    | RouteId::CreateBatch
                    | RouteId::Redeem
                    | RouteId::ApproveRequest
                    | RouteId::RejectRequest
                    | RouteId::SignIn
                    | RouteId::ManualSignIn
            )
        );
        self.acknowledged += u64::from(changed);
        match route {
            Some(RouteId::ImportAccounts) => {
                for line in a
                    .parse::<ImportResult>()
                    .into_iter()
                    .flat_map(|r| r.results)
                {
                    self.accounts.entry(line.account_id.clone()).or_default();
                    self.upn_account.insert(line.upn, line.account_id);
                }
            }
            Some(RouteId::CreateBatch) => {
                for issued in a
                    .parse::<BatchCreated>()
                    .into_iter()
                    .flat_map(|b| b.generated)
                {
                    self.accounts.insert(issued.account_id.clone(), true);
                    self.otp_account.insert(issued.otp, issued.account_id);
                }
            }
            Some(RouteId::Redeem) => self.redeemed_by(body, a),
            Some(RouteId::ApproveRequest) => self.approved.extend(request_in(path)),
            Some(RouteId::RejectRequest) => self.rejected.extend(request_in(path)),
            Some(RouteId::SignIn) => self.handed.extend(request_in(path)),
            Some(RouteId::ManualSignIn) => {
                let asked = serde_json::from_slice::<ManualSignInRequest>(body).ok();
                let account = asked.and_then(|m| self.upn_account.get(&m.email).cloned());
                self.manual.extend(account);
            }
            Some(RouteId::Poll) => {
                let shown = a.parse::<PollResponse>().map(|p| p.status);
                if matches!(
                    shown,
                    Some(RequestStatus::Approved | RequestStatus::SignedIn)
                ) {
                    self.shown_approved.extend(request_in(path));
                }
            }
            Some(RouteId::ListRequests) => {
                for r in a
                    .parse::<RequestPage>()
                    .into_iter()
                    .flat_map(|p| p.requests)
                {
                    self.shown_serial.insert(r.id, r.device.serial);
                }
            }
            _ => {}
        }
    }

    fn redeemed_by(&mut self, body: &[u8], a: &Answer) {
        let (Ok(asked), Some(got)) = (
            serde_json::from_slice::<RedeemRequest>(body),
            a.parse::<RedeemResponse>(),
        ) else {
            return;
        };
        if let Some(account) = self.otp_account.get(asked.otp.trim()) {
            self.redeemed.insert(got.request_id, account.clone());
        }
    }

    /// Every acknowledged change is there, no refused import is, and nothing shown is undone
    /// (a request id names the console it was shown for; a request shown approved stays so).
    pub(super) fn check(&self, core: &Core, now_ms: u64) -> Result<(), String> {
        for (id, with_otp) in &self.accounts {
            let detail = core
                .account_detail(id, now_ms)
                .map_err(|e| format!("acknowledged account {id} was lost: {}", e.message))?;
            let manual = self.manual.contains(id);
            if manual && detail.account.provisioning != Provisioning::SignedIn {
                return Err(format!(
                    "the acknowledged manual sign-in of account {id} was lost: it is {:?}",
                    detail.account.provisioning
                ));
            }
            // A manual sign-in withdraws the OTP; one whose answer was lost may have happened.
            let signed_in = detail.account.provisioning == Provisioning::SignedIn;
            if *with_otp && !signed_in && detail.otp.is_none() {
                return Err(format!("the acknowledged OTP of account {id} was lost"));
            }
        }
        for upn in &self.refused {
            let query = AccountQuery {
                search: Some(upn.clone()),
                limit: 10,
                ..AccountQuery::default()
            };
            let found = core.list_accounts(&query, now_ms).map_err(|e| e.message)?;
            if !found.accounts.is_empty() {
                return Err(format!("the refused import of {upn} was applied"));
            }
        }
        let now = requests_now(core, now_ms);
        for (id, account) in &self.redeemed {
            let Some((on, _, _)) = now.get(id) else {
                return Err(format!("the acknowledged redemption {id} was lost"));
            };
            if on != account {
                return Err(format!(
                    "{id} was acknowledged for {account} and is now on {on}"
                ));
            }
        }
        // Every request decided, handed over or shown approved, whether or not its redemption's
        // answer was kept (a console whose answer was lost still polls and signs in).
        let decided = [RequestStatus::Approved, RequestStatus::SignedIn];
        let promises: [(&BTreeSet<String>, &[RequestStatus], &str); 4] = [
            (&self.approved, &decided, "approved (acknowledged)"),
            (&self.shown_approved, &decided, "shown approved"),
            (
                &self.rejected,
                &[RequestStatus::Rejected],
                "rejected (acknowledged)",
            ),
            (
                &self.handed,
                &[RequestStatus::SignedIn],
                "handed its credentials",
            ),
        ];
        for (ids, allowed, what) in promises {
            for id in ids {
                match now.get(id) {
                    Some((_, _, status)) if allowed.contains(status) => {}
                    Some((_, _, status)) => {
                        return Err(format!("{id} was {what} and is now {status:?}"));
                    }
                    None => return Err(format!("{id} was {what} and is now unknown")),
                }
            }
        }
        for (id, serial) in &self.shown_serial {
            match now.get(id) {
                Some((_, now_serial, _)) if now_serial != serial => {
                    return Err(format!(
                        "request {id} was shown for console {serial} and now names console \
                         {now_serial}"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Every request the server knows now, by id: its account, its console's serial, its status.
fn requests_now(core: &Core, now_ms: u64) -> HashMap<String, (String, String, RequestStatus)> {
    let mut now = HashMap::new();
    for status in [
        RequestStatus::AwaitingApproval,
        RequestStatus::Approved,
        RequestStatus::SignedIn,
        RequestStatus::Rejected,
        RequestStatus::Expired,
    ] {
        let mut cursor = None;
        loop {
            let query = RequestQuery {
                status,
                limit: 1_000,
                cursor: cursor.take(),
            };
            let Ok(page) = core.list_requests(&query, now_ms) else {
                break;
            };
            for r in page.requests {
                now.insert(r.id, (r.account_id, r.device.serial, r.status));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    now
}
