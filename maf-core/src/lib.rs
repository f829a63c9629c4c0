#![doc = include_str!("../README.md")]
// We are no_std: the core runs on microcontrollers without a heap. Tests and the
// `std` feature (host helpers: the blob writer) link std.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
// No `unsafe` anywhere: weights are viewed in place through bytemuck's checked cast.
#![forbid(unsafe_code)]
// Inference must never panic: no unwrap/expect, no unchecked indexing.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[cfg(not(any(feature = "relu", feature = "tanh")))]
compile_error!("maf-core evaluates no model without one of its features `relu`, `tanh`");

pub mod base;
// The batched density pass (host scoring; SIMD through `wide`).
#[cfg(feature = "std")]
pub mod batch;
pub mod blob;
pub mod calibrator;
mod crc;
pub mod detector;
mod error;
mod kernel;
mod model;
mod num;
mod shape;

pub use crate::base::{Base, Covariance};
pub use crate::calibrator::Calibrator;
pub use crate::crc::crc32;
pub use crate::detector::{Decision, Detector};
pub use crate::error::{Error, Result};
pub use crate::model::{Maf, MafView};
pub use crate::shape::{Activation, Shape, tanh};
