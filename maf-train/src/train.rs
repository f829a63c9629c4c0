//! The training loop: Adam on minibatches reshuffled every epoch, L2 weight decay,
//! optional gradient clipping, validation every epoch with whole-training-set batch
//! norm statistics, early stopping, recovery from divergence.

use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::hyper::CheckedFitParams;
use crate::model::{Arch, BnStats, Masks, Params, Real};

/// How many times training restarts from the best weights with a halved learning
/// rate after a non-finite loss before it gives up.
pub const MAX_RECOVERIES: usize = 5;

/// Standardised data the trainer works on.
#[derive(Clone, Copy, Debug)]
pub struct Data<'a> {
    /// Features, rows × D.
    pub x: ArrayView2<'a, f32>,
    /// Context, rows × C (C may be 0).
    pub c: ArrayView2<'a, f32>,
}

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

/// Mean raw-unit log-likelihood of the rows `x`, `c` under `params` with whole-set
/// `stats`, computed in `f64` (heavy-tailed rows far outside the training range
/// must not overflow to NaN) in chunks; `log_jacobian` is the standardisation's
/// `Σ ln inv_std`.
pub fn mean_log_likelihood(
    params: &Params<f64>,
    stats: &BnStats,
    x: ArrayView2<'_, f64>,
    c: ArrayView2<'_, f64>,
    log_jacobian: f64,
) -> f64 {
    let lls = log_likelihoods(params, stats, x, c, log_jacobian);
    lls.iter().sum::<f64>() / lls.len().max(1) as f64
}

/// Per-row raw-unit log-likelihoods (see [`mean_log_likelihood`]), computed in `F`.
pub fn log_likelihoods<F: Real>(
    params: &Params<F>,
    stats: &BnStats,
    x: ArrayView2<'_, F>,
    c: ArrayView2<'_, F>,
    log_jacobian: f64,
) -> Vec<f64> {
    let n = x.nrows();
    let mut out = Vec::with_capacity(n);
    let chunk = 4096;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let lp = params.log_prob(
            x.slice_axis(Axis(0), (start..end).into()),
            c.slice_axis(Axis(0), (start..end).into()),
            Some(stats),
        );
        out.extend(lp.iter().map(|&v| v.f64() + log_jacobian));
        start = end;
    }
    out
}

/// Mean of the values after dropping the lowest `frac` of them (NaN counts as
/// lowest): a validation score that a few far-out rows cannot dominate.
pub fn trimmed_mean_low(v: &[f64], frac: f64) -> f64 {
    let mut s: Vec<f64> = v
        .iter()
        .map(|&x| if x.is_nan() { f64::NEG_INFINITY } else { x })
        .collect();
    s.sort_by(f64::total_cmp);
    let drop = ((s.len() as f64 * frac).floor() as usize).min(s.len().saturating_sub(1));
    let kept = &s[drop..];
    kept.iter().sum::<f64>() / kept.len().max(1) as f64
}

struct Adam {
    m: Params<f32>,
    v: Params<f32>,
    t: i32,
}

impl Adam {
    fn new(arch: Arch) -> Self {
        Adam {
            m: Params::zeros(arch),
            v: Params::zeros(arch),
            t: 0,
        }
    }

    fn step(&mut self, p: &mut Params<f32>, g: &Params<f32>, lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f32 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let step = (lr * c2.sqrt() / c1) as f32;
        let (b1, b2) = (B1 as f32, B2 as f32);
        let eps = EPS * c2.sqrt() as f32;
        for (((w, g), m), v) in p
            .tensors
            .iter_mut()
            .zip(&g.tensors)
            .zip(&mut self.m.tensors)
            .zip(&mut self.v.tensors)
        {
            ndarray::Zip::from(w)
                .and(g)
                .and(m)
                .and(v)
                .for_each(|w, &g, m, v| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= step * *m / (v.sqrt() + eps);
                });
        }
    }
}

/// Mutable training state for one epoch.
struct Step<'a> {
    params: &'a mut Params<f32>,
    grad: &'a mut Params<f32>,
    adam: &'a mut Adam,
    masks: &'a Masks<f32>,
    xb: &'a mut Array2<f32>,
    cb: &'a mut Array2<f32>,
    /// Threads of each minibatch's forward pass (the same bits for any count).
    threads: usize,
}

/// One pass over the minibatches `batches` of the rows in `order`: returns the
/// summed training loss, or why it diverged.
fn run_epoch(
    st: &mut Step<'_>,
    hp: &CheckedFitParams,
    train: Data<'_>,
    order: &[usize],
    batches: &[(usize, usize)],
    lr: f64,
) -> Result<f64, &'static str> {
    let arch = st.params.arch;
    let mut loss_sum = 0.0;
    for &(b0, b1) in batches {
        // SIGINT/SIGTERM: stop at the end of the current minibatch.
        if crate::interrupt::requested() {
            break;
        }
        let idx = &order[b0..b1];
        if st.xb.nrows() != idx.len() {
            *st.xb = Array2::zeros((idx.len(), arch.dim));
            *st.cb = Array2::zeros((idx.len(), arch.context));
        }
        for (r, &i) in idx.iter().enumerate() {
            st.xb.row_mut(r).assign(&train.x.row(i));
            st.cb.row_mut(r).assign(&train.c.row(i));
        }
        let loss = st.params.loss_and_grad_threads(
            st.masks,
            st.xb.view(),
            st.cb.view(),
            st.grad,
            st.threads,
        );
        if !loss.is_finite() {
            return Err("non-finite training loss");
        }
        loss_sum += f64::from(loss) * idx.len() as f64;
        if hp.weight_decay > 0.0 {
            let wd = hp.weight_decay as f32;
            for l in 0..arch.layers {
                for kind in crate::model::ALL_KINDS {
                    if kind.is_weight() {
                        let w = st.params.get(l, kind);
                        st.grad.get_mut(l, kind).scaled_add(wd, w);
                    }
                }
            }
        }
        if let Some(clip) = hp.clip_norm {
            let norm = st
                .grad
                .tensors
                .iter()
                .map(|t| t.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .sum::<f64>()
                .sqrt();
            if !norm.is_finite() {
                return Err("non-finite gradient");
            }
            if norm > clip {
                let k = (clip / norm) as f32;
                for t in &mut st.grad.tensors {
                    *t *= k;
                }
            }
        }
        st.adam.step(st.params, st.grad, lr);
    }
    Ok(loss_sum)
}

/// Result of [`bench()`].
#[derive(Clone, Copy, Debug)]
pub struct BenchResult {
    /// Training rows processed (epochs × rows).
    pub rows: usize,
    /// Wall time of the minibatch steps.
    pub seconds: f64,
    /// `rows / seconds`.
    pub rows_per_sec: f64,
}

/// Times training steps (forward, backward, weight decay, clipping, Adam) on
/// synthetic correlated Gaussian data of `dim` columns: `epochs` passes over
/// `rows` rows in minibatches of `batch`. One warm-up epoch is not timed.
///
/// # Errors
/// [`Error::InvalidParam`] for bad sizes, [`Error::Diverged`] if the steps do.
pub fn bench(
    dim: usize,
    layers: usize,
    hidden: usize,
    batch: usize,
    rows: usize,
    epochs: usize,
) -> Result<BenchResult> {
    bench_threads(dim, layers, hidden, batch, rows, epochs, 1)
}

/// [`bench()`] with each minibatch's forward pass on `threads` threads (as
/// [`fit_from_threads`] trains).
///
/// # Errors
/// As [`bench()`].
pub fn bench_threads(
    dim: usize,
    layers: usize,
    hidden: usize,
    batch: usize,
    rows: usize,
    epochs: usize,
    threads: usize,
) -> Result<BenchResult> {
    use rand_distr::{Distribution, StandardNormal};
    let hp = crate::hyper::FitParams {
        layers,
        hidden,
        batch_size: crate::hyper::BatchSize::Fixed(batch),
        ..Default::default()
    }
    .check()?;
    if dim == 0 || rows < batch || epochs == 0 {
        return Err(Error::InvalidParam {
            name: "bench",
            message: "need dim >= 1, rows >= batch size, epochs >= 1".into(),
        });
    }
    let arch = arch_for(&hp, dim, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut x = Array2::<f32>::zeros((rows, dim));
    for mut r in x.rows_mut() {
        let mut prev = 0.0f32;
        for v in r.iter_mut() {
            let z: f32 = StandardNormal.sample(&mut rng);
            prev = 0.7 * prev + z;
            *v = prev;
        }
    }
    let c = Array2::<f32>::zeros((rows, 0));
    let data = Data {
        x: x.view(),
        c: c.view(),
    };
    let masks = Masks::<f32>::new(&arch);
    let mut params = Params::<f32>::init(arch, &masks, &mut rng);
    let mut grad = Params::<f32>::zeros(arch);
    let mut adam = Adam::new(arch);
    let (mut xb, mut cb) = (Array2::zeros((0, dim)), Array2::zeros((0, 0)));
    let mut order: Vec<usize> = (0..rows).collect();
    let batches = even_batches(rows, batch);
    let mut seconds = 0.0;
    for e in 0..=epochs {
        order.shuffle(&mut rng);
        let t = Instant::now();
        let mut st = Step {
            params: &mut params,
            grad: &mut grad,
            adam: &mut adam,
            masks: &masks,
            xb: &mut xb,
            cb: &mut cb,
            threads: threads.max(1),
        };
        run_epoch(&mut st, &hp, data, &order, &batches, 1e-3)
            .map_err(|why| Error::Diverged(why.to_string()))?;
        if e > 0 {
            seconds += t.elapsed().as_secs_f64();
        }
    }
    let total = rows * epochs;
    Ok(BenchResult {
        rows: total,
        seconds,
        rows_per_sec: total as f64 / seconds.max(1e-9),
    })
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

/// Splits `0..n` into `parts` contiguous ranges whose sizes differ by at most one.
fn even_batches(n: usize, batch: usize) -> Vec<(usize, usize)> {
    let parts = (n / batch).max(1);
    (0..parts)
        .map(|i| (i * n / parts, (i + 1) * n / parts))
        .collect()
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
    // One thread: measured, splitting only the forward pass made training at
    // batch 256 slower on 2 cores (214k against 244k rows/s, scripts/bench-host.sh);
    // the result is the same bits for every thread count.
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
/// [`fit_from`] uses one): each minibatch's forward pass is split by rows,
/// every row computed as on one thread, so the result is the same, bit for bit,
/// for every thread count.
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
        let (loss_sum, mut diverged) = run_epoch(
            &mut Step {
                params: &mut params,
                grad: &mut grad,
                adam: &mut adam,
                masks: &masks,
                xb: &mut xb,
                cb: &mut cb,
                threads,
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
