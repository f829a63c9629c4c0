//! NumPy `.npy` arrays, read by a small parser of their own (why not
//! `ndarray-npy`: `docs/data-format.md`).

use std::path::Path;

use ndarray::Array2;

use super::npy_header::NpyHeader;
use super::table::Table;
use crate::error::{Error, Result};

/// Reads a NumPy `.npy` file (format versions 1.0, 2.0 and 3.0): a 2-D array of
/// little-endian `f4` or `f8` (`descr` `'<f4'` or `'<f8'`) in C order
/// (`fortran_order` False), one sensor vector per row. Its columns are named `x0`,
/// `x1`, … by position; every value must be finite in `f32`.
///
/// # Errors
/// [`Error::Io`]; [`Error::BadNpy`] for anything else than such an array (bad
/// magic or header, another dtype, byte order or dimension count, Fortran order,
/// truncated or trailing data); [`Error::EmptyData`] for no rows or columns;
/// [`Error::NotFiniteElement`] naming the row and column of a NaN, infinite or
/// out-of-range value.
pub fn read_npy(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(path, &bytes)
}

/// The magic string that opens every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Parses the bytes of a `.npy` file (see [`read_npy`]); `path` is used in error
/// messages only.
///
/// # Errors
/// As [`read_npy`].
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<Table> {
    let bad = |message: String| Error::BadNpy {
        path: path.into(),
        message,
    };
    let rest = bytes
        .strip_prefix(NPY_MAGIC)
        .ok_or_else(|| bad("no NumPy magic string at the start of the file".into()))?;
    let (major, minor) = match rest {
        [a, b, ..] => (*a, *b),
        _ => return Err(bad("file ends inside the format version".into())),
    };
    let len_bytes = match major {
        1 => 2,
        2 | 3 => 4,
        _ => {
            return Err(bad(format!(
                "format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            )));
        }
    };
    let rest = &rest[2..];
    if rest.len() < len_bytes {
        return Err(bad("file ends inside the header length".into()));
    }
    let header_len = rest[..len_bytes]
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let rest = &rest[len_bytes..];
    if rest.len() < header_len {
        return Err(bad(format!(
            "header of {header_len} bytes, but only {} bytes follow",
            rest.len()
        )));
    }
    let (head, data) = rest.split_at(header_len);
    let head =
        std::str::from_utf8(head).map_err(|_| bad("header is not ASCII/UTF-8 text".into()))?;
    let header =
        NpyHeader::parse(head).map_err(|m| bad(format!("header {:?}: {m}", head.trim_end())))?;
    let item = match header.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        d => {
            return Err(bad(format!(
                "dtype {d:?}; only little-endian float32 '<f4' and float64 '<f8' are supported"
            )));
        }
    };
    if header.fortran_order {
        return Err(bad(
            "fortran_order is True; save a C-order array (numpy.ascontiguousarray)".into(),
        ));
    }
    let [rows, cols] = header.shape[..] else {
        return Err(bad(format!(
            "{}-D array of shape ({}); a 2-D array (rows × columns) is needed",
            header.shape.len(),
            header
                .shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if rows == 0 || cols == 0 {
        return Err(Error::EmptyData {
            path: path.into(),
            what: if rows == 0 {
                "no rows in the array"
            } else {
                "no columns in the array"
            },
        });
    }
    let need = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(item))
        .ok_or_else(|| bad(format!("shape ({rows}, {cols}) is too large")))?;
    if data.len() != need {
        return Err(bad(format!(
            "shape ({rows}, {cols}) of {item}-byte values needs {need} data bytes, the file has {}{}",
            data.len(),
            if data.len() < need {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    let flat: Vec<f64> = if item == 4 {
        data.chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect()
    };
    if let Some(i) = flat
        .iter()
        .position(|v| !v.is_finite() || v.abs() > f64::from(f32::MAX))
    {
        let (row, column) = (i / cols, i % cols);
        return Err(Error::NotFiniteElement {
            path: path.into(),
            row,
            column,
            name: format!("x{column}"),
            value: flat[i],
        });
    }
    let values = Array2::from_shape_vec((rows, cols), flat)
        .map_err(|e| Error::Internal(format!("array shape: {e}")))?;
    Ok(Table {
        path: path.into(),
        header: (0..cols).map(|j| format!("x{j}")).collect(),
        values,
        positional: true,
    })
}

#[cfg(test)]
mod tests {
    // Tests fail by panicking.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::data::csv::parse_csv;

    /// The bytes of a `.npy` file: format `version`, header dict `dict`, padded as
    /// NumPy pads it (total header a multiple of 64 bytes, ending in '\n').
    fn npy_bytes(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if version == 1 { 2 } else { 4 };
        let pre = NPY_MAGIC.len() + 2 + len_bytes;
        let mut head = dict.to_string();
        while !(pre + head.len() + 1).is_multiple_of(64) {
            head.push(' ');
        }
        head.push('\n');
        let mut out = NPY_MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend(u16::try_from(head.len()).unwrap().to_le_bytes());
        } else {
            out.extend(u32::try_from(head.len()).unwrap().to_le_bytes());
        }
        out.extend(head.as_bytes());
        out.extend(data);
        out
    }

    fn dict(descr: &str, fortran: bool, shape: &str) -> String {
        let f = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}")
    }

    fn f8(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f4(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    const CSV: &str = "a,b,c\n1.5,-2,3e-3\n4,0.1,-6.25\n";
    const VALUES: [f64; 6] = [1.5, -2.0, 3e-3, 4.0, 0.1, -6.25];

    #[test]
    fn npy_round_trips_against_csv() {
        let csv = parse_csv(Path::new("t.csv"), CSV).unwrap();
        for version in [1, 2, 3] {
            let bytes = npy_bytes(version, &dict("<f8", false, "(2, 3)"), &f8(&VALUES));
            let t = parse_npy(Path::new("t.npy"), &bytes).unwrap();
            assert_eq!(t.values, csv.values, "version {version}");
            assert_eq!(t.header, ["x0", "x1", "x2"]);
            assert!(t.positional && !csv.positional);
        }
        // float32: the same numbers rounded to f32, as the device sees them.
        let v32: Vec<f32> = VALUES.iter().map(|&v| v as f32).collect();
        let t = parse_npy(
            Path::new("t.npy"),
            &npy_bytes(1, &dict("<f4", false, "(2, 3)"), &f4(&v32)),
        )
        .unwrap();
        assert_eq!(t.values, csv.values.mapv(|v| f64::from(v as f32)));
    }

    #[test]
    fn npy_header_variants() {
        // Double quotes, no trailing comma, keys in another order, Python 2 longs.
        let head = "{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<f8\"}";
        let t = parse_npy(Path::new("t.npy"), &npy_bytes(1, head, &f8(&VALUES))).unwrap();
        assert_eq!(t.values.dim(), (2, 3));
    }

    #[test]
    fn npy_context_column_by_index_or_name() {
        let bytes = npy_bytes(1, &dict("<f8", false, "(2, 3)"), &f8(&VALUES));
        let t = parse_npy(Path::new("t.npy"), &bytes).unwrap();
        let by_index = t.split(&["1".into()]).unwrap();
        let by_name = t.split(&["x1".into()]).unwrap();
        assert_eq!(by_index.c_names, ["x1"]);
        assert_eq!(by_index.x_names, ["x0", "x2"]);
        assert_eq!(by_index.x, by_name.x);
        assert_eq!(by_index.c, by_name.c);
        let e = t.split(&["3".into()]).unwrap_err().to_string();
        assert!(e.contains("\"3\"") && e.contains("index 0..2"), "{e}");
        let e = t.split(&["1".into(), "x1".into()]).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        // A CSV table does not take indices.
        let csv = parse_csv(Path::new("t.csv"), CSV).unwrap();
        assert!(csv.split(&["1".into()]).is_err());
    }

    fn npy_err(bytes: &[u8]) -> String {
        let e = parse_npy(Path::new("bad.npy"), bytes)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.npy"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    }

    #[test]
    fn npy_bad_inputs_are_clear_errors() {
        let good = npy_bytes(1, &dict("<f8", false, "(2, 3)"), &f8(&VALUES));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() - 3].to_vec(), "truncated"),
            (good[..20].to_vec(), "header of"),
            (good[..7].to_vec(), "format version"),
            (b"a,b\n1,2\n".to_vec(), "magic"),
            ([good.clone(), vec![0; 8]].concat(), "the file has 56"),
            (
                npy_bytes(1, &dict("<i8", false, "(2, 3)"), &[0; 48]),
                "dtype \"<i8\"",
            ),
            (
                npy_bytes(1, &dict(">f8", false, "(2, 3)"), &[0; 48]),
                "dtype \">f8\"",
            ),
            (
                npy_bytes(1, &dict("<f8", false, "(1, 2, 3)"), &f8(&VALUES)),
                "3-D array",
            ),
            (
                npy_bytes(1, &dict("<f8", false, "(6,)"), &f8(&VALUES)),
                "1-D array",
            ),
            (
                npy_bytes(1, &dict("<f8", true, "(2, 3)"), &f8(&VALUES)),
                "fortran_order is True",
            ),
            (
                npy_bytes(
                    1,
                    "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
                    &[0; 16],
                ),
                "structured",
            ),
            (
                npy_bytes(1, "{'descr': '<f8', 'shape': (2, 3), }", &f8(&VALUES)),
                "missing",
            ),
            (
                npy_bytes(
                    1,
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3",
                    &[],
                ),
                "header",
            ),
            (
                npy_bytes(1, &dict("<f8", false, "(99999999999, 99999999999)"), &[]),
                "too large",
            ),
            (
                npy_bytes(4, &dict("<f8", false, "(2, 3)"), &f8(&VALUES)),
                "version 4.0",
            ),
            (npy_bytes(1, &dict("<f8", false, "(0, 3)"), &[]), "no rows"),
        ];
        for (bytes, needle) in cases {
            let e = npy_err(&bytes);
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
    }

    #[test]
    fn npy_non_finite_values_name_row_and_column() {
        for (bad, shown) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (1e39, "1e39")] {
            let mut v = VALUES;
            v[5] = bad;
            let e = npy_err(&npy_bytes(1, &dict("<f8", false, "(2, 3)"), &f8(&v)));
            assert!(
                e.contains("row 1, column 2") && e.contains("\"x2\"") && e.contains(shown),
                "{e}"
            );
        }
        let mut v: Vec<f32> = VALUES.iter().map(|&v| v as f32).collect();
        v[1] = f32::NEG_INFINITY;
        let e = npy_err(&npy_bytes(2, &dict("<f4", false, "(2, 3)"), &f4(&v)));
        assert!(e.contains("row 0, column 1") && e.contains("-inf"), "{e}");
    }

    #[test]
    fn npy_arbitrary_bytes_never_panic() {
        let good = npy_bytes(1, &dict("<f8", false, "(2, 3)"), &f8(&VALUES));
        // Every prefix, and every single-byte corruption of the header.
        for n in 0..good.len() {
            let _ = parse_npy(Path::new("p.npy"), &good[..n]);
        }
        for i in 0..128 {
            for b in [0u8, b'(', b')', b'\'', b'{', b'9', 0xff] {
                let mut g = good.clone();
                g[i] = b;
                if let Ok(t) = parse_npy(Path::new("p.npy"), &g) {
                    assert!(t.values.iter().all(|v| v.is_finite()));
                    assert_eq!(t.values.ncols(), t.header.len());
                }
            }
        }
    }
}
