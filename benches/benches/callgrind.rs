//! Instruction counts of the in-process hot path, under callgrind (through gungraun): the input
//! of the regression gate, `scripts/perf-gate`.
//!
//! Each benchmark runs [`OPS`] operations of one kind (a batch counts as one operation) on a
//! core whose maps already hold a few hundred entries of that kind, so that the measured
//! calls neither pay for first-use allocations nor land on a table resize by chance. Setup
//! and the fixture's drop are outside the measurement (setup runs before, and the fixture is
//! handed back to gungraun, which drops it after).
//!
//! Run it through `scripts/perf-gate`, which compares the counts with the committed baseline.

use gungraun::{library_benchmark, library_benchmark_group, main};
use otpfleet_benches::gate::{BATCH_OPS, OPS, WARM_OPS};
use otpfleet_benches::{Domain, OP_MS, POLL_STEP_MS, Redeemed, START_MS, verify_request};
use otpfleet_protocol::{BatchRequest, OtpCode, RedeemRequest, VerifyRequest};
use otpfleet_server::domain::secrets::{Entropy, Secrets};
use std::hint::black_box;

fn hmac_setup() -> (Secrets, Vec<OtpCode>) {
    let secrets = Secrets::random();
    for code in (0..WARM_OPS).map(|_| Entropy::Os.otp()) {
        black_box(secrets.otp_key(&code));
    }
    (secrets, (0..OPS).map(|_| Entropy::Os.otp()).collect())
}

// The reference: one HMAC-SHA256 of an OTP with the server's OTP key, as redeem computes it.
#[library_benchmark]
#[bench::ops(setup = hmac_setup)]
fn hmac_otp((secrets, codes): (Secrets, Vec<OtpCode>)) -> (Secrets, Vec<OtpCode>) {
    for code in &codes {
        black_box(secrets.otp_key(black_box(code)));
    }
    (secrets, codes)
}

fn verify_setup() -> (Domain, Vec<VerifyRequest>) {
    let d = Domain::new();
    for i in 0..WARM_OPS {
        let _ = black_box(
            d.core()
                .verify(&verify_request(&format!("WARM-{i:04}")), OP_MS),
        );
    }
    let reqs = (0..OPS)
        .map(|i| verify_request(&format!("BENCH-{i:04}")))
        .collect();
    (d, reqs)
}

#[library_benchmark]
#[bench::ops(setup = verify_setup)]
fn verify((d, reqs): (Domain, Vec<VerifyRequest>)) -> (Domain, Vec<VerifyRequest>) {
    for req in &reqs {
        let _ = black_box(d.core().verify(black_box(req), OP_MS));
    }
    (d, reqs)
}

fn issue_setup(per_batch: usize, batches: usize) -> (Domain, Vec<BatchRequest>) {
    let d = Domain::new();
    for req in d.batch_requests(WARM_OPS / per_batch, per_batch) {
        let _ = black_box(d.core().create_batch(req, START_MS, None));
    }
    let reqs = d.batch_requests(batches, per_batch);
    (d, reqs)
}

fn issue_one_setup() -> (Domain, Vec<BatchRequest>) {
    issue_setup(1, OPS)
}

fn issue_batch_setup() -> (Domain, Vec<BatchRequest>) {
    issue_setup(100, BATCH_OPS)
}

// Generating OTPs for one account (a batch of one).
#[library_benchmark]
#[bench::ops(setup = issue_one_setup)]
fn issue_1((d, reqs): (Domain, Vec<BatchRequest>)) -> Domain {
    for req in reqs {
        let _ = black_box(d.core().create_batch(black_box(req), START_MS, None));
    }
    d
}

// Generating OTPs for a batch of 100 accounts.
#[library_benchmark]
#[bench::ops(setup = issue_batch_setup)]
fn issue_100((d, reqs): (Domain, Vec<BatchRequest>)) -> Domain {
    for req in reqs {
        let _ = black_box(d.core().create_batch(black_box(req), START_MS, None));
    }
    d
}

fn redeem_setup() -> (Domain, Vec<RedeemRequest>, Secrets) {
    let d = Domain::new();
    d.redeemed(WARM_OPS);
    let reqs = d.redeem_requests(OPS);
    (d, reqs, Secrets::random())
}

#[library_benchmark]
#[bench::ops(setup = redeem_setup)]
fn redeem(
    (d, reqs, extra): (Domain, Vec<RedeemRequest>, Secrets),
) -> (Domain, Vec<RedeemRequest>, Secrets) {
    for req in &reqs {
        let _ = black_box(d.core().redeem(black_box(req), OP_MS));
        if cfg!(feature = "plant-slowdown") {
            // The planted slowdown: one more HMAC of the OTP per redemption.
            if let Ok(code) = OtpCode::parse(&req.otp) {
                black_box(extra.otp_key(&code));
            }
        }
    }
    (d, reqs, extra)
}

fn poll_setup() -> (Domain, Vec<Redeemed>) {
    let d = Domain::new();
    for r in d.redeemed(WARM_OPS) {
        let _ = black_box(
            d.core()
                .poll(&r.request_id, &r.poll_token, START_MS + POLL_STEP_MS),
        );
    }
    let requests = d.redeemed(OPS);
    (d, requests)
}

#[library_benchmark]
#[bench::ops(setup = poll_setup)]
fn poll((d, requests): (Domain, Vec<Redeemed>)) -> (Domain, Vec<Redeemed>) {
    for r in &requests {
        let answer = d
            .core()
            .poll(&r.request_id, &r.poll_token, START_MS + POLL_STEP_MS);
        let _ = black_box(answer);
    }
    (d, requests)
}

fn approve_setup() -> (Domain, Vec<Redeemed>) {
    let d = Domain::new();
    d.approved(WARM_OPS);
    let requests = d.redeemed(OPS);
    (d, requests)
}

#[library_benchmark]
#[bench::ops(setup = approve_setup)]
fn approve((d, requests): (Domain, Vec<Redeemed>)) -> (Domain, Vec<Redeemed>) {
    for r in &requests {
        let _ = black_box(
            d.core()
                .approve(black_box(&r.request_id), None, OP_MS, None),
        );
    }
    (d, requests)
}

fn sign_in_setup() -> (Domain, Vec<Redeemed>) {
    let d = Domain::new();
    for r in d.approved(WARM_OPS) {
        let _ = black_box(d.core().sign_in(&r.request_id, &r.poll_token, OP_MS));
    }
    let requests = d.approved(OPS);
    (d, requests)
}

#[library_benchmark]
#[bench::ops(setup = sign_in_setup)]
fn sign_in((d, requests): (Domain, Vec<Redeemed>)) -> (Domain, Vec<Redeemed>) {
    for r in &requests {
        let _ = black_box(d.core().sign_in(&r.request_id, &r.poll_token, OP_MS));
    }
    (d, requests)
}

library_benchmark_group!(
    name = hot_path;
    benchmarks = hmac_otp, verify, issue_1, issue_100, redeem, poll, approve, sign_in
);

main!(library_benchmark_groups = hot_path);
