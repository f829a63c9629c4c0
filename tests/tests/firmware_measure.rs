//! Cost of one log density on the Cortex-M4F, measured under QEMU: instructions per
//! inference (SysTick under `-icount shift=0`, 40 instructions per tick) and the
//! stack high-water mark, for the reference shape D=8, H=64, L=5 (seeded random
//! weights) and for the bundled BasicMotions model (D=6). Run with `--nocapture`
//! to see the numbers; the bounds guard against regressions.
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fmt::Write as _;
use std::fs;

use maf_core::Shape;
use maf_tests::{Firmware, Lcg, csv_subset, data, example_model, random_blob, summary, tempdir};

#[test]
fn instructions_and_stack_for_the_reference_shape() {
    let tmp = tempdir();
    let shape = Shape::REFERENCE;
    let model = tmp.path().join("reference.maf");
    let bytes = random_blob(
        shape,
        42,
        "reference shape, seeded random weights (firmware_measure.rs)",
    );
    fs::write(&model, &bytes).expect("writable");
    let mut rng = Lcg(7);
    let mut csv = String::from("x1,x2,x3,x4,x5,x6,x7,x8\n");
    for _ in 0..200 {
        let row: Vec<String> = (0..8)
            .map(|_| format!("{}", rng.uniform(-2.0, 2.0)))
            .collect();
        let _ = writeln!(csv, "{}", row.join(","));
    }
    let vectors = tmp.path().join("vectors.csv");
    fs::write(&vectors, csv).expect("writable");

    let fw = Firmware::build(&model);
    let r = fw.run(
        "firmware-example",
        &model,
        &[vectors.to_str().expect("UTF-8")],
    );
    assert_eq!(r.code(), Some(0), "{}\n{}", r.stdout, r.stderr);
    let (scored, _, _, instructions, stack) = summary(&r.stderr).expect("summary");
    println!(
        "reference D=8 H=64 K=1 L=5: blob {} bytes, {} MACs, {instructions} instructions per \
         inference, stack high-water {stack} bytes",
        bytes.len(),
        shape.macs()
    );
    assert_eq!(scored, 200);
    // About 3.7 instructions per MAC plus 2 D L exp/log calls; generous bounds.
    assert!(instructions > shape.macs() as u64, "{instructions}");
    assert!(instructions < 12 * shape.macs() as u64, "{instructions}");
    assert!(stack < 16 * 1024, "stack high-water {stack}");
}

#[test]
fn instructions_and_stack_for_the_basicmotions_model() {
    let tmp = tempdir();
    let vectors = csv_subset(
        &data("basicmotions_test.csv"),
        tmp.path(),
        "v.csv",
        &[(0, 4000)],
    );
    let fw = Firmware::build(&example_model());
    let r = fw.run(
        "firmware-example",
        &example_model(),
        &[vectors.to_str().expect("UTF-8")],
    );
    assert_eq!(r.code(), Some(0), "{}", r.stderr);
    let (scored, anomalies, _, instructions, stack) = summary(&r.stderr).expect("summary");
    println!(
        "basicmotions D=6 H=64 K=1 L=5: {scored} vectors, {anomalies} anomalies, {instructions} \
         instructions per inference, stack high-water {stack} bytes"
    );
    assert_eq!(scored, 4000);
    assert!(instructions > 0 && instructions < 60_000, "{instructions}");
    assert!(stack < 16 * 1024, "stack high-water {stack}");
}
