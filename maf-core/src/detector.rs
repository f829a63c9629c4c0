//! Windowed decisions: one log density per vector in, one decision per vector
//! out, from the mean log density of the last `N` vectors.
//!
//! A flow's log density is exact, so the log-likelihood of a window of `N`
//! vectors (taken as independent) is the sum of theirs; the detector compares
//! its mean, the *window score*, with a threshold calibrated for a stated
//! false-alarm rate per decision (`maf-train fit --window N`, stored in the
//! blob's [`Window`]). Averaging over the window cuts the noise of single
//! vectors: a healthy vector that happens to be improbable no longer raises an
//! alarm on its own, while a run of anomalous vectors drags the mean down.
//!
//! **Warm-up.** Until `N` vectors have been seen there is no window, and the
//! detector answers [`Decision::WarmingUp`] (never an alarm): a mean of fewer
//! vectors is noisier than the threshold was calibrated for.
//!
//! **Vectors without a density.** A vector whose log density overflowed
//! ([`crate::Error::Overflow`]) or is NaN enters the window as `-inf`: every
//! window that holds it has the score `-inf` and raises an alarm.
//!
//! **Memory.** The last `N` log densities in a ring buffer
//! ([`heapless::HistoryBuf`]): [`Detector::RAM_BYTES`], `4 N` bytes and three
//! words (cursor, full flag, threshold): `4 N + 12` bytes on a Cortex-M. The
//! window score is summed from the oldest to the newest vector every time (`N`
//! additions), not kept as a running sum, so it never drifts and the host and
//! the device get the same bits.

use heapless::HistoryBuf;

use crate::blob::Window;
use crate::error::{Error, Result};

/// The decision for one vector.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Fewer than `N` vectors seen so far (`seen` of them, this one included):
    /// no window yet, no alarm.
    WarmingUp {
        /// Vectors seen, 1..N.
        seen: usize,
    },
    /// A full window.
    Window {
        /// Mean log density of the last `N` vectors (this one included).
        score: f32,
        /// `score < threshold`.
        alarm: bool,
    },
}

impl Decision {
    /// Whether this decision raises an alarm.
    pub fn alarm(&self) -> bool {
        matches!(self, Decision::Window { alarm: true, .. })
    }

    /// The window score, if the window is full.
    pub fn score(&self) -> Option<f32> {
        match *self {
            Decision::Window { score, .. } => Some(score),
            Decision::WarmingUp { .. } => None,
        }
    }
}

/// The window score of log densities given oldest first: their sum, added in
/// that order in `f32`, divided by their count (`-inf` for none). The one
/// definition [`Detector`], [`crate::calibrator`] and the host tools share, so
/// that they get the same bits.
pub fn window_score<'a>(oldest_first: impl Iterator<Item = &'a f32>) -> f32 {
    let (sum, n) = oldest_first.fold((0.0f32, 0usize), |(a, n), &v| (a + v, n + 1));
    if n == 0 {
        f32::NEG_INFINITY
    } else {
        sum / n as f32
    }
}

/// A windowed detector over the last `N` vectors (module documentation).
#[derive(Debug, Clone)]
pub struct Detector<const N: usize> {
    history: HistoryBuf<f32, N>,
    threshold: f32,
}

impl<const N: usize> Detector<N> {
    /// Bytes of RAM a detector takes (the ring buffer, its cursor, the threshold).
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// A detector that raises an alarm when the mean log density of the last
    /// `N` vectors is below `threshold`.
    ///
    /// # Errors
    /// [`Error::InvalidHeader`] for a threshold that is not finite, or `N` of 0
    /// or over [`crate::blob::MAX_WINDOW`].
    pub fn new(threshold: f32) -> Result<Self> {
        if N == 0 || N > crate::blob::MAX_WINDOW as usize {
            return Err(Error::InvalidHeader("window (not in 1..=65536)"));
        }
        if !threshold.is_finite() {
            return Err(Error::InvalidHeader("window_threshold (not finite)"));
        }
        Ok(Self {
            history: HistoryBuf::new(),
            threshold,
        })
    }

    /// The detector a model was calibrated for: its window must be `N` vectors
    /// long and carry a threshold.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] (`what: "window"`) when the model's window is
    /// not `N`; [`Error::InvalidHeader`] when it has no threshold.
    pub fn for_window(window: Window) -> Result<Self> {
        if window.len as usize != N {
            return Err(Error::ShapeMismatch {
                what: "window",
                expected: N,
                found: window.len as usize,
            });
        }
        let threshold = window
            .threshold
            .ok_or(Error::InvalidHeader("window_threshold (not calibrated)"))?;
        Self::new(threshold)
    }

    /// The threshold on the window score.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Sets a new threshold (e.g. from on-site recalibration); the window is kept.
    ///
    /// # Errors
    /// [`Error::InvalidHeader`] for a threshold that is not finite.
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        if !threshold.is_finite() {
            return Err(Error::InvalidHeader("window_threshold (not finite)"));
        }
        self.threshold = threshold;
        Ok(())
    }

    /// Takes the next vector's log density and decides.
    pub fn push(&mut self, log_prob: f32) -> Decision {
        let v = if log_prob.is_nan() {
            f32::NEG_INFINITY
        } else {
            log_prob
        };
        self.history.write(v);
        if !self.history.is_full() {
            return Decision::WarmingUp {
                seen: self.history.len(),
            };
        }
        let score = window_score(self.history.oldest_ordered());
        Decision::Window {
            score,
            // NaN (+inf and -inf in one window) raises an alarm too.
            alarm: score < self.threshold || score.is_nan(),
        }
    }

    /// [`Detector::push`] of a scoring result: an error (overflow) is a vector
    /// without a density, `-inf`.
    pub fn push_result(&mut self, log_prob: Result<f32>) -> Decision {
        self.push(log_prob.unwrap_or(f32::NEG_INFINITY))
    }

    /// Forgets every vector seen (a new warm-up follows).
    pub fn reset(&mut self) {
        self.history.clear();
    }
}
