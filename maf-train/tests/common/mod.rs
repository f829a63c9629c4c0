//! Helpers shared by the `maf-train` integration tests.

// Each test binary compiles this module and uses a subset of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
