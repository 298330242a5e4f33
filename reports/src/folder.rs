//! A run folder: `report.json`, `report.md`, and one `<step>.hlog` per measured step.

use crate::histograms::{Recorder, Step};
use crate::markdown::write_markdown;
use crate::report::RunReport;
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
/// recorded something.
pub fn write_run_folder(
    dir: &Path,
    report: &RunReport,
    recorder: &Recorder,
) -> io::Result<RunFolder> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut write = |name: &str, f: &mut dyn FnMut(&mut BufWriter<File>) -> io::Result<()>| {
        let path = dir.join(name);
        let mut out = BufWriter::new(File::create(&path)?);
        f(&mut out)?;
        out.flush()?;
        files.push(path);
        io::Result::Ok(())
    };
    write("report.json", &mut |out| {
        serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
        writeln!(out)
    })?;
    write("report.md", &mut |out| write_markdown(report, out))?;
    let duration = Duration::from_secs_f64(report.duration_s.max(0.001));
    for step in Step::ALL {
        if recorder.histogram(step).is_empty() {
            continue;
        }
        write(&format!("{}.hlog", step.as_str()), &mut |out| {
            recorder.write_log(step, duration, out)
        })?;
    }
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        files,
    })
}
