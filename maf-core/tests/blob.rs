//! The loader against valid, corrupted, truncated and hand-crafted blobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{random_blob, random_weights, shape};
use maf_core::blob::{self, AlignedBlob, Header, MAGIC};
use maf_core::{Activation, Error, Maf, MafView, crc32};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/golden/golden_{name}.maf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Recomputes the trailing CRC after a deliberate edit.
fn fix_crc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    let aligned = AlignedBlob::new(bytes);
    MafView::from_blob(aligned.as_bytes()).map(|_| ())
}

#[test]
fn round_trip_keeps_header_and_weights() {
    let s = shape(4, 2, 9, 2, 3, true);
    let weights = random_weights(&s, 0.5, 3);
    let header = Header {
        shape: s,
        activation: Activation::Tanh,
        threshold: Some(-12.25),
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: "epochs=12\nseed=3",
    };
    let bytes = blob::write(&header, &weights).unwrap();
    let aligned = AlignedBlob::new(&bytes);
    let parsed = blob::parse(aligned.as_bytes()).unwrap();
    assert_eq!(parsed.header, header);
    assert_eq!(parsed.weights, &weights[..]);
    assert_eq!(parsed.len, bytes.len());
    // 4-byte aligned weights, at the offset the format promises.
    let offset = parsed.weights.as_ptr() as usize - aligned.as_bytes().as_ptr() as usize;
    assert_eq!(offset % 4, 0);
    assert_eq!(bytes.len(), offset + 4 * weights.len() + 4);
}

/// The Rust version-1 writer and the Python writer of the format document agree
/// byte for byte on the (version 1) golden blobs, and the version-2 writer's blob of
/// the same model loads to the same header and weights.
#[test]
fn writer_matches_the_documented_python_writer() {
    for name in ["a", "b", "c"] {
        let bytes = golden(name);
        let aligned = AlignedBlob::new(&bytes);
        let parsed = blob::parse(aligned.as_bytes()).unwrap();
        assert_eq!(parsed.version, 1);
        assert_eq!(
            blob::write_v1(&parsed.header, parsed.weights).unwrap(),
            bytes
        );
        let v2 = AlignedBlob::new(&blob::write(&parsed.header, parsed.weights).unwrap());
        let again = blob::parse(v2.as_bytes()).unwrap();
        assert_eq!(again.version, 2);
        assert_eq!(again.header, parsed.header);
        assert_eq!(again.weights, parsed.weights);
    }
}

#[test]
fn every_single_byte_corruption_is_an_error() {
    for name in ["a", "c"] {
        let good = golden(name);
        assert!(parse(&good).is_ok());
        for i in 0..good.len() {
            for flip in 1..=255u8 {
                let mut bad = good.clone();
                bad[i] ^= flip;
                assert!(
                    parse(&bad).is_err(),
                    "{name}: byte {i} ^ {flip:#04x} accepted"
                );
            }
        }
    }
    let good = golden("b");
    for i in 0..good.len() {
        for flip in [0x01, 0x80, 0xFF] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(parse(&bad).is_err(), "b: byte {i} ^ {flip:#04x} accepted");
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for name in ["a", "b", "c"] {
        let good = golden(name);
        for n in 0..good.len() {
            let aligned = AlignedBlob::new(&good[..n]);
            assert!(
                blob::parse(aligned.as_bytes()).is_err(),
                "{name}: {n} bytes accepted"
            );
            assert!(
                blob::parse_region(aligned.as_bytes()).is_err(),
                "{name}: region of {n} bytes accepted"
            );
        }
    }
}

#[test]
fn a_region_may_hold_more_than_the_blob() {
    let mut region = golden("a");
    let len = region.len();
    region.extend(std::iter::repeat_n(0xFF, 1000));
    let aligned = AlignedBlob::new(&region);
    let parsed = blob::parse_region(aligned.as_bytes()).unwrap();
    assert_eq!(parsed.len, len);
    assert_eq!(
        blob::parse(aligned.as_bytes()).unwrap_err(),
        Error::TrailingBytes
    );
    assert!(Maf::<3, 5, 2>::from_region(aligned.as_bytes()).is_ok());
}

#[test]
fn precise_errors() {
    let good = golden("a");
    // Magic.
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(parse(&bad), Err(Error::BadMagic));
    assert_eq!(parse(b"MAF"), Err(Error::Truncated));
    assert_eq!(parse(b"hello"), Err(Error::BadMagic));
    assert_eq!(parse(&[]), Err(Error::Truncated));
    // Version (checked before the CRC).
    let mut bad = good.clone();
    bad[MAGIC.len()] = 3;
    assert_eq!(
        parse(&bad),
        Err(Error::VersionMismatch {
            expected: 2,
            found: 3
        })
    );
    // CRC.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(parse(&bad), Err(Error::CrcMismatch { .. })));
    // Shapes against the compile-time ones.
    let aligned = AlignedBlob::new(&good);
    assert_eq!(
        Maf::<3, 5, 3>::from_blob(aligned.as_bytes()).unwrap_err(),
        Error::ShapeMismatch {
            what: "layers",
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        Maf::<4, 5, 2>::from_blob(aligned.as_bytes()).unwrap_err(),
        Error::ShapeMismatch {
            what: "dim",
            expected: 4,
            found: 3
        }
    );
    assert_eq!(
        Maf::<3, 5, 2, 1>::from_blob(aligned.as_bytes()).unwrap_err(),
        Error::ShapeMismatch {
            what: "context",
            expected: 1,
            found: 0
        }
    );
    // Shapes that disagree with the weight count (CRC made consistent).
    let mut bad = good.clone();
    bad[MAGIC.len() + 3] = 6; // hidden 5 -> 6
    fix_crc(&mut bad);
    assert!(matches!(parse(&bad), Err(Error::WeightCount { .. })));
    // Out-of-range shape.
    let mut bad = good.clone();
    bad[MAGIC.len() + 4] = 3; // hidden_layers 1 -> 3
    fix_crc(&mut bad);
    assert_eq!(
        parse(&bad),
        Err(Error::ShapeOutOfRange {
            what: "hidden_layers",
            found: 3
        })
    );
    // A non-finite weight, CRC made consistent.
    let aligned_good = AlignedBlob::new(&good);
    let parsed = blob::parse(aligned_good.as_bytes()).unwrap();
    let offset = parsed.weights.as_ptr() as usize - aligned_good.as_bytes().as_ptr() as usize;
    let mut bad = good.clone();
    bad[offset + 4 * 7..offset + 4 * 8].copy_from_slice(&f32::NAN.to_le_bytes());
    fix_crc(&mut bad);
    assert_eq!(parse(&bad), Err(Error::InvalidWeight { index: 7 }));
    // A zero standardisation scale.
    let mut bad = good.clone();
    bad[offset + 4 * 3..offset + 4 * 4].copy_from_slice(&0.0f32.to_le_bytes());
    fix_crc(&mut bad);
    assert_eq!(parse(&bad), Err(Error::InvalidWeight { index: 3 }));
    // Misaligned in memory.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&good);
    let aligned = AlignedBlob::new(&shifted);
    assert_eq!(
        blob::parse(&aligned.as_bytes()[1..]).unwrap_err(),
        Error::Misaligned
    );
}

#[test]
fn writer_refuses_what_the_loader_would_refuse() {
    let s = shape(2, 0, 3, 1, 1, true);
    let mut w = random_weights(&s, 0.5, 1);
    let header = Header {
        shape: s,
        activation: Activation::Relu,
        threshold: None,
        base: maf_core::Base::StandardNormal,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata: "",
    };
    assert!(blob::write(&header, &w[1..]).is_err());
    w[5] = f32::INFINITY;
    assert!(matches!(
        blob::write(&header, &w),
        Err(Error::InvalidWeight { index: 5 })
    ));
    let w = random_weights(&s, 0.5, 1);
    let nan_threshold = Header {
        threshold: Some(f32::NAN),
        ..header
    };
    assert!(blob::write(&nan_threshold, &w).is_err());
    let long = "x".repeat(5000);
    assert!(
        blob::write(
            &Header {
                metadata: &long,
                ..header
            },
            &w
        )
        .is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        rng_seed: RngSeed::Fixed(0x5EED_0002),
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes never panic the loader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&bytes);
        let aligned = AlignedBlob::new(&bytes);
        let _ = blob::parse_region(aligned.as_bytes());
    }

    /// Random edits of a valid blob are errors (or leave it unchanged).
    #[test]
    fn random_edits_of_a_valid_blob_are_errors(
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let good = random_blob(shape(3, 1, 6, 2, 2, true), Activation::Relu, 0.5, seed).as_bytes().to_vec();
        let mut bad = good.clone();
        for (i, v) in &edits {
            bad[i.index(good.len())] = *v;
        }
        if bad != good {
            prop_assert!(parse(&bad).is_err());
        }
    }
}
