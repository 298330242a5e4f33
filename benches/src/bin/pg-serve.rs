//! Redemptions and polls through `serve --database-url` replicas, over HTTP, on a schema
//! seeded here with KEYS OTPs (their keys made with the replicas' shared secret): CLIENTS
//! consoles, each with its own keep-alive connection to each replica (every request to the
//! next replica), redeem random OTPs for SECONDS; then they poll what they redeemed for
//! SECONDS (after as long a pass that lets every replica read each request once), and then
//! ask `/healthz` for SECONDS. Prints one JSON line: redemptions won per
//! second, polls and health checks answered per second, and the database's transactions
//! during the polls (a poll of a request nothing changed must not be one).
//!
//! `pg-serve DATABASE_URL URLS CLIENTS SECONDS KEYS SEED` (URLS: the replicas, separated by
//! commas, already serving DATABASE_URL's schema); run by `scripts/pg-redeem-ceiling`.

use otpfleet_client::{ApiRequest, HttpTransport, Spread, Transport, calls};
use otpfleet_protocol::{OTP_ALPHABET, OTP_LEN, RedeemRequest, RedeemResponse, VerifyRequest};
use otpfleet_server::pg::PgStore;
use rand::{Rng as _, SeedableRng as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long PostgreSQL may take to count a backend's transactions in `pg_stat_database`: a
/// backend that goes idle reports what it has not yet within 10 s (PGSTAT_IDLE_INTERVAL).
const STATS_LAG: Duration = Duration::from_secs(11);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, urls, clients, seconds, keys, seed] = args.as_slice() else {
        eprintln!("usage: pg-serve DATABASE_URL URLS CLIENTS SECONDS KEYS SEED");
        return ExitCode::from(2);
    };
    let (Ok(clients), Ok(seconds), Ok(keys), Ok(seed)) = (
        clients.parse::<usize>(),
        seconds.parse::<f64>(),
        keys.parse::<u64>(),
        seed.parse::<u64>(),
    ) else {
        eprintln!("pg-serve: CLIENTS, SECONDS, KEYS and SEED are numbers");
        return ExitCode::from(2);
    };
    match run(
        db,
        urls,
        clients,
        Duration::from_secs_f64(seconds),
        keys,
        seed,
    )
    .await
    {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("pg-serve: {why}");
            ExitCode::FAILURE
        }
    }
}

/// OTP `k`: `k` written in the OTP alphabet, 16 letters.
fn code(k: u64) -> String {
    let mut k = k;
    let mut out = vec![OTP_ALPHABET[0]; OTP_LEN];
    for slot in out.iter_mut().rev() {
        *slot = OTP_ALPHABET[(k % 20) as usize];
        k /= 20;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Accounts 1..=`keys`, each with OTP `code(k)` (its key made with the shared secret).
async fn seed_otps(db: &str, keys: u64) -> Result<(), Failure> {
    let store = PgStore::connect(db, 1).await?;
    let secrets = store.secrets().await?;
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    for chunk in (1..=keys as i64).collect::<Vec<_>>().chunks(20_000) {
        let otp_keys: Vec<Vec<u8>> = chunk
            .iter()
            .map(|&k| {
                let typed = otpfleet_protocol::OtpCode::parse(&code(k as u64))
                    .expect("code() writes 16 letters of the OTP alphabet");
                secrets.otp_key(&typed).to_vec()
            })
            .collect();
        client
            .execute(
                "INSERT INTO accounts (id, upn, upn_key, display_name, license, readiness) \
                 SELECT k, 'r' || k || '@bench.test', 'r' || k || '@bench.test', 'R', 'pro', \
                 'no_action_needed' FROM unnest($1::bigint[]) AS k",
                &[&chunk],
            )
            .await?;
        client
            .execute(
                "INSERT INTO otps (account_id, otp_key, batch_id, generated_ms, expires_ms, \
                 credential) SELECT k, key, 1, 0, 4000000000000, 'pw' \
                 FROM unnest($1::bigint[], $2::bytea[]) AS t(k, key)",
                &[&chunk, &otp_keys],
            )
            .await?;
    }
    // One statement each: VACUUM does not run inside a transaction block.
    client.batch_execute("VACUUM ANALYZE accounts").await?;
    client.batch_execute("VACUUM ANALYZE otps").await?;
    Ok(())
}

/// The database's committed transactions so far.
async fn transactions(db: &str) -> Result<i64, Failure> {
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

async fn run(
    db: &str,
    urls: &str,
    clients: usize,
    span: Duration,
    keys: u64,
    seed: u64,
) -> Result<String, Failure> {
    seed_otps(db, keys).await?;
    let replicas = urls
        .split(',')
        .map(|u| HttpTransport::new(u, 1, Duration::from_secs(30)))
        .collect::<Result<Vec<_>, _>>()?;
    let spread = Spread::over(replicas).per_console();
    let counts = Arc::new([const { AtomicU64::new(0) }; 4]);
    let until = Instant::now() + span;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (t, counts) = (spread.dedicated(), Arc::clone(&counts));
            tokio::spawn(redeemer(t, c, seed ^ c as u64, keys, until, counts))
        })
        .collect();
    let mut redeemed = Vec::new();
    for t in tasks {
        redeemed.push(t.await??);
    }
    let won = counts[0].load(Ordering::Relaxed) as f64 / span.as_secs_f64();
    // Polls: each console polls what it redeemed, in turn, as fast as it is answered. A first
    // pass lets every replica read each request once (a replica's first poll of a request it
    // has not seen reads the database); the second is measured. PostgreSQL's statistics lag a
    // backend's transactions by up to a second: they are read after a pause.
    let poll = |t: Spread, i: usize, mine: &Vec<RedeemResponse>| {
        let r = &mine[i % mine.len()];
        (t, calls::poll(&r.request_id, &r.poll_token))
    };
    fan_out(&redeemed, span, poll).await?;
    tokio::time::sleep(STATS_LAG).await;
    let before = transactions(db).await?;
    let polled = fan_out(&redeemed, span, poll).await?;
    tokio::time::sleep(STATS_LAG).await;
    // Less the one that read `before`.
    let during_polls = transactions(db).await? - before - 1;
    let health = fan_out(&redeemed, span, |t, _, _| (t, ApiRequest::get("/healthz"))).await?;
    Ok(format!(
        "{{\"replicas\":{},\"clients\":{clients},\"won_per_s\":{won:.1},\"polls_per_s\":{:.1},\
         \"polls_ok\":{},\"polls_slow_down\":{},\"db_transactions_during_polls\":{during_polls},\
         \"healthz_per_s\":{:.1}}}",
        urls.split(',').count(),
        polled.0 as f64 / span.as_secs_f64(),
        polled.1,
        polled.2,
        health.0 as f64 / span.as_secs_f64(),
    ))
}

/// One console: redeems random OTPs until `until`; answers what it won (with its transport).
async fn redeemer(
    t: Spread,
    c: usize,
    seed: u64,
    keys: u64,
    until: Instant,
    counts: Arc<[AtomicU64; 4]>,
) -> Result<(Spread, Vec<RedeemResponse>), Failure> {
    let device = VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: format!("SERVE{c}"),
        hdmi_ingest: true,
    };
    let verified = t.send(calls::verify(&device)).await?;
    let token: otpfleet_protocol::VerifyResponse =
        verified.parse().ok_or("the verification was refused")?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut won = Vec::new();
    while Instant::now() < until {
        let body = RedeemRequest {
            otp: code(rng.random_range(1..=keys)),
            verification_token: token.verification_token.clone(),
        };
        let answer = t.send(calls::redeem(&body)).await?;
        match answer.status {
            202 => {
                counts[0].fetch_add(1, Ordering::Relaxed);
                won.extend(answer.parse::<RedeemResponse>());
            }
            409 => {
                counts[1].fetch_add(1, Ordering::Relaxed);
            }
            other => return Err(format!("a redemption was answered {other}").into()),
        }
    }
    Ok((t, won))
}

/// Every console sends `request(transport, i, its redemptions)` in turn (i = 0, 1, …) for
/// `span`; answers (answered 2xx or 429, of them 200, of them 429).
async fn fan_out<F>(
    consoles: &[(Spread, Vec<RedeemResponse>)],
    span: Duration,
    request: F,
) -> Result<(u64, u64, u64), Failure>
where
    F: Fn(Spread, usize, &Vec<RedeemResponse>) -> (Spread, ApiRequest) + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let until = Instant::now() + span;
    let tasks: Vec<_> = consoles
        .iter()
        .filter(|(_, mine)| !mine.is_empty())
        .map(|(t, mine)| {
            let (t, mine, request) = (t.clone(), mine.clone(), Arc::clone(&request));
            tokio::spawn(async move {
                let (mut ok, mut slow) = (0u64, 0u64);
                let mut i = 0;
                while Instant::now() < until {
                    let (t, req) = request(t.clone(), i, &mine);
                    match t.send(req).await?.status {
                        200 => ok += 1,
                        429 => slow += 1,
                        other => return Err(Failure::from(format!("answered {other}"))),
                    }
                    i += 1;
                }
                Ok((ok, slow))
            })
        })
        .collect();
    let (mut ok, mut slow) = (0, 0);
    for t in tasks {
        let (o, s) = t.await??;
        ok += o;
        slow += s;
    }
    Ok((ok + slow, ok, slow))
}
