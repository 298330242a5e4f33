//! Reading a run folder back, and rebuilding its views (`otpfleet report render`).

use crate::error::ReportError;
use crate::folder::write_views;
use crate::report::{RunReport, SCHEMA_VERSION};
use crate::run_histograms::RunHistograms;
use crate::views::MAX_COUNT;
use std::path::{Path, PathBuf};

/// Bound on a `report.json`: far above any run's (a few kB, a rehearsal's timeline included).
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// Where a run's `report.json` is: `path` itself when it is a file, else `path/report.json`.
pub fn report_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    }
}

/// Reads a `report.json`, given as the file or as its run folder.
pub fn read_report(path: &Path) -> Result<RunReport, ReportError> {
    let path = report_path(path);
    let text =
        crate::files::read_text(&path, MAX_REPORT_BYTES).map_err(|source| ReportError::Read {
            path: path.clone(),
            reason: source,
        })?;
    parse_report(&path, &text)
}

/// A `report.json`'s text (read from `path`) as a report: of this schema version, and with no
/// count larger than a run can have.
pub fn parse_report(path: &Path, text: &str) -> Result<RunReport, ReportError> {
    let path = path.to_path_buf();
    check_version(&path, text)?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ReportError::Json {
            path: path.clone(),
            reason: source,
        })?;
    if let Some((at, n)) = count_out_of_bounds(&json, &mut String::new()) {
        return Err(ReportError::Implausible {
            path,
            message: format!(
                "{at} is {n}, more than any run counts ({MAX_COUNT}); a merge would wrap it around"
            ),
        });
    }
    serde_json::from_value(json).map_err(|source| ReportError::Json {
        path,
        reason: source,
    })
}

/// The first whole number of `json` above [`MAX_COUNT`] and where it is (`a.b[2].c`); seeds,
/// which are any 64-bit number, are not counts.
fn count_out_of_bounds(json: &serde_json::Value, at: &mut String) -> Option<(String, u64)> {
    use serde_json::Value;
    match json {
        Value::Number(n) => n
            .as_u64()
            .filter(|n| *n > MAX_COUNT)
            .map(|n| (at.clone(), n)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("[{i}]"));
            let found = count_out_of_bounds(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(fields) => {
            fields
                .iter()
                .filter(|(key, _)| *key != "seed")
                .find_map(|(key, value)| {
                    let len = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(key);
                    let found = count_out_of_bounds(value, at);
                    at.truncate(len);
                    found
                })
        }
        _ => None,
    }
}

/// Refuses a report of another schema version, naming the otpfleet that wrote it.
fn check_version(path: &Path, text: &str) -> Result<(), ReportError> {
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: Option<u32>,
        otpfleet_version: Option<String>,
    }
    let Ok(v) = serde_json::from_str::<Version>(text) else {
        return Ok(()); // Not even that parses: the full parse names the problem.
    };
    match v.schema_version {
        Some(SCHEMA_VERSION) | None => Ok(()),
        Some(other) => Err(ReportError::Version {
            path: path.to_path_buf(),
            found: other,
            written_by: v
                .otpfleet_version
                .unwrap_or_else(|| "an unknown version".into()),
            reads: SCHEMA_VERSION,
        }),
    }
}

/// Reads a run folder: its `report.json` and every histogram log.
pub fn read_run_folder(dir: &Path) -> Result<(RunReport, RunHistograms), ReportError> {
    let report = read_report(&dir.join("report.json"))?;
    let histograms = RunHistograms::read_dir(dir)?;
    Ok((report, histograms))
}

/// Rebuilds `report.md` and `report.html` of a run folder from its `report.json` and its
/// histogram logs; answers the files written.
pub fn render_run_folder(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let (report, histograms) = read_run_folder(dir)?;
    write_views(dir, &report, &histograms).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        reason: source,
    })
}
