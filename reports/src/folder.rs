//! A run folder: `report.json`, `report.md`, `report.html`, and the HdrHistogram interval logs:
//! per measured step and view a `<step>.<view>.hlog`, per flow a `<flow>.hlog`.

use crate::histograms::Recorder;
use crate::html::write_html;
use crate::markdown::write_markdown;
use crate::report::RunReport;
use crate::run_histograms::RunHistograms;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The files written for a run.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Writes the run folder (created if missing). Histogram logs are written for steps that
/// recorded something, up to the recorder's last closed interval.
pub fn write_run_folder(
    dir: &Path,
    report: &RunReport,
    recorder: &Recorder,
) -> io::Result<RunFolder> {
    let mut histograms = recorder.histograms();
    if report.kind == crate::report::RunKind::Rehearsal {
        // Requests in simulated time take no time: the report has no latency, nor the folder.
        histograms.steps.clear();
        histograms.lines.clear();
    }
    write_run_folder_from(dir, report, &histograms)
}

/// Writes the run folder from histograms already taken (a merge, a rebuilt run).
pub fn write_run_folder_from(
    dir: &Path,
    report: &RunReport,
    histograms: &RunHistograms,
) -> io::Result<RunFolder> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    write_file(dir, "report.json", &mut files, &mut |out| {
        serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
        writeln!(out)
    })?;
    files.extend(write_views(dir, report, histograms)?);
    let duration = Duration::from_secs_f64(report.duration_s.max(0.001));
    for name in histograms.write_logs(dir, duration)? {
        files.push(dir.join(name));
    }
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        files,
    })
}

/// Writes the views of a report, `report.md` and `report.html`; answers their paths.
pub fn write_views(
    dir: &Path,
    report: &RunReport,
    histograms: &RunHistograms,
) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    write_file(dir, "report.md", &mut files, &mut |out| {
        write_markdown(report, out)
    })?;
    write_file(dir, "report.html", &mut files, &mut |out| {
        write_html(report, histograms, out)
    })?;
    Ok(files)
}

fn write_file(
    dir: &Path,
    name: &str,
    files: &mut Vec<PathBuf>,
    f: &mut dyn FnMut(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let path = dir.join(name);
    let mut out = BufWriter::new(File::create(&path)?);
    f(&mut out)?;
    out.flush()?;
    files.push(path);
    Ok(())
}
