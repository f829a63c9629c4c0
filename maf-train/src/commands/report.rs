//! `maf-train report`: the result table of a scored test set and its plots.

use std::fmt::Write as _;

use crate::charts::report::{log_density_plot, plot_paths, roc_plot};
use crate::charts::windows::{window_plot_paths, window_roc_plot, window_score_plot};
use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::io::scores::read_scores;
use crate::io::{load_view, read_labels, read_model, write_output};
use crate::report::{Parity, Summary, instructions_per_inference};
use crate::windows;

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
    let window = windows::choose(&view, a.window)?.map(|w| {
        let lps: Vec<Option<f32>> = host.iter().map(|r| Some(r.log_prob)).collect();
        let wins = windows::Windows::new(&lps, Some(&labels), w.len);
        let ev = wins.evaluate(Some(&labels), w.threshold);
        text.push_str(&window_rows(&ev, &w));
        (w, wins, ev)
    });
    if let Some(dir) = &a.plot_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let [density, roc] = plot_paths(dir);
        log_density_plot(&density, &host, &labels, summary.threshold)?;
        roc_plot(&roc, &host, &labels, &summary)?;
        let mut plots = vec![
            (
                density,
                "log densities, normal vs anomalous, threshold marked",
            ),
            (roc, "ROC curve, operating point of the threshold"),
        ];
        if let Some((w, wins, ev)) = &window {
            let [timeline, wroc] = window_plot_paths(dir);
            window_score_plot(&timeline, wins, &labels, ev, w.threshold)?;
            window_roc_plot(&wroc, wins, ev, w.threshold)?;
            plots.push((
                timeline,
                "window score over the rows, anomalous rows shaded, alarms",
            ));
            plots.push((
                wroc,
                "ROC curve of the window score, operating point of its threshold",
            ));
        }
        let plots: Vec<(String, &str)> = plots
            .into_iter()
            .map(|(p, what)| (p.display().to_string(), what))
            .collect();
        let w = plots.iter().map(|(p, _)| p.len()).max().unwrap_or(0) + 2;
        let _ = writeln!(text, "plots (SVG)");
        for (p, what) in &plots {
            let _ = writeln!(text, "  {p:<w$}{what}");
        }
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

/// The window rows of the table, in its `name   value` layout.
fn window_rows(ev: &windows::WindowEval, w: &windows::Chosen) -> String {
    let mut t = String::new();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(t, "  {name:<36}{value}");
    };
    let f = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |v| format!("{v:.d$}"));
    row(
        "window",
        format!(
            "{} vectors: {} all-normal, {} all-anomalous, {} mixed windows",
            w.len, ev.normal_windows, ev.anomalous_windows, ev.mixed_windows
        ),
    );
    row("window AUROC, score -window score", f(ev.auroc, 4));
    match w.threshold {
        Some(t) => {
            row("window threshold", format!("window score < {t}"));
            row(
                "false-alarm rate, normal windows",
                format!("{} (target {})", f(ev.false_alarm_rate, 4), f(w.rate, 4)),
            );
            row(
                "anomaly runs detected",
                format!(
                    "{} of {}, mean delay {} vectors",
                    ev.detected,
                    ev.runs,
                    f(ev.delay_mean, 1)
                ),
            );
        }
        None => row(
            "window threshold",
            format!(
                "none for {} vectors: `maf-train recalibrate --window {}` calibrates one",
                w.len, w.len
            ),
        ),
    }
    t
}
