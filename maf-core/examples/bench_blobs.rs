//! Writes the synthetic reference-shape blobs (D=8, H=64, K=1, L=5, C=0, batch
//! norm) that `scripts/bench-device.sh` measures on the Cortex-M4F:
//!
//! * `random.maf`: seeded uniform weights in ±0.2, unit standardisation and batch
//!   norm (the blob of `tests/tests/firmware_measure.rs`, seed 42). About half of
//!   the ReLU units are zero for a typical input, so the kernel skips their outputs.
//! * `allactive.maf`: the **worst case** for the packed kernel: every first-layer
//!   bias is +4 and the output weights are small, so every ReLU unit is active for
//!   every typical input and no output work is skipped.
//!
//! (The trained models of the benchmark come from `maf-train fit`.)
//!
//! `cargo run -p maf-core --example bench_blobs -- OUT_DIR`

use std::path::PathBuf;
use std::{env, fs, process};

use maf_core::blob::{self, Header};
use maf_core::{Activation, Shape};

/// The reference shape of the benchmark.
const SHAPE: Shape = Shape::REFERENCE;

/// A 64-bit LCG: reproducible numbers without a dependency (the one of
/// `tests/tests/firmware_measure.rs`).
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// Seeded weights in ±0.2, unit standardisation, identity batch norms.
fn random_weights(seed: u64) -> Vec<f32> {
    let s = SHAPE;
    let mut rng = Lcg(seed);
    let mut w: Vec<f32> = (0..s.weight_count())
        .map(|_| rng.uniform(-0.2, 0.2))
        .collect();
    let d = s.dim;
    w[..d].fill(0.0); // x_mean
    w[d..2 * d].fill(1.0); // x_inv_std
    for l in 0..s.layers {
        let bn = s.batch_norm_offset(l);
        w[bn..bn + d].fill(1.0);
        w[bn + d..bn + 2 * d].fill(0.0);
    }
    w
}

/// `random_weights` with every first-layer bias +4 and every output weight scaled
/// by 0.1: each unit's pre-activation is 4 plus at most 7 terms of ±0.2 times a
/// standardised input, so all units are active for any input within ±2.8 (the
/// firmware reports the active fraction it saw).
fn all_active_weights(seed: u64) -> Vec<f32> {
    let s = SHAPE;
    let mut w = random_weights(seed);
    for l in 0..s.layers {
        let made = s.made_offset(l);
        let mut i = made;
        for k in 0..s.hidden {
            w[i] = 4.0;
            i += 1 + s.hidden_degree(k);
        }
        let out_cols = made + s.layer1_len() + 2 * s.dim;
        for v in &mut w[out_cols..out_cols + 2 * s.output_connections()] {
            *v *= 0.1;
        }
    }
    w
}

fn write(dir: &std::path::Path, name: &str, activation: Activation, w: &[f32], what: &str) {
    let header = Header {
        shape: SHAPE,
        activation,
        threshold: Some(-20.0),
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: what,
    };
    let bytes = blob::write(&header, w).unwrap_or_else(|e| {
        eprintln!("bench_blobs: {name}: {e}");
        process::exit(1)
    });
    let path = dir.join(name);
    fs::write(&path, &bytes).unwrap_or_else(|e| {
        eprintln!("bench_blobs: {}: {e}", path.display());
        process::exit(1)
    });
    println!("{} ({} bytes)", path.display(), bytes.len());
}

fn main() {
    let Some(dir) = env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run -p maf-core --example bench_blobs -- OUT_DIR");
        process::exit(2)
    };
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("bench_blobs: {}: {e}", dir.display());
        process::exit(1)
    }
    write(
        &dir,
        "random.maf",
        Activation::Relu,
        &random_weights(42),
        "bench: reference shape, seeded random weights (seed 42), relu",
    );
    write(
        &dir,
        "allactive.maf",
        Activation::Relu,
        &all_active_weights(42),
        "bench: reference shape, every relu unit active (worst case for the packed kernel)",
    );
}
