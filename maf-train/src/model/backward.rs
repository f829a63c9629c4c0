//! Whole-set batch-norm statistics and the training loss with its gradient (the
//! backward pass through every MADE, split over threads by rows).

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::arch::Real;
use super::forward::BnStats;
use super::forward::{BnMode, activate_backward, row};
use super::params::{Kind, Masks, Params};

impl<F: Real> Params<F> {
    /// Whole-set batch-norm statistics of the standardised rows `x` (computed layer
    /// by layer, each MADE seeing the previous layers normalised with whole-set
    /// statistics), accumulated in `f64`.
    pub fn bn_stats(&self, x: ArrayView2<'_, F>, c: ArrayView2<'_, F>) -> BnStats {
        let mut st = BnStats {
            mean: Vec::new(),
            var: Vec::new(),
        };
        if self.arch.batch_norm {
            let _ = self.forward(x, c, BnMode::Collect(&mut st), false, 1);
        }
        st
    }

    /// Mean negative log-likelihood of the minibatch (standardised units, batch norm
    /// in training mode) and its gradient with respect to every parameter, written
    /// into `grad` (masked entries zero). No weight decay.
    pub fn loss_and_grad(
        &self,
        masks: &Masks<F>,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        grad: &mut Params<F>,
    ) -> F {
        self.loss_and_grad_threads(masks, x, c, grad, 1)
    }

    /// [`Params::loss_and_grad`] with each MADE's forward pass split over
    /// `threads` threads by rows: the same bits for every thread count.
    pub fn loss_and_grad_threads(
        &self,
        masks: &Masks<F>,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        grad: &mut Params<F>,
        threads: usize,
    ) -> F {
        let arch = self.arch;
        let d = arch.dim;
        let n = x.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let (y, logdet, caches) = self.forward(x, c, BnMode::Batch, true, threads);
        let loss = -(self.base_log_density(&y) + &logdet).sum() * inv_n;
        // L = mean_n(-log base(y_n) - logdet_n): for the standard normal,
        // dL/dy = y / N.
        let mut g = self.base_backward(masks, &y, grad);
        for (l, cache) in caches.iter().enumerate().rev() {
            let g_u = if arch.batch_norm {
                let lg = row(self.get(l, Kind::LogGamma));
                let gamma = lg.mapv(F::exp);
                let sum_g = g.sum_axis(Axis(0));
                let sum_gx = (&g * &cache.xhat).sum_axis(Axis(0));
                grad.get_mut(l, Kind::Beta).row_mut(0).assign(&sum_g);
                // logdet has + Σ log_gamma, so the loss has - 1 per log_gamma.
                grad.get_mut(l, Kind::LogGamma)
                    .row_mut(0)
                    .assign(&(&gamma * &sum_gx).mapv(|v| v - F::one()));
                // Through xhat = (u - mean) * inv_std with batch statistics, plus the
                // loss's + ½ Σ ln(var + eps) term: d/du = xhat * inv_std / N.
                let a = &gamma * &cache.inv_std;
                let b = &sum_g * inv_n;
                let cc = (&gamma * &sum_gx).mapv(|v| (v - F::one()) * inv_n);
                let ab = &a * &b;
                let cis = &cc * &cache.inv_std;
                let mut gu = g;
                Zip::from(&mut gu)
                    .and(&cache.xhat)
                    .and_broadcast(&a)
                    .and_broadcast(&ab)
                    .and_broadcast(&cis)
                    .for_each(|g, &xh, &a, &ab, &cis| *g = a * *g - ab - xh * cis);
                gu
            } else {
                g
            };
            // u = (s - mu) e, loss + mean_n Σ alpha.
            let mut g_o = Array2::zeros((n, 2 * d));
            let (g_mu, g_alpha) = g_o.view_mut().split_at(Axis(1), d);
            Zip::from(g_mu)
                .and(&g_u)
                .and(&cache.e)
                .for_each(|o, &g, &e| *o = -g * e);
            Zip::from(g_alpha)
                .and(&g_u)
                .and(&cache.u)
                .for_each(|o, &g, &u| *o = inv_n - g * u);
            let h = cache.h2.as_ref().unwrap_or(&cache.h1);
            let gw = grad.get_mut(l, Kind::Wo);
            ndarray::linalg::general_mat_mul(F::one(), &h.t(), &g_o, F::zero(), gw);
            if let Some(m) = masks.get(l, Kind::Wo) {
                *gw *= m;
            }
            grad.get_mut(l, Kind::Bo)
                .row_mut(0)
                .assign(&g_o.sum_axis(Axis(0)));
            let mut g_h = g_o.dot(&self.get(l, Kind::Wo).t());
            let g_a1 = if let (Some(a2), Some(h2)) = (&cache.a2, &cache.h2) {
                activate_backward(arch.activation, &mut g_h, a2, h2);
                let gw = grad.get_mut(l, Kind::W2);
                ndarray::linalg::general_mat_mul(F::one(), &cache.h1.t(), &g_h, F::zero(), gw);
                if let Some(m) = masks.get(l, Kind::W2) {
                    *gw *= m;
                }
                grad.get_mut(l, Kind::B2)
                    .row_mut(0)
                    .assign(&g_h.sum_axis(Axis(0)));
                let mut g1 = g_h.dot(&self.get(l, Kind::W2).t());
                activate_backward(arch.activation, &mut g1, &cache.a1, &cache.h1);
                g1
            } else {
                activate_backward(arch.activation, &mut g_h, &cache.a1, &cache.h1);
                g_h
            };
            let gw = grad.get_mut(l, Kind::W1);
            ndarray::linalg::general_mat_mul(F::one(), &cache.input.t(), &g_a1, F::zero(), gw);
            if let Some(m) = masks.get(l, Kind::W1) {
                *gw *= m;
            }
            if arch.context > 0 {
                let gw = grad.get_mut(l, Kind::Wc);
                ndarray::linalg::general_mat_mul(F::one(), &c.t(), &g_a1, F::zero(), gw);
            }
            grad.get_mut(l, Kind::B1)
                .row_mut(0)
                .assign(&g_a1.sum_axis(Axis(0)));
            // Gradient with respect to this MADE's input (the previous layer's output).
            g = if l > 0 {
                let mut gs = &g_u * &cache.e;
                ndarray::linalg::general_mat_mul(
                    F::one(),
                    &g_a1,
                    &self.get(l, Kind::W1).t(),
                    F::one(),
                    &mut gs,
                );
                gs
            } else {
                Array2::zeros((0, 0))
            };
        }
        loss
    }
}
