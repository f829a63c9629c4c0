//! `maf-uart`: scores a CSV on the UART firmware under QEMU, frame by frame, and
//! writes the same `log_prob,anomaly` CSV as `maf-train score`.
//!
//! ```text
//! maf-uart --model M.maf --data X.csv --out S.csv [--machine mps2-an386] [--elf ELF]
//! ```
//!
//! The firmware (`firmware-example`, bin `uart`) must be built for the model's
//! shapes (`MAF_MODEL=M.maf cargo build --release --bin uart`); `--elf` defaults
//! to that build for the machine's target. The CSV's header is matched to the
//! model's column names by name (as the firmware's CSV scorer and `maf-train` do);
//! each row goes as one frame (postcard COBS, `firmware-example/README.md`). A
//! row the device refuses gets no output row and a message; the exit status is
//! then 2. Exit 1: the model, the CSV or the link failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use std::{env, fs};

use maf_tests::uart::{Answer, Link, request};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("maf-uart: error: {e}");
            ExitCode::from(1)
        }
    }
}

struct Args {
    model: PathBuf,
    data: PathBuf,
    out: PathBuf,
    machine: String,
    elf: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut it = env::args().skip(1);
    let (mut model, mut data, mut out, mut machine, mut elf) = (None, None, None, None, None);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(val()?)),
            "--data" => data = Some(PathBuf::from(val()?)),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--machine" => machine = Some(val()?),
            "--elf" => elf = Some(PathBuf::from(val()?)),
            _ => {
                return Err(format!(
                    "unknown argument {a:?}\nusage: maf-uart --model M.maf --data X.csv \
                     --out S.csv [--machine NAME] [--elf ELF]"
                ));
            }
        }
    }
    Ok(Args {
        model: model.ok_or("--model is required")?,
        data: data.ok_or("--data is required")?,
        out: out.ok_or("--out is required")?,
        machine: machine.unwrap_or_else(|| "mps2-an386".into()),
        elf,
    })
}

fn run() -> Result<ExitCode, String> {
    let a = args()?;
    let blob = maf_tests::read_model(&a.model)?;
    let aligned = maf_core::blob::AlignedBlob::new(&blob);
    let view = maf_core::MafView::from_blob(aligned.as_bytes())
        .map_err(|e| format!("{}: {e}", a.model.display()))?;
    let shape = view.shape();
    let names = maf_tests::model_columns(&view);
    let rows = maf_tests::read_vectors(&a.data, &names, shape.dim + shape.context)?;

    let elf = match a.elf {
        Some(e) => e,
        None => {
            let target = maf_tests::MACHINES
                .iter()
                .find(|m| m.name == a.machine)
                .ok_or(format!("unknown machine {}", a.machine))?
                .target;
            maf_tests::firmware_dir().join(format!("target/{target}/release/uart"))
        }
    };
    let runner = maf_tests::firmware_dir().join("qemu-run.sh");
    // The runner takes a relative MAF_MODEL from its own directory: make it absolute.
    let model = fs::canonicalize(&a.model).map_err(|e| format!("{}: {e}", a.model.display()))?;
    let mut link = Link::start(&runner, &elf, &a.machine, &model)
        .map_err(|e| format!("starting {}: {e}", runner.display()))?;
    let wait = Duration::from_secs(60);
    match link.answer(wait)? {
        Answer::Ready { features, context }
            if usize::from(features) == shape.dim && usize::from(context) == shape.context => {}
        other => {
            return Err(format!(
                "the device did not boot ready for this model: {other:?}"
            ));
        }
    }

    let mut out = String::from("log_prob,anomaly\n");
    let mut refused = 0usize;
    // Keep a few frames in flight; answers come back in order.
    const AHEAD: usize = 32;
    let mut sent = 0;
    for i in 0..rows.len() {
        while sent < rows.len() && sent < i + AHEAD {
            link.send(&request(&rows[sent].1))
                .map_err(|e| format!("writing to the device: {e}"))?;
            sent += 1;
        }
        match link.answer(wait)? {
            Answer::Score { log_prob, anomaly } => {
                out.push_str(&format!("{log_prob},{}\n", u8::from(anomaly)));
            }
            Answer::Refused(r) => {
                refused += 1;
                eprintln!(
                    "maf-uart: {}: line {}: refused by the device: {}; not scored",
                    a.data.display(),
                    rows[i].0,
                    r.describe()
                );
            }
            other => return Err(format!("unexpected answer {other:?}")),
        }
    }
    fs::write(&a.out, out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    Ok(if refused > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
