//! Request counters and the Prometheus text exposition of `/metrics`.
//!
//! Written by hand rather than with a metrics crate: the counters are a fixed table of atomics
//! (route x status), so counting a request is one relaxed `fetch_add` and no lock or map.

use crate::domain::Stats;
use otpfleet_protocol::ROUTES;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The statuses counted one by one; any other lands in `other`.
const STATUSES: &[u16] = &[
    200, 201, 202, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 503,
];

/// Requests by route and status.
#[derive(Debug)]
pub struct Metrics {
    /// `(ROUTES.len() + 1) x (STATUSES.len() + 1)`: the last route row is "unmatched", the last
    /// status column is "other".
    requests: Vec<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let cells = (ROUTES.len() + 1) * (STATUSES.len() + 1);
        Metrics {
            requests: (0..cells).map(|_| AtomicU64::new(0)).collect(),
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
        self.requests[row * (STATUSES.len() + 1) + col].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: request counters, accounts by provisioning state, approval queue.
    pub fn render(
        &self,
        stats: &Stats,
        (failures, by_source, global): (u64, u64, u64),
        bound: &otpfleet_protocol::GuessingBound,
        journal: Option<crate::journal::JournalStats>,
    ) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str(
            "# HELP otpfleet_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE otpfleet_http_requests_total counter\n");
        let cols = STATUSES.len() + 1;
        for (row, cells) in self.requests.chunks(cols).enumerate() {
            let (method, path) = ROUTES
                .get(row)
                .map_or(("", "unmatched"), |r| (r.method, r.path));
            for (col, cell) in cells.iter().enumerate() {
                let n = cell.load(Ordering::Relaxed);
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
        out.push_str("# HELP otpfleet_accounts Resource accounts, by provisioning state.\n");
        out.push_str("# TYPE otpfleet_accounts gauge\n");
        for (state, n) in &stats.by_provisioning {
            let _ = writeln!(out, "otpfleet_accounts{{provisioning=\"{state}\"}} {n}");
        }
        out.push_str(
            "# HELP otpfleet_live_otps OTPs generated and neither redeemed nor expired.\n",
        );
        out.push_str("# TYPE otpfleet_live_otps gauge\n");
        let _ = writeln!(out, "otpfleet_live_otps {}", stats.live_otps);
        out.push_str("# HELP otpfleet_approval_queue_depth Requests awaiting approval.\n");
        out.push_str("# TYPE otpfleet_approval_queue_depth gauge\n");
        let _ = writeln!(
            out,
            "otpfleet_approval_queue_depth {}",
            stats.approval_queue_depth
        );
        out.push_str("# HELP otpfleet_redeem_failures_total Failed redemptions (malformed or unknown OTPs).\n");
        out.push_str("# TYPE otpfleet_redeem_failures_total counter\n");
        let _ = writeln!(out, "otpfleet_redeem_failures_total {failures}");
        out.push_str("# HELP otpfleet_redeem_throttled_total Redemptions refused with too_many_attempts, by scope.\n");
        out.push_str("# TYPE otpfleet_redeem_throttled_total counter\n");
        let _ = writeln!(
            out,
            "otpfleet_redeem_throttled_total{{scope=\"source\"}} {by_source}"
        );
        let _ = writeln!(
            out,
            "otpfleet_redeem_throttled_total{{scope=\"global\"}} {global}"
        );
        out.push_str("# HELP otpfleet_guessing_bound Bound on the chance that guessing hits a live OTP within one validity period.\n");
        out.push_str("# TYPE otpfleet_guessing_bound gauge\n");
        let _ = writeln!(
            out,
            "otpfleet_guessing_bound {:e}",
            bound.success_probability
        );
        if let Some(j) = journal {
            out.push_str("# HELP otpfleet_journal_entries Entries in the journal (the audit log), committed.\n");
            out.push_str("# TYPE otpfleet_journal_entries gauge\n");
            let _ = writeln!(out, "otpfleet_journal_entries {}", j.entries);
            out.push_str("# HELP otpfleet_journal_commits_total Journal commits (one fsync each, many changes per commit under load) since the server started.\n");
            out.push_str("# TYPE otpfleet_journal_commits_total counter\n");
            let _ = writeln!(out, "otpfleet_journal_commits_total {}", j.commits);
            out.push_str("# HELP otpfleet_journal_commit_seconds_total Time spent committing the journal since the server started.\n");
            out.push_str("# TYPE otpfleet_journal_commit_seconds_total counter\n");
            let _ = writeln!(
                out,
                "otpfleet_journal_commit_seconds_total {}",
                j.commit_seconds
            );
        }
        out
    }
}
