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

/// Which columns of a data file are the model's features and context, in the
/// model's order: found once from the header, applied to every row (so a file can
/// be streamed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Feature names, the model's order.
    pub x_names: Vec<String>,
    /// Context names, the model's order.
    pub c_names: Vec<String>,
    /// For each feature, its column index in the file.
    pub x_idx: Vec<usize>,
    /// For each context column, its column index in the file.
    pub c_idx: Vec<usize>,
    /// Columns of the file.
    pub width: usize,
}

impl ColumnPlan {
    /// Picks one row's features and context (as `f32`, as the device gets them).
    pub fn pick(&self, row: &[f64], x: &mut Vec<f32>, c: &mut Vec<f32>) {
        x.clear();
        c.clear();
        x.extend(self.x_idx.iter().map(|&j| row[j] as f32));
        c.extend(self.c_idx.iter().map(|&j| row[j] as f32));
    }
}

/// The model's column names, features then context: from the blob's v2 column
/// field, or for an older blob from its `columns=`/`context_columns=` metadata.
pub fn model_columns(view: &maf_core::MafView<'_>) -> Option<(Vec<String>, Vec<String>)> {
    let h = view.header();
    let dim = view.shape().dim;
    let named: Vec<String> = h.column_names().map(str::to_string).collect();
    if named.len() == dim + view.shape().context && !named.is_empty() {
        let c = named[dim..].to_vec();
        let mut x = named;
        x.truncate(dim);
        return Some((x, c));
    }
    let meta = h.metadata;
    match (
        meta_value(meta, "columns"),
        meta_value(meta, "context_columns"),
    ) {
        (Some(cols), Some(ctx)) => Some((names(cols), names(ctx))),
        _ => None,
    }
}

/// Matches a data file's header to the model's columns **by name** (any order;
/// every model column must be there, and no other), or for a blob without
/// names by count (features first, then context). A `.npy` array (no names) is
/// taken by position in the model's order, and a model fitted on a `.npy` array
/// (columns `x0`, `x1`, …) takes a CSV's columns by position.
///
/// # Errors
/// [`Error::ColumnMismatch`] naming `path`, the missing and the extra columns.
pub fn column_plan(
    view: &maf_core::MafView<'_>,
    header: &[String],
    positional: bool,
    path: &Path,
) -> Result<ColumnPlan> {
    use crate::error::{count, name_list};
    let shape = view.shape();
    let width = header.len();
    let by_position = |x_names: Vec<String>, c_names: Vec<String>| ColumnPlan {
        x_idx: (0..x_names.len()).collect(),
        c_idx: (x_names.len()..x_names.len() + c_names.len()).collect(),
        x_names,
        c_names,
        width,
    };
    let Some((x_names, c_names)) = model_columns(view) else {
        if width != shape.dim + shape.context {
            return Err(Error::ColumnMismatch {
                path: path.into(),
                message: format!(
                    "{}, the model needs {} + {}",
                    count(width, "column", "columns"),
                    count(shape.dim, "feature", "features"),
                    count(shape.context, "context column", "context columns")
                ),
            });
        }
        let x = header[..shape.dim].to_vec();
        let c = header[shape.dim..].to_vec();
        return Ok(by_position(x, c));
    };
    let expected: Vec<&String> = x_names.iter().chain(&c_names).collect();
    let find = |name: &String| header.iter().position(|h| h == name);
    if expected.iter().all(|n| find(n).is_some()) && width == expected.len() {
        return Ok(ColumnPlan {
            x_idx: x_names.iter().filter_map(find).collect(),
            c_idx: c_names.iter().filter_map(find).collect(),
            x_names,
            c_names,
            width,
        });
    }
    if width == expected.len() {
        let positional_model = expected
            .iter()
            .enumerate()
            .all(|(j, n)| **n == format!("x{j}"));
        if positional_model || positional {
            // A model fitted on a .npy array takes a CSV by position; a .npy
            // array is the model's columns in the model's order.
            return Ok(by_position(x_names, c_names));
        }
    }
    let missing: Vec<&String> = expected
        .iter()
        .copied()
        .filter(|n| find(n).is_none())
        .collect();
    let extra: Vec<&String> = header.iter().filter(|h| !expected.contains(h)).collect();
    let mut message = format!(
        "{} do not match the model's {} ({}{}{})",
        count(width, "column", "columns"),
        expected.len(),
        name_list(&x_names),
        if c_names.is_empty() { "" } else { "; context " },
        name_list(&c_names)
    );
    if !missing.is_empty() {
        message.push_str(&format!("; missing: {}", name_list(&missing)));
    }
    if !extra.is_empty() {
        message.push_str(&format!("; not in the model: {}", name_list(&extra)));
    }
    Err(Error::ColumnMismatch {
        path: path.into(),
        message,
    })
}

/// Splits a whole data table into the model's features and context (see
/// [`column_plan`]).
///
/// # Errors
/// As [`column_plan`].
pub fn model_split(view: &maf_core::MafView<'_>, table: &data::Table) -> Result<data::Split> {
    let plan = column_plan(view, &table.header, table.positional, &table.path)?;
    Ok(data::Split {
        x: table.values.select(ndarray::Axis(1), &plan.x_idx),
        c: table.values.select(ndarray::Axis(1), &plan.c_idx),
        x_names: plan.x_names,
        c_names: plan.c_names,
    })
}
