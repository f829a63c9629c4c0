//! Benchmark of one log density on the Cortex-M4F for the reference shape
//! D=8, H=64, K=1, L=5, C=0: `maf-core`'s packed kernel against a straightforward
//! dense MADE implementation of the same model.
//!
//! The shapes are this binary's own constants (not `MAF_MODEL`'s): the weights are
//! whatever reference-shaped blob is in the MODEL flash region (`MAF_MODEL` for the
//! runner), and a blob of other shapes is refused with status 1.
//!
//! * **Inputs**: `N` = 256 vectors drawn from the model itself, `sample(u)` of
//!   seeded standard-normal base vectors `u` (Box–Muller on a 64-bit LCG), so they
//!   are typical for the model (which ReLU units are zero depends on the input).
//! * **Instructions**: SysTick under QEMU `-icount shift=0` (one tick = 40
//!   instructions) around `N` calls of an `#[inline(never)]` wrapper
//!   (`bench_packed_log_prob`, `bench_dense_log_prob`): the mean over all calls
//!   from one timed loop, min and max from per-call readings (±40 instructions).
//! * **RAM**: the stack below the caller is painted just before one call and
//!   scanned after it (every byte the call touched, frames included), next to
//!   `Maf::RAM_BYTES` (the activations alone). The dense baseline also keeps its
//!   expanded weights in RAM (`weights_ram_bytes`).
//! * **Dense baseline**: the packed blob expanded once into dense matrices in RAM
//!   (masked entries 0, variables in natural order): per MADE a row-major
//!   `H × D` mat-vec, the activation, a row-major `2D × H` mat-vec, `exp`, batch
//!   norm; no skipping. Its log density must agree with `maf-core`'s within 1e-4
//!   relative (`|dense - packed| / max(1, |packed|)`, worst of the `N` vectors).
//!
//! Output on standard output, one `key=value` record per line (see README.md,
//! "Benchmark"); exit status 0 when every check passed, 1 otherwise.

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::hint::black_box;

use cortex_m_rt::entry;
use firmware_example::{
    BaseName, Console, EXIT_FAILURE, EXIT_OK, Rng, Ticks, eprintln, exit, model_region, stack_used,
    time_calls,
};
use maf_core::{Activation, Base, Maf, MafView};

/// Data dimension of the reference shape.
const D: usize = 8;
/// Hidden units per hidden layer.
const H: usize = 64;
/// Number of MADEs.
const L: usize = 5;
/// Context dimension (unconditional).
const C: usize = 0;
/// Hidden layers per MADE.
const K: usize = 1;
/// Input vectors per measurement.
const N: usize = 256;
/// Seed of the base vectors.
const SEED: u64 = 0x00BE_9C40;
/// Agreement bound between the dense baseline and `maf-core`.
const TOL: f32 = 1e-4;
/// `0.5 * ln(2π)`.
const HALF_LN_2PI: f32 = 0.918_938_5;
/// Bytes of stack painted below the caller for the RAM measurement.
const PAINT: usize = 8 * 1024;

/// The model type this benchmark is built for.
type Model<'a> = Maf<'a, D, H, L, C, K>;

// Panics and HardFaults print to the host and exit QEMU with a failure status.
firmware_example::semihosting_fault_handlers!();

#[entry]
fn main() -> ! {
    exit(run())
}

// ----------------------------------------------------------------- the kernels

/// One packed log density (`maf-core`), out of line so that it can be timed and
/// its code measured (`llvm-nm`).
#[unsafe(no_mangle)]
#[inline(never)]
fn bench_packed_log_prob(maf: &Model<'_>, x: &[f32; D]) -> Option<f32> {
    maf.log_prob(x, &[]).ok()
}

/// One dense log density (the baseline below), out of line like the packed one.
#[unsafe(no_mangle)]
#[inline(never)]
fn bench_dense_log_prob(m: &Dense, x: &[f32; D]) -> Option<f32> {
    match m.activation {
        Activation::Relu => dense_forward(m, x, relu, &mut ()),
        Activation::Tanh => dense_forward(m, x, maf_core::tanh, &mut ()),
    }
}

#[inline(always)]
fn relu(a: f32) -> f32 {
    if a > 0.0 { a } else { 0.0 }
}

/// One MADE (and its batch norm) as dense matrices over the variables in their
/// natural order; masked entries are 0.
struct DenseMade {
    /// First layer, `H × D`, row-major.
    w1: [[f32; D]; H],
    /// First-layer biases.
    b1: [f32; H],
    /// Outputs `mu_0..mu_D, alpha_0..alpha_D`, `2D × H`, row-major.
    wout: [[f32; H]; 2 * D],
    /// Output biases, same order.
    bout: [f32; 2 * D],
    /// Batch-norm scale (1 without batch norm).
    scale: [f32; D],
    /// Batch-norm shift (0 without batch norm).
    shift: [f32; D],
}

/// The dense baseline model.
struct Dense {
    x_mean: [f32; D],
    x_inv: [f32; D],
    mades: [DenseMade; L],
    batch_norm: bool,
    activation: Activation,
    /// `Σ ln x_inv_std + Σ ln bn_scale`.
    log_det_const: f32,
}

impl Dense {
    const ZERO: Self = Self {
        x_mean: [0.0; D],
        x_inv: [0.0; D],
        mades: [const {
            DenseMade {
                w1: [[0.0; D]; H],
                b1: [0.0; H],
                wout: [[0.0; H]; 2 * D],
                bout: [0.0; 2 * D],
                scale: [1.0; D],
                shift: [0.0; D],
            }
        }; L],
        batch_norm: false,
        activation: Activation::Relu,
        log_det_const: 0.0,
    };

    /// Expands the packed weights of `view` (layout: docs/blob-format.md) into
    /// `self`. Returns `false` if the weight section is not as long as expected.
    fn expand(&mut self, view: &MafView<'_>) -> bool {
        let s = view.shape();
        let mut r = Reader(view.weights(), 0);
        for v in &mut self.x_mean {
            *v = r.next();
        }
        for v in &mut self.x_inv {
            *v = r.next();
        }
        self.batch_norm = s.batch_norm;
        self.activation = view.header().activation;
        let mut log_det: f32 = self.x_inv.iter().map(|&k| libm::logf(k)).sum();
        for (l, made) in self.mades.iter_mut().enumerate() {
            // Order position p of MADE l is variable order(p).
            let order = |p: usize| s.order(l, p);
            for k in 0..H {
                made.b1[k] = r.next();
                for p in 0..s.hidden_degree(k) {
                    made.w1[k][order(p)] = r.next();
                }
            }
            for p in 0..D {
                made.bout[order(p)] = r.next();
                made.bout[D + order(p)] = r.next();
            }
            for k in 0..H {
                for p in s.hidden_degree(k)..D {
                    made.wout[order(p)][k] = r.next();
                    made.wout[D + order(p)][k] = r.next();
                }
            }
            if s.batch_norm {
                for v in &mut made.scale {
                    *v = r.next();
                }
                for v in &mut made.shift {
                    *v = r.next();
                }
                log_det += made.scale.iter().map(|&k| libm::logf(k)).sum::<f32>();
            }
        }
        self.log_det_const = log_det;
        r.1 == view.weights().len()
    }
}

/// Reads the weight section in order.
struct Reader<'a>(&'a [f32], usize);

impl Reader<'_> {
    fn next(&mut self) -> f32 {
        let v = self.0.get(self.1).copied().unwrap_or(f32::NAN);
        self.1 += 1;
        v
    }
}

/// Counts active units (or not: `()`), so that the timed baseline pays nothing.
trait Counter {
    fn unit(&mut self, h: f32);
}

impl Counter for () {
    #[inline(always)]
    fn unit(&mut self, _h: f32) {}
}

impl Counter for u32 {
    #[inline(always)]
    fn unit(&mut self, h: f32) {
        *self += u32::from(h != 0.0);
    }
}

/// The dense log density: the textbook MADE evaluation, every entry of every
/// matrix multiplied, masked ones included.
#[inline(always)]
fn dense_forward(
    m: &Dense,
    x: &[f32; D],
    act: impl Fn(f32) -> f32,
    active: &mut impl Counter,
) -> Option<f32> {
    let mut s = [0.0f32; D];
    for (((s, &x), &mean), &inv) in s.iter_mut().zip(x).zip(&m.x_mean).zip(&m.x_inv) {
        if !x.is_finite() {
            return None;
        }
        *s = (x - mean) * inv;
    }
    let mut sum_alpha = 0.0f32;
    // The row and MADE counts are hidden from the optimiser (`black_box` on the
    // slices): with them constant, LLVM unrolls all `L × (H + 2D)` rows into 65 KB
    // of code whose weight offsets exceed VLDR's reach (one extra ADD per weight).
    // A row (8 or 64 multiply-adds) is still unrolled in full: the fast dense form.
    for made in black_box(&m.mades[..]) {
        let mut h = [0.0f32; H];
        for ((h, row), &b) in h.iter_mut().zip(black_box(&made.w1[..])).zip(&made.b1) {
            let a = row.iter().zip(&s).fold(b, |a, (w, s)| a + w * s);
            *h = act(a);
            active.unit(*h);
        }
        let mut out = [0.0f32; 2 * D];
        for ((o, row), &b) in out
            .iter_mut()
            .zip(black_box(&made.wout[..]))
            .zip(&made.bout)
        {
            *o = row.iter().zip(&h).fold(b, |a, (w, h)| a + w * h);
        }
        let (mu, alpha) = out.split_at(D);
        for ((((s, &mu), &alpha), &scale), &shift) in s
            .iter_mut()
            .zip(mu)
            .zip(alpha)
            .zip(&made.scale)
            .zip(&made.shift)
        {
            let u = (*s - mu) * libm::expf(-alpha);
            sum_alpha += alpha;
            *s = if m.batch_norm { u * scale + shift } else { u };
        }
    }
    let sq: f32 = s.iter().map(|v| v * v).sum();
    let lp = -0.5 * sq - D as f32 * HALF_LN_2PI + (m.log_det_const - sum_alpha);
    lp.is_finite().then_some(lp)
}

// ------------------------------------------------------------------ measuring

fn ratio(a: u64, b: usize) -> f32 {
    a as f32 / b.max(1) as f32
}

fn run() -> u32 {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        return EXIT_FAILURE;
    };
    let ticks = Ticks::new(peripherals.SYST);
    let Some(mut out) = Console::stdout() else {
        return EXIT_FAILURE;
    };

    let region = model_region();
    let view = match MafView::from_region(region) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "error: no valid model in the MODEL flash region at {:#010x}: {e}",
                region.as_ptr() as usize
            );
            return EXIT_FAILURE;
        }
    };
    let s = view.shape();
    if (s.dim, s.context, s.hidden, s.hidden_layers, s.layers) != (D, C, H, K, L) {
        eprintln!(
            "error: the bench firmware measures the reference shape D={D} C={C} H={H} K={K} \
             L={L}; the blob in the MODEL region is D={} C={} H={} K={} L={}. Flash a \
             reference-shaped blob (scripts/bench-device.sh makes some).",
            s.dim, s.context, s.hidden, s.hidden_layers, s.layers
        );
        return EXIT_FAILURE;
    }
    if view.base() != Base::StandardNormal {
        eprintln!(
            "error: the bench firmware compares flows on the standard normal base (the dense \
             baseline has no other); the blob in the MODEL region has the base {}. Measure it \
             with the bench-model binary (scripts/bench-device.sh --models).",
            BaseName(view.base())
        );
        return EXIT_FAILURE;
    }
    let maf = match Model::new(view) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    let activation = match maf.activation() {
        Activation::Relu => "relu",
        Activation::Tanh => "tanh",
    };
    let _ = writeln!(
        out,
        "bench model D={D} C={C} H={H} K={K} L={L} batch_norm={} activation={activation} \
         blob_bytes={}",
        u8::from(s.batch_norm),
        view.blob_len()
    );

    // Typical inputs: samples of the model.
    let mut rng = Rng(SEED);
    let mut xs = [[0.0f32; D]; N];
    let mut rejected = 0u32;
    let mut filled = 0;
    while filled < N {
        if rejected > 4 * N as u32 {
            eprintln!("error: the model gives no finite samples ({rejected} rejected)");
            return EXIT_FAILURE;
        }
        let u = rng.normal::<D>();
        match maf.sample(&u, &[]) {
            Ok(x) if maf.log_prob(&x, &[]).is_ok() => {
                xs[filled] = x;
                filled += 1;
            }
            _ => rejected += 1,
        }
    }
    let _ = writeln!(
        out,
        "bench inputs vectors={N} seed={SEED:#x} rejected={rejected} source=sample_of_normal"
    );

    // The dense baseline, expanded once.
    let mut dense = Dense::ZERO;
    if !dense.expand(&view) {
        eprintln!("error: the weight section does not have the reference layout");
        return EXIT_FAILURE;
    }

    // Agreement and the fraction of active units (untimed).
    let mut worst = 0.0f32;
    let mut active = 0u32;
    let mut agree_fail = 0u32;
    for x in &xs {
        let p = bench_packed_log_prob(&maf, x);
        let d = match dense.activation {
            Activation::Relu => dense_forward(&dense, x, relu, &mut active),
            Activation::Tanh => dense_forward(&dense, x, maf_core::tanh, &mut active),
        };
        match (p, d) {
            (Some(p), Some(d)) => {
                let rel = (d - p).abs() / p.abs().max(1.0);
                if rel.is_nan() || rel > TOL {
                    agree_fail += 1;
                }
                worst = worst.max(rel);
            }
            _ => agree_fail += 1,
        }
    }
    let units = (N * L * H) as f32;
    let active_pct = 100.0 * active as f32 / units;

    let macs = s.macs();
    let dense_macs = s.dense_macs();
    let (p_mean, p_min, p_max) = time_calls(&ticks, &xs, |x| bench_packed_log_prob(&maf, x));
    let (d_mean, d_min, d_max) = time_calls(&ticks, &xs, |x| bench_dense_log_prob(&dense, x));
    let x0 = xs[0];
    let p_stack = stack_used(PAINT, &mut || {
        black_box(bench_packed_log_prob(black_box(&maf), black_box(&x0)));
    });
    let d_stack = stack_used(PAINT, &mut || {
        black_box(bench_dense_log_prob(black_box(&dense), black_box(&x0)));
    });

    let _ = writeln!(
        out,
        "bench packed macs={macs} instr_mean={p_mean} instr_min={p_min} instr_max={p_max} \
         instr_per_mac={:.2} stack_bytes={p_stack} activations_bytes={} weights_ram_bytes=0 \
         active_units_pct={active_pct:.1}",
        ratio(p_mean, macs),
        Model::RAM_BYTES
    );
    let _ = writeln!(
        out,
        "bench dense macs={dense_macs} instr_mean={d_mean} instr_min={d_min} instr_max={d_max} \
         instr_per_mac={:.2} stack_bytes={d_stack} activations_bytes={} weights_ram_bytes={}",
        ratio(d_mean, dense_macs),
        4 * (D + H + 2 * D),
        core::mem::size_of::<Dense>()
    );
    let ok = agree_fail == 0;
    let _ = writeln!(
        out,
        "bench agree max_rel_err={worst:e} tol={TOL:e} failures={agree_fail} {}",
        if ok { "ok" } else { "FAIL" }
    );
    let _ = writeln!(
        out,
        "bench speedup dense_over_packed={:.2}",
        if p_mean == 0 {
            0.0
        } else {
            d_mean as f32 / p_mean as f32
        }
    );
    out.flush();
    if ok { EXIT_OK } else { EXIT_FAILURE }
}
