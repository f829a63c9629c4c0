//! Agreement: the trainer's own `f64` log density of a model equals `maf-core`'s
//! (`MafView`, `f32`, `libm`) on the exported blob, within 1e-4 relative per row
//! (`|a - b| <= 1e-4 * max(1, |a|)`).

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use maf_train::data::Standardizer;
use maf_train::export::TrainedModel;
use maf_train::hyper::FitParams;
use maf_train::model::{Activation, Arch};
use maf_train::train::{self, Data};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn synthetic(rows: usize, dim: usize, context: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = Array2::from_shape_fn((rows, context), |_| rng.gen_range(-1.0..3.0));
    let mut x = Array2::zeros((rows, dim));
    for r in 0..rows {
        let mut prev = if context > 0 { c[(r, 0)] } else { 0.0 };
        for i in 0..dim {
            let z: f64 = rng.gen_range(-1.0..1.0) + rng.gen_range(-1.0..1.0);
            let v = 10.0 * i as f64 + 0.5 * prev * prev + z * (1.0 + i as f64);
            x[(r, i)] = v;
            prev = z;
        }
    }
    (x, c)
}

fn trained(arch: Arch, seed: u64) -> (TrainedModel, Array2<f64>, Array2<f64>) {
    let (x, c) = synthetic(300, arch.dim, arch.context, seed);
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
        batch_size: maf_train::hyper::BatchSize::Fixed(32),
        max_epochs: 4,
        seed,
        ..FitParams::default()
    }
    .check()
    .expect("valid settings");
    let xs = x_std.apply::<f32>(&x);
    let cs = c_std.apply::<f32>(&c);
    let data = Data {
        x: xs.view(),
        c: cs.view(),
    };
    let start = match arch.base {
        maf_core::Base::StandardNormal => None,
        maf_core::Base::Mixture {
            components,
            covariance,
        } => {
            let gmm =
                maf_train::mixture::fit(xs.mapv(f64::from).view(), components, covariance, seed)
                    .expect("EM");
            let masks = maf_train::model::Masks::<f32>::new(&arch);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Some(maf_train::model::Params::init_from_mixture(
                arch, &masks, &gmm, &mut rng,
            ))
        }
    };
    let fitted = train::fit_from(
        &hp,
        arch,
        start,
        None,
        data,
        data,
        x_std.log_jacobian(),
        &mut |_| {},
    )
    .expect("fit");
    let model = TrainedModel {
        params: fitted.params,
        stats: fitted.stats,
        x_std,
        c_std,
        columns: Vec::new(),
    };
    // Evaluate on fresh rows, some far outside the training range.
    let (mut tx, tc) = synthetic(200, arch.dim, arch.context, seed + 100);
    for r in 0..20 {
        tx[(r, r % arch.dim)] *= 3.0;
    }
    (model, tx, tc)
}

fn check(arch: Arch, seed: u64) {
    let (model, x, c) = trained(arch, seed);
    let blob = model.to_blob(Some(-3.5), "test=1").expect("blob");
    let aligned = maf_core::blob::AlignedBlob::new(&blob);
    let view = maf_core::MafView::from_blob(aligned.as_bytes()).expect("core loads the blob");
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let ours = model.log_prob::<f64>(&x, &c);
    let mut worst = 0.0f64;
    for r in 0..x.nrows() {
        let xr: Vec<f32> = x.row(r).iter().map(|&v| v as f32).collect();
        let cr: Vec<f32> = c.row(r).iter().map(|&v| v as f32).collect();
        let core = f64::from(
            view.log_prob(&xr, &cr, &mut scratch)
                .expect("core log_prob"),
        );
        let err = (core - ours[r]).abs() / ours[r].abs().max(1.0);
        worst = worst.max(err);
        assert!(
            err <= 1e-4,
            "{arch:?} row {r}: trainer {} core {core}",
            ours[r]
        );
    }
    eprintln!("{arch:?}: worst relative difference {worst:e}");
}

fn arch(
    dim: usize,
    context: usize,
    hidden_layers: usize,
    batch_norm: bool,
    activation: Activation,
) -> Arch {
    Arch {
        dim,
        context,
        hidden: 16,
        hidden_layers,
        layers: 3,
        batch_norm,
        activation,
        base: maf_core::Base::StandardNormal,
    }
}

#[test]
fn relu_batch_norm_one_hidden_layer() {
    check(arch(5, 0, 1, true, Activation::Relu), 1);
}

#[test]
fn tanh_two_hidden_layers_context() {
    check(arch(4, 2, 2, true, Activation::Tanh), 2);
}

#[test]
fn no_batch_norm_context_relu_two_layers() {
    check(arch(6, 1, 2, false, Activation::Relu), 3);
}

#[test]
fn one_dimension_and_more_hidden_than_degrees() {
    check(arch(1, 0, 1, true, Activation::Relu), 4);
    let mut a = arch(9, 0, 1, true, Activation::Tanh);
    a.hidden = 5; // fewer hidden units than degrees
    check(a, 5);
}

fn mixture(
    mut a: Arch,
    layers: usize,
    components: usize,
    covariance: maf_core::Covariance,
) -> Arch {
    a.layers = layers;
    a.base = maf_core::Base::Mixture {
        components,
        covariance,
    };
    a
}

#[test]
fn mixture_base_full_covariance_with_a_flow() {
    use maf_core::Covariance::Full;
    check(
        mixture(arch(5, 0, 1, false, Activation::Tanh), 2, 4, Full),
        6,
    );
    check(
        mixture(arch(4, 2, 2, true, Activation::Relu), 3, 3, Full),
        7,
    );
}

#[test]
fn mixture_base_diagonal_and_mixture_alone() {
    use maf_core::Covariance::{Diagonal, Full};
    check(
        mixture(arch(6, 1, 1, false, Activation::Relu), 2, 5, Diagonal),
        8,
    );
    check(
        mixture(arch(3, 0, 1, false, Activation::Relu), 0, 6, Full),
        9,
    );
    check(
        mixture(arch(1, 0, 1, false, Activation::Relu), 0, 2, Diagonal),
        10,
    );
}
