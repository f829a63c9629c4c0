//! The forward pass: each MADE's affine core, batch norm (minibatch, fixed or
//! collected statistics) and the per-row log density.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

use super::arch::{Activation, BN_EPS, Real};
use super::params::{Kind, Params};

/// Whole-training-set batch-norm statistics (per MADE: mean and biased variance of
/// its output `u`), used for validation and export.
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats {
    /// Per MADE, per variable mean.
    pub mean: Vec<Vec<f64>>,
    /// Per MADE, per variable biased variance.
    pub var: Vec<Vec<f64>>,
}

/// How batch norm behaves in a forward pass.
pub(super) enum BnMode<'a> {
    /// Minibatch statistics, gradients through them.
    Batch,
    /// Fixed statistics.
    Fixed(&'a BnStats),
    /// Compute whole-set statistics in `f64` and use them.
    Collect(&'a mut BnStats),
}

/// What the backward pass needs from one MADE's forward pass.
pub(super) struct Cache<F> {
    pub(super) input: Array2<F>,
    pub(super) a1: Array2<F>,
    pub(super) h1: Array2<F>,
    pub(super) a2: Option<Array2<F>>,
    pub(super) h2: Option<Array2<F>>,
    /// `exp(-alpha)`.
    pub(super) e: Array2<F>,
    pub(super) u: Array2<F>,
    pub(super) xhat: Array2<F>,
    pub(super) inv_std: Array1<F>,
}

/// Per-column mean and biased variance of `u`, accumulated in `f64`.
fn column_stats<F: Real>(u: &Array2<F>) -> (Vec<f64>, Vec<f64>) {
    let nn = u.nrows().max(1) as f64;
    u.columns()
        .into_iter()
        .map(|col| {
            let m = col.iter().map(|v| v.f64()).sum::<f64>() / nn;
            let v = col.iter().map(|v| (v.f64() - m).powi(2)).sum::<f64>() / nn;
            (m, v)
        })
        .unzip()
}

fn activate<F: Real>(act: Activation, a: &Array2<F>) -> Array2<F> {
    match act {
        Activation::Relu => a.mapv(|v| if v > F::zero() { v } else { F::zero() }),
        Activation::Tanh => a.mapv(F::tanh_act),
    }
}

/// `g *= act'(a)` given the pre-activation `a` and activation `h`.
pub(super) fn activate_backward<F: Real>(
    act: Activation,
    g: &mut Array2<F>,
    a: &Array2<F>,
    h: &Array2<F>,
) {
    match act {
        // A select, not a conditional store: branch-free, vectorised.
        Activation::Relu => Zip::from(g).and(a).for_each(|g, &a| {
            *g = if a > F::zero() { *g } else { F::zero() };
        }),
        Activation::Tanh => Zip::from(g).and(h).for_each(|g, &h| *g *= F::one() - h * h),
    }
}

pub(super) fn row<F: Real>(t: &Array2<F>) -> ndarray::ArrayView1<'_, F> {
    t.row(0)
}

/// Fewest rows a thread of [`Params::made_rows`] gets (smaller chunks are not
/// worth a thread).
const MIN_ROWS_PER_THREAD: usize = 64;

impl<F: Real> Params<F> {
    /// One MADE's affine core: returns `(a1, h1, a2, h2, e = exp(-alpha), u, row
    /// sums of alpha)`.
    #[allow(clippy::type_complexity)]
    fn made(
        &self,
        l: usize,
        s: &ArrayView2<'_, F>,
        c: &ArrayView2<'_, F>,
    ) -> (
        Array2<F>,
        Array2<F>,
        Option<Array2<F>>,
        Option<Array2<F>>,
        Array2<F>,
        Array2<F>,
        Array1<F>,
    ) {
        let arch = &self.arch;
        let d = arch.dim;
        let mut a1 = s.dot(self.get(l, Kind::W1));
        if arch.context > 0 {
            ndarray::linalg::general_mat_mul(F::one(), c, self.get(l, Kind::Wc), F::one(), &mut a1);
        }
        a1 += &row(self.get(l, Kind::B1));
        let h1 = activate(arch.activation, &a1);
        let (a2, h2) = if arch.hidden_layers == 2 {
            let mut a2 = h1.dot(self.get(l, Kind::W2));
            a2 += &row(self.get(l, Kind::B2));
            let h2 = activate(arch.activation, &a2);
            (Some(a2), Some(h2))
        } else {
            (None, None)
        };
        let h = h2.as_ref().unwrap_or(&h1);
        let mut o = h.dot(self.get(l, Kind::Wo));
        o += &row(self.get(l, Kind::Bo));
        let (mu, alpha) = o.view().split_at(Axis(1), d);
        let e = alpha.mapv(|a| (-a).exp());
        let u = Zip::from(s)
            .and(&mu)
            .and(&e)
            .map_collect(|&s, &m, &e| (s - m) * e);
        let alpha_sum = alpha.sum_axis(Axis(1));
        (a1, h1, a2, h2, e, u, alpha_sum)
    }

    /// [`Params::made`]'s `u` and `alpha` row sums only, with the rows split over
    /// two threads when there are many (validation and whole-set statistics).
    fn made_split(
        &self,
        l: usize,
        s: &ArrayView2<'_, F>,
        c: &ArrayView2<'_, F>,
    ) -> (Array2<F>, Array1<F>) {
        let n = s.nrows();
        if n < 2048 {
            let r = self.made(l, s, c);
            return (r.5, r.6);
        }
        let half = n / 2;
        let (s0, s1) = s.view().split_at(Axis(0), half);
        let (c0, c1) = c.view().split_at(Axis(0), half);
        let (r0, r1) = std::thread::scope(|sc| {
            let t = sc.spawn(|| self.made(l, &s1, &c1));
            let r0 = self.made(l, &s0, &c0);
            (r0, t.join())
        });
        let r1 = match r1 {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        let u = ndarray::concatenate(Axis(0), &[r0.5.view(), r1.5.view()])
            .unwrap_or_else(|_| unreachable!("halves of one matrix"));
        let a = ndarray::concatenate(Axis(0), &[r0.6.view(), r1.6.view()])
            .unwrap_or_else(|_| unreachable!("halves of one matrix"));
        (u, a)
    }

    /// [`Params::made`] with the rows split into `threads` contiguous chunks, one
    /// thread each. Every row's results are computed by the same operations as in
    /// one call over all rows (the products are row by row), so they are the same
    /// bits whatever `threads` is (tested: `tests/threads.rs`).
    #[allow(clippy::type_complexity)]
    fn made_rows(
        &self,
        l: usize,
        s: &ArrayView2<'_, F>,
        c: &ArrayView2<'_, F>,
        threads: usize,
    ) -> (
        Array2<F>,
        Array2<F>,
        Option<Array2<F>>,
        Option<Array2<F>>,
        Array2<F>,
        Array2<F>,
        Array1<F>,
    ) {
        let n = s.nrows();
        let threads = threads.min(n / MIN_ROWS_PER_THREAD).max(1);
        if threads == 1 {
            return self.made(l, s, c);
        }
        let per = n.div_ceil(threads);
        let parts = std::thread::scope(|sc| {
            let handles: Vec<_> = (1..threads)
                .map(|t| {
                    let (lo, hi) = ((t * per).min(n), ((t + 1) * per).min(n));
                    let st = s.slice_axis(Axis(0), ndarray::Slice::from(lo..hi));
                    let ct = c.slice_axis(Axis(0), ndarray::Slice::from(lo..hi));
                    sc.spawn(move || self.made(l, &st, &ct))
                })
                .collect();
            let head = ndarray::Slice::from(..per.min(n));
            let first = self.made(
                l,
                &s.slice_axis(Axis(0), head),
                &c.slice_axis(Axis(0), head),
            );
            let mut parts = vec![first];
            for h in handles {
                match h.join() {
                    Ok(r) => parts.push(r),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            parts
        });
        let cat = |views: Vec<ndarray::ArrayView2<'_, F>>| {
            ndarray::concatenate(Axis(0), &views)
                .unwrap_or_else(|_| unreachable!("row chunks of one matrix"))
        };
        let a1 = cat(parts.iter().map(|p| p.0.view()).collect());
        let h1 = cat(parts.iter().map(|p| p.1.view()).collect());
        let a2s: Option<Vec<_>> = parts
            .iter()
            .map(|p| p.2.as_ref().map(|a| a.view()))
            .collect();
        let h2s: Option<Vec<_>> = parts
            .iter()
            .map(|p| p.3.as_ref().map(|a| a.view()))
            .collect();
        let a2 = a2s.map(cat);
        let h2 = h2s.map(cat);
        let e = cat(parts.iter().map(|p| p.4.view()).collect());
        let u = cat(parts.iter().map(|p| p.5.view()).collect());
        let sums: Vec<_> = parts.iter().map(|p| p.6.view()).collect();
        let alpha_sum = ndarray::concatenate(Axis(0), &sums)
            .unwrap_or_else(|_| unreachable!("row chunks of one vector"));
        (a1, h1, a2, h2, e, u, alpha_sum)
    }

    /// Forward pass. Returns the final standard-normal variables `y` (rows ×
    /// D), the per-row log-determinant and, in training mode, the caches.
    pub(super) fn forward(
        &self,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        mut bn: BnMode<'_>,
        keep: bool,
        threads: usize,
    ) -> (Array2<F>, Array1<F>, Vec<Cache<F>>) {
        let arch = self.arch;
        let n = x.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let mut s = x.to_owned();
        let mut logdet = Array1::zeros(n);
        let mut caches = Vec::new();
        let eps = F::of(BN_EPS);
        for l in 0..arch.layers {
            let (a1, h1, a2, h2, e, u, alpha_sum) = if keep {
                self.made_rows(l, &s.view(), &c, threads)
            } else {
                let (u, alpha_sum) = self.made_split(l, &s.view(), &c);
                let z = || Array2::zeros((0, 0));
                (z(), z(), None, None, z(), u, alpha_sum)
            };
            logdet -= &alpha_sum;
            let (next, xhat, inv_std) = if arch.batch_norm {
                let lg = row(self.get(l, Kind::LogGamma));
                let beta = row(self.get(l, Kind::Beta));
                let (mean, var): (Array1<F>, Array1<F>) = match &mut bn {
                    BnMode::Batch => {
                        let mean = u.sum_axis(Axis(0)) * inv_n;
                        let var = (&u - &mean).mapv(|v| v * v).sum_axis(Axis(0)) * inv_n;
                        (mean, var)
                    }
                    BnMode::Fixed(st) => (
                        st.mean[l].iter().map(|&v| F::of(v)).collect(),
                        st.var[l].iter().map(|&v| F::of(v)).collect(),
                    ),
                    BnMode::Collect(st) => {
                        let (mean, var) = column_stats(&u);
                        let r = (
                            mean.iter().map(|&v| F::of(v)).collect(),
                            var.iter().map(|&v| F::of(v)).collect(),
                        );
                        st.mean.push(mean);
                        st.var.push(var);
                        r
                    }
                };
                let inv_std = var.mapv(|v| F::one() / (v + eps).sqrt());
                let gamma = lg.mapv(F::exp);
                let mut xhat = Array2::zeros(u.raw_dim());
                let mut y = Array2::zeros(u.raw_dim());
                Zip::from(&mut xhat)
                    .and(&mut y)
                    .and(&u)
                    .and_broadcast(&mean)
                    .and_broadcast(&inv_std)
                    .and_broadcast(&gamma)
                    .for_each(|xh, y, &u, &m, &is, &g| {
                        *xh = (u - m) * is;
                        *y = *xh * g;
                    });
                y += &beta;
                let ld = lg.sum() + inv_std.mapv(F::ln).sum();
                logdet += ld;
                (y, xhat, inv_std)
            } else {
                (u.clone(), Array2::zeros((0, 0)), Array1::zeros(0))
            };
            if keep {
                caches.push(Cache {
                    input: s,
                    a1,
                    h1,
                    a2,
                    h2,
                    e,
                    u,
                    xhat,
                    inv_std,
                });
            }
            s = next;
        }
        (s, logdet, caches)
    }

    /// Per-row log density of standardised inputs `x` (context `c`, standardised),
    /// with batch norm using `stats` (`None`: minibatch statistics of these rows).
    /// Not in raw units: add the standardisation's log-Jacobian for that.
    pub fn log_prob(
        &self,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        stats: Option<&BnStats>,
    ) -> Array1<F> {
        let mode = match stats {
            Some(s) => BnMode::Fixed(s),
            None => BnMode::Batch,
        };
        let (y, logdet, _) = self.forward(x, c, mode, false, 1);
        self.base_log_density(&y) + &logdet
    }
}
