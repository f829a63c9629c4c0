//! Score files (`log_prob,anomaly`), as `maf-train score` and the firmware write them.

use std::path::Path;

use crate::error::{Error, Result};

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
