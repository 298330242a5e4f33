//! Request counters and the Prometheus text exposition of `/metrics`.
//!
//! Written by hand rather than with a metrics crate: the counters are a fixed table of atomics
//! (route x status), so counting a request is one relaxed `fetch_add` and no lock or map. The
//! table is kept once per shard of threads, each on cache lines of its own, and summed when
//! read: requests answered on different cores do not write one cache line in turn.

use crate::domain::Stats;
use otpfleet_protocol::ROUTES;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The statuses counted one by one; any other lands in `other`.
const STATUSES: &[u16] = &[
    200, 201, 202, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 503,
];

/// Requests by route and status.
#[derive(Debug)]
pub struct Metrics {
    /// One table per shard, `stride` cells apart: `(ROUTES.len() + 1) x (STATUSES.len() + 1)`
    /// cells (the last route row is "unmatched", the last status column is "other"), then a
    /// cache line of padding.
    requests: Vec<AtomicU64>,
    stride: usize,
    /// Times the journal stopped writing, and times the server rebuilt its state after that.
    journal_failures: AtomicU64,
    journal_recoveries: AtomicU64,
}

/// Cells of one table.
const CELLS: usize = (ROUTES.len() + 1) * (STATUSES.len() + 1);

/// Counter tables: a power of two above the cores, at most 64.
fn shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .next_power_of_two()
        .min(64)
}

/// The shard of the calling thread: threads take shards in turn, on their first count.
fn my_shard(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.with(|n| *n) % shards
}

impl Default for Metrics {
    fn default() -> Self {
        // A table, rounded up to whole cache lines of 8 counters, and one line more.
        let stride = CELLS.div_ceil(8) * 8 + 8;
        Metrics {
            requests: (0..stride * shards()).map(|_| AtomicU64::new(0)).collect(),
            stride,
            journal_failures: AtomicU64::new(0),
            journal_recoveries: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the index in `ROUTES`, `None` for no route.
    pub fn count(&self, route: Option<usize>, status: u16) {
        let row = route.unwrap_or(ROUTES.len()).min(ROUTES.len());
        let col = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        let shard = my_shard(self.requests.len() / self.stride);
        self.requests[shard * self.stride + row * (STATUSES.len() + 1) + col]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Requests by cell, summed over the shards.
    fn totals(&self) -> Vec<u64> {
        let mut totals = vec![0; CELLS];
        for table in self.requests.chunks(self.stride) {
            for (total, cell) in totals.iter_mut().zip(table) {
                *total += cell.load(Ordering::Relaxed);
            }
        }
        totals
    }

    pub fn journal_failed(&self) {
        self.journal_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn journal_recovered(&self) {
        self.journal_recoveries.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: request counters, connections, throttling and the journal; with
    /// `sensitive` (admins only) also accounts by provisioning state, live OTPs, the approval
    /// queue and the guessing bound.
    pub fn render(
        &self,
        sensitive: Option<(&Stats, &otpfleet_protocol::GuessingBound)>,
        throttle: crate::domain::throttle::ThrottleCounts,
        journal: Option<crate::journal::JournalStats>,
        connections: &super::Connections,
    ) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str(
            "# HELP otpfleet_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE otpfleet_http_requests_total counter\n");
        let cols = STATUSES.len() + 1;
        for (row, cells) in self.totals().chunks(cols).enumerate() {
            let (method, path) = ROUTES
                .get(row)
                .map_or(("", "unmatched"), |r| (r.method, r.path));
            for (col, &n) in cells.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let status = STATUSES.get(col).map_or("other".to_owned(), u16::to_string);
                let _ = writeln!(
                    out,
                    "otpfleet_http_requests_total{{method=\"{method}\",route=\"{path}\",status=\"{status}\"}} {n}"
                );
            }
        }
        metric(
            &mut out,
            "otpfleet_redeem_failures_total",
            COUNTER,
            "Failed redemptions (malformed or unknown OTPs).",
            throttle.failures,
        );
        let (by_source, global) = (throttle.throttled_source, throttle.throttled_global);
        let _ = writeln!(
            out,
            "# HELP otpfleet_redeem_throttled_total Redemptions refused with too_many_attempts, by scope.\n\
             # TYPE otpfleet_redeem_throttled_total counter\n\
             otpfleet_redeem_throttled_total{{scope=\"source\"}} {by_source}\n\
             otpfleet_redeem_throttled_total{{scope=\"global\"}} {global}"
        );
        if let Some((stats, bound)) = sensitive {
            render_accounts(&mut out, stats, bound);
        }
        metric(
            &mut out,
            "otpfleet_connections_open",
            GAUGE,
            "Client connections open now.",
            connections.open(),
        );
        metric(
            &mut out,
            "otpfleet_connections_refused_total",
            COUNTER,
            "Connections refused at the server's bounds (in all, or per client address).",
            connections.refused(),
        );
        if let Some(j) = journal {
            metric(
                &mut out,
                "otpfleet_journal_entries",
                GAUGE,
                "Entries in the journal (the audit log), committed.",
                j.entries,
            );
            metric(
                &mut out,
                "otpfleet_journal_commits_total",
                COUNTER,
                "Journal commits (one fsync each, many changes per commit under load) since the journal was last opened.",
                j.commits,
            );
            metric(
                &mut out,
                "otpfleet_journal_commit_seconds_total",
                COUNTER,
                "Time spent committing the journal since it was last opened.",
                j.commit_seconds,
            );
            metric(
                &mut out,
                "otpfleet_journal_writable",
                GAUGE,
                "1 while the journal takes changes; 0 after a write failed, until the server has rebuilt its state from a journal it can write again.",
                u8::from(j.writable),
            );
            metric(
                &mut out,
                "otpfleet_journal_failures_total",
                COUNTER,
                "Times a journal write failed (a full disk, an I/O error) since the server started; changes were refused until it recovered.",
                self.journal_failures.load(Ordering::Relaxed),
            );
            metric(
                &mut out,
                "otpfleet_journal_recoveries_total",
                COUNTER,
                "Times the server rebuilt its state from the journal after a write failure.",
                self.journal_recoveries.load(Ordering::Relaxed),
            );
        }
        out
    }
}

/// The gauges of what the accounts hold (admins only).
fn render_accounts(out: &mut String, stats: &Stats, bound: &otpfleet_protocol::GuessingBound) {
    out.push_str("# HELP otpfleet_accounts Resource accounts, by provisioning state.\n");
    out.push_str("# TYPE otpfleet_accounts gauge\n");
    for (state, n) in &stats.by_provisioning {
        let _ = writeln!(out, "otpfleet_accounts{{provisioning=\"{state}\"}} {n}");
    }
    metric(
        out,
        "otpfleet_live_otps",
        GAUGE,
        "OTPs generated and neither redeemed nor expired.",
        stats.live_otps,
    );
    metric(
        out,
        "otpfleet_approval_queue_depth",
        GAUGE,
        "Requests awaiting approval.",
        stats.approval_queue_depth,
    );
    metric(
        out,
        "otpfleet_guessing_bound",
        GAUGE,
        "Bound on the chance that guessing hits a live OTP within one validity period.",
        format!("{:e}", bound.success_probability),
    );
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// One metric without labels: its help, its type and its value.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
