//! Helpers shared by the `maf-train` integration tests.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of the bundled data set (`data/` at the workspace root).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

/// The names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The bytes of a `.npy` file (format 1.0) with header fields `descr`,
/// `fortran_order` (`"True"`/`"False"`) and `shape` (as written, e.g. `"(2, 3)"`),
/// padded as `numpy.save` pads it, followed by `data`.
pub fn npy_bytes(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut head =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while !(10 + head.len() + 1).is_multiple_of(64) {
        head.push(' ');
    }
    head.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend(
        u16::try_from(head.len())
            .expect("short header")
            .to_le_bytes(),
    );
    b.extend(head.as_bytes());
    b.extend(data);
    b
}

/// A temporary path as the `&str` a command line takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs the `maf-train` binary under test.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maf-train"))
        .args(args)
        .output()
        .expect("run maf-train")
}

/// Runs `maf-train`, which must succeed; its standard output.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// A small, fast model of BasicMotions (6 columns: one MADE of 8 units on one
/// Gaussian, 3 epochs) written to `dir/name`, with the `fit` flags `extra`.
pub fn small_model(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let m = dir.join(name);
    let (train, valid) = (
        data("basicmotions_train.csv"),
        data("basicmotions_valid.csv"),
    );
    let mut args = vec![
        "fit",
        "--data",
        s(&train),
        "--valid",
        s(&valid),
        "--out",
        s(&m),
        "--layers",
        "1",
        "--hidden",
        "8",
        "--components",
        "1",
        "--max-epochs",
        "3",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    m
}
