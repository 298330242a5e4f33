//! The three views of a request (response, service, lateness) and their histograms, of the
//! full range: what the recorder, the interval logs and the run folder's histograms share.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest value a histogram holds: 366 days, in microseconds (longer than any rehearsal: OTPs
/// live at most 14 days). A larger value is not clamped: it is counted in `over_range` and left
/// out of the histogram, so it never passes for the maximum.
pub const HISTOGRAM_MAX_US: u64 = 366 * 24 * 3600 * 1_000_000;

/// The most any count of a report may be: far above any run's (2^48, a million consoles
/// for nine years at a request a second each), and low enough that the counts of
/// `MAX_SHARDS` shards add up without wrapping around (2^48 × 10,000 < 2^62).
pub const MAX_COUNT: u64 = 1 << 48;

/// The three views of a request (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Response,
    Service,
    Lateness,
}

impl View {
    pub const ALL: [View; 3] = [View::Response, View::Service, View::Lateness];

    pub fn as_str(self) -> &'static str {
        match self {
            View::Response => "response",
            View::Service => "service",
            View::Lateness => "lateness",
        }
    }

    pub fn parse(text: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// What the view measures, for notes and log comments.
    pub fn meaning(self) -> &'static str {
        match self {
            View::Response => "response time: from the intended send to the answer",
            View::Service => "service time: from the actual send to the answer",
            View::Lateness => "generator lateness: from the intended send to the actual send",
        }
    }
}

/// A new histogram of the full range.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("static bounds are valid")
}

/// One step's three histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewHistograms {
    pub response: Histogram<u64>,
    pub service: Histogram<u64>,
    pub lateness: Histogram<u64>,
}

impl Default for ViewHistograms {
    fn default() -> Self {
        ViewHistograms {
            response: new_histogram(),
            service: new_histogram(),
            lateness: new_histogram(),
        }
    }
}

impl ViewHistograms {
    pub fn get(&self, view: View) -> &Histogram<u64> {
        match view {
            View::Response => &self.response,
            View::Service => &self.service,
            View::Lateness => &self.lateness,
        }
    }

    pub fn get_mut(&mut self, view: View) -> &mut Histogram<u64> {
        match view {
            View::Response => &mut self.response,
            View::Service => &mut self.service,
            View::Lateness => &mut self.lateness,
        }
    }

    /// Adds another step's histograms without loss.
    pub fn add(&mut self, other: &ViewHistograms) -> Result<(), String> {
        for view in View::ALL {
            self.get_mut(view)
                .add(other.get(view))
                .map_err(|e| format!("the {} view does not add up: {e:?}", view.as_str()))?;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        View::ALL.iter().all(|v| self.get(*v).is_empty())
    }
}
