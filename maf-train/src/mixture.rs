//! Gaussian mixtures fitted by expectation–maximisation from a k-means++ start:
//! the plain mixture that embedded libraries ship, and the base a flow starts
//! from (`docs/model.md`, "Mixture base").
//!
//! Everything here is `f64` on standardised data. A component is kept as its
//! weight, its mean and the lower-triangular factor `W` of its precision
//! (`Wᵀ W = Σ⁻¹`, `W = L⁻¹` for the Cholesky factor `Σ = L Lᵀ`), the form the blob
//! stores; a diagonal component has a diagonal `W`.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use maf_core::Covariance;

/// `ln(2π) / 2`.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Added to every covariance's diagonal (standardised units): scikit-learn's
/// `reg_covar`, as in the anchor of `data/baselines.md`.
pub const REG_COVAR: f64 = 1e-4;

/// EM stops when the mean log-likelihood gains less than this per iteration
/// (scikit-learn's `tol`).
pub const TOL: f64 = 1e-3;

/// Most EM iterations (scikit-learn's `max_iter`).
pub const MAX_ITER: usize = 100;

/// A fitted Gaussian mixture.
#[derive(Clone, Debug, PartialEq)]
pub struct Gmm {
    /// Covariance structure.
    pub covariance: Covariance,
    /// Component weights, summing to 1.
    pub weights: Vec<f64>,
    /// Means, `K × D`.
    pub means: Array2<f64>,
    /// Precision factors `W_k`, each `D × D` lower triangular (diagonal for
    /// [`Covariance::Diagonal`]) with a positive diagonal.
    pub factors: Vec<Array2<f64>>,
}

impl Gmm {
    /// Number of components.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.means.ncols()
    }

    /// `ln w_k + log N(x_n; m_k, Σ_k)` for every row `n` and component `k`.
    pub fn component_log_densities(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let (n, d) = (x.nrows(), x.ncols());
        let mut out = Array2::zeros((n, self.components()));
        for (k, w) in self.factors.iter().enumerate() {
            let log_det: f64 = w.diag().iter().map(|v| v.ln()).sum();
            let c = self.weights[k].ln() + log_det - d as f64 * HALF_LN_2PI;
            let centred = &x - &self.means.row(k);
            let z = centred.dot(&w.t());
            let q = z.map_axis(Axis(1), |r| r.iter().map(|v| v * v).sum::<f64>());
            out.column_mut(k).assign(&q.mapv(|q| c - 0.5 * q));
        }
        out
    }

    /// Per-row log density (standardised units).
    pub fn log_likelihoods(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let v = self.component_log_densities(x);
        v.map_axis(Axis(1), |r| log_sum_exp(r.iter().copied()))
    }

    /// The equal-weight average of mixtures of one covariance type and
    /// dimension: one mixture of all their components, each weight divided by
    /// the number of members, so its density is the members' mean density.
    /// `None` for no members or members that do not match.
    pub fn average(members: &[Gmm]) -> Option<Gmm> {
        let first = members.first()?;
        let (d, covariance) = (first.dim(), first.covariance);
        if members
            .iter()
            .any(|g| g.dim() != d || g.covariance != covariance)
        {
            return None;
        }
        let share = 1.0 / members.len() as f64;
        let views: Vec<_> = members.iter().map(|g| g.means.view()).collect();
        Some(Gmm {
            covariance,
            weights: members
                .iter()
                .flat_map(|g| g.weights.iter().map(move |w| w * share))
                .collect(),
            means: ndarray::concatenate(Axis(0), &views).ok()?,
            factors: members.iter().flat_map(|g| g.factors.clone()).collect(),
        })
    }

    /// Free parameters: weights, means and covariances.
    pub fn parameter_count(&self) -> usize {
        let (k, d) = (self.components(), self.dim());
        let cov = match self.covariance {
            Covariance::Full => d * (d + 1) / 2,
            Covariance::Diagonal => d,
        };
        k - 1 + k * d + k * cov
    }
}

/// `ln Σ exp(v)`, stable.
pub fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Why a mixture could not be fitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FitError {
    /// Fewer rows than components.
    TooFewRows,
    /// A covariance was not positive definite even with [`REG_COVAR`].
    NotPositiveDefinite,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::TooFewRows => f.write_str("fewer rows than components"),
            FitError::NotPositiveDefinite => f.write_str("a covariance is not positive definite"),
        }
    }
}

/// Fits a `k`-component mixture to the rows of `x` (standardised): k-means++
/// seeding, Lloyd iterations, then EM until the mean log-likelihood gains less
/// than [`TOL`] or [`MAX_ITER`] iterations. Deterministic for a seed.
///
/// # Errors
/// [`FitError`] when `x` has fewer rows than `k` or a covariance is singular.
pub fn fit(
    x: ArrayView2<'_, f64>,
    k: usize,
    covariance: Covariance,
    seed: u64,
) -> Result<Gmm, FitError> {
    let n = x.nrows();
    if k == 0 || n < k.max(2) {
        return Err(FitError::TooFewRows);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6A11_0C0D);
    let labels = kmeans(x, k, &mut rng);
    let mut resp = Array2::<f64>::zeros((n, k));
    for (i, &l) in labels.iter().enumerate() {
        resp[(i, l)] = 1.0;
    }
    let mut gmm = m_step(x, &resp, covariance)?;
    let mut prev = f64::NEG_INFINITY;
    for _ in 0..MAX_ITER {
        let v = gmm.component_log_densities(x);
        let mut mean_ll = 0.0;
        for (mut r, vr) in resp.rows_mut().into_iter().zip(v.rows()) {
            let lse = log_sum_exp(vr.iter().copied());
            mean_ll += lse;
            for (r, &v) in r.iter_mut().zip(vr) {
                *r = (v - lse).exp();
            }
        }
        mean_ll /= n as f64;
        gmm = m_step(x, &resp, covariance)?;
        if (mean_ll - prev).abs() < TOL {
            break;
        }
        prev = mean_ll;
    }
    Ok(gmm)
}

/// k-means++ seeding and up to 30 Lloyd iterations; returns each row's cluster.
fn kmeans(x: ArrayView2<'_, f64>, k: usize, rng: &mut impl Rng) -> Vec<usize> {
    let n = x.nrows();
    let sq = |a: ndarray::ArrayView1<'_, f64>, b: ndarray::ArrayView1<'_, f64>| -> f64 {
        a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
    };
    let mut centres = Array2::<f64>::zeros((k, x.ncols()));
    centres.row_mut(0).assign(&x.row(rng.gen_range(0..n)));
    let mut dist: Vec<f64> = (0..n).map(|i| sq(x.row(i), centres.row(0))).collect();
    for c in 1..k {
        let total: f64 = dist.iter().sum();
        let pick = if total > 0.0 {
            let mut t = rng.gen_range(0.0..total);
            let mut chosen = n - 1;
            for (i, &d) in dist.iter().enumerate() {
                if t < d {
                    chosen = i;
                    break;
                }
                t -= d;
            }
            chosen
        } else {
            rng.gen_range(0..n)
        };
        centres.row_mut(c).assign(&x.row(pick));
        for (i, d) in dist.iter_mut().enumerate() {
            *d = d.min(sq(x.row(i), centres.row(c)));
        }
    }
    let mut labels = vec![0usize; n];
    for iter in 0..30 {
        let mut changed = false;
        for (i, l) in labels.iter_mut().enumerate() {
            let best = (0..k)
                .map(|c| (c, sq(x.row(i), centres.row(c))))
                .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a })
                .0;
            if best != *l || iter == 0 {
                changed |= best != *l;
                *l = best;
            }
        }
        if !changed && iter > 0 {
            break;
        }
        let mut sums = Array2::<f64>::zeros(centres.raw_dim());
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            let mut s = sums.row_mut(l);
            s += &x.row(i);
            counts[l] += 1;
        }
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                let m = &sums.row(c) / count as f64;
                centres.row_mut(c).assign(&m);
            }
        }
    }
    labels
}

/// The M step: weights, means and regularised covariances from the
/// responsibilities, and each covariance's precision factor.
fn m_step(
    x: ArrayView2<'_, f64>,
    resp: &Array2<f64>,
    covariance: Covariance,
) -> Result<Gmm, FitError> {
    let d = x.ncols();
    let k = resp.ncols();
    // scikit-learn adds 10 machine epsilons so an empty component stays defined.
    let nk: Vec<f64> = resp
        .sum_axis(Axis(0))
        .iter()
        .map(|v| v + 10.0 * f64::EPSILON)
        .collect();
    let means = resp.t().dot(&x) / &Array2::from_shape_fn((k, 1), |(c, _)| nk[c]);
    let mut factors = Vec::with_capacity(k);
    for (c, &nc) in nk.iter().enumerate() {
        let centred = &x - &means.row(c);
        let r = resp.column(c);
        let factor = match covariance {
            Covariance::Full => {
                let weighted = &centred * &r.insert_axis(Axis(1)).mapv(f64::sqrt);
                let mut cov = weighted.t().dot(&weighted) / nc;
                for j in 0..d {
                    cov[(j, j)] += REG_COVAR;
                }
                precision_factor(&cov).ok_or(FitError::NotPositiveDefinite)?
            }
            Covariance::Diagonal => {
                let mut w = Array2::zeros((d, d));
                for j in 0..d {
                    let var = centred
                        .column(j)
                        .iter()
                        .zip(r)
                        .map(|(v, r)| r * v * v)
                        .sum::<f64>()
                        / nc
                        + REG_COVAR;
                    w[(j, j)] = 1.0 / var.sqrt();
                }
                w
            }
        };
        factors.push(factor);
    }
    let total: f64 = nk.iter().sum();
    Ok(Gmm {
        covariance,
        weights: nk.iter().map(|v| v / total).collect(),
        means,
        factors,
    })
}

/// `W = L⁻¹` for the Cholesky factor `L` of `cov` (lower triangular, positive
/// diagonal), or `None` if `cov` is not positive definite.
pub fn precision_factor(cov: &Array2<f64>) -> Option<Array2<f64>> {
    let d = cov.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        let mut s = cov[(j, j)];
        for p in 0..j {
            s -= l[(j, p)] * l[(j, p)];
        }
        if !(s > 0.0 && s.is_finite()) {
            return None;
        }
        l[(j, j)] = s.sqrt();
        for i in j + 1..d {
            let mut t = cov[(i, j)];
            for p in 0..j {
                t -= l[(i, p)] * l[(j, p)];
            }
            l[(i, j)] = t / l[(j, j)];
        }
    }
    // Invert the lower-triangular L column by column (forward substitution).
    let mut w = Array2::<f64>::zeros((d, d));
    for col in 0..d {
        for i in col..d {
            let mut s = if i == col { 1.0 } else { 0.0 };
            for p in col..i {
                s -= l[(i, p)] * w[(p, col)];
            }
            w[(i, col)] = s / l[(i, i)];
        }
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn precision_factor_inverts_the_covariance() {
        let cov = ndarray::array![[2.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 0.5]];
        let w = precision_factor(&cov).unwrap();
        // Wᵀ W Σ = I.
        let id = w.t().dot(&w).dot(&cov);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((id[(i, j)] - want).abs() < 1e-12, "{id}");
            }
            for j in i + 1..3 {
                assert_eq!(w[(i, j)], 0.0);
            }
        }
        assert!(precision_factor(&ndarray::array![[1.0, 2.0], [2.0, 1.0]]).is_none());
    }

    #[test]
    fn the_average_of_mixtures_has_their_mean_density() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = Array2::from_shape_fn((400, 3), |(i, j)| {
            let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
            z + if i % 2 == 0 { 3.0 } else { 0.0 } * j as f64
        });
        for cov in [Covariance::Full, Covariance::Diagonal] {
            let members: Vec<Gmm> = (0..3).map(|s| fit(x.view(), 3, cov, s).unwrap()).collect();
            let avg = Gmm::average(&members).unwrap();
            assert_eq!(avg.components(), 9);
            assert!((avg.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let got = avg.log_likelihoods(x.view());
            let each: Vec<Array1<f64>> = members
                .iter()
                .map(|g| g.log_likelihoods(x.view()))
                .collect();
            for (n, &g) in got.iter().enumerate() {
                let want = log_sum_exp(each.iter().map(|e| e[n])) - 3f64.ln();
                assert!((g - want).abs() < 1e-10, "row {n}: {g} vs {want}");
            }
        }
        // Members must agree on dimension and covariance type.
        let full = fit(x.view(), 2, Covariance::Full, 0).unwrap();
        let diag = fit(x.view(), 2, Covariance::Diagonal, 0).unwrap();
        assert!(Gmm::average(&[full, diag]).is_none());
        assert!(Gmm::average(&[]).is_none());
    }

    #[test]
    fn em_recovers_two_separated_clusters() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 3000;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
            let centre = if i % 3 == 0 { 4.0 } else { -2.0 };
            centre * (1.0 + j as f64) + 0.5 * z
        });
        let g = fit(x.view(), 2, Covariance::Full, 0).unwrap();
        let mut w = g.weights.clone();
        w.sort_by(f64::total_cmp);
        assert!((w[0] - 1.0 / 3.0).abs() < 0.02, "{w:?}");
        let ll = g.log_likelihoods(x.view()).mean().unwrap();
        // Each cluster: two independent N(., 0.25): ln density ≈ -ln(2π·0.25) - 1.
        let want = -(2.0 * std::f64::consts::PI * 0.25).ln() - 1.0
            + (-(3f64.ln()) * 1.0 / 3.0 - (1.5f64).ln() * 2.0 / 3.0);
        assert!((ll - want).abs() < 0.05, "{ll} vs {want}");
        let d = fit(x.view(), 2, Covariance::Diagonal, 0).unwrap();
        assert!(d.factors.iter().all(|f| f[(1, 0)] == 0.0));
    }
}
