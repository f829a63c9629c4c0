//! Mutations of a valid blob: the input is a list of (offset, value) edits applied
//! to a golden blob, optionally with the CRC recomputed so the edits reach the
//! shape and weight checks. The loader must return an error or a model that
//! evaluates without NaN, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maf_core::blob::AlignedBlob;
use maf_core::{Error, MafView, crc32};

const GOLDEN: &[u8] = include_bytes!("../../maf-core/tests/golden/golden_b.maf");

fuzz_target!(|data: &[u8]| {
    let Some((&mode, edits)) = data.split_first() else {
        return;
    };
    let mut blob = GOLDEN.to_vec();
    for e in edits.chunks_exact(3) {
        let offset = u16::from_le_bytes([e[0], e[1]]) as usize;
        if offset < blob.len() {
            blob[offset] = e[2];
        } else if mode & 2 != 0 {
            blob.truncate(offset % blob.len().max(1));
        }
    }
    if mode & 1 != 0 && blob.len() >= 4 {
        let n = blob.len() - 4;
        let crc = crc32(&blob[..n]);
        blob[n..].copy_from_slice(&crc.to_le_bytes());
    }
    let aligned = AlignedBlob::new(&blob);
    match MafView::from_blob(aligned.as_bytes()) {
        Err(_) => {}
        Ok(view) => {
            let shape = view.shape();
            let mut scratch = vec![0.0; shape.scratch_len()];
            let x = vec![0.25; shape.dim];
            let c = vec![-0.5; shape.context];
            match view.log_prob(&x, &c, &mut scratch) {
                Ok(lp) => assert!(lp.is_finite()),
                Err(Error::Overflow) => {}
                Err(e) => panic!("unexpected error on a loaded model: {e}"),
            }
        }
    }
});
