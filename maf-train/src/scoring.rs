//! Log densities of data rows with `maf-core`, the same arithmetic as the device.

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};

/// Log density of every row with `maf-core`; a row whose result overflows `f32`
/// gives `-inf`.
///
/// # Errors
/// [`Error::Model`] naming `path` and the row if `maf-core` refuses a row.
pub fn core_log_probs(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<f64>> {
    Ok(core_log_probs_f32(view, x, c, path)?
        .into_iter()
        .map(|v| v.map_or(f64::NEG_INFINITY, f64::from))
        .collect())
}

/// Like [`core_log_probs`], in `f32` as the device computes, `None` for a row whose
/// log density overflows `f32`.
///
/// # Errors
/// As [`core_log_probs`].
pub fn core_log_probs_f32(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<Option<f32>>> {
    // Batched (8 vectors in SIMD lanes) on every core: the same bits as
    // `MafView::log_prob` one vector at a time (maf-core/tests/batch.rs).
    let threads = crate::parallel::available_threads();
    let results = crate::parallel::log_probs_f64(view, x.view(), c.view(), threads)?;
    results
        .into_iter()
        .enumerate()
        .map(|(r, res)| match res {
            Ok(v) => Ok(Some(v)),
            Err(maf_core::Error::Overflow) => Ok(None),
            Err(e) => Err(Error::Model {
                context: format!("{}, data row {}", path.display(), r + 1),
                message: e.to_string(),
            }),
        })
        .collect()
}

/// Rows read, scored and handed on at a time by [`score_file`]: its memory is this
/// many rows of the file, whatever the file's length.
pub const CHUNK_ROWS: usize = 4096;

/// Streams a data file through the model: reads [`CHUNK_ROWS`] rows at a time,
/// matches its columns to the model's by name ([`crate::io::column_plan`]),
/// and calls `each` with every row's log density (`None` if it overflows `f32`),
/// in file order. CSV cells are parsed as `f32`, as the firmware parses them. A
/// `.npy` array is read whole (its size is known from its header). `on_chunk`
/// gets the input bytes read so far after every chunk (for a progress bar).
/// Returns the number of rows.
///
/// # Errors
/// As [`crate::data::csv::CsvRows`] and [`crate::io::column_plan`];
/// [`Error::EmptyData`] for no rows; [`Error::Model`] naming the row if
/// `maf-core` refuses it; whatever `each` returns.
pub fn score_file(
    view: &maf_core::MafView<'_>,
    path: &Path,
    each: &mut dyn FnMut(Option<f32>) -> Result<()>,
    on_chunk: &mut dyn FnMut(u64),
) -> Result<usize> {
    score_first_rows(view, path, usize::MAX, each, on_chunk)
}

/// [`score_file`] for the first `limit` data rows only: reading stops there, so
/// the rest of the file is neither read nor checked (`recalibrate --rows M`).
///
/// # Errors
/// As [`score_file`], for the rows it reads.
pub fn score_first_rows(
    view: &maf_core::MafView<'_>,
    path: &Path,
    limit: usize,
    each: &mut dyn FnMut(Option<f32>) -> Result<()>,
    on_chunk: &mut dyn FnMut(u64),
) -> Result<usize> {
    let threads = crate::parallel::available_threads();
    let (dim, ctx) = (view.shape().dim, view.shape().context);
    let (mut x, mut c) = (Vec::new(), Vec::new());
    let (mut xs, mut cs) = (Vec::new(), Vec::new());
    let mut rows = 0usize;
    // One chunk of rows, picked into `xs`/`cs` (row after row), scored batched on
    // every core (the bits of `MafView::log_prob` one vector at a time:
    // maf-core/tests/batch.rs), handed to `each` in order.
    let mut score_chunk = |xs: &[f32], cs: &[f32], rows: &mut usize| -> Result<()> {
        let n = xs.len() / dim.max(1);
        let shape_error = |e: ndarray::ShapeError| Error::InvalidParam {
            name: "score",
            message: e.to_string(),
        };
        let xv = ndarray::ArrayView2::from_shape((n, dim), xs).map_err(shape_error)?;
        let cv = ndarray::ArrayView2::from_shape((n, ctx), cs).map_err(shape_error)?;
        for res in crate::parallel::log_probs(view, xv, cv, threads)? {
            *rows += 1;
            match res {
                Ok(v) => each(Some(v))?,
                Err(maf_core::Error::Overflow) => each(None)?,
                Err(e) => {
                    return Err(Error::Model {
                        context: format!("{}, data row {rows}", path.display()),
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    };
    let mut pick_into =
        |row: &[f64], plan: &crate::io::ColumnPlan, xs: &mut Vec<f32>, cs: &mut Vec<f32>| {
            plan.pick(row, &mut x, &mut c);
            xs.extend_from_slice(&x);
            cs.extend_from_slice(&c);
        };
    if crate::data::is_npy(path) {
        let table = crate::data::read_npy(path)?;
        let plan = crate::io::column_plan(view, &table.header, true, path)?;
        // One pass over the rows, scored every CHUNK_ROWS rows and at the end.
        let n = table.values.nrows().min(limit);
        for (i, r) in table.values.rows().into_iter().take(n).enumerate() {
            pick_into(&r.to_vec(), &plan, &mut xs, &mut cs);
            if (i + 1) % CHUNK_ROWS == 0 || i + 1 == n {
                score_chunk(&xs, &cs, &mut rows)?;
                xs.clear();
                cs.clear();
            }
        }
        on_chunk(std::fs::metadata(path).map_or(0, |m| m.len()));
        return Ok(rows);
    }
    let mut reader = crate::data::csv::CsvRows::open(path)?.as_f32();
    let plan = crate::io::column_plan(view, reader.header(), false, path)?;
    let width = plan.width;
    let mut buf = Vec::with_capacity(CHUNK_ROWS * width);
    while rows < limit {
        buf.clear();
        if reader.read_chunk(CHUNK_ROWS.min(limit - rows), &mut buf)? == 0 {
            break;
        }
        xs.clear();
        cs.clear();
        for row in buf.chunks_exact(width) {
            pick_into(row, &plan, &mut xs, &mut cs);
        }
        score_chunk(&xs, &cs, &mut rows)?;
        on_chunk(reader.bytes_read());
    }
    if rows == 0 {
        return Err(Error::EmptyData {
            path: path.into(),
            what: "no data rows after the header",
        });
    }
    Ok(rows)
}
