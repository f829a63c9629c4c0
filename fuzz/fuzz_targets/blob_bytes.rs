//! Arbitrary bytes into the blob loader (whole blob and flash-region forms); a blob
//! that loads is also evaluated, sampled and checked for NaN-free results.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maf_core::blob::AlignedBlob;
use maf_core::{Error, MafView};

fuzz_target!(|data: &[u8]| {
    let aligned = AlignedBlob::new(data);
    let _ = MafView::from_blob(aligned.as_bytes());
    if let Ok(view) = MafView::from_region(aligned.as_bytes()) {
        let shape = view.shape();
        let mut scratch = vec![0.0; shape.scratch_len()];
        let x: Vec<f32> = (0..shape.dim).map(|i| i as f32 * 0.37 - 1.0).collect();
        let c = vec![0.5; shape.context];
        match view.log_prob(&x, &c, &mut scratch) {
            Ok(lp) => assert!(lp.is_finite()),
            Err(Error::Overflow) => {}
            Err(e) => panic!("unexpected error on a loaded model: {e}"),
        }
        let mut out = vec![0.0; shape.dim];
        let _ = view.sample(&x, &c, &mut out, &mut scratch);
    }
});
