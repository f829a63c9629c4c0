//! One epoch of training: Adam on the minibatches of a shuffled row order, with
//! weight decay and optional gradient clipping.

use ndarray::Array2;

use super::data::Data;
use crate::hyper::CheckedFitParams;
use crate::model::{ALL_KINDS, Arch, KINDS, Masks, Params, Scratch, par};

/// Adam's first and second moment estimates and its step count.
pub(super) struct Adam {
    m: Params<f32>,
    v: Params<f32>,
    t: i32,
}

impl Adam {
    pub(super) fn new(arch: Arch) -> Self {
        Adam {
            m: Params::zeros(arch),
            v: Params::zeros(arch),
            t: 0,
        }
    }

    /// One optimiser update from the minibatch gradient `g`: weight decay
    /// (`weight_decay * w` added to every weight matrix's gradient), clipping of
    /// the whole gradient to norm `clip_norm`, and Adam's step on `p`. The
    /// tensors of each MADE (and the mixture base's) are one job on the current
    /// `micropool` pool: every value is computed by the same operations as on one
    /// thread, and the gradient norm adds the per-tensor sums in tensor order, so
    /// the bits do not depend on `threads`.
    ///
    /// # Errors
    /// A non-finite gradient norm (when clipping).
    fn update(
        &mut self,
        p: &mut Params<f32>,
        g: &mut Params<f32>,
        hp: &CheckedFitParams,
        lr: f64,
        threads: usize,
    ) -> Result<(), &'static str> {
        let layers = p.arch.layers;
        let wd = (hp.weight_decay > 0.0).then_some(hp.weight_decay as f32);
        let clip = hp.clip_norm;
        let mut sq = vec![0.0f64; g.tensors.len()];
        let jobs: Vec<_> = g
            .tensors
            .chunks_mut(KINDS)
            .zip(p.tensors.chunks(KINDS))
            .zip(sq.chunks_mut(KINDS))
            .enumerate()
            .collect();
        par::run(jobs, threads, |(group, ((gs, ps), sq))| {
            for (k, ((gt, pt), sq)) in gs.iter_mut().zip(ps).zip(sq).enumerate() {
                if let Some(wd) = wd
                    && group < layers
                    && ALL_KINDS[k].is_weight()
                {
                    gt.scaled_add(wd, pt);
                }
                if clip.is_some() {
                    *sq = gt.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
                }
            }
        });
        let scale = match clip {
            Some(clip) => {
                let norm = sq.iter().copied().sum::<f64>().sqrt();
                if !norm.is_finite() {
                    return Err("non-finite gradient");
                }
                (norm > clip).then(|| (clip / norm) as f32)
            }
            None => None,
        };
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f32 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let step = (lr * c2.sqrt() / c1) as f32;
        let (b1, b2) = (B1 as f32, B2 as f32);
        let eps = EPS * c2.sqrt() as f32;
        let jobs: Vec<_> = p
            .tensors
            .chunks_mut(KINDS)
            .zip(g.tensors.chunks_mut(KINDS))
            .zip(self.m.tensors.chunks_mut(KINDS))
            .zip(self.v.tensors.chunks_mut(KINDS))
            .collect();
        par::run(jobs, threads, |(((ps, gs), ms), vs)| {
            for (((w, g), m), v) in ps.iter_mut().zip(gs).zip(ms).zip(vs) {
                if let Some(k) = scale {
                    *g *= k;
                }
                ndarray::Zip::from(w)
                    .and(&*g)
                    .and(m)
                    .and(v)
                    .for_each(|w, &g, m, v| {
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *w -= step * *m / (v.sqrt() + eps);
                    });
            }
        });
        Ok(())
    }
}

/// Mutable training state for one epoch.
pub(super) struct Step<'a> {
    pub(super) params: &'a mut Params<f32>,
    pub(super) grad: &'a mut Params<f32>,
    pub(super) adam: &'a mut Adam,
    pub(super) masks: &'a Masks<f32>,
    pub(super) xb: &'a mut Array2<f32>,
    pub(super) cb: &'a mut Array2<f32>,
    /// The workers of each minibatch's step (`None`: this thread only; the same
    /// bits either way).
    pub(super) pool: Option<&'a Workers>,
}

/// The threads of the training steps: the calling thread and `threads - 1`
/// `micropool` workers, which spin between the step's parallel sections.
pub(super) struct Workers {
    pool: micropool::ThreadPool,
    threads: usize,
}

/// Cycles a worker spins waiting for the next parallel section before it sleeps
/// (about 0.1 ms: longer than the gaps within a step and between steps).
const SPIN_CYCLES: usize = 300_000;

impl Workers {
    /// The threads of a step: the caller and the workers.
    pub(super) fn threads(&self) -> usize {
        self.threads
    }
}

/// Workers for `threads` threads (`None` for one: the calling thread alone).
pub(super) fn pool(threads: usize) -> Option<Workers> {
    (threads > 1).then(|| Workers {
        pool: micropool::ThreadPoolBuilder::default()
            .num_threads(threads - 1)
            .idle_spin_cycles(SPIN_CYCLES)
            .build(),
        threads,
    })
}

/// One pass over the minibatches `batches` of the rows in `order`: returns the
/// summed training loss, or why it diverged. Runs on `st.pool` when there is one.
pub(super) fn run_epoch(
    st: &mut Step<'_>,
    hp: &CheckedFitParams,
    train: Data<'_>,
    order: &[usize],
    batches: &[(usize, usize)],
    lr: f64,
) -> Result<f64, &'static str> {
    match st.pool {
        Some(w) => {
            let threads = w.threads;
            w.pool
                .install(|| steps(st, hp, train, order, batches, lr, threads))
        }
        None => steps(st, hp, train, order, batches, lr, 1),
    }
}

/// [`run_epoch`]'s minibatch steps, each on `threads` threads of the current
/// `micropool` pool.
fn steps(
    st: &mut Step<'_>,
    hp: &CheckedFitParams,
    train: Data<'_>,
    order: &[usize],
    batches: &[(usize, usize)],
    lr: f64,
    threads: usize,
) -> Result<f64, &'static str> {
    let arch = st.params.arch;
    let mut loss_sum = 0.0;
    // The steps' intermediate arrays, reused from one minibatch to the next.
    let mut scratch = Scratch::new();
    for &(b0, b1) in batches {
        // SIGINT/SIGTERM: stop at the end of the current minibatch.
        if crate::interrupt::requested() {
            break;
        }
        let idx = &order[b0..b1];
        if st.xb.nrows() != idx.len() {
            *st.xb = Array2::zeros((idx.len(), arch.dim));
            *st.cb = Array2::zeros((idx.len(), arch.context));
        }
        gather(st.xb, train.x, idx);
        if arch.context > 0 {
            gather(st.cb, train.c, idx);
        }
        let loss = st.params.loss_and_grad_with(
            st.masks,
            st.xb.view(),
            st.cb.view(),
            st.grad,
            threads,
            &mut scratch,
        );
        if !loss.is_finite() {
            return Err("non-finite training loss");
        }
        loss_sum += f64::from(loss) * idx.len() as f64;
        st.adam.update(st.params, st.grad, hp, lr, threads)?;
    }
    Ok(loss_sum)
}

/// Copies the rows `idx` of `src` into the rows of `dst` (as many), slice by
/// slice when both are row-major (the usual case: ndarray's per-row `assign`
/// cost more than the copy at these widths).
fn gather(dst: &mut Array2<f32>, src: ndarray::ArrayView2<'_, f32>, idx: &[usize]) {
    for (mut d, &i) in dst.rows_mut().into_iter().zip(idx) {
        let s = src.row(i);
        match (d.as_slice_mut(), s.as_slice()) {
            (Some(d), Some(s)) if d.len() == s.len() => d.copy_from_slice(s),
            _ => d.assign(&s),
        }
    }
}

/// Splits `0..n` into `parts` contiguous ranges whose sizes differ by at most one.
pub(super) fn even_batches(n: usize, batch: usize) -> Vec<(usize, usize)> {
    let parts = (n / batch).max(1);
    (0..parts)
        .map(|i| (i * n / parts, (i + 1) * n / parts))
        .collect()
}
