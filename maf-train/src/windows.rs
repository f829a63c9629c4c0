//! Windowed decisions on the host, with the device's arithmetic: window scores
//! (the mean log density of the last `N` vectors, [`maf_core::detector`]),
//! calibration of a window threshold for a false-alarm rate, and the window
//! metrics of `eval`.

use std::collections::VecDeque;

use maf_core::blob::Window;

use crate::error::{Error, Result};
use crate::metrics;

/// Metadata key of the false-alarm rate a window threshold was calibrated for.
pub const RATE_KEY: &str = "window_false_alarm_rate";

/// Metadata key of the calibration's sample sizes and rate interval.
pub const CALIBRATION_KEY: &str = "window_calibration";

/// The running window of `score --window N`: [`maf_core::Detector`]'s window
/// score for a window length known at run time (the same bits).
#[derive(Debug, Clone)]
pub struct Scorer {
    last: VecDeque<f32>,
    len: usize,
}

impl Scorer {
    /// A window of `len` (≥ 1) vectors.
    pub fn new(len: usize) -> Self {
        Self {
            last: VecDeque::with_capacity(len),
            len: len.max(1),
        }
    }

    /// Takes the next vector's log density (`None` or NaN: `-inf`, as on the
    /// device) and returns the window score once `len` vectors were seen.
    pub fn push(&mut self, log_prob: Option<f32>) -> Option<f32> {
        let v = log_prob
            .filter(|v| !v.is_nan())
            .unwrap_or(f32::NEG_INFINITY);
        if self.last.len() == self.len {
            self.last.pop_front();
        }
        self.last.push_back(v);
        (self.last.len() == self.len).then(|| maf_core::detector::window_score(self.last.iter()))
    }
}

/// The device's alarm rule: the window score is below the threshold (NaN too).
pub fn alarm(score: f32, threshold: f32) -> bool {
    score < threshold || score.is_nan()
}

/// Every full window's score of consecutive log densities, in order.
pub fn window_scores(log_probs: &[Option<f32>], len: usize) -> Vec<f32> {
    let mut s = Scorer::new(len);
    log_probs.iter().filter_map(|&v| s.push(v)).collect()
}

/// A window threshold calibrated on healthy data taken as a time series.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// The window to store in the blob (length, threshold, median).
    pub window: Window,
    /// The target false-alarm rate per decision.
    pub rate: f64,
    /// Full windows of the calibration data.
    pub windows: usize,
    /// Non-overlapping windows (rows / N): the count the uncertainty assumes
    /// independent.
    pub independent: usize,
    /// 95 % interval of the false-alarm rate at this threshold (Wilson score
    /// interval on `independent` windows).
    pub interval: (f64, f64),
}

impl Calibration {
    /// The metadata line (`window_calibration=...`) of this calibration.
    pub fn metadata_line(&self) -> String {
        format!(
            "{CALIBRATION_KEY}={} windows, {} non-overlapping, 95% interval of the rate \
             {:.3e}..{:.3e}",
            self.windows, self.independent, self.interval.0, self.interval.1
        )
    }

    /// One line for people: the threshold, the rate and its uncertainty.
    pub fn describe(&self) -> String {
        let t = self.window.threshold.unwrap_or(f32::NAN);
        let mut s = format!(
            "window {} vectors: threshold {t} on the mean log density, for a false-alarm rate \
             of {} per decision, from {} windows of healthy rows ({} non-overlapping); 95% \
             interval of the rate: {:.2e} to {:.2e}",
            self.window.len,
            self.rate,
            self.windows,
            self.independent,
            self.interval.0,
            self.interval.1
        );
        if (self.independent as f64) * self.rate < 5.0 {
            s.push_str(
                " (fewer than 5 non-overlapping windows expected below it: the rate is \
                 poorly known; more healthy rows, or recalibrate on site)",
            );
        }
        s
    }
}

/// 95 % Wilson score interval of a rate `p` observed on `n` trials.
pub fn wilson(p: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let z2 = 1.96f64 * 1.96;
    let centre = p + z2 / (2.0 * n);
    let half = 1.96 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let d = 1.0 + z2 / n;
    (
        ((centre - half) / d).max(0.0),
        ((centre + half) / d).min(1.0),
    )
}

/// Checks `--window` (1..=65536) and `--false-alarm-rate` (in (0, 1)).
///
/// # Errors
/// [`Error::InvalidParam`] naming the setting.
pub fn check_settings(len: usize, rate: f64) -> Result<()> {
    if !(1..=maf_core::blob::MAX_WINDOW as usize).contains(&len) {
        return Err(Error::InvalidParam {
            name: "window",
            message: format!("{len} is not in 1..=65536"),
        });
    }
    if !(rate > 0.0 && rate < 1.0) {
        return Err(Error::InvalidParam {
            name: "false-alarm-rate",
            message: format!("{rate} is not in (0, 1)"),
        });
    }
    Ok(())
}

/// Calibrates a window of `len` vectors for the false-alarm rate `rate`: the
/// threshold is the `rate` quantile of the window scores of `log_probs`
/// (consecutive healthy rows, as logged), the median their median.
///
/// # Errors
/// [`Error::InvalidParam`] for a length outside 1..=65536, a rate outside (0, 1),
/// fewer rows than `len`, or a threshold that is not finite (more than `rate` of
/// the windows hold a vector without a density).
pub fn calibrate(log_probs: &[Option<f32>], len: usize, rate: f64) -> Result<Calibration> {
    let bad = |message: String| Error::InvalidParam {
        name: "window",
        message,
    };
    check_settings(len, rate)?;
    let mut scores = window_scores(log_probs, len);
    if scores.is_empty() {
        return Err(bad(format!(
            "{len} vectors, but the calibration data has only {} rows",
            log_probs.len()
        )));
    }
    let wide: Vec<f64> = scores.iter().map(|&v| f64::from(v)).collect();
    let threshold = metrics::quantile(&wide, rate) as f32;
    let median = maf_core::calibrator::median(&mut scores);
    let (Some(median), true) = (median.filter(|m| m.is_finite()), threshold.is_finite()) else {
        return Err(bad(format!(
            "the {rate} quantile of the healthy window scores is not finite (windows with \
             a vector whose log density overflows)"
        )));
    };
    let independent = (log_probs.len() / len).max(1);
    Ok(Calibration {
        window: Window {
            len: len as u32,
            threshold: Some(threshold),
            median: Some(median),
        },
        rate,
        windows: scores.len(),
        independent,
        interval: wilson(rate, independent),
    })
}

/// Window-level results of `eval --window N`.
#[derive(Debug, Clone, Default)]
pub struct WindowEval {
    /// Window length.
    pub len: usize,
    /// Windows whose N vectors are all normal (all windows without labels).
    pub normal_windows: usize,
    /// Windows whose N vectors are all anomalous.
    pub anomalous_windows: usize,
    /// Windows holding both (left out of AUROC and the false-alarm rate; the
    /// detection delay covers them).
    pub mixed_windows: usize,
    /// AUROC of the score `-window score`, all-normal against all-anomalous
    /// windows.
    pub auroc: Option<f64>,
    /// Alarms among the all-normal windows, as a fraction.
    pub false_alarm_rate: Option<f64>,
    /// Runs of consecutive anomalous rows.
    pub runs: usize,
    /// Runs with an alarm from their first vector to `N - 1` vectors after
    /// their last.
    pub detected: usize,
    /// Mean vectors from a detected run's first vector to its first alarm.
    pub delay_mean: Option<f64>,
}

/// What each of `windows` full windows holds (window `w` covers rows
/// `w..w + len`, its decision is taken at row `w + len - 1`): `Some(false)` all
/// normal rows, `Some(true)` all anomalous, `None` both. Without labels every
/// window is normal.
pub fn window_kinds(labels: Option<&[bool]>, len: usize, windows: usize) -> Vec<Option<bool>> {
    let len = len.max(1);
    let label = |i: usize| labels.is_some_and(|l| l.get(i).copied().unwrap_or(false));
    let mut anomalous = (0..len - 1).filter(|&i| label(i)).count();
    (0..windows)
        .map(|w| {
            anomalous += usize::from(label(w + len - 1));
            if w > 0 {
                anomalous -= usize::from(label(w - 1));
            }
            match anomalous {
                0 => Some(false),
                k if k == len => Some(true),
                _ => None,
            }
        })
        .collect()
}

/// The runs of consecutive anomalous rows, as `start..end` row ranges.
pub fn anomaly_runs(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in 0..=labels.len() {
        match (labels.get(i).copied().unwrap_or(false), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// The windows of a file's consecutive log densities, computed once for every
/// window metric and plot: each full window's score and what it holds.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Window length.
    pub len: usize,
    /// Rows (vectors) in the file.
    pub rows: usize,
    /// Every full window's score ([`window_scores`]).
    pub scores: Vec<f32>,
    /// What each window holds ([`window_kinds`]).
    pub kinds: Vec<Option<bool>>,
}

impl Windows {
    /// The windows of `log_probs` (`labels` row for row, `true` = anomaly;
    /// `None`: every row normal).
    pub fn new(log_probs: &[Option<f32>], labels: Option<&[bool]>, len: usize) -> Self {
        let len = len.max(1);
        let scores = window_scores(log_probs, len);
        let kinds = window_kinds(labels, len, scores.len());
        Self {
            len,
            rows: log_probs.len(),
            scores,
            kinds,
        }
    }

    /// The all-normal and all-anomalous windows as an anomaly score (`-window
    /// score`, NaN taken as `+inf`) and a label: what the window AUROC ranks.
    pub fn pure(&self) -> (Vec<f64>, Vec<bool>) {
        self.scores
            .iter()
            .zip(&self.kinds)
            .filter_map(|(&s, k)| k.map(|a| (-f64::from(s), a)))
            .map(|(s, a)| (if s.is_nan() { f64::INFINITY } else { s }, a))
            .unzip()
    }

    /// The window metrics at `threshold` (`None`: no false-alarm rate, no
    /// delay); `labels` as given to [`Windows::new`].
    pub fn evaluate(&self, labels: Option<&[bool]>, threshold: Option<f32>) -> WindowEval {
        let len = self.len;
        let count = |kind: Option<bool>| self.kinds.iter().filter(|&&k| k == kind).count();
        let mut ev = WindowEval {
            len,
            normal_windows: count(Some(false)),
            anomalous_windows: count(Some(true)),
            mixed_windows: count(None),
            ..WindowEval::default()
        };
        let (pure_scores, pure_labels) = self.pure();
        ev.auroc = metrics::auroc(&pure_scores, &pure_labels);
        ev.false_alarm_rate = threshold.filter(|_| ev.normal_windows > 0).map(|t| {
            let alarms = self
                .scores
                .iter()
                .zip(&self.kinds)
                .filter(|&(&s, &k)| k == Some(false) && alarm(s, t))
                .count();
            alarms as f64 / ev.normal_windows as f64
        });
        if let (Some(t), Some(l)) = (threshold, labels) {
            let mut delays = Vec::new();
            for (s, end) in anomaly_runs(l) {
                ev.runs += 1;
                // Decisions at rows s ..= end - 1 + len - 1 (the last window
                // that still holds one of the run's vectors).
                let last = (end + len - 2).min(self.rows - 1);
                let first_alarm = (s.max(len - 1)..=last)
                    .find(|&r| self.scores.get(r + 1 - len).is_some_and(|&sc| alarm(sc, t)));
                if let Some(r) = first_alarm {
                    ev.detected += 1;
                    delays.push((r - s) as f64);
                }
            }
            ev.delay_mean =
                (!delays.is_empty()).then(|| delays.iter().sum::<f64>() / delays.len() as f64);
        }
        ev
    }
}

/// Window metrics of consecutive log densities (`labels` row for row, `true` =
/// anomaly; `None`: every row normal) at `threshold` (`None`: no false-alarm
/// rate, no delay): [`Windows::evaluate`] of [`Windows::new`].
pub fn evaluate(
    log_probs: &[Option<f32>],
    labels: Option<&[bool]>,
    len: usize,
    threshold: Option<f32>,
) -> WindowEval {
    Windows::new(log_probs, labels, len).evaluate(labels, threshold)
}

/// The window a command uses: `requested`, else the model's when longer than
/// one vector; with the threshold and target rate the model was calibrated for
/// at that length.
#[derive(Debug, Clone, Copy)]
pub struct Chosen {
    /// Window length.
    pub len: usize,
    /// The model's window threshold for this length (for one vector without a
    /// window threshold: the per-vector threshold).
    pub threshold: Option<f32>,
    /// The target false-alarm rate of that threshold, from the metadata.
    pub rate: Option<f64>,
}

/// [`Chosen`] for a model and a `--window` setting; `None` when neither asks
/// for a window.
///
/// # Errors
/// [`Error::InvalidParam`] for a length outside 1..=65536.
pub fn choose(view: &maf_core::MafView<'_>, requested: Option<usize>) -> Result<Option<Chosen>> {
    let w = view.header().window;
    let Some(len) = requested.or((w.len > 1).then_some(w.len as usize)) else {
        return Ok(None);
    };
    check_settings(len, 0.5)?;
    let own = len == w.len as usize;
    let threshold = if own {
        w.threshold
            .or(if len == 1 { view.threshold() } else { None })
    } else {
        None
    };
    let rate = own
        .then(|| {
            crate::io::meta_value(view.header().metadata, RATE_KEY)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .flatten();
    Ok(Some(Chosen {
        len,
        threshold,
        rate,
    }))
}
