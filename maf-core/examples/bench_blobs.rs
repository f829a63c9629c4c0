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
//! For `scripts/bench-device.sh --models` (the cost of the base density), the
//! worst case of flows of D=9 (the shuttle set's columns) on both bases, every
//! ReLU unit active (first-layer biases +8, output weights scaled by 0.02, so the
//! flow stays close to the identity and every unit stays active for inputs within
//! about ±5 standard deviations):
//!
//! * `allactive_l2_h32_k16full.maf`, `allactive_l5_h64_k16full.maf`: L=2 H=32 and
//!   L=5 H=64 on a seeded 16-component full-covariance mixture (no batch norm, as
//!   `maf-train` makes flows on a mixture);
//! * `allactive_l2_h32_normal.maf`, `allactive_l5_h64_normal.maf`: the same flows
//!   on the standard normal base, with batch norm (as `maf-train` makes them).
//!
//! (The trained models of the benchmark come from `maf-train fit`.)
//!
//! `cargo run -p maf-core --example bench_blobs -- OUT_DIR`

use std::path::PathBuf;
use std::{env, fs, process};

use maf_core::blob::{self, Header};
use maf_core::{Activation, Base, Covariance, Shape};

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
    random_weights_of(SHAPE, seed)
}

/// [`random_weights`] for any shape.
fn random_weights_of(s: Shape, seed: u64) -> Vec<f32> {
    let mut rng = Lcg(seed);
    let mut w: Vec<f32> = (0..s.weight_count())
        .map(|_| rng.uniform(-0.2, 0.2))
        .collect();
    let d = s.dim;
    w[..d].fill(0.0); // x_mean
    w[d..2 * d].fill(1.0); // x_inv_std
    if s.batch_norm {
        for l in 0..s.layers {
            let bn = s.batch_norm_offset(l);
            w[bn..bn + d].fill(1.0);
            w[bn + d..bn + 2 * d].fill(0.0);
        }
    }
    w
}

/// `random_weights` with every first-layer bias +4 and every output weight scaled
/// by 0.1: each unit's pre-activation is 4 plus at most 7 terms of ±0.2 times a
/// standardised input, so all units are active for any input within ±2.8 (the
/// firmware reports the active fraction it saw).
fn all_active_weights(seed: u64) -> Vec<f32> {
    all_active_weights_of(SHAPE, seed, 4.0, 0.1)
}

/// [`all_active_weights`] for any shape (one hidden layer), first-layer biases
/// `bias`, output weights scaled by `out_scale`.
fn all_active_weights_of(s: Shape, seed: u64, bias: f32, out_scale: f32) -> Vec<f32> {
    let mut w = random_weights_of(s, seed);
    for l in 0..s.layers {
        let made = s.made_offset(l);
        let mut i = made;
        for k in 0..s.hidden {
            w[i] = bias;
            i += 1 + s.hidden_degree(k);
        }
        let out_cols = made + s.layer1_len() + 2 * s.dim;
        for v in &mut w[out_cols..out_cols + 2 * s.output_connections()] {
            *v *= out_scale;
        }
    }
    w
}

/// A seeded Gaussian mixture section (format version 2) of `components`
/// full-covariance components in `dim` dimensions: means in ±1.5, precision
/// factors with diagonals in [0.7, 1.4] and off-diagonal entries in ±0.2, weights
/// from uniform [1, 3) normalised; `c_k = ln w_k + Σ_j ln W_jj − (D/2) ln 2π`.
fn mixture_section(dim: usize, components: usize, seed: u64) -> Vec<f32> {
    let mut rng = Lcg(seed);
    let raw: Vec<f64> = (0..components)
        .map(|_| f64::from(rng.uniform(1.0, 3.0)))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut out = Vec::new();
    for &r in &raw {
        let mean: Vec<f32> = (0..dim).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let mut factor = Vec::with_capacity(dim * (dim + 1) / 2);
        let mut log_det = 0.0f64;
        for j in 0..dim {
            for _ in 0..j {
                factor.push(rng.uniform(-0.2, 0.2));
            }
            let diag = rng.uniform(0.7, 1.4);
            log_det += f64::from(diag).ln();
            factor.push(diag);
        }
        let c = (r / total).ln() + log_det - 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln();
        out.push(c as f32);
        out.extend_from_slice(&mean);
        out.extend_from_slice(&factor);
    }
    out
}

/// Writes a blob with the given header fields.
fn write_blob(dir: &std::path::Path, name: &str, header: &Header<'_>, w: &[f32]) {
    let bytes = blob::write(header, w).unwrap_or_else(|e| {
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

/// The all-active D=9 flows of `scripts/bench-device.sh --models`.
fn write_model_blobs(dir: &std::path::Path) {
    const COMPONENTS: usize = 16;
    for (layers, hidden) in [(2, 32), (5, 64)] {
        for mixture in [true, false] {
            let shape = Shape {
                dim: 9,
                context: 0,
                hidden,
                hidden_layers: 1,
                layers,
                batch_norm: !mixture,
            };
            let mut w = all_active_weights_of(shape, 43, 8.0, 0.02);
            let base = if mixture {
                w.extend(mixture_section(shape.dim, COMPONENTS, 44));
                Base::Mixture {
                    components: COMPONENTS,
                    covariance: Covariance::Full,
                }
            } else {
                Base::StandardNormal
            };
            let what = format!(
                "bench: D=9 L={layers} H={hidden} relu, every unit active (biases +8), on {}",
                if mixture {
                    "a seeded 16-component full-covariance mixture"
                } else {
                    "N(0, I)"
                }
            );
            let header = Header {
                base,
                metadata: &what,
                threshold: Some(-20.0),
                ..Header::new(shape, Activation::Relu)
            };
            let name = format!(
                "allactive_l{layers}_h{hidden}_{}.maf",
                if mixture { "k16full" } else { "normal" }
            );
            write_blob(dir, &name, &header, &w);
        }
    }
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
    write_blob(dir, name, &header, w);
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
    write_model_blobs(&dir);
}
