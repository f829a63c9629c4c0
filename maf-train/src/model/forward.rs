//! The forward pass: each MADE's affine core, batch norm (minibatch, fixed or
//! collected statistics) and the per-row log density.

use std::ops::Range;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};

use super::arch::{Activation, BN_EPS, Real};
use super::par;
use super::params::{Kind, Params};
use super::scratch::Scratch;
use super::sums::{col_sq_dev, col_sums};

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

impl<F: Real> Cache<F> {
    /// Gives the cache's arrays back to `scratch`.
    pub(super) fn give_back(self, scratch: &mut Scratch<F>) {
        let Cache {
            input,
            a1,
            h1,
            a2,
            h2,
            e,
            u,
            xhat,
            inv_std: _,
        } = self;
        for a in [input, a1, h1, e, u, xhat].into_iter().chain(a2).chain(h2) {
            scratch.give2(a);
        }
    }
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

/// `h = act(a)`, element by element.
fn activate_into<F: Real>(act: Activation, a: &ArrayView2<'_, F>, h: &mut ArrayViewMut2<'_, F>) {
    match act {
        Activation::Relu => Zip::from(h)
            .and(a)
            .for_each(|h, &v| *h = if v > F::zero() { v } else { F::zero() }),
        Activation::Tanh => match (h.as_slice_mut(), a.as_slice()) {
            (Some(hs), Some(as_)) if hs.len() == as_.len() => F::tanh_slice(hs, as_),
            _ => Zip::from(h).and(a).for_each(|h, &v| *h = F::tanh_act(v)),
        },
    }
}

/// `g *= act'(a)` given the pre-activation `a` and activation `h`.
pub(super) fn activate_backward<F: Real>(
    act: Activation,
    g: &mut ArrayViewMut2<'_, F>,
    a: &ArrayView2<'_, F>,
    h: &ArrayView2<'_, F>,
) {
    match act {
        // A select, not a conditional store: branch-free, vectorised.
        Activation::Relu => Zip::from(g).and(a).for_each(|g, &a| {
            *g = if a > F::zero() { *g } else { F::zero() };
        }),
        Activation::Tanh => Zip::from(g).and(h).for_each(|g, &h| *g *= F::one() - h * h),
    }
}

/// `a[i][j] += b[0][j]` for every row `i` of `a` (a bias `1 × n` added to every
/// row), slice by slice when `a` is contiguous (ndarray's broadcasting add
/// cost more than its additions on these blocks).
fn add_row<F: Real>(a: &mut ArrayViewMut2<'_, F>, b: &Array2<F>) {
    let n = a.ncols();
    match (a.as_slice_mut(), b.as_slice()) {
        (Some(rows), Some(b)) if n > 0 && b.len() == n => {
            for r in rows.chunks_exact_mut(n) {
                for (v, &b) in r.iter_mut().zip(b) {
                    *v += b;
                }
            }
        }
        _ => *a += &row(b),
    }
}

pub(super) fn row<F: Real>(t: &Array2<F>) -> ndarray::ArrayView1<'_, F> {
    t.row(0)
}

/// One MADE's affine core, owned: `a1, h1, a2, h2` (the hidden pre-activations
/// and activations; `a2`, `h2` only with two hidden layers), `e = exp(-alpha)`,
/// `u` and the row sums of `alpha`.
pub(super) struct Made<F> {
    pub(super) a1: Array2<F>,
    pub(super) h1: Array2<F>,
    pub(super) a2: Option<Array2<F>>,
    pub(super) h2: Option<Array2<F>>,
    pub(super) e: Array2<F>,
    pub(super) u: Array2<F>,
    pub(super) alpha_sum: Array1<F>,
    /// The output layer `(mu, alpha)`, rows × 2D (not kept for the backward pass).
    o: Array2<F>,
}

/// A block of rows of a [`Made`], written in place.
struct MadeRows<'a, F> {
    a1: ArrayViewMut2<'a, F>,
    h1: ArrayViewMut2<'a, F>,
    a2: Option<ArrayViewMut2<'a, F>>,
    h2: Option<ArrayViewMut2<'a, F>>,
    e: ArrayViewMut2<'a, F>,
    u: ArrayViewMut2<'a, F>,
    alpha_sum: ArrayViewMut1<'a, F>,
    o: ArrayViewMut2<'a, F>,
}

impl<F: Real> Made<F> {
    /// Arrays for `n` rows from `scratch` (contents unspecified: [`Params::made_into`]
    /// writes every value).
    fn take(n: usize, arch: &super::arch::Arch, scratch: &mut Scratch<F>) -> Self {
        let (d, h) = (arch.dim, arch.hidden);
        let two = arch.hidden_layers == 2;
        Made {
            a1: scratch.take2(n, h),
            h1: scratch.take2(n, h),
            a2: two.then(|| scratch.take2(n, h)),
            h2: two.then(|| scratch.take2(n, h)),
            e: scratch.take2(n, d),
            u: scratch.take2(n, d),
            alpha_sum: scratch.take1(n),
            o: scratch.take2(n, 2 * d),
        }
    }

    /// The rows of `self` cut at `blocks` (see [`par::blocks`]).
    fn blocks_mut(&mut self, blocks: &[Range<usize>]) -> Vec<MadeRows<'_, F>> {
        let per = blocks.first().map_or(1, |r| r.len().max(1));
        let a1 = par::cut(Some(&mut self.a1), blocks);
        let h1 = par::cut(Some(&mut self.h1), blocks);
        let a2 = par::cut(self.a2.as_mut(), blocks);
        let h2 = par::cut(self.h2.as_mut(), blocks);
        let e = par::cut(Some(&mut self.e), blocks);
        let u = par::cut(Some(&mut self.u), blocks);
        let o = par::cut(Some(&mut self.o), blocks);
        let sums = self.alpha_sum.axis_chunks_iter_mut(Axis(0), per);
        a1.into_iter()
            .zip(h1)
            .zip(a2.into_iter().zip(h2))
            .zip(e.into_iter().zip(u))
            .zip(sums.zip(o))
            .filter_map(|((((a1, h1), (a2, h2)), (e, u)), (alpha_sum, o))| {
                Some(MadeRows {
                    a1: a1?,
                    h1: h1?,
                    a2,
                    h2,
                    e: e?,
                    u: u?,
                    alpha_sum,
                    o: o?,
                })
            })
            .collect()
    }
}

impl<F: Real> Params<F> {
    /// One MADE's affine core over the rows `s` (contexts `c`), written into `out`.
    fn made_into(
        &self,
        l: usize,
        s: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        out: MadeRows<'_, F>,
    ) {
        let arch = &self.arch;
        let d = arch.dim;
        let MadeRows {
            mut a1,
            mut h1,
            a2,
            h2,
            mut e,
            mut u,
            mut alpha_sum,
            mut o,
        } = out;
        let (one, zero) = (F::one(), F::zero());
        general_mat_mul(one, &s, self.get(l, Kind::W1), zero, &mut a1);
        if arch.context > 0 {
            general_mat_mul(one, &c, self.get(l, Kind::Wc), one, &mut a1);
        }
        add_row(&mut a1, self.get(l, Kind::B1));
        activate_into(arch.activation, &a1.view(), &mut h1);
        let top = if let (Some(mut a2), Some(mut h2)) = (a2, h2) {
            general_mat_mul(one, &h1, self.get(l, Kind::W2), zero, &mut a2);
            add_row(&mut a2, self.get(l, Kind::B2));
            activate_into(arch.activation, &a2.view(), &mut h2);
            h2
        } else {
            h1
        };
        general_mat_mul(one, &top, self.get(l, Kind::Wo), zero, &mut o);
        add_row(&mut o, self.get(l, Kind::Bo));
        match (
            o.as_slice(),
            e.as_slice_mut(),
            u.as_slice_mut(),
            s.as_slice(),
        ) {
            // Row by row over the contiguous blocks (ndarray's zips over rows of
            // D values cost more than their arithmetic).
            (Some(os), Some(es), Some(us), Some(ss)) if d > 0 => {
                let rows = os
                    .chunks_exact(2 * d)
                    .zip(es.chunks_exact_mut(d))
                    .zip(us.chunks_exact_mut(d).zip(ss.chunks_exact(d)));
                for ((orow, erow), (urow, srow)) in rows {
                    let (mu, alpha) = orow.split_at(d);
                    for ((e, u), ((&s, &m), &a)) in erow
                        .iter_mut()
                        .zip(urow.iter_mut())
                        .zip(srow.iter().zip(mu).zip(alpha))
                    {
                        *e = (-a).exp();
                        *u = (s - m) * *e;
                    }
                }
            }
            _ => {
                let (mu, alpha) = o.view().split_at(Axis(1), d);
                Zip::from(&mut e)
                    .and(&alpha)
                    .for_each(|e, &a| *e = (-a).exp());
                Zip::from(&mut u)
                    .and(&s)
                    .and(&mu)
                    .and(&e)
                    .for_each(|u, &s, &m, &e| *u = (s - m) * e);
            }
        }
        let alpha = o.slice(ndarray::s![.., d..]);
        alpha_sum.assign(&alpha.sum_axis(Axis(1)));
    }

    /// One MADE's affine core over all rows of `s`, on this thread.
    fn made(&self, l: usize, s: &ArrayView2<'_, F>, c: &ArrayView2<'_, F>) -> Made<F> {
        self.made_rows(l, s, c, 1, &mut Scratch::new())
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
            return (r.u, r.alpha_sum);
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
        let u = ndarray::concatenate(Axis(0), &[r0.u.view(), r1.u.view()])
            .unwrap_or_else(|_| unreachable!("halves of one matrix"));
        let a = ndarray::concatenate(Axis(0), &[r0.alpha_sum.view(), r1.alpha_sum.view()])
            .unwrap_or_else(|_| unreachable!("halves of one matrix"));
        (u, a)
    }

    /// [`Params::made`] with the rows cut into blocks, one per thread of the
    /// current `micropool` pool (at most `threads`; [`par::blocks`]). Every row's
    /// results are computed by the same operations as in one call over all rows
    /// (the products are row by row), so they are the same bits whatever
    /// `threads` is (tested: `tests/threads.rs`).
    fn made_rows(
        &self,
        l: usize,
        s: &ArrayView2<'_, F>,
        c: &ArrayView2<'_, F>,
        threads: usize,
        scratch: &mut Scratch<F>,
    ) -> Made<F> {
        let n = s.nrows();
        let blocks = par::blocks(n, threads);
        let mut out = Made::take(n, &self.arch, scratch);
        let jobs: Vec<_> = blocks
            .iter()
            .cloned()
            .zip(out.blocks_mut(&blocks))
            .collect();
        par::run(jobs, threads, |(r, rows)| {
            let sr = s.slice_axis(Axis(0), ndarray::Slice::from(r.clone()));
            let cr = c.slice_axis(Axis(0), ndarray::Slice::from(r));
            self.made_into(l, sr, cr, rows);
        });
        out
    }

    /// Forward pass. Returns the final standard-normal variables `y` (rows ×
    /// D), the per-row log-determinant and, in training mode, the caches. The
    /// arrays come from `scratch` (a cache gives them back with [`Cache::give_back`]).
    pub(super) fn forward(
        &self,
        x: ArrayView2<'_, F>,
        c: ArrayView2<'_, F>,
        mut bn: BnMode<'_>,
        keep: bool,
        threads: usize,
        scratch: &mut Scratch<F>,
    ) -> (Array2<F>, Array1<F>, Vec<Cache<F>>) {
        let arch = self.arch;
        let n = x.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let mut s = scratch.take2(n, arch.dim);
        s.assign(&x);
        let mut logdet = Array1::zeros(n);
        let mut caches = Vec::new();
        let eps = F::of(BN_EPS);
        for l in 0..arch.layers {
            let Made {
                a1,
                h1,
                a2,
                h2,
                e,
                u,
                alpha_sum,
                o,
            } = if keep {
                self.made_rows(l, &s.view(), &c, threads, scratch)
            } else {
                let (u, alpha_sum) = self.made_split(l, &s.view(), &c);
                let z = || Array2::zeros((0, 0));
                Made {
                    a1: z(),
                    h1: z(),
                    a2: None,
                    h2: None,
                    e: z(),
                    u,
                    alpha_sum,
                    o: z(),
                }
            };
            logdet -= &alpha_sum;
            scratch.give2(o);
            scratch.give1(alpha_sum);
            let (next, xhat, inv_std) = if arch.batch_norm {
                let lg = row(self.get(l, Kind::LogGamma));
                let beta = row(self.get(l, Kind::Beta));
                let (mean, var): (Array1<F>, Array1<F>) = match &mut bn {
                    BnMode::Batch => {
                        let mean = col_sums(&u.view()) * inv_n;
                        let var = col_sq_dev(&u.view(), &mean.to_vec()) * inv_n;
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
                let mut xhat = scratch.take2(n, arch.dim);
                let mut y = scratch.take2(n, arch.dim);
                let blocks = par::blocks(n, threads);
                let jobs: Vec<_> = blocks
                    .iter()
                    .cloned()
                    .zip(par::cut(Some(&mut xhat), &blocks))
                    .zip(par::cut(Some(&mut y), &blocks))
                    .filter_map(|((r, xh), y)| Some((r, xh?, y?)))
                    .collect();
                let (mean, inv_std_v, gamma_v, beta_v) = (
                    mean.to_vec(),
                    inv_std.to_vec(),
                    gamma.to_vec(),
                    beta.to_vec(),
                );
                par::run(jobs, threads, |(r, mut xh, mut y)| {
                    let u = u.slice_axis(Axis(0), ndarray::Slice::from(r));
                    for ((mut xh, mut y), u) in
                        xh.rows_mut().into_iter().zip(y.rows_mut()).zip(u.rows())
                    {
                        for (j, ((xh, y), &u)) in
                            xh.iter_mut().zip(y.iter_mut()).zip(u.iter()).enumerate()
                        {
                            *xh = (u - mean[j]) * inv_std_v[j];
                            // Two roundings, as `y = xhat * gamma; y += beta`.
                            *y = *xh * gamma_v[j] + beta_v[j];
                        }
                    }
                });
                let ld = lg.sum() + inv_std.mapv(F::ln).sum();
                logdet += ld;
                (y, xhat, inv_std)
            } else {
                let mut y = scratch.take2(n, arch.dim);
                y.assign(&u);
                (y, Array2::zeros((0, 0)), Array1::zeros(0))
            };
            let cache = Cache {
                input: s,
                a1,
                h1,
                a2,
                h2,
                e,
                u,
                xhat,
                inv_std,
            };
            if keep {
                caches.push(cache);
            } else {
                cache.give_back(scratch);
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
        let (y, logdet, _) = self.forward(x, c, mode, false, 1, &mut Scratch::new());
        self.base_log_density(&y) + &logdet
    }
}
