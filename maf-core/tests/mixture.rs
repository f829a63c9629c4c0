//! Format version 2 and the Gaussian-mixture base: the new header fields, the
//! loader's checks on them, the mixture's log density against an independent
//! float64 evaluation, and draws from the base.
// Matrix code indexes rows and columns as the formulas do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

mod common;

use common::{Rng, random_weights, shape};
use maf_core::blob::{self, AlignedBlob, Header, MAGIC, Window};
use maf_core::{Activation, Base, Covariance, Error, Maf, MafView, Shape, crc32};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

// ---------------------------------------------------------------------------
// A random valid mixture, kept in float64 beside its stored (f32) base section.
// ---------------------------------------------------------------------------

/// A Gaussian mixture in float64 and the base section that stores it.
struct Mixture {
    covariance: Covariance,
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    covs: Vec<Vec<Vec<f64>>>,
    /// `cholesky(cov)`, to check a draw `u = m + L eps`.
    chols: Vec<Vec<Vec<f64>>>,
    section: Vec<f32>,
}

impl Mixture {
    fn base(&self) -> Base {
        Base::Mixture {
            components: self.weights.len(),
            covariance: self.covariance,
        }
    }
}

fn cholesky(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            l[i][j] = if i == j {
                (a[i][i] - s).sqrt()
            } else {
                (a[i][j] - s) / l[j][j]
            };
        }
    }
    l
}

/// The inverse of a lower-triangular matrix (again lower triangular).
fn invert_lower(l: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = l.len();
    let mut w = vec![vec![0.0; n]; n];
    for col in 0..n {
        for i in col..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let s: f64 = (col..i).map(|k| l[i][k] * w[k][col]).sum();
            w[i][col] = (rhs - s) / l[i][i];
        }
    }
    w
}

/// Inverse and log-determinant of an SPD matrix by Gauss-Jordan elimination with
/// partial pivoting (independent of the Cholesky factor the blob stores).
fn inverse_and_log_det(a: &[Vec<f64>]) -> (Vec<Vec<f64>>, f64) {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    let mut log_det = 0.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        let p = m[col][col];
        log_det += p.abs().ln();
        for v in &mut m[col] {
            *v /= p;
        }
        for row in 0..n {
            if row != col {
                let f = m[row][col];
                let pivot_row = m[col].clone();
                for (v, pv) in m[row].iter_mut().zip(&pivot_row) {
                    *v -= f * pv;
                }
            }
        }
    }
    (m.into_iter().map(|r| r[n..].to_vec()).collect(), log_det)
}

/// A random mixture: weights summing to 1, means in ±2, covariances `A Aᵀ + 0.3 I`
/// (full) or `diag(σ²)` with σ in [0.3, 2] (diagonal). The stored factor is
/// `W = cholesky(cov)⁻¹` rounded to f32, and `c = ln w + Σ ln W_jj - (D/2) ln 2π`
/// from the rounded diagonal.
fn random_mixture(rng: &mut Rng, dim: usize, k: usize, covariance: Covariance) -> Mixture {
    let raw: Vec<f64> = (0..k).map(|_| rng.uniform(0.2, 1.0) as f64).collect();
    let total: f64 = raw.iter().sum();
    let weights: Vec<f64> = raw.iter().map(|v| v / total).collect();
    let mut mix = Mixture {
        covariance,
        weights,
        means: vec![],
        covs: vec![],
        chols: vec![],
        section: vec![],
    };
    for kk in 0..k {
        let mean: Vec<f64> = (0..dim).map(|_| rng.uniform(-2.0, 2.0) as f64).collect();
        let cov: Vec<Vec<f64>> = match covariance {
            Covariance::Full => {
                let a: Vec<Vec<f64>> = (0..dim)
                    .map(|_| (0..dim).map(|_| rng.uniform(-0.8, 0.8) as f64).collect())
                    .collect();
                (0..dim)
                    .map(|i| {
                        (0..dim)
                            .map(|j| {
                                let s: f64 = (0..dim).map(|t| a[i][t] * a[j][t]).sum();
                                s + if i == j { 0.3 } else { 0.0 }
                            })
                            .collect()
                    })
                    .collect()
            }
            Covariance::Diagonal => {
                let sd: Vec<f64> = (0..dim).map(|_| rng.uniform(0.3, 2.0) as f64).collect();
                (0..dim)
                    .map(|i| {
                        (0..dim)
                            .map(|j| if i == j { sd[i] * sd[i] } else { 0.0 })
                            .collect()
                    })
                    .collect()
            }
        };
        let l = cholesky(&cov);
        let w = invert_lower(&l);
        let stored = |v: f64| v as f32;
        let log_diag: f64 = (0..dim).map(|j| (stored(w[j][j]) as f64).ln()).sum();
        let c = mix.weights[kk].ln() + log_diag - 0.5 * dim as f64 * LN_2PI;
        mix.section.push(c as f32);
        mix.section.extend(mean.iter().map(|&v| v as f32));
        match covariance {
            Covariance::Full => {
                for (j, row) in w.iter().enumerate() {
                    mix.section.extend(row[..=j].iter().map(|&v| stored(v)));
                }
            }
            Covariance::Diagonal => mix.section.extend((0..dim).map(|j| stored(w[j][j]))),
        }
        mix.means.push(mean);
        mix.covs.push(cov);
        mix.chols.push(l);
    }
    assert_eq!(mix.section.len(), mix.base().weight_count(dim));
    mix
}

/// The mixture's log density in float64, from the covariances (inverted by
/// elimination) and a max-shifted log-sum-exp.
fn mixture_log_density(mix: &Mixture, u: &[f32]) -> f64 {
    let dim = u.len();
    let terms: Vec<f64> = (0..mix.weights.len())
        .map(|k| {
            let (prec, log_det) = inverse_and_log_det(&mix.covs[k]);
            let d: Vec<f64> = (0..dim).map(|i| u[i] as f64 - mix.means[k][i]).collect();
            let maha: f64 = (0..dim)
                .map(|i| (0..dim).map(|j| d[i] * prec[i][j] * d[j]).sum::<f64>())
                .sum();
            mix.weights[k].ln() - 0.5 * maha - 0.5 * log_det - 0.5 * dim as f64 * LN_2PI
        })
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

fn header(s: Shape, base: Base) -> Header<'static> {
    Header {
        base,
        ..Header::new(s, Activation::Tanh)
    }
}

fn flow_and_base(s: &Shape, mix: &Mixture, seed: u64) -> Vec<f32> {
    let mut w = random_weights(s, 0.4, seed);
    w.extend_from_slice(&mix.section);
    w
}

fn write(h: &Header<'_>, w: &[f32]) -> AlignedBlob {
    AlignedBlob::new(&blob::write(h, w).unwrap())
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    let aligned = AlignedBlob::new(bytes);
    MafView::from_blob(aligned.as_bytes()).map(|_| ())
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/golden/golden_{name}.maf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

fn vector(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi)).collect()
}

/// A standard normal value (Box-Muller on two 53-bit uniforms).
fn normal(rng: &mut Rng) -> f64 {
    let a = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let b = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

const BOTH: [Covariance; 2] = [Covariance::Full, Covariance::Diagonal];

// ---------------------------------------------------------------------------
// The version-2 header: round trip, corruption, precise errors.
// ---------------------------------------------------------------------------

#[test]
fn round_trip_keeps_every_version_2_header_field() {
    for (i, covariance) in BOTH.into_iter().enumerate() {
        let s = shape(3, 1, 6, 2, 2, true);
        let mix = random_mixture(&mut Rng(7 + i as u64), 3, 4, covariance);
        let weights = flow_and_base(&s, &mix, 3);
        let h = Header {
            shape: s,
            activation: Activation::Relu,
            base: mix.base(),
            threshold: Some(-9.75),
            window: Window {
                len: 65536,
                threshold: Some(-4.5),
                median: Some(-1.25),
            },
            columns: "temp °C\nrpm\nvibration\nmode",
            metadata: "epochs=3\nbase=gmm",
        };
        let bytes = blob::write(&h, &weights).unwrap();
        let aligned = AlignedBlob::new(&bytes);
        let parsed = blob::parse(aligned.as_bytes()).unwrap();
        assert_eq!(parsed.version, 2);
        assert_eq!(parsed.header, h);
        assert_eq!(parsed.weights, &weights[..]);
        assert_eq!(parsed.base_weights(), &mix.section[..]);
        assert_eq!(parsed.flow_weights().len(), s.weight_count());
        assert_eq!(
            parsed.header.column_names().collect::<Vec<_>>(),
            ["temp °C", "rpm", "vibration", "mode"]
        );
        // The weights sit 4-aligned, right before the CRC.
        let offset = parsed.weights.as_ptr() as usize - aligned.as_bytes().as_ptr() as usize;
        assert_eq!(offset % 4, 0);
        assert_eq!(bytes.len(), offset + 4 * weights.len() + 4);
        // The field bytes the format document lists, at their places.
        let kind = if covariance == Covariance::Full { 1 } else { 2 };
        assert_eq!(
            bytes[MAGIC.len()..MAGIC.len() + 10],
            [2, 3, 1, 6, 2, 2, 1, 0, kind, 4]
        );
        let view = MafView::from_blob(aligned.as_bytes()).unwrap();
        assert_eq!(view.version(), 2);
        assert_eq!(view.base(), mix.base());
        assert_eq!(view.base_weights(), &mix.section[..]);
        // And an unnamed, per-vector model.
        let plain = Header {
            window: Window::PER_VECTOR,
            columns: "",
            threshold: None,
            metadata: "",
            ..h
        };
        let again = write(&plain, &weights);
        let parsed = blob::parse(again.as_bytes()).unwrap();
        assert_eq!(parsed.header, plain);
        assert_eq!(parsed.header.column_names().count(), 0);
    }
}

#[test]
fn write_v1_refuses_what_version_1_cannot_describe() {
    let s = shape(2, 0, 4, 1, 1, false);
    let mix = random_mixture(&mut Rng(1), 2, 2, Covariance::Full);
    let h = header(s, mix.base());
    assert!(matches!(
        blob::write_v1(&h, &flow_and_base(&s, &mix, 1)),
        Err(Error::InvalidHeader(_))
    ));
    let w = random_weights(&s, 0.4, 1);
    let plain = header(s, Base::StandardNormal);
    for bad in [
        Header {
            window: Window {
                len: 8,
                threshold: None,
                median: None,
            },
            ..plain
        },
        Header {
            window: Window {
                len: 1,
                threshold: Some(-3.0),
                median: None,
            },
            ..plain
        },
        Header {
            columns: "a\nb",
            ..plain
        },
    ] {
        assert!(matches!(
            blob::write_v1(&bad, &w),
            Err(Error::InvalidHeader(_))
        ));
        // Version 2 stores them.
        assert_eq!(blob::parse(write(&bad, &w).as_bytes()).unwrap().header, bad);
    }
    let v1 = AlignedBlob::new(&blob::write_v1(&plain, &w).unwrap());
    let parsed = blob::parse(v1.as_bytes()).unwrap();
    assert_eq!((parsed.version, parsed.header), (1, plain));
}

#[test]
fn every_single_byte_corruption_of_a_mixture_blob_is_an_error() {
    let good = golden("d");
    assert!(parse(&good).is_ok());
    for i in 0..good.len() {
        for flip in 1..=255u8 {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(parse(&bad).is_err(), "d: byte {i} ^ {flip:#04x} accepted");
        }
    }
    for name in ["e", "f"] {
        let good = golden(name);
        assert!(parse(&good).is_ok());
        for i in 0..good.len() {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                assert!(
                    parse(&bad).is_err(),
                    "{name}: byte {i} ^ {flip:#04x} accepted"
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_a_mixture_blob_is_an_error() {
    for name in ["d", "e", "f"] {
        let good = golden(name);
        for n in 0..good.len() {
            let aligned = AlignedBlob::new(&good[..n]);
            assert!(
                blob::parse(aligned.as_bytes()).is_err(),
                "{name}: {n} bytes accepted"
            );
            assert!(
                blob::parse_region(aligned.as_bytes()).is_err(),
                "{name}: region of {n} bytes accepted"
            );
        }
    }
}

/// Offsets of the version-2 header fields in the blob `precise_errors` edits:
/// D = 3, C = 1, H = 5, K = 1, L = 2 (one byte each), a threshold, a window of
/// 16 (one byte) with a threshold and a median, the columns `COLUMNS`.
mod at {
    pub const BASE: usize = 16;
    pub const COMPONENTS: usize = 17;
    pub const WINDOW: usize = 23;
    pub const WINDOW_RULE: usize = 24;
    pub const WINDOW_THRESHOLD: usize = 26; // after its `01` tag
    pub const WINDOW_MEDIAN: usize = 31; // after its `01` tag
    pub const COLUMNS: usize = 36; // after its one-byte length
}
const COLUMNS: &str = "ab\ncd\nef\ngh";

fn precise_errors_blob(covariance: Covariance) -> (Header<'static>, Vec<f32>, Vec<u8>) {
    let s = shape(3, 1, 5, 1, 2, true);
    let mix = random_mixture(&mut Rng(5), 3, 3, covariance);
    let w = flow_and_base(&s, &mix, 5);
    let h = Header {
        shape: s,
        activation: Activation::Relu,
        base: mix.base(),
        threshold: Some(-7.0),
        window: Window {
            len: 16,
            threshold: Some(-2.5),
            median: Some(-1.5),
        },
        columns: COLUMNS,
        metadata: "m",
    };
    let bytes = blob::write(&h, &w).unwrap();
    // The offsets above are where the format document puts the fields.
    let kind = if covariance == Covariance::Full { 1 } else { 2 };
    assert_eq!(bytes[at::BASE], kind);
    assert_eq!(bytes[at::COMPONENTS], 3);
    assert_eq!(bytes[at::COMPONENTS + 1], 1);
    assert_eq!(bytes[at::WINDOW..at::WINDOW_THRESHOLD], [16, 0, 1]);
    assert_eq!(
        bytes[at::WINDOW_THRESHOLD..at::WINDOW_THRESHOLD + 4],
        (-2.5f32).to_le_bytes()
    );
    assert_eq!(bytes[at::WINDOW_MEDIAN - 1], 1);
    assert_eq!(
        bytes[at::WINDOW_MEDIAN..at::WINDOW_MEDIAN + 4],
        (-1.5f32).to_le_bytes()
    );
    assert_eq!(bytes[at::COLUMNS - 1] as usize, COLUMNS.len());
    assert_eq!(
        &bytes[at::COLUMNS..at::COLUMNS + COLUMNS.len()],
        COLUMNS.as_bytes()
    );
    (h, w, bytes)
}

/// `good` with bytes at `offset` replaced and the CRC made consistent again.
fn edited(good: &[u8], offset: usize, new: &[u8]) -> Vec<u8> {
    let mut bad = good.to_vec();
    bad[offset..offset + new.len()].copy_from_slice(new);
    fix_crc(&mut bad);
    bad
}

#[test]
fn precise_errors_of_the_version_2_header() {
    for covariance in BOTH {
        let (h, w, good) = precise_errors_blob(covariance);
        assert!(parse(&good).is_ok());
        // Base kind.
        for kind in [3u8, 0x80, 0xFF] {
            assert_eq!(
                parse(&edited(&good, at::BASE, &[kind])),
                Err(Error::Malformed("base"))
            );
        }
        // Component counts: 0, 65 for a mixture, anything but 0 for the normal.
        for (kind, n) in [(1u8, 0u8), (2, 0), (1, 65), (2, 65), (0, 3), (0, 1)] {
            assert_eq!(
                parse(&edited(&good, at::BASE, &[kind, n])),
                Err(Error::ShapeOutOfRange {
                    what: "components",
                    found: n as usize
                }),
                "kind {kind} components {n}"
            );
        }
        // 64 components parse; the weight count then disagrees.
        assert!(matches!(
            parse(&edited(&good, at::COMPONENTS, &[64])),
            Err(Error::WeightCount { .. })
        ));
        // The writer refuses the same component counts, with the same errors.
        for n in [0, 65] {
            let bad = Header {
                base: Base::Mixture {
                    components: n,
                    covariance,
                },
                ..h
            };
            let mut w = w[..h.shape.weight_count()].to_vec();
            w.resize(bad.weight_count(), 1.0);
            assert_eq!(
                blob::write(&bad, &w).unwrap_err(),
                Error::ShapeOutOfRange {
                    what: "components",
                    found: n
                }
            );
        }
        // Columns: wrong count, an empty name, a repeated name.
        let cases = [
            ("ab_cd\nef\ngh", "columns (not one name per input column)"),
            ("ab\ncd\nef\ng\n", "columns (not one name per input column)"),
            ("abcd\n\nef\ngh", "columns (an empty name)"),
            ("\nabcd\nef\ngh", "columns (an empty name)"),
            ("ab\ncd\nab\ngh", "columns (a repeated name)"),
            ("ab\ncd\nef\ncd", "columns (a repeated name)"),
        ];
        for (columns, what) in cases {
            assert_eq!(columns.len(), COLUMNS.len());
            assert_eq!(
                parse(&edited(&good, at::COLUMNS, columns.as_bytes())),
                Err(Error::Malformed(what)),
                "{columns:?}"
            );
            // The writer runs the loader's check.
            assert_eq!(
                blob::write(&Header { columns, ..h }, &w).unwrap_err(),
                Error::Malformed(what),
                "{columns:?}"
            );
        }
        for columns in ["ab\ncd\nef", "a\nb\nc\nd\ne", "a"] {
            assert_eq!(
                blob::write(&Header { columns, ..h }, &w).unwrap_err(),
                Error::Malformed("columns (not one name per input column)")
            );
        }
        // Not UTF-8.
        assert_eq!(
            parse(&edited(&good, at::COLUMNS, &[0xFF])),
            Err(Error::Malformed("columns"))
        );
        // Too long (the writer refuses, the loader too).
        let long = format!("{}\nb\nc\nd", "a".repeat(16384));
        assert!(matches!(
            blob::write(
                &Header {
                    columns: &long,
                    ..h
                },
                &w
            ),
            Err(Error::InvalidHeader(_))
        ));
        assert_eq!(
            parse(&with_columns(&good, &long)),
            Err(Error::Malformed("columns (longer than 16384 bytes)"))
        );
        let longest = format!("{}\nb\nc\nd", "a".repeat(16384 - 6));
        assert_eq!(longest.len(), 16384);
        assert!(parse(&with_columns(&good, &longest)).is_ok());
        assert!(parse(&with_columns(&good, "")).is_ok());
        // Window: 0 and 65537 refused (the writer refuses them too), 65536 loads.
        assert_eq!(
            parse(&edited(&good, at::WINDOW, &[0])),
            Err(Error::Malformed("window (not in 1..=65536)"))
        );
        // The writer refuses a header with this window.
        let refused = |window: Window| {
            matches!(
                blob::write(&Header { window, ..h }, &w),
                Err(Error::InvalidHeader(_))
            )
        };
        for len in [0, 65537, u32::MAX] {
            assert!(refused(Window {
                len,
                threshold: None,
                median: None,
            }));
            assert_eq!(
                parse(&with_window(&good, len)),
                Err(Error::Malformed("window (not in 1..=65536)")),
                "window {len}"
            );
        }
        assert!(parse(&with_window(&good, 65536)).is_ok());
        assert!(parse(&with_window(&good, 1)).is_ok());
        // Window rule: only 0.
        for rule in [1u8, 2, 0xFF] {
            assert_eq!(
                parse(&edited(&good, at::WINDOW_RULE, &[rule])),
                Err(Error::Malformed("window_rule"))
            );
        }
        // Window threshold: finite only; a tag other than 00/01 does not parse.
        for t in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(
                parse(&edited(&good, at::WINDOW_THRESHOLD, &t.to_le_bytes())),
                Err(Error::Malformed("window_threshold (not finite)"))
            );
            assert!(refused(Window {
                len: 16,
                threshold: Some(t),
                median: None,
            }));
            assert_eq!(
                parse(&edited(&good, at::WINDOW_MEDIAN, &t.to_le_bytes())),
                Err(Error::Malformed("window_median (not finite)"))
            );
            assert!(refused(Window {
                len: 16,
                threshold: Some(-2.5),
                median: Some(t),
            }));
        }
        assert_eq!(
            parse(&edited(&good, at::WINDOW_THRESHOLD - 1, &[2])),
            Err(Error::Malformed("window_threshold"))
        );
        assert_eq!(
            parse(&edited(&good, at::WINDOW_MEDIAN - 1, &[2])),
            Err(Error::Malformed("window_median"))
        );
    }
}

/// Re-encodes `good` (the `precise_errors` blob) with other column names: the
/// columns field changes length, so the padding is worked out again.
fn with_columns(good: &[u8], columns: &str) -> Vec<u8> {
    let head = &good[..at::COLUMNS - 1];
    let mut out = head.to_vec();
    out.extend(varint(columns.len() as u32));
    out.extend_from_slice(columns.as_bytes());
    finish(out, &good[at::COLUMNS + COLUMNS.len()..])
}

/// Re-encodes `good` (the `precise_errors` blob) with another window length.
fn with_window(good: &[u8], len: u32) -> Vec<u8> {
    let mut out = good[..at::WINDOW].to_vec();
    out.extend(varint(len));
    out.extend_from_slice(&good[at::WINDOW + 1..at::COLUMNS + COLUMNS.len()]);
    finish(out, &good[at::COLUMNS + COLUMNS.len()..])
}

/// Appends the metadata, padding, weights (taken from `tail`, which starts at the
/// metadata field of a written blob) and CRC to `out`.
fn finish(mut out: Vec<u8>, tail: &[u8]) -> Vec<u8> {
    let meta_len = tail[0] as usize; // short metadata: one-byte length
    out.extend_from_slice(&tail[..1 + meta_len]);
    let pad = tail[1 + meta_len] as usize;
    let rest = &tail[2 + meta_len + pad..tail.len() - 4]; // weights' length + bytes
    let prefix_len = rest.iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let pad = (4 - (out.len() + 1 + prefix_len) % 4) % 4;
    out.push(pad as u8);
    out.extend(std::iter::repeat_n(0u8, pad));
    out.extend_from_slice(rest);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn varint(mut v: u32) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        out.push(b | if v != 0 { 0x80 } else { 0 });
        if v == 0 {
            return out;
        }
    }
}

#[test]
fn mixture_weights_must_sum_to_one() {
    const NOT_ONE: Error = Error::Malformed("base (mixture weights do not sum to 1)");
    for covariance in BOTH {
        let (h, w, good) = precise_errors_blob(covariance);
        let flow = h.shape.weight_count();
        let len = h.base.component_len(h.shape.dim);
        let aligned = AlignedBlob::new(&good);
        let start = blob::parse(aligned.as_bytes()).unwrap().weights.as_ptr() as usize
            - aligned.as_bytes().as_ptr() as usize;
        // `w` with every component weight multiplied by `factor[k]` (c_k += ln).
        let scaled = |factor: &[f64]| -> Vec<f32> {
            let mut out = w.clone();
            for (k, f) in factor.iter().enumerate() {
                let c = &mut out[flow + k * len];
                *c = (*c as f64 + f.ln()) as f32;
            }
            out
        };
        // All weights scaled by one factor: the sum moves by that factor. Within
        // 1e-3 of 1 loads; beyond, the writer and the loader refuse.
        for (factor, ok) in [
            (1.0008f64, true),
            (0.9992, true),
            (1.0012, false),
            (0.9988, false),
            (2.0, false),
            (1e-30, false),
        ] {
            let bad = scaled(&[factor; 3]);
            match blob::write(&h, &bad) {
                Ok(_) => assert!(ok, "{factor} accepted"),
                Err(e) => {
                    assert!(!ok, "{factor} refused: {e}");
                    assert_eq!(e, NOT_ONE, "{factor}");
                }
            }
            // The loader, on the good blob with its weights edited.
            let mut bytes = good.clone();
            for (i, v) in bad.iter().enumerate() {
                bytes[start + 4 * i..start + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
            fix_crc(&mut bytes);
            assert_eq!(parse(&bytes).is_ok(), ok, "{factor}");
            if !ok {
                assert_eq!(parse(&bytes), Err(NOT_ONE), "{factor}");
            }
        }
        // Weight moved from one component to another keeps the sum: loads. It is
        // the sum that is checked, not each weight.
        let (w0, w1) = (
            implied_weight(&w, flow, len, 0, h.shape.dim, covariance),
            implied_weight(&w, flow, len, 1, h.shape.dim, covariance),
        );
        let delta = 0.5 * w0;
        assert!(blob::write(&h, &scaled(&[(w0 - delta) / w0, (w1 + delta) / w1, 1.0])).is_ok());
        assert_eq!(
            blob::write(&h, &scaled(&[(w0 - delta) / w0, 1.0, 1.0])).unwrap_err(),
            NOT_ONE
        );
    }
}

/// The weight `exp(c_k - Σ_j ln W_kjj + (D/2) ln 2π)` a stored component implies.
fn implied_weight(
    w: &[f32],
    flow: usize,
    len: usize,
    k: usize,
    dim: usize,
    covariance: Covariance,
) -> f64 {
    let comp = &w[flow + k * len..flow + (k + 1) * len];
    let log_det: f64 = (0..dim)
        .map(|j| {
            let at = match covariance {
                Covariance::Full => j * (j + 1) / 2 + j,
                Covariance::Diagonal => j,
            };
            (comp[1 + dim + at] as f64).ln()
        })
        .sum();
    (comp[0] as f64 - log_det + 0.5 * dim as f64 * LN_2PI).exp()
}

#[test]
fn factor_diagonals_must_be_positive() {
    for covariance in BOTH {
        let (h, w, _) = precise_errors_blob(covariance);
        let dim = h.shape.dim;
        let flow = h.shape.weight_count();
        let len = h.base.component_len(dim);
        for k in 0..h.base.components() {
            for j in 0..dim {
                let at = match covariance {
                    Covariance::Full => j * (j + 1) / 2 + j,
                    Covariance::Diagonal => j,
                };
                let index = flow + k * len + 1 + dim + at;
                for v in [0.0f32, -0.0, -0.25, -1e30] {
                    let mut bad = w.clone();
                    bad[index] = v;
                    assert_eq!(
                        blob::write(&h, &bad).unwrap_err(),
                        Error::InvalidWeight { index },
                        "k {k} j {j} value {v}"
                    );
                }
                // Non-finite anywhere in the base section, too.
                let mut bad = w.clone();
                bad[flow + k * len + j] = f32::NAN;
                assert_eq!(
                    blob::write(&h, &bad).unwrap_err(),
                    Error::InvalidWeight {
                        index: flow + k * len + j
                    }
                );
            }
        }
        // Off-diagonal factor entries and means of any sign load.
        let mut w2 = w.clone();
        if covariance == Covariance::Full {
            w2[flow + 1 + dim + 1] = -3.0; // W_0[1][0]
        }
        w2[flow + 1] = -100.0; // mean_0[0]
        assert!(blob::write(&h, &w2).is_ok());
    }
}

/// `layers = 0` (the base alone, on the standardised input) is a version-2
/// mixture model only.
#[test]
fn zero_layers_only_with_a_mixture_base() {
    let s = shape(2, 1, 4, 1, 0, false);
    let mix = random_mixture(&mut Rng(3), 2, 2, Covariance::Full);
    let w = flow_and_base(&s, &mix, 3);
    // No MADE: the standardisation alone, then the base section.
    assert_eq!(w.len(), 2 * s.dim + 2 * s.context + mix.section.len());
    let blob = write(&header(s, mix.base()), &w);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    assert_eq!(view.shape().layers, 0);
    let x = [0.7f32, -1.1];
    let mut scratch = vec![0.0; s.scratch_len()];
    let lp = view.log_prob(&x, &[0.2], &mut scratch).unwrap() as f64;
    let u: Vec<f32> = (0..2).map(|i| (x[i] - w[i]) * w[2 + i]).collect();
    let want =
        mixture_log_density(&mix, &u) + w[2..4].iter().map(|&v| (v as f64).ln()).sum::<f64>();
    assert!(
        (lp - want).abs() < 1e-4 * want.abs().max(1.0),
        "{lp} vs {want}"
    );
    let maf = Maf::<2, 4, 0, 1>::from_blob(blob.as_bytes()).unwrap();
    assert_eq!(
        maf.log_prob(&x, &[0.2]).unwrap().to_bits(),
        (lp as f32).to_bits()
    );
    // Without a MADE the hidden sizes are not part of the shape: any `H` and
    // `K` load the blob (the dimension and context still must match).
    let other = Maf::<2, 16, 0, 1, 2>::from_blob(blob.as_bytes()).unwrap();
    assert_eq!(
        other.log_prob(&x, &[0.2]).unwrap().to_bits(),
        (lp as f32).to_bits()
    );
    assert!(matches!(
        Maf::<3, 4, 0, 1>::from_blob(blob.as_bytes()),
        Err(Error::ShapeMismatch { what: "dim", .. })
    ));
    // Not with the standard normal, in either version.
    let plain = header(s, Base::StandardNormal);
    let wf = random_weights(&s, 0.4, 3);
    let out_of_range = Error::ShapeOutOfRange {
        what: "layers",
        found: 0,
    };
    assert_eq!(blob::write(&plain, &wf).unwrap_err(), out_of_range);
    assert_eq!(blob::write_v1(&plain, &wf).unwrap_err(), out_of_range);
}

// ---------------------------------------------------------------------------
// The mixture's log density.
// ---------------------------------------------------------------------------

/// Random models with a mixture base: every shape parameter, both covariances,
/// 1..=6 components, `layers = 0` included.
fn random_mixture_model(seed: u64) -> (Shape, Mixture, AlignedBlob) {
    let mut rng = Rng(seed);
    let pick = |rng: &mut Rng, n: usize| (rng.next_u64() % n as u64) as usize;
    let s = shape(
        1 + pick(&mut rng, 6),
        pick(&mut rng, 3),
        1 + pick(&mut rng, 12),
        1 + pick(&mut rng, 2),
        pick(&mut rng, 5),
        pick(&mut rng, 2) == 1,
    );
    let covariance = BOTH[pick(&mut rng, 2)];
    let components = 1 + pick(&mut rng, 6);
    let mix = random_mixture(&mut rng, s.dim, components, covariance);
    let act = if pick(&mut rng, 2) == 1 {
        Activation::Tanh
    } else {
        Activation::Relu
    };
    let h = Header {
        base: mix.base(),
        ..Header::new(s, act)
    };
    let blob = write(&h, &flow_and_base(&s, &mix, seed));
    (s, mix, blob)
}

/// `log_prob(x) = base_log_density(inverse(x)) + log_det`, bit for bit, and equal
/// to the float64 mixture density of `u` plus the log-determinant within 1e-4.
#[test]
fn log_prob_is_the_mixture_density_of_the_base_vector_plus_log_det() {
    let mut checked = 0;
    for seed in 0..300u64 {
        let (s, mix, blob) = random_mixture_model(seed);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut rng = Rng(seed ^ 0x77);
        let x = vector(&mut rng, s.dim, -3.0, 3.0);
        let c = vector(&mut rng, s.context, -2.0, 2.0);
        let mut scratch = vec![0.0; s.scratch_len()];
        let mut u = vec![0.0; s.dim];
        let log_det = view.inverse(&x, &c, &mut u, &mut scratch).unwrap();
        let lp = view.log_prob(&x, &c, &mut scratch).unwrap();
        let base = view.base_log_density(&u, &mut scratch[..s.dim]).unwrap();
        assert_eq!(
            (base + log_det).to_bits(),
            lp.to_bits(),
            "seed {seed}: {base} + {log_det} vs {lp}"
        );
        let want_base = mixture_log_density(&mix, &u);
        assert!(
            (base as f64 - want_base).abs() <= 1e-4 * want_base.abs().max(1.0),
            "seed {seed} {:?}: base {base} vs {want_base}",
            mix.base()
        );
        checked += 1;
    }
    assert_eq!(checked, 300);
}

/// The log-determinant still equals log|det J| of a central finite-difference
/// Jacobian of `x ↦ f⁻¹(x)` when the blob ends in a mixture base (tanh models).
#[test]
fn log_det_matches_finite_difference_jacobian_with_a_mixture_base() {
    for seed in 0..30u64 {
        let d = 1 + (seed as usize % 5);
        let s = shape(
            d,
            (seed % 2) as usize,
            6 + (seed as usize % 7),
            1 + (seed % 2) as usize,
            1 + (seed % 4) as usize,
            seed % 3 != 0,
        );
        let mix = random_mixture(
            &mut Rng(seed),
            d,
            1 + (seed as usize % 4),
            BOTH[seed as usize % 2],
        );
        let blob = write(&header(s, mix.base()), &flow_and_base(&s, &mix, seed));
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
        let (_, fd) = inverse_and_log_det(&jac);
        assert!(
            (fd - log_det).abs() < 1e-2,
            "seed {seed} shape {s:?}: log_det {log_det} vs finite differences {fd}"
        );
    }
}

/// One full-covariance component with `W = I`, `m = 0`, `c = -(D/2) ln 2π` is the
/// standard normal.
#[test]
fn one_identity_component_is_the_standard_normal() {
    for seed in 0..40u64 {
        let d = 1 + (seed as usize % 6);
        let s = shape(
            d,
            (seed % 3) as usize,
            3 + (seed as usize % 9),
            1 + (seed % 2) as usize,
            1 + (seed % 3) as usize,
            seed % 2 == 0,
        );
        let flow = random_weights(&s, 0.4, seed);
        let mut w = flow.clone();
        w.push((-0.5 * d as f64 * LN_2PI) as f32);
        w.extend(std::iter::repeat_n(0.0, d));
        for j in 0..d {
            for i in 0..=j {
                w.push(if i == j { 1.0 } else { 0.0 });
            }
        }
        let one = Base::Mixture {
            components: 1,
            covariance: Covariance::Full,
        };
        let mixture = write(&header(s, one), &w);
        let normal = write(&header(s, Base::StandardNormal), &flow);
        let mv = MafView::from_blob(mixture.as_bytes()).unwrap();
        let nv = MafView::from_blob(normal.as_bytes()).unwrap();
        let mut rng = Rng(seed + 1000);
        let mut scratch = vec![0.0; s.scratch_len()];
        for _ in 0..20 {
            let x = vector(&mut rng, d, -3.0, 3.0);
            let c = vector(&mut rng, s.context, -2.0, 2.0);
            let a = mv.log_prob(&x, &c, &mut scratch).unwrap();
            let b = nv.log_prob(&x, &c, &mut scratch).unwrap();
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "seed {seed}: mixture {a} vs standard normal {b}"
            );
        }
    }
}

/// The streaming log-sum-exp keeps a vector 40 standard deviations from every
/// component finite (and right), where `ln Σ expf(v_k)` is `-inf` in f32.
#[test]
fn far_vectors_keep_a_finite_mixture_density() {
    for covariance in BOTH {
        let d = 3;
        // Three unit-covariance components (σ = 1) around the origin.
        let mut mix = random_mixture(&mut Rng(11), d, 3, covariance);
        let means = [[0.0f32, 0.0, 0.0], [1.0, -1.0, 0.5], [-1.0, 0.5, 1.0]];
        let len = mix.base().component_len(d);
        for k in 0..3 {
            mix.means[k] = means[k].iter().map(|&v| v as f64).collect();
            mix.covs[k] = (0..d)
                .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
                .collect();
            let comp = &mut mix.section[k * len..(k + 1) * len];
            comp[0] = (mix.weights[k].ln() - 0.5 * d as f64 * LN_2PI) as f32;
            comp[1..1 + d].copy_from_slice(&means[k]);
            let factor = &mut comp[1 + d..];
            factor.fill(0.0);
            for j in 0..d {
                let at = match covariance {
                    Covariance::Full => j * (j + 1) / 2 + j,
                    Covariance::Diagonal => j,
                };
                factor[at] = 1.0;
            }
        }
        let s = shape(d, 0, 4, 1, 1, false);
        let blob = write(&header(s, mix.base()), &flow_and_base(&s, &mix, 1));
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut scratch = vec![0.0; d];
        for u in [
            [60.0f32, 0.0, 0.0],
            [-30.0, 50.0, -40.0],
            [45.0, 45.0, 45.0],
        ] {
            // At least 40 standard deviations from every mean.
            for m in &means {
                let dist: f32 = u.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum();
                assert!(dist.sqrt() >= 40.0);
            }
            let naive: f32 = (0..3)
                .map(|k| {
                    let sq: f32 = (0..d).map(|j| (u[j] - means[k][j]).powi(2)).sum();
                    (mix.section[k * len] - 0.5 * sq).exp()
                })
                .sum();
            assert_eq!(naive.ln(), f32::NEG_INFINITY);
            let got = view.base_log_density(&u, &mut scratch).unwrap();
            let want = mixture_log_density(&mix, &u);
            assert!(got.is_finite(), "{u:?}: {got}");
            assert!(
                (got as f64 - want).abs() <= 1e-5 * want.abs(),
                "{u:?}: {got} vs {want}"
            );
        }
    }
}

/// When the first component's `-½ |W (u - m)|²` overflows to `-inf` (a very
/// narrow component far from `u`), the streaming log-sum-exp must skip it, not
/// compute `expf(-inf - -inf)` = NaN (it did before this test).
#[test]
fn a_leading_component_at_minus_infinity_does_not_poison_the_sum() {
    let d = 1;
    // Component 0: σ = 1e-20 at m = 0; component 1: σ = 1 at m = 0; w = ½ each.
    let narrow = |w: f64| [(w.ln() + (1e20f64).ln() - 0.5 * LN_2PI) as f32, 0.0, 1e20];
    let wide = |w: f64| [(w.ln() - 0.5 * LN_2PI) as f32, 0.0, 1.0];
    let base = Base::Mixture {
        components: 2,
        covariance: Covariance::Diagonal,
    };
    let s = shape(d, 0, 2, 1, 1, false);
    let want = (0.5f64).ln() - 0.5 * LN_2PI - 0.5; // the wide component at u = 1
    for (first, second) in [(narrow(0.5), wide(0.5)), (wide(0.5), narrow(0.5))] {
        let mut w = random_weights(&s, 0.4, 1);
        w.extend_from_slice(&first);
        w.extend_from_slice(&second);
        let blob = write(&header(s, base), &w);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let got = view.base_log_density(&[1.0], &mut [0.0]).unwrap();
        assert!(
            (got as f64 - want).abs() < 1e-5,
            "components {first:?}, {second:?}: {got} vs {want}"
        );
    }
}

// ---------------------------------------------------------------------------
// Draws from the base.
// ---------------------------------------------------------------------------

/// 20,000 seeded draws: each is `m_k + L_k eps` for one component `k` (the one
/// `choice` picks by the cumulative weights), the component frequencies match the
/// weights, and each component's empirical mean and covariance match it, all
/// within 5 standard errors.
#[test]
fn draws_follow_the_mixture() {
    for (seed, covariance, d, k) in [
        (21u64, Covariance::Full, 3, 3),
        (22, Covariance::Diagonal, 2, 2),
        (23, Covariance::Full, 4, 5),
    ] {
        let mix = random_mixture(&mut Rng(seed), d, k, covariance);
        let s = shape(d, 0, 4, 1, 1, true);
        let blob = write(&header(s, mix.base()), &flow_and_base(&s, &mix, seed));
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let n = 20_000;
        let mut rng = Rng(seed * 1000);
        let mut count = vec![0usize; k];
        let mut sum = vec![vec![0.0f64; d]; k];
        let mut sum2 = vec![vec![vec![0.0f64; d]; d]; k];
        let mut u = vec![0.0f32; d];
        for _ in 0..n {
            let choice = rng.uniform(0.0, 1.0);
            let eps: Vec<f32> = (0..d).map(|_| normal(&mut rng) as f32).collect();
            view.draw_base(choice, &eps, &mut u).unwrap();
            // Which component made it: u = m_k + L_k eps.
            let residual = |c: usize| -> f64 {
                (0..d)
                    .map(|i| {
                        let le: f64 = (0..=i).map(|j| mix.chols[c][i][j] * eps[j] as f64).sum();
                        (u[i] as f64 - mix.means[c][i] - le).abs()
                    })
                    .fold(0.0, f64::max)
            };
            let c = (0..k)
                .min_by(|&a, &b| residual(a).total_cmp(&residual(b)))
                .unwrap();
            assert!(
                residual(c) < 1e-4 * (1.0 + u.iter().map(|v| v.abs()).fold(0.0, f32::max)) as f64,
                "u {u:?} eps {eps:?}"
            );
            // The component the cumulative weights give for `choice` (draws within
            // 1e-5 of a boundary may round either way).
            let mut cum = 0.0;
            let by_choice = (0..k)
                .find(|&j| {
                    cum += mix.weights[j];
                    (choice as f64) < cum
                })
                .unwrap_or(k - 1);
            let mut edge = 0.0;
            let near_edge = mix.weights.iter().any(|w| {
                edge += w;
                (choice as f64 - edge).abs() < 1e-5
            });
            assert!(
                c == by_choice || near_edge,
                "choice {choice}: component {c}, cumulative weights give {by_choice}"
            );
            count[c] += 1;
            for i in 0..d {
                sum[c][i] += u[i] as f64;
                for j in 0..d {
                    sum2[c][i][j] += u[i] as f64 * u[j] as f64;
                }
            }
        }
        for c in 0..k {
            let w = mix.weights[c];
            let freq = count[c] as f64 / n as f64;
            let se = (w * (1.0 - w) / n as f64).sqrt();
            assert!(
                (freq - w).abs() < 5.0 * se,
                "seed {seed} component {c}: frequency {freq} vs weight {w}"
            );
            let m = count[c] as f64;
            let mean: Vec<f64> = sum[c].iter().map(|v| v / m).collect();
            let cov = &mix.covs[c];
            for i in 0..d {
                let se = (cov[i][i] / m).sqrt();
                assert!(
                    (mean[i] - mix.means[c][i]).abs() < 5.0 * se,
                    "seed {seed} component {c}: mean[{i}] {} vs {}",
                    mean[i],
                    mix.means[c][i]
                );
                for j in 0..d {
                    let emp = sum2[c][i][j] / m - mean[i] * mean[j];
                    let se = ((cov[i][i] * cov[j][j] + cov[i][j] * cov[i][j]) / m).sqrt();
                    assert!(
                        (emp - cov[i][j]).abs() < 5.0 * se,
                        "seed {seed} component {c}: cov[{i}][{j}] {emp} vs {}",
                        cov[i][j]
                    );
                }
            }
        }
    }
}

/// `choice` picks components by the cumulative weights; 1.0 and above (and NaN)
/// fall to the last component; the standard normal base returns `eps` itself.
#[test]
fn choice_picks_components_by_cumulative_weight() {
    let d = 2;
    let mix = random_mixture(&mut Rng(31), d, 3, Covariance::Diagonal);
    let s = shape(d, 0, 3, 1, 1, false);
    let blob = write(&header(s, mix.base()), &flow_and_base(&s, &mix, 31));
    let maf = Maf::<2, 3, 1>::from_blob(blob.as_bytes()).unwrap();
    let eps = [0.0f32, 0.0];
    let mean = |k: usize| [mix.means[k][0] as f32, mix.means[k][1] as f32];
    let (w0, w1) = (mix.weights[0] as f32, mix.weights[1] as f32);
    for (choice, k) in [
        (0.0, 0),
        (w0 * 0.999, 0),
        (w0 * 1.001, 1),
        ((w0 + w1) * 0.999, 1),
        ((w0 + w1) * 1.001, 2),
        (0.999_999, 2),
        (1.0, 2),
        (7.0, 2),
        (f32::NAN, 2),
        (-1.0, 0),
    ] {
        assert_eq!(
            maf.draw_base(choice, &eps).unwrap(),
            mean(k),
            "choice {choice}"
        );
    }
    // u = m + σ eps for a diagonal component.
    let sd: Vec<f64> = (0..d).map(|j| mix.covs[0][j][j].sqrt()).collect();
    let u = maf.draw_base(0.0, &[1.5, -2.0]).unwrap();
    for j in 0..d {
        let want = mix.means[0][j] + sd[j] * [1.5, -2.0][j];
        assert!((u[j] as f64 - want).abs() < 1e-5, "{u:?}");
    }
    // The standard normal base.
    let normal = write(
        &header(s, Base::StandardNormal),
        &random_weights(&s, 0.4, 1),
    );
    let nv = MafView::from_blob(normal.as_bytes()).unwrap();
    let mut u = [0.0f32; 2];
    nv.draw_base(0.5, &[0.25, -3.0], &mut u).unwrap();
    assert_eq!(u, [0.25, -3.0]);
    // Errors.
    let view = maf.view();
    assert_eq!(
        view.draw_base(0.5, &[0.0], &mut [0.0; 2]),
        Err(Error::LengthMismatch {
            what: "normal draws",
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        view.draw_base(0.5, &[0.0; 2], &mut [0.0; 3]),
        Err(Error::LengthMismatch {
            what: "base vector",
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        maf.draw_base(0.5, &[0.0, f32::INFINITY]),
        Err(Error::NonFiniteInput { index: 1 })
    );
}

/// `sample(draw_base(...))` comes back through `inverse` to the drawn base vector.
#[test]
fn sampled_draws_map_back_to_their_base_vectors() {
    let mut checked = 0;
    for seed in 0..60u64 {
        let (s, _, blob) = random_mixture_model(seed + 500);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let mut rng = Rng(seed);
        let mut scratch = vec![0.0; s.scratch_len()];
        for _ in 0..20 {
            let choice = rng.uniform(0.0, 1.0);
            let eps: Vec<f32> = (0..s.dim).map(|_| normal(&mut rng) as f32).collect();
            let c = vector(&mut rng, s.context, -2.0, 2.0);
            let mut u = vec![0.0; s.dim];
            view.draw_base(choice, &eps, &mut u).unwrap();
            let mut x = vec![0.0; s.dim];
            view.sample(&u, &c, &mut x, &mut scratch).unwrap();
            let mut back = vec![0.0; s.dim];
            view.inverse(&x, &c, &mut back, &mut scratch).unwrap();
            // A random flow can squeeze some base vectors into a region where its
            // inverse is ill-conditioned in f32; skip those as properties.rs does.
            if x.iter().any(|v| v.abs() > 1e3) {
                continue;
            }
            for (a, b) in u.iter().zip(&back) {
                assert!(
                    (a - b).abs() < 1e-4 * (1.0 + a.abs()),
                    "seed {seed}: {u:?} -> {x:?} -> {back:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked}");
}

/// The worked size example of `docs/blob-format.md` ("Weight count").
#[test]
fn documented_sizes() {
    let s = Shape::REFERENCE;
    assert_eq!(s.weight_count(), 4351);
    for (covariance, weights, bytes) in [
        (Covariance::Full, 4531, 18_164),
        (Covariance::Diagonal, 4419, 17_716),
    ] {
        let mix = random_mixture(&mut Rng(41), s.dim, 4, covariance);
        let h = Header {
            threshold: Some(-20.0),
            ..header(s, mix.base())
        };
        assert_eq!(h.weight_count(), weights);
        let blob = blob::write(&h, &flow_and_base(&s, &mix, 41)).unwrap();
        assert_eq!(blob.len(), bytes, "{covariance:?}");
        // 29 header bytes, padding `03 00 00 00`, the weight length prefix, the
        // weights.
        let prefix = &blob[33..36];
        assert_eq!(blob[29..33], [3, 0, 0, 0]);
        assert_eq!(prefix, varint(4 * weights as u32).as_slice());
        if covariance == Covariance::Full {
            assert_eq!(prefix, [0xCC, 0x8D, 0x01]);
        }
    }
}
