//! The `relu` and `tanh` features: every activation this build evaluates gives the
//! golden values (`golden/golden.txt`, float64 reference), and a model of a
//! left-out activation is refused when it is loaded, by `MafView` and `Maf` alike,
//! with [`Error::ActivationNotBuilt`]. Run under each feature set by
//! `scripts/test.sh` (`--no-default-features --features std,relu`, then `std,tanh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use maf_core::blob::AlignedBlob;
use maf_core::{Activation, Error, Maf, MafView};

fn load(name: &str) -> AlignedBlob {
    let path = format!(
        "{}/tests/golden/golden_{name}.maf",
        env!("CARGO_MANIFEST_DIR")
    );
    AlignedBlob::new(&std::fs::read(path).unwrap())
}

fn built(act: Activation) -> bool {
    match act {
        Activation::Relu => cfg!(feature = "relu"),
        Activation::Tanh => cfg!(feature = "tanh"),
    }
}

#[test]
fn built_activations_evaluate_and_left_out_ones_are_refused() {
    let text = include_str!("golden/golden.txt");
    let (mut evaluated, mut refused) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('|').collect();
        let blob = load(f[0]);
        let header = maf_core::blob::parse(blob.as_bytes()).unwrap().header;
        let act = header.activation;
        let x: Vec<f32> = f[1]
            .split(',')
            .map(|t| t.parse::<f64>().unwrap() as f32)
            .collect();
        let c: Vec<f32> = f[2]
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<f64>().unwrap() as f32)
            .collect();
        let want: f64 = f[3].parse().unwrap();
        match MafView::from_blob(blob.as_bytes()) {
            Ok(view) => {
                assert!(built(act), "{act:?} model loaded without its feature");
                let mut scratch = vec![0.0; view.shape().scratch_len()];
                let lp = f64::from(view.log_prob(&x, &c, &mut scratch).unwrap());
                assert!(
                    (lp - want).abs() <= 2e-5 * want.abs().max(1.0),
                    "{line}: {lp}"
                );
                evaluated += 1;
            }
            Err(e) => {
                assert!(!built(act), "{act:?} model refused: {e}");
                assert_eq!(e, Error::ActivationNotBuilt(act));
                let name = if act == Activation::Relu {
                    "relu"
                } else {
                    "tanh"
                };
                assert!(e.to_string().contains(&format!("feature `{name}`")), "{e}");
                refused += 1;
            }
        }
    }
    // golden.txt holds both activations: every build both evaluates and, with a
    // feature off, refuses something.
    assert!(evaluated > 0);
    let all = cfg!(all(feature = "relu", feature = "tanh"));
    println!("evaluated {evaluated}, refused {refused}");
    assert_eq!(
        refused > 0,
        !all,
        "evaluated {evaluated}, refused {refused}"
    );
}

/// The fixed-size `Maf` loads through the same check.
#[test]
fn fixed_size_model_is_refused_too() {
    let a = load("a"); // D=3 C=0 H=5 K=1 L=2, relu
    let b = load("b"); // D=4 C=2 H=7 K=2 L=3, tanh
    let results = [
        (
            Activation::Relu,
            Maf::<3, 5, 2, 0, 1>::from_blob(a.as_bytes()).err(),
        ),
        (
            Activation::Tanh,
            Maf::<4, 7, 3, 2, 2>::from_blob(b.as_bytes()).err(),
        ),
    ];
    for (act, err) in results {
        let want = (!built(act)).then_some(Error::ActivationNotBuilt(act));
        assert_eq!(err, want, "{act:?}");
    }
}
