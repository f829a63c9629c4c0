//! One epoch of training: Adam on the minibatches of a shuffled row order, with
//! weight decay and optional gradient clipping.

use ndarray::Array2;

use super::data::Data;
use crate::hyper::CheckedFitParams;
use crate::model::{Arch, Masks, Params};

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

    fn step(&mut self, p: &mut Params<f32>, g: &Params<f32>, lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f32 = 1e-8;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        let step = (lr * c2.sqrt() / c1) as f32;
        let (b1, b2) = (B1 as f32, B2 as f32);
        let eps = EPS * c2.sqrt() as f32;
        for (((w, g), m), v) in p
            .tensors
            .iter_mut()
            .zip(&g.tensors)
            .zip(&mut self.m.tensors)
            .zip(&mut self.v.tensors)
        {
            ndarray::Zip::from(w)
                .and(g)
                .and(m)
                .and(v)
                .for_each(|w, &g, m, v| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= step * *m / (v.sqrt() + eps);
                });
        }
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
        for (r, &i) in idx.iter().enumerate() {
            st.xb.row_mut(r).assign(&train.x.row(i));
            st.cb.row_mut(r).assign(&train.c.row(i));
        }
        let loss =
            st.params
                .loss_and_grad_threads(st.masks, st.xb.view(), st.cb.view(), st.grad, threads);
        if !loss.is_finite() {
            return Err("non-finite training loss");
        }
        loss_sum += f64::from(loss) * idx.len() as f64;
        if hp.weight_decay > 0.0 {
            let wd = hp.weight_decay as f32;
            for l in 0..arch.layers {
                for kind in crate::model::ALL_KINDS {
                    if kind.is_weight() {
                        let w = st.params.get(l, kind);
                        st.grad.get_mut(l, kind).scaled_add(wd, w);
                    }
                }
            }
        }
        if let Some(clip) = hp.clip_norm {
            let norm = st
                .grad
                .tensors
                .iter()
                .map(|t| t.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .sum::<f64>()
                .sqrt();
            if !norm.is_finite() {
                return Err("non-finite gradient");
            }
            if norm > clip {
                let k = (clip / norm) as f32;
                for t in &mut st.grad.tensors {
                    *t *= k;
                }
            }
        }
        st.adam.step(st.params, st.grad, lr);
    }
    Ok(loss_sum)
}

/// Splits `0..n` into `parts` contiguous ranges whose sizes differ by at most one.
pub(super) fn even_batches(n: usize, batch: usize) -> Vec<(usize, usize)> {
    let parts = (n / batch).max(1);
    (0..parts)
        .map(|i| (i * n / parts, (i + 1) * n / parts))
        .collect()
}
