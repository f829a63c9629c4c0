//! Every file the trainer reads or writes, in one place: model blobs
//! ([`model`]), label and score files ([`labels`], [`scores`]), and the atomic
//! writes every output goes through (this module). Data files (CSV, `.npy`) are
//! read by [`crate::data`]. No command is used from here.

pub mod labels;
pub mod model;
pub mod output;
pub mod scores;

use std::path::Path;

use crate::error::{Error, Result};

pub use labels::read_labels;
pub use model::{
    ColumnPlan, column_plan, load_view, meta_value, model_columns, model_split, names, read_model,
};
pub use output::{AtomicFile, Output, write_atomic};

/// Writes `text` to `out` atomically, or to standard output if `out` is `None`.
///
/// # Errors
/// [`Error::Io`].
pub fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    let mut o = Output::new(out)?;
    o.put(text.as_bytes())?;
    o.finish()
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
    // Creating (and dropping) a temporary file proves the folder takes new files.
    output::temp_in(output::folder_of(out), out).map(drop)
}
