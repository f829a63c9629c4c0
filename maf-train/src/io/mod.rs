//! Every file the trainer reads or writes, in one place: model blobs
//! ([`model`]), label and score files ([`labels`], [`scores`]), and the atomic
//! writes every output goes through (this module). Data files (CSV, `.npy`) are
//! read by [`crate::data`]. No command is used from here.

pub mod labels;
pub mod model;
pub mod scores;

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

pub use labels::read_labels;
pub use model::{load_view, meta_value, model_split, names, read_model};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// renamed over `path` only once completely written, so no failure leaves a
/// half-written file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".maf-train-").suffix(".tmp");
    // An ordinary file's mode (subject to the umask), not a temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| folder_error(path, dir, &e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes `text` to `out` atomically, or to standard output if `out` is `None`.
///
/// # Errors
/// [`Error::Io`].
pub fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => write_atomic(p, text.as_bytes()),
        None => {
            let mut so = std::io::stdout().lock();
            so.write_all(text.as_bytes())
                .and_then(|()| so.flush())
                .map_err(|e| Error::io("<stdout>", e))
        }
    }
}

/// The file name of `p` (the whole path if it has none), for metadata and messages.
pub fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Refuses, before any work, an output path that is (or links to) one of the
/// command's inputs, and one whose folder is missing or not writable (a probe
/// file is created and removed there).
///
/// # Errors
/// [`Error::InvalidParam`] for an output that is an input, [`Error::Io`] naming
/// `out` for a folder that cannot take it.
pub fn check_output(out: &Path, inputs: &[&Path]) -> Result<()> {
    if let Ok(target) = std::fs::canonicalize(out) {
        for input in inputs {
            if std::fs::canonicalize(input).is_ok_and(|i| i == target) {
                return Err(Error::InvalidParam {
                    name: "out",
                    message: format!(
                        "{} is also an input of this command ({}); it would be destroyed",
                        out.display(),
                        input.display()
                    ),
                });
            }
        }
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".maf-train-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| folder_error(out, dir, &e))
}

/// An I/O error creating a file in `dir` for `out`, naming the user's path and
/// folder, not the temporary file's.
fn folder_error(out: &Path, dir: &Path, e: &std::io::Error) -> Error {
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
