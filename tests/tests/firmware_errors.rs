//! The firmware fails cleanly: a corrupt, missing or mismatched model is refused at
//! boot with the loader's message and a failure status, and bad sensor values are
//! reported (naming the row) instead of scored.
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use maf_tests::{Firmware, Run, csv_subset, data, example_model, summary, tempdir, workspace};

/// One build for every test here: the bundled model's shapes (D = 6).
fn firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    FW.get_or_init(|| Firmware::build(&example_model()))
}

fn score(model: &Path, csv: &Path) -> Run {
    firmware().run(
        "firmware-example",
        model,
        &[csv.to_str().expect("temporary paths are UTF-8")],
    )
}

fn show(r: &Run) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.status, r.stdout, r.stderr
    )
}

fn vectors(dir: &Path) -> std::path::PathBuf {
    csv_subset(&data("basicmotions_test.csv"), dir, "v.csv", &[(0, 5)])
}

#[test]
fn corrupt_model_is_refused_with_the_crc_error() {
    let tmp = tempdir();
    let mut blob = fs::read(example_model()).expect("bundled model");
    let mid = blob.len() / 2; // inside the weights
    blob[mid] ^= 0x40;
    let bad = tmp.path().join("corrupt.maf");
    fs::write(&bad, &blob).expect("writable");
    let r = score(&bad, &vectors(tmp.path()));
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr
            .contains("no valid model in the MODEL flash region"),
        "{}",
        show(&r)
    );
    assert!(
        r.stderr.contains("blob is corrupt: CRC-32 mismatch"),
        "{}",
        show(&r)
    );
    assert!(
        r.stdout.is_empty(),
        "scores from a corrupt model:\n{}",
        show(&r)
    );
}

#[test]
fn erased_model_region_is_refused() {
    let tmp = tempdir();
    let erased = tmp.path().join("erased.bin");
    fs::write(&erased, [0xFFu8; 64]).expect("writable");
    let r = score(&erased, &vectors(tmp.path()));
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr.contains("not a maf model blob (bad magic)"),
        "{}",
        show(&r)
    );
}

/// A half-written flash (interrupted download): the region holds the start of the
/// blob and then erased flash, so the CRC over the declared length fails.
#[test]
fn truncated_model_is_refused() {
    let tmp = tempdir();
    let blob = fs::read(example_model()).expect("bundled model");
    let cut = tmp.path().join("cut.maf");
    fs::write(&cut, &blob[..blob.len() - 100]).expect("writable");
    let r = score(&cut, &vectors(tmp.path()));
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr.contains("blob is corrupt: CRC-32 mismatch"),
        "{}",
        show(&r)
    );
}

#[test]
fn model_of_other_shapes_is_refused() {
    let tmp = tempdir();
    let other = workspace().join("maf-core/tests/golden/golden_a.maf");
    let r = score(&other, &vectors(tmp.path()));
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr
            .contains("model shape mismatch: dim is 3 in the blob, expected 6"),
        "{}",
        show(&r)
    );
    assert!(r.stderr.contains("built for D=6"), "{}", show(&r));
}

#[test]
fn non_finite_and_unparsable_values_are_reported_not_scored() {
    let tmp = tempdir();
    let good = [
        "0.1,0.2,0.3,0.4,0.5,0.6",
        "-0.7,0.75,-0.27,-0.42,0.01,0.01",
        "1,2,3,4,5,6",
    ];
    let input = format!(
        "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n{}\n0.1,NaN,0.3,0.4,0.5,0.6\n{}\n0.1,0.2,inf,0.4,0.5,0.6\n\
         -infinity,0.2,0.3,0.4,0.5,0.6\n0.1,0.2,0.3,abc,0.5,0.6\n0.1,0.2,0.3\n{}\n",
        good[0], good[1], good[2]
    );
    let csv = tmp.path().join("bad.csv");
    fs::write(&csv, input).expect("writable");
    let r = score(&example_model(), &csv);
    assert_eq!(
        r.code(),
        Some(2),
        "bad rows must give exit status 2\n{}",
        show(&r)
    );
    for (line, what) in [
        (3, "column 2: \"NaN\" is not finite"),
        (5, "column 3: \"inf\" is not finite"),
        (6, "column 1: \"-infinity\" is not finite"),
        (7, "column 4: \"abc\" is not a number"),
        (8, "3 cells, expected 6"),
    ] {
        let needle = format!("line {line} (row {})", line - 1);
        let msg = r
            .stderr
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no report for line {line}\n{}", show(&r)));
        assert!(
            msg.starts_with("bad input: ") && msg.contains(what),
            "{msg:?}"
        );
        assert!(msg.ends_with("not scored"), "{msg:?}");
    }
    // Only the good rows are scored, exactly as when they are alone in the file.
    let clean = tmp.path().join("clean.csv");
    fs::write(
        &clean,
        format!("acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n{}\n", good.join("\n")),
    )
    .expect("writable");
    let c = score(&example_model(), &clean);
    assert_eq!(c.code(), Some(0), "{}", show(&c));
    assert_eq!(r.stdout, c.stdout);
    assert_eq!(r.stdout.lines().count(), 1 + good.len());
    assert!(
        !r.stdout.to_ascii_lowercase().contains("nan"),
        "{}",
        show(&r)
    );
    let (scored, _, bad, _, _) = summary(&r.stderr).expect("summary line");
    assert_eq!((scored, bad), (3, 5));
}

#[test]
fn wrong_header_missing_file_and_missing_argument_fail() {
    let tmp = tempdir();
    let csv = tmp.path().join("three.csv");
    fs::write(&csv, "a,b,c\n1,2,3\n").expect("writable");
    let r = score(&example_model(), &csv);
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr
            .contains("header: the model's column \"acc_x\" is missing"),
        "{}",
        show(&r)
    );

    let r = score(&example_model(), &tmp.path().join("does-not-exist.csv"));
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(r.stderr.contains("cannot open"), "{}", show(&r));

    let r = firmware().run("firmware-example", &example_model(), &[]);
    assert_eq!(r.code(), Some(1), "{}", show(&r));
    assert!(
        r.stderr.contains("usage: firmware-example VECTORS.csv"),
        "{}",
        show(&r)
    );
}
