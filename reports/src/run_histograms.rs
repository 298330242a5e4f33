//! A run's histograms by name: per request step the three views (totals and interval logs),
//! and the whole-console flows, as recorded (from a `Recorder`) or as read back from a run
//! folder's `.hlog` files. Charts, `render` and `merge` work from this, so a folder rebuilt from
//! its logs gives the same pages as the run that wrote it.
//!
//! File names: `<step>.<view>.hlog` for a request step (`redeem.service.hlog`: view one of
//! `response`, `service`, `lateness`), `<flow>.hlog` for a flow (`time_to_signed_in.hlog`).

use crate::error::ReportError;
use crate::histograms::{View, ViewHistograms, write_histogram_log};
use crate::intervals::{self, IntervalLine, IntervalPoint};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The name of a whole console's flow, whose histogram feeds `time_to_signed_in_s`.
pub const TIME_TO_SIGNED_IN: &str = "time_to_signed_in";

const HLOG: &str = ".hlog";
/// Bounds on what a folder's logs may hold: otpfleet writes 35 logs at most (11 steps × 3
/// views, 2 flows), each of at most `MAX_LOG_LINES` lines of a few kilobytes.
const MAX_HLOG_FILES: usize = 64;
const MAX_HLOG_BYTES: u64 = 64 * 1024 * 1024;

/// Per request step its three views, per flow its histogram (microseconds). Only what recorded
/// something is present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunHistograms {
    /// Totals per step.
    pub steps: BTreeMap<String, ViewHistograms>,
    /// Whole-console durations by flow name.
    pub flows: BTreeMap<String, Histogram<u64>>,
    /// The interval logs per (step, view): the same values as `steps`, interval by interval.
    pub lines: BTreeMap<(String, View), Vec<IntervalLine>>,
}

impl RunHistograms {
    /// Reads every `.hlog` of a run folder.
    pub fn read_dir(dir: &Path) -> Result<RunHistograms, ReportError> {
        let read_err = |source| ReportError::Read {
            path: dir.to_path_buf(),
            reason: source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            if let Some(name) = name.to_str().filter(|n| n.ends_with(HLOG)) {
                names.push(name.to_owned());
            }
        }
        if names.len() > MAX_HLOG_FILES {
            return Err(hlog_error(
                dir,
                format!("more than {MAX_HLOG_FILES} .hlog files: not a run folder"),
            ));
        }
        names.sort();
        let mut out = RunHistograms::default();
        for name in names {
            let path = dir.join(&name);
            let lines = read_log_file(&path)?;
            let total = intervals::total_of(&lines).map_err(|m| hlog_error(&path, m))?;
            let stem = name.strip_suffix(HLOG).unwrap_or(&name);
            let view = stem
                .rsplit_once('.')
                .and_then(|(step, view)| Some((step, View::parse(view)?)));
            match view {
                Some((step, view)) => {
                    *out.steps.entry(step.to_owned()).or_default().get_mut(view) = total;
                    out.lines.insert((step.to_owned(), view), lines);
                }
                None if stem.contains('.') => {
                    return Err(hlog_error(
                        &path,
                        "not a log otpfleet writes (<step>.<response|service|lateness>.hlog or \
                         <flow>.hlog); a folder of an older otpfleet can be rendered by that \
                         version"
                            .into(),
                    ));
                }
                None => {
                    out.flows.insert(stem.to_owned(), total);
                }
            }
        }
        Ok(out)
    }

    /// Writes every log into `dir`: a request step's views interval by interval, a flow as one
    /// interval of `duration`. Answers the file names.
    pub fn write_logs(&self, dir: &Path, duration: Duration) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for ((step, view), lines) in &self.lines {
            let name = format!("{step}.{}{HLOG}", view.as_str());
            let comment = format!(
                "otpfleet step {step}, {}: values in microseconds",
                view.meaning()
            );
            crate::files::write_whole(&dir.join(&name), |out| {
                intervals::write_log(&comment, lines, out)
            })?;
            names.push(name);
        }
        for (flow, h) in self.flows.iter().filter(|(_, h)| !h.is_empty()) {
            let name = format!("{flow}{HLOG}");
            let comment = format!("otpfleet flow {flow}: values in microseconds");
            crate::files::write_whole(&dir.join(&name), |out| {
                write_histogram_log(h, &comment, duration, out)
            })?;
            names.push(name);
        }
        Ok(names)
    }

    /// Adds another run's histograms (a shard), step by step and interval by interval, without
    /// loss.
    pub fn add(&mut self, other: &RunHistograms) -> Result<(), String> {
        for (step, views) in &other.steps {
            self.steps
                .entry(step.clone())
                .or_default()
                .add(views)
                .map_err(|e| format!("step {step}: {e}"))?;
        }
        for (flow, h) in &other.flows {
            match self.flows.get_mut(flow) {
                Some(mine) => mine
                    .add(h)
                    .map_err(|e| format!("flow {flow} does not add up: {e:?}"))?,
                None => {
                    self.flows.insert(flow.clone(), h.clone());
                }
            }
        }
        for (key, theirs) in &other.lines {
            let mine = self.lines.remove(key).unwrap_or_default();
            self.lines
                .insert(key.clone(), intervals::add_logs(&mine, theirs)?);
        }
        Ok(())
    }

    /// The points over time of these logs (a merged run's).
    pub fn points(&self) -> Result<Vec<IntervalPoint>, String> {
        intervals::points_of(&self.lines)
    }

    /// One view of a step, when it recorded something.
    pub fn view(&self, step: &str, view: View) -> Option<&Histogram<u64>> {
        self.steps
            .get(step)
            .map(|v| v.get(view))
            .filter(|h| !h.is_empty())
    }

    /// The whole-flow histogram (arrival to sign-in), when something signed in.
    pub fn time_to_signed_in(&self) -> Option<&Histogram<u64>> {
        self.flows.get(TIME_TO_SIGNED_IN).filter(|h| !h.is_empty())
    }

    /// The request steps with a non-empty response view, in the order of a console's walk.
    pub fn recorded_steps(&self) -> Vec<&str> {
        let mut steps: Vec<&str> = self
            .steps
            .iter()
            .filter(|(_, v)| !v.response.is_empty())
            .map(|(s, _)| s.as_str())
            .collect();
        steps.sort_by_key(|name| (flow_rank(name), *name));
        steps
    }
}

/// A step's place in a console's walk: admin issues, console verifies, redeems, polls, the admin
/// decides, the console signs in.
pub(crate) fn flow_rank(step: &str) -> usize {
    crate::histograms::Step::parse(step).map_or(usize::MAX, |s| s as usize)
}

fn hlog_error(path: &Path, message: String) -> ReportError {
    ReportError::Hlog {
        path: path.to_path_buf(),
        message,
    }
}

fn read_log_file(path: &Path) -> Result<Vec<IntervalLine>, ReportError> {
    let bytes =
        crate::files::read_whole(path, MAX_HLOG_BYTES).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            reason: source,
        })?;
    intervals::read_log(&bytes).map_err(|m| hlog_error(path, m))
}
