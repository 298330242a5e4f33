//! Round trips over loopback HTTP (`127.0.0.1`, port 0): the reference server's redeem and poll,
//! and the reference of the group, a bare hyper 1.x "hello" server, all through the same
//! keep-alive hyper-util client, client and servers on one current-thread runtime (see
//! `otpfleet_benches::loopback` for why).
//!
//! A round trip is timed from sending the request to having read the whole answer. Requests
//! and what they consume (fresh OTPs for redeem) are built per sample outside the timed
//! section; polls walk a pool of requests with the server's clock stepping one polling interval
//! per pass, so no poll answers `slow_down`. Every answer's status is checked.
//!
//! `cargo bench -p otpfleet-benches --bench http`, then
//! `cargo run -p otpfleet-benches --bin bench-ratios` for the ratios to the reference.

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::Full;
use otpfleet_benches::loopback::{
    BenchClient, HELLO, Servers, hello_request, poll_request, redeem_request,
};
use otpfleet_benches::{Domain, PollCursor};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Requests in the poll pool.
const POLL_POOL: usize = 1024;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
}

/// Sends the requests one after the other on the client's pooled connection; answers the time
/// from the first send to the last answer read.
fn round_trips(
    rt: &Runtime,
    client: &BenchClient,
    requests: Vec<(Request<Full<Bytes>>, Option<u64>)>,
    domain: &Domain,
    expect: StatusCode,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for (req, now_ms) in requests {
            if let Some(now_ms) = now_ms {
                domain.clock.set_ms(now_ms);
            }
            let (status, body) = client.round_trip(req).await;
            assert_eq!(status, expect, "{}", String::from_utf8_lossy(&body));
            black_box(body);
        }
        start.elapsed()
    })
}

fn http(c: &mut Criterion) {
    let domain = Domain::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("bench: a tokio runtime for the client and the servers");
    let servers = rt.block_on(Servers::start(&domain));
    let client = BenchClient::new();
    let n = |iters: u64| usize::try_from(iters).expect("iteration count fits usize");

    let mut g = c.benchmark_group("http");
    g.sampling_mode(SamplingMode::Flat);

    g.bench_function("hello_hyper", |b| {
        b.iter_custom(|iters| {
            let reqs = (0..n(iters))
                .map(|_| (hello_request(servers.hello), None))
                .collect();
            round_trips(&rt, &client, reqs, &domain, StatusCode::OK)
        });
    });

    g.bench_function("redeem", |b| {
        b.iter_custom(|iters| {
            let reqs = domain
                .redeem_requests(n(iters))
                .iter()
                .map(|r| (redeem_request(servers.otp, r), None))
                .collect();
            round_trips(&rt, &client, reqs, &domain, StatusCode::ACCEPTED)
        });
    });

    let polled = domain.redeemed(POLL_POOL);
    let mut cursor = PollCursor::new(polled.len(), domain.now_ms());
    g.bench_function("poll", |b| {
        b.iter_custom(|iters| {
            let reqs = (0..n(iters))
                .map(|_| {
                    let (i, now_ms) = cursor.advance();
                    let r = &polled[i];
                    let req = poll_request(servers.otp, &r.request_id, &r.poll_token);
                    (req, Some(now_ms))
                })
                .collect();
            round_trips(&rt, &client, reqs, &domain, StatusCode::OK)
        });
    });
    g.finish();

    // The hello answer is what the client read; checked once so a broken reference shows.
    let (status, body) = rt.block_on(client.round_trip(hello_request(servers.hello)));
    assert_eq!((status, &body[..]), (StatusCode::OK, HELLO));
    drop(servers);
}

criterion_group! {
    name = benches;
    config = config();
    targets = http
}
criterion_main!(benches);
