//! `maf-train report`: the result table of a scored test set and its plots.

use std::fmt::Write as _;

use crate::charts::report::{log_density_plot, plot_paths, roc_plot};
use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::io::scores::read_scores;
use crate::io::{load_view, read_labels, read_model, write_output};
use crate::report::{Parity, Summary, instructions_per_inference};

/// Runs `maf-train report`: prints the table (and the plot paths) on standard
/// output.
///
/// # Errors
/// Unreadable or malformed inputs; [`Error::ColumnMismatch`] naming the device
/// scores file when they differ from the host's (after printing the table).
pub fn run(a: &ReportArgs) -> Result<()> {
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let host = read_scores(&a.host_scores)?;
    let labels = read_labels(&a.labels, host.len())?;
    let mut summary = Summary::new(&host, &labels, &a.labels, view.threshold())?;
    if let Some(log) = &a.device_log {
        let text = std::fs::read_to_string(log).map_err(|e| Error::io(log, e))?;
        summary.instructions = instructions_per_inference(&text);
        if summary.instructions.is_none() {
            return Err(Error::ColumnMismatch {
                path: log.clone(),
                message: "no `summary: ... instructions per inference` line from the \
                          firmware (did the device run finish?)"
                    .into(),
            });
        }
    }
    if let Some(d) = &a.device_scores {
        summary.parity = Some(Parity::compare(&host, &read_scores(d)?));
    }
    let mut text = summary.table();
    if let Some(dir) = &a.plot_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let [density, roc] = plot_paths(dir);
        log_density_plot(&density, &host, &labels, summary.threshold)?;
        roc_plot(&roc, &host, &labels, &summary)?;
        let (density, roc) = (density.display().to_string(), roc.display().to_string());
        let w = density.len().max(roc.len()) + 2;
        let _ = writeln!(text, "plots (SVG)");
        let _ = writeln!(
            text,
            "  {density:<w$}log densities, normal vs anomalous, threshold marked"
        );
        let _ = writeln!(
            text,
            "  {roc:<w$}ROC curve, operating point of the threshold"
        );
    }
    write_output(None, &text)?;
    match (&summary.parity, &a.device_scores) {
        (Some(p), Some(d)) if !p.holds() => Err(Error::ColumnMismatch {
            path: d.clone(),
            message: format!(
                "device scores differ from the host scores ({}): {}",
                a.host_scores.display(),
                p.describe_difference()
            ),
        }),
        _ => Ok(()),
    }
}
