//! Loading and validating data files (headered CSV, or NumPy `.npy` arrays), and
//! input standardisation.
//!
//! [`csv`] reads CSV files (the dialect of `docs/data-format.md`), [`npy`] NumPy
//! arrays; both give a [`Table`] ([`table`]), which splits into features and
//! context. [`standardize`] holds the per-column scaling, [`figure1`] a seeded
//! example data set.

pub mod csv;
pub mod figure1;
pub mod npy;
mod npy_header;
pub mod standardize;
pub mod table;

use std::path::Path;

use crate::error::Result;

pub use self::csv::{parse_csv, read_csv};
pub use self::figure1::figure1_csv;
pub use self::npy::{parse_npy, read_npy};
pub use self::standardize::Standardizer;
pub use self::table::{Split, Table};

/// Reads a data file: a NumPy `.npy` array if the file name ends in `.npy` (any
/// case, see [`read_npy`]), otherwise a headered CSV file (see [`read_csv`]).
///
/// # Errors
/// As [`read_csv`] or [`read_npy`].
pub fn read_data(path: &Path) -> Result<Table> {
    if is_npy(path) {
        read_npy(path)
    } else {
        read_csv(path)
    }
}

/// Whether `path` names a `.npy` file (by its extension, any case).
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}
