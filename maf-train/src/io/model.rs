//! Model blobs: reading one from a file (bounded: regular files only, no more
//! bytes than the format allows), checking it with `maf-core`, its metadata, and
//! matching a data file's columns to the model's.

use std::path::Path;

use crate::data;
use crate::error::{Error, Result};

/// Reads a model blob from a file into 4-aligned memory.
///
/// # Errors
/// [`Error::Io`], [`Error::Model`] if `maf-core` refuses the blob.
pub fn read_model(path: &Path) -> Result<maf_core::blob::AlignedBlob> {
    use std::io::Read as _;
    let limit = maf_core::blob::MAX_BLOB_BYTES;
    let refuse = |why: String| Error::Model {
        context: path.display().to_string(),
        message: why,
    };
    // Only a regular file (a link to one is fine), and no more bytes than the
    // largest blob the format allows: a device, a FIFO or /dev/zero is refused at
    // once instead of read without end.
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file (a model is read only from a file)".into(),
        ));
    }
    if meta.len() > limit as u64 {
        return Err(refuse(format!(
            "{} bytes, larger than any blob the format allows ({limit} bytes)",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() > limit {
        return Err(refuse(format!(
            "larger than any blob the format allows ({limit} bytes)"
        )));
    }
    let aligned = maf_core::blob::AlignedBlob::new(&bytes);
    load_view(&aligned, &path.display().to_string())?;
    Ok(aligned)
}

/// Checks a blob with `maf-core` and returns its view; `what` names it in errors.
///
/// # Errors
/// [`Error::Model`] if `maf-core` refuses the blob.
pub fn load_view<'a>(
    blob: &'a maf_core::blob::AlignedBlob,
    what: &str,
) -> Result<maf_core::MafView<'a>> {
    maf_core::MafView::from_blob(blob.as_bytes()).map_err(|e| Error::Model {
        context: what.to_string(),
        message: format!("not a valid maf model: {e}"),
    })
}

/// `key=value` lookup in blob metadata.
pub fn meta_value<'a>(meta: &'a str, key: &str) -> Option<&'a str> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A comma-separated list of names from the metadata (empty for `""`).
pub fn names(list: &str) -> Vec<String> {
    if list.is_empty() {
        Vec::new()
    } else {
        list.split(',').map(str::to_string).collect()
    }
}

/// Splits a data file into the model's features and context, checking its header
/// against the column names stored in the model (or, for a blob without them,
/// the column count, context columns last).
///
/// # Errors
/// [`Error::ColumnMismatch`] naming the data file.
pub fn model_split(view: &maf_core::MafView<'_>, table: &data::Table) -> Result<data::Split> {
    let shape = view.shape();
    let meta = view.header().metadata;
    if let (Some(cols), Some(ctx)) = (
        meta_value(meta, "columns"),
        meta_value(meta, "context_columns"),
    ) {
        let (x_names, c_names) = (names(cols), names(ctx));
        let mut expected: Vec<&String> = x_names.iter().chain(&c_names).collect();
        let mut found: Vec<&String> = table.header.iter().collect();
        expected.sort();
        found.sort();
        if expected != found && found.len() == expected.len() {
            let n = found.len();
            let positional: Vec<String> = (0..n).map(|j| format!("x{j}")).collect();
            let mut sorted_positional: Vec<&String> = positional.iter().collect();
            sorted_positional.sort();
            if expected == sorted_positional {
                // A model fitted on a .npy array (columns x0, x1, ... by position):
                // a CSV's columns are taken by position too.
                let mut named = table.clone();
                named.header = positional;
                return named.split(&c_names);
            }
            if table.positional {
                // A .npy array for a model fitted on named (CSV) columns: its
                // columns are the model's features, in the model's order, then its
                // context columns.
                let mut named = table.clone();
                named.header = x_names.iter().chain(&c_names).cloned().collect();
                return named.split(&c_names);
            }
        }
        if expected != found {
            return Err(Error::ColumnMismatch {
                path: table.path.clone(),
                message: format!(
                    "columns {} do not match the model's ({}{}{})",
                    table.header.join(","),
                    x_names.join(","),
                    if c_names.is_empty() { "" } else { "; context " },
                    c_names.join(",")
                ),
            });
        }
        let s = table.split(&c_names)?;
        if s.x_names != x_names {
            return Err(Error::ColumnMismatch {
                path: table.path.clone(),
                message: format!(
                    "feature columns are in the order {}, the model's are {}",
                    s.x_names.join(","),
                    x_names.join(",")
                ),
            });
        }
        return Ok(s);
    }
    let cols = table.header.len();
    if cols != shape.dim + shape.context {
        return Err(Error::ColumnMismatch {
            path: table.path.clone(),
            message: format!(
                "{cols} columns, the model needs {} features + {} context columns",
                shape.dim, shape.context
            ),
        });
    }
    let ctx: Vec<String> = table.header[shape.dim..].to_vec();
    table.split(&ctx)
}
