//! A server on `127.0.0.1:0` with a manual clock, and a client that reads like the domain.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use otpfleet_server::{App, Catalogue, ManualClock, ServerConfig, Storage, assemble};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// 2026-11-21T08:00:00Z.
pub const START_MS: u64 = 1_795_248_000_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const TOKEN: &str = "test-admin-token";

pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub app: Arc<App>,
    client: Client<HttpConnector, Full<Bytes>>,
    _shutdown: oneshot::Sender<()>,
}

/// An answer: status and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub headers: http::HeaderMap,
}

impl Answer {
    pub fn error_code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(ServerConfig::default()).await
    }

    /// A server with `config`: in memory, or a replica on PostgreSQL (a schema of its own)
    /// when `OTPFLEET_TEST_STORE=postgres`, so the same suites run on either store.
    pub async fn spawn_with(config: ServerConfig) -> TestApp {
        let clock = ManualClock::new(START_MS);
        if on_postgres() {
            let app = postgres_app(config, &clock).await;
            return TestApp::start(app, clock).await;
        }
        let app = assemble(
            config,
            Catalogue::builtin(),
            &Storage::InMemory,
            Arc::new(clock.clone()),
            &[(TOKEN, "token-file")],
        )
        .expect("an in-memory server assembles")
        .app;
        TestApp::start(app, clock).await
    }

    /// A durable server on `dir` (default settings).
    pub async fn spawn_durable(dir: &std::path::Path) -> TestApp {
        let clock = ManualClock::new(START_MS);
        let app = assemble(
            ServerConfig::default(),
            Catalogue::builtin(),
            &Storage::Durable(dir.to_path_buf()),
            Arc::new(clock.clone()),
            &[(TOKEN, "token-file")],
        )
        .expect("the data directory opens")
        .app;
        TestApp::start(app, clock).await
    }

    /// Stops the server and waits until its journal has closed (the directory can be opened
    /// again at once).
    pub async fn stop(self) {
        let journal = self.app.served().journal.clone();
        drop(self);
        if let Some(journal) = journal {
            // The server task lets go of the app once it has stopped; then the journal closes.
            while Arc::strong_count(&journal) > 1 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }

    async fn start(app: App, clock: ManualClock) -> TestApp {
        let app = Arc::new(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(otpfleet_server::serve(listener, Arc::clone(&app), async {
            let _ = rx.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        TestApp {
            addr,
            clock,
            app,
            client,
            _shutdown: tx,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Answer {
        self.send_with(method, path, &[], bearer, content_type, body)
            .await
    }

    /// [`TestApp::send`] with extra `headers`.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        bearer: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body.into())).expect("request");
        let res = self.client.request(req).await.expect("server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            text,
            headers,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let ct = (!bytes.is_empty()).then_some("application/json");
        self.send(method, path, Some(TOKEN), ct, bytes).await
    }

    pub async fn console(&self, path: &str, body: Value) -> Answer {
        self.send(
            Method::POST,
            path,
            None,
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    /// Imports pro, ready accounts `room-N@contoso.com`; answers their ids.
    pub async fn import_rooms(&self, n: usize) -> Vec<String> {
        let rows: Vec<Value> = (0..n)
            .map(|i| {
                json!({"upn": format!("room-{i}@contoso.com"), "display_name": format!("Room {i}"),
                       "license": "pro", "readiness": "no_action_needed"})
            })
            .collect();
        self.import(Value::Array(rows)).await
    }

    pub async fn import(&self, rows: Value) -> Vec<String> {
        let a = self.admin(Method::POST, "/v1/accounts", Some(rows)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["account_id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Generates OTPs (auto-generated passwords); answers the batch answer.
    pub async fn generate_otps(&self, ids: &[String]) -> Value {
        let a = self
            .admin(
                Method::POST,
                "/v1/otp-batches",
                Some(json!({"account_ids": ids, "password_mode": "auto_generate"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.body
    }

    /// One OTP for a fresh account.
    pub async fn one_otp(&self) -> (String, String) {
        let ids = self.import_rooms(1).await;
        let batch = self.generate_otps(&ids).await;
        let otp = batch["generated"][0]["otp"]
            .as_str()
            .expect("otp")
            .to_owned();
        (ids[0].clone(), otp)
    }

    pub async fn verify(&self, serial: &str, hdmi_ingest: bool) -> Answer {
        self.console(
            "/v1/console/verify",
            json!({"make": "Logitech", "model": "Tap", "serial": serial, "hdmi_ingest": hdmi_ingest}),
        )
        .await
    }

    pub async fn verification_token(&self, serial: &str) -> String {
        let a = self.verify(serial, true).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["verification_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    pub async fn redeem(&self, otp: &str, verification_token: &str) -> Answer {
        self.console(
            "/v1/console/redeem",
            json!({"otp": otp, "verification_token": verification_token}),
        )
        .await
    }

    pub async fn poll(&self, request_id: &str, poll_token: &str) -> Answer {
        let path = format!("/v1/console/requests/{request_id}");
        self.send(Method::GET, &path, Some(poll_token), None, "")
            .await
    }

    pub async fn sign_in(&self, request_id: &str, poll_token: &str) -> Answer {
        let path = format!("/v1/console/requests/{request_id}/sign-in");
        self.send(Method::POST, &path, Some(poll_token), None, "")
            .await
    }

    pub async fn account(&self, id: &str) -> Value {
        let a = self
            .admin(Method::GET, &format!("/v1/accounts/{id}"), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body
    }

    pub async fn set_preferences(&self, validity_hours: u32, auto_approve: bool) -> Answer {
        self.admin(
            Method::PUT,
            "/v1/preferences",
            Some(json!({"otp_validity_hours": validity_hours, "auto_approve": auto_approve})),
        )
        .await
    }

    pub fn advance_hours(&self, hours: u64) {
        self.clock.advance_ms(hours * HOUR_MS);
    }
}

/// A redeemed OTP: (request id, poll token).
pub fn request_of(redeemed: &Answer) -> (String, String) {
    assert_eq!(redeemed.status, StatusCode::ACCEPTED, "{}", redeemed.text);
    (
        redeemed.body["request_id"].as_str().expect("id").to_owned(),
        redeemed.body["poll_token"]
            .as_str()
            .expect("token")
            .to_owned(),
    )
}

/// A schema of this test's own in the test database, or `None` (and why, printed) when no
/// PostgreSQL is configured.
pub struct Db {
    pub base: String,
    pub url: String,
    pub schema: String,
}

impl Db {
    pub async fn new(test: &str) -> Option<Db> {
        let Ok(base) = std::env::var("OTPFLEET_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("OTPFLEET_REQUIRE_PG").is_err(),
                "OTPFLEET_REQUIRE_PG is set but OTPFLEET_TEST_DATABASE_URL is not: start one \
                 with `eval \"$(scripts/pg-local start)\"`"
            );
            // Past libtest's capture of `eprintln!`, where a person running the tests sees it.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED: pg::{test}: no PostgreSQL (set OTPFLEET_TEST_DATABASE_URL, or run \
                 `eval \"$(scripts/pg-local start)\"`)"
            );
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            test
        );
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(Db { base, url, schema })
    }

    pub async fn drop_schema(self) {
        let (client, connection) = tokio_postgres::connect(&self.base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let sql = format!("DROP SCHEMA {} CASCADE", self.schema);
        client.batch_execute(&sql).await.unwrap();
    }
}

/// Whether the suites run on PostgreSQL (`OTPFLEET_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("OTPFLEET_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// A replica on a migrated schema of its own, with the test clock and admin token.
async fn postgres_app(config: ServerConfig, clock: &ManualClock) -> App {
    assert!(
        std::env::var("OTPFLEET_TEST_DATABASE_URL").is_ok(),
        "OTPFLEET_TEST_STORE=postgres needs OTPFLEET_TEST_DATABASE_URL: start one with \
         `eval \"$(scripts/pg-local start)\"`"
    );
    let db = Db::new("suite").await.expect("a test database");
    replica_app(&db.url, 8, config, clock, true).await
}

/// A replica on the database at `url` with at most `connections` to it (migrating it first
/// with `migrate`), with the test clock and admin token.
async fn replica_app(
    url: &str,
    connections: usize,
    config: ServerConfig,
    clock: &ManualClock,
    migrate: bool,
) -> App {
    let store = otpfleet_server::pg::PgStore::connect(url, connections)
        .await
        .expect("the test database answers");
    if migrate {
        store.migrate().await.expect("the schema migrates");
    }
    let pg = otpfleet_server::pg::PgCore::open(store, config, Catalogue::builtin())
        .await
        .expect("the replica opens");
    let mut tokens = otpfleet_server::http::AdminTokens::default();
    tokens.add(TOKEN, "token-file");
    App::over_postgres(pg, Arc::new(clock.clone()), tokens)
}

impl TestApp {
    /// `n` replicas on `db` (migrated by the first), sharing one clock, each with a pool of
    /// `connections`.
    pub async fn replicas(db: &Db, n: usize, connections: usize) -> Vec<TestApp> {
        let clock = ManualClock::new(START_MS);
        let mut all = Vec::with_capacity(n);
        for i in 0..n {
            let app = replica_app(
                &db.url,
                connections,
                ServerConfig::default(),
                &clock,
                i == 0,
            );
            all.push(TestApp::start(app.await, clock.clone()).await);
        }
        all
    }

    /// One replica on the database at `url` (already migrated), on `clock`.
    pub async fn replica_at(url: &str, connections: usize, clock: &ManualClock) -> TestApp {
        let app = replica_app(url, connections, ServerConfig::default(), clock, false).await;
        TestApp::start(app, clock.clone()).await
    }
}
