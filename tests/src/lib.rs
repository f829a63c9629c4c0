//! End-to-end tests of the maf workspace live in `tests/tests/`; this library holds
//! their shared helpers: locating the workspace, building and running `maf-train`,
//! building the Cortex-M4F firmware for a given model and running it under QEMU.
//!
//! The firmware tests need `qemu-system-arm` (Debian: `qemu-system-arm`) and the
//! `thumbv7em-none-eabihf` target (`rust-toolchain.toml` installs it). Without QEMU
//! they **fail** with a message saying what to install; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use std::{env, fs, io::Read, thread};

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The firmware crate, `firmware-example/`.
pub fn firmware_dir() -> PathBuf {
    workspace().join("firmware-example")
}

/// A file of the bundled data sets, `data/NAME`.
pub fn data(name: &str) -> PathBuf {
    workspace().join("data").join(name)
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("maf-tests-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
}

impl Run {
    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `cmd` to completion, killing it after `timeout` (a firmware that hangs
/// must fail the test, not the CI job).
pub fn run(cmd: &mut Command, timeout: Duration) -> Run {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut out = child.stdout.take().map(reader);
    let mut err = child.stderr.take().map(reader);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.take().map(join).unwrap_or_default();
                panic!("{shown} did not finish within {timeout:?} (killed); stderr:\n{stderr}");
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    Run {
        status,
        stdout: out.take().map(join).unwrap_or_default(),
        stderr: err.take().map(join).unwrap_or_default(),
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn join(h: thread::JoinHandle<String>) -> String {
    h.join().unwrap_or_default()
}

/// Panics unless `run` exited with status 0, showing its output.
pub fn assert_success(what: &str, run: &Run) {
    assert!(
        run.status.success(),
        "{what} failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// `cargo` as the test runner was started with.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The `maf-train` binary, built once per test process (`cargo build -p maf-train
/// --release` in this workspace, with the caller's `CARGO_TARGET_DIR`).
pub fn maf_train() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let r = run(
            cargo().current_dir(workspace()).args([
                "build",
                "-p",
                "maf-train",
                "--release",
                "--message-format=json",
            ]),
            Duration::from_secs(1800),
        );
        assert_success("cargo build -p maf-train --release", &r);
        // The last compiler-artifact line with an executable is the binary.
        r.stdout
            .lines()
            .filter(|l| l.contains("\"executable\":\"") && l.contains("maf-train"))
            .filter_map(|l| l.split("\"executable\":\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(PathBuf::from)
            .next_back()
            .unwrap_or_else(|| panic!("no maf-train executable in cargo's output:\n{}", r.stdout))
    })
}

/// `maf-train ARGS...`, which must succeed.
pub fn maf_train_ok(args: &[&str]) -> Run {
    let r = run(
        Command::new(maf_train())
            .args(args)
            .current_dir(workspace()),
        Duration::from_secs(900),
    );
    assert_success(&format!("maf-train {}", args.join(" ")), &r);
    r
}

/// Fails (never skips) when QEMU is not installed, saying what to install.
pub fn require_qemu() {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "qemu-system-arm is not installed: the firmware tests run the Cortex-M4F build under \
         QEMU (Debian/Ubuntu: `apt-get install qemu-system-arm`; .ci/run installs it){}",
        if env::var_os("CI").is_some() {
            " [CI]"
        } else {
            ""
        }
    );
}

/// A firmware build for one model's shapes: the ELF files, copied out of the
/// firmware's target directory so that a later build for other shapes cannot
/// change them under a running test.
#[derive(Debug)]
pub struct Firmware {
    dir: tempfile::TempDir,
    machine: &'static Machine,
}

/// A Cortex-M machine of the test matrix (`firmware-example/machines.txt`).
#[derive(Debug)]
pub struct Machine {
    /// The core, for messages: `Cortex-M4F`, ...
    pub core: &'static str,
    /// The Rust target.
    pub target: &'static str,
    /// The QEMU machine (`MAF_MACHINE`).
    pub name: &'static str,
}

/// The Cortex-M4F (QEMU mps2-an386), the default target.
pub const M4F: Machine = Machine {
    core: "Cortex-M4F",
    target: "thumbv7em-none-eabihf",
    name: "mps2-an386",
};

/// Every machine of the matrix: M4F, M3 (soft float), M33, M55.
pub const MACHINES: [Machine; 4] = [
    M4F,
    Machine {
        core: "Cortex-M3",
        target: "thumbv7m-none-eabi",
        name: "mps2-an385",
    },
    Machine {
        core: "Cortex-M33",
        target: "thumbv8m.main-none-eabihf",
        name: "mps2-an505",
    },
    Machine {
        core: "Cortex-M55",
        target: "thumbv8m.main-none-eabihf",
        name: "mps3-an547",
    },
];

/// Serialises firmware builds within a test process (one target directory).
static BUILD: Mutex<()> = Mutex::new(());

impl Firmware {
    /// Builds `firmware-example` (release: the scorer and the self-test) for the
    /// model `model` (`MAF_MODEL`), as `cargo build --release` in
    /// `firmware-example/` does for those binaries.
    pub fn build(model: &Path) -> Self {
        Self::build_bins(model, &["firmware-example", "selftest"])
    }

    /// Builds only the scorer, `firmware-example` (each binary is a whole-program
    /// LTO build: one fewer saves most of a minute).
    pub fn build_scorer(model: &Path) -> Self {
        Self::build_bins(model, &["firmware-example"])
    }

    /// Builds the binaries `bins` (release) for the model `model` and copies their
    /// ELF files.
    pub fn build_bins(model: &Path, bins: &[&str]) -> Self {
        Self::build_for(&M4F, model, bins)
    }

    /// Builds the binaries `bins` (release) for `machine` (its target, and
    /// `MAF_MACHINE`) and the model `model`, and copies their ELF files.
    pub fn build_for(machine: &'static Machine, model: &Path, bins: &[&str]) -> Self {
        require_qemu();
        let dir = tempdir();
        let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
        let fw = firmware_dir();
        let mut cargo = firmware_cargo(model);
        cargo.env("MAF_MACHINE", machine.name).args([
            "build",
            "--release",
            "--target",
            machine.target,
        ]);
        for bin in bins {
            cargo.args(["--bin", bin]);
        }
        let r = run(&mut cargo, Duration::from_secs(1800));
        assert_success("cargo build --release (firmware-example)", &r);
        let out = fw.join("target").join(machine.target).join("release");
        for bin in bins {
            fs::copy(out.join(bin), dir.path().join(bin))
                .unwrap_or_else(|e| panic!("copying the {bin} ELF: {e}"));
        }
        Self { dir, machine }
    }

    /// The machine this build is for.
    pub fn machine(&self) -> &'static Machine {
        self.machine
    }

    /// Path of a binary's ELF (`firmware-example` or `selftest`).
    pub fn elf(&self, bin: &str) -> PathBuf {
        self.dir.path().join(bin)
    }

    /// Runs `bin` under QEMU through the crate's runner, with `model` written to
    /// the MODEL flash region and `args` as the semihosting command line.
    pub fn run(&self, bin: &str, model: &Path, args: &[&str]) -> Run {
        run(
            Command::new(firmware_dir().join("qemu-run.sh"))
                .arg(self.elf(bin))
                .args(args)
                .env("MAF_MODEL", model)
                .env("MAF_MACHINE", self.machine.name)
                .current_dir(workspace()),
            Duration::from_secs(300),
        )
    }
}

/// `cargo` in `firmware-example/` (its own `.cargo/config.toml`: target, runner)
/// with `MAF_MODEL` set, and none of the outer build's target settings.
pub fn firmware_cargo(model: &Path) -> Command {
    let mut c = cargo();
    c.current_dir(firmware_dir())
        .env("MAF_MODEL", model)
        .env_remove("MAF_MACHINE");
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        c.env_remove(var);
    }
    c
}

/// The first `n` data rows of a headered CSV, plus rows `[from, from + m)`, as a
/// new CSV in `dir` (the header kept).
pub fn csv_subset(src: &Path, dir: &Path, name: &str, ranges: &[(usize, usize)]) -> PathBuf {
    let text = fs::read_to_string(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut lines = text.lines();
    let mut out = String::new();
    out.push_str(lines.next().unwrap_or_default());
    out.push('\n');
    let rows: Vec<&str> = lines.collect();
    for &(from, len) in ranges {
        for row in rows.iter().skip(from).take(len) {
            out.push_str(row);
            out.push('\n');
        }
    }
    let path = dir.join(name);
    fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// The bundled example model, `firmware-example/models/basicmotions.maf`.
pub fn example_model() -> PathBuf {
    firmware_dir().join("models/basicmotions.maf")
}

/// The `summary:` line the firmware prints on standard error, parsed:
/// (vectors scored, anomalies, bad rows, instructions per inference, stack high-water).
pub fn summary(stderr: &str) -> Option<(u64, u64, u64, u64, u64)> {
    let line = stderr.lines().find(|l| l.starts_with("summary:"))?;
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect();
    // scored, anomalies, bad, instructions, "40" (SysTick factor), "0" (icount shift),
    // high-water, stack size.
    match nums.as_slice() {
        [scored, anomalies, bad, instr, _, _, hw, _] => {
            Some((*scored, *anomalies, *bad, *instr, *hw))
        }
        _ => None,
    }
}

/// A 64-bit LCG (the one of `maf-core/examples/bench_blobs.rs`): reproducible
/// numbers without a dependency.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number, uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// A ReLU blob of `shape` with seeded weights in ±0.2, zero means and unit scales
/// (standardisation and batch norm): `random.maf` of `bench_blobs` for seed 42.
pub fn random_blob(shape: maf_core::Shape, seed: u64, metadata: &str) -> Vec<u8> {
    random_blob_with(shape, seed, maf_core::Activation::Relu, metadata)
}

/// [`random_blob`] with the hidden activation `activation`.
pub fn random_blob_with(
    shape: maf_core::Shape,
    seed: u64,
    activation: maf_core::Activation,
    metadata: &str,
) -> Vec<u8> {
    random_blob_on(
        shape,
        seed,
        activation,
        maf_core::Base::StandardNormal,
        metadata,
    )
}

/// A seeded, valid Gaussian-mixture base section (format version 2) for `dim`
/// dimensions: means in ±1.5, precision factors with diagonals in [0.7, 1.4] and
/// other entries in ±0.2, weights from uniform [1, 3) normalised, and
/// `c_k = ln w_k + Σ_j ln W_jj − (D/2) ln 2π`.
pub fn mixture_section(dim: usize, base: maf_core::Base, seed: u64) -> Vec<f32> {
    let maf_core::Base::Mixture {
        components,
        covariance,
    } = base
    else {
        return Vec::new();
    };
    let mut rng = Lcg(seed);
    let raw: Vec<f64> = (0..components)
        .map(|_| f64::from(rng.uniform(1.0, 3.0)))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut out = Vec::new();
    for &r in &raw {
        let mean: Vec<f32> = (0..dim).map(|_| rng.uniform(-1.5, 1.5)).collect();
        let mut factor = Vec::new();
        let mut log_det = 0.0f64;
        for j in 0..dim {
            if covariance == maf_core::Covariance::Full {
                for _ in 0..j {
                    factor.push(rng.uniform(-0.2, 0.2));
                }
            }
            let diag = rng.uniform(0.7, 1.4);
            log_det += f64::from(diag).ln();
            factor.push(diag);
        }
        let c = (r / total).ln() + log_det - 0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln();
        out.push(c as f32);
        out.extend_from_slice(&mean);
        out.extend_from_slice(&factor);
    }
    out
}

/// [`random_blob_with`] on the base `base` (a seeded [`mixture_section`] for a
/// mixture). `shape.layers` may be 0 with a mixture base: the mixture alone.
pub fn random_blob_on(
    shape: maf_core::Shape,
    seed: u64,
    activation: maf_core::Activation,
    base: maf_core::Base,
    metadata: &str,
) -> Vec<u8> {
    let mut rng = Lcg(seed);
    let mut w: Vec<f32> = (0..shape.weight_count())
        .map(|_| rng.uniform(-0.2, 0.2))
        .collect();
    let d = shape.dim;
    w[..d].fill(0.0); // x_mean
    w[d..2 * d].fill(1.0); // x_inv_std
    if shape.batch_norm {
        for l in 0..shape.layers {
            let bn = shape.batch_norm_offset(l);
            w[bn..bn + d].fill(1.0);
            w[bn + d..bn + 2 * d].fill(0.0);
        }
    }
    w.extend(mixture_section(d, base, seed.wrapping_add(1)));
    let header = maf_core::blob::Header {
        shape,
        activation,
        threshold: Some(-20.0),
        base,
        window: maf_core::blob::Window::PER_VECTOR,
        columns: "",
        metadata,
    };
    maf_core::blob::write(&header, &w).unwrap_or_else(|e| panic!("invalid test blob: {e}"))
}

/// The header of the blob in the file `path` (shapes, base), read with maf-core.
pub fn blob_shape(path: &Path) -> (maf_core::Shape, maf_core::Base, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let aligned = maf_core::blob::AlignedBlob::new(&bytes);
    let view = maf_core::MafView::from_blob(aligned.as_bytes())
        .unwrap_or_else(|e| panic!("{}: not a valid blob: {e}", path.display()));
    (view.shape(), view.base(), view.version())
}

/// Scores `vectors` on the host (`maf-train score`) and on the device (the
/// scorer of `fw` under QEMU, `model` in the MODEL region), checks that the two
/// CSVs are equal byte for byte with `rows` data rows each, that the flags are
/// not all alike, and that the device's summary agrees; returns the device's
/// instructions per inference.
pub fn assert_device_equals_host(fw: &Firmware, model: &Path, vectors: &Path, rows: usize) -> u64 {
    let path = |p: &Path| {
        p.to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", p.display()))
            .to_owned()
    };
    let host_csv = vectors.with_extension("host.csv");
    maf_train_ok(&[
        "score",
        "--model",
        &path(model),
        "--data",
        &path(vectors),
        "--out",
        &path(&host_csv),
    ]);
    let host = fs::read_to_string(&host_csv).unwrap_or_else(|e| panic!("maf-train score: {e}"));
    let device = fw.run("firmware-example", model, &[&path(vectors)]);
    assert_success("the scorer under QEMU", &device);
    let host_lines: Vec<&str> = host.lines().collect();
    let dev_lines: Vec<&str> = device.stdout.lines().collect();
    assert_eq!(host_lines.first(), Some(&"log_prob,anomaly"));
    assert_eq!(host_lines.len(), rows + 1, "host rows");
    assert_eq!(
        dev_lines.len(),
        rows + 1,
        "device rows; stderr:\n{}",
        device.stderr
    );
    let mut anomalies = 0u64;
    for (i, (h, d)) in host_lines.iter().zip(&dev_lines).enumerate().skip(1) {
        let bits = |l: &str| -> (u32, String) {
            let (lp, flag) = l
                .split_once(',')
                .unwrap_or_else(|| panic!("row {i}: {l:?}"));
            let lp: f32 = lp
                .parse()
                .unwrap_or_else(|_| panic!("row {i}: log_prob {lp:?}"));
            (lp.to_bits(), flag.to_owned())
        };
        assert_eq!(bits(h), bits(d), "row {i}: host {h:?}, device {d:?}");
        anomalies += u64::from(d.ends_with(",1"));
    }
    assert_eq!(host, device.stdout, "host and device CSVs differ");
    assert!(
        anomalies >= 2,
        "fewer than 2 anomalies flagged: {anomalies}"
    );
    assert!(anomalies < rows as u64, "everything flagged");
    let (scored, flagged, bad, instructions, _) =
        summary(&device.stderr).unwrap_or_else(|| panic!("no summary:\n{}", device.stderr));
    assert_eq!((scored, flagged, bad), (rows as u64, anomalies, 0));
    assert!(instructions > 0, "no instruction count:\n{}", device.stderr);
    instructions
}

pub mod uart;

/// The bytes of a model blob, read only from a regular file of at most
/// `maf_core::blob::MAX_BLOB_BYTES`.
pub fn read_model(path: &Path) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if meta.len() > maf_core::blob::MAX_BLOB_BYTES as u64 {
        return Err(format!(
            "{}: {} bytes, more than any blob ({} bytes)",
            path.display(),
            meta.len(),
            maf_core::blob::MAX_BLOB_BYTES
        ));
    }
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The model's column names, features then context: the blob's (format v2), or
/// its `columns=` / `context_columns=` metadata (v1), or none.
pub fn model_columns(view: &maf_core::MafView<'_>) -> Vec<String> {
    let h = view.header();
    if !h.columns.is_empty() {
        return h.column_names().map(str::to_owned).collect();
    }
    let meta = |k: &str| {
        h.metadata
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    match (meta("columns"), meta("context_columns")) {
        (Some(x), Some(c)) => x
            .split(',')
            .chain(c.split(','))
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The data rows of a simple headered CSV (no quoted commas; a BOM, quotes
/// around cells and spaces are removed), each with its line number and its
/// values in the model's order: the columns matched to `names` by name, or by
/// position when `names` is empty.
pub fn read_vectors(
    path: &Path,
    names: &[String],
    n: usize,
) -> Result<Vec<(usize, Vec<f32>)>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let cells = |l: &str| -> Vec<String> {
        l.trim_end_matches('\r')
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_owned())
            .collect()
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(format!("{}: empty", path.display()))?;
    let header = cells(header);
    let order: Vec<usize> = if names.is_empty() {
        (0..n).collect()
    } else {
        names
            .iter()
            .map(|want| {
                header
                    .iter()
                    .position(|h| h == want)
                    .ok_or(format!("{}: no column {want:?}", path.display()))
            })
            .collect::<Result<_, _>>()?
    };
    if header.len() != n {
        return Err(format!(
            "{}: {} columns, the model has {n}",
            path.display(),
            header.len()
        ));
    }
    lines
        .map(|(i, l)| {
            let c = cells(l);
            let v = order
                .iter()
                .map(|&j| {
                    c.get(j).and_then(|s| s.parse::<f32>().ok()).ok_or(format!(
                        "{}: line {}: bad cell",
                        path.display(),
                        i + 1
                    ))
                })
                .collect::<Result<Vec<f32>, String>>()?;
            Ok((i + 1, v))
        })
        .collect()
}

/// Flash and static RAM of a 32-bit little-endian ELF (a Cortex-M firmware):
/// flash = the allocated sections with contents (`.vector_table`, `.text`,
/// `.rodata`, `.data`'s image), RAM = the allocated writable ones (`.data`,
/// `.bss`, `.uninit`). What `llvm-size -A` lists, summed.
pub fn elf_sizes(elf: &[u8]) -> (u64, u64) {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes([
            elf[o],
            elf[o + 1],
            elf[o + 2],
            elf[o + 3],
        ]))
    };
    assert_eq!(&elf[..5], b"\x7fELF\x01", "not a 32-bit ELF");
    let shoff = u32_at(0x20) as usize;
    let shentsize = u16_at(0x2e) as usize;
    let shnum = u16_at(0x30) as usize;
    let (mut flash, mut ram) = (0, 0);
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let kind = u32_at(sh + 4);
        let flags = u32_at(sh + 8);
        let size = u32_at(sh + 20);
        const ALLOC: u64 = 2;
        const WRITE: u64 = 1;
        const PROGBITS: u64 = 1;
        if flags & ALLOC == 0 {
            continue;
        }
        if kind == PROGBITS {
            flash += size;
        }
        if flags & WRITE != 0 {
            ram += size;
        }
    }
    (flash, ram)
}
