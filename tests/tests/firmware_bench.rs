//! The benchmark firmware (`firmware-example/src/bin/bench.rs`) under QEMU, on the
//! seeded random reference blob (D=8, H=64, K=1, L=5): the packed kernel must beat
//! the dense baseline, the two must agree within 1e-4, and the instruction counts
//! must stay within their regression bounds (ReLU at most 3, tanh at most 7
//! instructions per MAC). A blob of other shapes, or on a mixture base, is
//! refused. The `bench-model` binary (any shapes, any base) measures a
//! 16-component mixture alone within bounds.
//! `scripts/bench-device.sh` prints the full table (README "Benchmark").
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use maf_core::{Base, Covariance, Shape};
use maf_tests::{
    Run, assert_success, example_model, firmware_cargo, firmware_dir, require_qemu, run, tempdir,
    workspace,
};

const SHAPE: Shape = Shape::REFERENCE;

/// `random.maf` of `bench_blobs`: seeded weights in ±0.2, unit scales.
fn random_blob() -> Vec<u8> {
    maf_tests::random_blob(
        SHAPE,
        42,
        "bench: reference shape, seeded random weights (seed 42), relu",
    )
}

/// Serialises build-and-copy between the tests of this file (one target directory).
static BUILD: Mutex<()> = Mutex::new(());

/// Builds the `bench` binary and copies its ELF into `dir`.
fn build_bench(model: &Path, dir: &Path) -> PathBuf {
    require_qemu();
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let r = run(
        firmware_cargo(model).args(["build", "--release", "--bin", "bench"]),
        Duration::from_secs(1800),
    );
    assert_success("cargo build --release --bin bench (firmware-example)", &r);
    let elf = dir.join("bench");
    fs::copy(
        firmware_dir().join("target/thumbv7em-none-eabihf/release/bench"),
        &elf,
    )
    .expect("copying the bench ELF");
    elf
}

fn run_bench(elf: &Path, model: &Path) -> Run {
    run(
        Command::new(firmware_dir().join("qemu-run.sh"))
            .arg(elf)
            .env("MAF_MODEL", model)
            .current_dir(workspace()),
        Duration::from_secs(300),
    )
}

/// Builds the bench firmware for the blob `bytes` (saved as `name`), runs it, and
/// returns its standard output after checking that it succeeded.
fn bench_blob(name: &str, bytes: &[u8]) -> String {
    let tmp = tempdir();
    let model = tmp.path().join(name);
    fs::write(&model, bytes).expect("writable");
    let elf = build_bench(&model, tmp.path());
    let r = run_bench(&elf, &model);
    println!("{}", r.stdout);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.stdout, r.stderr);
    r.stdout
}

/// The value of `key=` on the output line starting with `bench RECORD`.
fn field<T: std::str::FromStr>(stdout: &str, record: &str, key: &str) -> T {
    let prefix = format!("bench {record} ");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"));
    let value = line
        .split(' ')
        .find_map(|t| t.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key}={value:?} does not parse"))
}

#[test]
fn packed_kernel_beats_the_dense_baseline_on_the_reference_shape() {
    let bytes = random_blob();
    let stdout = bench_blob("random.maf", &bytes);
    let out = stdout.as_str();

    assert_eq!(field::<usize>(out, "model", "blob_bytes"), bytes.len());
    assert_eq!(field::<usize>(out, "inputs", "vectors"), 256);

    // Agreement of the dense baseline with maf-core.
    let err: f32 = field(out, "agree", "max_rel_err");
    assert!(err <= 1e-4, "max relative error {err}");
    assert_eq!(field::<u32>(out, "agree", "failures"), 0);
    assert!(out.contains("tol=1e-4 failures=0 ok"), "{out}");

    // The packed kernel does half the MACs and must be faster.
    let macs: u64 = field(out, "packed", "macs");
    let dense_macs: u64 = field(out, "dense", "macs");
    assert_eq!(macs, SHAPE.macs() as u64);
    assert_eq!(dense_macs, SHAPE.dense_macs() as u64);
    let packed: u64 = field(out, "packed", "instr_mean");
    let dense: u64 = field(out, "dense", "instr_mean");
    assert!(
        packed < dense,
        "packed {packed} instructions, dense {dense}: the packed kernel must win"
    );

    // The goal of issue #5: at most 3 instructions per unmasked MAC (measured at
    // 410607a: packed 10.3k = 2.67 per MAC with half the units active; dense
    // 26.0k = 3.4 per MAC). QEMU's instruction count is deterministic for a given
    // binary, so this is a fixed bound, not a timing.
    assert!(
        packed > macs && packed <= 3 * macs,
        "packed {packed} instructions: over 3 per MAC ({macs} MACs)"
    );
    assert!(
        dense > dense_macs && dense < 6 * dense_macs,
        "dense {dense}"
    );
    let (min, max): (u64, u64) = (
        field(out, "packed", "instr_min"),
        field(out, "packed", "instr_max"),
    );
    assert!(min <= packed && packed <= max, "{min} {packed} {max}");

    // RAM: the activations of Maf::RAM_BYTES, and a small stack in all.
    assert_eq!(
        field::<usize>(out, "packed", "activations_bytes"),
        SHAPE.ram_bytes()
    );
    let stack: usize = field(out, "packed", "stack_bytes");
    assert!(
        stack >= SHAPE.ram_bytes() && stack < 2048,
        "packed stack {stack}"
    );
}

/// tanh models (`maf-train`'s default) on the register path with the device's
/// branchy `tanh`: a bound that the earlier kernel (accumulators in memory, 7.7
/// instructions per MAC on a trained tanh model) would fail.
#[test]
fn tanh_models_stay_under_7_instructions_per_mac() {
    let bytes = maf_tests::random_blob_with(
        SHAPE,
        42,
        maf_core::Activation::Tanh,
        "bench: reference shape, seeded random weights (seed 42), tanh",
    );
    let stdout = bench_blob("random_tanh.maf", &bytes);
    let out = stdout.as_str();
    assert!(out.contains("tol=1e-4 failures=0 ok"), "{out}");
    let macs: u64 = field(out, "packed", "macs");
    let packed: u64 = field(out, "packed", "instr_mean");
    let dense: u64 = field(out, "dense", "instr_mean");
    assert!(packed < dense, "packed {packed}, dense {dense}");
    assert!(
        packed > macs && packed <= 7 * macs,
        "packed {packed} instructions: over 7 per MAC ({macs} MACs)"
    );
}

#[test]
fn bench_refuses_a_blob_of_other_shapes() {
    let tmp = tempdir();
    let elf = build_bench(&example_model(), tmp.path());
    // The bundled model is D=6: not the reference shape.
    let r = run_bench(&elf, &example_model());
    assert_eq!(r.code(), Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("the bench firmware measures the reference shape D=8 C=0 H=64 K=1 L=5")
            && r.stderr.contains("D=6"),
        "{}",
        r.stderr
    );
    // The reference shape on a mixture base: the dense baseline has none, so the
    // bench refuses it (the same ELF: bench's shapes are its own).
    let mixture = tmp.path().join("reference_on_mixture.maf");
    let bytes = maf_tests::random_blob_on(
        SHAPE,
        42,
        maf_core::Activation::Relu,
        Base::Mixture {
            components: 4,
            covariance: Covariance::Full,
        },
        "bench: reference shape on a mixture",
    );
    fs::write(&mixture, bytes).expect("writable");
    let r = run_bench(&elf, &mixture);
    assert_eq!(r.code(), Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("compares flows on the standard normal base")
            && r.stderr
                .contains("mixture of 4 Gaussians (full covariance)")
            && r.stderr.contains("bench-model"),
        "{}",
        r.stderr
    );
}

/// `bench-model` (any shapes, any base) on a seeded mixture alone, D=9, K=16,
/// full covariance: Maf equals MafView on every input, the MAC count is the
/// base's, and the instruction count stays within bounds (measured 3,604 on the
/// trained shuttle mixture of `scripts/bench-device.sh --models`; the kernel
/// outlined, without a constant D, took 13,562).
#[test]
fn bench_model_measures_a_mixture_alone() {
    let tmp = tempdir();
    let shape = Shape {
        dim: 9,
        context: 0,
        hidden: 1,
        hidden_layers: 1,
        layers: 0,
        batch_norm: false,
    };
    let base = Base::Mixture {
        components: 16,
        covariance: Covariance::Full,
    };
    let model = tmp.path().join("mixture16.maf");
    let bytes = maf_tests::random_blob_on(
        shape,
        7,
        maf_core::Activation::Relu,
        base,
        "bench-model: seeded mixture",
    );
    fs::write(&model, &bytes).expect("writable");
    require_qemu();
    let elf = {
        let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
        let r = run(
            firmware_cargo(&model).args(["build", "--release", "--bin", "bench-model"]),
            Duration::from_secs(1800),
        );
        assert_success("cargo build --release --bin bench-model", &r);
        let elf = tmp.path().join("bench-model");
        fs::copy(
            firmware_dir().join("target/thumbv7em-none-eabihf/release/bench-model"),
            &elf,
        )
        .expect("copying the bench-model ELF");
        elf
    };
    let r = run_bench(&elf, &model);
    println!("{}", r.stdout);
    assert_eq!(r.code(), Some(0), "{}\n{}", r.stdout, r.stderr);
    let out = r.stdout.as_str();
    assert!(out.contains("maf_equals_view failures=0 ok"), "{out}");
    let model_line = |key: &str| -> String {
        let line = out
            .lines()
            .find(|l| l.starts_with("bench-model model "))
            .unwrap_or_else(|| panic!("no model line:\n{out}"));
        line.split(' ')
            .find_map(|t| t.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
            .to_owned()
    };
    assert_eq!(model_line("L"), "0");
    assert_eq!(model_line("components"), "16");
    assert_eq!(model_line("covariance"), "full");
    assert_eq!(model_line("blob_bytes"), bytes.len().to_string());
    let bench_model = |record: &str, key: &str| -> u64 {
        field(&out.replace("bench-model ", "bench "), record, key)
    };
    assert_eq!(bench_model("log_prob", "macs"), base.macs(9) as u64);
    assert_eq!(bench_model("log_prob", "flow_macs"), 0);
    let instructions = bench_model("log_prob", "instr_mean");
    assert!(
        (2_000..6_000).contains(&instructions),
        "{instructions} instructions for a K=16 full mixture, D=9"
    );
    let stack = bench_model("log_prob", "stack_bytes");
    assert!(stack > 0 && stack < 1024, "stack {stack}");
}
