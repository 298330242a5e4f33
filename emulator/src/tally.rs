//! Shared counters of a run: faults, unexpected answers, gauges of what consoles are doing.

use otpfleet_reports::{Faults, Outcome, Outcomes, Violation};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fault counter.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    HdmiMissing,
    HdmiRecovered,
    Uncertified,
    OtpTypo,
    ManualSetup,
    LateInstaller,
    Network,
    SlowDown,
}

/// What consoles are doing right now (as they see it), for timelines.
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    /// Arrived and not yet verified (booting, failed verification awaiting the installer).
    InVerification,
    /// Redeemed and waiting for an admin's decision.
    AwaitingApproval,
    /// Signed in so far (cumulative).
    SignedIn,
    /// Expired so far (cumulative).
    Expired,
}

/// The state of a run at one moment, from the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GaugeReading {
    pub in_verification: u64,
    pub awaiting_approval: u64,
    pub signed_in: u64,
    pub expired: u64,
}

/// Counters shared by every console and admin of a run.
#[derive(Debug, Default)]
pub struct Tally {
    faults: [AtomicU64; 8],
    gauges: [AtomicU64; 4],
    /// Deepest approval queue seen, and when.
    queue_peak: Mutex<(u64, Option<tokio::time::Instant>)>,
    /// When an admin last found requests awaiting approval or decided one.
    admins_worked: Mutex<Option<tokio::time::Instant>>,
    errors: Mutex<BTreeMap<String, u64>>,
    violations: Mutex<Vec<Violation>>,
    /// The consoles that ended so far, by outcome.
    outcomes: Mutex<Outcomes>,
    /// Admin time spent on decisions (approvals and rejections), ms.
    decision_ms: AtomicU64,
    /// Admin time spent regenerating OTPs, ms.
    regeneration_ms: AtomicU64,
    /// OTPs the server generated for the run (a ticket each).
    otps_issued: AtomicU64,
    /// Consoles whose installer arrived so far (launched, or dropped at the in-flight bound).
    arrivals: AtomicU64,
}

impl Tally {
    pub fn fault(&self, fault: Fault) {
        self.faults[fault as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer a console or admin did not expect, or a transport failure, by kind.
    pub fn error(&self, kind: impl Into<String>) {
        *self.errors.lock().entry(kind.into()).or_default() += 1;
    }

    pub fn up(&self, gauge: Gauge) {
        let now = self.gauges[gauge as usize].fetch_add(1, Ordering::Relaxed) + 1;
        if matches!(gauge, Gauge::AwaitingApproval) {
            let mut peak = self.queue_peak.lock();
            if now > peak.0 {
                *peak = (now, Some(tokio::time::Instant::now()));
            }
        }
    }

    pub fn down(&self, gauge: Gauge) {
        self.gauges[gauge as usize].fetch_sub(1, Ordering::Relaxed);
    }

    pub fn gauges(&self) -> GaugeReading {
        let g = |gauge: Gauge| self.gauges[gauge as usize].load(Ordering::Relaxed);
        GaugeReading {
            in_verification: g(Gauge::InVerification),
            awaiting_approval: g(Gauge::AwaitingApproval),
            signed_in: g(Gauge::SignedIn),
            expired: g(Gauge::Expired),
        }
    }

    /// The deepest approval queue consoles saw, and when.
    pub fn queue_peak(&self) -> (u64, Option<tokio::time::Instant>) {
        *self.queue_peak.lock()
    }

    /// An admin found requests awaiting approval, or decided one, now.
    pub fn admin_worked(&self) {
        *self.admins_worked.lock() = Some(tokio::time::Instant::now());
    }

    /// An admin spent `ms` deciding a request.
    pub fn admin_time(&self, ms: u64) {
        self.decision_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// An admin spent `ms` regenerating an OTP.
    pub fn regeneration_time(&self, ms: u64) {
        self.regeneration_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The server generated `n` OTPs for the run.
    pub fn otps_issued(&self, n: u64) {
        self.otps_issued.fetch_add(n, Ordering::Relaxed);
    }

    /// OTPs the server generated for the run so far.
    pub fn otps_issued_so_far(&self) -> u64 {
        self.otps_issued.load(Ordering::Relaxed)
    }

    /// Admin time spent so far, ms: on decisions, and on regenerating OTPs.
    pub fn admin_ms(&self) -> (u64, u64) {
        (
            self.decision_ms.load(Ordering::Relaxed),
            self.regeneration_ms.load(Ordering::Relaxed),
        )
    }

    /// When an admin last found work, if one ever did.
    pub fn admins_last_worked(&self) -> Option<tokio::time::Instant> {
        *self.admins_worked.lock()
    }

    pub fn faults(&self) -> Faults {
        let f = |fault: Fault| self.faults[fault as usize].load(Ordering::Relaxed);
        Faults {
            hdmi_ingest_missing: f(Fault::HdmiMissing),
            hdmi_recovered: f(Fault::HdmiRecovered),
            uncertified: f(Fault::Uncertified),
            otp_typos: f(Fault::OtpTypo),
            manual_setup: f(Fault::ManualSetup),
            late_installers: f(Fault::LateInstaller),
            network_faults: f(Fault::Network),
            slow_downs: f(Fault::SlowDown),
        }
    }

    /// A console's installer arrived now.
    pub fn arrived(&self) {
        self.arrivals.fetch_add(1, Ordering::Relaxed);
    }

    /// Consoles whose installer arrived so far.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// A console ended with `outcome`.
    pub fn ended(&self, outcome: Outcome) {
        self.outcomes.lock().add(outcome);
    }

    /// The consoles that ended so far, by outcome.
    pub fn outcomes(&self) -> Outcomes {
        *self.outcomes.lock()
    }

    /// A promise of the contract the server broke.
    pub fn violation(&self, kind: &str, serials: &[&str], detail: String) {
        self.violations.lock().push(Violation {
            kind: kind.to_owned(),
            serials: serials.iter().map(|s| (*s).to_owned()).collect(),
            detail,
        });
    }

    /// The broken promises, in a stable order.
    pub fn violations(&self) -> Vec<Violation> {
        let mut v = self.violations.lock().clone();
        v.sort();
        v
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().clone()
    }
}
