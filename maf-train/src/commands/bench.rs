//! `maf-train bench`: training speed on synthetic data.

use crate::cli::BenchArgs;
use crate::error::Result;
use crate::io::write_output;
use crate::train;

/// Runs `maf-train bench`.
///
/// # Errors
/// Bad settings.
pub fn run(a: &BenchArgs) -> Result<()> {
    let r = train::bench(a.dim, a.layers, a.hidden, a.batch_size, a.rows, a.epochs)?;
    let text = format!(
        "training D={} L={} H={} batch {} (one thread): {:.0} rows/s ({} rows in {:.3} s)\n",
        a.dim, a.layers, a.hidden, a.batch_size, r.rows_per_sec, r.rows, r.seconds
    );
    write_output(None, &text)
}
