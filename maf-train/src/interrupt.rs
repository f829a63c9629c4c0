//! Stopping `fit` on SIGINT (Ctrl-C), SIGTERM or SIGHUP without losing the
//! work: the first signal only sets a flag, which the training loops read
//! ([`requested`]) to stop at the end of the current minibatch and skip the
//! candidates not started; `fit` then writes the best model so far, with
//! `interrupted=` in its metadata, and exits with [`EXIT_INTERRUPTED`]. A second
//! signal ends the process at once (also with status 130).
//!
//! The loops that read the flag (in `train/` and `select/`):
//! - `train::epoch::run_epoch`, first statement of `for &(b0, b1) in batches {`:
//!   `if crate::interrupt::requested() { break; }`
//! - `train::fit::fit_from_threads`, the epoch's stop test: `out_of_time =
//!   deadline.is_some_and(|d| Instant::now() >= d) || crate::interrupt::requested();`
//! - `select::search` (mixtures) and `select::flows::train_one` (flows), the
//!   "skipped: interrupted" tests before each candidate.
//!
//! Without them the signal is still honoured, but only when the search ends on its
//! own (epochs, patience or `--time-budget`).

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of an interrupted command (128 + SIGINT, the shell's
/// convention).
pub const EXIT_INTERRUPTED: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was requested (a signal arrived, or [`request`] was called).
/// Cheap: one relaxed atomic load, fine inside a minibatch loop.
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Requests a stop, as a signal does.
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Installs the signal handler (once per process; later calls do nothing). The
/// handler runs on a thread of its own, so it may do anything: the first signal
/// sets the flag and says so on standard error, the second exits.
///
/// # Errors
/// The operating system refused the handler.
pub fn install() -> crate::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("interrupted again: stopping now, nothing written");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "interrupt: stopping after the current minibatch and writing the best model so \
             far (interrupt again to stop at once)"
        );
    })
    .map_err(|e| crate::Error::Internal(format!("installing the signal handler: {e}")))
}
