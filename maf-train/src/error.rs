//! The trainer's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `maf-train`'s library: bad input files, bad
/// hyper-parameters, a model that does not fit the data, a failed training run.
///
/// Every variant names what the user has to fix (the file, line and column of a bad
/// cell; the offending setting) so the CLI can print it as a one-line message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A data file has no header line or no data rows.
    #[error("{path}: {what}")]
    EmptyData {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
    /// Fewer training rows than one minibatch.
    #[error(
        "{path}: {rows} training rows, fewer than the batch size {batch_size}; lower --batch-size or give more data"
    )]
    TooFewRows {
        /// The training file.
        path: PathBuf,
        /// Training rows (after any hold-out).
        rows: usize,
        /// The minibatch size asked for.
        batch_size: usize,
    },
    /// A CSV header that cannot name the columns: an empty or repeated name, a
    /// name that is not UTF-8, or one column that looks like another delimiter.
    #[error("{path}: {message}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A label that is neither 0 nor 1.
    #[error("{path}: label {} in data row {row}: must be 0 or 1", shorten(value))]
    BadLabel {
        /// The labels file.
        path: PathBuf,
        /// 1-based data row (the header is not counted).
        row: usize,
        /// The label's value as read.
        value: String,
    },
    /// `fit` was interrupted (SIGINT/SIGTERM): what was kept and written, or why
    /// nothing was. The binary prints it and exits with status 130.
    #[error("interrupted {0}")]
    Interrupted(String),
    /// A row has a different number of cells than the header.
    #[error(
        "{path}, line {line}: {}, but the header has {}",
        count(*found, "cell", "cells"),
        count(*expected, "column", "columns")
    )]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file (the header is line 1).
        line: usize,
        /// Number of header columns.
        expected: usize,
        /// Number of cells found on this line.
        found: usize,
    },
    /// A cell is not a number.
    #[error(
        "{path}, line {line}, column {column} ({:?}): {:?} is not a number",
        shorten(name),
        shorten(value)
    )]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// Column name from the header.
        name: String,
        /// The cell's text.
        value: String,
    },
    /// A cell is NaN or infinite.
    #[error(
        "{path}, line {line}, column {column} ({:?}): value {:?} is not finite in f32 (NaN, infinite, or beyond ±3.4e38, the range the device computes in)",
        shorten(name),
        shorten(value)
    )]
    NotFinite {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column number.
        column: usize,
        /// Column name from the header.
        name: String,
        /// The cell's text.
        value: String,
    },
    /// A `.npy` file that is not a 2-D little-endian `f4`/`f8` array in C order.
    #[error("{path}: not a usable .npy array: {message}")]
    BadNpy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A `.npy` array element is NaN, infinite or beyond the `f32` range.
    #[error(
        "{path}, row {row}, column {column} ({name:?}; 0-based array indices): value {value:e} is not finite in f32 (NaN, infinite, or beyond ±3.4e38, the range the device computes in)"
    )]
    NotFiniteElement {
        /// The file.
        path: PathBuf,
        /// 0-based row index in the array.
        row: usize,
        /// 0-based column index in the array.
        column: usize,
        /// The column's name (`x0`, `x1`, … for a `.npy` array).
        name: String,
        /// The value.
        value: f64,
    },
    /// A column has the same value in every training row, so it cannot be standardised.
    #[error(
        "{path}, column {column} ({name:?}): constant in every row, cannot be standardised; remove it"
    )]
    ConstantColumn {
        /// The file.
        path: PathBuf,
        /// 1-based column number.
        column: usize,
        /// Column name.
        name: String,
    },
    /// A data file's columns do not match what the model or the command expects.
    #[error("{path}: {message}")]
    ColumnMismatch {
        /// The file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// A hyper-parameter or option is out of range.
    #[error("invalid setting --{name}: {message}")]
    InvalidParam {
        /// The option's name as on the command line.
        name: &'static str,
        /// Why it is invalid.
        message: String,
    },
    /// Training diverged (non-finite loss) and did not recover.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// A model blob is invalid, or `maf-core` refused it or an input.
    #[error("{context}: {message}")]
    Model {
        /// Where (usually the model file).
        context: String,
        /// What `maf-core` reported.
        message: String,
    },
    /// An internal invariant failed (a bug in `maf-train`).
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// At most this many characters of a cell or name are quoted in a message.
pub const MAX_QUOTED_CHARS: usize = 60;
/// At most this many names of a column list are shown in a message.
pub const MAX_LISTED_NAMES: usize = 8;

/// `text` cut to [`MAX_QUOTED_CHARS`] characters, with `…` if it was longer.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A column list for a message: the first [`MAX_LISTED_NAMES`] names (each
/// shortened), comma-separated, then `and N more` if there are more.
pub fn name_list<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(MAX_LISTED_NAMES)
        .map(|n| shorten(n.as_ref()))
        .collect();
    let mut s = shown.join(",");
    if names.len() > MAX_LISTED_NAMES {
        s.push_str(&format!(" and {} more", names.len() - MAX_LISTED_NAMES));
    }
    s
}

/// `n` and the noun in its number: `1 column`, `3 columns`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
