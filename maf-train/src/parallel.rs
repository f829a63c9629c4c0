//! Host scoring on every core: the rows are split into contiguous chunks, one per
//! thread (`std::thread::scope`), and each chunk goes through maf-core's batched
//! density pass ([`maf_core::MafView::log_prob_batch`]). Every row's result is
//! exactly what [`maf_core::MafView::log_prob`] (and so the device) gives for it,
//! whatever the thread count.

use std::time::Instant;

use maf_core::MafView;
use maf_core::batch::LANES;
use ndarray::{Array2, ArrayView2};

use crate::{Error, Result};

/// The threads to use by default: the cores `std` reports (1 if it cannot tell).
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The log density of every row of `x` (contexts in the rows of `ctx`; a
/// `rows × 0` array for an unconditional model) on `threads` threads (0 means
/// [`available_threads`]). Row `r`'s entry is [`maf_core::MafView::log_prob`]'s
/// result for it, bit for bit: its value, or its error (`Overflow` for a vector
/// whose density leaves `f32`, `NonFiniteInput`/`NonFiniteContext` with the
/// column index).
///
/// # Errors
/// [`Error::InvalidParam`] if `x` or `ctx` does not have the model's columns or
/// they differ in rows.
pub fn log_probs(
    view: &MafView<'_>,
    x: ArrayView2<'_, f32>,
    ctx: ArrayView2<'_, f32>,
    threads: usize,
) -> Result<Vec<maf_core::Result<f32>>> {
    let shape = view.shape();
    if x.ncols() != shape.dim || ctx.ncols() != shape.context || ctx.nrows() != x.nrows() {
        return Err(Error::InvalidParam {
            name: "log_probs",
            message: format!(
                "model needs {} + {} columns, got {} x {} and {} x {}",
                shape.dim,
                shape.context,
                x.nrows(),
                x.ncols(),
                ctx.nrows(),
                ctx.ncols()
            ),
        });
    }
    let x = x.as_standard_layout();
    let ctx = ctx.as_standard_layout();
    let (xs, cs) = match (x.as_slice(), ctx.as_slice()) {
        (Some(xs), Some(cs)) => (xs, cs),
        _ => {
            return Err(Error::InvalidParam {
                name: "log_probs",
                message: "inputs not contiguous".into(),
            });
        }
    };
    let rows = x.nrows();
    let mut out = vec![Err(maf_core::Error::Overflow); rows];
    let threads = if threads == 0 {
        available_threads()
    } else {
        threads
    };
    // Whole blocks of lanes per thread (the last chunk takes the rest).
    let per = rows.div_ceil(threads.max(1)).div_ceil(LANES).max(1) * LANES;
    let (dim, c) = (shape.dim, shape.context);
    let results: Vec<maf_core::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = out
            .chunks_mut(per)
            .enumerate()
            .map(|(i, out)| {
                let start = i * per;
                let end = start + out.len();
                let xs = xs.get(start * dim..end * dim).unwrap_or_default();
                let cs = cs.get(start * c..end * c).unwrap_or_default();
                s.spawn(move || {
                    let mut scratch = vec![0.0f32; view.batch_scratch_len()];
                    view.log_prob_batch(xs, cs, out, &mut scratch)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(Err(maf_core::Error::Malformed("thread")))
            })
            .collect()
    });
    for r in results {
        r.map_err(|e| Error::InvalidParam {
            name: "log_probs",
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

/// [`log_probs`] of `f64` data (as `maf-train` reads it), each value rounded to
/// `f32` first, as the one-vector scoring path does.
///
/// # Errors
/// As [`log_probs`].
pub fn log_probs_f64(
    view: &MafView<'_>,
    x: ArrayView2<'_, f64>,
    ctx: ArrayView2<'_, f64>,
    threads: usize,
) -> Result<Vec<maf_core::Result<f32>>> {
    let x32: Array2<f32> = x.mapv(|v| v as f32);
    let c32: Array2<f32> = ctx.mapv(|v| v as f32);
    log_probs(view, x32.view(), c32.view(), threads)
}

/// Result of [`bench_log_density`].
#[derive(Clone, Copy, Debug)]
pub struct DensityBench {
    /// Rows scored (repetitions × rows).
    pub rows: usize,
    /// Wall time.
    pub seconds: f64,
    /// `rows / seconds`.
    pub rows_per_sec: f64,
}

/// Times [`log_probs`] on `threads` threads over `rows` in-memory rows (no file
/// parsing) of a model of the given shape (standard-normal base, batch norm,
/// seeded random weights of training-like size), repeating for at least
/// `min_seconds`. One untimed warm-up pass.
///
/// # Errors
/// [`Error::InvalidParam`] for bad sizes or a shape maf-core refuses.
pub fn bench_log_density(
    dim: usize,
    layers: usize,
    hidden: usize,
    activation: maf_core::Activation,
    rows: usize,
    threads: usize,
    min_seconds: f64,
) -> Result<DensityBench> {
    use rand::{Rng, SeedableRng};
    let shape = maf_core::Shape {
        dim,
        context: 0,
        hidden,
        hidden_layers: 1,
        layers,
        batch_norm: true,
    };
    let bad = |e: maf_core::Error| Error::InvalidParam {
        name: "bench",
        message: e.to_string(),
    };
    shape.check().map_err(bad)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let scale = 1.0 / (hidden as f32).sqrt();
    let mut w: Vec<f32> = (0..shape.weight_count())
        .map(|_| rng.gen_range(-scale..scale))
        .collect();
    for v in w.iter_mut().take(2 * dim).skip(dim) {
        *v = 1.0;
    }
    for l in 0..layers {
        let o = shape.batch_norm_offset(l);
        for v in w.iter_mut().skip(o).take(dim) {
            *v = rng.gen_range(0.8..1.2);
        }
    }
    let header = maf_core::blob::Header::new(shape, activation);
    let blob = maf_core::blob::AlignedBlob::new(&maf_core::blob::write(&header, &w).map_err(bad)?);
    let view = MafView::from_blob(blob.as_bytes()).map_err(bad)?;
    let x = Array2::from_shape_fn((rows, dim), |_| rng.gen_range(-2.0f32..2.0));
    let c = Array2::<f32>::zeros((rows, 0));
    log_probs(&view, x.view(), c.view(), threads)?;
    let start = Instant::now();
    let mut done = 0;
    while done == 0 || start.elapsed().as_secs_f64() < min_seconds {
        std::hint::black_box(log_probs(&view, x.view(), c.view(), threads)?);
        done += rows;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(DensityBench {
        rows: done,
        seconds,
        rows_per_sec: done as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread count gives the one-vector results, row by row.
    #[test]
    fn threads_give_the_one_vector_bits() -> Result<()> {
        use rand::{Rng, SeedableRng};
        let shape = maf_core::Shape {
            dim: 3,
            context: 1,
            hidden: 10,
            hidden_layers: 1,
            layers: 2,
            batch_norm: true,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut w: Vec<f32> = (0..shape.weight_count())
            .map(|_| rng.gen_range(-0.5f32..0.5))
            .collect();
        for i in [3, 4, 5, 7] {
            w[i] = 1.0;
        }
        for l in 0..2 {
            let o = shape.batch_norm_offset(l);
            w[o..o + 3].fill(1.1);
        }
        let header = maf_core::blob::Header::new(shape, maf_core::Activation::Tanh);
        let Ok(bytes) = maf_core::blob::write(&header, &w) else {
            panic!("valid model");
        };
        let blob = maf_core::blob::AlignedBlob::new(&bytes);
        let Ok(view) = MafView::from_blob(blob.as_bytes()) else {
            panic!("valid blob");
        };
        let rows = 1001;
        let mut x = Array2::from_shape_fn((rows, 3), |_| rng.gen_range(-3.0f32..3.0));
        x[[5, 1]] = f32::NAN;
        x[[6, 0]] = 1e30;
        let c = Array2::from_shape_fn((rows, 1), |_| rng.gen_range(-1.0f32..1.0));
        let mut scratch = vec![0.0; shape.scratch_len()];
        for threads in [1, 2, 3, 7] {
            let got = log_probs(&view, x.view(), c.view(), threads)?;
            for (r, g) in got.iter().enumerate() {
                let xr: Vec<f32> = x.row(r).to_vec();
                let cr: Vec<f32> = c.row(r).to_vec();
                let want = view.log_prob(&xr, &cr, &mut scratch);
                assert_eq!(
                    want.map(f32::to_bits),
                    g.map(f32::to_bits),
                    "row {r}, {threads} threads"
                );
            }
        }
        Ok(())
    }
}
