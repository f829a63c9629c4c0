//! Per-column standardisation, rounded as the blob stores it.

use std::path::Path;

use ndarray::{Array2, Zip};

use crate::error::{Error, Result};

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
