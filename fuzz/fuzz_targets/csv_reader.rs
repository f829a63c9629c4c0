//! Arbitrary text into the trainer's CSV reader: a table or a clear error, never a
//! panic, and never a non-finite value in an accepted table.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(table) = maf_train::data::parse_csv(Path::new("fuzz.csv"), &text) {
        assert!(table.values.iter().all(|v| v.is_finite()));
        assert_eq!(table.values.ncols(), table.header.len());
    }
});
