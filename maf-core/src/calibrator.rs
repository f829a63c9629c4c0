//! On-site re-baselining: a new threshold for the same false-alarm rate, from
//! the first vectors a new machine sees (declared healthy).
//!
//! A machine of the same kind differs a little from the ones in the training
//! log (a sensor mounted with a bias, a stiffer bearing): its healthy window
//! scores sit a little higher or lower. A low false-alarm rate `P` cannot be
//! estimated from a few hundred site vectors directly (at `P` = 1e-3 the
//! threshold is below the lowest of them), but the *location* of the healthy
//! window scores can. The calibrator takes the **median window score** of the
//! site vectors and moves the model's window threshold by the difference from
//! the median stored at training time ([`Window::median`]):
//!
//! `threshold' = threshold + (median_site - median_train)`, in `f32`,
//!
//! so that the threshold keeps its distance below the bulk of healthy windows.
//! The returned [`Window`] carries the site median, so re-baselining again later
//! is relative to the site.
//!
//! **Memory.** [`Calibrator<N, M>`] keeps the window (a [`Detector`]'s ring
//! buffer, `4 N + 12` bytes) and at most `M` window scores (`4 M` bytes and a
//! length): [`Calibrator::RAM_BYTES`]. The median is exact (error 0): the
//! stored scores are sorted when [`Calibrator::finish`] is called. Vectors past
//! the `M`-th window are not used.
//!
//! The host (`maf-train recalibrate`) calls [`rebaseline`] on the same window
//! scores and gets the same bits.

use heapless::Vec;

use crate::blob::Window;
use crate::detector::{Decision, Detector};
use crate::error::{Error, Result};

/// Fewest site windows [`rebaseline`] accepts.
pub const MIN_WINDOWS: usize = 8;

/// The median of `scores` (sorted in place, `-inf` lowest; the mean of the two
/// middle values for an even count), or `None` for none.
pub fn median(scores: &mut [f32]) -> Option<f32> {
    scores.sort_unstable_by(f32::total_cmp);
    let n = scores.len();
    let hi = *scores.get(n / 2)?;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = *scores.get(n / 2 - 1)?;
    Some(lo + (hi - lo) / 2.0)
}

/// The re-baselined window: the model's `window` with its threshold moved by
/// the site's median window score minus the stored one (module documentation).
/// `site_scores` (window scores of healthy site vectors, in any order) is
/// sorted in place. NaN scores count as `-inf`.
///
/// # Errors
/// [`Error::InvalidHeader`] when the window has no threshold or no median
/// (a model not calibrated by `maf-train fit --window`), when fewer than
/// [`MIN_WINDOWS`] scores are given, or when the site median or the new
/// threshold is not finite (most site windows without a density).
pub fn rebaseline(window: Window, site_scores: &mut [f32]) -> Result<Window> {
    let threshold = window
        .threshold
        .ok_or(Error::InvalidHeader("window_threshold (not calibrated)"))?;
    let reference = window
        .median
        .ok_or(Error::InvalidHeader("window_median (not stored)"))?;
    if site_scores.len() < MIN_WINDOWS {
        return Err(Error::InvalidHeader("too few site windows (fewer than 8)"));
    }
    for s in site_scores.iter_mut() {
        if s.is_nan() {
            *s = f32::NEG_INFINITY;
        }
    }
    let site = median(site_scores)
        .filter(|m| m.is_finite())
        .ok_or(Error::InvalidHeader(
            "site median window score (not finite)",
        ))?;
    let moved = threshold + (site - reference);
    if !moved.is_finite() {
        return Err(Error::InvalidHeader("window_threshold (not finite)"));
    }
    Ok(Window {
        len: window.len,
        threshold: Some(moved),
        median: Some(site),
    })
}

/// A calibration phase on the device: fed the log density of each healthy
/// site vector, it keeps their window scores (at most `M`), and
/// [`Calibrator::finish`] returns the re-baselined window (module
/// documentation).
#[derive(Debug, Clone)]
pub struct Calibrator<const N: usize, const M: usize> {
    window: Detector<N>,
    scores: Vec<f32, M>,
}

impl<const N: usize, const M: usize> Calibrator<N, M> {
    /// Bytes of RAM a calibrator takes.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// An empty calibrator.
    ///
    /// # Errors
    /// [`Error::InvalidHeader`] for `N` of 0 or over [`crate::blob::MAX_WINDOW`].
    pub fn new() -> Result<Self> {
        Ok(Self {
            window: Detector::new(0.0)?,
            scores: Vec::new(),
        })
    }

    /// Takes the next site vector's log density (NaN and overflow: `-inf`).
    /// Returns `false` once `M` window scores are stored (later vectors are not
    /// used).
    pub fn push(&mut self, log_prob: f32) -> bool {
        if self.scores.is_full() {
            return false;
        }
        if let Decision::Window { score, .. } = self.window.push(log_prob) {
            // Cannot fail: not full (checked above).
            let _ = self.scores.push(score);
        }
        !self.scores.is_full()
    }

    /// Window scores stored so far.
    pub fn windows(&self) -> usize {
        self.scores.len()
    }

    /// The re-baselined window ([`rebaseline`] of the stored scores); the
    /// stored scores are sorted, and kept.
    ///
    /// # Errors
    /// As [`rebaseline`].
    pub fn finish(&mut self, window: Window) -> Result<Window> {
        rebaseline(window, &mut self.scores)
    }
}
