//! The window plots of `maf-train report` for a model with a window (or
//! `--window N`): the window score over time with the anomalous stretches, the
//! threshold and the alarms; and the ROC curve of the window score.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::report::{ANOMALY, NORMAL, draw_roc};
use super::svg::{draw_legend, plot_err, write_svg};
use crate::error::Result;
use crate::metrics;
use crate::report::roc_curve;
use crate::windows::{WindowEval, Windows, alarm, anomaly_runs};

/// The window plot files `report` writes into a directory.
pub fn window_plot_paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("window_score.svg"), dir.join("window_roc.svg")]
}

/// The window score of every decision (row `len - 1` on) against the row
/// number, the rows labelled anomalous shaded, the window threshold dashed and
/// each alarm ticked under the curve. Window scores below the 1% quantile (or
/// `-inf`) are drawn at the bottom edge, as the caption says.
///
/// # Errors
/// [`crate::Error::Io`] writing `path` or drawing.
pub fn window_score_plot(
    path: &Path,
    windows: &Windows,
    labels: &[bool],
    ev: &WindowEval,
    threshold: Option<f32>,
) -> Result<()> {
    let (len, scores) = (windows.len, &windows.scores);
    let rows = labels.len().max(scores.len() + len - 1);
    let values: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut lo = metrics::quantile(&finite, 0.01);
    if let Some(t) = threshold.map(f64::from).filter(|t| t.is_finite()) {
        lo = lo.min(t);
    }
    if !(lo.is_finite() && hi.is_finite()) || lo >= hi {
        lo = if hi.is_finite() { hi - 1.0 } else { -1.0 };
    }
    let span = hi - lo;
    let (lo, hi) = (lo - 0.04 * span, hi + 0.04 * span);
    let clipped = values.iter().filter(|&&v| v < lo || v.is_nan()).count();
    let runs = anomaly_runs(labels);
    write_svg(path, (1000, 520), |root| {
        let e = |x| plot_err(path, x);
        let (main, foot) = root.split_vertically(490);
        let mut caption =
            format!("window of {len} vectors: a decision per vector from vector {len} on");
        if clipped > 0 {
            caption.push_str(&format!(
                "; {clipped} window scores below {lo:.1} drawn at the bottom edge"
            ));
        }
        foot.draw(&Text::new(
            caption,
            (75, 5),
            ("sans-serif", 14).into_font().color(&BLACK.mix(0.7)),
        ))
        .map_err(e)?;
        let f = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |v| format!("{v:.d$}"));
        let title = format!(
            "Window score over the test rows: false-alarm rate {}, mean delay {} vectors",
            f(ev.false_alarm_rate, 4),
            f(ev.delay_mean, 1)
        );
        let mut chart = ChartBuilder::on(&main)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(0.0..rows as f64, lo..hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .x_desc("row (vector number in the file)")
            .y_desc("window score (mean log p, nats)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(runs.iter().map(|&(s, t)| {
                Rectangle::new([(s as f64, lo), (t as f64, hi)], ANOMALY.mix(0.12).filled())
            }))
            .map_err(e)?
            .label("rows labelled anomalous")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 6), (x + 18, y + 6)], ANOMALY.mix(0.25).filled())
            });
        let points = values
            .iter()
            .enumerate()
            .map(|(w, &v)| ((w + len - 1) as f64, if v >= lo { v } else { lo }));
        chart
            .draw_series(LineSeries::new(points, NORMAL.stroke_width(1)))
            .map_err(e)?
            .label("window score")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], NORMAL.stroke_width(2)));
        if let Some(t) = threshold.filter(|t| t.is_finite()) {
            let t64 = f64::from(t);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, t64), (rows as f64, t64)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?
                .label(format!("window threshold {t64:.2}: below it = alarm"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
            let tick = 0.03 * (hi - lo);
            chart
                .draw_series(
                    scores
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| alarm(**s, t))
                        .map(|(w, _)| {
                            let x = (w + len - 1) as f64;
                            PathElement::new([(x, lo), (x, lo + tick)], ANOMALY.stroke_width(1))
                        }),
                )
                .map_err(e)?
                .label("alarm")
                .legend(|(x, y)| PathElement::new([(x + 9, y - 6), (x + 9, y + 6)], ANOMALY));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, 15, path)?;
        Ok(())
    })
}

/// The ROC curve of the window score over the windows that are all normal or all
/// anomalous ([`Windows::pure`]), with the operating point of the window
/// threshold.
///
/// # Errors
/// [`crate::Error::Io`] writing `path` or drawing.
pub fn window_roc_plot(
    path: &Path,
    windows: &Windows,
    ev: &WindowEval,
    threshold: Option<f32>,
) -> Result<()> {
    let (pure, labels) = windows.pure();
    let op = threshold.map(|t| {
        let flagged = |class: bool| {
            let n = labels.iter().filter(|&&l| l == class).count();
            let k = pure
                .iter()
                .zip(&labels)
                .filter(|&(&s, &l)| l == class && alarm(-s as f32, t))
                .count();
            k as f64 / n.max(1) as f64
        };
        let point = (flagged(false), flagged(true));
        let label = format!("window threshold: TPR {:.2}, FPR {:.3}", point.1, point.0);
        (point, label)
    });
    let title = match ev.auroc {
        Some(a) => format!("ROC of {}-vector windows: AUROC {a:.3}", ev.len),
        None => "ROC of the windows: needs all-normal and all-anomalous windows".to_string(),
    };
    let axes = [
        "false positive rate (all-normal windows flagged)",
        "true positive rate (all-anomalous windows flagged)",
    ];
    draw_roc(
        path,
        &roc_curve(&pure, &labels),
        &title,
        axes,
        "maf, score -window score",
        op,
    )
}
