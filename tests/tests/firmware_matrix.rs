//! The Cortex-M matrix under QEMU: the scorer built for each core of
//! `maf_tests::MACHINES` — Cortex-M4F (`thumbv7em-none-eabihf`, mps2-an386),
//! Cortex-M3 (`thumbv7m-none-eabi`, soft float, mps2-an385), Cortex-M33
//! (`thumbv8m.main-none-eabihf`, mps2-an505) and Cortex-M55 (same target,
//! mps3-an547) — computes `maf-train score`'s CSV byte for byte on 1,100 vectors
//! of a trained model, and refuses a corrupt model at boot. Each test prints its
//! core's instructions per inference, flash and RAM (the README's table).
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use maf_tests::{
    Firmware, MACHINES, Machine, assert_device_equals_host, csv_subset, data, elf_sizes,
    maf_train_ok, summary, tempdir,
};

/// A model trained once for every core (a small tanh flow on BasicMotions), and
/// 1,000 normal + 100 anomalous test rows.
fn fixture() -> (&'static Path, &'static Path) {
    static F: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    let (_, model, vectors) = F.get_or_init(|| {
        let tmp = tempdir();
        let model = tmp.path().join("matrix.maf");
        let p = |p: &Path| p.to_str().expect("UTF-8 paths").to_owned();
        maf_train_ok(&[
            "fit",
            "--data",
            &p(&data("basicmotions_train.csv")),
            "--valid",
            &p(&data("basicmotions_valid.csv")),
            "--out",
            &p(&model),
            "--components",
            "0",
            "--layers",
            "2",
            "--hidden",
            "32",
            "--activation",
            "tanh",
            "--max-epochs",
            "10",
            "--seed",
            "3",
            "--quiet",
        ]);
        let vectors = csv_subset(
            &data("basicmotions_test.csv"),
            tmp.path(),
            "v.csv",
            &[(0, 1000), (3000, 100)],
        );
        (tmp, model, vectors)
    });
    (model, vectors)
}

fn check(machine: &'static Machine) {
    let (model, vectors) = fixture();
    let fw = Firmware::build_for(machine, model, &["firmware-example"]);
    let instructions = assert_device_equals_host(&fw, model, vectors, 1100);

    // A flipped weight bit: refused at boot with the CRC error, nothing scored.
    let tmp = tempdir();
    let mut blob = fs::read(model).expect("model");
    let mid = blob.len() / 2;
    blob[mid] ^= 0x40;
    let bad = tmp.path().join("corrupt.maf");
    fs::write(&bad, &blob).expect("writable");
    let r = fw.run(
        "firmware-example",
        &bad,
        &[vectors.to_str().expect("UTF-8 paths")],
    );
    assert_eq!(r.code(), Some(1), "{}: {}", machine.core, r.stderr);
    assert!(
        r.stderr.contains("blob is corrupt: CRC-32 mismatch"),
        "{}: {}",
        machine.core,
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "{}: scores from a corrupt model",
        machine.core
    );

    let good = fw.run(
        "firmware-example",
        model,
        &[vectors.to_str().expect("UTF-8 paths")],
    );
    let (_, _, _, _, stack) = summary(&good.stderr).expect("summary");
    let (flash, ram) = elf_sizes(&fs::read(fw.elf("firmware-example")).expect("ELF"));
    eprintln!(
        "matrix: {} {} {}: {instructions} instructions per inference, flash {flash} B, \
         static RAM {ram} B, stack high-water {stack} B, device = host on 1100 vectors",
        machine.core, machine.target, machine.name
    );
}

#[test]
fn cortex_m4f_mps2_an386() {
    check(&MACHINES[0]);
}

#[test]
fn cortex_m3_mps2_an385_soft_float() {
    check(&MACHINES[1]);
}

#[test]
fn cortex_m33_mps2_an505() {
    check(&MACHINES[2]);
}

#[test]
fn cortex_m55_mps3_an547() {
    check(&MACHINES[3]);
}
