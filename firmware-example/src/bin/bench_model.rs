//! Cost of one log density on the Cortex-M4F for the shapes of the model this
//! firmware was built for (`MAF_MODEL`, like the scorer): any `D, H, L, C, K`,
//! `L = 0` (a Gaussian mixture alone) included, on any base — the base, standard
//! normal or a mixture of any size and covariance, is read from the blob at run
//! time, so one build measures every base of the same flow shapes.
//!
//! * **Inputs**: `N` = 256 vectors drawn from the model itself: a base vector from
//!   `Maf::draw_base` (seeded uniform component choice and standard normals,
//!   Box–Muller on a 64-bit LCG), then `Maf::sample`; a conditional model gets a
//!   seeded context around its training mean (`c_mean + z / c_inv_std`, `z`
//!   standard normal). Draws whose log density is not finite are redrawn.
//! * **Instructions**: SysTick under QEMU `-icount shift=0` (one tick = 40
//!   instructions) around `N` calls of `#[inline(never)]` wrappers: the whole log
//!   density (`bench_model_log_prob`) and the flow alone (`bench_model_flow`,
//!   `Maf::inverse`: standardisation and every MADE, no base density); the mean
//!   from one timed loop, min and max from per-call readings (±40). The base's
//!   share is the difference of the two means (approximate: `inverse` also copies
//!   the base vector out, some 50 instructions).
//! * **RAM**: the stack painted just before one log density and scanned after it
//!   (frames included), next to `Maf::RAM_BYTES` (the activations alone).
//! * **Check**: every log density equals `MafView::log_prob`'s bit for bit.
//!
//! Output on standard output, one `key=value` record per line; exit status 0 when
//! the model loaded and every check passed, 1 otherwise. `scripts/bench-device.sh
//! --models` runs it on a set of models and prints a table.

// No operating system, no std; cortex-m-rt provides the entry point.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::hint::black_box;

use cortex_m_rt::entry;
use firmware_example::shape::{C, D, H, K, L, MODEL_BLOB_LEN};
use firmware_example::{
    Console, EXIT_FAILURE, EXIT_OK, Rng, Ticks, covariance_name, eprintln, exit, model_region,
    stack_used, time_calls,
};
use maf_core::{Activation, Base, Maf};

/// Input vectors per measurement.
const N: usize = 256;
/// Seed of the draws.
const SEED: u64 = 0x00BE_9C41;
/// Bytes of stack painted below the caller for the RAM measurement.
const PAINT: usize = 8 * 1024;

/// The model type of this build.
type Model<'a> = Maf<'a, D, H, L, C, K>;

/// One input: the vector and its context.
#[derive(Clone, Copy)]
struct Input {
    x: [f32; D],
    c: [f32; C],
}

// Panics and HardFaults print to the host and exit QEMU with a failure status.
firmware_example::semihosting_fault_handlers!();

#[entry]
fn main() -> ! {
    exit(run())
}

/// One log density, out of line so that it can be timed and its code measured.
#[unsafe(no_mangle)]
#[inline(never)]
fn bench_model_log_prob(maf: &Model<'_>, x: &[f32; D], c: &[f32; C]) -> Option<f32> {
    maf.log_prob(x, c).ok()
}

/// The flow alone (`u = f⁻¹(x)` and its log-determinant, no base density).
#[unsafe(no_mangle)]
#[inline(never)]
fn bench_model_flow(maf: &Model<'_>, x: &[f32; D], c: &[f32; C]) -> Option<f32> {
    let (u, log_det) = maf.inverse(x, c).ok()?;
    black_box(u);
    Some(log_det)
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
    let maf = match Model::from_region(region) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "error: no valid model in the MODEL flash region at {:#010x}: {e} (this \
                 bench-model was built for D={D} C={C} H={H} K={K} L={L}; rebuild it with \
                 MAF_MODEL set to the blob)",
                region.as_ptr() as usize
            );
            return EXIT_FAILURE;
        }
    };
    let view = *maf.view();
    let shape = view.shape();
    let base = maf.base();
    let activation = match maf.activation() {
        Activation::Relu => "relu",
        Activation::Tanh => "tanh",
    };
    let (base_name, covariance) = match base {
        Base::StandardNormal => ("normal", "none"),
        Base::Mixture { covariance, .. } => ("mixture", covariance_name(covariance)),
    };
    let _ = writeln!(
        out,
        "bench-model model D={D} C={C} H={H} K={K} L={L} batch_norm={} activation={activation} \
         base={base_name} components={} covariance={covariance} blob_bytes={} version={} \
         built_for_blob_bytes={MODEL_BLOB_LEN}",
        u8::from(shape.batch_norm),
        base.components(),
        view.blob_len(),
        view.version()
    );

    // Typical inputs: samples of the model (and of its context).
    let weights = view.weights();
    let c_mean = weights.get(2 * D..2 * D + C).unwrap_or_default();
    let c_inv = weights.get(2 * D + C..2 * D + 2 * C).unwrap_or_default();
    let mut rng = Rng(SEED);
    let mut inputs = [Input {
        x: [0.0; D],
        c: [0.0; C],
    }; N];
    let mut rejected = 0u32;
    let mut filled = 0;
    while filled < N {
        if rejected > 4 * N as u32 {
            eprintln!("error: the model gives no finite samples ({rejected} rejected)");
            return EXIT_FAILURE;
        }
        let z = rng.normal::<C>();
        let mut c = [0.0f32; C];
        for (((c, z), m), k) in c.iter_mut().zip(z).zip(c_mean).zip(c_inv) {
            *c = m + z / k;
        }
        let choice = 1.0 - rng.uniform(); // in [0, 1)
        let eps = rng.normal::<D>();
        let x = maf.draw_base(choice, &eps).and_then(|u| maf.sample(&u, &c));
        match x {
            // Through the timed wrapper only: a second call site of `Maf::log_prob`
            // can make LLVM outline its body, which loses the constant `D` in the
            // mixture base's loops (measured: 3.8x the instructions of the scorer
            // for a K=16 full mixture).
            Ok(x) if bench_model_log_prob(&maf, &x, &c).is_some() => {
                inputs[filled] = Input { x, c };
                filled += 1;
            }
            _ => rejected += 1,
        }
    }
    let _ = writeln!(
        out,
        "bench-model inputs vectors={N} seed={SEED:#x} rejected={rejected} source=sample_of_model"
    );

    // Maf and MafView agree bit for bit on every input (untimed).
    let mut scratch = [0.0f32; 4 * D + C + (K - 1) * H];
    let mut differ = 0u32;
    for i in &inputs {
        let a = bench_model_log_prob(&maf, &i.x, &i.c).map(f32::to_bits);
        let b = view
            .log_prob(&i.x, &i.c, &mut scratch)
            .ok()
            .map(f32::to_bits);
        differ += u32::from(a.is_none() || a != b);
    }

    let (p_mean, p_min, p_max) =
        time_calls(&ticks, &inputs, |i| bench_model_log_prob(&maf, &i.x, &i.c));
    let (f_mean, f_min, f_max) =
        time_calls(&ticks, &inputs, |i| bench_model_flow(&maf, &i.x, &i.c));
    let first = inputs[0];
    let stack = stack_used(PAINT, &mut || {
        black_box(bench_model_log_prob(
            black_box(&maf),
            black_box(&first.x),
            black_box(&first.c),
        ));
    });
    let flow_macs = shape.macs();
    let base_macs = base.macs(D);
    let _ = writeln!(
        out,
        "bench-model log_prob macs={} flow_macs={flow_macs} base_macs={base_macs} \
         instr_mean={p_mean} instr_min={p_min} instr_max={p_max} stack_bytes={stack} \
         activations_bytes={}",
        flow_macs + base_macs,
        Model::RAM_BYTES
    );
    let _ = writeln!(
        out,
        "bench-model flow instr_mean={f_mean} instr_min={f_min} instr_max={f_max}"
    );
    // Signed: `inverse` also copies `u` out, so on the standard normal base (9
    // instructions of work) the difference can be below zero.
    let _ = writeln!(
        out,
        "bench-model base instr_mean={} (log_prob minus flow)",
        p_mean as i64 - f_mean as i64
    );
    let ok = differ == 0;
    let _ = writeln!(
        out,
        "bench-model check maf_equals_view failures={differ} {}",
        if ok { "ok" } else { "FAIL" }
    );
    out.flush();
    if ok { EXIT_OK } else { EXIT_FAILURE }
}
