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
