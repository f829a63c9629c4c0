//! Golden values: log densities and base vectors computed by `golden/golden.py`, an
//! independent float64 implementation of the reference code's masks (unsorted
//! hidden degrees, dense masked matrices), packed with the Python writer of
//! `docs/blob-format.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use maf_core::blob::AlignedBlob;
use maf_core::{Activation, Maf, MafView};

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
    assert_eq!(checked, 12);
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
