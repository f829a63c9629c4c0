//! The flow stage of the search: every flow candidate trained on one thread,
//! several candidates at once when there are cores for them. Training is
//! deterministic, so a candidate's result does not depend on what runs beside it
//! (only the time budget, a wall clock, can cut it differently).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::trial::{Progress, Trial, shape_of};
use crate::error::{Error, Result};
use crate::hyper::CheckedFitParams;
use crate::mixture;
use crate::model::{Masks, Params};
use crate::train::{self, Data, EpochReport, Fitted};

/// One flow candidate: its number in the search, its trial record, the mixture
/// it starts from (`None`: the standard normal base, random start) and whether
/// it is within the device budget.
pub(crate) struct Job<'g> {
    /// 1-based number among all candidates.
    pub number: usize,
    /// The trial to fill in.
    pub trial: Trial,
    /// The fitted mixture the flow starts on as the identity.
    pub gmm: Option<&'g mixture::Gmm>,
    /// Within the device budget (else not trained).
    pub within: bool,
}

/// What every candidate's training shares.
pub(crate) struct Run<'h, 't, 'v> {
    /// The fit's settings.
    pub hp: &'h CheckedFitParams,
    /// When the time budget runs out.
    pub deadline: Instant,
    /// Standardised training rows.
    pub train: Data<'t>,
    /// Standardised validation rows.
    pub valid: Data<'v>,
    /// The standardisation's log-Jacobian.
    pub log_jacobian: f64,
    /// Candidates in the whole search (1: the user fixed every choice).
    pub total: usize,
    /// Whether an earlier stage fitted something (then a spent budget skips).
    pub have_fit: bool,
}

/// A worker's report to the thread that shows progress.
enum Msg {
    Start(usize, String),
    Epoch(usize, EpochReport),
    Done(usize, usize, Box<(Trial, Option<Fitted>)>),
}

/// Trains every job (in order on one thread, or `threads` at a time, 0 meaning
/// every core) and returns the trials and fits in job order. Progress events
/// reach `on_progress` on the calling thread.
///
/// # Errors
/// A search of one candidate fails as its training did; otherwise a failed
/// training is recorded in its trial.
pub(crate) fn train_all(
    run: &Run<'_, '_, '_>,
    jobs: Vec<Job<'_>>,
    threads: usize,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<(Trial, Option<Fitted>)>> {
    let threads = if threads == 0 {
        crate::parallel::available_threads()
    } else {
        threads
    };
    let trained = jobs.iter().filter(|j| j.within).count();
    if threads <= 1 || trained <= 1 {
        let mut out = Vec::with_capacity(jobs.len());
        let mut have_fit = run.have_fit;
        for job in jobs {
            let number = job.number;
            on_progress(Progress::Start(number, run.total, &job.trial.label));
            let mut forward = |r: &EpochReport| on_progress(Progress::Epoch(number, r));
            // One candidate at a time: it trains on every thread.
            let (trial, fitted, err) = train_one(run, job, have_fit, &mut forward, &|| threads);
            if let (Some(e), 1) = (err, run.total) {
                return Err(e);
            }
            on_progress(Progress::Done(number, &trial));
            have_fit |= fitted.is_some();
            out.push((trial, fitted));
        }
        return Ok(out);
    }
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<VecDeque<_>>());
    let fitted_any = AtomicBool::new(run.have_fit);
    let mut results: Vec<Option<(Trial, Option<Fitted>)>> = (0..n).map(|_| None).collect();
    let (tx, rx) = mpsc::channel::<Msg>();
    // Workers that found the queue empty: the candidates still training share
    // their threads (each asks before every epoch; the result is the same).
    let workers = threads.min(trained);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (queue, fitted_any, finished) = (&queue, &fitted_any, &finished);
            scope.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((i, job)) = next else {
                        finished.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    let number = job.number;
                    let _ = tx.send(Msg::Start(number, job.trial.label.clone()));
                    let mut forward = |r: &EpochReport| {
                        let _ = tx.send(Msg::Epoch(number, r.clone()));
                    };
                    let have_fit = fitted_any.load(Ordering::Relaxed);
                    let share = || threads / (workers - finished.load(Ordering::Relaxed)).max(1);
                    let (trial, fitted, _) = train_one(run, job, have_fit, &mut forward, &share);
                    if fitted.is_some() {
                        fitted_any.store(true, Ordering::Relaxed);
                    }
                    let _ = tx.send(Msg::Done(i, number, Box::new((trial, fitted))));
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Msg::Start(number, label) => {
                    on_progress(Progress::Start(number, run.total, &label));
                }
                Msg::Epoch(number, r) => on_progress(Progress::Epoch(number, &r)),
                Msg::Done(i, number, result) => {
                    on_progress(Progress::Done(number, &result.0));
                    results[i] = Some(*result);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Internal("a flow candidate was not trained".into())))
        .collect()
}

/// Trains one flow candidate (or records why not): the trial, the fit, and the
/// training error if there was one. `have_fit`: something was fitted before, so
/// a spent time budget or an interrupt skips this one.
fn train_one(
    run: &Run<'_, '_, '_>,
    job: Job<'_>,
    have_fit: bool,
    on_epoch: &mut dyn FnMut(&EpochReport),
    threads: &dyn Fn() -> usize,
) -> (Trial, Option<Fitted>, Option<Error>) {
    let Job {
        mut trial,
        gmm,
        within,
        ..
    } = job;
    let arch = trial.arch;
    let t0 = Instant::now();
    let mut fitted = None;
    let mut error = None;
    if !within {
        trial.status = "over the device budget".into();
    } else if crate::interrupt::requested() && have_fit {
        trial.status = "skipped: interrupted".into();
    } else if Instant::now() >= run.deadline && have_fit {
        trial.status = "skipped: time budget spent".into();
    } else if let Err(e) = shape_of(&arch).check() {
        trial.status = format!("not supported: {e}");
    } else {
        let init = gmm.map(|g| {
            let masks = Masks::<f32>::new(&arch);
            let mut rng = ChaCha8Rng::seed_from_u64(run.hp.seed);
            Params::init_from_mixture(arch, &masks, g, &mut rng)
        });
        match train::fit_from_dynamic(
            run.hp,
            arch,
            init,
            Some(run.deadline),
            run.train,
            run.valid,
            run.log_jacobian,
            on_epoch,
            threads,
        ) {
            Ok(f) => {
                trial.rows = train::log_likelihoods(
                    &f.params,
                    &f.stats,
                    run.valid.x,
                    run.valid.c,
                    run.log_jacobian,
                );
                trial.valid_ll = f.valid_ll;
                trial.epochs = f.epochs;
                trial.best_epoch = f.best_epoch;
                trial.status = if crate::interrupt::requested() {
                    "trained (interrupted)".into()
                } else if Instant::now() >= run.deadline {
                    "trained (stopped by the time budget)".into()
                } else {
                    "trained".into()
                };
                fitted = Some(f);
            }
            Err(e) => {
                trial.status = format!("failed: {e}");
                error = Some(e);
            }
        }
    }
    trial.seconds = t0.elapsed().as_secs_f64();
    (trial, fitted, error)
}
