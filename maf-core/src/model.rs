//! The two front doors: [`MafView`] with shapes read at run time from the blob,
//! and [`Maf`] with shapes fixed at compile time.

use crate::base::{self, Base};
use crate::blob::{self, Blob, Header};
use crate::kernel::{self, Layout, Work};
use crate::{Activation, Error, Result, Shape};

/// A validated model whose shapes are read from its blob at run time.
///
/// It borrows the blob's weights in place and keeps nothing else but a few
/// scalars; working memory is passed in (`scratch`, [`Shape::scratch_len`] floats).
/// Hosts use it to evaluate any blob; firmware usually prefers the fixed-size
/// [`Maf`], which computes the same bits.
#[derive(Debug, Clone, Copy)]
pub struct MafView<'a> {
    header: Header<'a>,
    weights: &'a [f32],
    base_weights: &'a [f32],
    log_det_const: f32,
    len: usize,
    version: u32,
    layout: Layout,
}

impl<'a> MafView<'a> {
    /// Loads a whole blob (nothing may follow it). The blob must start on a 4-byte
    /// boundary (see [`blob::AlignedBlob`] on a host).
    ///
    /// # Errors
    /// Any loader error of [`blob::parse`], and those of [`MafView::from_parsed`].
    pub fn from_blob(bytes: &'a [u8]) -> Result<Self> {
        Self::from_parsed(blob::parse(bytes)?)
    }

    /// Loads the blob at the start of a memory region (e.g. a flash region holding
    /// the model, followed by erased bytes).
    ///
    /// # Errors
    /// Any loader error of [`blob::parse_region`], and those of
    /// [`MafView::from_parsed`].
    pub fn from_region(bytes: &'a [u8]) -> Result<Self> {
        Self::from_parsed(blob::parse_region(bytes)?)
    }

    /// Wraps an already parsed blob.
    ///
    /// # Errors
    /// [`Error::ActivationNotBuilt`] if the model's activation is not in this build
    /// (Cargo features `relu`, `tanh`); [`Error::Overflow`] if the model's constant
    /// log-determinant is not finite.
    pub fn from_parsed(blob: Blob<'a>) -> Result<Self> {
        kernel::check_built(blob.header.activation)?;
        let weights = blob.flow_weights();
        let log_det_const = kernel::constant_log_det(blob.header.shape, weights)?;
        let layout = Layout::new(blob.header.shape);
        Ok(Self {
            header: blob.header,
            weights,
            base_weights: blob.base_weights(),
            log_det_const,
            len: blob.len,
            version: blob.version,
            layout,
        })
    }

    /// The base density.
    pub fn base(&self) -> Base {
        self.header.base
    }

    /// The format version of the blob (1 or 2).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The base section's weights (empty for the standard normal).
    pub fn base_weights(&self) -> &'a [f32] {
        self.base_weights
    }

    /// The base log density of a base-space vector `u` (what [`MafView::inverse`]
    /// returns): `log_prob(x) = base_log_density(inverse(x)) + log_det`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong `u` or `scratch` length (`scratch`:
    /// at least `D` floats).
    pub fn base_log_density(&self, u: &[f32], scratch: &mut [f32]) -> Result<f32> {
        let dim = self.header.shape.dim;
        if u.len() != dim {
            return Err(Error::LengthMismatch {
                what: "base vector",
                expected: dim,
                found: u.len(),
            });
        }
        let found = scratch.len();
        let d = scratch.get_mut(..dim).ok_or(Error::LengthMismatch {
            what: "scratch",
            expected: dim,
            found,
        })?;
        Ok(base::log_density(self.header.base, self.base_weights, u, d))
    }

    /// A draw from the base density into `u`, from `choice` uniform in `[0, 1)`
    /// (which mixture component; unused for the standard normal) and `eps`, `D`
    /// standard normal values. [`MafView::sample`] of the result samples the model.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong `eps` or `u` length,
    /// [`Error::NonFiniteInput`] for a non-finite `eps` value.
    pub fn draw_base(&self, choice: f32, eps: &[f32], u: &mut [f32]) -> Result<()> {
        let dim = self.header.shape.dim;
        for (what, len) in [("normal draws", eps.len()), ("base vector", u.len())] {
            if len != dim {
                return Err(Error::LengthMismatch {
                    what,
                    expected: dim,
                    found: len,
                });
            }
        }
        if let Some(index) = eps.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput { index });
        }
        base::draw(self.header.base, self.base_weights, choice, eps, u);
        Ok(())
    }

    /// The blob's header (shapes, activation, threshold, metadata).
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// The model's shapes.
    pub fn shape(&self) -> Shape {
        self.header.shape
    }

    /// The weights, borrowed in place from the blob.
    pub fn weights(&self) -> &'a [f32] {
        self.weights
    }

    /// Length of the blob in bytes.
    pub fn blob_len(&self) -> usize {
        self.len
    }

    /// The anomaly threshold stored in the blob, if any.
    pub fn threshold(&self) -> Option<f32> {
        self.header.threshold
    }

    /// Whether a log density is below the stored threshold (`false` without one).
    pub fn is_anomaly(&self, log_prob: f32) -> bool {
        is_anomaly(self.header.threshold, log_prob)
    }

    /// Log density of `x` given the context `ctx` (empty for an unconditional
    /// model), in the units of the raw input data.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong `x`, `ctx` or `scratch` length,
    /// [`Error::NonFiniteInput`] / [`Error::NonFiniteContext`] for NaN or infinite
    /// values, [`Error::Overflow`] when the result leaves the range of `f32`.
    /// Never panics.
    pub fn log_prob(&self, x: &[f32], ctx: &[f32], scratch: &mut [f32]) -> Result<f32> {
        let shape = self.header.shape;
        let mut w = Work::split(shape, scratch)?;
        kernel::log_prob(
            self.layout,
            self.header.activation,
            self.weights,
            self.log_det_const,
            self.header.base,
            self.base_weights,
            x,
            ctx,
            &mut w,
        )
    }

    /// Floats of scratch [`MafView::log_prob_batch`] needs (feature `std`):
    /// [`batch::LANES`](crate::batch::LANES) times [`Shape::scratch_len`].
    #[cfg(feature = "std")]
    pub fn batch_scratch_len(&self) -> usize {
        crate::batch::scratch_len(self.header.shape)
    }

    /// Log densities of many vectors at once, [`batch::LANES`](crate::batch::LANES)
    /// of them in lockstep (SIMD lanes across vectors): `xs` holds
    /// `rows = out.len()` vectors one after the other (`rows × D` floats), `ctxs`
    /// their contexts (`rows × C`, empty for an unconditional model), and `out[r]`
    /// receives exactly what [`MafView::log_prob`] returns for row `r`, bit for
    /// bit: its value, or its error ([`Error::NonFiniteInput`],
    /// [`Error::NonFiniteContext`], [`Error::Overflow`]). About 5 times faster
    /// on a host (see the `log_prob` benchmark).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if `xs`, `ctxs` or `scratch` (at least
    /// [`MafView::batch_scratch_len`] floats) does not fit `out.len()` rows.
    /// Errors of single rows go to `out`. Never panics.
    #[cfg(feature = "std")]
    pub fn log_prob_batch(
        &self,
        xs: &[f32],
        ctxs: &[f32],
        out: &mut [Result<f32>],
        scratch: &mut [f32],
    ) -> Result<()> {
        let model = crate::batch::Model {
            shape: self.header.shape,
            activation: self.header.activation,
            weights: self.weights,
            log_det_const: self.log_det_const,
            base: self.header.base,
            base_weights: self.base_weights,
        };
        crate::batch::log_prob_batch(&model, xs, ctxs, out, scratch)
    }

    /// The transform to the base space, `u = f⁻¹(x)`, written into `u`; returns
    /// `log|det ∂f⁻¹/∂x|` (raw units), so that
    /// `log_prob(x) = base_log_density(u) + log_det` (for the standard normal base,
    /// `log N(u; 0, I) + log_det`).
    ///
    /// # Errors
    /// As [`MafView::log_prob`].
    pub fn inverse(
        &self,
        x: &[f32],
        ctx: &[f32],
        u: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<f32> {
        let shape = self.header.shape;
        if u.len() != shape.dim {
            return Err(Error::LengthMismatch {
                what: "base vector",
                expected: shape.dim,
                found: u.len(),
            });
        }
        let mut w = Work::split(shape, scratch)?;
        let sum_alpha = kernel::to_base(
            self.layout,
            self.header.activation,
            self.weights,
            x,
            ctx,
            &mut w,
        )?;
        u.copy_from_slice(w.s);
        finite(self.log_det_const - sum_alpha)
    }

    /// Sampling: `x = f(u)` for a base vector `u` (draw it with
    /// [`MafView::draw_base`] to sample the model), written into `x`.
    ///
    /// # Errors
    /// Length and finiteness errors as [`MafView::log_prob`]; [`Error::Overflow`] if
    /// `x` leaves the range of `f32`.
    pub fn sample(&self, u: &[f32], ctx: &[f32], x: &mut [f32], scratch: &mut [f32]) -> Result<()> {
        let shape = self.header.shape;
        let mut w = Work::split(shape, scratch)?;
        kernel::from_base(
            self.layout,
            self.header.activation,
            self.weights,
            u,
            ctx,
            x,
            &mut w,
        )
    }
}

fn is_anomaly(threshold: Option<f32>, log_prob: f32) -> bool {
    threshold.is_some_and(|t| log_prob < t)
}

fn finite(v: f32) -> Result<f32> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Overflow)
    }
}

/// A model whose shapes are fixed at compile time: data dimension `D`, hidden
/// width `H`, `L` MADEs, context dimension `C` (default 0, unconditional) and `K`
/// hidden layers per MADE (default 1).
///
/// Working memory lives on the stack, `4 (4D + C + (K-1) H)` bytes
/// ([`Maf::RAM_BYTES`]); weights are read in place from the blob. Loading checks the
/// blob's shapes against `D, H, L, C, K` and returns [`Error::ShapeMismatch`] on any
/// difference. Out-of-range shapes are rejected at compile time.
///
/// ```compile_fail
/// // K must be 1 or 2:
/// let _ = maf_core::Maf::<4, 16, 2, 0, 3>::from_blob(&[]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Maf<
    'a,
    const D: usize,
    const H: usize,
    const L: usize,
    const C: usize = 0,
    const K: usize = 1,
> {
    view: MafView<'a>,
}

impl<'a, const D: usize, const H: usize, const L: usize, const C: usize, const K: usize>
    Maf<'a, D, H, L, C, K>
{
    const VALID_SHAPES: () = {
        assert!(D >= 1 && D <= Shape::MAX_DIM, "D must be in 1..=256");
        assert!(C <= Shape::MAX_CONTEXT, "C must be in 0..=256");
        assert!(H >= 1 && H <= Shape::MAX_HIDDEN, "H must be in 1..=1024");
        // L = 0 (the base alone) loads only for a mixture base (checked by the loader).
        assert!(L <= Shape::MAX_LAYERS, "L must be in 0..=32");
        assert!(K == 1 || K == 2, "K (hidden layers) must be 1 or 2");
    };

    /// Bytes of stack one evaluation uses for its activations
    /// (= [`Shape::ram_bytes`]).
    pub const RAM_BYTES: usize = 4 * (4 * D + C + (K - 1) * H);

    /// Loads a whole blob (nothing may follow it).
    ///
    /// # Errors
    /// The loader's errors ([`blob::parse`]) and [`Error::ShapeMismatch`].
    pub fn from_blob(bytes: &'a [u8]) -> Result<Self> {
        Self::new(MafView::from_blob(bytes)?)
    }

    /// Loads the blob at the start of a memory region (e.g. the model's flash
    /// region), ignoring what follows it.
    ///
    /// # Errors
    /// The loader's errors ([`blob::parse_region`]) and [`Error::ShapeMismatch`].
    pub fn from_region(bytes: &'a [u8]) -> Result<Self> {
        Self::new(MafView::from_region(bytes)?)
    }

    /// Checks a run-time view against the compile-time shapes.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming the first differing shape.
    pub fn new(view: MafView<'a>) -> Result<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_SHAPES;
        let found = view.shape();
        let pairs = [
            ("dim", D, found.dim),
            ("hidden", H, found.hidden),
            ("layers", L, found.layers),
            ("context", C, found.context),
            ("hidden_layers", K, found.hidden_layers),
        ];
        for (what, expected, found) in pairs {
            // A flow of no layers has no MADE: its hidden sizes mean nothing.
            let unused = L == 0 && matches!(what, "hidden" | "hidden_layers");
            if expected != found && !unused {
                return Err(Error::ShapeMismatch {
                    what,
                    expected,
                    found,
                });
            }
        }
        Ok(Self { view })
    }

    /// The layouts without and with batch norm, worked out at compile time.
    const LAYOUTS: [Layout; 2] = [Self::layout_of(false), Self::layout_of(true)];

    const fn layout_of(batch_norm: bool) -> Layout {
        Layout::fixed(Shape {
            dim: D,
            context: C,
            hidden: H,
            hidden_layers: K,
            layers: L,
            batch_norm,
        })
    }

    /// The layout, with the compile-time constants (so the compiler folds them).
    #[inline(always)]
    fn layout(&self) -> Layout {
        if self.view.header.shape.batch_norm {
            Self::LAYOUTS[1]
        } else {
            Self::LAYOUTS[0]
        }
    }

    /// The run-time view of the same model.
    pub fn view(&self) -> &MafView<'a> {
        &self.view
    }

    /// The blob's header.
    pub fn header(&self) -> &Header<'a> {
        self.view.header()
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.view.header.activation
    }

    /// The base density.
    pub fn base(&self) -> Base {
        self.view.base()
    }

    /// A draw from the base density (see [`MafView::draw_base`]); [`Maf::sample`]
    /// of the result samples the model.
    ///
    /// # Errors
    /// [`Error::NonFiniteInput`] for a non-finite `eps` value.
    pub fn draw_base(&self, choice: f32, eps: &[f32; D]) -> Result<[f32; D]> {
        let mut u = [0.0f32; D];
        self.view.draw_base(choice, eps, &mut u)?;
        Ok(u)
    }

    /// The anomaly threshold stored in the blob, if any.
    pub fn threshold(&self) -> Option<f32> {
        self.view.threshold()
    }

    /// Whether a log density is below the stored threshold (`false` without one).
    pub fn is_anomaly(&self, log_prob: f32) -> bool {
        self.view.is_anomaly(log_prob)
    }

    /// Log density of `x` given the context, in raw input units. Bit-identical to
    /// [`MafView::log_prob`].
    ///
    /// # Errors
    /// [`Error::NonFiniteInput`], [`Error::NonFiniteContext`], [`Error::Overflow`].
    /// Never panics.
    pub fn log_prob(&self, x: &[f32; D], ctx: &[f32; C]) -> Result<f32> {
        with_work::<D, C, H, K, _>(|w| {
            kernel::log_prob(
                self.layout(),
                self.activation(),
                self.view.weights,
                self.view.log_det_const,
                self.view.header.base,
                self.view.base_weights,
                x,
                ctx,
                w,
            )
        })
    }

    /// `u = f⁻¹(x)` and `log|det ∂f⁻¹/∂x|` (raw units).
    ///
    /// # Errors
    /// As [`Maf::log_prob`].
    pub fn inverse(&self, x: &[f32; D], ctx: &[f32; C]) -> Result<([f32; D], f32)> {
        with_work::<D, C, H, K, _>(|w| {
            let sum_alpha = kernel::to_base(
                self.layout(),
                self.activation(),
                self.view.weights,
                x,
                ctx,
                w,
            )?;
            let log_det = finite(self.view.log_det_const - sum_alpha)?;
            let mut u = [0.0f32; D];
            u.copy_from_slice(w.s);
            Ok((u, log_det))
        })
    }

    /// Sampling: `x = f(u)`.
    ///
    /// # Errors
    /// [`Error::NonFiniteInput`], [`Error::NonFiniteContext`], [`Error::Overflow`].
    pub fn sample(&self, u: &[f32; D], ctx: &[f32; C]) -> Result<[f32; D]> {
        with_work::<D, C, H, K, _>(|w| {
            let mut x = [0.0f32; D];
            kernel::from_base(
                self.layout(),
                self.activation(),
                self.view.weights,
                u,
                ctx,
                &mut x,
                w,
            )?;
            Ok(x)
        })
    }
}

/// Runs `f` with working memory on the stack: `4 (4D + C + (K-1) H)` bytes.
#[inline(always)]
fn with_work<const D: usize, const C: usize, const H: usize, const K: usize, T>(
    f: impl FnOnce(&mut Work<'_>) -> Result<T>,
) -> Result<T> {
    let mut s = [0.0f32; D];
    let mut u = [0.0f32; D];
    let mut acc = [[0.0f32; 2]; D];
    let mut cz = [0.0f32; C];
    if K == 1 {
        f(&mut Work {
            s: &mut s,
            u: &mut u,
            acc: acc.as_flattened_mut(),
            cz: &mut cz,
            h: &mut [],
        })
    } else {
        let mut h = [0.0f32; H];
        f(&mut Work {
            s: &mut s,
            u: &mut u,
            acc: acc.as_flattened_mut(),
            cz: &mut cz,
            h: &mut h,
        })
    }
}
