//! Properties over random models and inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Rng, random_blob, random_weights, shape};
use maf_core::blob::{self, AlignedBlob, Header};
use maf_core::{Activation, Error, MafView, Shape};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn any_shape() -> impl Strategy<Value = (Shape, Activation)> {
    (
        1usize..7,
        0usize..3,
        1usize..13,
        1usize..3,
        1usize..5,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(d, c, h, k, l, bn, tanh)| {
            let act = if tanh {
                Activation::Tanh
            } else {
                Activation::Relu
            };
            (shape(d, c, h, k, l, bn), act)
        })
}

fn vector(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

/// `log N(u; 0, I)`, written out independently of the crate.
fn base_log_density(u: &[f32]) -> f64 {
    u.iter()
        .map(|&v| -0.5 * (v as f64).powi(2) - 0.5 * (2.0 * std::f64::consts::PI).ln())
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        // Reproducible in CI; change the seed to explore further.
        rng_seed: RngSeed::Fixed(0x5EED_0001),
        ..ProptestConfig::default()
    })]

    /// forward(inverse(x)) = x, within 1e-4 (1 + |x|).
    #[test]
    fn sample_inverts_the_density_transform((shape, act) in any_shape(), seed in any::<u64>()) {
        let blob = random_blob(shape, act, 0.4, seed);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut rng = Rng(seed ^ 0xABCD);
        let x = vector(&mut rng, shape.dim, -3.0, 3.0);
        let c = vector(&mut rng, shape.context, -2.0, 2.0);
        let mut scratch = vec![0.0; shape.scratch_len()];
        let mut u = vec![0.0; shape.dim];
        view.inverse(&x, &c, &mut u, &mut scratch).unwrap();
        // A random flow can stretch some inputs enormously; their inverse is
        // ill-conditioned in f32 and says nothing about correctness.
        prop_assume!(u.iter().all(|v| v.abs() < 8.0));
        let mut back = vec![0.0; shape.dim];
        view.sample(&u, &c, &mut back, &mut scratch).unwrap();
        for (a, b) in x.iter().zip(&back) {
            prop_assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "x {x:?} back {back:?} u {u:?}");
        }
    }

    /// log p(x) = log N(f⁻¹(x)) + log|det ∂f⁻¹/∂x|.
    #[test]
    fn log_prob_is_base_density_plus_log_det((shape, act) in any_shape(), seed in any::<u64>()) {
        let blob = random_blob(shape, act, 0.4, seed);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut rng = Rng(seed ^ 0x1234);
        let x = vector(&mut rng, shape.dim, -3.0, 3.0);
        let c = vector(&mut rng, shape.context, -2.0, 2.0);
        let mut scratch = vec![0.0; shape.scratch_len()];
        let mut u = vec![0.0; shape.dim];
        let log_det = view.inverse(&x, &c, &mut u, &mut scratch).unwrap();
        let lp = view.log_prob(&x, &c, &mut scratch).unwrap() as f64;
        let want = base_log_density(&u) + log_det as f64;
        prop_assert!((lp - want).abs() <= 1e-5 * want.abs().max(1.0), "{lp} vs {want}");
    }

    /// No input makes the model panic or return a NaN: finite inputs give a finite
    /// log density or `Overflow`; non-finite ones are rejected with their index.
    #[test]
    fn any_input_gives_a_number_or_an_error(
        (shape, act) in any_shape(), seed in any::<u64>(),
        x in prop::collection::vec(any::<f32>(), 1..7), c in prop::collection::vec(any::<f32>(), 0..3),
    ) {
        let blob = random_blob(shape, act, 0.4, seed);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut scratch = vec![0.0; shape.scratch_len()];
        match view.log_prob(&x, &c, &mut scratch) {
            Ok(lp) => prop_assert!(lp.is_finite()),
            Err(Error::LengthMismatch { .. }) => prop_assert!(x.len() != shape.dim || c.len() != shape.context),
            Err(Error::NonFiniteInput { index }) => prop_assert!(!x[index].is_finite()),
            Err(Error::NonFiniteContext { index }) => prop_assert!(!c[index].is_finite()),
            Err(Error::Overflow) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

/// Determinant of a small matrix by Gaussian elimination with partial pivoting.
fn log_abs_det(mut m: Vec<Vec<f64>>) -> f64 {
    let n = m.len();
    let mut total = 0.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        let p = m[col][col];
        total += p.abs().ln();
        let (top, bottom) = m.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for row in bottom {
            let f = row[col] / p;
            for (r, v) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *r -= f * v;
            }
        }
    }
    total
}

/// The log-determinant equals log|det J| of a central finite-difference Jacobian of
/// `x ↦ f⁻¹(x)` (tanh models, so the map is smooth), within 1e-2.
#[test]
fn log_det_matches_finite_difference_jacobian() {
    for seed in 0..40u64 {
        let d = 1 + (seed as usize % 5);
        let s = shape(
            d,
            (seed % 2) as usize,
            6 + (seed as usize % 7),
            1 + (seed % 2) as usize,
            1 + (seed % 4) as usize,
            seed % 3 != 0,
        );
        let blob = random_blob(s, Activation::Tanh, 0.5, seed);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut rng = Rng(seed + 77);
        let x = vector(&mut rng, d, -1.5, 1.5);
        let c = vector(&mut rng, s.context, -1.0, 1.0);
        let mut scratch = vec![0.0; s.scratch_len()];
        let mut u = vec![0.0; d];
        let log_det = view.inverse(&x, &c, &mut u, &mut scratch).unwrap() as f64;
        let h = 1e-2f32;
        let mut jac = vec![vec![0.0f64; d]; d];
        for j in 0..d {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[j] += h;
            xm[j] -= h;
            let (mut up, mut um) = (vec![0.0; d], vec![0.0; d]);
            view.inverse(&xp, &c, &mut up, &mut scratch).unwrap();
            view.inverse(&xm, &c, &mut um, &mut scratch).unwrap();
            for i in 0..d {
                jac[i][j] = (up[i] as f64 - um[i] as f64) / (xp[j] as f64 - xm[j] as f64);
            }
        }
        let fd = log_abs_det(jac);
        assert!(
            (fd - log_det).abs() < 1e-2,
            "seed {seed} shape {s:?}: log_det {log_det} vs finite differences {fd}"
        );
    }
}

/// Autoregressive property of one MADE: perturbing `x_j` leaves every `u_i` whose
/// order position comes before `j`'s bit-identical, and changes `u_j`.
#[test]
fn made_is_autoregressive_in_its_order() {
    for seed in 0..60u64 {
        let d = 2 + (seed as usize % 5);
        let k = 1 + (seed % 2) as usize;
        let c = (seed % 3 == 0) as usize;
        // Even MADE (natural order): one layer.
        // Odd MADE (reversed order): two layers whose first is the identity (all
        // MADE weights zero, no batch norm), so u is the second MADE's output.
        for odd in [false, true] {
            let s = shape(d, c, 5 + (seed as usize % 9), k, 1 + odd as usize, false);
            let mut w = random_weights(&s, 0.6, seed);
            if odd {
                let first = s.made_offset(0);
                w[first..first + s.made_len()].fill(0.0);
            }
            let header = Header {
                shape: s,
                activation: Activation::Relu,
                threshold: None,
                base: maf_core::Base::StandardNormal,
                window: maf_core::blob::Window::PER_VECTOR,
                columns: "",
                metadata: "",
            };
            let blob = AlignedBlob::new(&blob::write(&header, &w).unwrap());
            let view = MafView::from_blob(blob.as_bytes()).unwrap();
            let mut rng = Rng(seed);
            let x = vector(&mut rng, d, -2.0, 2.0);
            let ctx = vector(&mut rng, c, -1.0, 1.0);
            let mut scratch = vec![0.0; s.scratch_len()];
            let mut u = vec![0.0; d];
            view.inverse(&x, &ctx, &mut u, &mut scratch).unwrap();
            let pos = |var: usize| if odd { d - 1 - var } else { var };
            for j in 0..d {
                let mut xj = x.clone();
                xj[j] += 0.75;
                let mut uj = vec![0.0; d];
                view.inverse(&xj, &ctx, &mut uj, &mut scratch).unwrap();
                for i in 0..d {
                    if pos(i) < pos(j) {
                        assert_eq!(
                            u[i].to_bits(),
                            uj[i].to_bits(),
                            "seed {seed} odd {odd}: u_{i} moved with x_{j}"
                        );
                    }
                }
                assert_ne!(u[j], uj[j], "seed {seed} odd {odd}: u_{j} ignores x_{j}");
            }
        }
    }
}

#[test]
fn wrong_lengths_and_non_finite_values_are_errors() {
    let s = shape(3, 1, 8, 1, 2, true);
    let blob = random_blob(s, Activation::Relu, 0.4, 9);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let mut scratch = vec![0.0; s.scratch_len()];
    assert_eq!(
        view.log_prob(&[1.0, 2.0], &[0.0], &mut scratch),
        Err(Error::LengthMismatch {
            what: "input",
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        view.log_prob(&[1.0, 2.0, 3.0], &[], &mut scratch),
        Err(Error::LengthMismatch {
            what: "context",
            expected: 1,
            found: 0
        })
    );
    assert!(matches!(
        view.log_prob(&[1.0, 2.0, 3.0], &[0.0], &mut scratch[..3]),
        Err(Error::LengthMismatch {
            what: "scratch",
            ..
        })
    ));
    assert_eq!(
        view.log_prob(&[1.0, f32::NAN, 3.0], &[0.0], &mut scratch),
        Err(Error::NonFiniteInput { index: 1 })
    );
    assert_eq!(
        view.log_prob(&[1.0, 2.0, f32::NEG_INFINITY], &[0.0], &mut scratch),
        Err(Error::NonFiniteInput { index: 2 })
    );
    assert_eq!(
        view.log_prob(&[1.0, 2.0, 3.0], &[f32::INFINITY], &mut scratch),
        Err(Error::NonFiniteContext { index: 0 })
    );
    // Far outside the data: the density underflows; an error, not a NaN or -inf.
    assert_eq!(
        view.log_prob(&[1e30, -1e30, 1e30], &[0.0], &mut scratch),
        Err(Error::Overflow)
    );
    assert!(
        view.log_prob(&[1.0, 2.0, 3.0], &[0.5], &mut scratch)
            .unwrap()
            .is_finite()
    );
}

/// Sampling with base vectors drawn from N(0, I) reproduces the model's density on
/// average: E[log p(x)] over samples equals E[log N(u)] + E[log_det], trivially, but
/// the samples must also come back through `inverse` to the same `u`.
#[test]
fn samples_map_back_to_their_base_vectors() {
    let s = shape(5, 0, 16, 2, 4, true);
    let blob = random_blob(s, Activation::Relu, 0.3, 5);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let mut rng = Rng(11);
    let mut scratch = vec![0.0; s.scratch_len()];
    for _ in 0..200 {
        let u = vector(&mut rng, 5, -2.5, 2.5);
        let mut x = vec![0.0; 5];
        view.sample(&u, &[], &mut x, &mut scratch).unwrap();
        let mut back = vec![0.0; 5];
        view.inverse(&x, &[], &mut back, &mut scratch).unwrap();
        for (a, b) in u.iter().zip(&back) {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + a.abs()),
                "{u:?} -> {x:?} -> {back:?}"
            );
        }
    }
}
