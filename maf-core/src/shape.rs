//! Model shapes and the static masks that follow from them.
//!
//! A MADE's masks are never stored: hidden units are kept **sorted by degree**, so
//! every row of every masked weight matrix is a prefix whose length is a closed-form
//! function of the shapes (see `docs/blob-format.md`). All functions here are
//! `const fn`, so for the fixed-size [`Maf`](crate::Maf) the masks are evaluated at
//! compile time.

use crate::{Error, Result};

/// Hidden-unit activation of every MADE.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, a)`, the reference code's default.
    Relu,
    /// `tanh(a)`, evaluated with [`tanh`] (a rational approximation accurate to a
    /// few ulp, about 25 instructions on a Cortex-M4F instead of `libm`'s ~100).
    Tanh,
}

impl Activation {
    /// The byte that encodes this activation in a blob.
    pub const fn to_byte(self) -> u8 {
        match self {
            Activation::Relu => 0,
            Activation::Tanh => 1,
        }
    }

    /// The activation a blob byte encodes, if any.
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Activation::Relu),
            1 => Some(Activation::Tanh),
            _ => None,
        }
    }

    /// Applies the activation.
    #[inline(always)]
    pub fn apply(self, a: f32) -> f32 {
        match self {
            Activation::Relu => {
                if a > 0.0 {
                    a
                } else {
                    0.0
                }
            }
            Activation::Tanh => tanh(a),
        }
    }
}

/// The hyperbolic tangent of every `tanh` MADE: a [13/6] rational minimax
/// approximation on the input clamped to ±7.905311 (the one Eigen uses), `a`
/// itself for `|a| < 4e-4`. Its largest deviation from the exact `tanh` is below
/// `5e-7` (a few ulp; checked over a dense grid by the tests), and, being plain `f32`
/// arithmetic with one division, it gives the same bits on every IEEE platform.
/// `maf-train` trains with this same function.
#[inline(always)]
pub fn tanh(a: f32) -> f32 {
    let r = tanh_rational(a.clamp(-TANH_CLAMP, TANH_CLAMP));
    if a.abs() < TANH_LINEAR { a } else { r }
}

/// Where [`tanh`] clamps its input.
pub(crate) const TANH_CLAMP: f32 = 7.905_311;

/// Below this magnitude [`tanh`] returns its input.
pub(crate) const TANH_LINEAR: f32 = 4e-4;

/// The rational of [`tanh`], on an input already clamped.
#[inline(always)]
pub(crate) fn tanh_rational(x: f32) -> f32 {
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_188e-13;
    p = p * x2 - 8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    p / q
}

/// The shape of a MAF: every dimension that fixes the number and layout of its
/// weights.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Data dimension `D` (number of features), 1..=[`Shape::MAX_DIM`].
    pub dim: usize,
    /// Context dimension `C` of a conditional MAF; 0 for an unconditional one.
    pub context: usize,
    /// Hidden units per hidden layer `H`, 1..=[`Shape::MAX_HIDDEN`].
    pub hidden: usize,
    /// Hidden layers per MADE `K`: 1 or 2.
    pub hidden_layers: usize,
    /// Number of stacked MADEs `L`, 1..=[`Shape::MAX_LAYERS`] (0, no flow at all,
    /// only in a version-2 blob with a mixture base).
    pub layers: usize,
    /// Whether a batch-norm layer (inference form) follows every MADE.
    pub batch_norm: bool,
}

impl Shape {
    /// Largest supported data dimension.
    pub const MAX_DIM: usize = 256;
    /// Largest supported context dimension.
    pub const MAX_CONTEXT: usize = 256;
    /// Largest supported hidden width.
    pub const MAX_HIDDEN: usize = 1024;
    /// Largest supported number of MADEs.
    pub const MAX_LAYERS: usize = 32;

    /// The reference shape that the benchmarks and the PyTorch baselines use: D = 8,
    /// no context, five MADEs with one hidden layer of 64 units, batch norm.
    pub const REFERENCE: Shape = Shape {
        dim: 8,
        context: 0,
        hidden: 64,
        hidden_layers: 1,
        layers: 5,
        batch_norm: true,
    };

    /// Checks every parameter against the supported ranges.
    ///
    /// # Errors
    /// [`Error::ShapeOutOfRange`] naming the first parameter out of range.
    pub const fn check(&self) -> Result<()> {
        let bad = if self.dim == 0 || self.dim > Self::MAX_DIM {
            Some(("dim", self.dim))
        } else if self.context > Self::MAX_CONTEXT {
            Some(("context", self.context))
        } else if self.hidden == 0 || self.hidden > Self::MAX_HIDDEN {
            Some(("hidden", self.hidden))
        } else if self.hidden_layers != 1 && self.hidden_layers != 2 {
            Some(("hidden_layers", self.hidden_layers))
        } else if self.layers == 0 || self.layers > Self::MAX_LAYERS {
            Some(("layers", self.layers))
        } else {
            None
        };
        match bad {
            Some((what, found)) => Err(Error::ShapeOutOfRange { what, found }),
            None => Ok(()),
        }
    }

    /// Number of distinct hidden degrees, `max(1, D - 1)`.
    pub const fn degrees(&self) -> usize {
        if self.dim > 1 { self.dim - 1 } else { 1 }
    }

    /// Number of hidden units of degree `d` (1-based) in every hidden layer.
    ///
    /// The reference code gives unit `k` the degree `k % max(1, D-1) + 1`; this
    /// counts how many units get degree `d`.
    pub const fn units_of_degree(&self, d: usize) -> usize {
        let dm = self.degrees();
        if d == 0 || d > dm {
            return 0;
        }
        self.hidden / dm + if d <= self.hidden % dm { 1 } else { 0 }
    }

    /// Degree of hidden unit `k` (0-based, units sorted by degree), 1..=`degrees()`.
    pub const fn hidden_degree(&self, k: usize) -> usize {
        let dm = self.degrees();
        let q = self.hidden / dm;
        let r = self.hidden % dm;
        if k < r * (q + 1) {
            k / (q + 1) + 1
        } else {
            // q == 0 only for k >= hidden: clamp instead of dividing by zero.
            match (k - r * (q + 1)).checked_div(q) {
                Some(v) => r + v + 1,
                None => dm,
            }
        }
    }

    /// Number of hidden units of degree `<= d`: the prefix of hidden units that an
    /// output of order position `d` (0-based), or a unit of the next hidden layer of
    /// degree `d`, is connected to.
    pub const fn cum(&self, d: usize) -> usize {
        let dm = self.degrees();
        if d >= dm {
            return self.hidden;
        }
        let q = self.hidden / dm;
        let r = self.hidden % dm;
        d * q + if d < r { d } else { r }
    }

    /// The variable index at order position `pos` of MADE `layer`: even MADEs use the
    /// natural order, odd ones the reverse, as in the paper's reference code.
    pub const fn order(&self, layer: usize, pos: usize) -> usize {
        if layer.is_multiple_of(2) {
            pos
        } else {
            self.dim - 1 - pos
        }
    }

    /// `Σ_k deg(k)`: unmasked input weights of a first hidden layer.
    pub const fn input_connections(&self) -> usize {
        let mut total = 0;
        let mut d = 1;
        while d <= self.degrees() {
            total += d * self.units_of_degree(d);
            d += 1;
        }
        total
    }

    /// `Σ_j cum(deg(j))`: unmasked weights of a second hidden layer.
    pub const fn hidden_connections(&self) -> usize {
        let mut total = 0;
        let mut d = 1;
        while d <= self.degrees() {
            total += self.cum(d) * self.units_of_degree(d);
            d += 1;
        }
        total
    }

    /// `Σ_{p<D} cum(p)`: unmasked weights of the `mu` outputs (and of the `alpha`
    /// outputs).
    pub const fn output_connections(&self) -> usize {
        let mut total = 0;
        let mut p = 0;
        while p < self.dim {
            total += self.cum(p);
            p += 1;
        }
        total
    }

    /// Floats in the first hidden layer's block of one MADE.
    pub const fn layer1_len(&self) -> usize {
        self.hidden * (1 + self.context) + self.input_connections()
    }

    /// Floats in the second hidden layer's block of one MADE (0 with one layer).
    pub const fn layer2_len(&self) -> usize {
        if self.hidden_layers == 2 {
            self.hidden + self.hidden_connections()
        } else {
            0
        }
    }

    /// Floats in the output block (`mu`, `alpha`) of one MADE.
    pub const fn output_len(&self) -> usize {
        2 * self.dim + 2 * self.output_connections()
    }

    /// Floats in one batch-norm block (0 without batch norm).
    pub const fn batch_norm_len(&self) -> usize {
        if self.batch_norm { 2 * self.dim } else { 0 }
    }

    /// Floats of one MADE with its batch norm.
    pub const fn made_len(&self) -> usize {
        self.layer1_len() + self.layer2_len() + self.output_len() + self.batch_norm_len()
    }

    /// Floats before the first MADE (input and context standardisation).
    pub const fn preamble_len(&self) -> usize {
        2 * self.dim + 2 * self.context
    }

    /// Index of MADE `layer`'s first weight in the weight section.
    pub const fn made_offset(&self, layer: usize) -> usize {
        self.preamble_len() + layer * self.made_len()
    }

    /// Index of MADE `layer`'s batch-norm `bn_scale[0]` in the weight section
    /// (meaningful only with batch norm).
    pub const fn batch_norm_offset(&self, layer: usize) -> usize {
        self.made_offset(layer) + self.made_len() - self.batch_norm_len()
    }

    /// Total number of `f32` weights in a blob of this shape.
    pub const fn weight_count(&self) -> usize {
        self.preamble_len() + self.layers * self.made_len()
    }

    /// Trainable parameters of the model in training form (the same count: batch
    /// norm's `log_gamma, beta` become `bn_scale, bn_shift`; standardisation is not
    /// trained and is left out).
    pub const fn parameter_count(&self) -> usize {
        self.layers * self.made_len()
    }

    /// Multiply-accumulates per log density, counting only unmasked weights.
    pub const fn macs(&self) -> usize {
        let per_made = self.input_connections()
            + self.hidden * self.context
            + if self.hidden_layers == 2 {
                self.hidden_connections()
            } else {
                0
            }
            + 2 * self.output_connections();
        self.layers * per_made
    }

    /// Multiply-accumulates per log density of a dense (masked-by-zero) layout.
    pub const fn dense_macs(&self) -> usize {
        let h2 = if self.hidden_layers == 2 {
            self.hidden * self.hidden
        } else {
            0
        };
        self.layers * (self.hidden * (self.dim + self.context) + h2 + 2 * self.hidden * self.dim)
    }

    /// Floats of working memory one evaluation needs: the state and base vectors
    /// (`2 D`), the output accumulators (`2 D`), the standardised context (`C`) and,
    /// with two hidden layers, the first hidden layer (`H`). With one hidden layer no
    /// hidden vector is stored: each unit feeds the outputs as soon as it is computed.
    pub const fn scratch_len(&self) -> usize {
        4 * self.dim + self.context + self.hidden_layers.saturating_sub(1) * self.hidden
    }

    /// Bytes of working memory (activations) one evaluation needs, stack frames not
    /// included. Weights are read in place and cost no RAM.
    pub const fn ram_bytes(&self) -> usize {
        4 * self.scratch_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dim: usize, hidden: usize) -> Shape {
        Shape {
            dim,
            context: 0,
            hidden,
            hidden_layers: 1,
            layers: 1,
            batch_norm: false,
        }
    }

    /// The sorted degrees are exactly the multiset of the reference code's
    /// `k % max(1, D-1) + 1`, and `cum` counts them.
    #[test]
    fn degrees_match_reference_multiset() {
        for dim in 1..12 {
            for hidden in 1..70 {
                let s = shape(dim, hidden);
                let dm = dim.saturating_sub(1).max(1);
                let mut reference: Vec<usize> = (0..hidden).map(|k| k % dm + 1).collect();
                reference.sort_unstable();
                let sorted: Vec<usize> = (0..hidden).map(|k| s.hidden_degree(k)).collect();
                assert_eq!(sorted, reference, "dim {dim} hidden {hidden}");
                for d in 0..=dim + 1 {
                    let count = reference.iter().filter(|&&m| m <= d).count();
                    assert_eq!(s.cum(d), count, "cum({d}) dim {dim} hidden {hidden}");
                }
            }
        }
    }

    /// The rational `tanh` stays within 5e-7 of the exact one (f64) everywhere,
    /// saturates exactly, and keeps NaN a NaN.
    #[test]
    fn rational_tanh_is_accurate() {
        let mut worst = 0.0f64;
        let mut a = -12.0f32;
        while a <= 12.0 {
            let err = (f64::from(tanh(a)) - f64::from(a).tanh()).abs();
            worst = worst.max(err);
            a += 1.0 / 4096.0;
        }
        for a in [1e-8f32, -3e-5, 3.9e-4, 4.1e-4, 100.0, -1e30] {
            worst = worst.max((f64::from(tanh(a)) - f64::from(a).tanh()).abs());
        }
        assert!(worst < 5e-7, "worst error {worst:e}");
        assert_eq!(tanh(50.0), tanh(7.905_311));
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
    }

    #[test]
    fn reference_model_counts() {
        let s = Shape::REFERENCE;
        assert_eq!((s.dim, s.hidden, s.layers), (8, 64, 5));
        assert_eq!(s.input_connections(), 253);
        assert_eq!(s.output_connections(), 259);
        assert_eq!(s.weight_count(), 4351);
        assert_eq!(s.macs(), 5 * (253 + 2 * 259));
        assert_eq!(s.dense_macs(), 5 * (8 * 64 + 2 * 64 * 8));
    }

    #[test]
    fn check_rejects_out_of_range() {
        assert!(shape(0, 4).check().is_err());
        assert!(shape(4, 0).check().is_err());
        assert!(shape(257, 4).check().is_err());
        let mut s = shape(3, 4);
        s.hidden_layers = 3;
        assert!(s.check().is_err());
        assert!(shape(3, 4).check().is_ok());
    }
}
