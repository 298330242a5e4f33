//! Run results: an HDR histogram per step, `report.json` (the machine-readable source of every
//! other view), `report.md` (for a PR comment) and the raw histograms in HdrHistogram's interval
//! log format (one `<step>.hlog` per step, values in microseconds), so standard HdrHistogram tools
//! can read them and runs can be merged without loss.
//!
//! **Architecture invariant:** a report is a pure function of what was recorded: no clock is read
//! here, and maps are ordered (`BTreeMap`), so the same run gives the same bytes.

mod folder;
mod histograms;
mod markdown;
mod report;

pub use folder::{RunFolder, write_run_folder};
pub use hdrhistogram::Histogram;
pub use histograms::{HISTOGRAM_MAX_US, Recorder, Step, Summary, read_histogram_log, summarize};
pub use markdown::write_markdown;
pub use report::*;
