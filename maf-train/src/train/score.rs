//! Validation scores: per-row and mean log-likelihoods in raw units, and the
//! trimmed mean that early stopping and the search compare.

use ndarray::{ArrayView2, Axis};

use crate::model::{BnStats, Params, Real};

/// Mean raw-unit log-likelihood of the rows `x`, `c` under `params` with whole-set
/// `stats`, computed in `f64` (heavy-tailed rows far outside the training range
/// must not overflow to NaN) in chunks; `log_jacobian` is the standardisation's
/// `Σ ln inv_std`.
pub fn mean_log_likelihood(
    params: &Params<f64>,
    stats: &BnStats,
    x: ArrayView2<'_, f64>,
    c: ArrayView2<'_, f64>,
    log_jacobian: f64,
) -> f64 {
    let lls = log_likelihoods(params, stats, x, c, log_jacobian);
    lls.iter().sum::<f64>() / lls.len().max(1) as f64
}

/// Per-row raw-unit log-likelihoods (see [`mean_log_likelihood`]), computed in `F`.
pub fn log_likelihoods<F: Real>(
    params: &Params<F>,
    stats: &BnStats,
    x: ArrayView2<'_, F>,
    c: ArrayView2<'_, F>,
    log_jacobian: f64,
) -> Vec<f64> {
    let n = x.nrows();
    let mut out = Vec::with_capacity(n);
    let chunk = 4096;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let lp = params.log_prob(
            x.slice_axis(Axis(0), (start..end).into()),
            c.slice_axis(Axis(0), (start..end).into()),
            Some(stats),
        );
        out.extend(lp.iter().map(|&v| v.f64() + log_jacobian));
        start = end;
    }
    out
}

/// Mean of the values after dropping the lowest `frac` of them (NaN counts as
/// lowest): a validation score that a few far-out rows cannot dominate.
pub fn trimmed_mean_low(v: &[f64], frac: f64) -> f64 {
    let mut s: Vec<f64> = v
        .iter()
        .map(|&x| if x.is_nan() { f64::NEG_INFINITY } else { x })
        .collect();
    s.sort_by(f64::total_cmp);
    let drop = ((s.len() as f64 * frac).floor() as usize).min(s.len().saturating_sub(1));
    let kept = &s[drop..];
    kept.iter().sum::<f64>() / kept.len().max(1) as f64
}
