//! The result table of a scored test set — test
//! log-likelihood, AUROC/AUPRC, confusion counts at the stored threshold, the
//! device's instructions per inference and whether the device's scores equal the
//! host's bit for bit (the plots are in [`crate::charts::report`]).
//!
//! The inputs are files the other tools write: `maf-train score` (host scores),
//! the firmware's standard output (device scores, the same `log_prob,anomaly`
//! format) and standard error (its `summary:` line).

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
pub use crate::io::scores::ScoreRow;
use crate::metrics::{self, Confusion};

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
    /// differs from `0.0`, and one ulp is a difference) and the same flag, and for
    /// windowed files the same window score bits and alarm.
    pub fn compare(host: &[ScoreRow], device: &[ScoreRow]) -> Self {
        let bits = |w: Option<(Option<f32>, bool)>| w.map(|(s, a)| (s.map(f32::to_bits), a));
        let same = |h: &ScoreRow, d: &ScoreRow| {
            h.log_prob.to_bits() == d.log_prob.to_bits()
                && h.anomaly == d.anomaly
                && bits(h.window) == bits(d.window)
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
                let window = match r.window {
                    None => String::new(),
                    Some((None, a)) => format!(", window score (warm-up), alarm {}", u8::from(a)),
                    Some((Some(s), a)) => format!(
                        ", window score {s} (bits {:#010x}), alarm {}",
                        s.to_bits(),
                        u8::from(a)
                    ),
                };
                format!(
                    "{} (bits {:#010x}), flag {}{window}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::scores::parse_scores;

    fn row(log_prob: f32, anomaly: bool) -> ScoreRow {
        ScoreRow {
            log_prob,
            anomaly,
            window: None,
        }
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
