//! maf-core's numerical checks, run on the Cortex-M4F (under QEMU in the tests).
//!
//! * **Golden values**: the log densities and base vectors of
//!   `maf-core/tests/golden/` (an independent float64 reference) within a relative
//!   error of 2e-5, and the log density bit for bit equal to what the host's
//!   `maf-core` computed for the same input when the firmware was built.
//! * **Round trip**: `sample(inverse(x))` equals `x` within `1e-4 * max(1, |x|)`.
//! * **Inference errors**: a NaN input is `NonFiniteInput`, never a score.
//! * **Blob rejection**: bad magic, a wrong version, a flipped weight byte
//!   (`CrcMismatch`), truncation, trailing bytes, a misaligned blob and a
//!   compile-time shape mismatch are each refused with the right error.
//! * **Mixture bases** (format version 2): maf-core's golden models with a
//!   Gaussian-mixture base, and two mixture-only models (L = 0, full and diagonal
//!   covariance) that build.rs makes with their own float64 reference, go through
//!   all of the checks above; on the latter, a non-positive precision diagonal
//!   and weights that do not sum to 1 (CRC made right again) are refused, and a
//!   firmware built for one MADE refuses the L = 0 blob.
//!
//! One line per check, then `selftest: N passed, M failed`; exit status 0 only if
//! every check passed and there was at least one golden case.

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]

use core::fmt::Write as _;

use cortex_m_rt::entry;
use firmware_example::{Console, EXIT_FAILURE, EXIT_OK, eprintln, exit};
use maf_core::{Error, Maf, MafView};

/// A 4-aligned wrapper, so blobs embedded with `include_bytes!` can be read in place.
#[repr(C, align(4))]
pub struct Aligned<T: ?Sized>(pub T);

/// One golden case: input, context, float64 reference values, host f32 bits.
pub struct GoldenCase<const D: usize, const C: usize> {
    /// Input vector.
    pub x: [f32; D],
    /// Context vector.
    pub c: [f32; C],
    /// Reference log density (float64).
    pub log_prob: f64,
    /// Reference base vector (float64).
    pub u: [f64; D],
    /// The host `maf-core`'s f32 log density, as bits.
    pub host_bits: u32,
}

include!(concat!(env!("OUT_DIR"), "/golden.rs"));

/// Relative error bound against the float64 reference (as maf-core's host test).
const TOL: f64 = 2e-5;
/// Round-trip bound: `|sample(inverse(x)) - x| <= RT_TOL * max(1, |x|)`.
const RT_TOL: f32 = 1e-4;

struct Report {
    out: Console,
    passed: u32,
    failed: u32,
    golden: u32,
}

impl Report {
    fn check(&mut self, ok: bool, args: core::fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        let _ = writeln!(self.out, "{} {args}", if ok { "ok  " } else { "FAIL" });
    }
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= TOL * want.abs().max(1.0)
}

macro_rules! check_golden {
    ($m:ident, $r:ident) => {{
        use $m::{C, D, H, K, L};
        let maf = Maf::<D, H, L, C, K>::from_blob(&$m::BLOB.0);
        let view = MafView::from_blob(&$m::BLOB.0);
        $r.check(
            maf.is_ok(),
            format_args!("golden {}: blob loads ({:?})", $m::NAME, maf.err()),
        );
        if let (Ok(maf), Ok(view)) = (maf, view) {
            for (i, case) in $m::CASES.iter().enumerate() {
                $r.golden += 1;
                let lp = maf.log_prob(&case.x, &case.c);
                let ok = lp.is_ok_and(|v| close(f64::from(v), case.log_prob));
                $r.check(
                    ok,
                    format_args!(
                        "golden {} #{i}: log_prob {:?} vs reference {}",
                        $m::NAME,
                        lp,
                        case.log_prob
                    ),
                );
                let bits = lp.map(f32::to_bits);
                $r.check(
                    bits == Ok(case.host_bits),
                    format_args!(
                        "golden {} #{i}: log_prob bits {:08x?} equal the host's {:08x}",
                        $m::NAME,
                        bits,
                        case.host_bits
                    ),
                );
                // The run-time view computes the same bits as the fixed-size model.
                let mut scratch = [0.0f32; $m::SCRATCH];
                let vlp = view
                    .log_prob(&case.x, &case.c, &mut scratch)
                    .map(f32::to_bits);
                $r.check(
                    vlp == bits,
                    format_args!(
                        "golden {} #{i}: MafView == Maf bit for bit ({:?})",
                        $m::NAME,
                        vlp
                    ),
                );
                match maf.inverse(&case.x, &case.c) {
                    Ok((u, _)) => {
                        let ok = u.iter().zip(&case.u).all(|(&g, &w)| close(f64::from(g), w));
                        $r.check(
                            ok,
                            format_args!("golden {} #{i}: base vector {:?}", $m::NAME, u),
                        );
                        let back = maf.sample(&u, &case.c);
                        let worst = back.map(|b| {
                            b.iter().zip(&case.x).fold(0.0f32, |m, (&b, &x)| {
                                m.max((b - x).abs() / x.abs().max(1.0))
                            })
                        });
                        $r.check(
                            worst.is_ok_and(|w| w <= RT_TOL),
                            format_args!(
                                "golden {} #{i}: sample(inverse(x)) = x, worst rel. error {:?}",
                                $m::NAME,
                                worst
                            ),
                        );
                    }
                    Err(e) => $r.check(
                        false,
                        format_args!("golden {} #{i}: inverse: {e}", $m::NAME),
                    ),
                }
            }
            let mut nan = $m::CASES[0].x;
            nan[D - 1] = f32::NAN;
            let e = maf.log_prob(&nan, &$m::CASES[0].c);
            $r.check(
                e == Err(Error::NonFiniteInput { index: D - 1 }),
                format_args!("golden {}: NaN input -> {:?}", $m::NAME, e),
            );
        }
    }};
}

/// Blob rejection on a RAM copy of golden model `b` (or whatever is first).
macro_rules! check_rejection {
    ($m:ident, $r:ident) => {{
        use $m::{C, D, H, K, L};
        type M<'a> = Maf<'a, D, H, L, C, K>;
        let blob: &[u8] = &$m::BLOB.0;
        let n = blob.len();
        // A 4-aligned RAM buffer with room for one extra byte and an offset copy.
        static mut BUF: Aligned<[u8; 4096]> = Aligned([0; 4096]);
        // SAFETY: single-threaded self-test, no interrupts; the only reference.
        let buf: &mut [u8; 4096] = unsafe { &mut (*&raw mut BUF).0 };
        if n + 8 > buf.len() {
            $r.check(
                false,
                format_args!("rejection: golden blob larger than the test buffer"),
            );
        } else {
            let fresh = |buf: &mut [u8; 4096]| {
                buf[..n].copy_from_slice(blob);
                buf[n] = 0xFF;
            };
            fresh(buf);
            $r.check(
                M::from_blob(&buf[..n]).is_ok(),
                format_args!("rejection: RAM copy loads"),
            );

            buf[0] ^= 0xFF;
            let e = M::from_blob(&buf[..n]).err();
            $r.check(
                e == Some(Error::BadMagic),
                format_args!("rejection: bad magic -> {:?}", e),
            );

            fresh(buf);
            // The version varint follows the 8-byte magic; the next one is unknown.
            let next = maf_core::blob::VERSION + 1;
            buf[8] = next as u8;
            let e = M::from_blob(&buf[..n]).err();
            $r.check(
                e == Some(Error::VersionMismatch {
                    expected: maf_core::blob::VERSION,
                    found: next,
                }),
                format_args!("rejection: version {next} -> {:?}", e),
            );

            fresh(buf);
            buf[n - 12] ^= 0x01; // a bit of the last weights
            let e = M::from_blob(&buf[..n]).err();
            $r.check(
                matches!(e, Some(Error::CrcMismatch { .. })),
                format_args!("rejection: flipped weight bit -> {:?}", e),
            );

            fresh(buf);
            let e = M::from_blob(&buf[..n - 5]).err();
            $r.check(
                e == Some(Error::Truncated),
                format_args!("rejection: truncated -> {:?}", e),
            );
            let e = M::from_blob(&buf[..n / 2]).err();
            $r.check(
                e == Some(Error::Truncated),
                format_args!("rejection: half a blob -> {:?}", e),
            );

            let e = M::from_blob(&buf[..n + 1]).err();
            $r.check(
                e == Some(Error::TrailingBytes),
                format_args!("rejection: trailing byte -> {:?}", e),
            );
            let ok = M::from_region(&buf[..n + 1]).is_ok();
            $r.check(
                ok,
                format_args!("rejection: a region may hold bytes after the blob"),
            );

            buf.copy_within(0..n, 1);
            let e = M::from_blob(&buf[1..n + 1]).err();
            $r.check(
                e == Some(Error::Misaligned),
                format_args!("rejection: misaligned -> {:?}", e),
            );

            fresh(buf);
            let e = Maf::<{ D + 1 }, H, L, C, K>::from_blob(&buf[..n]).err();
            $r.check(
                e == Some(Error::ShapeMismatch {
                    what: "dim",
                    expected: D + 1,
                    found: D,
                }),
                format_args!("rejection: built for D={} -> {:?}", D + 1, e),
            );
            let e = Maf::<D, { H + 1 }, L, C, K>::from_blob(&buf[..n]).err();
            $r.check(
                matches!(e, Some(Error::ShapeMismatch { what: "hidden", .. })),
                format_args!("rejection: built for H={} -> {:?}", H + 1, e),
            );

            let e = M::from_blob(&[]).err();
            $r.check(e.is_some(), format_args!("rejection: empty -> {:?}", e));
        }
    }};
}

/// Mixture-specific rejection on a RAM copy of a generated mixture-only model:
/// a weight changed and the CRC made right again, so that the loader's base checks
/// (not the CRC) must catch it; and a firmware built for one MADE refuses L = 0.
macro_rules! check_mixture_rejection {
    ($m:ident, $r:ident) => {{
        use $m::{C, D, H, K, L};
        type M<'a> = Maf<'a, D, H, L, C, K>;
        let blob: &[u8] = &$m::BLOB.0;
        let n = blob.len();
        static mut BUF: Aligned<[u8; 4096]> = Aligned([0; 4096]);
        // SAFETY: single-threaded self-test, no interrupts; the only reference.
        let buf: &mut [u8; 4096] = unsafe { &mut (*&raw mut BUF).0 };
        if n > buf.len() {
            $r.check(
                false,
                format_args!("mixture rejection: blob larger than the test buffer"),
            );
        } else {
            // `blob` with weight `index` set to `f(old)` and a valid CRC again.
            let edited = |buf: &mut [u8; 4096], index: usize, f: &dyn Fn(f32) -> f32| {
                buf[..n].copy_from_slice(blob);
                let at = $m::WEIGHTS_AT + 4 * index;
                let old = f32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
                buf[at..at + 4].copy_from_slice(&f(old).to_le_bytes());
                let crc = maf_core::crc32(&buf[..n - 4]);
                buf[n - 4..n].copy_from_slice(&crc.to_le_bytes());
            };
            edited(buf, $m::FIRST_DIAGONAL, &|v| v);
            let ok = M::from_blob(&buf[..n]).is_ok();
            $r.check(
                ok && L == 0 && $m::COMPONENTS > 0,
                format_args!(
                    "mixture {}: L={L} with {} components loads as Maf<D={D}, H={H}, L={L}>",
                    $m::NAME,
                    $m::COMPONENTS
                ),
            );
            for bad in [0.0f32, -1.0] {
                edited(buf, $m::FIRST_DIAGONAL, &|_| bad);
                let e = M::from_blob(&buf[..n]).err();
                $r.check(
                    e == Some(Error::InvalidWeight {
                        index: $m::FIRST_DIAGONAL,
                    }),
                    format_args!(
                        "mixture {}: precision diagonal {bad} -> {:?}",
                        $m::NAME,
                        e
                    ),
                );
            }
            edited(buf, $m::BASE_AT, &|c| c + 0.5);
            let e = M::from_blob(&buf[..n]).err();
            $r.check(
                matches!(e, Some(Error::Malformed(m)) if m.contains("sum to 1")),
                format_args!(
                    "mixture {}: weights not summing to 1 -> {:?}",
                    $m::NAME,
                    e
                ),
            );
            edited(buf, $m::FIRST_DIAGONAL, &|v| v);
            let e = Maf::<D, H, 1, C, K>::from_blob(&buf[..n]).err();
            $r.check(
                e == Some(Error::ShapeMismatch {
                    what: "layers",
                    expected: 1,
                    found: 0,
                }),
                format_args!("mixture {}: built for L=1 -> {:?}", $m::NAME, e),
            );
        }
    }};
}

// Panics and HardFaults print to the host and exit QEMU with a failure status.
firmware_example::semihosting_fault_handlers!();

#[entry]
fn main() -> ! {
    let Some(out) = Console::stdout() else {
        exit(EXIT_FAILURE)
    };
    let mut r = Report {
        out,
        passed: 0,
        failed: 0,
        golden: 0,
    };
    golden_models!(check_golden, r);
    rejection_model!(check_rejection, r);
    mixture_models!(check_mixture_rejection, r);
    let golden = r.golden;
    r.check(golden > 0, format_args!("golden cases found: {golden}"));
    let _ = writeln!(r.out, "selftest: {} passed, {} failed", r.passed, r.failed);
    r.out.flush();
    let status = if r.failed == 0 { EXIT_OK } else { EXIT_FAILURE };
    if status != EXIT_OK {
        eprintln!("selftest FAILED");
    }
    exit(status)
}
