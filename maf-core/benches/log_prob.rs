//! Host throughput of the density pass on the reference shape (D=8, H=64, L=5,
//! one hidden layer, ReLU, batch norm), through `MafView` (run-time shapes) and
//! `Maf` (const shapes), one vector at a time and over a batch, and through the
//! batched pass `MafView::log_prob_batch` (lanes across vectors) on one thread
//! and on two (the batch split in halves, `std::thread::scope`); `tanh` on the
//! same weights for the batched pass.
//!
//! `cargo bench -p maf-core --bench log_prob`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use maf_core::blob::{self, AlignedBlob, Header};
use maf_core::{Activation, Maf, MafView, Shape};
use std::hint::black_box;
use std::time::{Duration, Instant};

const D: usize = 8;

fn rng(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn reference_blob(activation: Activation) -> AlignedBlob {
    let shape = Shape {
        dim: D,
        context: 0,
        hidden: 64,
        hidden_layers: 1,
        layers: 5,
        batch_norm: true,
    };
    let mut s = 0x1234_5678u64;
    let mut w: Vec<f32> = (0..shape.weight_count())
        .map(|_| 0.3 * rng(&mut s))
        .collect();
    for v in &mut w[D..2 * D] {
        *v = 1.0;
    }
    for l in 0..shape.layers {
        let o = shape.batch_norm_offset(l);
        for v in &mut w[o..o + D] {
            *v = 1.0 + 0.2 * rng(&mut s);
        }
    }
    let header = Header {
        shape,
        activation,
        threshold: None,
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: "bench",
    };
    AlignedBlob::new(&blob::write(&header, &w).unwrap())
}

/// Runs `f` (which scores `rows` vectors) repeatedly for about `budget`; rows/s.
fn rate(rows: usize, budget: Duration, mut f: impl FnMut() -> f32) -> f64 {
    let mut done = 0usize;
    let start = Instant::now();
    while start.elapsed() < budget {
        black_box(f());
        done += rows;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let blob = reference_blob(Activation::Relu);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let maf = Maf::<D, 64, 5>::from_blob(blob.as_bytes()).unwrap();
    let mut s = 42u64;
    let batch: Vec<[f32; D]> = (0..4096)
        .map(|_| std::array::from_fn(|_| 2.0 * rng(&mut s)))
        .collect();
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let budget = Duration::from_millis(700);

    // "single": one call per measured step, the input changing every call (a
    // fixed input would let the host's branch predictor learn which ReLU units
    // are zero); "same input": the same vector every call, for comparison.
    let x = batch[0];
    let mut i = 0;
    let single_view = rate(1, budget, || {
        i = (i + 1) % batch.len();
        view.log_prob(black_box(&batch[i]), &[], &mut scratch)
            .unwrap_or(0.0)
    });
    let single_maf = rate(1, budget, || {
        i = (i + 1) % batch.len();
        maf.log_prob(black_box(&batch[i]), &[]).unwrap_or(0.0)
    });
    let same_maf = rate(1, budget, || {
        maf.log_prob(black_box(&x), &[]).unwrap_or(0.0)
    });
    let batch_view = rate(batch.len(), budget, || {
        batch
            .iter()
            .map(|x| view.log_prob(x, &[], &mut scratch).unwrap_or(0.0))
            .sum()
    });
    let batch_maf = rate(batch.len(), budget, || {
        batch
            .iter()
            .map(|x| maf.log_prob(x, &[]).unwrap_or(0.0))
            .sum()
    });
    let flat: Vec<f32> = batch.iter().flatten().copied().collect();
    let tanh_blob = reference_blob(Activation::Tanh);
    let tanh_view = MafView::from_blob(tanh_blob.as_bytes()).unwrap();
    let batched = |view: &MafView<'_>, threads: usize| {
        let rows = batch.len();
        let per = rows.div_ceil(threads);
        let mut scratch: Vec<Vec<f32>> = (0..threads)
            .map(|_| vec![0.0; view.batch_scratch_len()])
            .collect();
        let mut out = vec![Ok(0.0f32); rows];
        rate(rows, budget, || {
            std::thread::scope(|sc| {
                for ((xs, out), scratch) in flat
                    .chunks(per * D)
                    .zip(out.chunks_mut(per))
                    .zip(scratch.iter_mut())
                {
                    sc.spawn(move || view.log_prob_batch(xs, &[], out, scratch).unwrap());
                }
            });
            out[rows - 1].unwrap_or(0.0)
        })
    };
    // The batched pass gives the one-vector bits (checked here on the bench data).
    let mut out = vec![Ok(0.0f32); batch.len()];
    let mut bscratch = vec![0.0; view.batch_scratch_len()];
    view.log_prob_batch(&flat, &[], &mut out, &mut bscratch)
        .unwrap();
    for (x, o) in batch.iter().zip(&out) {
        let one = view.log_prob(x, &[], &mut scratch);
        assert_eq!(one.map(f32::to_bits), o.map(f32::to_bits));
    }
    let batched_1 = batched(&view, 1);
    let batched_2 = batched(&view, 2);
    let tanh_batch = {
        let mut scratch = vec![0.0; tanh_view.shape().scratch_len()];
        rate(batch.len(), budget, || {
            batch
                .iter()
                .map(|x| tanh_view.log_prob(x, &[], &mut scratch).unwrap_or(0.0))
                .sum()
        })
    };
    let tanh_1 = batched(&tanh_view, 1);
    let tanh_2 = batched(&tanh_view, 2);
    let macs = view.shape().macs() as f64;
    for (name, r) in [
        ("MafView batched, 1 thread ", batched_1),
        ("MafView batched, 2 threads", batched_2),
        ("tanh MafView batch        ", tanh_batch),
        ("tanh batched, 1 thread    ", tanh_1),
        ("tanh batched, 2 threads   ", tanh_2),
        ("MafView single", single_view),
        ("Maf     single", single_maf),
        ("MafView batch ", batch_view),
        ("Maf     batch ", batch_maf),
        ("Maf same input", same_maf),
    ] {
        println!(
            "{name}: {:>10.0} rows/s  {:>7.1} ns/row  {:>6.2} GMAC/s",
            r,
            1e9 / r,
            r * macs / 1e9
        );
    }
}
