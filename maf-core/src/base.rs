//! The base density at the end of the flow: a standard normal (format version 1
//! and the default), or a Gaussian mixture with full or diagonal covariance
//! (format version 2; `docs/blob-format.md`, "The base section").
//!
//! A mixture component `k` is stored as its log normaliser
//! `c_k = ln w_k + ln|det W_k| - (D/2) ln 2π`, its mean `m_k` and the factor `W_k`
//! of its precision matrix (`W_kᵀ W_k = Σ_k⁻¹`): lower triangular (full
//! covariance, rows `j` holding `W_k[j][0..=j]`) or diagonal (`1 / σ`). Its log
//! density is `c_k - ½ |W_k (u - m_k)|²`, and the mixture's is the log-sum-exp over
//! the components, evaluated in one streaming pass with a running maximum: no
//! component's term can underflow the sum to `-inf` while another is finite, and no
//! buffer of `K` values is needed.

use crate::num::HALF_LN_2PI;
use crate::{Error, Result};

/// Most mixture components a blob may hold.
pub const MAX_COMPONENTS: usize = 64;

/// How far the stored mixture weights may sum from 1 (they are `f32` logs).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-3;

/// The covariance structure of a mixture's components.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covariance {
    /// Full covariance: a lower-triangular precision factor, `D (D + 1) / 2` floats.
    Full,
    /// Diagonal covariance: `D` inverse standard deviations.
    Diagonal,
}

/// The base density of a model.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The standard normal `N(0, I)`: no weights.
    StandardNormal,
    /// A mixture of `components` Gaussians (1..=[`MAX_COMPONENTS`]).
    Mixture {
        /// Number of components `K`.
        components: usize,
        /// Covariance structure of every component.
        covariance: Covariance,
    },
}

impl Base {
    /// The byte that encodes the base kind in a version-2 blob.
    pub const fn kind_byte(self) -> u8 {
        match self {
            Base::StandardNormal => 0,
            Base::Mixture {
                covariance: Covariance::Full,
                ..
            } => 1,
            Base::Mixture {
                covariance: Covariance::Diagonal,
                ..
            } => 2,
        }
    }

    /// Decodes the base kind byte and component count of a version-2 blob.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an unknown kind, [`Error::ShapeOutOfRange`] for a
    /// component count outside 1..=[`MAX_COMPONENTS`] (or not 0 for the standard
    /// normal).
    pub const fn from_parts(kind: u8, components: usize) -> Result<Self> {
        let covariance = match kind {
            0 if components == 0 => return Ok(Base::StandardNormal),
            0 => {
                return Err(Error::ShapeOutOfRange {
                    what: "components",
                    found: components,
                });
            }
            1 => Covariance::Full,
            2 => Covariance::Diagonal,
            _ => return Err(Error::Malformed("base")),
        };
        if components == 0 || components > MAX_COMPONENTS {
            return Err(Error::ShapeOutOfRange {
                what: "components",
                found: components,
            });
        }
        Ok(Base::Mixture {
            components,
            covariance,
        })
    }

    /// Number of mixture components (0 for the standard normal).
    pub const fn components(self) -> usize {
        match self {
            Base::StandardNormal => 0,
            Base::Mixture { components, .. } => components,
        }
    }

    /// Floats of one component's precision factor in dimension `dim`.
    pub const fn factor_len(self, dim: usize) -> usize {
        match self {
            Base::StandardNormal => 0,
            Base::Mixture {
                covariance: Covariance::Full,
                ..
            } => dim * (dim + 1) / 2,
            Base::Mixture {
                covariance: Covariance::Diagonal,
                ..
            } => dim,
        }
    }

    /// Floats of one component: log normaliser, mean, precision factor.
    pub const fn component_len(self, dim: usize) -> usize {
        match self {
            Base::StandardNormal => 0,
            Base::Mixture { .. } => 1 + dim + self.factor_len(dim),
        }
    }

    /// Floats of the whole base section.
    pub const fn weight_count(self, dim: usize) -> usize {
        self.components() * self.component_len(dim)
    }

    /// Multiply-accumulates of one base evaluation (the precision factor times the
    /// centred vector, and the squared norm).
    pub const fn macs(self, dim: usize) -> usize {
        match self {
            Base::StandardNormal => dim,
            Base::Mixture { components, .. } => components * (self.factor_len(dim) + dim),
        }
    }

    /// `expf` calls of one base evaluation (one per component; `logf` once more).
    pub const fn exps(self) -> usize {
        self.components()
    }
}

/// Checks a base section: every factor diagonal entry strictly positive (the
/// caller has checked finiteness) and the mixture weights `exp(c_k - ln|det W_k|
/// + (D/2) ln 2π)` summing to 1 within 1e-3. `offset` is where the section starts
/// in the blob's weights, for [`Error::InvalidWeight`].
pub(crate) fn check(base: Base, dim: usize, section: &[f32], offset: usize) -> Result<()> {
    if section.len() != base.weight_count(dim) {
        return Err(Error::Malformed("base section"));
    }
    let Base::Mixture { covariance, .. } = base else {
        return Ok(());
    };
    let len = base.component_len(dim);
    let mut weight_sum = 0.0f64;
    for (k, comp) in section.chunks_exact(len).enumerate() {
        let start = offset + k * len;
        let factor = comp.get(1 + dim..).unwrap_or_default();
        let mut log_det = 0.0f64;
        for j in 0..dim {
            let at = match covariance {
                Covariance::Full => j * (j + 1) / 2 + j,
                Covariance::Diagonal => j,
            };
            let v = factor.get(at).copied().unwrap_or(0.0);
            if v.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater) {
                return Err(Error::InvalidWeight {
                    index: start + 1 + dim + at,
                });
            }
            log_det += libm::log(f64::from(v));
        }
        let c = f64::from(comp.first().copied().unwrap_or(0.0));
        weight_sum += libm::exp(c - log_det + dim as f64 * f64::from(HALF_LN_2PI));
    }
    if (weight_sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
        return Err(Error::Malformed("base (mixture weights do not sum to 1)"));
    }
    Ok(())
}

/// The base log density of `u`; `d` is scratch of the same length.
///
/// Sums run in the order of `docs/blob-format.md`, so host and device agree bit
/// for bit.
#[inline(always)]
pub(crate) fn log_density(base: Base, section: &[f32], u: &[f32], d: &mut [f32]) -> f32 {
    let dim = u.len();
    let Base::Mixture { covariance, .. } = base else {
        let sq: f32 = u.iter().map(|v| v * v).sum();
        return -0.5 * sq - dim as f32 * HALF_LN_2PI;
    };
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0.0f32;
    for comp in section.chunks_exact(base.component_len(dim)) {
        let (c, rest) = comp.split_first().unwrap_or((&0.0, &[]));
        let (mean, factor) = rest.split_at_checked(dim).unwrap_or((rest, &[]));
        for ((d, &u), &m) in d.iter_mut().zip(u).zip(mean) {
            *d = u - m;
        }
        let mut sq = 0.0f32;
        match covariance {
            Covariance::Full => {
                let mut row = factor;
                for j in 0..dim {
                    let (w, rest) = row.split_at_checked(j + 1).unwrap_or((row, &[]));
                    row = rest;
                    let z: f32 = w.iter().zip(d.iter()).fold(0.0, |a, (w, d)| a + w * d);
                    sq += z * z;
                }
            }
            Covariance::Diagonal => {
                for (&w, &d) in factor.iter().zip(d.iter()) {
                    let z = w * d;
                    sq += z * z;
                }
            }
        }
        let v = *c - 0.5 * sq;
        // Streaming log-sum-exp: `max + ln(sum)` with `sum = Σ exp(v_k - max)`.
        // A component at `-inf` (its quadratic overflowed) adds nothing; skipping
        // it keeps `expf(-inf - -inf)` (NaN) out of the sum when it comes first.
        if v > max {
            sum = sum * libm::expf(max - v) + 1.0;
            max = v;
        } else if v > f32::NEG_INFINITY {
            sum += libm::expf(v - max);
        }
    }
    max + libm::logf(sum)
}

/// A draw from the base density: a standard normal `eps` for the standard normal
/// base, else `u = m_k + W_k⁻¹ eps` for the component `k` that `choice` (uniform in
/// `[0, 1)`) picks by the cumulative mixture weights.
pub(crate) fn draw(base: Base, section: &[f32], choice: f32, eps: &[f32], u: &mut [f32]) {
    let dim = u.len();
    let Base::Mixture { covariance, .. } = base else {
        crate::num::copy(u, eps);
        return;
    };
    let len = base.component_len(dim);
    let diag_at = |j: usize| match covariance {
        Covariance::Full => j * (j + 1) / 2 + j,
        Covariance::Diagonal => j,
    };
    let mut picked = section.chunks_exact(len).last().unwrap_or_default();
    let mut cum = 0.0f32;
    for comp in section.chunks_exact(len) {
        let factor = comp.get(1 + dim..).unwrap_or_default();
        let log_det: f32 = (0..dim)
            .map(|j| libm::logf(factor.get(diag_at(j)).copied().unwrap_or(1.0)))
            .sum();
        let c = comp.first().copied().unwrap_or(0.0);
        cum += libm::expf(c - log_det + dim as f32 * HALF_LN_2PI);
        if choice < cum {
            picked = comp;
            break;
        }
    }
    let mean = picked.get(1..1 + dim).unwrap_or_default();
    let factor = picked.get(1 + dim..).unwrap_or_default();
    // Solve W d = eps by forward substitution (W lower triangular or diagonal).
    for j in 0..dim {
        let e = eps.get(j).copied().unwrap_or(0.0);
        let v = match covariance {
            Covariance::Full => {
                let row = factor
                    .get(j * (j + 1) / 2..j * (j + 1) / 2 + j + 1)
                    .unwrap_or_default();
                let (diag, off) = row.split_last().unwrap_or((&1.0, &[]));
                let s = off.iter().zip(u.iter()).fold(e, |a, (w, d)| a - w * d);
                s / *diag
            }
            Covariance::Diagonal => e / factor.get(j).copied().unwrap_or(1.0),
        };
        if let Some(slot) = u.get_mut(j) {
            *slot = v;
        }
    }
    for (u, &m) in u.iter_mut().zip(mean) {
        *u += m;
    }
}
