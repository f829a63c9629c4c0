//! Outputs: a file written through a temporary file next to it and renamed over
//! it only when complete ([`AtomicFile`]), or standard output ([`Output`]), both
//! buffered so that large outputs stream in constant memory; and the sweep of
//! the temporary files that crashed runs left behind ([`sweep_stale`]).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Every temporary file of ours starts with this, then the process id and `-`.
pub const TEMP_PREFIX: &str = ".maf-train-";
/// … and ends with this.
pub const TEMP_SUFFIX: &str = ".tmp";
/// A temporary file of ours whose process cannot be checked (no `/proc`), or
/// that has no process id in its name (older versions), is stale when it has
/// not been written for this long.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The folder a new file at `path` goes into.
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new, empty temporary file of ours in `dir` (`.maf-train-<pid>-XXXXXX.tmp`,
/// mode 0644 before the umask), after sweeping stale ones; `out` names the
/// user's path in errors.
pub(crate) fn temp_in(dir: &Path, out: &Path) -> Result<tempfile::NamedTempFile> {
    sweep_stale(dir);
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    // An ordinary file's mode (subject to the umask), not a temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder
        .tempfile_in(dir)
        .map_err(|e| folder_error(out, dir, &e))
}

/// An I/O error creating a file in `dir` for `out`, naming the user's path and
/// folder, not the temporary file's.
pub(crate) fn folder_error(out: &Path, dir: &Path, e: &std::io::Error) -> Error {
    let kind = e.kind();
    let why = if kind == std::io::ErrorKind::NotFound {
        "does not exist".to_string()
    } else {
        format!("cannot take a new file ({kind})")
    };
    Error::io(
        out,
        std::io::Error::new(kind, format!("the folder {} {why}", dir.display())),
    )
}

/// Removes the temporary files of ours in `dir` that no running `maf-train`
/// writes: those whose process id (in the name) is not running (checked in
/// `/proc`), or, where that cannot be checked or the name has no id, that were
/// last written more than [`STALE_AFTER`] ago. Other files are never touched;
/// failures are ignored (the sweep is housekeeping, not the command's job).
/// Returns how many files it removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let proc_ok = Path::new("/proc/self").exists();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|s| s.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let pid = stem
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok());
        let old = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > STALE_AFTER);
        let stale = match pid {
            Some(p) if p == std::process::id() => false,
            Some(p) if proc_ok => !Path::new("/proc").join(p.to_string()).exists(),
            _ => old,
        };
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A file being written: bytes go to a temporary file in the target's folder,
/// which [`AtomicFile::finish`] syncs and renames over the target. Dropped
/// without `finish` (an error, a panic), the temporary file is removed and the
/// target is untouched.
pub struct AtomicFile {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` and its folder if the folder cannot take a
    /// new file.
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = temp_in(folder_of(path), path)?;
        Ok(AtomicFile {
            path: path.into(),
            file: BufWriter::with_capacity(1 << 16, tmp),
        })
    }

    /// Flushes, syncs and renames the file over the target.
    ///
    /// # Errors
    /// [`Error::Io`] naming the target.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Where a command's table goes: a file (atomically) or standard output.
pub enum Output {
    /// `--out PATH`.
    File(AtomicFile),
    /// Standard output, buffered.
    Stdout(BufWriter<std::io::Stdout>),
}

impl Output {
    /// A file at `out`, or standard output for `None`.
    ///
    /// # Errors
    /// As [`AtomicFile::create`].
    pub fn new(out: Option<&Path>) -> Result<Self> {
        Ok(match out {
            Some(p) => Output::File(AtomicFile::create(p)?),
            None => Output::Stdout(BufWriter::with_capacity(1 << 16, std::io::stdout())),
        })
    }

    /// What to call this output in messages.
    pub fn name(&self) -> String {
        match self {
            Output::File(f) => f.path.display().to_string(),
            Output::Stdout(_) => "<stdout>".into(),
        }
    }

    /// Writes `bytes`, naming the output in an error.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes).map_err(|e| Error::io(self.name(), e))
    }

    /// Completes the output: renames the file into place, or flushes standard
    /// output.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn finish(self) -> Result<()> {
        match self {
            Output::File(f) => f.finish(),
            Output::Stdout(mut s) => s.flush().map_err(|e| Error::io("<stdout>", e)),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Stdout(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// renamed over `path` only once completely written, so no failure leaves a
/// half-written file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.finish()
}

#[cfg(test)]
mod tests {
    // Tests fail by panicking.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn sweep_removes_only_our_stale_files() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        // A process id that is not running: above Linux's pid_max (2^22).
        let dead = p(".maf-train-4194999-abc123.tmp");
        let mine = p(&format!(".maf-train-{}-abc123.tmp", std::process::id()));
        let fresh_legacy = p(".maf-train-Xy12Ab.tmp");
        let others = [p("model.maf"), p(".maf-train-notes.txt"), p("x.tmp")];
        for f in [&dead, &mine, &fresh_legacy].into_iter().chain(&others) {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(
            sweep_stale(d.path()),
            usize::from(Path::new("/proc/self").exists())
        );
        assert!(!dead.exists() || !Path::new("/proc/self").exists());
        assert!(mine.exists() && fresh_legacy.exists());
        assert!(others.iter().all(|f| f.exists()));
        // Writing a file sweeps its folder and leaves no temporary file.
        write_atomic(&p("out.csv"), b"a\n").unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".tmp") && n.starts_with(".maf-train-"))
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
