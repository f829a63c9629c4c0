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

/// Every setting of a training run. Start from [`Default`] and change fields.
#[derive(Clone, Debug, PartialEq)]
pub struct FitParams {
    /// Number of MADEs (1..=32).
    pub layers: usize,
    /// Hidden units per hidden layer (1..=1024).
    pub hidden: usize,
    /// Hidden layers per MADE (1 or 2).
    pub hidden_layers: usize,
    /// Minibatch size (>= 2 with batch norm).
    pub batch_size: usize,
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
            batch_size: 100,
            learning_rate: 1e-3,
            weight_decay: 1e-6,
            max_epochs: 1000,
            patience: 30,
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
        if !(1..=32).contains(&self.layers) {
            return Err(bad("layers", format!("{} is not in 1..=32", self.layers)));
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
        if self.batch_size < min_batch {
            return Err(bad(
                "batch-size",
                format!("{} is below {min_batch}", self.batch_size),
            ));
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
