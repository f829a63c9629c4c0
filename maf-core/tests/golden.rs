//! Golden values: log densities and base vectors computed by `golden/golden.py`, an
//! independent float64 implementation of the reference code's masks (unsorted
//! hidden degrees, dense masked matrices), packed with the Python writers of
//! `docs/blob-format.md`. Models a, b, c are format version 1 (standard normal
//! base); d, e, f are version 2 with a Gaussian-mixture base (d: full covariance,
//! K = 3, batch norm; e: diagonal, K = 2, context; f: full, K = 2, two hidden
//! layers), whose reference density is scipy's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use maf_core::blob::{AlignedBlob, Window};
use maf_core::{Activation, Base, Covariance, Maf, MafView};

/// f32 evaluation against the float64 reference: relative error bound.
const TOL: f64 = 2e-5;

fn load(name: &str) -> AlignedBlob {
    let path = format!(
        "{}/tests/golden/golden_{name}.maf",
        env!("CARGO_MANIFEST_DIR")
    );
    AlignedBlob::new(&std::fs::read(path).unwrap())
}

fn floats(s: &str) -> Vec<f32> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<f64>().unwrap() as f32)
        .collect()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= TOL * want.abs().max(1.0)
}

#[test]
fn golden_log_densities_and_base_vectors() {
    let text = include_str!("golden/golden.txt");
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('|').collect();
        let blob = load(f[0]);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let (x, c, want_lp, want_u) = (
            floats(f[1]),
            floats(f[2]),
            f[3].parse::<f64>().unwrap(),
            floats(f[4]),
        );
        let mut scratch = vec![0.0; view.shape().scratch_len()];
        let lp = view.log_prob(&x, &c, &mut scratch).unwrap();
        assert!(
            close(lp as f64, want_lp),
            "{line}: log_prob {lp} vs {want_lp}"
        );
        let mut u = vec![0.0; x.len()];
        view.inverse(&x, &c, &mut u, &mut scratch).unwrap();
        for (g, w) in u.iter().zip(&want_u) {
            assert!(close(*g as f64, *w as f64), "{line}: u {u:?} vs {want_u:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, 24);
}

#[test]
fn golden_headers() {
    let blob = load("b");
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let h = view.header();
    assert_eq!(
        (
            h.shape.dim,
            h.shape.context,
            h.shape.hidden,
            h.shape.hidden_layers,
            h.shape.layers
        ),
        (4, 2, 7, 2, 3)
    );
    assert!(h.shape.batch_norm);
    assert_eq!(h.activation, Activation::Tanh);
    assert_eq!(h.threshold, Some(-6.5));
    assert_eq!(h.metadata, "golden model b");
    assert_eq!(view.blob_len(), blob.as_bytes().len());
    assert_eq!(view.version(), 1);
    assert_eq!(h.base, Base::StandardNormal);
    assert_eq!(h.window, Window::PER_VECTOR);
    assert_eq!(h.column_names().count(), 0);
}

#[test]
fn golden_v2_headers() {
    let cases: [(&str, Base, Window, &[&str]); 3] = [
        (
            "d",
            Base::Mixture {
                components: 3,
                covariance: Covariance::Full,
            },
            Window {
                len: 16,
                threshold: Some(-5.25),
                median: Some(-2.5),
            },
            &["temp", "humidity", "pressure"],
        ),
        (
            "e",
            Base::Mixture {
                components: 2,
                covariance: Covariance::Diagonal,
            },
            Window::PER_VECTOR,
            &["ax", "ay", "az", "gyro", "speed", "load"],
        ),
        (
            "f",
            Base::Mixture {
                components: 2,
                covariance: Covariance::Full,
            },
            Window {
                len: 4,
                threshold: Some(-3.0),
                median: Some(1.75),
            },
            &[],
        ),
    ];
    for (name, base, window, columns) in cases {
        let blob = load(name);
        let view = MafView::from_blob(blob.as_bytes()).unwrap();
        let h = view.header();
        assert_eq!(view.version(), 2, "{name}");
        assert_eq!(h.base, base, "{name}");
        assert_eq!(h.window, window, "{name}");
        assert_eq!(h.column_names().collect::<Vec<_>>(), columns, "{name}");
        assert_eq!(h.threshold, Some(-6.5), "{name}");
        assert_eq!(h.metadata, format!("golden model {name}"), "{name}");
        assert_eq!(
            view.base_weights().len(),
            base.weight_count(h.shape.dim),
            "{name}"
        );
        assert_eq!(
            view.weights().len() + view.base_weights().len(),
            h.weight_count()
        );
    }
}

/// The fixed-size front door computes the same bits as the run-time one.
#[test]
fn fixed_size_model_matches_view_bit_for_bit() {
    let blob = load("b");
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let maf = Maf::<4, 7, 3, 2, 2>::from_blob(blob.as_bytes()).unwrap();
    let x = [0.3f32, -1.2, 0.7, 2.0];
    let c = [0.1f32, -0.4];
    let mut scratch = vec![0.0; view.shape().scratch_len()];
    let a = view.log_prob(&x, &c, &mut scratch).unwrap();
    let b = maf.log_prob(&x, &c).unwrap();
    assert_eq!(a.to_bits(), b.to_bits());
    let (u, ld) = maf.inverse(&x, &c).unwrap();
    let mut u2 = [0.0; 4];
    let ld2 = view.inverse(&x, &c, &mut u2, &mut scratch).unwrap();
    assert_eq!(ld.to_bits(), ld2.to_bits());
    assert_eq!(u.map(f32::to_bits), u2.map(f32::to_bits));
    let mut x2 = [0.0; 4];
    view.sample(&u, &c, &mut x2, &mut scratch).unwrap();
    assert_eq!(
        maf.sample(&u, &c).unwrap().map(f32::to_bits),
        x2.map(f32::to_bits)
    );
    assert_eq!(Maf::<4, 7, 3, 2, 2>::RAM_BYTES, view.shape().ram_bytes());
}

/// The golden inputs of one model, as `(x, context)` pairs.
fn golden_inputs(name: &str) -> Vec<(Vec<f32>, Vec<f32>)> {
    include_str!("golden/golden.txt")
        .lines()
        .filter(|l| l.split('|').next() == Some(name))
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (floats(f[1]), floats(f[2]))
        })
        .collect()
}

/// `Maf` with the shapes of a golden blob against `MafView` on the blob's golden
/// inputs: log density, transform, log-determinant, base density, sampling and
/// base draws, all bit for bit.
fn fixed_matches_view<
    const D: usize,
    const H: usize,
    const L: usize,
    const C: usize,
    const K: usize,
>(
    name: &str,
) {
    let blob = load(name);
    let view = MafView::from_blob(blob.as_bytes()).unwrap();
    let maf = Maf::<D, H, L, C, K>::from_blob(blob.as_bytes()).unwrap();
    assert_eq!(maf.base(), view.base());
    let mut scratch = vec![0.0; view.shape().scratch_len()];
    let inputs = golden_inputs(name);
    assert_eq!(inputs.len(), 4);
    for (i, (x, c)) in inputs.iter().enumerate() {
        let x: [f32; D] = x.as_slice().try_into().unwrap();
        let c: [f32; C] = c.as_slice().try_into().unwrap();
        let a = view.log_prob(&x, &c, &mut scratch).unwrap();
        let b = maf.log_prob(&x, &c).unwrap();
        assert_eq!(a.to_bits(), b.to_bits(), "{name} input {i}: {a} vs {b}");
        let (u, ld) = maf.inverse(&x, &c).unwrap();
        let mut u2 = [0.0; D];
        let ld2 = view.inverse(&x, &c, &mut u2, &mut scratch).unwrap();
        assert_eq!(ld.to_bits(), ld2.to_bits(), "{name} input {i}");
        assert_eq!(
            u.map(f32::to_bits),
            u2.map(f32::to_bits),
            "{name} input {i}"
        );
        let base = view.base_log_density(&u, &mut scratch).unwrap();
        assert_eq!((base + ld).to_bits(), b.to_bits(), "{name} input {i}");
        let mut x2 = [0.0; D];
        view.sample(&u, &c, &mut x2, &mut scratch).unwrap();
        assert_eq!(
            maf.sample(&u, &c).unwrap().map(f32::to_bits),
            x2.map(f32::to_bits),
            "{name} input {i}"
        );
        // A base draw from each of a few choices, with the input as normal draws.
        for choice in [0.0, 0.3, 0.6, 0.999] {
            let mut drawn = [0.0; D];
            view.draw_base(choice, &x, &mut drawn).unwrap();
            assert_eq!(
                maf.draw_base(choice, &x).unwrap().map(f32::to_bits),
                drawn.map(f32::to_bits),
                "{name} input {i} choice {choice}"
            );
        }
    }
    assert_eq!(Maf::<D, H, L, C, K>::RAM_BYTES, view.shape().ram_bytes());
}

/// The fixed-size front door computes the same bits as the run-time one on the
/// mixture-base (version 2) golden blobs too.
#[test]
fn fixed_size_model_matches_view_bit_for_bit_with_a_mixture_base() {
    fixed_matches_view::<3, 6, 2, 0, 1>("d");
    fixed_matches_view::<4, 7, 2, 2, 1>("e");
    fixed_matches_view::<2, 5, 3, 1, 2>("f");
}
