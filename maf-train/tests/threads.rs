//! Training on several threads is deterministic: the same seed gives the same
//! blob, byte for byte, on 1, 2 and 3 threads and on every core (and the same as
//! `fit_from`, which uses one), for both activations, one and two hidden layers,
//! with and without batch norm and context, on the standard normal and on a
//! mixture base.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use maf_train::data::Standardizer;
use maf_train::export::TrainedModel;
use maf_train::hyper::{BatchSize, FitParams};
use maf_train::model::{Activation, Arch};
use maf_train::train::{self, Data};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn blob(arch: Arch, seed: u64, threads: Option<usize>) -> Vec<u8> {
    let rows = 700;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = Array2::from_shape_fn((rows, arch.context), |_| rng.gen_range(-1.0..1.0));
    let x = Array2::from_shape_fn((rows, arch.dim), |(r, i)| {
        let ctx = if arch.context > 0 { c[(r, 0)] } else { 0.0 };
        rng.gen_range(-1.0..1.0) * (1.0 + i as f64) + ctx * i as f64
    });
    let names: Vec<String> = (0..arch.dim.max(arch.context))
        .map(|i| format!("v{i}"))
        .collect();
    let x_std = Standardizer::fit(&x, Path::new("train"), &names).expect("standardise");
    let c_std = Standardizer::fit(&c, Path::new("train"), &names).expect("standardise");
    let hp = FitParams {
        layers: arch.layers,
        hidden: arch.hidden,
        hidden_layers: arch.hidden_layers,
        batch_norm: arch.batch_norm,
        activation: arch.activation,
        // Minibatches of 350 rows: 2 and 3 threads both split them.
        batch_size: BatchSize::Fixed(350),
        max_epochs: 6,
        seed,
        ..FitParams::default()
    }
    .check()
    .expect("valid settings");
    let (xs, cs) = (x_std.apply::<f32>(&x), c_std.apply::<f32>(&c));
    let data = Data {
        x: xs.view(),
        c: cs.view(),
    };
    let lj = x_std.log_jacobian();
    let fitted = match threads {
        Some(t) => train::fit_from_threads(&hp, arch, None, None, data, data, lj, &mut |_| {}, t),
        None => train::fit_from(&hp, arch, None, None, data, data, lj, &mut |_| {}),
    }
    .expect("fit");
    TrainedModel {
        params: fitted.params,
        stats: fitted.stats,
        x_std,
        c_std,
        columns: Vec::new(),
    }
    .to_blob(None, "")
    .expect("blob")
}

#[test]
fn same_seed_same_blob_on_any_thread_count() {
    let base = Arch {
        dim: 4,
        context: 0,
        hidden: 24,
        hidden_layers: 1,
        layers: 3,
        batch_norm: true,
        activation: Activation::Tanh,
        base: maf_core::Base::StandardNormal,
    };
    let archs = [
        base,
        Arch {
            activation: Activation::Relu,
            hidden_layers: 2,
            ..base
        },
        Arch {
            context: 2,
            batch_norm: false,
            ..base
        },
        Arch {
            batch_norm: false,
            base: maf_core::Base::Mixture {
                components: 3,
                covariance: maf_core::Covariance::Full,
            },
            ..base
        },
    ];
    for (i, arch) in archs.into_iter().enumerate() {
        let one = blob(arch, 7 + i as u64, Some(1));
        for threads in [Some(2), Some(3), Some(0), None] {
            assert!(
                blob(arch, 7 + i as u64, threads) == one,
                "{arch:?}: the blob of {threads:?} threads differs from one thread's"
            );
        }
    }
}
