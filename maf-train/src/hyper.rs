//! Training settings, validated once (linfa style: build [`FitParams`], call
//! [`FitParams::check`], use the [`CheckedFitParams`] it yields).

use crate::error::{Error, Result};
use crate::model::Activation;

/// Default anomaly quantile: the threshold is the 1 % quantile of the validation
/// log densities, so about 1 % of normal vectors raise a false alarm. A smaller
/// quantile would rest on too few validation rows (0.5 % of the 600 BasicMotions
/// validation rows is 3 rows); a larger one doubles the false alarms for little
/// gain in recall on these sets.
pub const DEFAULT_ANOMALY_QUANTILE: f64 = 0.01;

/// Smallest minibatch [`BatchSize::Auto`] picks (the paper's minibatch).
pub const AUTO_BATCH_MIN: usize = 100;
/// Largest minibatch [`BatchSize::Auto`] picks (the PyTorch baselines' minibatch).
pub const AUTO_BATCH_MAX: usize = 256;
/// [`BatchSize::Auto`] aims at this many minibatches per epoch.
pub const AUTO_BATCHES_PER_EPOCH: usize = 100;

/// Minibatch size: fixed, or chosen from the number of training rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    /// About [`AUTO_BATCHES_PER_EPOCH`] minibatches per epoch, within
    /// [`AUTO_BATCH_MIN`]`..=`[`AUTO_BATCH_MAX`] rows: 100 rows up to 10,000
    /// training rows, growing to 256 rows from 25,600. Small sets keep the
    /// gradient noise of small batches (measured: better AUROC on BasicMotions,
    /// 2,400 rows); large sets get the steadier gradients and batch-norm
    /// statistics of larger ones (measured: better AUROC and fewer far-out
    /// log-density collapses on heavy-tailed Shuttle, 27,351 rows).
    Auto,
    /// Exactly this many rows (>= 2 with batch norm).
    Fixed(usize),
}

impl BatchSize {
    /// The minibatch size for `train_rows` training rows.
    pub fn rows(self, train_rows: usize) -> usize {
        match self {
            BatchSize::Auto => {
                (train_rows / AUTO_BATCHES_PER_EPOCH).clamp(AUTO_BATCH_MIN, AUTO_BATCH_MAX)
            }
            BatchSize::Fixed(b) => b,
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Auto => f.write_str("auto"),
            BatchSize::Fixed(b) => write!(f, "{b}"),
        }
    }
}

impl std::str::FromStr for BatchSize {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(BatchSize::Auto);
        }
        s.parse()
            .map(BatchSize::Fixed)
            .map_err(|_| format!("{s:?} is neither `auto` nor a number of rows"))
    }
}

/// Every setting of a training run. Start from [`Default`] and change fields.
#[derive(Clone, Debug, PartialEq)]
pub struct FitParams {
    /// Number of MADEs (1..=32).
    pub layers: usize,
    /// Hidden units per hidden layer (1..=1024).
    pub hidden: usize,
    /// Hidden layers per MADE (1 or 2).
    pub hidden_layers: usize,
    /// Minibatch size.
    pub batch_size: BatchSize,
    /// Adam learning rate (> 0).
    pub learning_rate: f64,
    /// L2 penalty on the weight matrices (>= 0).
    pub weight_decay: f64,
    /// Upper bound on the number of epochs (>= 1).
    pub max_epochs: usize,
    /// Early-stopping patience in epochs (>= 1).
    pub patience: usize,
    /// Seed of every random choice (initialisation, hold-out split, shuffling).
    pub seed: u64,
    /// Batch norm after every MADE.
    pub batch_norm: bool,
    /// Hidden activation.
    pub activation: Activation,
    /// Quantile of the validation log densities used as the anomaly threshold, in
    /// (0, 1).
    pub anomaly_quantile: f64,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// Fraction of training rows held out for validation when no validation file is
    /// given, in (0, 1).
    pub valid_fraction: f64,
}

impl Default for FitParams {
    fn default() -> Self {
        FitParams {
            layers: 5,
            hidden: 64,
            hidden_layers: 1,
            batch_size: BatchSize::Auto,
            // Measured with patience 60 (docs/model.md): AUROC as good as or
            // better than with 1e-3 on both bundled sets, in fewer epochs.
            learning_rate: 2e-3,
            weight_decay: 1e-6,
            max_epochs: 1000,
            patience: 60,
            seed: 0,
            batch_norm: true,
            // Measured better than ReLU on heavy-tailed sensor data (see the CLI help).
            activation: Activation::Tanh,
            anomaly_quantile: DEFAULT_ANOMALY_QUANTILE,
            clip_norm: Some(100.0),
            valid_fraction: 0.1,
        }
    }
}

/// [`FitParams`] that passed [`FitParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedFitParams(FitParams);

impl std::ops::Deref for CheckedFitParams {
    type Target = FitParams;
    fn deref(&self) -> &FitParams {
        &self.0
    }
}

fn bad(name: &'static str, message: impl Into<String>) -> Error {
    Error::InvalidParam {
        name,
        message: message.into(),
    }
}

impl FitParams {
    /// Validates every setting.
    ///
    /// # Errors
    /// [`Error::InvalidParam`] naming the first bad option.
    pub fn check(self) -> Result<CheckedFitParams> {
        // 0 MADEs is the mixture base alone (the caller pairs it with a mixture).
        if self.layers > 32 {
            return Err(bad("layers", format!("{} is not in 0..=32", self.layers)));
        }
        if !(1..=1024).contains(&self.hidden) {
            return Err(bad("hidden", format!("{} is not in 1..=1024", self.hidden)));
        }
        if !(1..=2).contains(&self.hidden_layers) {
            return Err(bad(
                "hidden-layers",
                format!("{} is not 1 or 2", self.hidden_layers),
            ));
        }
        let min_batch = if self.batch_norm { 2 } else { 1 };
        if let BatchSize::Fixed(b) = self.batch_size
            && b < min_batch
        {
            return Err(bad("batch-size", format!("{b} is below {min_batch}")));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(bad(
                "learning-rate",
                format!("{} is not a positive number", self.learning_rate),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad(
                "weight-decay",
                format!("{} is not a non-negative number", self.weight_decay),
            ));
        }
        if self.max_epochs == 0 {
            return Err(bad("max-epochs", "must be at least 1"));
        }
        if self.patience == 0 {
            return Err(bad("patience", "must be at least 1"));
        }
        if !(self.anomaly_quantile > 0.0 && self.anomaly_quantile < 1.0) {
            return Err(bad(
                "anomaly-quantile",
                format!("{} is not in (0, 1)", self.anomaly_quantile),
            ));
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(bad("clip-norm", format!("{c} is not a positive number")));
        }
        if !(self.valid_fraction > 0.0 && self.valid_fraction < 1.0) {
            return Err(bad(
                "valid-fraction",
                format!("{} is not in (0, 1)", self.valid_fraction),
            ));
        }
        Ok(CheckedFitParams(self))
    }
}

#[cfg(test)]
mod tests {
    // Tests fail by panicking.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn auto_batch_size_follows_the_training_rows() {
        let auto = BatchSize::Auto;
        assert_eq!(auto.rows(50), 100);
        assert_eq!(auto.rows(2_400), 100);
        assert_eq!(auto.rows(10_000), 100);
        assert_eq!(auto.rows(15_050), 150);
        assert_eq!(auto.rows(25_600), 256);
        assert_eq!(auto.rows(27_351), 256);
        assert_eq!(auto.rows(10_000_000), 256);
        assert_eq!(BatchSize::Fixed(7).rows(27_351), 7);
    }

    #[test]
    fn batch_size_parses_and_prints() {
        assert_eq!("auto".parse::<BatchSize>(), Ok(BatchSize::Auto));
        assert_eq!("AUTO".parse::<BatchSize>(), Ok(BatchSize::Auto));
        assert_eq!("64".parse::<BatchSize>(), Ok(BatchSize::Fixed(64)));
        assert!("-3".parse::<BatchSize>().unwrap_err().contains("auto"));
        assert_eq!(BatchSize::Auto.to_string(), "auto");
        assert_eq!(BatchSize::Fixed(64).to_string(), "64");
        let one = FitParams {
            batch_size: BatchSize::Fixed(1),
            ..FitParams::default()
        };
        assert!(one.check().is_err());
        assert!(FitParams::default().check().is_ok());
    }
}
