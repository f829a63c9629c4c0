//! The parameter tensors of a MAF ([`Params`]), their autoregressive masks
//! ([`Masks`]) and how they are created: zeros, random initialisation, or a flow
//! at the identity on a fitted mixture base.

use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::arch::{Arch, Real};

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
