//! A run folder: `report.json`, `report.md`, `report.html`, and the HdrHistogram interval logs:
//! per measured step and view a `<step>.<view>.hlog`, per flow a `<flow>.hlog`.

use crate::files::write_whole;
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

/// A file of a run folder that only the run's own crate can write (the emulator's
/// `consoles.csv`): its name and what writes it.
pub type ExtraFile<'a> = (
    &'a str,
    &'a mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
);

/// Writes the run folder (created if missing): `extra` files first, then the views, the
/// histogram logs of what was recorded (none for a rehearsal, whose requests take no time), and
/// `report.json` last: a folder that has it is complete, which is what a merge waiting on a
/// shared volume looks for. Every file is written whole ([`write_whole`]).
pub fn write_run_folder(
    dir: &Path,
    report: &RunReport,
    histograms: &RunHistograms,
    extra: Option<ExtraFile<'_>>,
) -> io::Result<RunFolder> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    if let Some((name, write)) = extra {
        write_file(dir, name, &mut files, &mut |out| write(out))?;
    }
    let timeless;
    let histograms = if report.kind == crate::report::RunKind::Rehearsal {
        timeless = RunHistograms {
            flows: histograms.flows.clone(),
            ..RunHistograms::default()
        };
        &timeless
    } else {
        histograms
    };
    files.extend(write_views(dir, report, histograms)?);
    let duration = Duration::from_secs_f64(report.duration_s.max(0.001));
    for name in histograms.write_logs(dir, duration)? {
        files.push(dir.join(name));
    }
    write_file(dir, "report.json", &mut files, &mut |out| {
        serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
        writeln!(out)
    })?;
    files.rotate_right(1);
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
    write_whole(&path, |out| f(out))?;
    files.push(path);
    Ok(())
}

/// Why a run folder cannot be used; found before the run starts.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    #[error("--out {0} is a file; give a folder (created if missing)")]
    File(PathBuf),
    #[error(
        "--out {path} holds files otpfleet did not write ({example}, ...); give an empty folder, \
         a new one, or the folder of an earlier run (which is replaced whole)"
    )]
    Foreign { path: PathBuf, example: String },
    #[error("--out {path} cannot be written: {source}")]
    Unwritable { path: PathBuf, source: io::Error },
}

/// What [`prepare_out`] found in the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// A new or empty folder.
    Fresh,
    /// The folder of an earlier run, whose files are gone now.
    ReplacedEarlierRun,
}

/// Makes `dir` ready for a run before the run starts, so a bad `--out` fails at once: a file,
/// an unwritable place, or a folder holding anything but an earlier otpfleet run is refused; the
/// folder of an earlier run (its `report.json` is one of ours) is emptied, so none of its files
/// stays beside the new run's.
pub fn prepare_out(dir: &Path) -> Result<Prepared, OutError> {
    let unwritable = |source| OutError::Unwritable {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_file() {
        return Err(OutError::File(dir.to_path_buf()));
    }
    let mut prepared = Prepared::Fresh;
    if dir.is_dir() {
        let mut entries = std::fs::read_dir(dir).map_err(unwritable)?.peekable();
        if entries.peek().is_some() {
            if !is_run_folder(dir) {
                let example = entries
                    .next()
                    .and_then(Result::ok)
                    .map_or_else(String::new, |e| {
                        e.file_name().to_string_lossy().into_owned()
                    });
                return Err(OutError::Foreign {
                    path: dir.to_path_buf(),
                    example,
                });
            }
            std::fs::remove_dir_all(dir).map_err(unwritable)?;
            prepared = Prepared::ReplacedEarlierRun;
        }
    }
    std::fs::create_dir_all(dir).map_err(unwritable)?;
    // Writable now, not only at the end of the run.
    let probe = dir.join(".otpfleet-write-check");
    File::create(&probe).map_err(unwritable)?;
    std::fs::remove_file(&probe).map_err(unwritable)?;
    Ok(prepared)
}

/// Whether `dir` holds an otpfleet run: a `report.json` with our schema version and run kind,
/// or a sweep's `sweep.json`.
fn is_run_folder(dir: &Path) -> bool {
    if let Ok(text) = std::fs::read_to_string(dir.join(crate::SWEEP_JSON)) {
        return serde_json::from_str::<crate::SweepReport>(&text).is_ok();
    }
    let Ok(text) = std::fs::read_to_string(dir.join("report.json")) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| {
        v.get("schema_version")
            .is_some_and(serde_json::Value::is_u64)
            && v.get("kind").is_some_and(serde_json::Value::is_string)
    })
}

/// `wanted`, or when something is there already, the first of `wanted-2`, `wanted-3`, ... that
/// is not: a default run folder never replaces an earlier run.
pub fn unused_folder(wanted: &Path) -> PathBuf {
    if !wanted.exists() {
        return wanted.to_path_buf();
    }
    let name = wanted
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    (2..)
        .map(|n| wanted.with_file_name(format!("{name}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| wanted.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_is_checked_and_an_earlier_run_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(prepare_out(&file), Err(OutError::File(_))));

        let foreign = tmp.path().join("photos");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("cat.jpg"), "x").unwrap();
        assert!(matches!(
            prepare_out(&foreign),
            Err(OutError::Foreign { .. })
        ));
        assert!(foreign.join("cat.jpg").exists(), "nothing of it touched");

        let run = tmp.path().join("run");
        assert_eq!(prepare_out(&run).unwrap(), Prepared::Fresh);
        std::fs::write(
            run.join("report.json"),
            r#"{"schema_version": 2, "kind": "fleet"}"#,
        )
        .unwrap();
        std::fs::write(run.join("verify.service.hlog"), "stale").unwrap();
        assert_eq!(prepare_out(&run).unwrap(), Prepared::ReplacedEarlierRun);
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), 0, "no stale file");

        assert_eq!(unused_folder(&foreign), tmp.path().join("photos-2"));
        assert_eq!(
            unused_folder(&tmp.path().join("new")),
            tmp.path().join("new")
        );
    }
}
