//! Writing a file of the tools' own.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

/// Writes the file at `path` whole, the one way the tools write a file: into a new file beside
/// it (created afresh, never opened through a link), then renamed over `path`. A link planted
/// at `path` is replaced, not followed (`ln -s /tmp/victim DIR/report.html` once had `report
/// render DIR` overwrite the victim), and a reader sees the old file or the new one, never half.
pub fn write_whole(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".otpfleet-writing-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // What `File::create` gives (before the umask), not tempfile's private 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Until persisted, the new file is removed if anything fails.
    let (file, written) = builder.tempfile_in(dir)?.into_parts();
    let mut out = BufWriter::new(file);
    f(&mut out)?;
    out.into_inner().map_err(io::IntoInnerError::into_error)?;
    written.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Reads the file at `path` whole, refusing one larger than `max` bytes before reading it (or
/// as soon as it grows past `max` while read): every file the tools read is bounded by what a
/// run can use, not by what the file holds. The caller names the file in its error.
pub fn read_whole(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use io::Read as _;
    let too_large = |len: u64| {
        io::Error::other(format!(
            "{len} bytes, larger than any otpfleet reads ({max})"
        ))
    };
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_whole`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_whole(path, max)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}
