//! Fixtures for the otpfleet benches, shared by the criterion benches (`benches/domain.rs`,
//! `benches/http.rs`), the callgrind gate (`benches/callgrind.rs`) and the gate's comparison
//! tool (`src/bin/perf-gate.rs`); [`ratios`] turns criterion's results into the figures of
//! `docs/performance.md` (`src/bin/bench-ratios.rs`).
//!
//! Everything a measured operation consumes is made before the timed section: an OTP is redeemed
//! once, a request is approved once, credentials are handed over once, and a request is polled
//! no faster than its interval, so every measured call takes the success path a console takes.

pub mod gate;
pub mod loopback;
pub mod ratios;

use otpfleet_protocol::limits::MAX_ROWS_PER_REQUEST;
use otpfleet_protocol::{
    AccountInput, BatchRequest, License, PasswordMode, Preferences, Readiness, RedeemRequest,
    VerifyRequest,
};
use otpfleet_server::domain::accounts::ImportRow;
use otpfleet_server::domain::batches::BatchOutcome;
use otpfleet_server::http::Served;
use otpfleet_server::{App, Clock, Core, ManualClock};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// 2026-11-21T08:00:00Z: the fixtures' clock starts here.
pub const START_MS: u64 = 1_795_248_000_000;
/// When measured redemptions, approvals and hand-overs happen: a second after the fixtures'
/// OTPs were generated and their console verified (verification tokens last an hour).
pub const OP_MS: u64 = START_MS + 1_000;
/// The polling interval the server tells consoles (`ServerConfig::default`), in milliseconds.
/// A request polled again within 90% of it answers `slow_down`, so pooled polls step by this.
pub const POLL_STEP_MS: u64 = 5_000;
/// The admin token of the fixtures' HTTP server.
pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// A redeemed OTP, as the console holds it: the request id and its poll token.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub request_id: String,
    pub poll_token: String,
}

/// A reference server: a domain core inside an [`App`], so that the same fixture can be served
/// over HTTP. The fixture acts at the time of its clock, which starts at [`START_MS`];
/// in-process benches never move it, HTTP benches step it for polling.
///
/// OTPs are valid for the longest allowed window (336 hours) so that long poll runs, which step
/// the clock [`POLL_STEP_MS`] per pass over their pool, never reach expiry.
#[derive(Debug)]
pub struct Domain {
    pub app: Arc<App>,
    /// What the app serves (an in-memory app never replaces it).
    served: Arc<Served>,
    pub clock: ManualClock,
    next_room: AtomicUsize,
}

impl Default for Domain {
    fn default() -> Self {
        Domain::new()
    }
}

impl Domain {
    pub fn new() -> Domain {
        let clock = ManualClock::new(START_MS);
        let server = otpfleet_server::assemble(
            otpfleet_server::ServerConfig::default(),
            otpfleet_server::Catalogue::builtin(),
            &otpfleet_server::Storage::InMemory,
            Arc::new(clock.clone()),
            &[(ADMIN_TOKEN, "token-file")],
        )
        .expect("fixture: an in-memory server assembles");
        let served = server.app.served();
        served
            .core
            .set_preferences(
                Preferences {
                    otp_validity_hours: 336,
                    auto_approve: false,
                },
                None,
            )
            .expect("fixture: 336 hours is a valid OTP validity");
        Domain {
            served,
            app: Arc::new(server.app),
            clock,
            next_room: AtomicUsize::new(0),
        }
    }

    pub fn core(&self) -> &Core {
        &self.served.core
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Imports `n` pro, ready accounts with fresh upns; answers their ids.
    pub fn accounts(&self, n: usize) -> Vec<String> {
        let first = self.next_room.fetch_add(n, Ordering::Relaxed);
        let mut ids = Vec::with_capacity(n);
        let rooms: Vec<usize> = (first..first + n).collect();
        for chunk in rooms.chunks(MAX_ROWS_PER_REQUEST) {
            let rows = chunk
                .iter()
                .enumerate()
                .map(|(i, room)| ImportRow {
                    line: i + 1,
                    input: AccountInput {
                        upn: format!("room-{room}@contoso.com"),
                        display_name: format!("Room {room}"),
                        license: License::Pro,
                        readiness: Readiness::NoActionNeeded,
                        password: None,
                    },
                })
                .collect();
            let imported = self
                .core()
                .import_accounts(rows, None)
                .expect("fixture: the accounts import");
            ids.extend(imported.results.into_iter().map(|line| line.account_id));
        }
        ids
    }

    /// `batches` generate requests of `per_batch` fresh accounts each, not yet sent.
    pub fn batch_requests(&self, batches: usize, per_batch: usize) -> Vec<BatchRequest> {
        let ids = self.accounts(batches * per_batch);
        ids.chunks(per_batch.max(1)).map(batch_request).collect()
    }

    /// `n` fresh OTPs, as typed by an installer (`XXXX-XXXX-XXXX-XXXX`).
    pub fn otps(&self, n: usize) -> Vec<String> {
        let ids = self.accounts(n);
        let mut otps = Vec::with_capacity(n);
        for chunk in ids.chunks(MAX_ROWS_PER_REQUEST) {
            match self
                .core()
                .create_batch(batch_request(chunk), self.now_ms(), None)
            {
                Ok(BatchOutcome::Created(created)) => {
                    otps.extend(created.generated.into_iter().map(|g| g.otp));
                }
                other => panic!("fixture: generating OTPs failed: {other:?}"),
            }
        }
        assert_eq!(otps.len(), n, "fixture: every account got an OTP");
        otps
    }

    /// `n` redeem requests for fresh OTPs from a console verified now (verification tokens last
    /// an hour).
    pub fn redeem_requests(&self, n: usize) -> Vec<RedeemRequest> {
        let verification_token = self
            .core()
            .verify(&verify_request("BENCH-0001"), self.now_ms())
            .expect("fixture: a Logitech Tap with its HDMI ingest verifies")
            .verification_token;
        self.otps(n)
            .into_iter()
            .map(|otp| RedeemRequest {
                otp,
                verification_token: verification_token.clone(),
            })
            .collect()
    }

    /// `n` requests redeemed now and awaiting approval.
    pub fn redeemed(&self, n: usize) -> Vec<Redeemed> {
        self.redeem_requests(n)
            .iter()
            .map(|req| {
                let answer = self
                    .core()
                    .redeem(req, self.now_ms())
                    .expect("fixture: a fresh OTP redeems");
                Redeemed {
                    request_id: answer.request_id,
                    poll_token: answer.poll_token,
                }
            })
            .collect()
    }

    /// `n` requests redeemed and approved now, their credentials not yet collected.
    pub fn approved(&self, n: usize) -> Vec<Redeemed> {
        let requests = self.redeemed(n);
        for r in &requests {
            self.core()
                .approve(&r.request_id, None, self.now_ms(), None)
                .expect("fixture: a pending request approves");
        }
        requests
    }
}

/// The verification data of a certified console with its HDMI ingest module connected.
pub fn verify_request(serial: &str) -> VerifyRequest {
    VerifyRequest {
        make: "Logitech".into(),
        model: "Tap".into(),
        serial: serial.into(),
        hdmi_ingest: true,
    }
}

fn batch_request(ids: &[String]) -> BatchRequest {
    BatchRequest {
        account_ids: ids.to_vec(),
        password_mode: PasswordMode::AutoGenerate,
        sign_in_csv: None,
        review_only: false,
    }
}

/// Bytes written by [`evict_caches`]: eight times this machine's per-core L2 (4 MiB).
const EVICT_BYTES: usize = 32 << 20;

/// Pushes the fixture's data out of this CPU core's private caches by writing a 32 MiB scratch
/// buffer, so that a measured operation meets its account as a server with thousands of
/// consoles does (not in L1 or L2), however large the pool made just before it.
///
/// Without it the cost per operation depends on the pool size criterion happens to pick: the
/// contention benches measured 2.2 us of CPU per redemption with one thread on a large pool and
/// 0.8 us with eight threads on a small one.
pub fn evict_caches() {
    static SCRATCH: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
    let mut scratch = SCRATCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if scratch.len() < EVICT_BYTES {
        scratch.resize(EVICT_BYTES, 0);
    }
    for line in scratch.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    std::hint::black_box(&mut *scratch);
}

/// What the calling thread spent from [`ThreadUsage::start`] on: time on a CPU
/// (`CLOCK_THREAD_CPUTIME_ID`) and time runnable but waiting for a CPU (Linux
/// `/proc/thread-self/schedstat`, counted as 0 where the kernel does not provide it).
///
/// The contention benches use them to tell contention (more CPU per operation) from a busy
/// machine (threads waiting for a CPU), which wall-clock throughput alone cannot.
#[derive(Debug)]
pub struct ThreadUsage {
    cpu: cpu_time::ThreadTime,
    waiting_ns: Option<u64>,
}

impl ThreadUsage {
    pub fn start() -> ThreadUsage {
        ThreadUsage {
            cpu: cpu_time::ThreadTime::now(),
            waiting_ns: run_delay_ns(),
        }
    }

    /// Nanoseconds on a CPU and nanoseconds waiting for one, since `start`.
    pub fn stop(&self) -> (u64, u64) {
        let on_cpu_ns = u64::try_from(self.cpu.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let waiting_ns = match (self.waiting_ns, run_delay_ns()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => 0,
        };
        (on_cpu_ns, waiting_ns)
    }
}

/// The second field of `/proc/thread-self/schedstat`: nanoseconds this thread has been
/// runnable without a CPU. (Its first field, time on a CPU, lags by up to a scheduler tick,
/// hence `ThreadTime` for that.)
fn run_delay_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Walks a pool of requests round and round, stepping the clock one polling interval per pass,
/// so that no request is polled faster than its interval (which would answer `slow_down`).
#[derive(Debug)]
pub struct PollCursor {
    next: usize,
    len: usize,
    now_ms: u64,
}

impl PollCursor {
    /// For requests last polled (or redeemed) at `since_ms`: the first pass polls one interval
    /// later.
    pub fn new(len: usize, since_ms: u64) -> PollCursor {
        assert!(len > 0, "a poll pool needs at least one request");
        PollCursor {
            next: 0,
            len,
            now_ms: since_ms + POLL_STEP_MS,
        }
    }

    /// The index of the request to poll next and the time to poll it at.
    pub fn advance(&mut self) -> (usize, u64) {
        let at = (self.next, self.now_ms);
        self.next += 1;
        if self.next == self.len {
            self.next = 0;
            self.now_ms += POLL_STEP_MS;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otpfleet_protocol::RequestStatus;

    #[test]
    fn fixtures_take_the_success_path() {
        let d = Domain::new();
        let reqs = d.redeem_requests(3);
        let answer = d.core().redeem(&reqs[0], OP_MS).expect("redeems");
        assert_eq!(answer.status, RequestStatus::AwaitingApproval);

        let polled = d.redeemed(2);
        let mut cursor = PollCursor::new(polled.len(), d.now_ms());
        for _ in 0..6 {
            let (i, now_ms) = cursor.advance();
            let r = &polled[i];
            let poll = d.core().poll(&r.request_id, &r.poll_token, now_ms);
            assert_eq!(
                poll.expect("no slow_down").status,
                RequestStatus::AwaitingApproval
            );
        }

        let approved = d.approved(1);
        let creds = d
            .core()
            .sign_in(&approved[0].request_id, &approved[0].poll_token, OP_MS)
            .expect("hands over");
        assert!(creds.upn.starts_with("room-"));
        assert_eq!(d.batch_requests(2, 3)[1].account_ids.len(), 3);
    }
}
