//! `maf-train bench`: training speed and batched log-density speed on synthetic
//! data, in memory (no file parsing), so a peer can be compared on equal terms.

use crate::cli::BenchArgs;
use crate::error::Result;
use crate::io::write_output;
use crate::{parallel, train};

/// Rows scored per pass of the log-density benchmark.
const DENSITY_ROWS: usize = 65_536;

/// Runs `maf-train bench`.
///
/// # Errors
/// Bad settings.
pub fn run(a: &BenchArgs) -> Result<()> {
    let threads = if a.threads == 0 {
        parallel::available_threads()
    } else {
        a.threads
    };
    let activation = crate::model::Activation::from(a.activation);
    let r = train::bench_config(&train::BenchConfig {
        dim: a.dim,
        layers: a.layers,
        hidden: a.hidden,
        activation,
        batch: a.batch_size,
        rows: a.rows,
        epochs: a.epochs,
        min_seconds: 0.0,
        threads,
    })?;
    let mut text = format!(
        "training D={} L={} H={} {} batch {} ({threads} thread{}): {:.0} rows/s ({} rows in {:.3} s)\n",
        a.dim,
        a.layers,
        a.hidden,
        name(activation),
        a.batch_size,
        if threads == 1 { "" } else { "s" },
        r.rows_per_sec,
        r.rows,
        r.seconds
    );
    for act in [maf_core::Activation::Relu, maf_core::Activation::Tanh] {
        let d = parallel::bench_log_density(
            a.dim,
            a.layers,
            a.hidden,
            act,
            DENSITY_ROWS,
            threads,
            1.0,
        )?;
        text.push_str(&format!(
            "log density D={} L={} H={} {}, batched ({threads} thread{}): {:.0} rows/s\n",
            a.dim,
            a.layers,
            a.hidden,
            name(act),
            if threads == 1 { "" } else { "s" },
            d.rows_per_sec
        ));
    }
    write_output(None, &text)
}

/// An activation's name in lower case (`tanh`, `relu`).
fn name(a: impl std::fmt::Debug) -> String {
    format!("{a:?}").to_lowercase()
}
