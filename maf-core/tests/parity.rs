//! Bit-for-bit parity: the fixed-size [`Maf`] (const shapes, the device path) and the
//! run-time [`MafView`] (the host path) give the same bits on random models and
//! inputs, for many const shapes, both activations, with and without batch norm.
//! Weights include `+0.0` and `-0.0`, inputs include zeros of both signs and huge
//! values (overflow, `inf - inf`), so the signed-zero and NaN paths are exercised.
//!
//! A frozen hash per shape also pins the bits themselves, so a kernel rewrite that
//! changed the arithmetic on both paths alike would be caught too. Set
//! `MAF_PARITY_PRINT=1` to print the hashes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{Rng, random_weights, shape};
use maf_core::blob::{self, AlignedBlob, Header};
use maf_core::{Activation, Maf, MafView, Result, Shape};

/// FNV-1a over 32-bit words.
struct Hash(u64);

impl Hash {
    fn word(&mut self, w: u32) {
        // NaN payloads and signs are not specified by IEEE 754 (x86 gives
        // 0xffc00000, ARM and LLVM's constant folder 0x7fc00000): hash one NaN.
        let w = if f32::from_bits(w).is_nan() {
            0x7fc0_0000
        } else {
            w
        };
        if std::env::var_os("MAF_PARITY_TRACE").is_some() {
            println!("{w:08x}");
        }
        for b in w.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01B3);
        }
    }

    fn result(&mut self, r: &Result<f32>) {
        match r {
            Ok(v) => self.word(v.to_bits()),
            Err(e) => format!("{e:?}")
                .bytes()
                .for_each(|b| self.word(u32::from(b))),
        }
    }
}

/// Bits, with every NaN mapped to one (see [`Hash::word`]).
fn bits(v: f32) -> u32 {
    if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() }
}

/// Random weights with some exact `+0.0` and `-0.0` among the free ones.
fn edgy_weights(shape: &Shape, seed: u64) -> Vec<f32> {
    let mut w = random_weights(shape, 0.5, seed);
    let mut rng = Rng(seed ^ 0x5151);
    let mut positive = vec![false; w.len()];
    let d = shape.dim;
    let c = shape.context;
    positive[d..2 * d].fill(true);
    positive[2 * d + c..2 * d + 2 * c].fill(true);
    if shape.batch_norm {
        for l in 0..shape.layers {
            let o = shape.batch_norm_offset(l);
            positive[o..o + d].fill(true);
        }
    }
    for (v, &p) in w.iter_mut().zip(&positive) {
        if p {
            continue;
        }
        let r = rng.uniform(0.0, 1.0);
        if r < 0.04 {
            *v = 0.0;
        } else if r < 0.08 {
            *v = -0.0;
        }
    }
    w
}

fn input(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let r = rng.uniform(0.0, 1.0);
            if r < 0.05 {
                0.0
            } else if r < 0.1 {
                -0.0
            } else if r < 0.12 {
                rng.uniform(-3e37, 3e37)
            } else {
                rng.uniform(-3.0, 3.0)
            }
        })
        .collect()
}

fn check<const D: usize, const H: usize, const L: usize, const C: usize, const K: usize>() -> u64 {
    let mut hash = Hash(0xCBF2_9CE4_8422_2325);
    for bn in [false, true] {
        for act in [Activation::Relu, Activation::Tanh] {
            for seed in 0..8u64 {
                let s = shape(D, C, H, K, L, bn);
                let seed = seed ^ ((D * 1000 + H * 10 + C) as u64) << 8;
                let mut weights = edgy_weights(&s, seed);
                if seed % 2 == 1 {
                    // No `-0.0` output bias: the density pass may then skip zero
                    // ReLU units (kernel::zero_units_skippable); cover that path.
                    for l in 0..L {
                        let o = s.made_offset(l) + s.layer1_len() + s.layer2_len();
                        for b in &mut weights[o..o + 2 * D] {
                            if b.to_bits() == (-0.0f32).to_bits() {
                                *b = 0.0;
                            }
                        }
                    }
                }
                let header = Header {
                    shape: s,
                    activation: act,
                    threshold: None,
                    base: maf_core::Base::StandardNormal,
                    window: maf_core::blob::Window::PER_VECTOR,
                    columns: "",
                    metadata: "",
                };
                let blob = AlignedBlob::new(&blob::write(&header, &weights).unwrap());
                let view = MafView::from_blob(blob.as_bytes()).unwrap();
                let maf = Maf::<D, H, L, C, K>::from_blob(blob.as_bytes()).unwrap();
                let mut scratch = vec![0.0; s.scratch_len()];
                let mut rng = Rng(seed ^ 0xFEED);
                for _ in 0..25 {
                    let x: [f32; D] = input(&mut rng, D).try_into().unwrap();
                    let c: [f32; C] = input(&mut rng, C).try_into().unwrap();
                    let a = view.log_prob(&x, &c, &mut scratch);
                    let b = maf.log_prob(&x, &c);
                    assert_eq!(a.map(bits), b.map(bits), "log_prob {s:?}");
                    hash.result(&a);

                    let mut u = [0.0f32; D];
                    let a = view.inverse(&x, &c, &mut u, &mut scratch);
                    let b = maf.inverse(&x, &c);
                    assert_eq!(
                        a.map(|ld| (bits(ld), u.map(bits))),
                        b.map(|(u, ld)| (bits(ld), u.map(bits))),
                        "inverse {s:?}"
                    );
                    hash.result(&a);
                    u.iter().for_each(|v| hash.word(v.to_bits()));

                    let base: [f32; D] = input(&mut rng, D).try_into().unwrap();
                    let mut xs = [0.0f32; D];
                    let a = view.sample(&base, &c, &mut xs, &mut scratch);
                    let b = maf.sample(&base, &c);
                    assert_eq!(
                        a.map(|()| xs.map(bits)),
                        b.map(|x| x.map(bits)),
                        "sample {s:?}"
                    );
                    hash.result(&a.map(|()| 0.0));
                    xs.iter().for_each(|v| hash.word(v.to_bits()));
                }
            }
        }
    }
    hash.0
}

macro_rules! parity {
    ($($name:ident: $d:literal $h:literal $l:literal $c:literal $k:literal => $frozen:literal;)*) => {
        $(
            #[test]
            fn $name() {
                let h = check::<$d, $h, $l, $c, $k>();
                if std::env::var_os("MAF_PARITY_PRINT").is_some() {
                    println!("{}: {} {} {} {} {} => {:#018x};", stringify!($name), $d, $h, $l, $c, $k, h);
                }
                assert_eq!(h, $frozen, "frozen bits of {}", stringify!($name));
            }
        )*
    };
}

parity! {
    d1_k1_c0: 1 5 3 0 1 => 0x347c22fb02dbd211;
    d1_k2_c2: 1 4 2 2 2 => 0x69c7cbe64333f611;
    d2_k1_c0: 2 6 3 0 1 => 0x033f2307d153ba5b;
    d2_k2_c2: 2 5 3 2 2 => 0xfb7511e8006349cb;
    d3_k1_c2: 3 9 3 2 1 => 0xcca218bfd1b8695d;
    d3_k2_c0: 3 7 2 0 2 => 0xa0b2defdbe69bf7d;
    d4_k1_c0: 4 11 3 0 1 => 0xc88d589d49b11bf5;
    d4_k2_c2: 4 7 3 2 2 => 0x694ab1ca1523050d;
    d5_k1_c2: 5 3 3 2 1 => 0x7815edf99c07826e;
    d5_k2_c0: 5 13 2 0 2 => 0x5959ec1bb71ec7af;
    d6_k1_c0: 6 17 3 0 1 => 0x430cd5561ed6a860;
    d6_k2_c2: 6 9 2 2 2 => 0xfbed62f254e19fba;
    d7_k1_c2: 7 20 3 2 1 => 0xda94d62d7e429a21;
    d7_k2_c0: 7 4 3 0 2 => 0x9834541a6c79eff7;
    d8_k1_c0: 8 64 5 0 1 => 0x88d9fdec77c4f23d;
    d8_k1_c2: 8 19 3 2 1 => 0x6562ed3a33451044;
    d8_k2_c0: 8 16 2 0 2 => 0x599746618b9b0e2b;
    d9_k1_c0: 9 10 3 0 1 => 0x1a1cc3a648b80758;
    d9_k2_c2: 9 12 2 2 2 => 0xa9aeb9be65335dff;
    d10_k1_c2: 10 23 3 2 1 => 0x3a0d45e05f8a86b5;
    d10_k1_c0: 10 5 3 0 1 => 0x06bd47be00bd1350;
    d10_k2_c0: 10 15 2 0 2 => 0x1b8db09ea9dceafd;
    d16_k1_c2: 16 40 2 2 1 => 0x2192ee9aeecec782;
    d17_k1_c0: 17 36 2 0 1 => 0x9f1f6b5a2d7c4513;
    d19_k1_c0: 19 40 2 0 1 => 0xd8b2705d82fc5549;
    d19_k2_c2: 19 30 2 2 2 => 0x6d490ceb666b26fe;
}

/// A ReLU unit at zero feeds no output (`Act::feeds` in the kernel):
/// an output with no active unit keeps its bias, here `-0.0`, bit for bit, on both
/// paths. (Adding the unit's `1.0 * 0.0` would give `+0.0`.)
#[test]
fn inactive_relu_unit_feeds_no_output() {
    let s = shape(2, 0, 1, 1, 1, false);
    // x_mean, x_inv_std; unit 0 (degree 1): b1 = -1, w1 = 1; output biases
    // (mu0, alpha0, mu1, alpha1); output column of unit 0: (w_mu1, w_alpha1).
    let weights = [0.0, 0.0, 1.0, 1.0, -1.0, 1.0, 0.0, 0.0, -0.0, 0.0, 1.0, 1.0];
    assert_eq!(weights.len(), s.weight_count());
    let header = Header {
        shape: s,
        activation: Activation::Relu,
        threshold: None,
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: "",
    };
    let blob = AlignedBlob::new(&blob::write(&header, &weights).unwrap());
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let maf = Maf::<2, 1, 1>::from_blob(blob.as_bytes()).unwrap();
    // z = (0, -0): the unit sees a = -1 + 0 = -1, so it is inactive; mu1 stays
    // -0, and u1 = (-0 - -0) * exp(-0) = +0 (it would be -0 with mu1 = +0).
    let x = [0.0f32, -0.0];
    let mut u = [0.0f32; 2];
    let mut scratch = vec![0.0; s.scratch_len()];
    view.inverse(&x, &[], &mut u, &mut scratch).unwrap();
    assert_eq!(u[1].to_bits(), 0.0f32.to_bits());
    let (u2, _) = maf.inverse(&x, &[]).unwrap();
    assert_eq!(u2[1].to_bits(), 0.0f32.to_bits());
    // With the unit active (x0 = 2: a = 1), mu1 = -0 + 1 * 1 = 1.
    let (u3, _) = maf.inverse(&[2.0, -0.0], &[]).unwrap();
    assert_eq!(u3[1], (-0.0 - 1.0) * (-1.0f32).exp());
}
