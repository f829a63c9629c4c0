//! How the search scores and compares candidates: a mixture as a fitted model,
//! its validation score, the best trial, and paired per-row differences.

use std::time::Instant;

use maf_core::{Base, Covariance};

use super::trial::Trial;
use crate::hyper::CheckedFitParams;
use crate::mixture;
use crate::model::{Activation, Arch, BnStats, Params};
use crate::train::{self, Fitted};

/// The architecture of a mixture alone (no MADE; the flow fields are unused).
pub(super) fn mixture_arch(
    dim: usize,
    context: usize,
    components: usize,
    covariance: Covariance,
) -> Arch {
    Arch {
        dim,
        context,
        hidden: 1,
        hidden_layers: 1,
        layers: 0,
        batch_norm: false,
        activation: Activation::Relu,
        base: Base::Mixture {
            components,
            covariance,
        },
    }
}

/// A mixture's validation score (`train::trimmed_mean_low`) and its per-row
/// log-likelihoods in raw units.
pub(super) fn score_mixture(
    gmm: &mixture::Gmm,
    valid: ndarray::ArrayView2<'_, f64>,
    log_jacobian: f64,
    hp: &CheckedFitParams,
) -> (f64, Vec<f64>) {
    let lls: Vec<f64> = gmm
        .log_likelihoods(valid)
        .iter()
        .map(|v| v + log_jacobian)
        .collect();
    (train::trimmed_mean_low(&lls, hp.anomaly_quantile), lls)
}

/// A mixture alone as a fitted model (no flow, no batch norm).
pub(super) fn mixture_fit(
    arch: Arch,
    gmm: &mixture::Gmm,
    score: f64,
    lls: &[f64],
    t0: Instant,
) -> Fitted {
    let mut params = Params::<f32>::zeros(arch);
    params.set_base(gmm);
    Fitted {
        params,
        stats: BnStats {
            mean: Vec::new(),
            var: Vec::new(),
        },
        epochs: 0,
        best_epoch: 0,
        valid_ll: score,
        valid_mean_ll: lls.iter().sum::<f64>() / lls.len().max(1) as f64,
        recoveries: 0,
        elapsed: t0.elapsed(),
    }
}

/// The fitted trial with the best mean validation log-likelihood among those
/// `pick` accepts (on a tie the cheaper one).
pub(super) fn best_of(
    trials: &[Trial],
    fits: &[Option<Fitted>],
    pick: &dyn Fn(usize, &Trial) -> bool,
) -> Option<usize> {
    trials
        .iter()
        .enumerate()
        .filter(|(i, t)| fits[*i].is_some() && t.valid_ll.is_finite() && pick(*i, t))
        .max_by(|(_, a), (_, b)| {
            a.valid_ll
                .total_cmp(&b.valid_ll)
                .then(b.instructions.cmp(&a.instructions))
        })
        .map(|(i, _)| i)
}

/// Mean and two standard errors of `a - b` over the rows where `b >= cut` (the
/// rows early stopping scores: the lowest `anomaly_quantile` of the reference
/// left out, the same rows for both sides); a non-finite difference gives
/// `(-inf, inf)`.
pub(super) fn paired(a: &[f64], b: &[f64], cut: f64) -> (f64, f64) {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(_, y)| **y >= cut)
        .map(|(x, y)| x - y)
        .collect();
    let n = d.len().max(2) as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    let two_se = 2.0 * (var / n).sqrt();
    if mean.is_finite() && two_se.is_finite() {
        (mean, two_se)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
}
