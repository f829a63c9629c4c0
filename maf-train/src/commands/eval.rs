//! `maf-train eval`: mean test log-likelihood and, with labels, AUROC/AUPRC.

use std::fmt::Write as _;

use super::json::json_num;
use crate::cli::EvalArgs;
use crate::error::Result;
use crate::io::{load_view, read_labels, read_model, write_output};
use crate::metrics;
use crate::scoring::score_file;

/// Runs `maf-train eval`.
///
/// # Errors
/// Bad model, data or labels files.
pub fn run(a: &EvalArgs) -> Result<()> {
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    // Streamed: 8 bytes (one f64 log density) per row are kept, for the mean and
    // AUROC; the rows themselves are read in chunks.
    let bar = super::progress::bytes_bar(&a.data);
    let mut lps: Vec<f64> = Vec::new();
    score_file(
        &view,
        &a.data,
        &mut |lp| {
            lps.push(lp.map_or(f64::NEG_INFINITY, f64::from));
            Ok(())
        },
        &mut |bytes| {
            if let Some(pb) = &bar {
                pb.set_position(bytes);
            }
        },
    )?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let rows = lps.len();
    let overflow = lps.iter().filter(|v| !v.is_finite()).count();
    let (mean, two_se) = metrics::mean_two_se(&lps);
    let mut obj = serde_json::json!({
        "rows": rows,
        "mean_log_prob": json_num(mean),
        "two_se": json_num(two_se),
        "overflow_rows": overflow,
        "threshold": view.threshold().map(|t| json_num(f64::from(t))),
    });
    let mut text = format!("rows {rows}\nmean log-likelihood {mean:.4} ± {two_se:.4} (2 SE)\n");
    if overflow > 0 {
        let _ = writeln!(
            text,
            "rows whose log density overflows f32 (counted as -inf): {overflow}"
        );
    }
    if let Some(lp) = &a.labels {
        let labels = read_labels(lp, rows)?;
        let normal: Vec<f64> = lps
            .iter()
            .zip(&labels)
            .filter(|(_, l)| !**l)
            .map(|(v, _)| *v)
            .collect();
        let (nm, nse) = metrics::mean_two_se(&normal);
        let scores: Vec<f64> = lps.iter().map(|v| -v).collect();
        let auroc = metrics::auroc(&scores, &labels);
        let auprc = metrics::auprc(&scores, &labels);
        obj["normal_rows"] = normal.len().into();
        obj["anomaly_rows"] = (rows - normal.len()).into();
        obj["normal_mean_log_prob"] = json_num(nm);
        obj["normal_two_se"] = json_num(nse);
        obj["auroc"] = auroc.map_or(serde_json::Value::Null, json_num);
        obj["auprc"] = auprc.map_or(serde_json::Value::Null, json_num);
        let _ = writeln!(
            text,
            "normal rows {}: mean log-likelihood {nm:.4} ± {nse:.4} (2 SE)",
            normal.len()
        );
        let fmt =
            |v: Option<f64>| v.map_or("n/a (one class only)".to_string(), |v| format!("{v:.5}"));
        let _ = writeln!(
            text,
            "AUROC {}  AUPRC {}  (score -log p)",
            fmt(auroc),
            fmt(auprc)
        );
        if let Some(t) = view.threshold() {
            let flagged: Vec<bool> = lps.iter().map(|&v| v < f64::from(t)).collect();
            let c = metrics::Confusion::new(&flagged, &labels);
            obj["tp"] = c.tp.into();
            obj["fp"] = c.fp.into();
            obj["tn"] = c.tn.into();
            obj["fn"] = c.fn_.into();
            let _ = writeln!(
                text,
                "at threshold {t}: tp {} fp {} tn {} fn {}",
                c.tp, c.fp, c.tn, c.fn_
            );
        }
    }
    if let Some(w) = crate::windows::choose(&view, a.window)? {
        let labels = match &a.labels {
            Some(lp) => Some(read_labels(lp, rows)?),
            None => None,
        };
        let lps32: Vec<Option<f32>> = lps
            .iter()
            .map(|&v| (v != f64::NEG_INFINITY).then_some(v as f32))
            .collect();
        let ev = crate::windows::evaluate(&lps32, labels.as_deref(), w.len, w.threshold);
        let opt = |v: Option<f64>| v.map_or(serde_json::Value::Null, json_num);
        obj["window"] = w.len.into();
        obj["window_threshold"] = opt(w.threshold.map(f64::from));
        obj["window_auroc"] = opt(ev.auroc);
        obj["false_alarm_rate"] = opt(ev.false_alarm_rate);
        obj["target_false_alarm_rate"] = opt(w.rate);
        obj["detection_delay_mean"] = opt(ev.delay_mean);
        obj["normal_windows"] = ev.normal_windows.into();
        obj["anomalous_windows"] = ev.anomalous_windows.into();
        obj["mixed_windows"] = ev.mixed_windows.into();
        obj["anomaly_runs"] = ev.runs.into();
        obj["detected_runs"] = ev.detected.into();
        let f = |v: Option<f64>, d: usize| v.map_or("n/a".to_string(), |v| format!("{v:.d$}"));
        let _ = writeln!(
            text,
            "window {} vectors: {} all-normal, {} all-anomalous, {} mixed windows",
            w.len, ev.normal_windows, ev.anomalous_windows, ev.mixed_windows
        );
        if labels.is_some() {
            let _ = writeln!(text, "window AUROC {}", f(ev.auroc, 5));
        }
        match w.threshold {
            Some(t) => {
                let _ = writeln!(
                    text,
                    "false-alarm rate {} on all-normal windows at window threshold {t} (target {})",
                    f(ev.false_alarm_rate, 4),
                    f(w.rate, 4)
                );
                if labels.is_some() {
                    let _ = writeln!(
                        text,
                        "anomaly runs detected {} of {}, mean detection delay {} vectors",
                        ev.detected,
                        ev.runs,
                        f(ev.delay_mean, 1)
                    );
                }
            }
            None => {
                let _ = writeln!(
                    text,
                    "no window threshold for {} vectors (the model's window is {}): no \
                     false-alarm rate; `maf-train recalibrate --window {}` calibrates one",
                    w.len,
                    view.header().window.len,
                    w.len
                );
            }
        }
    }
    if a.json {
        text = format!("{obj}\n");
    }
    write_output(None, &text)
}
