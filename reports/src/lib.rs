//! Run results: an HDR histogram per step, `report.json` (the machine-readable source of every
//! other view), `report.md` (for a PR comment), `report.html` (charts, self-contained) and the
//! raw histograms in HdrHistogram's interval log format (per step a `<step>.hlog`, corrected, and
//! a `<step>.raw.hlog`, raw; values in microseconds), so standard HdrHistogram tools can read
//! them and runs can be merged without loss (`merge`) and compared (`compare`).
//!
//! **Architecture invariant:** a report is a pure function of what was recorded: no clock is read
//! here, and maps are ordered (`BTreeMap`), so the same run gives the same bytes.

mod compare;
mod error;
mod folder;
mod histograms;
mod html;
mod markdown;
mod merge;
mod numbers;
mod render;
mod report;
mod run_histograms;

pub use compare::{Comparison, Limit, Limits, Regression, Stat, compare, write_comparison};
pub use error::ReportError;
pub use folder::{RunFolder, write_run_folder, write_run_folder_from, write_views};
pub use hdrhistogram::Histogram;
pub use histograms::{
    HISTOGRAM_MAX_US, Recorder, Step, Summary, read_histogram_log, summarize, write_histogram_log,
};
pub use html::write_html;
pub use markdown::write_markdown;
pub use merge::{MAX_SHARDS, ShardRun, merge_run_folders, merge_runs, read_shards};
pub use render::{read_report, read_run_folder, render_run_folder, report_path};
pub use report::*;
pub use run_histograms::{RunHistograms, TIME_TO_SIGNED_IN};

/// The JSON Schema (draft 2020-12) of `report.json`, as shipped in `reports/schema/`.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");
