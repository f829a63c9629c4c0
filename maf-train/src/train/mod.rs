//! The training loop: Adam on minibatches reshuffled every epoch, L2 weight decay,
//! optional gradient clipping, validation every epoch with whole-training-set batch
//! norm statistics, early stopping, recovery from divergence.
//!
//! [`fit`] (the loop, `fit.rs`) runs epochs of minibatch steps (`epoch.rs`) on
//! [`Data`] and keeps the epoch with the best validation score (`score.rs`);
//! `bench.rs` times the same steps on synthetic data.

mod bench;
mod data;
mod epoch;
mod fit;
mod score;

pub use bench::{BenchConfig, BenchResult, bench, bench_config, bench_threads};
pub use data::Data;
pub(crate) use fit::fit_from_dynamic;
pub use fit::{EpochReport, Fitted, MAX_RECOVERIES, arch_for, fit, fit_from, fit_from_threads};
pub use score::{log_likelihoods, mean_log_likelihood, trimmed_mean_low};
