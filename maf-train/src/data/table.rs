//! [`Table`], the numbers of a data file with its column names, and its split into
//! features and context ([`Split`]).

use std::path::PathBuf;

use ndarray::Array2;

use crate::error::{Error, Result};

/// A headered table of finite numbers, as read from a CSV or `.npy` file.
#[derive(Clone, Debug)]
pub struct Table {
    /// The file it came from (for error messages).
    pub path: PathBuf,
    /// Column names, in file order (`x0`, `x1`, … for a `.npy` array).
    pub header: Vec<String>,
    /// The values, one row per data line (array row).
    pub values: Array2<f64>,
    /// The file has no column names (a `.npy` array): `header` holds the
    /// positional names `x0`, `x1`, …, columns are matched by position, and
    /// [`Table::split`] also accepts a column index (`3`) as a context column.
    pub positional: bool,
}

/// A data set split into feature columns `x` and context columns `c`.
#[derive(Clone, Debug)]
pub struct Split {
    /// Names of the feature columns.
    pub x_names: Vec<String>,
    /// Names of the context columns (empty for an unconditional model).
    pub c_names: Vec<String>,
    /// Feature values, rows × features.
    pub x: Array2<f64>,
    /// Context values, rows × context columns.
    pub c: Array2<f64>,
}

impl Table {
    /// Splits the table into features and the named context columns (every column
    /// not named is a feature, in file order). For a positional table (a `.npy`
    /// array) a context column may also be given by its 0-based index (`3` is the
    /// column `x3`).
    ///
    /// # Errors
    /// [`Error::ColumnMismatch`] if a context column is missing or named twice, or
    /// no feature column remains.
    pub fn split(&self, context: &[String]) -> Result<Split> {
        let mut c_idx = Vec::new();
        for name in context {
            let by_index = || {
                name.parse::<usize>()
                    .ok()
                    .filter(|&i| self.positional && i < self.header.len())
            };
            let Some(i) = self.header.iter().position(|h| h == name).or_else(by_index) else {
                let message = if self.positional {
                    format!(
                        "context column {name:?} is not a column of this array (give x0..x{} \
                         or an index 0..{})",
                        self.header.len().saturating_sub(1),
                        self.header.len().saturating_sub(1)
                    )
                } else {
                    format!(
                        "context column {name:?} is not in the header ({})",
                        self.header.join(",")
                    )
                };
                return Err(Error::ColumnMismatch {
                    path: self.path.clone(),
                    message,
                });
            };
            if c_idx.contains(&i) {
                return Err(Error::ColumnMismatch {
                    path: self.path.clone(),
                    message: format!("context column {name:?} named twice"),
                });
            }
            c_idx.push(i);
        }
        let x_idx: Vec<usize> = (0..self.header.len())
            .filter(|i| !c_idx.contains(i))
            .collect();
        if x_idx.is_empty() {
            return Err(Error::ColumnMismatch {
                path: self.path.clone(),
                message: "no feature columns left after removing the context columns".into(),
            });
        }
        Ok(Split {
            x_names: x_idx.iter().map(|&i| self.header[i].clone()).collect(),
            c_names: c_idx.iter().map(|&i| self.header[i].clone()).collect(),
            x: self.values.select(ndarray::Axis(1), &x_idx),
            c: self.values.select(ndarray::Axis(1), &c_idx),
        })
    }
}
