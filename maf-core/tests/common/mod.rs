//! Helpers shared by the integration tests: seeded random models.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use maf_core::blob::{self, AlignedBlob, Header};
use maf_core::{Activation, Shape};

/// SplitMix64: small, seeded, good enough for test weights.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// Random weights for `shape`: weights in ±`scale`, standardisation and batch-norm
/// scales in [0.5, 2].
pub fn random_weights(shape: &Shape, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut w: Vec<f32> = (0..shape.weight_count())
        .map(|_| rng.uniform(-scale, scale))
        .collect();
    let mut positive = |start: usize, len: usize| {
        for v in &mut w[start..start + len] {
            *v = rng.uniform(0.5, 2.0);
        }
    };
    positive(shape.dim, shape.dim);
    positive(2 * shape.dim + shape.context, shape.context);
    if shape.batch_norm {
        for l in 0..shape.layers {
            positive(shape.batch_norm_offset(l), shape.dim);
        }
    }
    w
}

/// A random model, encoded and aligned.
pub fn random_blob(shape: Shape, activation: Activation, scale: f32, seed: u64) -> AlignedBlob {
    let weights = random_weights(&shape, scale, seed);
    let header = Header {
        shape,
        activation,
        threshold: Some(-10.0),
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: "test model",
    };
    AlignedBlob::new(&blob::write(&header, &weights).expect("valid model"))
}

pub fn shape(
    dim: usize,
    context: usize,
    hidden: usize,
    hidden_layers: usize,
    layers: usize,
    batch_norm: bool,
) -> Shape {
    Shape {
        dim,
        context,
        hidden,
        hidden_layers,
        layers,
        batch_norm,
    }
}
