//! The batched density pass ([`MafView::log_prob_batch`], lanes across vectors)
//! against the one-vector path ([`MafView::log_prob`]), bit for bit: random
//! models of both activations, one and two hidden layers, with and without
//! batch norm and context, 0 to 3 MADEs, on the standard-normal base and on full
//! and diagonal mixtures; weights with exact `+0.0` and `-0.0`; row counts that
//! are and are not multiples of the lane width; rows with zeros of both signs,
//! rows that overflow (`Err(Overflow)`), and rows with NaN or infinite inputs or
//! context (their errors, index included).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{Rng, random_weights, shape};
use maf_core::batch::LANES;
use maf_core::blob::{self, AlignedBlob, Header};
use maf_core::{Activation, Base, Covariance, Error, MafView, Result, Shape};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A valid mixture section: weights summing to 1, means in ±1.5, precision
/// factors lower triangular (or diagonal) with diagonal in [0.4, 2.5] and
/// off-diagonal entries in ±0.6; `c_k` from the stored diagonal.
fn mixture_section(rng: &mut Rng, dim: usize, k: usize, covariance: Covariance) -> Vec<f32> {
    let raw: Vec<f64> = (0..k).map(|_| f64::from(rng.uniform(0.2, 1.0))).collect();
    let total: f64 = raw.iter().sum();
    let mut section = Vec::new();
    for w in raw {
        let mean: Vec<f32> = (0..dim).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let mut factor = Vec::new();
        let mut log_diag = 0.0f64;
        for j in 0..dim {
            let diag = rng.uniform(0.4, 2.5);
            log_diag += f64::from(diag).ln();
            if covariance == Covariance::Full {
                factor.extend((0..j).map(|_| rng.uniform(-0.6, 0.6)));
            }
            factor.push(diag);
        }
        let c = (w / total).ln() + log_diag - 0.5 * dim as f64 * LN_2PI;
        section.push(c as f32);
        section.extend(mean);
        section.extend(factor);
    }
    section
}

/// Flow weights with some exact `+0.0` and `-0.0` among the free ones.
fn edgy(shape: &Shape, seed: u64) -> Vec<f32> {
    let mut w = random_weights(shape, 0.5, seed);
    let mut rng = Rng(seed ^ 0xb47c);
    let mut positive = vec![false; w.len()];
    let (d, c) = (shape.dim, shape.context);
    positive[d..2 * d].fill(true);
    positive[2 * d + c..2 * d + 2 * c].fill(true);
    if shape.batch_norm {
        for l in 0..shape.layers {
            let o = shape.batch_norm_offset(l);
            positive[o..o + d].fill(true);
        }
    }
    for (v, &p) in w.iter_mut().zip(&positive) {
        let r = rng.uniform(0.0, 1.0);
        if !p && r < 0.04 {
            *v = 0.0;
        } else if !p && r < 0.08 {
            *v = -0.0;
        }
    }
    w
}

fn model(s: Shape, activation: Activation, base: Base, seed: u64) -> AlignedBlob {
    let mut rng = Rng(seed ^ 0x3a3a);
    let mut w = edgy(&s, seed);
    if let Base::Mixture {
        components,
        covariance,
    } = base
    {
        w.extend(mixture_section(&mut rng, s.dim, components, covariance));
    }
    let header = Header {
        base,
        ..Header::new(s, activation)
    };
    AlignedBlob::new(&blob::write(&header, &w).expect("valid model"))
}

/// `rows` input rows and their contexts: mostly uniform in ±3, some exact zeros
/// of both signs, some far out (overflow), some NaN or infinite.
fn rows(s: &Shape, rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(seed);
    let value = |rng: &mut Rng| {
        let r = rng.uniform(0.0, 1.0);
        if r < 0.03 {
            0.0
        } else if r < 0.06 {
            -0.0
        } else if r < 0.08 {
            rng.uniform(-3e19, 3e19)
        } else if r < 0.085 {
            f32::NAN
        } else if r < 0.09 {
            f32::INFINITY
        } else {
            rng.uniform(-3.0, 3.0)
        }
    };
    let xs = (0..rows * s.dim).map(|_| value(&mut rng)).collect();
    let cs = (0..rows * s.context).map(|_| value(&mut rng)).collect();
    (xs, cs)
}

fn same(a: &Result<f32>, b: &Result<f32>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.to_bits() == b.to_bits(),
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// Counts of the outcomes checked, so the test can show it covered each kind.
#[derive(Default, Debug)]
struct Seen {
    ok: usize,
    overflow: usize,
    non_finite: usize,
}

fn check(s: Shape, activation: Activation, base: Base, seed: u64, seen: &mut Seen) {
    let blob = model(s, activation, base, seed);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let mut scratch = vec![0.0f32; s.scratch_len()];
    let mut batch_scratch = vec![f32::NAN; view.batch_scratch_len()];
    for n in [0, 1, LANES - 1, LANES, 2 * LANES + 3, 61] {
        let (xs, cs) = rows(&s, n, seed.wrapping_mul(31).wrapping_add(n as u64));
        let mut out = vec![Err(Error::Truncated); n];
        view.log_prob_batch(&xs, &cs, &mut out, &mut batch_scratch)
            .unwrap();
        for r in 0..n {
            let x = &xs[r * s.dim..(r + 1) * s.dim];
            let c = &cs[r * s.context..(r + 1) * s.context];
            let want = view.log_prob(x, c, &mut scratch);
            assert!(
                same(&want, &out[r]),
                "{s:?} {activation:?} {base:?} seed {seed}, {n} rows, row {r}: one-vector {want:?}, batched {:?}",
                out[r]
            );
            match want {
                Ok(_) => seen.ok += 1,
                Err(Error::Overflow) => seen.overflow += 1,
                Err(_) => seen.non_finite += 1,
            }
        }
    }
}

#[test]
fn batched_equals_one_vector_bit_for_bit() {
    let mut seen = Seen::default();
    let mut seed = 1u64;
    // The activations of this build (`scripts/test.sh` also runs relu alone).
    let acts: Vec<Activation> = [
        (cfg!(feature = "relu"), Activation::Relu),
        (cfg!(feature = "tanh"), Activation::Tanh),
    ]
    .into_iter()
    .filter_map(|(on, a)| on.then_some(a))
    .collect();
    let bases = [
        Base::StandardNormal,
        Base::Mixture {
            components: 3,
            covariance: Covariance::Full,
        },
        Base::Mixture {
            components: 5,
            covariance: Covariance::Diagonal,
        },
    ];
    for &act in &acts {
        for base in bases {
            for (dim, context, hidden) in [(1, 0, 3), (2, 1, 5), (3, 0, 7), (8, 2, 33), (5, 3, 4)] {
                for hidden_layers in [1, 2] {
                    for layers in 0..=3 {
                        if layers == 0 && base == Base::StandardNormal {
                            continue; // only a mixture stands alone
                        }
                        for batch_norm in [false, true] {
                            let s = shape(dim, context, hidden, hidden_layers, layers, batch_norm);
                            check(s, act, base, seed, &mut seen);
                            seed += 1;
                        }
                    }
                }
            }
        }
    }
    // The reference shape, both activations.
    for &act in &acts {
        check(Shape::REFERENCE, act, Base::StandardNormal, 999, &mut seen);
    }
    println!("{seen:?}");
    assert!(
        seen.ok > 1000 && seen.overflow > 50 && seen.non_finite > 50,
        "{seen:?}"
    );
}

#[test]
fn wrong_lengths_are_refused() {
    let s = shape(3, 1, 8, 1, 2, true);
    let blob = model(s, Activation::Relu, Base::StandardNormal, 7);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let mut scratch = vec![0.0; view.batch_scratch_len()];
    let mut out = vec![Ok(0.0); 4];
    let err = |xs: usize, cs: usize, scratch: &mut [f32], out: &mut [Result<f32>]| {
        view.log_prob_batch(&vec![0.5; xs], &vec![0.5; cs], out, scratch)
    };
    assert!(matches!(
        err(11, 4, &mut scratch, &mut out),
        Err(Error::LengthMismatch { what: "inputs", .. })
    ));
    assert!(matches!(
        err(12, 3, &mut scratch, &mut out),
        Err(Error::LengthMismatch {
            what: "contexts",
            ..
        })
    ));
    let short = view.batch_scratch_len() - 1;
    assert!(matches!(
        err(12, 4, &mut scratch[..short], &mut out),
        Err(Error::LengthMismatch {
            what: "scratch",
            ..
        })
    ));
    assert!(err(12, 4, &mut scratch, &mut out).is_ok());
}
