//! `maf-train bench`'s training measurement: minibatch steps on synthetic data.

use std::time::Instant;

use ndarray::Array2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::data::Data;
use super::epoch::{Adam, Step, even_batches, pool, run_epoch};
use super::fit::arch_for;
use crate::error::{Error, Result};
use crate::model::{Activation, Masks, Params};

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

/// What [`bench_config`] times: the model's shape, the synthetic data and how
/// long to run.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Data dimension.
    pub dim: usize,
    /// Number of MADEs.
    pub layers: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Minibatch size.
    pub batch: usize,
    /// Synthetic training rows per epoch.
    pub rows: usize,
    /// Fewest epochs timed.
    pub epochs: usize,
    /// Fewest seconds timed: epochs are added until both minimums are reached.
    pub min_seconds: f64,
    /// Threads of each minibatch's step.
    pub threads: usize,
}

/// Times training steps (forward, backward, weight decay, clipping, Adam) on
/// synthetic correlated Gaussian data of `dim` columns: `epochs` passes over
/// `rows` rows in minibatches of `batch`, tanh units (the fit default), one
/// thread. One warm-up epoch is not timed.
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

/// [`bench()`] with each minibatch's step on `threads` threads (as
/// [`super::fit_from_threads`] trains).
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
    bench_config(&BenchConfig {
        dim,
        layers,
        hidden,
        activation: Activation::Tanh,
        batch,
        rows,
        epochs,
        min_seconds: 0.0,
        threads,
    })
}

/// Times training steps as [`bench()`] does, at the settings of `cfg`.
///
/// # Errors
/// As [`bench()`].
pub fn bench_config(cfg: &BenchConfig) -> Result<BenchResult> {
    use rand_distr::{Distribution, StandardNormal};
    let &BenchConfig {
        dim,
        layers,
        hidden,
        activation,
        batch,
        rows,
        epochs,
        min_seconds,
        threads,
    } = cfg;
    let hp = crate::hyper::FitParams {
        layers,
        hidden,
        activation,
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
    let workers = pool(threads);
    let mut seconds = 0.0;
    let mut timed = 0;
    let mut warm = false;
    while timed < epochs || seconds < min_seconds {
        order.shuffle(&mut rng);
        let t = Instant::now();
        let mut st = Step {
            params: &mut params,
            grad: &mut grad,
            adam: &mut adam,
            masks: &masks,
            xb: &mut xb,
            cb: &mut cb,
            pool: workers.as_ref(),
        };
        run_epoch(&mut st, &hp, data, &order, &batches, 1e-3)
            .map_err(|why| Error::Diverged(why.to_string()))?;
        // The first epoch warms up (caches, allocations) and is not timed.
        if warm {
            seconds += t.elapsed().as_secs_f64();
            timed += 1;
        }
        warm = true;
    }
    let total = rows * timed;
    Ok(BenchResult {
        rows: total,
        seconds,
        rows_per_sec: total as f64 / seconds.max(1e-9),
    })
}
