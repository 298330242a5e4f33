//! Replicas of the server on one PostgreSQL database, over real HTTP (issue 30): one state
//! whichever replica a request reaches, a poll that hears of a decision made on another
//! replica, consoles racing on one OTP through three replicas with one winner each round,
//! and a database that goes away and comes back (503 `storage_unavailable` meanwhile,
//! recovery by itself, health apart from a pool held by slow statements).
//!
//! They need a PostgreSQL, as `pg.rs` does (`helpers::Db` says how, and skips without one).

use crate::helpers::*;
use http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Waits (a real wait: word of a change crosses the database) until `check` holds, at most 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1_000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_serve_one_state_and_a_poll_hears_a_decision_made_elsewhere() {
    let Some(db) = Db::new("replicas").await else {
        return;
    };
    let r = TestApp::replicas(&db, 3, 4).await;
    // An import on one, its batch on another, the export on the third.
    let ids = r[0].import_rooms(2).await;
    let batch = r[1].generate_otps(&ids).await;
    let otp = batch["generated"][0]["otp"].as_str().unwrap().to_owned();
    let batch_id = batch["batch_id"].as_str().unwrap();
    let export = r[2]
        .admin(
            Method::GET,
            &format!("/v1/otp-batches/{batch_id}/export?include_passwords=true"),
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(export.text.contains(&otp), "{}", export.text);
    let password = export.text.lines().nth(1).unwrap().rsplit(',').next();
    let password = password.unwrap().to_owned();

    // Redeemed on one replica, polled on another (which caches it), decided on the third.
    let token = r[0].verification_token("REPLICA1").await;
    let (request, poll_token) = request_of(&r[0].redeem(&otp, &token).await);
    r[0].clock.advance_ms(6_000);
    let polled = r[1].poll(&request, &poll_token).await;
    assert_eq!(
        polled.body["status"], "awaiting_approval",
        "{}",
        polled.text
    );
    let listed = r[2].admin(Method::GET, "/v1/requests", None).await;
    let tag = listed.body["requests"][0]["etag"].as_str().unwrap();
    let approved = r[2]
        .send_with(
            Method::POST,
            &format!("/v1/requests/{request}/approve"),
            &[("if-match", tag)],
            Some(TOKEN),
            None,
            "",
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    // The replica that cached `awaiting_approval` hears of the approval.
    eventually("the poll on another replica shows the approval", || async {
        r[0].clock.advance_ms(6_000);
        r[1].poll(&request, &poll_token).await.body["status"] == "approved"
    })
    .await;

    // The credentials once, whichever replica is asked.
    let first = r[0].sign_in(&request, &poll_token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["password"], password.as_str());
    let again = r[1].sign_in(&request, &poll_token).await;
    assert_eq!(
        again.error_code(),
        "credentials_already_issued",
        "{}",
        again.text
    );
    let detail = r[2].account(&ids[0]).await;
    assert_eq!(detail["provisioning"], "signed_in", "{detail}");

    // The audit log: every change once, linked by whichever replica is the chainer, and no
    // secret in it.
    let expected = [
        "account_imported",
        "account_imported",
        "otp_generated",
        "otp_generated",
        "batch_created",
        "batch_exported",
        "otp_redeemed",
        "request_approved",
        "credentials_handed_over",
    ];
    eventually("the audit log holds every change", || async {
        let log = r[1].admin(Method::GET, "/v1/audit?limit=100", None).await;
        log.body["entries"].as_array().map_or(0, Vec::len) == expected.len()
    })
    .await;
    let log = r[2].admin(Method::GET, "/v1/audit?limit=100", None).await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, expected, "{}", log.text);
    assert!(!log.text.contains(&otp) && !log.text.contains(&password));
    // What the accounts hold, for admins, from the database; the retries counted.
    let metrics = r[0].admin(Method::GET, "/metrics", None).await.text;
    for line in [
        "otpfleet_accounts{provisioning=\"signed_in\"} 1",
        "otpfleet_live_otps 1",
        "otpfleet_db_retries_total 0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    db.drop_schema().await;
}

/// Sends `n` requests at once (`send(i)` sends the `i`th); answers the answers.
async fn at_once<F, Fut>(n: usize, send: F) -> Vec<Answer>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    futures::future::join_all((0..n).map(send)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consoles_racing_through_three_replicas_have_one_winner_each_round() {
    const CONSOLES: usize = 64;
    const DECIDERS: usize = 16;
    const ROUNDS: usize = 20;
    let Some(db) = Db::new("http_race").await else {
        return;
    };
    let r = Arc::new(TestApp::replicas(&db, 3, 24).await);
    let mut tokens = Vec::with_capacity(CONSOLES);
    for c in 0..CONSOLES {
        tokens.push(r[c % 3].verification_token(&format!("RACER{c}")).await);
    }
    for round in 0..ROUNDS {
        let (_, otp) = r[round % 3].one_otp().await;
        let redeemed = at_once(CONSOLES, |c| r[c % 3].redeem(&otp, &tokens[c])).await;
        let won: Vec<&Answer> = redeemed
            .iter()
            .filter(|a| a.status == StatusCode::ACCEPTED)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {} redemptions won", won.len());
        for lost in redeemed.iter().filter(|a| a.status != StatusCode::ACCEPTED) {
            assert_eq!(lost.error_code(), "otp_already_used", "{}", lost.text);
        }
        let (request, poll_token) = request_of(won[0]);
        let path = format!("/v1/requests/{request}/approve");
        let decided = at_once(DECIDERS, |c| {
            r[c % 3].send(Method::POST, &path, Some(TOKEN), None, "")
        })
        .await;
        let approvals = decided
            .iter()
            .filter(|a| a.status == StatusCode::OK)
            .count();
        assert_eq!(approvals, 1, "round {round}: {approvals} approvals");
        let signed = at_once(DECIDERS, |c| r[c % 3].sign_in(&request, &poll_token)).await;
        let handed = signed.iter().filter(|a| a.status == StatusCode::OK).count();
        assert_eq!(
            handed, 1,
            "round {round}: credentials handed {handed} times"
        );
        for refused in signed.iter().filter(|a| a.status != StatusCode::OK) {
            assert_eq!(refused.error_code(), "credentials_already_issued");
        }
    }
    db.drop_schema().await;
}

/// A TCP hop between a replica and the database that can be cut (every connection through
/// it closed, new ones refused) and restored: the database going away and coming back.
struct Hop {
    addr: std::net::SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Hop {
    async fn to(database: &str) -> Hop {
        let config: tokio_postgres::Config = database.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("a TCP database, not {other:?}"),
        };
        let target = format!("{host}:{}", config.get_ports()[0]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (c, o) = (Arc::clone(&cut), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                o.lock().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Hop { addr, cut, open }
    }

    /// `url` with its host and port replaced by this hop's.
    fn url(&self, url: &str) -> String {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let (rest, _) = url.split_once('@').unwrap();
        let port = config.get_ports()[0];
        let tail = url.split_once(&format!(":{port}")).unwrap().1;
        format!("{rest}@{}{tail}", self.addr)
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for open in self.open.lock().drain(..) {
            open.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_503_meanwhile_and_the_replica_recovers_by_itself() {
    let Some(db) = Db::new("away").await else {
        return;
    };
    // The schema is made directly; the replica reaches the database through the hop.
    drop(TestApp::replicas(&db, 1, 1).await);
    let hop = Hop::to(&db.base).await;
    let clock = otpfleet_server::ManualClock::new(START_MS);
    let app = TestApp::replica_at(&hop.url(&db.url), 2, &clock).await;
    let (_, otp) = app.one_otp().await;
    let health = app.send(Method::GET, "/healthz", None, None, "").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);

    hop.cut();
    eventually("/healthz fails while the database is away", || async {
        let health = app.send(Method::GET, "/healthz", None, None, "").await;
        health.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let health = app.send(Method::GET, "/healthz", None, None, "").await;
    assert_eq!(health.error_code(), "storage_unavailable");
    assert!(
        health.text.contains("otpfleet@"),
        "names it: {}",
        health.text
    );
    assert!(
        !health.text.contains("otpfleet-test"),
        "no password: {}",
        health.text
    );
    let token = app.verification_token("AWAY1").await;
    let refused = app.redeem(&otp, &token).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text
    );
    assert_eq!(refused.error_code(), "storage_unavailable");
    assert!(!refused.text.contains("otpfleet-test"), "{}", refused.text);

    hop.restore();
    eventually(
        "/healthz answers again once the database is back",
        || async {
            let health = app.send(Method::GET, "/healthz", None, None, "").await;
            health.status == StatusCode::OK
        },
    )
    .await;
    // Nothing was kept of the refused redemption (its statement never reached the database):
    // the OTP redeems now; sent again by the same console it is the same request, and
    // another console is refused.
    eventually("the redemption goes through", || async {
        app.redeem(&otp, &token).await.status == StatusCode::ACCEPTED
    })
    .await;
    let first = request_of(&app.redeem(&otp, &token).await);
    assert_eq!(request_of(&app.redeem(&otp, &token).await), first);
    let other = app.verification_token("AWAY2").await;
    assert_eq!(
        app.redeem(&otp, &other).await.error_code(),
        "otp_already_used"
    );
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_held_by_slow_statements_leaves_the_health_check_up() {
    let Some(db) = Db::new("held").await else {
        return;
    };
    let r = TestApp::replicas(&db, 1, 2).await;
    let app = &r[0];
    let (_, otp) = app.one_otp().await;
    let mut tokens = Vec::new();
    for c in 0..4 {
        tokens.push(app.verification_token(&format!("HELD{c}")).await);
    }
    // Another client holds the OTPs' table: every redemption waits on it, and two of them
    // hold the replica's whole pool.
    let (holder, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute("BEGIN; LOCK TABLE otps IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let held: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (addr, otp) = (app.addr, otp.clone());
            tokio::spawn(async move { raw_redeem(addr, &otp, &token).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let health = app.send(Method::GET, "/healthz", None, None, "").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the health check waited {:?} for the pool",
        started.elapsed()
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    let mut statuses = Vec::new();
    for h in held {
        statuses.push(h.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [202, 409, 409, 409],
        "one redemption once the table is free"
    );
    db.drop_schema().await;
}

/// A redemption over a connection of its own (the test app's client is not `Send`-shared).
async fn raw_redeem(addr: std::net::SocketAddr, otp: &str, token: &str) -> u16 {
    let body = json!({"otp": otp, "verification_token": token}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/console/redeem HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer[9..12].parse().unwrap()
}
