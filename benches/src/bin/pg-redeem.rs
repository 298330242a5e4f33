//! Redemptions through the PostgreSQL store (`PgStore::redeem`) from `CLIENTS` tasks for
//! `SECONDS`, on a database seeded by `scripts/pg-redeem-ceiling` (OTP keys
//! `sha256(int8send(k))` for k in 1..=KEYS): prints one JSON line with the redemptions won and
//! lost. The script sets it beside pgbench running the same statement, in the same run.
//!
//! `pg-redeem URL CLIENTS SECONDS KEYS SEED`; `pg-redeem --statement` prints the store's
//! redemption statement (for pgbench); `pg-redeem --migrate URL` creates the store's schema.

use otpfleet_protocol::Device;
use otpfleet_server::pg::{NewRequest, PgStore};
use rand::{Rng as _, SeedableRng as _};
use sha2::Digest as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--statement"] => {
            println!("{}", otpfleet_server::pg::REDEEM_STATEMENT);
            return ExitCode::SUCCESS;
        }
        ["--migrate", url] => return migrate(url).await,
        _ => {}
    }
    let [url, clients, seconds, keys, seed] = args.as_slice() else {
        eprintln!("usage: pg-redeem URL CLIENTS SECONDS KEYS SEED | --statement | --migrate URL");
        return ExitCode::from(2);
    };
    let (Ok(clients), Ok(seconds), Ok(keys), Ok(seed)) = (
        clients.parse::<usize>(),
        seconds.parse::<f64>(),
        keys.parse::<u64>(),
        seed.parse::<u64>(),
    ) else {
        eprintln!("pg-redeem: CLIENTS, SECONDS, KEYS and SEED are numbers");
        return ExitCode::from(2);
    };
    let store = match PgStore::connect(url, clients).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pg-redeem: {e}");
            return ExitCode::FAILURE;
        }
    };
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, counts) = (store.clone(), Arc::clone(&counts));
            tokio::spawn(console(store, c, seed ^ c as u64, keys, until, counts))
        })
        .collect();
    let mut failed = false;
    for t in tasks {
        let why = match t.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        eprintln!("pg-redeem: {why}");
        failed = true;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (won, lost) = (
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    println!(
        "{{\"clients\":{clients},\"seconds\":{elapsed:.3},\"won\":{won},\"lost\":{lost},\"won_per_s\":{:.1}}}",
        won as f64 / elapsed
    );
    match failed {
        false => ExitCode::SUCCESS,
        true => ExitCode::FAILURE,
    }
}

/// Creates the store's schema at `url`.
async fn migrate(url: &str) -> ExitCode {
    let migrated = match PgStore::connect(url, 1).await {
        Ok(store) => store.migrate().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match migrated {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pg-redeem: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One client: redeems OTPs drawn from 1..=`keys` until `until`, counting wins and losses.
async fn console(
    store: PgStore,
    c: usize,
    seed: u64,
    keys: u64,
    until: Instant,
    counts: Arc<(AtomicU64, AtomicU64)>,
) -> Result<(), otpfleet_server::pg::PgError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let device = Device {
        make: "Contoso".into(),
        model: "Room Console 9".into(),
        serial: format!("BENCH{c}"),
    };
    while Instant::now() < until {
        let k: i64 = rng.random_range(1..=keys as i64);
        let key: [u8; 32] = sha2::Sha256::digest(k.to_be_bytes()).into();
        let request = NewRequest {
            device: &device,
            requested_ms: 1_000,
            poll_token: rng.random(),
            interval_s: 5,
            verified_ms: 1_000,
        };
        match store.redeem(&key, request).await? {
            Ok(_) => counts.0.fetch_add(1, Ordering::Relaxed),
            Err(_) => counts.1.fetch_add(1, Ordering::Relaxed),
        };
    }
    Ok(())
}
