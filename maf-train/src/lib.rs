//! `maf-train`: fits Masked Autoregressive Flows on CSV sensor data and exports the
//! weight blobs `maf-core` evaluates on a microcontroller.
//!
//! The pipeline: [`data`] reads and validates CSV files; [`hyper`] checks the
//! settings once; [`model`] is the flow with hand-written gradients; [`train`] runs
//! Adam with early stopping; [`export`] packs the weights into the blob order of
//! `docs/blob-format.md`; [`metrics`] computes the numbers `eval` reports; [`report`]
//! and [`plot`] make the result table and the pictures; [`cli`] is the
//! command-line front end.

pub mod cli;
pub mod cost;
pub mod data;
pub mod error;
pub mod export;
pub mod hyper;
pub mod metrics;
pub mod mixture;
pub mod model;
pub mod parallel;
pub mod plot;
pub mod report;
pub mod select;
pub mod train;

pub use error::{Error, Result};
