//! CSV data files.

use std::path::Path;

use ndarray::Array2;

use super::table::Table;
use crate::error::{Error, Result};

/// Reads a headered CSV file of numbers.
///
/// Cells are separated by commas and may be surrounded by spaces or double quotes;
/// blank lines are skipped. Every row must have as many cells as the header, and
/// every cell must parse as a finite number.
///
/// # Errors
/// [`Error::Io`], [`Error::EmptyData`], [`Error::RaggedRow`], [`Error::NotANumber`]
/// or [`Error::NotFinite`], naming the file, line and column.
pub fn read_csv(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_csv(path, &text)
}

fn clean(cell: &str) -> &str {
    let c = cell.trim();
    c.strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .unwrap_or(c)
        .trim()
}

/// Parses CSV text (see [`read_csv`]); `path` is used in error messages only.
///
/// # Errors
/// As [`read_csv`].
pub fn parse_csv(path: &Path, text: &str) -> Result<Table> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, head)) = lines.next() else {
        return Err(Error::EmptyData {
            path: path.into(),
            what: "no header line",
        });
    };
    let header: Vec<String> = head.split(',').map(|c| clean(c).to_string()).collect();
    let cols = header.len();
    let mut flat = Vec::new();
    let mut rows = 0;
    for (line, text) in lines {
        let mut found = 0;
        for (j, cell) in text.split(',').enumerate() {
            found += 1;
            if j >= cols {
                continue;
            }
            let c = clean(cell);
            let v: f64 = c.parse().map_err(|_| Error::NotANumber {
                path: path.into(),
                line,
                column: j + 1,
                name: header[j].clone(),
                value: c.to_string(),
            })?;
            // The device computes in f32: a value beyond its range is as unusable
            // as an infinity.
            if !v.is_finite() || v.abs() > f64::from(f32::MAX) {
                return Err(Error::NotFinite {
                    path: path.into(),
                    line,
                    column: j + 1,
                    name: header[j].clone(),
                    value: c.to_string(),
                });
            }
            flat.push(v);
        }
        if found != cols {
            return Err(Error::RaggedRow {
                path: path.into(),
                line,
                expected: cols,
                found,
            });
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::EmptyData {
            path: path.into(),
            what: "no data rows after the header",
        });
    }
    let values = Array2::from_shape_vec((rows, cols), flat)
        .map_err(|e| Error::Internal(format!("table shape: {e}")))?;
    Ok(Table {
        path: path.into(),
        header,
        values,
        positional: false,
    })
}
