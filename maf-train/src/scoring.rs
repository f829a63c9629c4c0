//! Log densities of data rows with `maf-core`, the same arithmetic as the device.

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};

/// Log density of every row with `maf-core`; a row whose result overflows `f32`
/// gives `-inf`.
///
/// # Errors
/// [`Error::Model`] naming `path` and the row if `maf-core` refuses a row.
pub fn core_log_probs(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<f64>> {
    Ok(core_log_probs_f32(view, x, c, path)?
        .into_iter()
        .map(|v| v.map_or(f64::NEG_INFINITY, f64::from))
        .collect())
}

/// Like [`core_log_probs`], in `f32` as the device computes, `None` for a row whose
/// log density overflows `f32`.
///
/// # Errors
/// As [`core_log_probs`].
pub fn core_log_probs_f32(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<Option<f32>>> {
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let mut out = Vec::with_capacity(x.nrows());
    let (mut xr, mut cr) = (Vec::new(), Vec::new());
    for r in 0..x.nrows() {
        xr.clear();
        cr.clear();
        xr.extend(x.row(r).iter().map(|&v| v as f32));
        cr.extend(c.row(r).iter().map(|&v| v as f32));
        match view.log_prob(&xr, &cr, &mut scratch) {
            Ok(v) => out.push(Some(v)),
            Err(maf_core::Error::Overflow) => out.push(None),
            Err(e) => {
                return Err(Error::Model {
                    context: format!("{}, data row {}", path.display(), r + 1),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}
