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

mod arch;
mod backward;
mod base;
mod forward;
pub(crate) mod par;
mod params;
mod scratch;
mod simd;
mod sums;

pub use arch::{Activation, Arch, BN_EPS, HALF_LN_2PI, Real, fast_tanh};
pub use forward::BnStats;
pub use params::{ALL_KINDS, KINDS, Kind, Masks, Params};
pub use scratch::Scratch;
