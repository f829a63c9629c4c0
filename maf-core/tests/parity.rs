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
            for seed in 0..6u64 {
                let s = shape(D, C, H, K, L, bn);
                let seed = seed ^ ((D * 1000 + H * 10 + C) as u64) << 8;
                let weights = edgy_weights(&s, seed);
                let header = Header {
                    shape: s,
                    activation: act,
                    threshold: None,
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
    d1_k1_c0: 1 5 3 0 1 => 0xb2ba43baf74a7651;
    d1_k2_c2: 1 4 2 2 2 => 0x55c6602bafb51d29;
    d2_k1_c0: 2 6 3 0 1 => 0x8572367968e8d8b1;
    d2_k2_c2: 2 5 3 2 2 => 0x32cc8b3759e83f0d;
    d3_k1_c2: 3 9 3 2 1 => 0xfe9362c40ceffe94;
    d3_k2_c0: 3 7 2 0 2 => 0x786fe06d2f27165a;
    d4_k1_c0: 4 11 3 0 1 => 0xa104602f22401657;
    d4_k2_c2: 4 7 3 2 2 => 0xd329e2218289ab72;
    d5_k1_c2: 5 3 3 2 1 => 0xd3bb4707973e0461;
    d5_k2_c0: 5 13 2 0 2 => 0x9b968e971e23f394;
    d6_k1_c0: 6 17 3 0 1 => 0x51eff8386d1430d7;
    d6_k2_c2: 6 9 2 2 2 => 0xd2dcca840bf19897;
    d7_k1_c2: 7 20 3 2 1 => 0xef9f4219d990c8a7;
    d7_k2_c0: 7 4 3 0 2 => 0x0c2d4711027e7c0e;
    d8_k1_c0: 8 64 5 0 1 => 0x32ae850b3f6e88cf;
    d8_k1_c2: 8 19 3 2 1 => 0x72eaae5e10dce011;
    d8_k2_c0: 8 16 2 0 2 => 0x8f9dd0954a34a138;
    d9_k1_c0: 9 10 3 0 1 => 0x8cdf33b2b9752781;
    d9_k2_c2: 9 12 2 2 2 => 0xebc2ebdf39688957;
    d10_k1_c2: 10 23 3 2 1 => 0x98e727c0b2b91649;
    d10_k1_c0: 10 5 3 0 1 => 0xfa975d3254eb77fa;
    d10_k2_c0: 10 15 2 0 2 => 0x21f22f43cf07eb35;
    d19_k1_c0: 19 40 2 0 1 => 0xcdb27702eaa06eae;
    d19_k2_c2: 19 30 2 2 2 => 0xdd4e20af6d0fde7a;
}
