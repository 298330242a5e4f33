//! The in-process hot path: `otpfleet_server::Core` called directly, no HTTP.
//!
//! Group `domain`: the reference (one HMAC-SHA256 of an OTP with the server's OTP key, as redeem
//! computes it), then verify, issue (a batch of 1 and of 100), redeem, poll, approve, sign-in.
//! Group `contention`: 1, 2 and 8 threads redeeming distinct OTPs on one core, as throughput,
//! with 1 and 2 threads computing HMACs as the reference (what the machine lets two threads do).
//!
//! Whatever an operation consumes is made per sample, outside the timed section, on a fresh
//! core (`iter_custom`): no OTP is redeemed twice, no request decided or handed over twice.
//! Before timing, the CPU's private caches are flushed (`evict_caches`), so an operation meets
//! its account outside L2 whatever the pool size, as a server with thousands of consoles does;
//! the reference HMAC, which touches no account, stays in L1.
//! Sampling is flat, so every sample of a bench runs on a core of the same size. Polls walk a
//! fixed pool of requests with a clock that steps one polling interval per pass, so no poll
//! answers `slow_down`.
//!
//! `cargo bench -p otpfleet-benches --bench domain`, then
//! `cargo run -p otpfleet-benches --bin bench-ratios` for the ratios to the reference.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use otpfleet_benches::{
    Domain, OP_MS, PollCursor, Redeemed, ThreadUsage, evict_caches, verify_request,
};
use otpfleet_protocol::RedeemRequest;
use otpfleet_server::domain::secrets::{Entropy, Secrets};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Requests in the poll pool: their accounts (about 1 KiB each with the indexes) take several
/// times a core's L2, so polls meet their accounts outside L2, like the pool benches after
/// `evict_caches`.
const POLL_POOL: usize = 32_768;
/// Thread counts of the contention group.
const THREADS: [usize; 3] = [1, 2, 8];

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Times `op` over a pool of `iters` items made by `make` on a fresh core; making the pool and
/// dropping the core are not timed.
fn over_pool<P, R>(
    iters: u64,
    make: impl FnOnce(&Domain, usize) -> Vec<P>,
    mut op: impl FnMut(&Domain, &mut P) -> R,
) -> Duration {
    let d = Domain::new();
    let mut pool = make(
        &d,
        usize::try_from(iters).expect("iteration count fits usize"),
    );
    evict_caches();
    let start = Instant::now();
    for item in &mut pool {
        black_box(op(&d, item));
    }
    let elapsed = start.elapsed();
    drop(pool);
    drop(d);
    elapsed
}

fn domain(c: &mut Criterion) {
    let mut g = c.benchmark_group("domain");
    g.sampling_mode(SamplingMode::Flat);

    let secrets = Secrets::random();
    let code = Entropy::Os.otp();
    g.bench_function("hmac_otp", |b| {
        b.iter(|| secrets.otp_key(black_box(&code)));
    });

    let d = Domain::new();
    let verify = verify_request("BENCH-0001");
    g.bench_function("verify", |b| {
        b.iter(|| d.core().verify(black_box(&verify), OP_MS));
    });

    for per_batch in [1usize, 100] {
        g.bench_function(format!("issue_{per_batch}"), |b| {
            b.iter_custom(|iters| {
                over_pool(
                    iters,
                    |d, n| {
                        d.batch_requests(n, per_batch)
                            .into_iter()
                            .map(Some)
                            .collect()
                    },
                    |d, req: &mut Option<_>| {
                        let req = req.take().expect("each batch request is sent once");
                        d.core().create_batch(req, OP_MS, None)
                    },
                )
            });
        });
    }

    g.bench_function("redeem", |b| {
        b.iter_custom(|iters| {
            over_pool(
                iters,
                Domain::redeem_requests,
                |d, req: &mut RedeemRequest| {
                    d.core().redeem(req, OP_MS).expect("a fresh OTP redeems")
                },
            )
        });
    });

    let polled = d.redeemed(POLL_POOL);
    let mut cursor = PollCursor::new(polled.len(), d.now_ms());
    g.bench_function("poll", |b| {
        b.iter(|| {
            let (i, now_ms) = cursor.advance();
            let r = &polled[i];
            d.core()
                .poll(&r.request_id, &r.poll_token, now_ms)
                .expect("polled no faster than the interval")
        });
    });

    g.bench_function("approve", |b| {
        b.iter_custom(|iters| {
            over_pool(iters, Domain::redeemed, |d, r: &mut Redeemed| {
                d.core()
                    .approve(&r.request_id, None, OP_MS, None)
                    .expect("a pending request approves")
            })
        });
    });

    g.bench_function("sign_in", |b| {
        b.iter_custom(|iters| {
            over_pool(iters, Domain::approved, |d, r: &mut Redeemed| {
                d.core()
                    .sign_in(&r.request_id, &r.poll_token, OP_MS)
                    .expect("an approved request hands over once")
            })
        });
    });
    g.finish();
}

/// What the threads of one contention bench did, summed over its runs.
#[derive(Debug, Default)]
struct Sched {
    operations: u64,
    /// Nanoseconds on a CPU.
    on_cpu_ns: u64,
    /// Nanoseconds runnable but waiting for a CPU: the machine was busy.
    waiting_ns: u64,
}

impl Sched {
    /// One line for the person reading the bench output: CPU per operation (grows with
    /// contention: shared cache lines, locks) and the share of time the threads spent waiting
    /// for a CPU. With more threads than cores some waiting is expected (`1 - cores/threads`);
    /// waiting well past that means other work on the machine, and the throughput above is
    /// not reliable.
    fn report(&self, id: &str, threads: usize) {
        if self.operations == 0 || self.on_cpu_ns == 0 {
            return;
        }
        let cpu_ns = self.on_cpu_ns as f64 / self.operations as f64;
        let waiting_pct =
            100.0 * self.waiting_ns as f64 / (self.on_cpu_ns + self.waiting_ns) as f64;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let expected_pct = 100.0 * (1.0 - cores as f64 / threads as f64).max(0.0);
        let verdict = if waiting_pct > expected_pct + 5.0 {
            " (busy machine: the throughput above is not reliable)"
        } else {
            ""
        };
        eprintln!(
            "{id}: {cpu_ns:.0} ns of CPU per operation; threads waited for a CPU \
             {waiting_pct:.1}% of their run time, {expected_pct:.0}% expected with {threads} \
             threads on {cores} cores{verdict}"
        );
    }
}

/// Runs `op` over `items` split evenly between `threads` threads started together; answers
/// the wall time from the start until the last one is done, and adds to `sched` what the
/// threads spent.
fn concurrently<T: Sync>(
    items: &[T],
    threads: usize,
    sched: &mut Sched,
    op: impl Fn(&T) + Sync,
) -> Duration {
    let per_thread = items.len().div_ceil(threads).max(1);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|mine| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    evict_caches();
                    barrier.wait();
                    let usage = ThreadUsage::start();
                    mine.iter().for_each(op);
                    usage.stop()
                })
            })
            .collect();
        assert_eq!(workers.len(), threads, "one chunk of work per thread");
        evict_caches();
        barrier.wait();
        let start = Instant::now();
        let stats: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("a bench thread finishes"))
            .collect();
        let elapsed = start.elapsed();
        sched.operations += items.len() as u64;
        for (on_cpu_ns, waiting_ns) in stats {
            sched.on_cpu_ns += on_cpu_ns;
            sched.waiting_ns += waiting_ns;
        }
        elapsed
    })
}

/// Throughput of 1, 2 and 8 threads redeeming distinct OTPs on one core, and the same for HMACs
/// of OTPs (1 and 2 threads): the HMAC touches no shared state, so its scaling is what the
/// machine itself allows at that moment, the reference for the redemptions' scaling.
fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention");
    g.sampling_mode(SamplingMode::Flat);
    let secrets = Secrets::random();
    for threads in [1, 2] {
        let mut sched = Sched::default();
        // One iteration is one HMAC on each thread.
        g.throughput(Throughput::Elements(threads as u64));
        let id = BenchmarkId::new("hmac_threads", threads);
        g.bench_with_input(id, &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let codes: Vec<_> = (0..iters * threads as u64)
                    .map(|_| Entropy::Os.otp())
                    .collect();
                concurrently(&codes, threads, &mut sched, |code| {
                    black_box(secrets.otp_key(code));
                })
            });
        });
        sched.report(&format!("contention/hmac_threads/{threads}"), threads);
    }
    for threads in THREADS {
        let mut sched = Sched::default();
        // One iteration is one redemption on each thread.
        g.throughput(Throughput::Elements(threads as u64));
        let id = BenchmarkId::new("redeem_threads", threads);
        g.bench_with_input(id, &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let n = usize::try_from(iters).expect("iteration count fits usize") * threads;
                let d = Domain::new();
                let pool = d.redeem_requests(n);
                concurrently(&pool, threads, &mut sched, |req| {
                    let answer = d.core().redeem(req, OP_MS);
                    black_box(answer.expect("a fresh OTP redeems once"));
                })
            });
        });
        sched.report(&format!("contention/redeem_threads/{threads}"), threads);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = domain, contention
}
criterion_main!(benches);
