//! Label files: a CSV with an `anomaly` column of 0/1, row for row with the data.

use std::path::Path;

use crate::data;
use crate::error::{Error, Result};

/// Reads the `anomaly` column of a labels CSV, which must have `rows` rows.
///
/// # Errors
/// As [`data::read_csv`]; [`Error::ColumnMismatch`] for a missing `anomaly`
/// column or another row count; [`Error::BadLabel`] for a number other than 0 or 1.
pub fn read_labels(path: &Path, rows: usize) -> Result<Vec<bool>> {
    let t = data::read_csv(path)?;
    let Some(j) = t.header.iter().position(|h| h == "anomaly") else {
        return Err(Error::ColumnMismatch {
            path: path.into(),
            message: format!(
                "no `anomaly` column (header: {}); a labels file has a column named \
                 `anomaly` of 0 (normal) and 1 (anomaly), row for row with the data",
                crate::error::name_list(&t.header)
            ),
        });
    };
    if t.values.nrows() != rows {
        return Err(Error::ColumnMismatch {
            path: path.into(),
            message: format!(
                "{} label rows, but the data has {rows} rows",
                t.values.nrows()
            ),
        });
    }
    t.values
        .column(j)
        .iter()
        .enumerate()
        .map(|(r, &v)| match v {
            0.0 => Ok(false),
            1.0 => Ok(true),
            _ => Err(Error::BadLabel {
                path: path.into(),
                row: r + 1,
                value: v.to_string(),
            }),
        })
        .collect()
}
