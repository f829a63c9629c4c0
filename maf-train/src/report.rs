//! `maf-train report`: the result table of a scored test set — test
//! log-likelihood, AUROC/AUPRC, confusion counts at the stored threshold, the
//! device's instructions per inference and whether the device's scores equal the
//! host's bit for bit — and the two plots that go with it (log densities of normal
//! vs anomalous vectors with the threshold, and the ROC curve).
//!
//! The inputs are files the other tools write: `maf-train score` (host scores),
//! the firmware's standard output (device scores, the same `log_prob,anomaly`
//! format) and standard error (its `summary:` line).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::metrics::{self, Confusion};

/// `maf-train report` (see `maf-train report --help`).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The model blob that scored the data (for its stored threshold).
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Labels: a CSV with an `anomaly` column of 0/1, row for row with the scores.
    #[arg(long, value_name = "LABELS.csv")]
    pub labels: PathBuf,
    /// Host scores, as written by `maf-train score --out`.
    #[arg(long, value_name = "HOST.csv")]
    pub host_scores: PathBuf,
    /// Device scores: the firmware's standard output (same `log_prob,anomaly`
    /// format). When given, every row must equal the host's bit for bit, or the
    /// command fails.
    #[arg(long, value_name = "DEVICE.csv")]
    pub device_scores: Option<PathBuf>,
    /// The firmware's standard error, for the instructions per inference on its
    /// `summary:` line.
    #[arg(long, value_name = "DEVICE.log")]
    pub device_log: Option<PathBuf>,
    /// Also write `log_density.svg` and `roc.svg` into this directory (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
}

/// Runs `maf-train report`: prints the table (and the plot paths) on standard
/// output.
///
/// # Errors
/// Unreadable or malformed inputs; [`Error::ColumnMismatch`] naming the device
/// scores file when they differ from the host's (after printing the table).
pub fn run(a: &ReportArgs) -> Result<()> {
    let blob = crate::cli::read_model(&a.model)?;
    let view = crate::cli::load_view(&blob, &a.model.display().to_string())?;
    let host = read_scores(&a.host_scores)?;
    let labels = crate::cli::read_labels(&a.labels, host.len())?;
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
    crate::cli::write_output(None, &text)?;
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

/// One row of a scores file (`log_prob,anomaly`), as written by `maf-train score`
/// and by the firmware.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRow {
    /// The log density, exactly as printed (`{}` of an `f32` round-trips).
    pub log_prob: f32,
    /// The anomaly flag (1 below the model's threshold).
    pub anomaly: bool,
}

/// Parses a scores CSV: the header `log_prob,anomaly`, then one row per vector;
/// `-inf` is a valid log density (a vector whose density underflows `f32`).
/// Blank lines are skipped. `path` is used in error messages only.
///
/// # Errors
/// [`Error::EmptyData`] without the header, [`Error::ColumnMismatch`] for another
/// header, [`Error::RaggedRow`] or [`Error::NotANumber`] for a bad row.
pub fn parse_scores(path: &Path, text: &str) -> Result<Vec<ScoreRow>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let Some((_, head)) = lines.next() else {
        return Err(Error::EmptyData {
            path: path.into(),
            what: "no header line (expected `log_prob,anomaly`)",
        });
    };
    if head != "log_prob,anomaly" {
        return Err(Error::ColumnMismatch {
            path: path.into(),
            message: format!("header {head:?}, expected \"log_prob,anomaly\""),
        });
    }
    let bad = |line: usize, column: usize, name: &str, value: &str| Error::NotANumber {
        path: path.into(),
        line,
        column,
        name: name.into(),
        value: value.into(),
    };
    lines
        .map(|(line, l)| {
            let cells: Vec<&str> = l.split(',').collect();
            let [lp, flag] = cells.as_slice() else {
                return Err(Error::RaggedRow {
                    path: path.into(),
                    line,
                    expected: 2,
                    found: cells.len(),
                });
            };
            let log_prob: f32 = lp
                .trim()
                .parse()
                .map_err(|_| bad(line, 1, "log_prob", lp))?;
            if log_prob.is_nan() {
                return Err(bad(line, 1, "log_prob", lp));
            }
            let anomaly = match flag.trim() {
                "0" => false,
                "1" => true,
                other => return Err(bad(line, 2, "anomaly", other)),
            };
            Ok(ScoreRow { log_prob, anomaly })
        })
        .collect()
}

/// Reads a scores CSV (see [`parse_scores`]).
///
/// # Errors
/// [`Error::Io`], or as [`parse_scores`].
pub fn read_scores(path: &Path) -> Result<Vec<ScoreRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_scores(path, &text)
}

/// The outcome of comparing device scores with host scores, row for row.
#[derive(Clone, Debug, PartialEq)]
pub struct Parity {
    /// Rows in the host file.
    pub host_rows: usize,
    /// Rows in the device file.
    pub device_rows: usize,
    /// Rows (of the common length) whose `log_prob` has the same `f32` bits and
    /// whose flag is the same.
    pub equal_rows: usize,
    /// The first row (0-based) that differs, or where one file ends early, with the
    /// two rows.
    pub first_difference: Option<(usize, Option<ScoreRow>, Option<ScoreRow>)>,
}

impl Parity {
    /// Compares every row: equal means the same `f32` bit pattern (so `-0.0`
    /// differs from `0.0`, and one ulp is a difference) and the same flag.
    pub fn compare(host: &[ScoreRow], device: &[ScoreRow]) -> Self {
        let same = |h: &ScoreRow, d: &ScoreRow| {
            h.log_prob.to_bits() == d.log_prob.to_bits() && h.anomaly == d.anomaly
        };
        let equal_rows = host.iter().zip(device).filter(|(h, d)| same(h, d)).count();
        let first_difference = (0..host.len().max(device.len()))
            .find(|&i| match (host.get(i), device.get(i)) {
                (Some(h), Some(d)) => !same(h, d),
                _ => true,
            })
            .map(|i| (i, host.get(i).copied(), device.get(i).copied()));
        Parity {
            host_rows: host.len(),
            device_rows: device.len(),
            equal_rows,
            first_difference,
        }
    }

    /// Whether every row matched and the files have the same length.
    pub fn holds(&self) -> bool {
        self.first_difference.is_none()
    }

    /// One line saying where the files first differ (empty if they do not).
    pub fn describe_difference(&self) -> String {
        let show = |r: Option<ScoreRow>| {
            r.map_or("(no row)".to_string(), |r| {
                format!(
                    "{} (bits {:#010x}), flag {}",
                    r.log_prob,
                    r.log_prob.to_bits(),
                    u8::from(r.anomaly)
                )
            })
        };
        match self.first_difference {
            None => String::new(),
            Some((i, h, d)) => format!(
                "{} of {} host rows equal on the device ({} device rows); first difference \
                 at data row {i}: host {}, device {}",
                self.equal_rows,
                self.host_rows,
                self.device_rows,
                show(h),
                show(d)
            ),
        }
    }
}

/// Instructions per inference from the firmware's standard error: the number
/// before `instructions per inference` on its `summary:` line.
pub fn instructions_per_inference(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .find(|l| l.trim_start().starts_with("summary:"))?;
    let before = line.split(" instructions per inference").next()?;
    if before.len() == line.len() {
        return None;
    }
    before.rsplit([' ', ';']).next()?.parse().ok()
}

/// The ROC curve of `scores` (higher = more anomalous) against `labels`
/// (`true` = anomaly): `(false positive rate, true positive rate)` points from
/// `(0, 0)` to `(1, 1)`, one per distinct score (ties move both rates at once).
/// Empty if either class is empty.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let labels = labels
        .get(..scores.len().min(labels.len()))
        .unwrap_or(labels);
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    let mut pts = vec![(0.0, 0.0)];
    pts.extend(
        metrics::threshold_sweep(scores, labels)
            .into_iter()
            .map(|(tp, fp)| (fp as f64 / neg as f64, tp as f64 / pos as f64)),
    );
    pts
}

/// Everything the result table shows.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Test rows.
    pub rows: usize,
    /// Normal (label 0) rows.
    pub normal_rows: usize,
    /// Mean log-likelihood of the normal rows and two standard errors.
    pub normal_ll: (f64, f64),
    /// Mean log-likelihood of all rows and two standard errors.
    pub all_ll: (f64, f64),
    /// AUROC of the anomaly score `-log p` (`None` with one class only).
    pub auroc: Option<f64>,
    /// AUPRC (average precision) of `-log p`.
    pub auprc: Option<f64>,
    /// Counts of the stored flags against the labels.
    pub confusion: Confusion,
    /// The model's stored threshold.
    pub threshold: Option<f32>,
    /// Instructions per inference on the device, if known.
    pub instructions: Option<u64>,
    /// Host/device comparison, if device scores were given.
    pub parity: Option<Parity>,
}

impl Summary {
    /// Computes the table from host scores and labels (row for row).
    ///
    /// # Errors
    /// [`Error::ColumnMismatch`] if the two lengths differ.
    pub fn new(
        host: &[ScoreRow],
        labels: &[bool],
        labels_path: &Path,
        threshold: Option<f32>,
    ) -> Result<Self> {
        if host.len() != labels.len() {
            return Err(Error::ColumnMismatch {
                path: labels_path.into(),
                message: format!(
                    "{} label rows, but the host scores have {} rows",
                    labels.len(),
                    host.len()
                ),
            });
        }
        let lps: Vec<f64> = host.iter().map(|r| f64::from(r.log_prob)).collect();
        let normal: Vec<f64> = lps
            .iter()
            .zip(labels)
            .filter(|(_, l)| !**l)
            .map(|(v, _)| *v)
            .collect();
        let scores: Vec<f64> = lps.iter().map(|v| -v).collect();
        let flagged: Vec<bool> = host.iter().map(|r| r.anomaly).collect();
        Ok(Summary {
            rows: host.len(),
            normal_rows: normal.len(),
            normal_ll: metrics::mean_two_se(&normal),
            all_ll: metrics::mean_two_se(&lps),
            auroc: metrics::auroc(&scores, labels),
            auprc: metrics::auprc(&scores, labels),
            confusion: Confusion::new(&flagged, labels),
            threshold,
            instructions: None,
            parity: None,
        })
    }

    /// The table as text, one `name   value` line per row.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(t, "  {name:<36}{value}");
        };
        let ll = |(m, se): (f64, f64)| format!("{m:.3} ± {se:.3} nats (2 SE)");
        let f = |v: Option<f64>| v.map_or("n/a (one class only)".into(), |v| format!("{v:.4}"));
        row(
            "test vectors",
            format!(
                "{} ({} normal, {} anomalous)",
                self.rows,
                self.normal_rows,
                self.rows - self.normal_rows
            ),
        );
        row("log-likelihood, normal vectors", ll(self.normal_ll));
        row("log-likelihood, all vectors", ll(self.all_ll));
        row("AUROC, score -log p(x)", f(self.auroc));
        row("AUPRC, score -log p(x)", f(self.auprc));
        row(
            "threshold (stored in the model)",
            self.threshold
                .map_or("none".into(), |t| format!("log p(x) < {t}")),
        );
        let c = self.confusion;
        row(
            "confusion at the threshold",
            format!("TP {}  FP {}  TN {}  FN {}", c.tp, c.fp, c.tn, c.fn_),
        );
        row(
            "instructions per inference",
            self.instructions.map_or("n/a (no device log)".into(), |n| {
                format!("{n} (Cortex-M4F under QEMU)")
            }),
        );
        row(
            "device = host, bit for bit",
            match &self.parity {
                None => "n/a (no device scores)".into(),
                Some(p) if p.holds() => {
                    format!("yes, {} of {} rows", p.equal_rows, p.host_rows)
                }
                Some(p) => format!(
                    "NO: {} of {} rows equal ({} device rows)",
                    p.equal_rows, p.host_rows, p.device_rows
                ),
            },
        );
        t
    }
}

pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("drawing the plot: {e}")),
    )
}

/// Draws a chart's series labels in the style every plot uses: a translucent
/// white box with a light border at `position`.
pub(crate) fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
    path: &Path,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(|e| plot_err(path, e))
}

/// Writes an SVG drawn into a string atomically.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(root.clone())?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::cli::write_atomic(path, svg.as_bytes())
}

/// Colours of the two classes.
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALY: RGBColor = RGBColor(214, 39, 40);

/// Histogram of the log densities of normal and anomalous vectors (each as a
/// fraction of its class, so the classes compare despite their sizes), with the
/// threshold as a vertical line. Log densities far in the left tail (below the 2%
/// quantile of all rows, or `-inf`) are counted in the leftmost bin, as the
/// caption says.
///
/// # Errors
/// [`Error::Io`] writing `path` or drawing.
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
/// [`Error::Io`] writing `path` or drawing.
pub fn roc_plot(path: &Path, host: &[ScoreRow], labels: &[bool], summary: &Summary) -> Result<()> {
    let scores: Vec<f64> = host.iter().map(|r| -f64::from(r.log_prob)).collect();
    let curve = roc_curve(&scores, labels);
    let c = summary.confusion;
    let op = (
        c.fp as f64 / (c.fp + c.tn).max(1) as f64,
        c.tp as f64 / (c.tp + c.fn_).max(1) as f64,
    );
    write_svg(path, (620, 600), |root| {
        let e = |x| plot_err(path, x);
        let title = match summary.auroc {
            Some(a) => format!("ROC of the anomaly score -log p(x): AUROC {a:.3}"),
            None => "ROC: needs both classes in the labels".to_string(),
        };
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
            .x_desc("false positive rate (normal vectors flagged)")
            .y_desc("true positive rate (anomalies flagged)")
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
            .draw_series(LineSeries::new(curve, ANOMALY.stroke_width(3)))
            .map_err(e)?
            .label("maf, score -log p(x)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], ANOMALY.stroke_width(3)));
        if summary.threshold.is_some() {
            chart
                .draw_series([Circle::new(op, 6, BLACK.filled())])
                .map_err(e)?
                .label(format!(
                    "stored threshold: TPR {:.2}, FPR {:.3}",
                    op.1, op.0
                ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(log_prob: f32, anomaly: bool) -> ScoreRow {
        ScoreRow { log_prob, anomaly }
    }

    #[test]
    fn parses_scores_including_minus_infinity() {
        let p = Path::new("s.csv");
        let r = parse_scores(p, "log_prob,anomaly\n-8.5,0\n\n-inf,1\r\n-22.55239,1\n");
        assert_eq!(
            r.ok(),
            Some(vec![
                row(-8.5, false),
                row(f32::NEG_INFINITY, true),
                row(-22.55239, true)
            ])
        );
        assert!(parse_scores(p, "").is_err());
        assert!(parse_scores(p, "x,y\n1,0\n").is_err());
        assert!(parse_scores(p, "log_prob,anomaly\n1,2\n").is_err());
        assert!(parse_scores(p, "log_prob,anomaly\nNaN,0\n").is_err());
        assert!(parse_scores(p, "log_prob,anomaly\n1\n").is_err());
        assert!(parse_scores(p, "log_prob,anomaly\nabc,0\n").is_err());
    }

    #[test]
    fn parity_detects_one_ulp_and_flags_and_lengths() {
        let host = vec![
            row(-8.75, false),
            row(-30.125, true),
            row(f32::NEG_INFINITY, true),
        ];
        let same = Parity::compare(&host, &host.clone());
        assert!(same.holds());
        assert_eq!(same.equal_rows, 3);
        assert_eq!(same.describe_difference(), "");

        // One ulp apart: the printed value differs too, parsed back it is exact.
        let mut dev = host.clone();
        dev[1].log_prob = f32::from_bits(host[1].log_prob.to_bits() + 1);
        let text = format!("log_prob,anomaly\n-8.75,0\n{},1\n-inf,1\n", dev[1].log_prob);
        let parsed = parse_scores(Path::new("d.csv"), &text).unwrap_or_default();
        let p = Parity::compare(&host, &parsed);
        assert!(!p.holds());
        assert_eq!(p.equal_rows, 2);
        assert_eq!(p.first_difference.map(|d| d.0), Some(1));
        assert!(p.describe_difference().contains("data row 1"));

        // Signed zero is a different bit pattern.
        let p = Parity::compare(&[row(0.0, false)], &[row(-0.0, false)]);
        assert!(!p.holds());

        // Same value, other flag.
        let mut dev = host.clone();
        dev[0].anomaly = true;
        assert_eq!(
            Parity::compare(&host, &dev).first_difference.map(|d| d.0),
            Some(0)
        );

        // A device that skipped a row (bad input) does not match.
        let p = Parity::compare(&host, &host[..2]);
        assert!(!p.holds());
        assert_eq!(
            (p.equal_rows, p.first_difference.map(|d| d.0)),
            (2, Some(2))
        );
    }

    #[test]
    fn instructions_from_the_summary_line() {
        let log = "   Compiling x\nmodel: D=6 C=0 H=64 K=1 L=5, 13848 bytes at 0x00060000, \
                   threshold Some(-21.52848)\nsummary: 4000 vectors scored, 583 anomalies, \
                   0 bad rows; 10988 instructions per inference (SysTick x 40, -icount \
                   shift=0); stack high-water 3940 of 131068 bytes\n";
        assert_eq!(instructions_per_inference(log), Some(10988));
        assert_eq!(
            instructions_per_inference("summary: 0 vectors scored"),
            None
        );
        assert_eq!(instructions_per_inference("no summary here"), None);
    }

    #[test]
    fn confusion_counts_from_flags_on_a_hand_example() {
        // Flags: rows 0, 1 and 4 flagged; labels: rows 0, 2 and 4 anomalous.
        let host = [
            row(-40.0, true),
            row(-30.0, true),
            row(-5.0, false),
            row(-6.0, false),
            row(-50.0, true),
        ];
        let labels = [true, false, true, false, true];
        let s = Summary::new(&host, &labels, Path::new("l.csv"), Some(-25.0));
        let s = s.ok();
        let c = s.as_ref().map(|s| s.confusion);
        assert_eq!(
            c,
            Some(Confusion {
                tp: 2,
                fp: 1,
                tn: 1,
                fn_: 1
            })
        );
        let s = s.unwrap_or_else(|| unreachable!());
        assert_eq!((s.rows, s.normal_rows), (5, 2));
        assert_eq!(s.normal_ll.0, -18.0);
        let table = s.table();
        assert!(table.contains("TP 2  FP 1  TN 1  FN 1"), "{table}");
        assert!(table.contains("log p(x) < -25"), "{table}");
        // Label count must match.
        assert!(Summary::new(&host, &labels[..4], Path::new("l.csv"), None).is_err());
    }

    #[test]
    fn roc_curve_hand_computed() {
        // Scores (higher = anomalous): a .9, n .5, a .4, n .1.
        let pts = roc_curve(&[0.9, 0.5, 0.4, 0.1], &[true, false, true, false]);
        assert_eq!(
            pts,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        // Ties move both rates together.
        assert_eq!(
            roc_curve(&[1.0, 1.0], &[true, false]),
            vec![(0.0, 0.0), (1.0, 1.0)]
        );
        assert!(roc_curve(&[1.0], &[true]).is_empty());
    }
}
