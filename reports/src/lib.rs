//! Run results: an HDR histogram per step, `report.json` (the machine-readable source of every
//! other view), `report.md` (for a PR comment), `report.html` (charts, self-contained) and the
//! raw histograms in HdrHistogram's interval log format (per step a `<step>.hlog`, corrected, and
//! a `<step>.raw.hlog`, raw; values in microseconds), so standard HdrHistogram tools can read
//! them and runs can be merged without loss (`merge`) and compared (`compare`).
//!
//! **Architecture invariant:** a report is a pure function of what was recorded: no clock is read
//! here, and maps are ordered (`BTreeMap`), so the same run gives the same bytes.

mod check;
mod compare;
mod error;
mod files;
mod folder;
mod gate;
mod histograms;
mod html;
mod intervals;
mod markdown;
mod merge;
pub mod numbers;
mod render;
mod report;
mod run_histograms;
mod sweep;
mod views;

pub use check::{Op, Threshold, Verdict, check};
pub use compare::{
    Allowed, Comparison, DEFAULT_LIMITS, DEFAULT_NOISE_FLOORS, Limit, Limits, NoiseFloors,
    Regression, Skipped, compare, machine_note, write_comparison, write_comparison_json,
};
pub use error::ReportError;
pub use files::{read_text, read_whole, write_whole};
pub use folder::{
    ExtraFile, OutError, Prepared, RunFolder, prepare_out, unused_folder, write_run_folder,
    write_views,
};
pub use gate::{DEFAULT_MIN_SAMPLES, DEFAULT_VIEW, Metric, Stat};
pub use hdrhistogram::Histogram;
pub use histograms::{
    Answered, Flow, HISTOGRAM_MAX_US, Recorder, Step, StepCounts, Summary, View, ViewHistograms,
    new_histogram, summarize, write_histogram_log,
};
pub use html::{CSS as PAGE_CSS, write_html, write_sweep_html};
pub use intervals::{
    IntervalLine, IntervalPoint, IntervalStep, MAX_INTERVALS, interval_length, read_log, total_of,
    write_log,
};
pub use markdown::write_markdown;
pub use merge::{MAX_SHARDS, ShardRun, ShardSettings, merge_run_folders, merge_runs, read_shards};
pub use render::{parse_report, read_report, read_run_folder, render_run_folder, report_path};
pub use report::*;
pub use run_histograms::{RunHistograms, TIME_TO_SIGNED_IN};
pub use sweep::{SWEEP_JSON, Setting, SweepReport, SweepRow, write_sweep_markdown};

/// The JSON Schema (draft 2020-12) of `report.json`, as shipped in `reports/schema/`.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");
