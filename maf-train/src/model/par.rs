//! Row blocks for the training step: a minibatch's rows are cut into contiguous
//! blocks, one per thread of the current `micropool` pool, and each block's results
//! are written in place into the whole batch's arrays. Every row is computed by
//! the same operations whatever the block (matrix products are row by row), so
//! the bits do not depend on the number of threads (`tests/threads.rs`).

use std::ops::Range;

use ndarray::{Array2, ArrayViewMut2, Axis};

/// Fewest rows a block gets (smaller blocks are not worth a thread: at batch 100, two blocks of 50 rows
/// trained no faster than one, measured with `maf-train bench --batch-size 100`).
const MIN_ROWS_PER_BLOCK: usize = 64;

/// The row ranges of `n` rows for `threads` threads: at most `threads` blocks of
/// at least [`MIN_ROWS_PER_BLOCK`] rows (one block when there are few rows).
pub(super) fn blocks(n: usize, threads: usize) -> Vec<Range<usize>> {
    let k = threads.min(n / MIN_ROWS_PER_BLOCK).max(1);
    let per = n.div_ceil(k).max(1);
    (0..n.div_ceil(per).max(1))
        .map(|b| (b * per).min(n)..((b + 1) * per).min(n))
        .collect()
}

/// `a`'s rows cut at `blocks` (each view `None` when `a` is absent or has no
/// rows, as for a layer that does not exist).
pub(super) fn cut<'a, F>(
    a: Option<&'a mut Array2<F>>,
    blocks: &[Range<usize>],
) -> Vec<Option<ArrayViewMut2<'a, F>>> {
    match a {
        Some(a) if a.nrows() > 0 => {
            let per = blocks.first().map_or(1, |r| r.len().max(1));
            a.axis_chunks_iter_mut(Axis(0), per).map(Some).collect()
        }
        _ => blocks.iter().map(|_| None).collect(),
    }
}

/// Runs `f` on every job: in order on this thread for one thread, else in
/// `threads` contiguous groups of jobs (as many jobs each, give or take one),
/// each group in order on one thread, split in halves by `micropool::join` on the
/// current pool. Grouping first makes one fork-join per thread instead of one
/// per job: the weight gradients are some twenty short jobs per step.
pub(crate) fn run<T: Send>(jobs: Vec<T>, threads: usize, f: impl Fn(T) + Sync) {
    if threads <= 1 || jobs.len() <= 1 {
        jobs.into_iter().for_each(f);
        return;
    }
    let parts = threads.min(jobs.len());
    let n = jobs.len();
    let mut groups: Vec<Vec<T>> = Vec::with_capacity(parts);
    let mut it = jobs.into_iter();
    for g in 0..parts {
        let len = (g + 1) * n / parts - g * n / parts;
        groups.push(it.by_ref().take(len).collect());
    }
    join_all(groups, &|g: Vec<T>| g.into_iter().for_each(&f));
}

fn join_all<T: Send>(mut jobs: Vec<T>, f: &(impl Fn(T) + Sync)) {
    if jobs.len() <= 1 {
        jobs.into_iter().for_each(f);
        return;
    }
    let right = jobs.split_off(jobs.len() / 2);
    micropool::join(|| join_all(jobs, f), || join_all(right, f));
}
