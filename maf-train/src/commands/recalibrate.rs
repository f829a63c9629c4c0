//! `maf-train recalibrate`: a new window threshold from a site's healthy rows,
//! written as a blob that differs only in its calibration.

use std::fmt::Write as _;

use crate::cli::RecalibrateArgs;
use crate::error::{Error, Result};
use crate::io::{check_output, load_view, meta_value, read_model, write_atomic};
use crate::scoring::score_first_rows;
use crate::windows;

/// Runs `maf-train recalibrate`.
///
/// # Errors
/// Bad model or data files, an output that is an input, a model without the
/// calibration re-baselining needs, too few rows, writing the output.
pub fn run(a: &RecalibrateArgs) -> Result<()> {
    check_output(&a.out, &[&a.model, &a.data])?;
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let parsed = maf_core::blob::parse(blob.as_bytes()).map_err(|e| Error::Model {
        context: a.model.display().to_string(),
        message: e.to_string(),
    })?;
    let header = parsed.header;
    let old = header.window;
    let limit = a.rows.unwrap_or(usize::MAX);
    if limit == 0 {
        return Err(Error::InvalidParam {
            name: "rows",
            message: "0 rows leave nothing to calibrate on".into(),
        });
    }
    let mut lps: Vec<Option<f32>> = Vec::new();
    // Only the first `limit` rows are read: a site log can be long.
    score_first_rows(
        &view,
        &a.data,
        limit,
        &mut |lp| {
            lps.push(lp);
            Ok(())
        },
        &mut |_| {},
    )?;
    let model_rate = meta_value(header.metadata, windows::RATE_KEY).and_then(|v| v.parse().ok());
    let fresh = a.window.is_some() || a.false_alarm_rate.is_some();
    // A fresh calibration replaces the target rate and calibration lines of the
    // metadata: `Some((rate, calibration line))`.
    let mut replaced = None;
    let (window, how) = if fresh {
        let len = a.window.unwrap_or(old.len as usize);
        let rate = a
            .false_alarm_rate
            .or(model_rate)
            .unwrap_or(crate::hyper::DEFAULT_ANOMALY_QUANTILE);
        let c = windows::calibrate(&lps, len, rate)?;
        replaced = Some((c.rate, c.metadata_line()));
        (
            c.window,
            format!(
                "calibrated afresh on {} site rows: {}",
                lps.len(),
                c.describe()
            ),
        )
    } else {
        let mut scores = windows::window_scores(&lps, old.len as usize);
        let n = scores.len();
        let new = maf_core::calibrator::rebaseline(old, &mut scores).map_err(|e| {
            Error::InvalidParam {
                name: "data",
                message: format!(
                    "{}: cannot re-baseline on {} rows ({n} windows of {}): {e}; a model \
                     without a stored median (fitted before --window existed, or a version-1 \
                     blob) can be calibrated afresh with --false-alarm-rate P",
                    a.data.display(),
                    lps.len(),
                    old.len
                ),
            }
        })?;
        let shift = new.median.unwrap_or(0.0) - old.median.unwrap_or(0.0);
        (
            new,
            format!(
                "re-baselined on {} site rows ({n} windows of {}): site median window score \
                 {} against {} at fit time, threshold moved by {shift:+} from {} to {}",
                lps.len(),
                old.len,
                new.median.unwrap_or(f32::NAN),
                old.median.unwrap_or(f32::NAN),
                old.threshold.unwrap_or(f32::NAN),
                new.threshold.unwrap_or(f32::NAN)
            ),
        )
    };
    let mut meta = header.metadata.to_string();
    let mut line = String::new();
    if let Some((rate, calibration)) = replaced {
        meta = meta
            .lines()
            .filter(|l| {
                !l.starts_with(windows::RATE_KEY) && !l.starts_with(windows::CALIBRATION_KEY)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = writeln!(line, "{}={rate}", windows::RATE_KEY);
        let _ = writeln!(line, "{calibration}");
    }
    let _ = writeln!(
        line,
        "recalibrated={} rows of {}",
        lps.len(),
        crate::io::file_name(&a.data)
    );
    if meta.len() + line.len() <= maf_core::blob::MAX_METADATA {
        meta.push_str(&line);
    }
    let new_header = maf_core::blob::Header {
        window,
        metadata: &meta,
        ..header
    };
    let bytes = maf_core::blob::write(&new_header, parsed.weights).map_err(|e| Error::Model {
        context: "writing the recalibrated blob".into(),
        message: e.to_string(),
    })?;
    write_atomic(&a.out, &bytes)?;
    eprintln!("{how}; wrote {}", a.out.display());
    Ok(())
}
