//! Lose nothing on a crash: a client drives generations, redemptions, approvals and hand-overs
//! against a `--data-dir` server that is killed with SIGKILL at random moments (25 times),
//! restarted on the same directory, and every answer the client had received is checked against
//! the recovered state.

use otpfleet_client::{ApiRequest, HttpTransport, Transport};
use otpfleet_protocol::{BatchCreated, ImportResult, RedeemResponse};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

const KILLS: usize = 25;
const TOKEN: &str = "crash-test-token";

/// What the client was told, and so what must survive.
#[derive(Debug, Default)]
struct Ledger {
    accounts: Vec<String>,
    /// OTPs generated and not (knowingly) redeemed: (account, otp).
    issued: Vec<(String, String)>,
    /// Acknowledged redemptions.
    redeemed: Vec<Redeemed>,
}

/// An acknowledged redemption and what was acknowledged since.
#[derive(Debug)]
struct Redeemed {
    otp: String,
    request: String,
    poll_token: String,
    /// The round whose server acknowledged the approval, or showed it approved.
    approved_in: Option<usize>,
    handed: bool,
    /// Nothing more to do with it: rejected or expired, as the server showed.
    settled: bool,
}

fn start(dir: &Path, token: &Path) -> (Child, String) {
    let (child, line) = crate::serve([
        "--poll-interval-s".as_ref(),
        "1".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--admin-token-file".as_ref(),
        token.as_os_str(),
    ]);
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    (child, url)
}

/// The test's random stream: `CRASH_SEED` when set (to replay a failure), else `default`.
fn seeded(default: u64) -> ChaCha8Rng {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("crash test seed {seed} (set CRASH_SEED to replay)");
    ChaCha8Rng::seed_from_u64(seed)
}

fn post(path: &str, body: serde_json::Value) -> ApiRequest {
    ApiRequest::post_json(path, &body).with_bearer(TOKEN)
}

/// One random step of `round`; records what was acknowledged.
async fn step(
    t: &HttpTransport,
    rng: &mut ChaCha8Rng,
    ledger: &mut Ledger,
    (n, round): (&mut u64, usize),
) {
    match rng.random_range(0..4) {
        0 => {
            *n += 1;
            let rows = json!([{"upn": format!("room-{n}-{}@crash.test", rng.random::<u32>()), "display_name": "R",
                               "license": "pro", "readiness": "no_action_needed"}]);
            let Ok(a) = t.send(post("/v1/accounts", rows)).await else {
                return;
            };
            let Ok(imported) = serde_json::from_slice::<ImportResult>(&a.body) else {
                return;
            };
            let id = imported.results[0].account_id.clone();
            ledger.accounts.push(id.clone());
            let Ok(b) = t
                .send(post(
                    "/v1/otp-batches",
                    json!({"account_ids": [id], "password_mode": "auto_generate"}),
                ))
                .await
            else {
                return;
            };
            if let Ok(batch) = serde_json::from_slice::<BatchCreated>(&b.body) {
                ledger.issued.push((id, batch.generated[0].otp.clone()));
            }
        }
        1 if !ledger.issued.is_empty() => {
            let (_, otp) = ledger
                .issued
                .swap_remove(rng.random_range(0..ledger.issued.len()));
            let verify = json!({"make": "Logitech", "model": "Tap", "serial": format!("C{}", rng.random::<u32>()), "hdmi_ingest": true});
            let Ok(v) = t
                .send(ApiRequest::post_json("/v1/console/verify", &verify))
                .await
            else {
                return;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&v.body) else {
                return;
            };
            let redeem = json!({"otp": otp, "verification_token": v["verification_token"]});
            let Ok(r) = t
                .send(ApiRequest::post_json("/v1/console/redeem", &redeem))
                .await
            else {
                return;
            };
            if let Ok(r) = serde_json::from_slice::<RedeemResponse>(&r.body) {
                ledger.redeemed.push(Redeemed {
                    otp,
                    request: r.request_id,
                    poll_token: r.poll_token,
                    approved_in: None,
                    handed: false,
                    settled: false,
                });
            }
        }
        2 => {
            let open = |r: &&mut Redeemed| r.approved_in.is_none() && !r.settled;
            if let Some(r) = ledger.redeemed.iter_mut().find(open) {
                let approve = post(&format!("/v1/requests/{}/approve", r.request), json!({}));
                match t.send(approve).await {
                    Ok(a) if a.status == 200 => r.approved_in = Some(round),
                    // The answer was lost (a kill) or the approval refused: find out what the
                    // server shows now, rather than approving the same request forever.
                    _ => learn(t, r, round).await,
                }
            }
        }
        _ => {
            let ready = |r: &&mut Redeemed| r.approved_in.is_some() && !r.handed;
            if let Some(r) = ledger.redeemed.iter_mut().find(ready) {
                let req = ApiRequest::post(format!("/v1/console/requests/{}/sign-in", r.request))
                    .with_bearer(&r.poll_token);
                match t.send(req).await {
                    Ok(a) if a.status == 200 => r.handed = true,
                    _ => learn(t, r, round).await,
                }
            }
        }
    }
}

/// What happened to `r` when an answer about it was lost or refused, as the console's poll
/// shows it now. A server shows only what it keeps, so a status shown is one the next round must
/// find: shown approved counts as acknowledged in `round`, shown signed in as handed over (the
/// credentials went to whoever got the lost answer). No answer (a kill, a poll too soon):
/// nothing learnt, the step is tried again.
async fn learn(t: &HttpTransport, r: &mut Redeemed, round: usize) {
    let poll =
        ApiRequest::get(format!("/v1/console/requests/{}", r.request)).with_bearer(&r.poll_token);
    let Ok(a) = t.send(poll).await else { return };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&a.body) else {
        return;
    };
    match body["status"].as_str() {
        Some("approved") => {
            r.approved_in.get_or_insert(round);
        }
        Some("signed_in") => {
            r.approved_in.get_or_insert(round);
            r.handed = true;
        }
        Some("rejected" | "expired") => r.settled = true,
        _ => {}
    }
}

/// Everything acknowledged is there, and no OTP is usable twice; `Err` says what is not, and
/// names the request it concerns when it concerns one.
async fn check(
    t: &HttpTransport,
    ledger: &Ledger,
    round: usize,
) -> Result<(), (String, Option<String>)> {
    for id in &ledger.accounts {
        let a = t
            .send(ApiRequest::get(format!("/v1/accounts/{id}")).with_bearer(TOKEN))
            .await
            .expect("answers");
        if a.status != 200 {
            return Err((
                format!("round {round}: acknowledged account {id} was lost"),
                None,
            ));
        }
    }
    let verify =
        json!({"make": "Logitech", "model": "Tap", "serial": "CHECKER", "hdmi_ingest": true});
    let v = t
        .send(ApiRequest::post_json("/v1/console/verify", &verify))
        .await
        .expect("answers");
    let token =
        serde_json::from_slice::<serde_json::Value>(&v.body).expect("json")["verification_token"]
            .clone();
    let decided = approved_or_signed_in(t).await;
    for r in &ledger.redeemed {
        let lost = |what: String| Err((format!("round {round}: {what}"), Some(r.request.clone())));
        let again = t
            .send(ApiRequest::post_json(
                "/v1/console/redeem",
                &json!({"otp": r.otp, "verification_token": token}),
            ))
            .await
            .expect("answers");
        let body = String::from_utf8_lossy(&again.body);
        if !body.contains("otp_already_used") {
            return lost(format!("a redeemed OTP was usable again: {body}"));
        }
        if r.handed {
            let req = ApiRequest::post(format!("/v1/console/requests/{}/sign-in", r.request))
                .with_bearer(&r.poll_token);
            let a = t.send(req).await.expect("answers");
            if !String::from_utf8_lossy(&a.body).contains("credentials_already_issued") {
                return lost("credentials handed twice".into());
            }
        } else if let (Some(approved_in), false) = (r.approved_in, decided.contains(&r.request)) {
            // What the restarted server says of it, for whoever reads the failure.
            let mut seen = Vec::new();
            for status in ["awaiting_approval", "rejected", "expired"] {
                if listed(t, &[status]).await.contains(&r.request) {
                    seen.push(status);
                }
            }
            return lost(format!(
                "the approval of {} (acknowledged in round {approved_in}) was lost; the server \
                 lists it as {seen:?}",
                r.request
            ));
        }
    }
    Ok(())
}

/// Everything a failed check can say of a request: the audit log's entries naming it (is the
/// change in the journal, or did it never reach it?), where the data directory was kept, and
/// what the servers of the last two rounds printed.
async fn evidence(
    t: &HttpTransport,
    request: Option<&str>,
    data: &Path,
    stderr: &[String],
) -> String {
    let mut out = String::new();
    if let Some(request) = request {
        let mut cursor = String::new();
        loop {
            let page = get_all(t, &[format!("/v1/audit?limit=1000{cursor}")])
                .await
                .remove(0);
            for entry in page["entries"].as_array().into_iter().flatten() {
                if entry["request_id"] == request {
                    out.push_str(&format!("\naudit: {entry}"));
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        if out.is_empty() {
            out.push_str(&format!("\nthe audit log names {request} nowhere"));
        }
    }
    // Kept past the test, for `otpfleet audit verify` and a replay by hand.
    let kept = std::env::temp_dir().join(format!("otpfleet-crash-{}", std::process::id()));
    let copied = std::fs::create_dir_all(&kept).and_then(|()| {
        let db = otpfleet_server::journal::DB_FILE;
        std::fs::copy(data.join(db), kept.join(db)).map(|_| ())
    });
    out.push_str(&match copied {
        Ok(()) => format!("\nthe data directory is kept at {}", kept.display()),
        Err(e) => format!("\nthe data directory could not be kept: {e}"),
    });
    for (i, text) in stderr.iter().enumerate() {
        out.push_str(&format!(
            "\nserver stderr ({} of the last rounds):\n{text}",
            i + 1
        ));
    }
    out
}

/// The ids of every request approved or signed in.
async fn approved_or_signed_in(t: &HttpTransport) -> std::collections::HashSet<String> {
    listed(t, &["approved", "signed_in"]).await
}

/// The ids of every request with one of `statuses`, every page of each listing (a page holds
/// at most 1,000: a long run approves more).
async fn listed(t: &HttpTransport, statuses: &[&str]) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    for status in statuses {
        let mut cursor = String::new();
        loop {
            let path = format!("/v1/requests?status={status}&limit=1000{cursor}");
            let a = t
                .send(ApiRequest::get(path).with_bearer(TOKEN))
                .await
                .expect("answers");
            let page: otpfleet_protocol::RequestPage =
                serde_json::from_slice(&a.body).expect("a page of requests");
            ids.extend(page.requests.into_iter().map(|r| r.id));
            match page.next_cursor {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_and_no_otp_is_usable_twice() {
    let mut rng = seeded(20261121);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("write");
    let mut ledger = Ledger::default();
    let mut n = 0;
    // What the servers of the last two rounds printed (their stderr is read once they died).
    let mut stderr: Vec<String> = Vec::new();
    for round in 0..=KILLS {
        let (mut child, url) = start(&data, &token);
        let t =
            HttpTransport::new(&url, 4, Duration::from_secs(5)).expect("a loopback http:// URL");
        let printed = child.stderr.take().expect("stderr is piped");
        if let Err((what, request)) = check(&t, &ledger, round).await {
            let more = evidence(&t, request.as_deref(), &data, &stderr).await;
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}{more}\nserver stderr (this round):\n{}",
                read_all(printed)
            );
        }
        if round == KILLS {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        // Work for a random while, then SIGKILL mid-flight.
        let until = tokio::time::Instant::now() + Duration::from_millis(rng.random_range(50..400));
        while tokio::time::Instant::now() < until {
            step(&t, &mut rng, &mut ledger, (&mut n, round)).await;
        }
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped")
        });
        for _ in 0..20 {
            step(&t, &mut rng, &mut ledger, (&mut n, round)).await;
        }
        let status = killer.await.expect("killer");
        assert!(!status.success(), "the server was killed, not stopped");
        stderr.push(read_all(printed));
        if stderr.len() > 2 {
            stderr.remove(0);
        }
    }
    // Every restart above checked the audit chain (a server refuses a broken one); the offline
    // check agrees: no kill cut a record in half or broke a link.
    let verify = crate::otpfleet()
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .expect("the binary runs");
    assert!(
        verify.status.success() && String::from_utf8_lossy(&verify.stdout).contains("chain intact"),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        ledger.accounts.len() > 20 && ledger.redeemed.len() > 10,
        "the test did real work: {} accounts, {} redeemed",
        ledger.accounts.len(),
        ledger.redeemed.len()
    );
    // A lost answer no longer stalls the ledger: approvals and hand-overs go on round after
    // round (once, 41 of 45 runs stopped approving after the first lost approval).
    let rounds: std::collections::BTreeSet<usize> = ledger
        .redeemed
        .iter()
        .filter_map(|r| r.approved_in)
        .collect();
    let handed = ledger.redeemed.iter().filter(|r| r.handed).count();
    let approved = ledger
        .redeemed
        .iter()
        .filter(|r| r.approved_in.is_some())
        .count();
    eprintln!(
        "crash: {KILLS} kills; {} redeemed, {approved} approved (in {} of {} rounds), {handed} \
         handed over",
        ledger.redeemed.len(),
        rounds.len(),
        KILLS + 1
    );
    assert!(
        rounds.len() > KILLS / 2,
        "approvals went on in only {} of {} rounds",
        rounds.len(),
        KILLS + 1
    );
}

/// Everything a dead server wrote to a pipe.
fn read_all(mut pipe: impl std::io::Read) -> String {
    let mut text = String::new();
    let _ = pipe.read_to_string(&mut text);
    text
}

/// All GET answers of `paths`, as JSON.
async fn get_all(t: &HttpTransport, paths: &[String]) -> Vec<serde_json::Value> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let a = t
            .send(ApiRequest::get(path.clone()).with_bearer(TOKEN))
            .await
            .expect("answers");
        out.push(serde_json::from_slice(&a.body).expect("json"));
    }
    out
}

/// How many accounts' upn contains `text`.
async fn count_accounts(t: &HttpTransport, text: &str) -> usize {
    let (mut n, mut cursor) = (0, String::new());
    loop {
        let page = get_all(
            t,
            &[format!("/v1/accounts?search={text}&limit=1000{cursor}")],
        )
        .await
        .remove(0);
        n += page["accounts"].as_array().expect("accounts").len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return n,
        }
    }
}

/// SIGKILL in the middle of a large OTP batch and of a large import, at random moments: after a
/// restart each is there whole or not at all. No account holds an OTP of a batch the server does
/// not know, the batch's accounts all hold its OTPs or none does (so the OTPs handed out before
/// still work), and an import's rows are all there or none is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_killed_half_way_is_applied_whole_or_not_at_all() {
    const ROOMS: usize = 2_000;
    const IMPORT: usize = 20_000;
    let mut rng = seeded(20261130);
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, token) = (dir.path().join("data"), dir.path().join("token"));
    std::fs::write(&token, TOKEN).expect("write");
    let rooms: Vec<serde_json::Value> = (0..ROOMS)
        .map(|i| {
            json!({"upn": format!("room-{i}@whole.test"), "display_name": "R",
                        "license": "pro", "readiness": "no_action_needed"})
        })
        .collect();
    let (mut child, url) = start(&data, &token);
    let t = HttpTransport::new(&url, 4, Duration::from_secs(30)).expect("a loopback http:// URL");
    let imported: ImportResult = serde_json::from_slice(
        &t.send(post("/v1/accounts", json!(rooms)))
            .await
            .unwrap()
            .body,
    )
    .expect("imported");
    let ids: Vec<String> = imported
        .results
        .iter()
        .map(|r| r.account_id.clone())
        .collect();
    let batch_of_all = json!({"account_ids": ids, "password_mode": "auto_generate"});
    let first: BatchCreated = serde_json::from_slice(
        &t.send(post("/v1/otp-batches", batch_of_all.clone()))
            .await
            .unwrap()
            .body,
    )
    .expect("the first batch");
    let mut handed_out: Vec<String> = first.generated.iter().map(|g| g.otp.clone()).collect();
    let _ = child.kill();
    let _ = child.wait();
    let details: Vec<String> = ids.iter().map(|id| format!("/v1/accounts/{id}")).collect();
    for round in 0..6 {
        let (mut child, url) = start(&data, &token);
        let t =
            HttpTransport::new(&url, 4, Duration::from_secs(30)).expect("a loopback http:// URL");
        let request = if round % 2 == 0 {
            post("/v1/otp-batches", batch_of_all.clone())
        } else {
            let rows: Vec<serde_json::Value> = (0..IMPORT)
                .map(|i| {
                    json!({"upn": format!("imp{round}-{i}@whole.test"), "display_name": "R",
                                "license": "pro", "readiness": "no_action_needed"})
                })
                .collect();
            post("/v1/accounts", json!(rows))
        };
        let sender = tokio::spawn(async move { t.send(request).await });
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..250))).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        let answered = sender.await.expect("the sender ran");

        let (mut child, url) = start(&data, &token);
        let t =
            HttpTransport::new(&url, 4, Duration::from_secs(30)).expect("a loopback http:// URL");
        if round % 2 == 0 {
            let tabs = get_all(&t, &details).await;
            let batches: std::collections::BTreeSet<&str> = tabs
                .iter()
                .map(|d| d["otp"]["batch_id"].as_str().expect("an OTP tab"))
                .collect();
            assert_eq!(
                batches.len(),
                1,
                "round {round}: the batch was applied in part: {batches:?}"
            );
            let batch = batches.first().expect("one batch");
            let export = get_all(&t, &[format!("/v1/otp-batches/{batch}/export")]).await;
            assert_ne!(
                export[0]["error"], "batch_not_found",
                "round {round}: accounts hold OTPs of {batch}, a batch the server does not know"
            );
            if let Ok(answer) = &answered {
                if let Ok(created) = serde_json::from_slice::<BatchCreated>(&answer.body) {
                    handed_out = created.generated.iter().map(|g| g.otp.clone()).collect();
                }
            }
            if *batch == first.batch_id.as_str() || answered.is_ok() {
                // The OTPs handed out are the ones in force: one of them still redeems.
                let otp = handed_out.pop().expect("an OTP left");
                let verify = json!({"make": "Logitech", "model": "Tap", "serial": format!("W{round}"), "hdmi_ingest": true});
                let v: serde_json::Value = serde_json::from_slice(
                    &t.send(ApiRequest::post_json("/v1/console/verify", &verify))
                        .await
                        .unwrap()
                        .body,
                )
                .unwrap();
                let r = t
                    .send(ApiRequest::post_json(
                        "/v1/console/redeem",
                        &json!({"otp": otp, "verification_token": v["verification_token"]}),
                    ))
                    .await
                    .unwrap();
                assert_eq!(
                    r.status, 202,
                    "round {round}: a handed-out OTP stopped working"
                );
            } else {
                // The whole new batch survived the kill but its answer was lost: its OTPs are
                // unknown to this client, so the old ones rightly no longer work.
                handed_out.clear();
            }
        } else {
            let n = count_accounts(&t, &format!("imp{round}-")).await;
            assert!(
                n == 0 || n == IMPORT,
                "round {round}: {n} of {IMPORT} rows of a killed import were kept"
            );
            if answered.is_ok_and(|a| a.status == 200) {
                assert_eq!(n, IMPORT, "round {round}: an acknowledged import was lost");
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
