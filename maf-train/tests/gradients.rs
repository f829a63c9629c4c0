//! Hand-written gradients against central finite differences, for every parameter
//! kind, in `f64`.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use maf_train::model::{ALL_KINDS, Activation, Arch, Kind, Masks, Params};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_params(arch: Arch, masks: &Masks<f64>, rng: &mut ChaCha8Rng) -> Params<f64> {
    let mut p = Params::<f64>::zeros(arch);
    for l in 0..arch.layers {
        for kind in ALL_KINDS {
            let t = p.get_mut(l, kind);
            for v in t.iter_mut() {
                *v = rng.gen_range(-0.6..0.6);
            }
            if let Some(m) = masks.get(l, kind) {
                *t *= m;
            }
        }
    }
    p
}

fn check(arch: Arch, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let masks = Masks::<f64>::new(&arch);
    let mut p = random_params(arch, &masks, &mut rng);
    let n = 11;
    let x = Array2::from_shape_fn((n, arch.dim), |_| rng.gen_range(-2.0..2.0));
    let c = Array2::from_shape_fn((n, arch.context), |_| rng.gen_range(-2.0..2.0));
    let mut grad = Params::<f64>::zeros(arch);
    p.loss_and_grad(&masks, x.view(), c.view(), &mut grad);
    let mut scratch = Params::<f64>::zeros(arch);
    let h = 1e-6;
    let mut checked = [0usize; 9];
    for l in 0..arch.layers {
        for kind in ALL_KINDS {
            let shape = p.get(l, kind).dim();
            for idx in 0..shape.0 * shape.1 {
                let (i, j) = (idx / shape.1, idx % shape.1);
                let masked = masks.get(l, kind).is_some_and(|m| m[(i, j)] == 0.0);
                let analytic = grad.get(l, kind)[(i, j)];
                if masked {
                    assert_eq!(
                        analytic, 0.0,
                        "masked {kind:?} layer {l} ({i},{j}) has a gradient"
                    );
                    continue;
                }
                let orig = p.get(l, kind)[(i, j)];
                p.get_mut(l, kind)[(i, j)] = orig + h;
                let up = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
                p.get_mut(l, kind)[(i, j)] = orig - h;
                let down = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
                p.get_mut(l, kind)[(i, j)] = orig;
                let numeric = (up - down) / (2.0 * h);
                assert!(
                    (analytic - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(),
                    "{arch:?}: {kind:?} layer {l} ({i},{j}): analytic {analytic} numeric {numeric}"
                );
                checked[kind as usize] += 1;
            }
        }
    }
    for kind in ALL_KINDS {
        let expected: usize = (0..arch.layers)
            .map(|l| match masks.get(l, kind) {
                Some(m) => m.iter().filter(|&&v| v != 0.0).count(),
                None => p.get(l, kind).len(),
            })
            .sum();
        assert_eq!(checked[kind as usize], expected, "{kind:?}");
    }
    // Every kind the architecture has was checked somewhere.
    for kind in [Kind::W1, Kind::B1, Kind::Bo] {
        assert!(checked[kind as usize] > 0, "{kind:?}");
    }
}

fn arch(context: usize, hidden_layers: usize, batch_norm: bool, activation: Activation) -> Arch {
    Arch {
        dim: 4,
        context,
        hidden: 7,
        hidden_layers,
        layers: 3,
        batch_norm,
        activation,
        base: maf_core::Base::StandardNormal,
    }
}

#[test]
fn every_kind_two_hidden_layers_batch_norm_tanh_context() {
    check(arch(2, 2, true, Activation::Tanh), 1);
}

#[test]
fn relu_one_hidden_layer_batch_norm() {
    check(arch(0, 1, true, Activation::Relu), 2);
}

#[test]
fn relu_two_hidden_layers_no_batch_norm_context() {
    check(arch(3, 2, false, Activation::Relu), 3);
}

#[test]
fn one_dimension() {
    let mut a = arch(1, 1, true, Activation::Tanh);
    a.dim = 1;
    check(a, 4);
}

/// Random mixture-base parameters (logits, means, lower-triangular factors with
/// log diagonals), masked as the architecture's covariance requires.
fn randomise_base(p: &mut Params<f64>, masks: &Masks<f64>, rng: &mut ChaCha8Rng) {
    let (logits, means, factors) = p.base_mut().expect("a mixture base");
    for v in logits.iter_mut().chain(means.iter_mut()) {
        *v = rng.gen_range(-1.0..1.0);
    }
    for v in factors.iter_mut() {
        *v = rng.gen_range(-0.5..0.5);
    }
    *factors *= masks.base.as_ref().expect("a mixture mask");
}

/// The mixture base's gradients (logits, means, factors, and through `y` the
/// flow's) against central differences.
fn check_mixture(arch: Arch, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let masks = Masks::<f64>::new(&arch);
    let mut p = random_params(arch, &masks, &mut rng);
    randomise_base(&mut p, &masks, &mut rng);
    let n = 9;
    let x = Array2::from_shape_fn((n, arch.dim), |_| rng.gen_range(-2.0..2.0));
    let c = Array2::from_shape_fn((n, arch.context), |_| rng.gen_range(-2.0..2.0));
    let mut grad = Params::<f64>::zeros(arch);
    p.loss_and_grad(&masks, x.view(), c.view(), &mut grad);
    let mut scratch = Params::<f64>::zeros(arch);
    let h = 1e-6;
    let mask = masks.base.clone().expect("a mixture mask");
    let first = arch.layers * maf_train::model::KINDS;
    let mut checked = 0;
    for t in first..first + 3 {
        let shape = p.tensors[t].dim();
        for i in 0..shape.0 {
            for j in 0..shape.1 {
                let analytic = grad.tensors[t][(i, j)];
                if t == first + 2 && mask[(i, j)] == 0.0 {
                    assert_eq!(analytic, 0.0, "masked factor ({i},{j}) has a gradient");
                    continue;
                }
                let orig = p.tensors[t][(i, j)];
                p.tensors[t][(i, j)] = orig + h;
                let up = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
                p.tensors[t][(i, j)] = orig - h;
                let down = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
                p.tensors[t][(i, j)] = orig;
                let numeric = (up - down) / (2.0 * h);
                assert!(
                    (analytic - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(),
                    "{arch:?}: base tensor {} ({i},{j}): analytic {analytic} numeric {numeric}",
                    t - first
                );
                checked += 1;
            }
        }
    }
    let k = arch.components();
    let d = arch.dim;
    let factor_entries = mask.iter().filter(|&&v| v != 0.0).count();
    assert_eq!(checked, k + k * d + factor_entries);
    // Through y into the flow: the first MADE's output weights.
    if arch.layers > 0 {
        let (r, col) = (arch.hidden - 1, 2 * d - 1);
        let analytic = grad.get(0, Kind::Wo)[(r, col)];
        let orig = p.get(0, Kind::Wo)[(r, col)];
        p.get_mut(0, Kind::Wo)[(r, col)] = orig + h;
        let up = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
        p.get_mut(0, Kind::Wo)[(r, col)] = orig - h;
        let down = p.loss_and_grad(&masks, x.view(), c.view(), &mut scratch);
        let numeric = (up - down) / (2.0 * h);
        assert!(
            (analytic - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(),
            "Wo through the mixture: analytic {analytic} numeric {numeric}"
        );
    }
}

fn mixture_arch(layers: usize, components: usize, covariance: maf_core::Covariance) -> Arch {
    Arch {
        layers,
        base: maf_core::Base::Mixture {
            components,
            covariance,
        },
        ..arch(2, 1, false, Activation::Tanh)
    }
}

#[test]
fn mixture_base_full_covariance_with_a_flow() {
    check_mixture(mixture_arch(2, 3, maf_core::Covariance::Full), 11);
}

#[test]
fn mixture_base_diagonal_with_a_flow_and_batch_norm() {
    let mut a = mixture_arch(2, 2, maf_core::Covariance::Diagonal);
    a.batch_norm = true;
    check_mixture(a, 12);
}

#[test]
fn mixture_base_alone() {
    let mut a = mixture_arch(0, 4, maf_core::Covariance::Full);
    a.context = 0;
    check_mixture(a, 13);
}
