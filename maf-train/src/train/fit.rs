//! The training loop of [`fit`]: epochs, validation, early stopping, recovery
//! from divergence, and the best weights it keeps.

use std::time::{Duration, Instant};

use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::data::Data;
use super::epoch::{Adam, Step, Workers, even_batches, pool, run_epoch};
use super::score::{log_likelihoods, trimmed_mean_low};
use crate::error::{Error, Result};
use crate::hyper::CheckedFitParams;
use crate::model::{Arch, BnStats, Masks, Params};

/// How many times training restarts from the best weights with a halved learning
/// rate after a non-finite loss before it gives up.
pub const MAX_RECOVERIES: usize = 5;

/// What happened in one epoch, for progress display.
#[derive(Clone, Debug)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// The run's epoch limit.
    pub max_epochs: usize,
    /// Mean training loss over the epoch (negative log-likelihood, standardised
    /// units, minibatch batch norm).
    pub train_loss: f64,
    /// The early-stopping score: mean validation log-likelihood in raw data units
    /// over the validation rows above the anomaly quantile (the lowest
    /// `anomaly_quantile` fraction left out, see [`trimmed_mean_low`]); non-finite
    /// if diverged.
    pub valid_ll: f64,
    /// Plain mean validation log-likelihood over all rows (raw units).
    pub valid_mean_ll: f64,
    /// Best validation log-likelihood so far.
    pub best_ll: f64,
    /// Epoch of the best so far.
    pub best_epoch: usize,
    /// Epochs since the best (early stopping fires at the patience).
    pub stale: usize,
    /// Learning rate now in force.
    pub learning_rate: f64,
    /// Time since training started.
    pub elapsed: Duration,
    /// `Some(message)` if this epoch diverged and training restarted.
    pub recovered: Option<String>,
}

/// The result of [`fit`]: the best-validation weights and everything export needs.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// Best-validation parameters.
    pub params: Params<f32>,
    /// Their whole-training-set batch-norm statistics.
    pub stats: BnStats,
    /// Epochs run.
    pub epochs: usize,
    /// Epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// Their early-stopping score (raw units; see [`EpochReport::valid_ll`]).
    pub valid_ll: f64,
    /// Their plain mean validation log-likelihood over all rows (raw units).
    pub valid_mean_ll: f64,
    /// How many divergences were recovered from.
    pub recoveries: usize,
    /// Wall time of training.
    pub elapsed: Duration,
}

/// Builds the `Arch` a checked parameter set describes for data of `dim` features
/// and `context` context columns.
pub fn arch_for(hp: &CheckedFitParams, dim: usize, context: usize) -> Arch {
    Arch {
        dim,
        context,
        hidden: hp.hidden,
        hidden_layers: hp.hidden_layers,
        layers: hp.layers,
        batch_norm: hp.batch_norm,
        activation: hp.activation,
        base: maf_core::Base::StandardNormal,
    }
}

/// Trains a MAF on `train`, early-stopping on `valid`.
///
/// Minibatches are reshuffled every epoch (every row is used once per epoch; the
/// rows are split into batches whose sizes differ by at most one, so no tiny last
/// batch upsets batch norm). Weight decay adds `weight_decay * w` to the gradient
/// of every weight matrix. A non-finite loss or validation log-likelihood restarts
/// from the best weights so far with half the learning rate and fresh Adam moments.
/// `on_epoch` sees every epoch's report.
///
/// # Errors
/// [`Error::Diverged`] after [`MAX_RECOVERIES`] restarts, [`Error::InvalidParam`]
/// for too few rows.
pub fn fit(
    hp: &CheckedFitParams,
    arch: Arch,
    train: Data<'_>,
    valid: Data<'_>,
    log_jacobian: f64,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Fitted> {
    fit_from(hp, arch, None, None, train, valid, log_jacobian, on_epoch)
}

/// [`fit`] from the starting parameters `init` (`None`: random, [`Params::init`]),
/// stopping early (as if patience ran out) when `deadline` passes. With `init`
/// given, their own validation score is "epoch 0": training keeps it unless an
/// epoch beats it, so the result is never worse on validation than the start.
///
/// # Errors
/// As [`fit`].
#[allow(clippy::too_many_arguments)]
pub fn fit_from(
    hp: &CheckedFitParams,
    arch: Arch,
    init: Option<Params<f32>>,
    deadline: Option<Instant>,
    train: Data<'_>,
    valid: Data<'_>,
    log_jacobian: f64,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Fitted> {
    // One thread: the callers that train several models at once (the search)
    // use the cores for those; the result is the same bits for every count.
    let threads = 1;
    fit_from_threads(
        hp,
        arch,
        init,
        deadline,
        train,
        valid,
        log_jacobian,
        on_epoch,
        threads,
    )
}

/// [`fit_from`] on `threads` threads (0: [`crate::parallel::available_threads`];
/// [`fit_from`] uses one): each minibatch's forward and backward pass is split
/// by rows and its weight gradients by tensor, every value computed as on one
/// thread, so the result is the same, bit for bit, for every thread count.
///
/// # Errors
/// As [`fit`].
#[allow(clippy::too_many_arguments)]
pub fn fit_from_threads(
    hp: &CheckedFitParams,
    arch: Arch,
    init: Option<Params<f32>>,
    deadline: Option<Instant>,
    train: Data<'_>,
    valid: Data<'_>,
    log_jacobian: f64,
    on_epoch: &mut dyn FnMut(&EpochReport),
    threads: usize,
) -> Result<Fitted> {
    let threads = if threads == 0 {
        crate::parallel::available_threads()
    } else {
        threads
    };
    fit_from_dynamic(
        hp,
        arch,
        init,
        deadline,
        train,
        valid,
        log_jacobian,
        on_epoch,
        &|| threads,
    )
}

/// [`fit_from_threads`] with the thread count asked of `threads` before every
/// epoch (the search gives a training the cores that other candidates have
/// stopped using). The result does not depend on it.
///
/// # Errors
/// As [`fit`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_from_dynamic(
    hp: &CheckedFitParams,
    arch: Arch,
    init: Option<Params<f32>>,
    deadline: Option<Instant>,
    train: Data<'_>,
    valid: Data<'_>,
    log_jacobian: f64,
    on_epoch: &mut dyn FnMut(&EpochReport),
    threads: &dyn Fn() -> usize,
) -> Result<Fitted> {
    let n = train.x.nrows();
    if n < 2 || valid.x.nrows() == 0 {
        return Err(Error::InvalidParam {
            name: "data",
            message: format!(
                "need at least 2 training rows and 1 validation row (have {n} and {})",
                valid.x.nrows()
            ),
        });
    }
    let start = Instant::now();
    let mut workers = None;
    let mut rng = ChaCha8Rng::seed_from_u64(hp.seed);
    let masks = Masks::<f32>::new(&arch);
    let given = init.is_some();
    let mut params = match init {
        Some(p) => p,
        None => Params::<f32>::init(arch, &masks, &mut rng),
    };
    let mut grad = Params::<f32>::zeros(arch);
    let mut adam = Adam::new(arch);
    let mut lr = hp.learning_rate;
    let mut order: Vec<usize> = (0..n).collect();
    let batches = even_batches(n, hp.batch_size.rows(n).min(n));
    let mut best: Option<(Params<f32>, BnStats, f64, usize, f64)> = None;
    if given && params.all_finite() {
        let stats = params.bn_stats(train.x, train.c);
        let lls = log_likelihoods(&params, &stats, valid.x, valid.c, log_jacobian);
        let mean = lls.iter().sum::<f64>() / lls.len() as f64;
        let ll = trimmed_mean_low(&lls, hp.anomaly_quantile);
        if ll.is_finite() {
            best = Some((params.clone(), stats, ll, 0, mean));
        }
    }
    let mut stale = 0;
    let mut recoveries = 0;
    let mut epoch = 0;
    let mut xb = Array2::<f32>::zeros((0, arch.dim));
    let mut cb = Array2::<f32>::zeros((0, arch.context));
    let mut out_of_time = false;
    while epoch < hp.max_epochs && stale < hp.patience && !out_of_time {
        epoch += 1;
        order.shuffle(&mut rng);
        let want = threads().max(1);
        if want != workers.as_ref().map_or(1, Workers::threads) {
            workers = pool(want);
        }
        let (loss_sum, mut diverged) = run_epoch(
            &mut Step {
                params: &mut params,
                grad: &mut grad,
                adam: &mut adam,
                masks: &masks,
                xb: &mut xb,
                cb: &mut cb,
                pool: workers.as_ref(),
            },
            hp,
            train,
            &order,
            &batches,
            lr,
        )
        .map_or_else(
            |why| (0.0, Some(format!("{why} in epoch {epoch}"))),
            |l| (l, None),
        );
        let train_loss = loss_sum / n as f64;
        let mut valid_mean = f64::NAN;
        let (valid_ll, stats) = if diverged.is_none() && params.all_finite() {
            // Per-epoch whole-set statistics and validation run in f32 like
            // training (rows that overflow count as the lowest and are trimmed);
            // the kept weights' statistics are recomputed in f64 at the end.
            let stats = params.bn_stats(train.x, train.c);
            let lls = log_likelihoods(&params, &stats, valid.x, valid.c, log_jacobian);
            valid_mean = lls.iter().sum::<f64>() / lls.len() as f64;
            let ll = trimmed_mean_low(&lls, hp.anomaly_quantile);
            // A validation row far outside the training range can overflow even
            // f64 (NaN or -inf): that epoch is simply not an improvement. Only a
            // non-finite training loss or weights count as divergence.
            let ll = if ll.is_nan() { f64::NEG_INFINITY } else { ll };
            (ll, Some(stats))
        } else {
            if diverged.is_none() {
                diverged = Some(format!("non-finite weights in epoch {epoch}"));
            }
            (f64::NAN, None)
        };
        let mut recovered = None;
        if let Some(why) = diverged {
            recoveries += 1;
            if recoveries > MAX_RECOVERIES {
                return Err(Error::Diverged(format!(
                    "{why}; gave up after {MAX_RECOVERIES} restarts with the learning rate \
                     halved each time (now {lr:e}); try a smaller --learning-rate, \
                     --clip-norm, or check the data for extreme values"
                )));
            }
            lr *= 0.5;
            params = match &best {
                Some((p, ..)) => p.clone(),
                None => Params::<f32>::init(arch, &masks, &mut rng),
            };
            if arch.layers == 0 {
                // Nothing to train but the base: keep the start.
                break;
            }
            adam = Adam::new(arch);
            recovered = Some(format!(
                "{why}: restarted from the best weights with learning rate {lr:e}"
            ));
        } else if let Some(stats) = stats {
            if valid_ll.is_finite() && best.as_ref().is_none_or(|b| valid_ll > b.2) {
                best = Some((params.clone(), stats, valid_ll, epoch, valid_mean));
                stale = 0;
            } else {
                stale += 1;
            }
        }
        let (best_ll, best_epoch) = best.as_ref().map_or((f64::NAN, 0), |b| (b.2, b.3));
        out_of_time =
            deadline.is_some_and(|d| Instant::now() >= d) || crate::interrupt::requested();
        on_epoch(&EpochReport {
            epoch,
            max_epochs: hp.max_epochs,
            train_loss,
            valid_ll,
            valid_mean_ll: valid_mean,
            best_ll,
            best_epoch,
            stale,
            learning_rate: lr,
            elapsed: start.elapsed(),
            recovered,
        });
    }
    let Some((params, _, valid_ll, best_epoch, valid_mean_ll)) = best else {
        return Err(Error::Diverged(format!(
            "no epoch of {epoch} gave a finite validation log-likelihood"
        )));
    };
    // Whole-set statistics for export in f64 (heavy-tailed rows must not overflow).
    let stats = params.cast::<f64>().bn_stats(
        train.x.mapv(f64::from).view(),
        train.c.mapv(f64::from).view(),
    );
    Ok(Fitted {
        params,
        stats,
        epochs: epoch,
        best_epoch,
        valid_ll,
        valid_mean_ll,
        recoveries,
        elapsed: start.elapsed(),
    })
}
