//! `maf-train`: fits Masked Autoregressive Flows on CSV sensor data and exports the
//! weight blobs `maf-core` evaluates on a microcontroller.
//!
//! The pipeline: [`data`] reads and validates CSV and `.npy` files; [`hyper`]
//! checks the settings once; [`model`] is the flow with hand-written gradients,
//! [`mixture`] the Gaussian-mixture base; [`train`] runs Adam with early stopping
//! and [`select`] the model search within the device budget ([`cost`]);
//! [`fitting`] ties them into one `fit` call; [`export`] packs the weights into the
//! blob order of `docs/blob-format.md`; [`scoring`] computes log densities with
//! `maf-core`; [`metrics`] and [`report`] the numbers `eval` and `report` print;
//! [`charts`] draws the SVG plots. [`io`] holds every file read and write (model
//! blobs, labels, scores, atomic outputs); [`interrupt`] is the stop flag that
//! SIGINT/SIGTERM set during `fit`. The command line is [`cli`] (the clap types)
//! and [`commands`] (one module per subcommand). `docs/data-format.md` is the
//! contract the readers implement.
//!
//! Dependencies point one way: `commands` → `fitting`/`report`/`charts` →
//! `io` → `data` → `error`; no module imports a command.

pub mod charts;
pub mod cli;
pub mod commands;
pub mod cost;
pub mod data;
pub mod error;
pub mod export;
pub mod fitting;
pub mod hyper;
pub mod interrupt;
pub mod io;
pub mod metrics;
pub mod mixture;
pub mod model;
pub mod parallel;
pub mod report;
pub mod scoring;
pub mod select;
pub mod train;
pub mod windows;

pub use error::{Error, Result};
