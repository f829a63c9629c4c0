//! Whole-set batch-norm statistics and the training loss with its gradient (the
//! backward pass through every MADE, split over threads by rows).

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Slice, Zip};

use super::arch::Real;
use super::forward::{BnMode, BnStats, Cache, activate_backward, row};
use super::par;
use super::params::{ALL_KINDS, KINDS, Kind, Masks, Params};
use super::scratch::Scratch;
use super::sums::{col_sums, col_sums_prod};

/// Batch norm's backward pass from its output gradient `g` to its input's,
/// `a * g - ab - xhat * cis` element by element (per-column coefficients from
/// the minibatch's column sums).
struct BnBackward<F> {
    a: Array1<F>,
    ab: Array1<F>,
    cis: Array1<F>,
}

impl<F: Real> BnBackward<F> {
    /// `g = a * g - ab - xhat * cis` element by element, row by row when both
    /// are contiguous.
    fn apply(&self, g: &mut ArrayViewMut2<'_, F>, xhat: &ArrayView2<'_, F>) {
        let d = g.ncols();
        let (a, ab, cis) = (self.a.as_slice(), self.ab.as_slice(), self.cis.as_slice());
        match (g.as_slice_mut(), xhat.as_slice(), a, ab, cis) {
            (Some(gs), Some(xs), Some(a), Some(ab), Some(cis)) if d > 0 && gs.len() == xs.len() => {
                for (grow, xrow) in gs.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
                    for ((g, &xh), ((&a, &ab), &cis)) in
                        grow.iter_mut().zip(xrow).zip(a.iter().zip(ab).zip(cis))
                    {
                        *g = a * *g - ab - xh * cis;
                    }
                }
            }
            _ => Zip::from(g)
                .and(xhat)
                .and_broadcast(&self.a)
                .and_broadcast(&self.ab)
                .and_broadcast(&self.cis)
                .for_each(|g, &xh, &a, &ab, &cis| *g = a * *g - ab - xh * cis),
        }
    }
}

/// The backward pass's per-row gradients of one MADE, kept for its weight
/// gradients.
struct RowGrads<F> {
    /// With respect to `(mu, alpha)`, rows × 2D.
    g_o: Array2<F>,
    /// With respect to the second hidden pre-activation (two hidden layers).
    g_a2: Option<Array2<F>>,
    /// With respect to the first hidden pre-activation, rows × H.
    g_a1: Array2<F>,
}

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
            let _ = self.forward(
                x,
                c,
                BnMode::Collect(&mut st),
                false,
                1,
                &mut Scratch::new(),
            );
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

    /// [`Params::loss_and_grad`] on `threads` threads of the current `micropool` pool:
    /// each MADE's forward and backward pass over blocks of rows, then the weight
    /// gradients one tensor per job. Every value is computed by the same
    /// operations in the same order as on one thread, so the bits are the same
    /// for every thread count.
    pub fn loss_and_grad_threads(
        &self,
        masks: &Masks<F>,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        grad: &mut Params<F>,
        threads: usize,
    ) -> F {
        self.loss_and_grad_with(masks, x, c, grad, threads, &mut Scratch::new())
    }

    /// [`Params::loss_and_grad_threads`] with its intermediate arrays taken from
    /// and given back to `scratch` (so that a training loop reuses them from one
    /// minibatch to the next; the results do not depend on what `scratch` held).
    pub fn loss_and_grad_with(
        &self,
        masks: &Masks<F>,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        grad: &mut Params<F>,
        threads: usize,
        scratch: &mut Scratch<F>,
    ) -> F {
        let arch = self.arch;
        let n = x.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let (y, logdet, caches) = self.forward(x, c, BnMode::Batch, true, threads, scratch);
        let loss = -(self.base_log_density(&y) + &logdet).sum() * inv_n;
        // L = mean_n(-log base(y_n) - logdet_n): for the standard normal,
        // dL/dy = y / N.
        let mut g = self.base_backward(masks, &y, grad, scratch);
        let mut per_made: Vec<Option<RowGrads<F>>> = (0..arch.layers).map(|_| None).collect();
        for (l, cache) in caches.iter().enumerate().rev() {
            let bn = if arch.batch_norm {
                let lg = row(self.get(l, Kind::LogGamma));
                let gamma = lg.mapv(F::exp);
                let sum_g = col_sums(&g.view());
                let sum_gx = col_sums_prod(&g.view(), &cache.xhat.view());
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
                Some(BnBackward { a, ab, cis })
            } else {
                None
            };
            let mut g_u = g;
            let (rows, g_in) = self.rows_backward(
                l,
                cache,
                &mut g_u,
                bn.as_ref(),
                inv_n,
                l > 0,
                threads,
                scratch,
            );
            per_made[l] = Some(rows);
            scratch.give2(g_u);
            g = g_in;
        }
        scratch.give2(g);
        scratch.give2(y);
        let per_made: Vec<RowGrads<F>> = per_made.into_iter().flatten().collect();
        self.weight_grads(masks, c, &caches, &per_made, grad, threads);
        for cache in caches {
            cache.give_back(scratch);
        }
        for rg in per_made {
            for a in [rg.g_o, rg.g_a1].into_iter().chain(rg.g_a2) {
                scratch.give2(a);
            }
        }
        loss
    }

    /// One MADE's backward pass through its affine core, row by row (blocks of
    /// rows on the current `micropool` pool): from the gradient `g_u` with respect to
    /// its output `u` to the per-row gradients of [`RowGrads`] and, when `need_in`,
    /// the gradient with respect to its input (else a `0 × 0` array). With `bn`,
    /// `g_u` is first taken through batch norm (in place, block by block).
    #[allow(clippy::too_many_arguments)]
    fn rows_backward(
        &self,
        l: usize,
        cache: &Cache<F>,
        g_u: &mut Array2<F>,
        bn: Option<&BnBackward<F>>,
        inv_n: F,
        need_in: bool,
        threads: usize,
        scratch: &mut Scratch<F>,
    ) -> (RowGrads<F>, Array2<F>) {
        let arch = &self.arch;
        let (n, d, h) = (g_u.nrows(), arch.dim, arch.hidden);
        // Every value is written below (assignments, or products with beta 0
        // after which g_in's product adds to its assigned values).
        let mut out = RowGrads {
            g_o: scratch.take2(n, 2 * d),
            g_a2: (arch.hidden_layers == 2).then(|| scratch.take2(n, h)),
            g_a1: scratch.take2(n, h),
        };
        let mut g_in = if need_in {
            scratch.take2(n, d)
        } else {
            Array2::zeros((0, 0))
        };
        let blocks = par::blocks(n, threads);
        let jobs: Vec<_> = blocks
            .iter()
            .cloned()
            .zip(par::cut(Some(g_u), &blocks))
            .zip(par::cut(Some(&mut out.g_o), &blocks))
            .zip(par::cut(out.g_a2.as_mut(), &blocks))
            .zip(par::cut(Some(&mut out.g_a1), &blocks))
            .zip(par::cut(Some(&mut g_in), &blocks))
            .filter_map(|(((((r, gu), g_o), g_a2), g_a1), g_in)| {
                Some((r, gu?, g_o?, g_a2, g_a1?, g_in))
            })
            .collect();
        par::run(jobs, threads, |(r, mut gu, g_o, g_a2, g_a1, g_in)| {
            if let Some(bn) = bn {
                bn.apply(
                    &mut gu,
                    &cache.xhat.slice_axis(Axis(0), Slice::from(r.clone())),
                );
            }
            self.rows_backward_into(l, cache, gu.view(), inv_n, r, g_o, g_a2, g_a1, g_in);
        });
        (out, g_in)
    }

    /// [`Params::rows_backward`] for the rows `r`, written into the blocks.
    #[allow(clippy::too_many_arguments)]
    fn rows_backward_into(
        &self,
        l: usize,
        cache: &Cache<F>,
        gu: ArrayView2<'_, F>,
        inv_n: F,
        r: Range<usize>,
        mut g_o: ArrayViewMut2<'_, F>,
        g_a2: Option<ArrayViewMut2<'_, F>>,
        mut g_a1: ArrayViewMut2<'_, F>,
        g_in: Option<ArrayViewMut2<'_, F>>,
    ) {
        let arch = &self.arch;
        fn rows<'a, F>(a: &'a Array2<F>, r: &Range<usize>) -> ArrayView2<'a, F> {
            a.slice_axis(Axis(0), Slice::from(r.clone()))
        }
        let e = rows(&cache.e, &r);
        let (one, zero) = (F::one(), F::zero());
        // u = (s - mu) e, loss + mean_n Σ alpha.
        let (d, u) = (arch.dim, rows(&cache.u, &r));
        match (
            g_o.as_slice_mut(),
            gu.as_slice(),
            e.as_slice(),
            u.as_slice(),
        ) {
            // Row by row over the contiguous blocks (as in the forward pass).
            (Some(go), Some(gs), Some(es), Some(us)) if d > 0 => {
                let rows = go
                    .chunks_exact_mut(2 * d)
                    .zip(gs.chunks_exact(d))
                    .zip(es.chunks_exact(d).zip(us.chunks_exact(d)));
                for ((orow, grow), (erow, urow)) in rows {
                    let (g_mu, g_alpha) = orow.split_at_mut(d);
                    for ((m, a), ((&g, &e), &u)) in g_mu
                        .iter_mut()
                        .zip(g_alpha.iter_mut())
                        .zip(grow.iter().zip(erow).zip(urow))
                    {
                        *m = -g * e;
                        *a = inv_n - g * u;
                    }
                }
            }
            _ => {
                let (g_mu, g_alpha) = g_o.view_mut().split_at(Axis(1), d);
                Zip::from(g_mu)
                    .and(&gu)
                    .and(&e)
                    .for_each(|o, &g, &e| *o = -g * e);
                Zip::from(g_alpha)
                    .and(&gu)
                    .and(&u)
                    .for_each(|o, &g, &u| *o = inv_n - g * u);
            }
        }
        let wo_t = self.get(l, Kind::Wo).t();
        if let (Some(mut g_a2), Some(a2), Some(h2)) = (g_a2, &cache.a2, &cache.h2) {
            general_mat_mul(one, &g_o, &wo_t, zero, &mut g_a2);
            activate_backward(arch.activation, &mut g_a2, &rows(a2, &r), &rows(h2, &r));
            general_mat_mul(one, &g_a2, &self.get(l, Kind::W2).t(), zero, &mut g_a1);
        } else {
            general_mat_mul(one, &g_o, &wo_t, zero, &mut g_a1);
        }
        activate_backward(
            arch.activation,
            &mut g_a1,
            &rows(&cache.a1, &r),
            &rows(&cache.h1, &r),
        );
        // Gradient with respect to this MADE's input (the previous layer's output).
        if let Some(mut g_in) = g_in {
            match (g_in.as_slice_mut(), gu.as_slice(), e.as_slice()) {
                (Some(o), Some(g), Some(e)) => {
                    for ((o, &g), &e) in o.iter_mut().zip(g).zip(e) {
                        *o = g * e;
                    }
                }
                _ => Zip::from(&mut g_in)
                    .and(&gu)
                    .and(&e)
                    .for_each(|o, &g, &e| *o = g * e),
            }
            general_mat_mul(one, &g_a1, &self.get(l, Kind::W1).t(), one, &mut g_in);
        }
    }

    /// The gradients of every MADE's weights and biases from the per-row
    /// gradients, one tensor per job on the current `micropool` pool (each a whole
    /// product or column sum, as on one thread).
    fn weight_grads(
        &self,
        masks: &Masks<F>,
        c: ArrayView2<'_, F>,
        caches: &[Cache<F>],
        per_made: &[RowGrads<F>],
        grad: &mut Params<F>,
        threads: usize,
    ) {
        let (one, zero) = (F::one(), F::zero());
        let context = self.arch.context > 0;
        let jobs: Vec<_> = grad
            .tensors
            .iter_mut()
            .take(self.arch.layers * KINDS)
            .enumerate()
            .filter_map(|(i, t)| {
                let (l, kind) = (i / KINDS, ALL_KINDS[i % KINDS]);
                let (cache, rg) = (caches.get(l)?, per_made.get(l)?);
                let two = rg.g_a2.as_ref().zip(cache.h2.as_ref());
                match kind {
                    Kind::W1 | Kind::B1 | Kind::Wo | Kind::Bo => Some((l, kind, t)),
                    Kind::Wc if context => Some((l, kind, t)),
                    Kind::W2 | Kind::B2 if two.is_some() => Some((l, kind, t)),
                    _ => None,
                }
            })
            .collect();
        par::run(jobs, threads, |(l, kind, gw)| {
            let (cache, rg) = (&caches[l], &per_made[l]);
            match kind {
                Kind::Wo => {
                    let h = cache.h2.as_ref().unwrap_or(&cache.h1);
                    general_mat_mul(one, &h.t(), &rg.g_o, zero, gw);
                }
                Kind::Bo => gw.row_mut(0).assign(&col_sums(&rg.g_o.view())),
                Kind::W2 => {
                    if let Some(g_a2) = &rg.g_a2 {
                        general_mat_mul(one, &cache.h1.t(), g_a2, zero, gw);
                    }
                }
                Kind::B2 => {
                    if let Some(g_a2) = &rg.g_a2 {
                        gw.row_mut(0).assign(&col_sums(&g_a2.view()));
                    }
                }
                Kind::W1 => general_mat_mul(one, &cache.input.t(), &rg.g_a1, zero, gw),
                Kind::Wc => general_mat_mul(one, &c.t(), &rg.g_a1, zero, gw),
                Kind::B1 => gw.row_mut(0).assign(&col_sums(&rg.g_a1.view())),
                Kind::LogGamma | Kind::Beta => {}
            }
            if let Some(m) = masks.get(l, kind) {
                *gw *= m;
            }
        });
    }
}
