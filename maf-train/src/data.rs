//! Loading and validating headered CSV data, and input standardisation.

use std::path::{Path, PathBuf};

use ndarray::{Array2, Zip};

use crate::error::{Error, Result};

/// A headered table of finite numbers, as read from a CSV file.
#[derive(Clone, Debug)]
pub struct Table {
    /// The file it came from (for error messages).
    pub path: PathBuf,
    /// Column names, in file order.
    pub header: Vec<String>,
    /// The values, one row per data line.
    pub values: Array2<f64>,
}

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
    })
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
    /// not named is a feature, in file order).
    ///
    /// # Errors
    /// [`Error::ColumnMismatch`] if a context column is missing or named twice, or
    /// no feature column remains.
    pub fn split(&self, context: &[String]) -> Result<Split> {
        let mut c_idx = Vec::new();
        for name in context {
            let Some(i) = self.header.iter().position(|h| h == name) else {
                return Err(Error::ColumnMismatch {
                    path: self.path.clone(),
                    message: format!(
                        "context column {name:?} is not in the header ({})",
                        self.header.join(",")
                    ),
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

/// Per-column standardisation `z = (v - mean) * inv_std`, with `mean` and `inv_std`
/// rounded to `f32` exactly as they are stored in the blob.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Column means.
    pub mean: Vec<f32>,
    /// Reciprocal column standard deviations (population, ddof 0).
    pub inv_std: Vec<f32>,
}

impl Standardizer {
    /// Fits means and standard deviations on `values` (accumulated in `f64`).
    ///
    /// # Errors
    /// [`Error::ConstantColumn`] for a column whose values are all equal (or whose
    /// spread is too small to represent), naming `path` and `names[j]`.
    pub fn fit(values: &Array2<f64>, path: &Path, names: &[String]) -> Result<Self> {
        let n = values.nrows().max(1) as f64;
        let mut mean = Vec::new();
        let mut inv_std = Vec::new();
        for (j, col) in values.columns().into_iter().enumerate() {
            let m = col.sum() / n;
            let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            let inv = (1.0 / var.sqrt()) as f32;
            let spread_ok = var > 0.0 && inv.is_finite() && inv > 0.0;
            if !spread_ok || col.iter().all(|&v| v == col[0]) {
                return Err(Error::ConstantColumn {
                    path: path.into(),
                    column: j + 1,
                    name: names.get(j).cloned().unwrap_or_default(),
                });
            }
            mean.push(m as f32);
            inv_std.push(inv);
        }
        Ok(Standardizer { mean, inv_std })
    }

    /// Standardises `values` into `F`, computing `(v - mean) * inv_std` in `F`
    /// (for `f32` the same arithmetic `maf-core` does).
    pub fn apply<F: crate::model::Real>(&self, values: &Array2<f64>) -> Array2<F> {
        let mut out = Array2::zeros(values.raw_dim());
        Zip::indexed(&mut out)
            .and(values)
            .for_each(|(_, j), o: &mut F, &v| {
                let v = F::of(f64::from(v as f32));
                *o = (v - F::of(f64::from(self.mean[j]))) * F::of(f64::from(self.inv_std[j]));
            });
        out
    }

    /// `Σ ln inv_std`: the log-Jacobian that turns standardised log densities into
    /// raw-unit ones.
    pub fn log_jacobian(&self) -> f64 {
        self.inv_std.iter().map(|&s| f64::from(s).ln()).sum()
    }
}
