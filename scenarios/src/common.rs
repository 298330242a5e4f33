//! What the scenarios share: the [`Harness`] every transaction closes over (recorder, tallies,
//! pre-issued OTPs, the admins' desk), each goose user's own state, and the transactions
//! themselves (`console.rs`: verify, redeem, poll, sign in; `admin.rs`: review, generate,
//! export, list the queue, decide), which send through `http.rs`.

pub(crate) mod admin;
pub(crate) mod console;
pub(crate) mod http;

use crate::record::Tally;
use crate::tickets::{Handed, TicketQueue};
use goose::prelude::*;
use otpfleet_client::Desk;
use otpfleet_protocol::{RequestStatus, RequestView};
use otpfleet_reports::Recorder;
use parking_lot::Mutex;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Settings the transactions read.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// The run's seed: names its accounts and seeds each user's random stream.
    pub seed: u64,
    pub admin_token: String,
    /// Accounts per OTP batch of the `issue` admins.
    pub batch_size: usize,
    /// Share of requests the `approve` admins reject.
    pub reject_rate: f64,
    /// Requests an admin lists at a time.
    pub page_limit: usize,
    /// Most polls a console makes before it gives up waiting (an `abandoned` outcome).
    pub max_polls: u32,
    /// An admin's pause when the queue holds nothing it can take.
    pub idle: Duration,
    /// An `issue` admin's pause after each wizard page (0 in `issue`, a person's pace in
    /// `mixed`).
    pub issue_think: Duration,
    /// When the attack is planned to end, from the first transaction any user runs (`None`
    /// with `--iterations`): users then stop their deliberate waits and start no new flow, so
    /// goose's shutdown, which waits for each user's transaction, is not held up by consoles
    /// still polling, and no pre-issued OTP is spent on a flow that cannot finish.
    pub wind_down_after: Option<Duration>,
    /// Coordinated-omission correction on (as goose's `--co-mitigation`): a request slower than
    /// its user's cadence adds synthetic samples to the response view.
    pub co_mitigation: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            seed: 1,
            admin_token: String::new(),
            batch_size: 25,
            reject_rate: 0.02,
            page_limit: 50,
            max_polls: 30,
            idle: Duration::from_millis(100),
            issue_think: Duration::ZERO,
            wind_down_after: None,
            co_mitigation: false,
        }
    }
}

/// Counters of the harness's own background work (not goose's, not measured).
#[derive(Debug, Default)]
pub struct Background {
    /// Requests the feeder put in the approval queue.
    pub fed: AtomicU64,
    /// Requests the harness's approver approved (the `redeem` scenario).
    pub approved: AtomicU64,
}

/// Everything the transactions of a run share. One per run: nothing global.
#[derive(Debug)]
pub struct Harness {
    pub config: HarnessConfig,
    pub recorder: Recorder,
    pub tally: Tally,
    /// OTPs for the consoles (goose users of `redeem`).
    pub tickets: TicketQueue,
    /// Accounts the `issue` admins generate OTPs for (never redeemed, so regenerating them
    /// spoils no ticket).
    pub issue_accounts: Vec<String>,
    issue_cursor: AtomicUsize,
    pub desk: Desk,
    pub background: Background,
    /// When the first user ran its first transaction (goose's own clock starts about then).
    started: OnceLock<Instant>,
}

impl Harness {
    pub fn new(config: HarnessConfig, tickets: TicketQueue, issue_accounts: Vec<String>) -> Self {
        Harness {
            config,
            recorder: Recorder::default(),
            tally: Tally::default(),
            tickets,
            issue_accounts,
            issue_cursor: AtomicUsize::new(0),
            desk: Desk::default(),
            background: Background::default(),
            started: OnceLock::new(),
        }
    }

    /// The attack so far, for `load --dashboard`'s page: seconds since the first transaction,
    /// the consoles (users of the redeem flow) started and ended (by outcome; once the attack
    /// is `over`, as the report counts them), requests, errors and generator lateness per step
    /// so far, and the last closed interval's rates and percentiles per step.
    pub fn snapshot(&self, over: bool) -> serde_json::Value {
        let outcomes = match over {
            true => self.tally.outcomes(),
            false => self.tally.ended_so_far(),
        };
        serde_json::json!({
            "kind": "load",
            "seed": self.config.seed,
            "elapsed_s": self.started.get().map_or(0.0, |s| s.elapsed().as_secs_f64()),
            "consoles": self.tally.consoles(),
            "ended": outcomes.total(),
            "outcomes": outcomes,
            "steps": self.recorder.steps_so_far(),
            "interval": self.recorder.last_point(),
        })
    }

    /// When the attack winds down; its clock starts with the first transaction of any user.
    fn wind_down_at(&self) -> Option<Instant> {
        let started = *self.started.get_or_init(Instant::now);
        self.config
            .wind_down_after
            .map(|after| started + after + WIND_DOWN_SLACK)
    }

    /// Whether the attack is ending: its planned end passed, or goose's killswitch (a failed
    /// `--threshold`, Ctrl-C) was triggered.
    pub fn winding_down(&self) -> bool {
        goose::is_killswitch_triggered()
            || self.wind_down_at().is_some_and(|at| Instant::now() >= at)
    }

    /// At the start of an iteration: when the attack is ending, waits a moment for goose to
    /// stop the user (it checks between transactions) and answers true: start nothing new.
    pub(crate) async fn wait_out(&self) -> bool {
        if !self.winding_down() {
            return false;
        }
        tokio::time::sleep(WIND_DOWN_NAP).await;
        true
    }

    /// The next `batch_size` accounts of the issue pool, wrapping around (generating again
    /// replaces an account's OTP, as an admin re-running the wizard does).
    pub(crate) fn next_batch(&self) -> Vec<String> {
        let pool = &self.issue_accounts;
        if pool.is_empty() {
            return Vec::new();
        }
        let n = self.config.batch_size.min(pool.len());
        let start = self.issue_cursor.fetch_add(n, Ordering::Relaxed);
        (0..n)
            .map(|k| pool[(start + k) % pool.len()].clone())
            .collect()
    }
}

/// Past the planned end before users wind down (goose's clock starts a moment after ours).
const WIND_DOWN_SLACK: Duration = Duration::from_millis(500);
/// A winding-down user's wait between iterations, until goose stops it.
const WIND_DOWN_NAP: Duration = Duration::from_millis(100);

/// A console's first boot in progress.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleFlow {
    pub handed: Handed,
    pub started: Instant,
    pub verification_token: Option<String>,
    pub request: Option<Redeemed>,
}

/// A redeemed OTP: the request the console polls.
#[derive(Debug, Clone)]
pub(crate) struct Redeemed {
    pub id: String,
    pub poll_token: String,
    pub status: RequestStatus,
    pub interval_s: u32,
}

/// An `issue` admin's wizard in progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchFlow {
    /// What the review said would be generated.
    pub account_ids: Vec<String>,
    pub batch_id: Option<String>,
}

/// How fast a user goes round its scenario: the expected interval of the coordinated-omission
/// correction, as goose's `average` mitigation takes it (after 3 iterations), but with the
/// user's deliberate waits (poll intervals, idle admins) left out and in microseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cadence {
    iterations: u32,
    busy: Duration,
    started: Option<Instant>,
    waited: Duration,
}

impl Cadence {
    pub fn begin_iteration(&mut self, now: Instant) {
        if let Some(started) = self.started {
            let busy = now
                .saturating_duration_since(started)
                .saturating_sub(self.waited);
            self.iterations = self.iterations.saturating_add(1);
            self.busy += busy;
        }
        self.started = Some(now);
        self.waited = Duration::ZERO;
    }

    pub fn waited(&mut self, d: Duration) {
        self.waited += d;
    }

    pub fn expected(&self) -> Option<Duration> {
        (self.iterations >= 3).then(|| self.busy / self.iterations)
    }
}

/// One goose user's state, kept in its session data.
#[derive(Debug, Clone)]
pub(crate) struct UserState {
    pub rng: ChaCha8Rng,
    pub cadence: Cadence,
    pub console: Option<ConsoleFlow>,
    pub batch: Option<BatchFlow>,
    /// The request this admin took from the queue.
    pub claimed: Option<RequestView>,
    /// This user found the tickets gone (counted once).
    pub out_of_tickets: bool,
}

#[derive(Debug, Clone)]
struct Session(Arc<Mutex<UserState>>);

/// The state of `user`, made on first use; its random stream derives from (seed, user index).
pub(crate) fn state(user: &mut GooseUser, seed: u64) -> Arc<Mutex<UserState>> {
    if let Some(Session(s)) = user.get_session_data::<Session>() {
        return Arc::clone(s);
    }
    let index = user.weighted_users_index as u64;
    let s = Arc::new(Mutex::new(UserState {
        rng: ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        cadence: Cadence::default(),
        console: None,
        batch: None,
        claimed: None,
        out_of_tickets: false,
    }));
    user.set_session_data(Session(Arc::clone(&s)));
    s
}

/// Sleeps on purpose (a poll interval, an idle admin), left out of the user's cadence, but
/// not past the attack's planned end. Answers false when the attack is winding down.
pub(crate) async fn pause(h: &Harness, state: &Mutex<UserState>, d: Duration) -> bool {
    if !d.is_zero() {
        let now = Instant::now();
        let until = h.wind_down_at().map_or(now + d, |at| (now + d).min(at));
        tokio::time::sleep_until(until).await;
        state
            .lock()
            .cadence
            .waited(until.saturating_duration_since(now));
    }
    !h.winding_down()
}

/// A goose transaction named `$name`, run `$sequence`-th in each iteration, that calls
/// `$step(user, harness)` (an `async fn(&mut GooseUser, Arc<Harness>) -> TransactionResult`).
macro_rules! step {
    ($h:expr, $name:literal, $sequence:expr, $step:path) => {{
        let h = std::sync::Arc::clone($h);
        let f: goose::goose::TransactionFunction =
            std::sync::Arc::new(move |user| Box::pin($step(user, std::sync::Arc::clone(&h))));
        goose::goose::Transaction::new(f)
            .set_name($name)
            .set_sequence($sequence)
    }};
}
pub(crate) use step;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_leaves_deliberate_waits_out() {
        let mut c = Cadence::default();
        let t0 = Instant::now();
        c.begin_iteration(t0);
        for i in 1..=3u32 {
            c.waited(Duration::from_millis(1000));
            c.begin_iteration(t0 + Duration::from_millis(1010) * i);
        }
        assert_eq!(c.expected(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn batches_walk_the_pool_and_wrap() {
        let config = HarnessConfig {
            batch_size: 3,
            ..HarnessConfig::default()
        };
        let pool = (0..5).map(|i| format!("acc_{i}")).collect();
        let h = Harness::new(config, TicketQueue::default(), pool);
        assert_eq!(h.next_batch(), ["acc_0", "acc_1", "acc_2"]);
        assert_eq!(h.next_batch(), ["acc_3", "acc_4", "acc_0"]);
    }
}
