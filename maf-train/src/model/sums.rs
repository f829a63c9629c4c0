//! Column sums over a minibatch's rows (batch-norm statistics, bias gradients).
//!
//! Each column is summed row by row from zero: the operations, in the order, of
//! ndarray's `sum_axis(Axis(0))` on a row-major array, so the bits do not depend
//! on how the rows were computed. Row-major arrays are read as one slice, row
//! after row (the additions of one row are independent, one per column, which
//! the compiler vectorises); ndarray's per-row array arithmetic cost more than
//! the additions at these sizes.

use ndarray::{Array1, ArrayView2};

use super::arch::Real;

/// Adds `f(a_row[j], b_row[j], j)` to `sums[j]` for every row, in row order.
fn fold_rows<'a, F: Real>(
    a: &ArrayView2<'a, F>,
    b: Option<&ArrayView2<'a, F>>,
    f: impl Fn(F, F, usize) -> F,
) -> Array1<F> {
    let d = a.ncols();
    let mut sums = vec![F::zero(); d];
    let b_slice = match b {
        Some(b) => b.as_slice(),
        None => a.as_slice(),
    };
    match (a.as_slice(), b_slice) {
        (Some(sa), Some(sb)) if d > 0 && sa.len() == sb.len() => {
            for (ra, rb) in sa.chunks_exact(d).zip(sb.chunks_exact(d)) {
                for (j, ((s, &x), &y)) in sums.iter_mut().zip(ra).zip(rb).enumerate() {
                    *s += f(x, y, j);
                }
            }
        }
        _ => {
            let b = b.unwrap_or(a);
            for (ra, rb) in a.rows().into_iter().zip(b.rows()) {
                for (j, ((s, &x), &y)) in sums.iter_mut().zip(ra.iter()).zip(rb.iter()).enumerate()
                {
                    *s += f(x, y, j);
                }
            }
        }
    }
    Array1::from(sums)
}

/// Column sums of `a`.
pub(super) fn col_sums<F: Real>(a: &ArrayView2<'_, F>) -> Array1<F> {
    fold_rows(a, None, |x, _, _| x)
}

/// Column sums of the squared deviations `(a - mean_j)²`.
pub(super) fn col_sq_dev<F: Real>(a: &ArrayView2<'_, F>, mean: &[F]) -> Array1<F> {
    fold_rows(a, None, |x, _, j| {
        let c = x - mean.get(j).copied().unwrap_or(F::zero());
        c * c
    })
}

/// Column sums of the element-wise product `a * b` (same shape), each product
/// rounded before it is added, as [`col_sums`] of the product array would give.
pub(super) fn col_sums_prod<'a, F: Real>(
    a: &ArrayView2<'a, F>,
    b: &ArrayView2<'a, F>,
) -> Array1<F> {
    fold_rows(a, Some(b), |x, y, _| x * y)
}
