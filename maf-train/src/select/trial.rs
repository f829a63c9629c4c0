//! The search's record: one [`Trial`] per candidate, its progress events, the
//! result ([`Chosen`]) and the table `fit` prints.

use std::time::Duration;

use crate::cost;
use crate::model::Arch;
use crate::train::{EpochReport, Fitted};

/// One candidate of the search and what became of it.
#[derive(Clone, Debug)]
pub struct Trial {
    /// A short name ([`cost::label`]).
    pub label: String,
    /// Its architecture.
    pub arch: Arch,
    /// Validation score: the mean log-likelihood (raw units) over the validation
    /// rows, the lowest `anomaly_quantile` of them left out (early stopping's
    /// score); NaN if not run.
    pub valid_ll: f64,
    /// Mean and two standard errors of the per-row validation log-likelihood
    /// difference to the best mixture (paired, over the rows where the mixture
    /// is above its `anomaly_quantile`), for the flows; NaN otherwise.
    pub vs_mixture: (f64, f64),
    /// Per-row validation log-likelihoods (raw units), for the paired comparison.
    pub rows: Vec<f64>,
    /// Estimated device instructions per log density.
    pub instructions: usize,
    /// Blob bytes (without metadata).
    pub blob_bytes: usize,
    /// Epochs trained (0 for a mixture).
    pub epochs: usize,
    /// Best epoch (0: the start, e.g. the mixture itself).
    pub best_epoch: usize,
    /// Wall time.
    pub seconds: f64,
    /// `trained`, `fitted`, or why it was not.
    pub status: String,
}

impl Trial {
    /// A candidate not run yet.
    pub(super) fn new(arch: Arch, instructions: usize, blob_bytes: usize) -> Self {
        Trial {
            label: cost::label(shape_of(&arch), arch.activation, arch.base),
            arch,
            valid_ll: f64::NAN,
            vs_mixture: (f64::NAN, f64::NAN),
            rows: Vec::new(),
            instructions,
            blob_bytes,
            epochs: 0,
            best_epoch: 0,
            seconds: 0.0,
            status: String::new(),
        }
    }
}

/// Search progress, for display.
#[derive(Clone, Debug)]
pub enum Progress<'a> {
    /// A candidate starts: its 1-based number, the total and its label.
    Start(usize, usize, &'a str),
    /// An epoch of a candidate in training (its 1-based number: candidates may
    /// train at once, their epochs interleaved).
    Epoch(usize, &'a EpochReport),
    /// A candidate is done: its 1-based number and what became of it.
    Done(usize, &'a Trial),
}

/// The search's result: the winner, its architecture and every trial in order.
#[derive(Clone, Debug)]
pub struct Chosen {
    /// The winner's fitted parameters.
    pub fitted: Fitted,
    /// The winner's architecture.
    pub arch: Arch,
    /// Index of the winner in `trials`.
    pub winner: usize,
    /// Everything tried.
    pub trials: Vec<Trial>,
    /// Wall time of the search.
    pub elapsed: Duration,
}

/// The `maf-core` shape of an architecture.
pub(super) fn shape_of(arch: &Arch) -> maf_core::Shape {
    crate::export::core_shape(arch)
}

/// The trials as a short table, one line each, the winner marked with `*`.
pub fn table(chosen: &Chosen) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "  {:<42} {:>10} {:>17} {:>7} {:>8} {:>8} {:>7}  status",
        "candidate", "valid LL", "vs mixture ± 2SE", "instr.", "bytes", "epochs", "seconds"
    );
    for (i, tr) in chosen.trials.iter().enumerate() {
        let mark = if i == chosen.winner { '*' } else { ' ' };
        let ll = if tr.valid_ll.is_finite() {
            format!("{:.4}", tr.valid_ll)
        } else {
            "-".into()
        };
        let ep = if tr.epochs > 0 {
            format!("{}/{}", tr.best_epoch, tr.epochs)
        } else {
            "-".into()
        };
        let vs = match tr.vs_mixture {
            (m, s) if m.is_finite() => format!("{m:+.4} ± {s:.4}"),
            (m, _) if m == f64::NEG_INFINITY => "-inf".into(),
            _ => "-".into(),
        };
        let _ = writeln!(
            t,
            "{mark} {:<42} {:>10} {:>17} {:>7} {:>8} {:>8} {:>7.1}  {}",
            tr.label, ll, vs, tr.instructions, tr.blob_bytes, ep, tr.seconds, tr.status
        );
    }
    t
}
