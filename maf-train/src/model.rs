//! The trainer's MAF: dense weight matrices with masks, and forward and backward
//! passes written by hand.
//!
//! The model is exactly the one `maf-core` evaluates (see `docs/blob-format.md`):
//! hidden units sorted by degree, MADE `l` ordering the variables `π_l(p) = p` for
//! even `l` and `D - 1 - p` for odd `l`, Gaussian conditionals parameterised by
//! `mu` and `alpha = log sigma`, batch norm after every MADE. Here the maths is done
//! in *variable* order with dense masked matrices (masked entries are kept at
//! exactly zero), which `ndarray`'s matrix products handle efficiently;
//! [`crate::export`] packs the unmasked entries into the blob's order.

use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Batch-norm epsilon, as in the reference code and `maf-core`'s documentation.
pub const BN_EPS: f64 = 1e-5;

/// `ln(2π) / 2`.
pub use crate::mixture::HALF_LN_2PI;

/// Floating-point type the model computes in: `f32` for training, `f64` for checks.
pub trait Real:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::fmt::Debug
    + std::fmt::Display
    + Send
    + Sync
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// Converts from `f64` (rounding for `f32`).
    fn of(x: f64) -> Self;
    /// Converts to `f64`.
    fn f64(self) -> f64;
    /// The hidden layer's `tanh`: for `f32` (training) `maf-core`'s rational
    /// approximation, the one the device evaluates (within 5e-7 of `tanh`); for
    /// `f64` (the reference path the agreement tests use) the standard library's.
    fn tanh_act(self) -> Self;
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
    fn tanh_act(self) -> Self {
        fast_tanh(self)
    }
}

/// `tanh` for `f32`: `maf-core`'s rational approximation ([`maf_core::tanh`]),
/// the very function the device evaluates; branch-free, so loops over it vectorise.
#[inline(always)]
pub fn fast_tanh(a: f32) -> f32 {
    maf_core::tanh(a)
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
    fn tanh_act(self) -> Self {
        self.tanh()
    }
}

/// Hidden-layer non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(0, a)`.
    #[default]
    Relu,
    /// `tanh(a)`.
    Tanh,
}

/// The architecture of a MAF: every size that decides the shapes of the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    /// Data dimension D.
    pub dim: usize,
    /// Context dimension C (0 = unconditional).
    pub context: usize,
    /// Hidden units per hidden layer H.
    pub hidden: usize,
    /// Hidden layers per MADE K (1 or 2).
    pub hidden_layers: usize,
    /// Number of MADEs L.
    pub layers: usize,
    /// Batch norm after every MADE.
    pub batch_norm: bool,
    /// Hidden activation.
    pub activation: Activation,
    /// The base density after the flow.
    pub base: maf_core::Base,
}

impl Arch {
    /// Number of mixture components of the base (0 for the standard normal).
    pub fn components(&self) -> usize {
        self.base.components()
    }

    fn dm(&self) -> usize {
        self.dim.saturating_sub(1).max(1)
    }

    /// Degree (1-based) of hidden unit `k` when units are sorted by degree.
    pub fn hidden_degree(&self, k: usize) -> usize {
        let dm = self.dm();
        let (q, r) = (self.hidden / dm, self.hidden % dm);
        if k < r * (q + 1) {
            k / (q + 1) + 1
        } else {
            r + (k - r * (q + 1)) / q.max(1) + 1
        }
    }

    /// Number of hidden units of degree `<= d`.
    pub fn cum(&self, d: usize) -> usize {
        let dm = self.dm();
        if d >= dm {
            self.hidden
        } else {
            let (q, r) = (self.hidden / dm, self.hidden % dm);
            d * q + d.min(r)
        }
    }

    /// Order position of variable `i` in MADE `l` (the order is its own inverse).
    pub fn position(&self, layer: usize, i: usize) -> usize {
        if layer.is_multiple_of(2) {
            i
        } else {
            self.dim - 1 - i
        }
    }
}

/// The kinds of parameter tensor every MADE has, in storage order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Kind {
    /// First hidden layer weights, `D × H` (masked).
    W1,
    /// Context weights, `C × H` (dense).
    Wc,
    /// First hidden layer bias, `1 × H`.
    B1,
    /// Second hidden layer weights, `H × H` (masked; `0 × 0` when K = 1).
    W2,
    /// Second hidden layer bias, `1 × H` (`0 × 0` when K = 1).
    B2,
    /// Output weights, `H × 2D`: columns `0..D` give `mu`, `D..2D` give `alpha`,
    /// both in variable order (masked).
    Wo,
    /// Output bias, `1 × 2D`.
    Bo,
    /// Batch-norm log scale, `1 × D` (`0 × 0` without batch norm).
    LogGamma,
    /// Batch-norm shift, `1 × D` (`0 × 0` without batch norm).
    Beta,
}

/// Number of [`Kind`]s.
pub const KINDS: usize = 9;

/// All kinds, in storage order.
pub const ALL_KINDS: [Kind; KINDS] = [
    Kind::W1,
    Kind::Wc,
    Kind::B1,
    Kind::W2,
    Kind::B2,
    Kind::Wo,
    Kind::Bo,
    Kind::LogGamma,
    Kind::Beta,
];

impl Kind {
    /// Whether L2 weight decay applies (weight matrices, not biases or batch norm).
    pub fn is_weight(self) -> bool {
        matches!(self, Kind::W1 | Kind::Wc | Kind::W2 | Kind::Wo)
    }
}

/// The trainable parameters: `KINDS` tensors per MADE, stored as 2-D arrays
/// (biases as `1 × n` rows). The same type holds gradients and Adam moments.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<F> {
    /// The architecture.
    pub arch: Arch,
    /// Tensor `k` of MADE `l` is `tensors[l * KINDS + k]`.
    pub tensors: Vec<Array2<F>>,
}

/// Zero/one masks for the masked tensors, for even and odd MADEs.
#[derive(Clone, Debug)]
pub struct Masks<F> {
    w1: [Array2<F>; 2],
    w2: Array2<F>,
    wo: [Array2<F>; 2],
    /// The mixture factors' mask, `K × D²` (lower triangle, or the diagonal).
    pub base: Option<Array2<F>>,
}

impl<F: Real> Masks<F> {
    /// Builds the masks of `arch`.
    pub fn new(arch: &Arch) -> Self {
        let (d, h) = (arch.dim, arch.hidden);
        let w1 = |par: usize| {
            Array2::from_shape_fn((d, h), |(i, k)| {
                if arch.position(par, i) < arch.hidden_degree(k) {
                    F::one()
                } else {
                    F::zero()
                }
            })
        };
        let wo = |par: usize| {
            Array2::from_shape_fn((h, 2 * d), |(k, o)| {
                if k < arch.cum(arch.position(par, o % d)) {
                    F::one()
                } else {
                    F::zero()
                }
            })
        };
        let w2 = if arch.hidden_layers == 2 {
            Array2::from_shape_fn((h, h), |(k, j)| {
                if arch.hidden_degree(k) <= arch.hidden_degree(j) {
                    F::one()
                } else {
                    F::zero()
                }
            })
        } else {
            Array2::zeros((0, 0))
        };
        let base = match arch.base {
            maf_core::Base::StandardNormal => None,
            maf_core::Base::Mixture {
                components,
                covariance,
            } => Some(Array2::from_shape_fn((components, d * d), |(_, e)| {
                let (j, i) = (e / d, e % d);
                let on = match covariance {
                    maf_core::Covariance::Full => i <= j,
                    maf_core::Covariance::Diagonal => i == j,
                };
                if on { F::one() } else { F::zero() }
            })),
        };
        Masks {
            w1: [w1(0), w1(1)],
            w2,
            wo: [wo(0), wo(1)],
            base,
        }
    }

    /// The mask of tensor `kind` of MADE `layer`, if that kind is masked.
    pub fn get(&self, layer: usize, kind: Kind) -> Option<&Array2<F>> {
        match kind {
            Kind::W1 => Some(&self.w1[layer % 2]),
            Kind::W2 if !self.w2.is_empty() => Some(&self.w2),
            Kind::Wo => Some(&self.wo[layer % 2]),
            _ => None,
        }
    }
}

impl<F: Real> Params<F> {
    /// Shape of tensor `kind` under `arch`.
    pub fn shape(arch: &Arch, kind: Kind) -> (usize, usize) {
        let (d, c, h) = (arch.dim, arch.context, arch.hidden);
        let two = arch.hidden_layers == 2;
        match kind {
            Kind::W1 => (d, h),
            Kind::Wc => (c, h),
            Kind::B1 => (1, h),
            Kind::W2 if two => (h, h),
            Kind::B2 if two => (1, h),
            Kind::W2 | Kind::B2 => (0, 0),
            Kind::Wo => (h, 2 * d),
            Kind::Bo => (1, 2 * d),
            Kind::LogGamma | Kind::Beta if arch.batch_norm => (1, d),
            Kind::LogGamma | Kind::Beta => (0, 0),
        }
    }

    /// All-zero parameters (also the starting gradient and Adam moments).
    pub fn zeros(arch: Arch) -> Self {
        let mut tensors: Vec<Array2<F>> = (0..arch.layers)
            .flat_map(|_| {
                ALL_KINDS
                    .iter()
                    .map(move |&k| Array2::zeros(Self::shape(&arch, k)))
            })
            .collect();
        let (k, d) = (arch.components(), arch.dim);
        if k > 0 {
            tensors.push(Array2::zeros((1, k)));
            tensors.push(Array2::zeros((k, d)));
            tensors.push(Array2::zeros((k, d * d)));
        }
        Params { arch, tensors }
    }

    /// The mixture base's tensors `(logits 1 × K, means K × D, factors K × D²)`,
    /// if the base is a mixture. Factor row `k` holds `W_k[j][i]` at `j D + i`
    /// (lower triangle; diagonal only for diagonal covariance), the diagonal as
    /// its logarithm.
    pub fn base(&self) -> Option<(&Array2<F>, &Array2<F>, &Array2<F>)> {
        let at = self.arch.layers * KINDS;
        match self.tensors.get(at..at + 3) {
            Some([a, b, c]) => Some((a, b, c)),
            _ => None,
        }
    }

    /// Mutable [`Params::base`].
    pub fn base_mut(&mut self) -> Option<(&mut Array2<F>, &mut Array2<F>, &mut Array2<F>)> {
        let at = self.arch.layers * KINDS;
        match self.tensors.get_mut(at..at + 3) {
            Some([a, b, c]) => Some((a, b, c)),
            _ => None,
        }
    }

    /// Sets the base to a fitted mixture (same K, D and covariance as `arch`).
    pub fn set_base(&mut self, gmm: &crate::mixture::Gmm) {
        let d = self.arch.dim;
        if let Some((logits, means, factors)) = self.base_mut() {
            for (k, (&w, f)) in gmm.weights.iter().zip(&gmm.factors).enumerate() {
                logits[(0, k)] = F::of(w.ln());
                for j in 0..d {
                    means[(k, j)] = F::of(gmm.means[(k, j)]);
                    for i in 0..=j {
                        let v = f[(j, i)];
                        factors[(k, j * d + i)] = if i == j { F::of(v.ln()) } else { F::of(v) };
                    }
                }
            }
        }
    }

    /// Parameters of a flow that starts as the identity (output layers zero, so
    /// every MADE gives `mu = 0`, `alpha = 0`) on top of the fitted mixture `gmm`:
    /// at the start the model's density is the mixture's. Hidden weights are drawn
    /// as in [`Params::init`], so training can move away from the identity.
    pub fn init_from_mixture(
        arch: Arch,
        masks: &Masks<F>,
        gmm: &crate::mixture::Gmm,
        rng: &mut impl Rng,
    ) -> Self {
        let mut p = Self::init(arch, masks, rng);
        for l in 0..arch.layers {
            p.get_mut(l, Kind::Wo).fill(F::zero());
            p.get_mut(l, Kind::Bo).fill(F::zero());
        }
        p.set_base(gmm);
        p
    }

    /// Random initial parameters: weights normal with standard deviation
    /// `1 / sqrt(fan_in + 1)` (the reference code's choice; output weights scaled
    /// down by 10 so the flow starts close to the identity), masked entries zero,
    /// biases and batch-norm parameters zero.
    pub fn init(arch: Arch, masks: &Masks<F>, rng: &mut impl Rng) -> Self {
        let mut p = Self::zeros(arch);
        for l in 0..arch.layers {
            for kind in [Kind::W1, Kind::Wc, Kind::W2, Kind::Wo] {
                let fan_in = match kind {
                    Kind::W1 | Kind::Wc => arch.dim + arch.context,
                    _ => arch.hidden,
                };
                let mut scale = 1.0 / ((fan_in + 1) as f64).sqrt();
                if kind == Kind::Wo {
                    scale *= 0.1;
                }
                let t = p.get_mut(l, kind);
                for v in t.iter_mut() {
                    let z: f64 = StandardNormal.sample(rng);
                    *v = F::of(z * scale);
                }
                if let Some(m) = masks.get(l, kind) {
                    *t *= m;
                }
            }
        }
        p
    }

    /// Tensor `kind` of MADE `layer`.
    pub fn get(&self, layer: usize, kind: Kind) -> &Array2<F> {
        &self.tensors[layer * KINDS + kind as usize]
    }

    /// Mutable tensor `kind` of MADE `layer`.
    pub fn get_mut(&mut self, layer: usize, kind: Kind) -> &mut Array2<F> {
        &mut self.tensors[layer * KINDS + kind as usize]
    }

    /// Number of trainable values that are not masked out.
    pub fn count_unmasked(&self, masks: &Masks<F>) -> usize {
        let mut n = match (self.base(), &masks.base) {
            (Some((a, b, _)), Some(m)) => {
                a.len() + b.len() + m.iter().filter(|v| !v.is_zero()).count()
            }
            _ => 0,
        };
        for l in 0..self.arch.layers {
            for kind in ALL_KINDS {
                n += match masks.get(l, kind) {
                    Some(m) => m.iter().filter(|v| !v.is_zero()).count(),
                    None => self.get(l, kind).len(),
                };
            }
        }
        n
    }

    /// Whether every value is finite.
    pub fn all_finite(&self) -> bool {
        self.tensors.iter().all(|t| t.iter().all(|v| v.is_finite()))
    }

    /// Converts to another float type.
    pub fn cast<G: Real>(&self) -> Params<G> {
        Params {
            arch: self.arch,
            tensors: self
                .tensors
                .iter()
                .map(|t| t.mapv(|v| G::of(v.f64())))
                .collect(),
        }
    }

    /// Sets every value to zero, keeping the shapes.
    pub fn fill_zero(&mut self) {
        for t in &mut self.tensors {
            t.fill(F::zero());
        }
    }
}

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
enum BnMode<'a> {
    /// Minibatch statistics, gradients through them.
    Batch,
    /// Fixed statistics.
    Fixed(&'a BnStats),
    /// Compute whole-set statistics in `f64` and use them.
    Collect(&'a mut BnStats),
}

/// What the backward pass needs from one MADE's forward pass.
struct Cache<F> {
    input: Array2<F>,
    a1: Array2<F>,
    h1: Array2<F>,
    a2: Option<Array2<F>>,
    h2: Option<Array2<F>>,
    /// `exp(-alpha)`.
    e: Array2<F>,
    u: Array2<F>,
    xhat: Array2<F>,
    inv_std: Array1<F>,
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
fn activate_backward<F: Real>(act: Activation, g: &mut Array2<F>, a: &Array2<F>, h: &Array2<F>) {
    match act {
        // A select, not a conditional store: branch-free, vectorised.
        Activation::Relu => Zip::from(g).and(a).for_each(|g, &a| {
            *g = if a > F::zero() { *g } else { F::zero() };
        }),
        Activation::Tanh => Zip::from(g).and(h).for_each(|g, &h| *g *= F::one() - h * h),
    }
}

fn row<F: Real>(t: &Array2<F>) -> ndarray::ArrayView1<'_, F> {
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
    /// bits whatever `threads` is (tested: `train::tests`).
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
    fn forward(
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
    /// `y` (returned) and to the mixture's tensors (written into `grad`, masked).
    fn base_backward(&self, masks: &Masks<F>, y: &Array2<F>, grad: &mut Params<F>) -> Array2<F> {
        let n = y.nrows();
        let inv_n = F::of(1.0 / n.max(1) as f64);
        let Some((logits, means, _)) = self.base() else {
            return y * inv_n;
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
        let mut g_y = Array2::<F>::zeros((n, d));
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
            g_mean.row_mut(c).assign(&(-gd.sum_axis(Axis(0))));
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

#[cfg(test)]
mod tests {
    use super::fast_tanh;

    #[test]
    fn fast_tanh_matches_tanh() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let err = (f64::from(fast_tanh(x)) - f64::from(x).tanh()).abs();
            worst = worst.max(err);
        }
        for x in [1e-30f32, -1e-7, 3.9e-4, 4.1e-4, 50.0, -1e30, f32::INFINITY] {
            let err = (f64::from(fast_tanh(x)) - f64::from(x).tanh()).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "worst absolute error {worst:e}");
        assert!(fast_tanh(f32::NAN).is_nan());
    }
}
