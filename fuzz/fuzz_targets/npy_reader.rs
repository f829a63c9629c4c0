//! Arbitrary bytes into the trainer's `.npy` reader: a table or a clear error, never
//! a panic, and never a non-finite value in an accepted table.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = maf_train::data::parse_npy(Path::new("fuzz.npy"), data) {
        assert!(table.values.iter().all(|v| v.is_finite()));
        assert_eq!(table.values.ncols(), table.header.len());
    }
});
