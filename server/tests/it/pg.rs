//! The PostgreSQL store (issue 30): versioned schema, errors that name the database and never
//! its password, and single use as the database's job: 64 consoles racing on one OTP through
//! three replicas (three pools), 100 rounds, one winner each round, for redemptions, decisions
//! and hand-overs. A store that reads then writes (a test double, not shipped) fails the same
//! check.
//!
//! They need a PostgreSQL: `OTPFLEET_TEST_DATABASE_URL` (`eval "$(scripts/pg-local start)"`
//! starts one and sets it). Without it they say so and pass, unless `OTPFLEET_REQUIRE_PG=1`
//! (CI sets it), where its absence fails them. Each test works in a schema of its own.

use otpfleet_protocol::{Device, ErrorCode, License, Readiness, RejectReason, RequestStatus};
use otpfleet_server::domain::accounts::upn_key;
use otpfleet_server::pg::{
    Lost, NewAccount, NewOtp, NewRequest, PgError, PgStore, SCHEMA_VERSION, Verdict,
};
use tokio_postgres::Client;

/// Consoles racing on one OTP, and rounds of the race.
const CONSOLES: usize = 64;
const ROUNDS: usize = 100;
/// Replicas, each a pool of its own (a server process has one).
const REPLICAS: usize = 3;

use crate::helpers::Db;

impl Db {
    async fn store(&self, connections: usize) -> PgStore {
        PgStore::connect(&self.url, connections).await.unwrap()
    }

    /// A migrated store for each of `REPLICAS` replicas.
    async fn replicas(&self) -> Vec<PgStore> {
        let first = self.store(CONSOLES / REPLICAS + 1).await;
        first.migrate().await.unwrap();
        let mut all = vec![first];
        for _ in 1..REPLICAS {
            all.push(self.store(CONSOLES / REPLICAS + 1).await);
        }
        all
    }
}

fn device(n: usize) -> Device {
    Device {
        make: "Contoso".into(),
        model: "Room Console 9".into(),
        serial: format!("SERIAL{n}"),
    }
}

/// Account `upn` with a fresh OTP (its key derived from the round): answers the account id and
/// the OTP's key.
async fn account_with_otp(s: &PgStore, upn: &str, round: usize) -> (u64, [u8; 32]) {
    let key = upn_key(upn);
    let id = s
        .upsert_account(
            NewAccount {
                upn,
                upn_key: &key,
                display_name: upn,
                license: License::Pro,
                readiness: Readiness::NoActionNeeded,
                password_hash: None,
            },
            Some("tok_1"),
            0,
        )
        .await
        .unwrap();
    let mut otp = [0u8; 32];
    otp[..8].copy_from_slice(&(round as u64).to_le_bytes());
    otp[8..16].copy_from_slice(&id.to_le_bytes());
    s.issue_otp(
        id,
        NewOtp {
            key: otp,
            generated_ms: 0,
            expires_ms: 3_600_000,
            credential: &format!("password of {upn}"),
            password_hash: [7; 32],
        },
        Some("tok_1"),
    )
    .await
    .unwrap();
    (id, otp)
}

/// Console `n`'s request from `device`.
fn request(device: &Device, n: usize) -> NewRequest<'_> {
    NewRequest {
        device,
        requested_ms: 1_000,
        poll_token: [n as u8; 16],
        interval_s: 5,
        verified_ms: 1_000,
    }
}

/// Runs `CONSOLES` attempts at once, the `i`th through replica `i % REPLICAS`; answers the
/// outcomes in order.
async fn race<T, F>(replicas: &[PgStore], attempt: impl Fn(PgStore, usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONSOLES));
    let tasks: Vec<_> = (0..CONSOLES)
        .map(|i| {
            let run = attempt(replicas[i % replicas.len()].clone(), i);
            let barrier = std::sync::Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(CONSOLES);
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

/// Exactly one of `outcomes` won; every loser lost as `expected` says.
fn exactly_one<T: std::fmt::Debug>(
    what: &str,
    outcomes: &[Result<T, Lost>],
    expected: impl Fn(&Lost) -> bool,
) -> Result<(), String> {
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    if won != 1 {
        return Err(format!("{what}: {won} of {CONSOLES} won, not one"));
    }
    match outcomes
        .iter()
        .find_map(|o| o.as_ref().err().filter(|l| !expected(l)))
    {
        Some(wrong) => Err(format!("{what}: a loser was told {wrong:?}")),
        None => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_otp_raced_by_64_consoles_through_3_replicas_has_one_winner_each_round() {
    let Some(db) = Db::new("race").await else {
        return;
    };
    let replicas = db.replicas().await;
    let s = &replicas[0];
    for round in 0..ROUNDS {
        // Redemptions: one console's request, the other 63 told the OTP is used.
        let (_, otp) = account_with_otp(s, &format!("room{round}@race.test"), round).await;
        let redeemed = race(&replicas, |r, i| async move {
            let d = device(i);
            r.redeem(&otp, request(&d, i)).await.unwrap()
        })
        .await;
        exactly_one("redeem", &redeemed, |l| *l == Lost::OtpUsed)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let request_id = redeemed
            .iter()
            .find_map(|o| o.as_ref().ok())
            .unwrap()
            .request;

        // Decisions: half approve, half reject; one lands, the rest see it decided.
        let decided = race(&replicas, |r, i| async move {
            let verdict = match i % 2 {
                0 => Verdict::Approve,
                _ => Verdict::Reject(RejectReason::WrongRoom),
            };
            r.decide(request_id, verdict, 2_000, Some("tok_1"))
                .await
                .unwrap()
        })
        .await;
        exactly_one("decide", &decided, |l| {
            matches!(
                l,
                Lost::Status(RequestStatus::Approved | RequestStatus::Rejected)
            )
        })
        .unwrap_or_else(|e| panic!("round {round}: {e}"));

        // Hand-overs of an approved request: the password once, then "signed in".
        let (_, otp) = account_with_otp(s, &format!("auto{round}@race.test"), round).await;
        let d = device(7);
        let approved = s.redeem(&otp, request(&d, 7)).await.unwrap().unwrap();
        s.decide(approved.request, Verdict::Approve, 2_000, None)
            .await
            .unwrap()
            .unwrap();
        let handed = race(&replicas, |r, _| async move {
            r.hand_over(approved.request, &[7; 16], 3_000)
                .await
                .unwrap()
        })
        .await;
        exactly_one("hand over", &handed, |l| {
            *l == Lost::Status(RequestStatus::SignedIn)
        })
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let password = handed.into_iter().find_map(Result::ok).unwrap().credential;
        assert_eq!(password, format!("password of auto{round}@race.test"));
    }
    // Each change wrote its audit event, each loser none: per round two imports, two OTPs
    // (each in a batch of its own: two entries), two redemptions, two decisions and one
    // hand-over.
    let mut chainer = s.elect_chainer().await.unwrap().expect("no other chainer");
    assert_eq!(
        s.link_ready(&mut chainer).await.unwrap(),
        11 * ROUNDS as u64
    );
    let chain = s.verify_chain().await.unwrap();
    assert_eq!((chain.entries, chain.unlinked), (11 * ROUNDS as u64, 0));
    db.drop_schema().await;
}

/// The test double: a redemption that reads whether the OTP is used, then writes (the pattern
/// the store must never use). Under the same race it lets several consoles redeem one OTP.
async fn read_then_write_redeem(c: &tokio_postgres::Client, otp: &[u8; 32], i: usize) -> bool {
    let used = c
        .query_one(
            "SELECT request_id IS NOT NULL FROM otps WHERE otp_key = $1",
            &[&&otp[..]],
        )
        .await
        .unwrap()
        .get::<_, bool>(0);
    if used {
        return false;
    }
    c.execute(
        "UPDATE otps SET request_id = nextval('request_ids'), state = 'pending', serial = $2 \
         WHERE otp_key = $1",
        &[&&otp[..], &format!("SERIAL{i}")],
    )
    .await
    .unwrap();
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_reads_then_writes_fails_the_same_race() {
    let Some(db) = Db::new("double").await else {
        return;
    };
    let replicas = db.replicas().await;
    let mut clients = Vec::new();
    for _ in 0..CONSOLES {
        let (c, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        clients.push(std::sync::Arc::new(c));
    }
    let mut failed_rounds = Vec::new();
    for round in 0..ROUNDS {
        let (_, otp) =
            account_with_otp(&replicas[0], &format!("r{round}@double.test"), round).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CONSOLES));
        let tasks: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (c, barrier) = (std::sync::Arc::clone(c), std::sync::Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    match read_then_write_redeem(&c, &otp, i).await {
                        true => Ok(()),
                        false => Err(Lost::OtpUsed),
                    }
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        if let Err(e) = exactly_one("redeem", &outcomes, |l| *l == Lost::OtpUsed) {
            failed_rounds.push(format!("round {round}: {e}"));
        }
    }
    eprintln!(
        "read then write: {} of {ROUNDS} rounds had more than one winner; first: {:?}",
        failed_rounds.len(),
        failed_rounds.first()
    );
    assert!(
        !failed_rounds.is_empty(),
        "the read-then-write double passed every round: the race is not being exercised"
    );
    db.drop_schema().await;
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let Some(db) = Db::new("schema").await else {
        return;
    };
    let s = db.store(2).await;
    let none = s.check_schema().await.unwrap_err();
    assert!(matches!(none, PgError::NoSchema { .. }), "{none}");
    assert!(none.to_string().contains("otpfleet db migrate"), "{none}");

    let first = s.migrate().await.unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    let again = s.migrate().await.unwrap();
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    s.check_schema().await.unwrap();

    // A newer otpfleet migrated it: this one refuses to serve it, or to migrate it.
    let (c, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    c.execute(
        "INSERT INTO otpfleet_schema (version, name) VALUES (99, 'from the future')",
        &[],
    )
    .await
    .unwrap();
    for refused in [s.check_schema().await, s.migrate().await.map(|_| ())] {
        let e = refused.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, PgError::SchemaNewer { found: 99, .. }),
            "{text}"
        );
        assert!(
            text.contains("version 99") && text.contains(&format!("({SCHEMA_VERSION})")),
            "{text}"
        );
        assert!(
            !text.contains("otpfleet-test"),
            "the password is shown: {text}"
        );
    }
    db.drop_schema().await;
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let e = PgStore::connect("postgres://admin:s3cret-pw@127.0.0.1:1/fleet", 1)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PgError::Unreachable { .. }), "{text}");
    assert!(text.contains("admin@127.0.0.1:1/fleet"), "{text}");
    assert!(!text.contains("s3cret"), "the password is shown: {text}");

    let e = PgStore::connect("postgres://admin:s3cret-pw@127.0.0.1:notaport/fleet", 1)
        .await
        .unwrap_err();
    assert!(matches!(e, PgError::BadUrl(_)), "{e}");
    assert!(
        !e.to_string().contains("s3cret"),
        "the password is shown: {e}"
    );
}

/// A raw connection to the test's schema (for what no store does: a transaction held open,
/// an entry tampered with).
async fn raw(db: &Db) -> Client {
    let (c, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    c
}

/// A transaction that commits late: its entry has a lower `seq` than entries committed
/// before it. A chainer that tailed `seq > last` would skip it for good; this one links it
/// once it is committed, after those, and the chain stays whole. One chainer at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_links_a_late_commit_and_stays_whole() {
    let Some(db) = Db::new("chain").await else {
        return;
    };
    let s = &db.replicas().await[0];
    let late = raw(&db).await;
    late.batch_execute(
        "BEGIN; INSERT INTO events (at_ms, body) VALUES (1, '{\"event\":\"manual_signed_in\",\"account\":1}')",
    )
    .await
    .unwrap();
    for round in 0..5 {
        account_with_otp(s, &format!("late{round}@chain.test"), round).await;
    }
    let mut chainer = s
        .elect_chainer()
        .await
        .unwrap()
        .expect("the first is elected");
    assert!(
        s.elect_chainer().await.unwrap().is_none(),
        "a second chainer was elected"
    );
    // Everything after the open transaction waits for it.
    assert_eq!(s.link_ready(&mut chainer).await.unwrap(), 0);

    late.batch_execute("COMMIT").await.unwrap();
    // The late entry, and per round an import, an OTP and its batch.
    assert_eq!(s.link_ready(&mut chainer).await.unwrap(), 16);
    let chain = s.verify_chain().await.unwrap();
    assert_eq!((chain.entries, chain.unlinked), (16, 0));
    let first: i64 = late
        .query_one("SELECT chain_pos FROM events WHERE at_ms = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(first, 1, "the late entry (lowest seq) is linked first");

    // The lock goes with the chainer's connection.
    drop(chainer);
    let mut again = None;
    for _ in 0..50 {
        again = s.elect_chainer().await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "no chainer after the first was dropped");
    db.drop_schema().await;
}

/// An entry edited or removed after it was linked breaks the chain there, and the check says
/// where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_or_removed_entry_breaks_the_chain_where_it_happened() {
    let Some(db) = Db::new("tamper").await else {
        return;
    };
    let s = &db.replicas().await[0];
    for round in 0..3 {
        account_with_otp(s, &format!("t{round}@tamper.test"), round).await;
    }
    let mut chainer = s.elect_chainer().await.unwrap().unwrap();
    assert_eq!(s.link_ready(&mut chainer).await.unwrap(), 9);
    s.verify_chain().await.unwrap();

    let c = raw(&db).await;
    c.batch_execute(
        "UPDATE events SET body = jsonb_set(body, '{upn}', '\"mallory@tamper.test\"') \
         WHERE chain_pos = 3",
    )
    .await
    .unwrap();
    let e = s.verify_chain().await.unwrap_err();
    assert!(matches!(e, PgError::ChainBroken { pos: 3, .. }), "{e}");

    c.batch_execute("DELETE FROM events WHERE chain_pos = 3")
        .await
        .unwrap();
    let e = s.verify_chain().await.unwrap_err();
    assert!(e.to_string().contains("entry 3 is missing"), "{e}");
    db.drop_schema().await;
}

/// Replicas share the secret (a verification token sealed by one opens on another) and the
/// preferences; a redemption follows `auto_approve` as it stands when it commits, and bad
/// preferences are refused as the embedded store refuses them.
#[tokio::test]
async fn replicas_share_the_secret_and_the_preferences() {
    let Some(db) = Db::new("shared").await else {
        return;
    };
    let replicas = db.replicas().await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let device = otpfleet_server::domain::secrets::VerifiedDevice {
        make: "Contoso".into(),
        model: "Room Console 9".into(),
        serial: "SHARED1".into(),
        issued_ms: 5,
    };
    let token = a.secrets().await.unwrap().seal_verification(&device);
    assert_eq!(
        b.secrets().await.unwrap().open_verification(&token),
        Some(device),
        "a token sealed on one replica does not open on another"
    );

    let on = otpfleet_protocol::Preferences {
        otp_validity_hours: 24,
        auto_approve: true,
    };
    a.set_preferences(on, Some("tok_1"), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.preferences().await.unwrap(), on);
    let (_, otp) = account_with_otp(b, "auto@shared.test", 0).await;
    let d = self::device(1);
    let redeemed = b.redeem(&otp, request(&d, 1)).await.unwrap().unwrap();
    assert!(redeemed.auto_approved, "{redeemed:?}");
    let handed = a.hand_over(redeemed.request, &[1; 16], 20).await.unwrap();
    assert!(
        handed.is_ok(),
        "an auto-approved request was not handed over: {handed:?}"
    );

    let bad = otpfleet_protocol::Preferences {
        otp_validity_hours: 0,
        auto_approve: false,
    };
    let refused = a.set_preferences(bad, None, 30).await.unwrap().unwrap_err();
    let embedded = otpfleet_server::Core::with_defaults()
        .set_preferences(bad, None)
        .unwrap_err();
    assert_eq!(refused.to_string(), embedded.to_string());
    assert_eq!(
        b.preferences().await.unwrap(),
        on,
        "a refused change was applied"
    );
    db.drop_schema().await;
}

/// One domain, two stores: the console's path (verification, redemption, hand-over) and the
/// approval queue (listing, decisions with `If-Match`) through the PostgreSQL core answer what
/// the embedded core answers, views and tags equal and refusals word for word, for the same
/// requests.
#[tokio::test]
async fn one_domain_answers_the_same_on_both_stores() {
    use otpfleet_protocol::{BatchRequest, PasswordMode, RedeemRequest, VerifyRequest};
    use otpfleet_server::domain::accounts::ImportRow;
    use otpfleet_server::domain::batches::BatchOutcome;
    use otpfleet_server::pg::PgCore;
    use otpfleet_server::{Catalogue, Core, ServerConfig};

    let Some(db) = Db::new("domain").await else {
        return;
    };
    let store = db.replicas().await.remove(0);
    let pg = PgCore::open(store.clone(), ServerConfig::default(), Catalogue::builtin())
        .await
        .unwrap();
    let embedded = Core::with_defaults();

    // The same room in both, with an OTP that expires at the same moment.
    let upn = "room1@domain.test";
    let row = ImportRow {
        line: 1,
        input: otpfleet_protocol::AccountInput {
            upn: upn.into(),
            display_name: "Room 1".into(),
            license: License::Pro,
            readiness: Readiness::NoActionNeeded,
            password: None,
        },
    };
    embedded.import_accounts(vec![row], None).unwrap();
    let batch = BatchRequest {
        account_ids: vec!["acc_1".into()],
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    };
    let Ok(BatchOutcome::Created(created)) = embedded.create_batch(batch, 0, None) else {
        panic!("no batch");
    };
    let embedded_otp = created.generated[0].otp.clone();
    // The default validity, from generation at 0.
    let hours = otpfleet_protocol::Preferences::default().otp_validity_hours;
    let expires_ms = u64::from(hours) * 3_600_000;
    let pg_otp = "BCDFGHJKLMNPQRST";
    let key = store
        .secrets()
        .await
        .unwrap()
        .otp_key(&otpfleet_protocol::OtpCode::parse(pg_otp).unwrap());
    let id = store
        .upsert_account(
            NewAccount {
                upn,
                upn_key: &upn_key(upn),
                display_name: "Room 1",
                license: License::Pro,
                readiness: Readiness::NoActionNeeded,
                password_hash: None,
            },
            None,
            0,
        )
        .await
        .unwrap();
    let credential = "handed-over-once";
    let otp = NewOtp {
        key,
        generated_ms: 0,
        expires_ms,
        credential,
        password_hash: [7; 32],
    };
    store.issue_otp(id, otp, None).await.unwrap();

    let verify = |hdmi_ingest: bool, model: &str| VerifyRequest {
        make: "Logitech".into(),
        model: model.into(),
        serial: "SAME1".into(),
        hdmi_ingest,
    };
    // Refused verifications.
    for req in [verify(false, "Tap"), verify(true, "Toaster")] {
        assert_eq!(
            pg.verify(&req, 10).unwrap_err().to_string(),
            embedded.verify(&req, 10).unwrap_err().to_string()
        );
    }
    let certified = verify(true, "Tap");
    let tokens = (
        embedded.verify(&certified, 10).unwrap().verification_token,
        pg.verify(&certified, 10).unwrap().verification_token,
    );
    let redeem = |otp: &str, token: &str| RedeemRequest {
        otp: otp.into(),
        verification_token: token.into(),
    };
    // Refused redemptions: malformed, a token from nowhere, an OTP nobody issued.
    for (otp, token) in [
        ("oops", None),
        ("ABCD2345", Some("garbage")),
        ("ZZZZ9999", None),
    ] {
        let e = embedded.redeem(&redeem(otp, token.unwrap_or(&tokens.0)), 20);
        let p = pg
            .redeem_from(&redeem(otp, token.unwrap_or(&tokens.1)), None, 20)
            .await;
        assert_eq!(p.unwrap_err().to_string(), e.unwrap_err().to_string());
    }
    // The redemption, then the same OTP again.
    let e = embedded
        .redeem(&redeem(&embedded_otp, &tokens.0), 30)
        .unwrap();
    let p = pg
        .redeem_from(&redeem(pg_otp, &tokens.1), None, 30)
        .await
        .unwrap();
    assert_eq!((p.status, p.interval_s), (e.status, e.interval_s));
    // Sent again by the same console (its answer lost): its own request, on both.
    let again_e = embedded
        .redeem(&redeem(&embedded_otp, &tokens.0), 35)
        .unwrap();
    let again_p = pg
        .redeem_from(&redeem(pg_otp, &tokens.1), None, 35)
        .await
        .unwrap();
    assert_eq!(again_e, e);
    assert_eq!(again_p, p);
    // By another console: refused, in the same words.
    let other = VerifyRequest {
        serial: "OTHER1".into(),
        ..certified.clone()
    };
    let others = (
        embedded.verify(&other, 40).unwrap().verification_token,
        pg.verify(&other, 40).unwrap().verification_token,
    );
    let again_e = embedded.redeem(&redeem(&embedded_otp, &others.0), 40);
    let again_p = pg.redeem_from(&redeem(pg_otp, &others.1), None, 40).await;
    assert_eq!(
        again_p.unwrap_err().to_string(),
        again_e.unwrap_err().to_string()
    );
    // Hand-over: before the approval, another console's token, then once and only once.
    let (er, pr, embedded_ref, pg_ref) = (&e, &p, &embedded, &pg);
    let sign_ins = |at: u64| async move {
        let e = embedded_ref.sign_in(&er.request_id, &er.poll_token, at);
        let p = pg_ref.sign_in(&pr.request_id, &pr.poll_token, at).await;
        (e, p)
    };
    let (e1, p1) = sign_ins(50).await;
    assert_eq!(p1.unwrap_err().to_string(), e1.unwrap_err().to_string());
    let wrong = pg
        .sign_in(&p.request_id, "AAAAAAAAAAAAAAAAAAAAAA", 50)
        .await;
    assert_eq!(wrong.unwrap_err().code, ErrorCode::RequestNotFound);
    // The approval queue: the same request, the same view and tag, the same refusals.
    use otpfleet_server::domain::requests::RequestQuery;
    let queue = |status| RequestQuery {
        status,
        limit: 10,
        cursor: None,
    };
    let pending = queue(RequestStatus::AwaitingApproval);
    let listed = embedded.list_requests(&pending, 55).unwrap();
    assert_eq!(pg.list_requests(&pending, 55).await.unwrap(), listed);
    assert_eq!(listed.requests.len(), 1);
    let tag = listed.requests[0].etag.clone();
    let wrong = Some("\"0000000000000000\"");
    let refused = (
        embedded.approve(&e.request_id, wrong, 60, None),
        pg.approve(&p.request_id, wrong, 60, None).await,
    );
    assert_eq!(
        refused.1.unwrap_err().to_string(),
        refused.0.unwrap_err().to_string()
    );
    let approved = embedded
        .approve(&e.request_id, Some(&tag), 60, Some("tok_1"))
        .unwrap();
    let pg_approved = pg.approve(&p.request_id, Some(&tag), 60, Some("tok_1"));
    assert_eq!(pg_approved.await.unwrap(), approved);
    let again = (
        embedded.reject(&e.request_id, None, RejectReason::WrongRoom, 65, None),
        pg.reject(&p.request_id, None, RejectReason::WrongRoom, 65, None)
            .await,
    );
    assert_eq!(
        again.1.unwrap_err().to_string(),
        again.0.unwrap_err().to_string()
    );
    let approved_queue = queue(RequestStatus::Approved);
    assert_eq!(
        pg.list_requests(&approved_queue, 66).await.unwrap(),
        embedded.list_requests(&approved_queue, 66).unwrap()
    );
    let (e2, p2) = sign_ins(70).await;
    let (e2, p2) = (e2.unwrap(), p2.unwrap());
    assert_eq!((p2.upn.as_str(), p2.password.as_str()), (upn, credential));
    assert_eq!((p2.upn, p2.display_name), (e2.upn, e2.display_name));
    let (e3, p3) = sign_ins(80).await;
    assert_eq!(p3.unwrap_err().to_string(), e3.unwrap_err().to_string());
    db.drop_schema().await;
}
