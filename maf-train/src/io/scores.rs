//! Score files (`log_prob,anomaly`, or `log_prob,anomaly,window_score,alarm` for a
//! window), as `maf-train score` and the firmware write them.

use std::path::Path;

use crate::error::{Error, Result};

/// One row of a scores file, as written by `maf-train score` and by the firmware.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRow {
    /// The log density, exactly as printed (`{}` of an `f32` round-trips).
    pub log_prob: f32,
    /// The anomaly flag (1 below the model's threshold).
    pub anomaly: bool,
    /// The window columns `window_score,alarm` of a windowed file (`None` in a
    /// `log_prob,anomaly` file); the score is `None` during warm-up (an empty
    /// cell, alarm 0).
    pub window: Option<(Option<f32>, bool)>,
}

/// The header of a scores file without a window.
pub const HEADER: &str = "log_prob,anomaly";
/// The header of a scores file with window decisions.
pub const WINDOW_HEADER: &str = "log_prob,anomaly,window_score,alarm";

/// Parses a scores CSV: the header [`HEADER`] or [`WINDOW_HEADER`], then one row
/// per vector; `-inf` is a valid log density (a vector whose density underflows
/// `f32`).
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
    let windowed = match head {
        HEADER => false,
        WINDOW_HEADER => true,
        _ => {
            return Err(Error::ColumnMismatch {
                path: path.into(),
                message: format!("header {head:?}, expected {HEADER:?} or {WINDOW_HEADER:?}"),
            });
        }
    };
    let expected = if windowed { 4 } else { 2 };
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
            if cells.len() != expected {
                return Err(Error::RaggedRow {
                    path: path.into(),
                    line,
                    expected,
                    found: cells.len(),
                });
            }
            let (lp, flag) = (cells[0], cells[1]);
            let log_prob: f32 = lp
                .trim()
                .parse()
                .map_err(|_| bad(line, 1, "log_prob", lp))?;
            if log_prob.is_nan() {
                return Err(bad(line, 1, "log_prob", lp));
            }
            let flag01 = |column: usize, name: &str, cell: &str| match cell.trim() {
                "0" => Ok(false),
                "1" => Ok(true),
                other => Err(bad(line, column, name, other)),
            };
            let anomaly = flag01(2, "anomaly", flag)?;
            let window = if windowed {
                let cell = cells[2].trim();
                let score = if cell.is_empty() {
                    None
                } else {
                    match cell.parse::<f32>() {
                        Ok(v) if !v.is_nan() => Some(v),
                        _ => return Err(bad(line, 3, "window_score", cell)),
                    }
                };
                Some((score, flag01(4, "alarm", cells[3])?))
            } else {
                None
            };
            Ok(ScoreRow {
                log_prob,
                anomaly,
                window,
            })
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
