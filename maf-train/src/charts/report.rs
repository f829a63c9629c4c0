//! The two plots of `maf-train report`: log densities of normal vs anomalous
//! vectors with the threshold, and the ROC curve.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::svg::{draw_legend, plot_err, write_svg};
use crate::error::Result;
use crate::metrics;
use crate::report::{ScoreRow, Summary, roc_curve};

/// Colour of the normal class.
pub const NORMAL: RGBColor = RGBColor(31, 119, 180);
/// Colour of the anomalous class.
pub const ANOMALY: RGBColor = RGBColor(214, 39, 40);

/// Histogram of the log densities of normal and anomalous vectors (each as a
/// fraction of its class, so the classes compare despite their sizes), with the
/// threshold as a vertical line. Log densities far in the left tail (below the 2%
/// quantile of all rows, or `-inf`) are counted in the leftmost bin, as the
/// caption says.
///
/// # Errors
/// [`crate::Error::Io`] writing `path` or drawing.
pub fn log_density_plot(
    path: &Path,
    host: &[ScoreRow],
    labels: &[bool],
    threshold: Option<f32>,
) -> Result<()> {
    const BINS: usize = 80;
    let lps: Vec<f64> = host.iter().map(|r| f64::from(r.log_prob)).collect();
    let finite: Vec<f64> = lps.iter().copied().filter(|v| v.is_finite()).collect();
    let t = threshold.map(f64::from);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut lo = metrics::quantile(&finite, 0.02);
    if let Some(t) = t.filter(|t| t.is_finite()) {
        lo = lo.min(t);
    }
    if !(lo.is_finite() && hi.is_finite()) || lo >= hi {
        lo = if hi.is_finite() { hi - 1.0 } else { -1.0 };
    }
    let span = hi - lo;
    let (lo, hi) = (lo - 0.02 * span, hi + 0.02 * span);
    let width = (hi - lo) / BINS as f64;
    let mut counts = [[0usize; BINS]; 2];
    let mut clipped = 0usize;
    for (&v, &l) in lps.iter().zip(labels) {
        if v < lo {
            clipped += 1;
        }
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(BINS - 1);
        counts[usize::from(l)][b] += 1;
    }
    let n = [
        labels.iter().filter(|&&l| !l).count().max(1),
        labels.iter().filter(|&&l| l).count().max(1),
    ];
    let frac = |c: usize, b: usize| counts[c][b] as f64 / n[c] as f64;
    let ymax = (0..BINS)
        .flat_map(|b| [frac(0, b), frac(1, b)])
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.12;
    let n_normal = labels.iter().filter(|&&l| !l).count();
    let n_anom = labels.len() - n_normal;
    write_svg(path, (900, 560), |root| {
        let e = |x| plot_err(path, x);
        let caption = if clipped > 0 {
            format!(
                "{clipped} vectors with log p(x) < {lo:.1} (the far tail) are counted in the leftmost bin"
            )
        } else {
            String::new()
        };
        let (main, foot) = root.split_vertically(530);
        foot.draw(&Text::new(
            caption,
            (70, 5),
            ("sans-serif", 14).into_font().color(&BLACK.mix(0.7)),
        ))
        .map_err(e)?;
        let mut chart = ChartBuilder::on(&main)
            .caption(
                "Log density of the test vectors: normal vs anomalous",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(lo..hi, 0.0..ymax)
            .map_err(e)?;
        chart
            .configure_mesh()
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .x_desc("log p(x)  (nats, raw data units)")
            .y_desc("fraction of the class per bin")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        for (c, colour, name, count) in [
            (0, NORMAL, "normal", n_normal),
            (1, ANOMALY, "anomalous", n_anom),
        ] {
            chart
                .draw_series((0..BINS).filter(|&b| counts[c][b] > 0).map(|b| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new(
                        [(x0, 0.0), (x0 + width, frac(c, b))],
                        colour.mix(0.35).filled(),
                    )
                }))
                .map_err(e)?;
            // The outline of the histogram as a step line (carries the legend).
            let mut step = vec![(lo, 0.0)];
            for b in 0..BINS {
                let x0 = lo + b as f64 * width;
                step.push((x0, frac(c, b)));
                step.push((x0 + width, frac(c, b)));
            }
            step.push((hi, 0.0));
            chart
                .draw_series(LineSeries::new(step, colour.stroke_width(2)))
                .map_err(e)?
                .label(format!("{name} (n = {count})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour.mix(0.6).filled())
                });
        }
        if let Some(t) = t.filter(|t| t.is_finite()) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, ymax)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?
                .label(format!("threshold {t:.2}: below it = anomaly"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 15, path)?;
        Ok(())
    })
}

/// The ROC curve of the anomaly score `-log p(x)`, with the chance diagonal and the
/// operating point of the stored threshold.
///
/// # Errors
/// [`crate::Error::Io`] writing `path` or drawing.
pub fn roc_plot(path: &Path, host: &[ScoreRow], labels: &[bool], summary: &Summary) -> Result<()> {
    let scores: Vec<f64> = host.iter().map(|r| -f64::from(r.log_prob)).collect();
    let c = summary.confusion;
    let op = summary.threshold.map(|_| {
        let op = (
            c.fp as f64 / (c.fp + c.tn).max(1) as f64,
            c.tp as f64 / (c.tp + c.fn_).max(1) as f64,
        );
        (
            op,
            format!("stored threshold: TPR {:.2}, FPR {:.3}", op.1, op.0),
        )
    });
    let title = match summary.auroc {
        Some(a) => format!("ROC of the anomaly score -log p(x): AUROC {a:.3}"),
        None => "ROC: needs both classes in the labels".to_string(),
    };
    let axes = [
        "false positive rate (normal vectors flagged)",
        "true positive rate (anomalies flagged)",
    ];
    draw_roc(
        path,
        &roc_curve(&scores, labels),
        &title,
        axes,
        "maf, score -log p(x)",
        op,
    )
}

/// An ROC chart: `curve` (false and true positive rates) labelled `series`, the
/// chance diagonal, and an operating point with its legend line.
///
/// # Errors
/// [`crate::Error::Io`] writing `path` or drawing.
pub fn draw_roc(
    path: &Path,
    curve: &[(f64, f64)],
    title: &str,
    axes: [&str; 2],
    series: &str,
    op: Option<((f64, f64), String)>,
) -> Result<()> {
    write_svg(path, (620, 600), |root| {
        let e = |x| plot_err(path, x);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(e)?;
        chart
            .configure_mesh()
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .x_desc(axes[0])
            .y_desc(axes[1])
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                5,
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(e)?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.4)));
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                ANOMALY.stroke_width(3),
            ))
            .map_err(e)?
            .label(series)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], ANOMALY.stroke_width(3)));
        if let Some((point, label)) = op {
            chart
                .draw_series([Circle::new(point, 6, BLACK.filled())])
                .map_err(e)?
                .label(label)
                .legend(|(x, y)| Circle::new((x + 9, y), 5, BLACK.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 15, path)?;
        Ok(())
    })
}

/// The plot files `report` writes into a directory.
pub fn plot_paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("log_density.svg"), dir.join("roc.svg")]
}
