//! What a model is made of: the number type it computes in ([`Real`]), its
//! activation and its architecture ([`Arch`]: sizes, hidden-unit degrees, the
//! variable order of each MADE).

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
    /// `h[i] = a[i].tanh_act()` for every `i` (slices of one length).
    fn tanh_slice(h: &mut [Self], a: &[Self]) {
        for (h, &a) in h.iter_mut().zip(a) {
            *h = a.tanh_act();
        }
    }
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
    fn tanh_slice(h: &mut [Self], a: &[Self]) {
        super::simd::tanh_into(h, a);
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
