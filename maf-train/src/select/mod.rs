//! `fit`'s model search: which base, how many mixture components, which flow,
//! chosen by validation log-likelihood within a device budget and a time budget.
//!
//! 1. **Mixtures.** Gaussian mixtures of every size and covariance type in the
//!    search space are fitted by EM on the training rows and scored on the
//!    validation rows (the same score early stopping uses), each size the best
//!    of [`EM_STARTS`] EM runs. Each size is also tried as the equal-weight
//!    average of its starts (one mixture of `EM_STARTS` times the components),
//!    a candidate only if it beats its best start by more than two standard
//!    errors of the paired per-row difference: EM's local optima err in
//!    different places, and their average is measured better on held-out rows
//!    on every open set (`docs/model.md`).
//! 2. **Flows.** Every flow shape in the search space is trained twice over: on
//!    the best mixture that leaves the flow within the device budget, starting
//!    as the identity (so epoch 0 *is* the mixture, and
//!    early stopping keeps the mixture unless an epoch improves on it), and on the
//!    standard normal base (the classic MAF, random start, batch norm).
//! 3. The best mixture wins unless a flow beats it on validation by more than
//!    two standard errors of the paired per-row difference; then the best such
//!    flow wins. Scores leave out the lowest `anomaly_quantile` of the rows, as
//!    early stopping does (a few far-out rows must not decide), and a flow's
//!    rows are paired with the mixture's. The search never returns anything
//!    worse on validation than the best mixture it tried.
//!
//! Candidates over the device budget ([`crate::cost`]) are not trained; once the
//! time budget is spent, the candidate in training stops (keeping its best epoch)
//! and the rest are skipped.

use std::time::{Duration, Instant};

use maf_core::{Base, Covariance};

use crate::cost;
use crate::error::{Error, Result};
use crate::hyper::CheckedFitParams;
use crate::mixture;
use crate::model::{Activation, Arch};
use crate::train::{Data, Fitted};

mod compare;
mod flows;
mod trial;

use compare::{best_of, mixture_arch, mixture_fit, paired, score_mixture};
use flows::{Job, Run};
use trial::shape_of;
pub use trial::{Chosen, Progress, Trial, table};

/// Mixture sizes tried by default (those of the anchor in `data/baselines.md`).
pub const DEFAULT_COMPONENTS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// EM runs per mixture, each from its own k-means++ start; the one with the best
/// validation score is kept.
pub const EM_STARTS: u64 = 3;

/// Flow shapes `(MADEs, hidden units)` tried by default.
pub const DEFAULT_FLOWS: [(usize, usize); 2] = [(2, 32), (5, 64)];

/// What the search may choose from; each `Vec` lists the values tried.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Mixture components; 0 stands for the standard normal base alone (no
    /// mixture stage).
    pub components: Vec<usize>,
    /// Covariance types of the mixtures.
    pub covariances: Vec<Covariance>,
    /// Flow shapes `(layers, hidden)`; layers 0 is the mixture alone.
    pub flows: Vec<(usize, usize)>,
    /// Hidden activations of the flows.
    pub activations: Vec<Activation>,
    /// Hidden layers per MADE.
    pub hidden_layers: usize,
    /// Batch norm in flows on the standard normal base.
    pub batch_norm: bool,
    /// Also train flows on the standard normal base (when the mixture stage runs).
    pub normal_base_flows: bool,
    /// Also try each mixture size as the average of its [`EM_STARTS`] starts (a
    /// mixture of `EM_STARTS` times as many components): off when the number of
    /// components is fixed.
    pub averaged_mixtures: bool,
}

/// Limits on what the search may return and how long it may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Most estimated Cortex-M4F instructions per log density ([`cost::instructions`]).
    pub max_instructions: usize,
    /// Most blob bytes.
    pub max_blob_bytes: usize,
    /// Wall time for the whole search.
    pub time: Duration,
    /// Threads of the search (0: every core): flow candidates trained at once,
    /// each on one thread, and a mixture's EM starts run at once. The result is
    /// the same for every count, but for what the time budget cuts.
    pub threads: usize,
}
/// Runs the search (see the module documentation).
///
/// # Errors
/// [`Error::InvalidParam`] when no candidate fits the budget or none could be
/// fitted; training errors of a candidate are recorded in its trial, not returned.
pub fn search(
    hp: &CheckedFitParams,
    space: &Space,
    budget: Budget,
    train_data: Data<'_>,
    valid: Data<'_>,
    log_jacobian: f64,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Chosen> {
    let start = Instant::now();
    let deadline = start + budget.time;
    let threads = match budget.threads {
        0 => crate::parallel::available_threads(),
        n => n,
    };
    let (dim, context) = (train_data.x.ncols(), train_data.c.ncols());
    let mut trials: Vec<Trial> = Vec::new();
    let mut fits: Vec<Option<Fitted>> = Vec::new();
    let within = |arch: &Arch| {
        let s = shape_of(arch);
        let ins = cost::instructions(s, arch.activation, arch.base);
        let bytes = cost::blob_bytes(s, arch.base);
        (
            ins,
            bytes,
            ins <= budget.max_instructions && bytes <= budget.max_blob_bytes,
        )
    };
    let mixtures: Vec<(usize, Covariance)> = space
        .covariances
        .iter()
        .flat_map(|&cov| {
            space
                .components
                .iter()
                .filter(|&&k| k > 0)
                .map(move |&k| (k, cov))
        })
        .collect();
    let flow_cands = |base: Base, bn: bool| -> Vec<Arch> {
        let mut v = Vec::new();
        for &(layers, hidden) in space.flows.iter().filter(|f| f.0 > 0) {
            for &activation in &space.activations {
                v.push(Arch {
                    dim,
                    context,
                    hidden,
                    hidden_layers: space.hidden_layers,
                    layers,
                    batch_norm: bn,
                    activation,
                    base,
                });
            }
        }
        v
    };
    let normal_flows = if mixtures.is_empty() || space.normal_base_flows {
        flow_cands(Base::StandardNormal, space.batch_norm)
    } else {
        Vec::new()
    };
    let mixture_flows = flow_cands(Base::StandardNormal, false).len();
    // Sizes whose starts are also tried averaged (one component averages to
    // itself; the base holds at most MAX_COMPONENTS).
    let averaged = |k: usize| {
        space.averaged_mixtures && k > 1 && k * EM_STARTS as usize <= maf_core::base::MAX_COMPONENTS
    };
    let total = mixtures.len()
        + mixtures.iter().filter(|m| averaged(m.0)).count()
        + if mixtures.is_empty() {
            0
        } else {
            mixture_flows
        }
        + normal_flows.len();
    // A search space of one model (every choice fixed by flags) is trained even
    // over the budget: the user asked for exactly it.
    let within = |arch: &Arch| {
        let (ins, bytes, ok) = within(arch);
        (ins, bytes, ok || total == 1)
    };
    let mut number = 0;
    let x64 = train_data.x.mapv(f64::from);
    let xv64 = valid.x.mapv(f64::from);

    // 1. Mixtures by EM, then the average of each size's starts.
    // The mixtures a flow may start from, with their validation scores.
    let mut gmms: Vec<(f64, mixture::Gmm)> = Vec::new();
    let consider = |gmms: &mut Vec<(f64, mixture::Gmm)>, score: f64, gmm: &mixture::Gmm| {
        if score.is_finite() {
            gmms.push((score, gmm.clone()));
        }
    };
    for &(k, cov) in &mixtures {
        number += 1;
        let arch = mixture_arch(dim, context, k, cov);
        let (instructions, blob_bytes, ok) = within(&arch);
        let mut trial = Trial::new(arch, instructions, blob_bytes);
        on_progress(Progress::Start(number, total, &trial.label));
        let t0 = Instant::now();
        let mut fitted = None;
        // Every start that EM fitted: (score, rows, mixture).
        let mut starts: Vec<(f64, Vec<f64>, mixture::Gmm)> = Vec::new();
        if !ok {
            trial.status = "over the device budget".into();
        } else if crate::interrupt::requested() && !gmms.is_empty() {
            trial.status = "skipped: interrupted".into();
        } else if Instant::now() >= deadline && !gmms.is_empty() {
            trial.status = "skipped: time budget spent".into();
        } else {
            // EM finds a local optimum that depends on its k-means++ start:
            // EM_STARTS starts, the best on validation kept.
            // The starts are independent: on several threads they run at once,
            // their results taken in start order (the same as one at a time).
            let one_start = |start: u64| {
                let seed = hp.seed.wrapping_add(start << 32);
                mixture::fit(x64.view(), k, cov, seed).map(|gmm| {
                    let (score, lls) = score_mixture(&gmm, xv64.view(), log_jacobian, hp);
                    (score, lls, gmm)
                })
            };
            let results: Vec<_> = if threads > 1 {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..EM_STARTS)
                        .map(|start| scope.spawn(move || one_start(start)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                })
            } else {
                (0..EM_STARTS).map(one_start).collect()
            };
            let mut last_err = None;
            for r in results {
                match r {
                    Err(e) => last_err = Some(e),
                    Ok(fitted_start) => starts.push(fitted_start),
                }
            }
            starts.sort_by(|a, b| b.0.total_cmp(&a.0));
            match starts.first() {
                None => {
                    let e = last_err.unwrap_or(mixture::FitError::TooFewRows);
                    trial.status = format!("not fitted: {e}");
                }
                Some((score, lls, gmm)) => {
                    trial.valid_ll = *score;
                    trial.rows = lls.clone();
                    trial.status = format!("fitted (EM, best of {EM_STARTS} starts)");
                    fitted = Some(mixture_fit(arch, gmm, *score, lls, t0));
                    consider(&mut gmms, *score, gmm);
                }
            }
        }
        trial.seconds = t0.elapsed().as_secs_f64();
        on_progress(Progress::Done(number, &trial));
        trials.push(trial);
        fits.push(fitted);

        // The average of the starts: a mixture of EM_STARTS·k components whose
        // density is the starts' mean density. Averaging local optima smooths
        // what each start got wrong, at EM_STARTS times the device cost; it is a
        // candidate only if it beats its best start on validation by more than
        // two standard errors of the paired per-row difference.
        if !averaged(k) {
            continue;
        }
        number += 1;
        let arch = mixture_arch(dim, context, k * EM_STARTS as usize, cov);
        let (instructions, blob_bytes, ok) = within(&arch);
        let mut trial = Trial::new(arch, instructions, blob_bytes);
        trial.label = format!("{} ({EM_STARTS} × K={k})", trial.label);
        on_progress(Progress::Start(number, total, &trial.label));
        let t0 = Instant::now();
        let mut fitted = None;
        let members: Vec<mixture::Gmm> = starts.iter().map(|s| s.2.clone()).collect();
        if !ok {
            trial.status = "over the device budget".into();
        } else if members.len() < EM_STARTS as usize {
            trial.status = format!("not fitted: {} of {EM_STARTS} starts fitted", members.len());
        } else if let Some(avg) = mixture::Gmm::average(&members) {
            let (score, lls) = score_mixture(&avg, xv64.view(), log_jacobian, hp);
            let best = &starts[0].1;
            let cut = crate::metrics::quantile(best, hp.anomaly_quantile);
            let (gain, two_se) = paired(&lls, best, cut);
            trial.valid_ll = score;
            trial.rows = lls.clone();
            if gain - two_se > 0.0 {
                trial.status = format!("averaged ({gain:+.4} ± {two_se:.4} on its best start)");
                fitted = Some(mixture_fit(arch, &avg, score, &lls, t0));
                consider(&mut gmms, score, &avg);
            } else {
                trial.status =
                    format!("not a candidate: {gain:+.4} ± {two_se:.4} on its best start");
            }
        }
        trial.seconds = t0.elapsed().as_secs_f64();
        on_progress(Progress::Done(number, &trial));
        trials.push(trial);
        fits.push(fitted);
    }

    // 2. Flows: each on the best mixture that leaves it within the device budget
    // (identity start), then on the standard normal.
    gmms.sort_by(|a, b| b.0.total_cmp(&a.0));
    let on_mixture = |template: Arch, gmm: &mixture::Gmm| Arch {
        base: Base::Mixture {
            components: gmm.components(),
            covariance: gmm.covariance,
        },
        ..template
    };
    let mut flows: Vec<(Arch, Option<&mixture::Gmm>)> = Vec::new();
    if let Some((_, best)) = gmms.first() {
        for template in flow_cands(Base::StandardNormal, false) {
            let gmm = gmms
                .iter()
                .map(|g| &g.1)
                .find(|g| within(&on_mixture(template, g)).2)
                .unwrap_or(best);
            flows.push((on_mixture(template, gmm), Some(gmm)));
        }
    } else if !mixtures.is_empty() {
        number += mixture_flows;
    }
    flows.extend(normal_flows.into_iter().map(|a| (a, None)));
    let jobs: Vec<Job<'_>> = flows
        .into_iter()
        .map(|(arch, gmm)| {
            number += 1;
            let (instructions, blob_bytes, ok) = within(&arch);
            Job {
                number,
                trial: Trial::new(arch, instructions, blob_bytes),
                gmm,
                within: ok,
            }
        })
        .collect();
    let run = Run {
        hp,
        deadline,
        train: train_data,
        valid,
        log_jacobian,
        total,
        have_fit: fits.iter().any(Option::is_some),
    };
    for (trial, fitted) in flows::train_all(&run, jobs, threads, on_progress)? {
        trials.push(trial);
        fits.push(fitted);
    }

    // 3. The winner. Without mixtures: the best mean validation log-likelihood.
    // With them: the best mixture, unless a flow beats it on validation by more
    // than two standard errors of the paired per-row difference (so a flow must
    // be better by more than the validation set's noise, which on a small set is
    // large, and a flow that is catastrophic on a few rows cannot win).
    let is_mixture = |t: &Trial| t.arch.layers == 0;
    let best_mixture = best_of(&trials, &fits, &|_, t| is_mixture(t));
    let winner = match best_mixture {
        None => best_of(&trials, &fits, &|_, _| true),
        Some(m) => {
            let reference = trials[m].rows.clone();
            let cut = crate::metrics::quantile(&reference, hp.anomaly_quantile);
            for t in trials
                .iter_mut()
                .filter(|t| !is_mixture(t) && !t.rows.is_empty())
            {
                t.vs_mixture = paired(&t.rows, &reference, cut);
            }
            // A flow on the mixture that kept its start (best epoch 0) is the
            // mixture at a higher device cost: not a candidate.
            best_of(&trials, &fits, &|i, t| {
                let kept_its_start = t.best_epoch == 0 && t.arch.base != Base::StandardNormal;
                let significant = t.vs_mixture.0 - t.vs_mixture.1 > 0.0;
                i == m || (!is_mixture(t) && !kept_its_start && significant)
            })
        }
    };
    let Some(winner) = winner else {
        if trials.iter().all(|t| t.status.starts_with("over")) {
            return Err(Error::InvalidParam {
                name: "max-instructions",
                message: format!(
                    "no model in the search space fits the device budget (--max-instructions {}, \
                     --max-blob-bytes {}); the cheapest needs {} instructions",
                    budget.max_instructions,
                    budget.max_blob_bytes,
                    trials.iter().map(|t| t.instructions).min().unwrap_or(0)
                ),
            });
        }
        let reasons: Vec<String> = trials
            .iter()
            .map(|t| format!("{}: {}", t.label, t.status))
            .collect();
        return Err(Error::Diverged(format!(
            "no candidate could be fitted ({})",
            reasons.join("; ")
        )));
    };
    let arch = trials[winner].arch;
    let Some(fitted) = fits.swap_remove(winner) else {
        return Err(Error::Internal("the winner has no fit".into()));
    };
    Ok(Chosen {
        fitted,
        arch,
        winner,
        trials,
        elapsed: start.elapsed(),
    })
}
