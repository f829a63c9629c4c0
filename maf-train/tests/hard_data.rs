//! Training stays sane on hard data: a diverging run recovers with the best
//! weights or stops with a clear message (never a broken blob); heavy-tailed
//! columns and near-duplicate rows train without NaN.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::data;
use std::process::{Command, Output};

use maf_core::MafView;
use maf_core::blob::AlignedBlob;

fn maf_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maf-train"))
        .args(args)
        .output()
        .expect("run maf-train")
}

/// Loads a blob and scores every row of `csv` with maf-core: all finite.
fn assert_scores_finite(model: &Path, csv: &Path) {
    let bytes = std::fs::read(model).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let view = MafView::from_blob(blob.as_bytes()).expect("a valid blob");
    let text = std::fs::read_to_string(csv).unwrap();
    let mut scratch = vec![0.0; view.shape().scratch_len()];
    for line in text.lines().skip(1) {
        let x: Vec<f32> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let lp = view.log_prob(&x, &[], &mut scratch).expect("score");
        assert!(lp.is_finite());
    }
}

fn meta(model: &Path, key: &str) -> String {
    let o = maf_train(&["inspect", model.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines()
        .find_map(|l| {
            l.split_once(&format!("{key}="))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn a_diverging_run_recovers_or_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (train, valid) = (
        data("basicmotions_train.csv"),
        data("basicmotions_valid.csv"),
    );
    let fit = |lr: &str, out: &Path| {
        maf_train(&[
            "fit",
            "--data",
            train.to_str().unwrap(),
            "--valid",
            valid.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--layers",
            "2",
            "--hidden",
            "16",
            "--max-epochs",
            "20",
            "--learning-rate",
            lr,
            // One model (the classic MAF), not a search: its training is the test.
            "--components",
            "0",
            "--activation",
            "tanh",
            "--quiet",
        ])
    };
    // A step far too large: the loss goes non-finite, the best weights come back
    // with a halved step, and the exported blob is sound.
    let recovered = dir.path().join("recovered.maf");
    let o = fit("10", &recovered);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(meta(&recovered, "recoveries").parse::<usize>().unwrap() >= 1);
    assert_scores_finite(&recovered, &data("basicmotions_test.csv"));
    // Hopeless: a clear message, exit 1, no file.
    let hopeless = dir.path().join("hopeless.maf");
    let o = fit("100", &hopeless);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: training diverged"), "{err}");
    assert!(!hopeless.exists());
}

#[test]
fn heavy_tails_and_near_duplicates_train_without_nan() {
    let dir = tempfile::tempdir().unwrap();
    // Seeded: a Cauchy-like heavy-tailed column, a column of near-duplicates
    // (a handful of values with 1e-6 jitter), and a plain one.
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut csv = String::from("tail,dup,plain\n");
    for i in 0..600 {
        let tail = (std::f64::consts::PI * (uniform() - 0.5)).tan();
        let dup = (i % 3) as f64 + 1e-6 * uniform();
        let plain = uniform() * 2.0 - 1.0 + 0.5 * tail.clamp(-1.0, 1.0);
        csv.push_str(&format!("{tail},{dup},{plain}\n"));
    }
    let path = dir.path().join("hard.csv");
    std::fs::write(&path, &csv).unwrap();
    let model = dir.path().join("hard.maf");
    let o = maf_train(&[
        "fit",
        "--data",
        path.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--layers",
        "3",
        "--hidden",
        "16",
        "--max-epochs",
        "30",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        meta(&model, "valid_log_likelihood")
            .parse::<f64>()
            .unwrap()
            .is_finite()
    );
    assert_scores_finite(&model, &path);
}
