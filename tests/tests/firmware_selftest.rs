//! maf-core's numerical checks pass on the Cortex-M4F (under QEMU): golden values
//! against an independent float64 reference, bit-for-bit parity with the host, the
//! sample/inverse round trip, and blob rejection (`src/bin/selftest.rs` of the
//! firmware).

use maf_tests::{Firmware, example_model};

#[test]
fn selftest_passes_on_the_target() {
    let fw = Firmware::build(&example_model());
    let r = fw.run("selftest", &example_model(), &[]);
    let all = format!("--- stdout\n{}\n--- stderr\n{}", r.stdout, r.stderr);
    assert_eq!(r.code(), Some(0), "selftest failed\n{all}");
    let last = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("selftest: "))
        .unwrap_or_else(|| panic!("no selftest summary\n{all}"));
    let nums: Vec<u32> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(
        matches!(nums.as_slice(), [p, 0] if *p >= 40),
        "unexpected summary {last:?}\n{all}"
    );
    assert!(!r.stdout.contains("FAIL"), "{all}");
    for expected in [
        "equal the host's",
        "sample(inverse(x)) = x",
        "NaN input -> Err(NonFiniteInput",
        "bad magic -> Some(BadMagic)",
        "flipped weight bit -> Some(CrcMismatch",
        "truncated -> Some(Truncated)",
        "misaligned -> Some(Misaligned)",
        "-> Some(ShapeMismatch { what: \"dim\"",
    ] {
        assert!(r.stdout.contains(expected), "missing {expected:?}\n{all}");
    }
}
