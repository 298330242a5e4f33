//! A run's histograms by step name, both views: as recorded (from a `Recorder`) or as read back
//! from a run folder's `.hlog` files. Charts, `render` and `merge` work from this, so a folder
//! rebuilt from its logs gives the same pages as the run that wrote it.
//!
//! File names: `<step>.hlog` holds the corrected view (from the intended send time),
//! `<step>.raw.hlog` the raw view (from the actual send).

use crate::error::ReportError;
use crate::histograms::{Recorder, Step, read_histogram_log};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;

/// The name of a whole console's flow, whose histogram feeds `time_to_signed_in_s`.
pub const TIME_TO_SIGNED_IN: &str = "time_to_signed_in";

const HLOG: &str = ".hlog";
const RAW_HLOG: &str = ".raw.hlog";
/// Bounds on what a run folder may hold: more steps or bigger logs than any run writes.
const MAX_HLOG_FILES: usize = 256;
const MAX_HLOG_BYTES: u64 = 64 * 1024 * 1024;

/// Per step name, the corrected and the raw histogram (microseconds). Only steps that recorded
/// something are present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunHistograms {
    pub corrected: BTreeMap<String, Histogram<u64>>,
    pub raw: BTreeMap<String, Histogram<u64>>,
}

impl RunHistograms {
    /// The non-empty histograms of a recorder.
    pub fn from_recorder(recorder: &Recorder) -> RunHistograms {
        let pick = |h: &dyn Fn(Step) -> Histogram<u64>| {
            Step::ALL
                .into_iter()
                .map(|s| (s.as_str().to_owned(), h(s)))
                .filter(|(_, h)| !h.is_empty())
                .collect()
        };
        RunHistograms {
            corrected: pick(&|s| recorder.histogram(s)),
            raw: pick(&|s| recorder.raw_histogram(s)),
        }
    }

    /// Reads every `.hlog` of a run folder.
    pub fn read_dir(dir: &Path) -> Result<RunHistograms, ReportError> {
        let read_err = |source| ReportError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            if let Some(name) = name.to_str().filter(|n| n.ends_with(HLOG)) {
                names.push(name.to_owned());
            }
        }
        if names.len() > MAX_HLOG_FILES {
            return Err(ReportError::Hlog {
                path: dir.to_path_buf(),
                message: format!("more than {MAX_HLOG_FILES} .hlog files: not a run folder"),
            });
        }
        names.sort();
        let mut out = RunHistograms::default();
        for name in names {
            let (step, raw) = match name.strip_suffix(RAW_HLOG) {
                Some(step) => (step, true),
                None => (name.strip_suffix(HLOG).unwrap_or(&name), false),
            };
            let h = read_log_file(&dir.join(&name))?;
            let map = if raw {
                &mut out.raw
            } else {
                &mut out.corrected
            };
            map.insert(step.to_owned(), h);
        }
        Ok(out)
    }

    /// The logs a run folder holds: file name, comment line and histogram, for each non-empty
    /// histogram.
    pub fn logs(&self) -> Vec<(String, String, &Histogram<u64>)> {
        let mut logs = Vec::new();
        for (views, suffix, what) in [
            (&self.corrected, HLOG, ""),
            (&self.raw, RAW_HLOG, " (raw view: from the actual send)"),
        ] {
            for (step, h) in views.iter().filter(|(_, h)| !h.is_empty()) {
                let comment = format!("otpfleet step {step}{what}: values in microseconds");
                logs.push((format!("{step}{suffix}"), comment, h));
            }
        }
        logs
    }

    /// Adds another run's histograms, step by step, without loss.
    pub fn add(&mut self, other: &RunHistograms) -> Result<(), String> {
        for (mine, theirs) in [
            (&mut self.corrected, &other.corrected),
            (&mut self.raw, &other.raw),
        ] {
            for (step, h) in theirs {
                match mine.get_mut(step) {
                    Some(m) => m
                        .add(h)
                        .map_err(|e| format!("step {step} does not add up: {e:?}"))?,
                    None => {
                        mine.insert(step.clone(), h.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// The whole-flow histogram (arrival to sign-in), when something signed in.
    pub fn time_to_signed_in(&self) -> Option<&Histogram<u64>> {
        self.corrected
            .get(TIME_TO_SIGNED_IN)
            .filter(|h| !h.is_empty())
    }

    /// Of `steps` (a report's `latency_us` names), those with a non-empty histogram, in the
    /// order of a console's walk, then any other names alphabetically.
    pub fn recorded_steps<'a>(&self, steps: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut steps: Vec<&str> = steps
            .into_iter()
            .filter(|s| self.corrected.get(*s).is_some_and(|h| !h.is_empty()))
            .collect();
        steps.sort_by_key(|name| (flow_rank(name), *name));
        steps
    }
}

/// A step's place in a console's walk: admin issues, console verifies, redeems, polls, the admin
/// decides, the console signs in.
pub(crate) fn flow_rank(step: &str) -> usize {
    const ORDER: [&str; 8] = [
        "issue",
        "verify",
        "redeem",
        "poll",
        "approve",
        "reject",
        "sign_in",
        "manual_sign_in",
    ];
    ORDER.iter().position(|s| *s == step).unwrap_or(ORDER.len())
}

fn read_log_file(path: &Path) -> Result<Histogram<u64>, ReportError> {
    let read_err = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_HLOG_BYTES {
        return Err(ReportError::Hlog {
            path: path.to_path_buf(),
            message: format!("{len} bytes: larger than any histogram log ({MAX_HLOG_BYTES})"),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    read_histogram_log(&bytes).map_err(|message| ReportError::Hlog {
        path: path.to_path_buf(),
        message,
    })
}
