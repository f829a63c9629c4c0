//! The base density of the flow's outputs: the standard normal, or a Gaussian
//! mixture (stable log-sum-exp), and its backward pass.

use ndarray::{Array1, Array2, Axis, Zip};

use super::arch::{HALF_LN_2PI, Real};
use super::params::{Masks, Params};
use super::scratch::Scratch;
use super::sums::col_sums;

impl<F: Real> Params<F> {
    /// Per-row base log density of the flow's outputs `y`.
    pub fn base_log_density(&self, y: &Array2<F>) -> Array1<F> {
        match self.base() {
            None => Self::log_normal(y),
            Some(_) => {
                let v = self.component_terms(y);
                v.map_axis(Axis(1), |r| {
                    let max = r.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
                    if !max.is_finite() {
                        return max;
                    }
                    max + r.iter().fold(F::zero(), |a, &b| a + (b - max).exp()).ln()
                })
            }
        }
    }

    /// The dense `D × D` factor `W_k` of mixture component `k` (diagonal
    /// exponentiated).
    fn factor(&self, k: usize) -> Array2<F> {
        let d = self.arch.dim;
        let Some((_, _, f)) = self.base() else {
            return Array2::zeros((d, d));
        };
        Array2::from_shape_fn((d, d), |(j, i)| {
            let v = f[(k, j * d + i)];
            if i == j {
                v.exp()
            } else if i < j {
                v
            } else {
                F::zero()
            }
        })
    }

    /// `ln π_k + ln|det W_k| - (D/2) ln 2π - ½ |W_k (y - m_k)|²`, rows × K.
    fn component_terms(&self, y: &Array2<F>) -> Array2<F> {
        let d = self.arch.dim;
        let Some((logits, means, f)) = self.base() else {
            return Array2::zeros((y.nrows(), 0));
        };
        let k = logits.ncols();
        let lmax = logits.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let lse = lmax
            + logits
                .iter()
                .fold(F::zero(), |a, &b| a + (b - lmax).exp())
                .ln();
        let mut v = Array2::zeros((y.nrows(), k));
        for c in 0..k {
            let w = self.factor(c);
            let log_det = (0..d).fold(F::zero(), |a, j| a + f[(c, j * d + j)]);
            let konst = logits[(0, c)] - lse + log_det - F::of(HALF_LN_2PI * d as f64);
            let centred = y - &means.row(c);
            let z = centred.dot(&w.t());
            let half = F::of(0.5);
            Zip::from(v.column_mut(c))
                .and(z.rows())
                .for_each(|v, zr| *v = konst - half * zr.iter().fold(F::zero(), |a, &b| a + b * b));
        }
        v
    }

    /// Gradient of the loss `-mean_n(base log density of y_n)` with respect to
    /// `y` (returned, taken from `scratch`) and to the mixture's tensors (written
    /// into `grad`, masked).
    pub(super) fn base_backward(
        &self,
        masks: &Masks<F>,
        y: &Array2<F>,
        grad: &mut Params<F>,
        scratch: &mut Scratch<F>,
    ) -> Array2<F> {
        let n = y.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let mut g_y = scratch.take2(n, y.ncols());
        let Some((logits, means, _)) = self.base() else {
            Zip::from(&mut g_y).and(y).for_each(|g, &y| *g = y * inv_n);
            return g_y;
        };
        let d = self.arch.dim;
        let k = logits.ncols();
        let v = self.component_terms(y);
        // Responsibilities r_nk = softmax_k v_nk.
        let mut r = v;
        for mut row in r.rows_mut() {
            let max = row.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
            let mut s = F::zero();
            for x in row.iter_mut() {
                *x = (*x - max).exp();
                s += *x;
            }
            row.mapv_inplace(|x| x / s);
        }
        let lmax = logits.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let pi: Vec<F> = {
            let e: Vec<F> = logits.iter().map(|&l| (l - lmax).exp()).collect();
            let s = e.iter().fold(F::zero(), |a, &b| a + b);
            e.iter().map(|&x| x / s).collect()
        };
        g_y.fill(F::zero());
        let mut g_logit = Array2::<F>::zeros((1, k));
        let mut g_mean = Array2::<F>::zeros((k, d));
        let mut g_fac = Array2::<F>::zeros((k, d * d));
        for c in 0..k {
            let w = self.factor(c);
            let centred = y - &means.row(c);
            let z = centred.dot(&w.t());
            // dL/dz = r z / N.
            let rc = r.column(c).mapv(|x| x * inv_n);
            let gz = &z * &rc.clone().insert_axis(Axis(1));
            let gd = gz.dot(&w);
            g_y += &gd;
            g_mean.row_mut(c).assign(&(-col_sums(&gd.view())));
            let gw = gz.t().dot(&centred);
            let r_sum = rc.sum();
            g_logit[(0, c)] = pi[c] - r_sum;
            for j in 0..d {
                for i in 0..=j {
                    g_fac[(c, j * d + i)] = if i == j {
                        // W_jj = exp(θ): chain rule, and ln|det W| = Σ θ_jj gives -r/N.
                        gw[(j, j)] * w[(j, j)] - r_sum
                    } else {
                        gw[(j, i)]
                    };
                }
            }
        }
        if let Some(m) = &masks.base {
            g_fac *= m;
        }
        if let Some((a, b, c)) = grad.base_mut() {
            a.assign(&g_logit);
            b.assign(&g_mean);
            c.assign(&g_fac);
        }
        g_y
    }

    fn log_normal(y: &Array2<F>) -> Array1<F> {
        let d = y.ncols() as f64;
        y.map_axis(Axis(1), |r| {
            F::of(-HALF_LN_2PI * d) - F::of(0.5) * r.iter().fold(F::zero(), |a, &v| a + v * v)
        })
    }
}
