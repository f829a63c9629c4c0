//! CSV data files, read with the `csv` crate (whose engine, `csv-core`, the
//! firmware uses too) in the dialect of `docs/data-format.md`: comma-separated,
//! RFC 4180 double quotes, a UTF-8 byte-order mark stripped, `\n`, `\r\n` or `\r`
//! line ends, empty lines skipped, ASCII spaces and tabs around a cell ignored,
//! no comment lines.
//!
//! [`CsvRows`] streams a file in chunks of rows (memory independent of the file's
//! length); [`read_csv`] and [`parse_csv`] read a whole file into a [`Table`].

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::table::Table;
use crate::error::{Error, Result};

/// The dialect every maf CSV reader uses (`docs/data-format.md`).
fn builder() -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.delimiter(b',')
        .quote(b'"')
        .double_quote(true)
        .escape(None)
        .comment(None)
        .terminator(csv::Terminator::CRLF)
        // The header is read (and checked) here, as the first record.
        .has_headers(false)
        // Row lengths are checked here, to name the line in maf's words.
        .flexible(true)
        .trim(csv::Trim::All);
    b
}

/// Whether a record is a blank line: one cell, empty after trimming (csv-core
/// already skips lines with no bytes at all; this also skips lines of spaces).
fn is_blank(r: &csv::ByteRecord) -> bool {
    r.len() == 1 && r[0].is_empty()
}

/// A CSV data file read row by row: the header first (checked: see
/// [`check_header`]), then the numbers in chunks.
pub struct CsvRows<R: Read> {
    path: PathBuf,
    reader: csv::Reader<R>,
    header: Vec<String>,
    record: csv::ByteRecord,
    as_f32: bool,
}

impl CsvRows<std::fs::File> {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// [`Error::Io`], or as [`CsvRows::new`].
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Self::new(path, file)
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the header from `input`; `path` names it in messages.
    ///
    /// # Errors
    /// [`Error::EmptyData`] without a header line, [`Error::BadHeader`] for a header
    /// that fails [`check_header`], [`Error::Io`] for a read error.
    pub fn new(path: &Path, input: R) -> Result<Self> {
        let mut reader = builder().from_reader(input);
        let mut record = csv::ByteRecord::new();
        loop {
            if !read(&mut reader, &mut record, path)? {
                return Err(Error::EmptyData {
                    path: path.into(),
                    what: "no header line",
                });
            }
            if !is_blank(&record) {
                break;
            }
        }
        let mut header = Vec::with_capacity(record.len());
        for (j, cell) in record.iter().enumerate() {
            let name = std::str::from_utf8(cell).map_err(|_| Error::BadHeader {
                path: path.into(),
                message: format!("the name of column {} is not UTF-8 text", j + 1),
            })?;
            header.push(name.to_string());
        }
        check_header(path, &header)?;
        Ok(CsvRows {
            path: path.into(),
            reader,
            header,
            record,
            as_f32: false,
        })
    }

    /// Parses every cell as `f32` (correctly rounded, as the firmware does) instead
    /// of `f64`: for scoring, where the values go to `maf-core` as `f32`, so host
    /// and device see the same bits.
    #[must_use]
    pub fn as_f32(mut self) -> Self {
        self.as_f32 = true;
        self
    }

    /// Bytes of the input read so far (for a progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Appends up to `max` rows to `out` (row-major, one value per column) and
    /// returns how many it appended; 0 at the end of the file.
    ///
    /// # Errors
    /// [`Error::RaggedRow`], [`Error::NotANumber`] or [`Error::NotFinite`] naming
    /// the line and column; [`Error::Io`] for a read error.
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<f64>) -> Result<usize> {
        let cols = self.header.len();
        let mut rows = 0;
        while rows < max && read(&mut self.reader, &mut self.record, &self.path)? {
            if is_blank(&self.record) {
                continue;
            }
            let line = record_line(&self.record);
            if self.record.len() != cols {
                return Err(Error::RaggedRow {
                    path: self.path.clone(),
                    line,
                    expected: cols,
                    found: self.record.len(),
                });
            }
            for (j, cell) in self.record.iter().enumerate() {
                out.push(number(
                    &self.path,
                    line,
                    j,
                    &self.header[j],
                    cell,
                    self.as_f32,
                )?);
            }
            rows += 1;
        }
        Ok(rows)
    }
}

/// Reads the next record; `false` at the end of the input.
fn read<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    path: &Path,
) -> Result<bool> {
    reader.read_byte_record(record).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(io) => Error::io(path, std::io::Error::new(io.kind(), io.to_string())),
        _ => Error::io(path, std::io::Error::other(e.to_string())),
    })
}

/// The 1-based line a record starts on.
fn record_line(r: &csv::ByteRecord) -> usize {
    r.position().map_or(0, |p| p.line() as usize)
}

/// One cell as a number that is finite in `f32` (`docs/data-format.md`).
fn number(
    path: &Path,
    line: usize,
    j: usize,
    name: &str,
    cell: &[u8],
    as_f32: bool,
) -> Result<f64> {
    let text = match std::str::from_utf8(cell) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => format!("{} (not UTF-8)", String::from_utf8_lossy(cell)).into(),
    };
    let bad = || Error::NotANumber {
        path: path.into(),
        line,
        column: j + 1,
        name: name.to_string(),
        value: text.to_string(),
    };
    let text_ok = std::str::from_utf8(cell).ok();
    let v: f64 = if as_f32 {
        text_ok.and_then(|s| s.parse::<f32>().ok()).map(f64::from)
    } else {
        text_ok.and_then(|s| s.parse().ok())
    }
    .ok_or_else(bad)?;
    // The device computes in f32: a value beyond its range is as unusable as an
    // infinity.
    if !v.is_finite() || v.abs() > f64::from(f32::MAX) {
        return Err(Error::NotFinite {
            path: path.into(),
            line,
            column: j + 1,
            name: name.to_string(),
            value: text.to_string(),
        });
    }
    Ok(v)
}

/// Checks column names: none empty, none twice, and not one column that looks
/// like another delimiter's whole header.
///
/// # Errors
/// [`Error::BadHeader`] saying which.
pub fn check_header(path: &Path, header: &[String]) -> Result<()> {
    let bad = |message: String| Error::BadHeader {
        path: path.into(),
        message,
    };
    if header.first().is_some_and(|h| h.starts_with('#')) {
        return Err(bad(format!(
            "the header {:?} starts with '#': comment lines are not part of the format; \
             remove them",
            crate::error::shorten(&header[0])
        )));
    }
    if let [only] = header {
        for (d, name) in [(';', "';'"), ('\t', "a tab"), ('|', "'|'")] {
            if only.contains(d) {
                return Err(bad(format!(
                    "1 column found; is the delimiter {name}? maf reads comma-separated \
                     files only"
                )));
            }
        }
    }
    for (j, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(bad(format!(
                "column {} of {} has no name; every column needs a unique, non-empty name",
                j + 1,
                header.len()
            )));
        }
        if let Some(first) = header[..j].iter().position(|h| h == name) {
            return Err(bad(format!(
                "column name {:?} appears twice (columns {} and {}); names must be unique",
                crate::error::shorten(name),
                first + 1,
                j + 1
            )));
        }
    }
    Ok(())
}

/// Reads a headered CSV file of numbers (the dialect of `docs/data-format.md`).
///
/// Every row must have as many cells as the header, and every cell must parse as
/// a number that is finite in `f32`.
///
/// # Errors
/// [`Error::Io`], [`Error::EmptyData`], [`Error::BadHeader`], [`Error::RaggedRow`],
/// [`Error::NotANumber`] or [`Error::NotFinite`], naming the file, line and column.
pub fn read_csv(path: &Path) -> Result<Table> {
    let rows = CsvRows::open(path)?;
    collect(path, rows)
}

/// Parses CSV text (see [`read_csv`]); `path` is used in error messages only.
///
/// # Errors
/// As [`read_csv`].
pub fn parse_csv(path: &Path, text: &str) -> Result<Table> {
    collect(path, CsvRows::new(path, text.as_bytes())?)
}

fn collect<R: Read>(path: &Path, mut rows: CsvRows<R>) -> Result<Table> {
    let mut flat = Vec::new();
    let n = rows.read_chunk(usize::MAX, &mut flat)?;
    if n == 0 {
        return Err(Error::EmptyData {
            path: path.into(),
            what: "no data rows after the header",
        });
    }
    let header = rows.header;
    let values = Array2::from_shape_vec((n, header.len()), flat)
        .map_err(|e| Error::Internal(format!("table shape: {e}")))?;
    Ok(Table {
        path: path.into(),
        header,
        values,
        positional: false,
    })
}

#[cfg(test)]
mod tests {
    // Tests fail by panicking.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ok(text: &str) -> Table {
        parse_csv(Path::new("t.csv"), text).unwrap()
    }

    fn err(text: &str) -> String {
        let e = parse_csv(Path::new("t.csv"), text).unwrap_err().to_string();
        assert!(e.starts_with("t.csv"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    }

    #[test]
    fn the_dialect_of_docs_data_format() {
        let plain = ok("a,b\n1,2\n3,4\n");
        assert_eq!(plain.header, ["a", "b"]);
        // BOM, CRLF, a lone CR, blank and whitespace-only lines, no final newline.
        for text in [
            "\u{feff}a,b\n1,2\n3,4\n",
            "a,b\r\n1,2\r\n\r\n3,4\r\n",
            "a,b\r1,2\r3,4",
            "\n\na,b\n  \n1,2\n\t\n3,4\n\n",
            " a , b \n 1 ,\t2\n3 , 4 \n",
            "\"a\",\"b\"\n\"1\",\" 2 \"\n3,4e0\n",
        ] {
            let t = ok(text);
            assert_eq!(t.header, plain.header, "{text:?}");
            assert_eq!(t.values, plain.values, "{text:?}");
        }
        // Quoted names with commas and doubled quotes.
        let t = ok("\"a,1\",\"say \"\"hi\"\"\"\n1,2\n");
        assert_eq!(t.header, ["a,1", "say \"hi\""]);
        // Numbers: Rust's f64 grammar, then finite in f32.
        let t = ok("a\n+1\n-.5\n5.\n1E3\n");
        assert_eq!(t.values.column(0).to_vec(), [1.0, -0.5, 5.0, 1000.0]);
    }

    #[test]
    fn bad_headers_and_cells_are_named() {
        assert!(err("a,a,b,b\n1,2,3,4\n").contains("\"a\" appears twice (columns 1 and 2)"));
        assert!(err(",,,\n1,2,3,4\n").contains("column 1 of 4 has no name"));
        assert!(err("a,,b\n1,2,3\n").contains("column 2 of 3 has no name"));
        assert!(err("a;b;c\n1;2;3\n").contains("1 column found; is the delimiter ';'?"));
        assert!(err("a\tb\n1\t2\n").contains("is the delimiter a tab?"));
        assert!(err("# made by x\na,b\n1,2\n").contains("comment lines"));
        assert!(err("a,b,c\n1,2,3\n4\n").contains("line 3: 1 cell, but the header has 3 columns"));
        assert!(err("a\n1,2\n").contains("line 2: 2 cells, but the header has 1 column"));
        // A quote opens a quoted cell only as the cell's first byte.
        assert!(err("a,b\n1, \"2\"\n").contains("\"\\\"2\\\"\" is not a number"));
        assert!(err("a,b\n\"1,5\",2\n").contains("\"1,5\" is not a number"));
        let long = format!("a\n{}\n", "x".repeat(1 << 20));
        let e = err(&long);
        assert!(
            e.len() < 200 && e.contains(&format!("{}…", "x".repeat(60))),
            "{e}"
        );
        assert!(err("").contains("no header line"));
        assert!(err("a,b\n\n").contains("no data rows"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // What fuzz/fuzz_targets/csv_reader.rs checks, on a seeded sample: every
        // prefix of a hostile file and single-byte corruptions of it.
        let good = "\u{feff}a,\"b\"\"c\",d\r\n1,\"2\",3e0\n\n 4 ,5,6\n\"7,8\n";
        let mut inputs: Vec<Vec<u8>> = (0..=good.len())
            .map(|n| good.as_bytes()[..n].to_vec())
            .collect();
        for i in 0..good.len() {
            for b in [b',', b'"', b'\n', b'\r', b' ', b'#', b';', 0xff, 0] {
                let mut g = good.as_bytes().to_vec();
                g[i] = b;
                inputs.push(g);
            }
        }
        for bytes in inputs {
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(t) = parse_csv(Path::new("f.csv"), &text) {
                assert!(t.values.iter().all(|v| v.is_finite()));
                assert_eq!(t.values.ncols(), t.header.len());
            }
        }
    }

    #[test]
    fn streams_in_chunks() {
        let text = format!("a,b\n{}", "1,2\n3,4\n".repeat(5));
        let mut rows = CsvRows::new(Path::new("t.csv"), text.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let sizes: Vec<usize> = std::iter::from_fn(|| {
            buf.clear();
            Some(rows.read_chunk(4, &mut buf).unwrap()).filter(|&n| n > 0)
        })
        .collect();
        assert_eq!(sizes, [4, 4, 2]);
    }
}
