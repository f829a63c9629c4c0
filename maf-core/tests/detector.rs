//! The windowed detector: warm-up, the window score, alarms, vectors without a
//! density, and the model's calibrated window.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use maf_core::blob::Window;
use maf_core::{Decision, Detector, Error};
use proptest::prelude::*;

#[test]
fn warms_up_for_n_minus_one_vectors_then_decides_on_the_window_mean() {
    let mut d = Detector::<4>::new(-10.0).unwrap();
    for seen in 1..4 {
        assert_eq!(d.push(-1.0), Decision::WarmingUp { seen });
    }
    // Window [-1, -1, -1, -5]: mean -2.
    assert_eq!(
        d.push(-5.0),
        Decision::Window {
            score: -2.0,
            alarm: false
        }
    );
    // [-1, -1, -5, -33]: mean -10, not below the threshold.
    assert!(!d.push(-33.0).alarm());
    // [-1, -5, -33, -2]: mean -10.25 < -10.
    let last = d.push(-2.0);
    assert_eq!(last.score(), Some(-10.25));
    assert!(last.alarm());
    d.reset();
    assert_eq!(d.push(-100.0), Decision::WarmingUp { seen: 1 });
}

#[test]
fn a_window_of_one_is_the_per_vector_rule() {
    let mut d = Detector::<1>::new(-3.5).unwrap();
    for lp in [-3.0f32, -3.5, -3.6, -100.0, 2.0] {
        let got = d.push(lp);
        assert_eq!(got.score(), Some(lp));
        assert_eq!(got.alarm(), lp < -3.5, "{lp}");
    }
}

#[test]
fn a_vector_without_a_density_alarms_every_window_that_holds_it() {
    let mut d = Detector::<3>::new(-50.0).unwrap();
    for _ in 0..5 {
        assert!(!d.push(-1.0).alarm());
    }
    let alarms: Vec<bool> = [Err(Error::Overflow), Ok(-1.0), Ok(-1.0), Ok(-1.0), Ok(-1.0)]
        .into_iter()
        .map(|r| d.push_result(r).alarm())
        .collect();
    assert_eq!(alarms, [true, true, true, false, false]);
    assert!(d.push(f32::NAN).alarm());
    assert_eq!(d.push(-1.0).score(), Some(f32::NEG_INFINITY));
}

#[test]
fn the_model_s_window_must_match_and_be_calibrated() {
    let w = Window {
        len: 10,
        threshold: Some(-7.25),
        median: None,
    };
    assert_eq!(Detector::<10>::for_window(w).unwrap().threshold(), -7.25);
    assert_eq!(
        Detector::<5>::for_window(w).unwrap_err(),
        Error::ShapeMismatch {
            what: "window",
            expected: 5,
            found: 10
        }
    );
    let uncalibrated = Window {
        len: 10,
        threshold: None,
        median: None,
    };
    assert!(matches!(
        Detector::<10>::for_window(uncalibrated),
        Err(Error::InvalidHeader(_))
    ));
    assert!(Detector::<2>::new(f32::NAN).is_err());
    assert!(Detector::<2>::new(f32::NEG_INFINITY).is_err());
    let mut d = Detector::<2>::new(0.0).unwrap();
    assert!(d.set_threshold(f32::INFINITY).is_err());
    d.set_threshold(-1.0).unwrap();
    assert_eq!(d.threshold(), -1.0);
}

#[test]
fn ram_is_the_ring_buffer_and_a_few_words() {
    let words = 3 * core::mem::size_of::<usize>();
    assert!(Detector::<10>::RAM_BYTES <= 4 * 10 + words);
    assert!(Detector::<100>::RAM_BYTES <= 4 * 100 + words);
}

proptest! {
    /// The score of every full window is the mean of its last N inputs (an
    /// independent f64 mean, to f32 rounding), summed oldest first in f32 bit
    /// for bit, and the alarm is `score < threshold`.
    #[test]
    fn the_score_is_the_mean_of_the_last_n(
        xs in prop::collection::vec(-1e3f32..1e3, 1..200),
        threshold in -1e3f32..1e3,
    ) {
        const N: usize = 7;
        let mut d = Detector::<N>::new(threshold).unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let got = d.push(x);
            if i + 1 < N {
                prop_assert_eq!(got, Decision::WarmingUp { seen: i + 1 });
                continue;
            }
            let w = &xs[i + 1 - N..=i];
            let exact = w.iter().map(|&v| v as f64).sum::<f64>() / N as f64;
            let f32_sum = w.iter().fold(0.0f32, |a, &v| a + v) / N as f32;
            let score = got.score().unwrap();
            prop_assert_eq!(score.to_bits(), f32_sum.to_bits());
            prop_assert!((score as f64 - exact).abs() <= 1e-3, "{} vs {}", score, exact);
            prop_assert_eq!(got.alarm(), score < threshold);
        }
    }
}

mod calibration {
    use maf_core::blob::Window;
    use maf_core::calibrator::{MIN_WINDOWS, median, rebaseline};
    use maf_core::{Calibrator, Decision, Detector, Error};

    const TRAINED: Window = Window {
        len: 4,
        threshold: Some(-12.0),
        median: Some(-6.0),
    };

    #[test]
    fn median_is_exact_for_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, -1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [3.0, -1.0, 2.0, f32::NEG_INFINITY]), Some(0.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn the_threshold_moves_with_the_site_median() {
        // Site windows 1.5 nats lower than at training (median -7.5).
        let mut site: Vec<f32> = (0..9).map(|i| -7.5 + (i as f32 - 4.0) * 0.25).collect();
        site.reverse();
        let w = rebaseline(TRAINED, &mut site).unwrap();
        assert_eq!(w.threshold, Some(-13.5));
        assert_eq!(w.median, Some(-7.5));
        assert_eq!(w.len, 4);
        // Re-baselining again on the same site changes nothing.
        assert_eq!(rebaseline(w, &mut site), Ok(w));
    }

    #[test]
    fn refuses_what_it_cannot_calibrate() {
        let mut enough = vec![-6.0f32; MIN_WINDOWS];
        let uncalibrated = Window {
            median: None,
            ..TRAINED
        };
        assert!(matches!(
            rebaseline(uncalibrated, &mut enough),
            Err(Error::InvalidHeader(_))
        ));
        assert!(matches!(
            rebaseline(Window::PER_VECTOR, &mut enough),
            Err(Error::InvalidHeader(_))
        ));
        let mut few = vec![-6.0f32; MIN_WINDOWS - 1];
        assert!(matches!(
            rebaseline(TRAINED, &mut few),
            Err(Error::InvalidHeader(_))
        ));
        // Most windows without a density: the median is -inf, refused.
        let mut dead = vec![f32::NEG_INFINITY; MIN_WINDOWS];
        dead[0] = -1.0;
        assert!(matches!(
            rebaseline(TRAINED, &mut dead),
            Err(Error::InvalidHeader(_))
        ));
        // NaN counts as -inf, not as a median.
        let mut nan = vec![-6.0f32; MIN_WINDOWS + 1];
        nan[0] = f32::NAN;
        assert_eq!(rebaseline(TRAINED, &mut nan).unwrap().median, Some(-6.0));
    }

    #[test]
    fn the_calibrator_equals_rebaseline_of_the_detectors_window_scores() {
        let lps: Vec<f32> = (0..40)
            .map(|i| -5.0 - ((i * 37) % 11) as f32 * 0.37)
            .collect();
        let mut det = Detector::<4>::new(0.0).unwrap();
        let mut scores: Vec<f32> = lps.iter().filter_map(|&v| det.push(v).score()).collect();
        let mut cal = Calibrator::<4, 20>::new().unwrap();
        let mut taken = 0;
        for &v in &lps {
            taken += 1;
            if !cal.push(v) {
                break;
            }
        }
        // 3 warm-up vectors, then 20 windows.
        assert_eq!(taken, 23);
        assert_eq!(cal.windows(), 20);
        scores.truncate(20);
        let want = rebaseline(TRAINED, &mut scores).unwrap();
        assert_eq!(cal.finish(TRAINED), Ok(want));
        assert!(!cal.push(-1.0), "full: later vectors are not used");
        assert_eq!(
            Calibrator::<4, 20>::RAM_BYTES,
            core::mem::size_of::<Detector<4>>() + 4 * 20 + core::mem::size_of::<usize>()
        );
        let _ = Decision::WarmingUp { seen: 1 };
    }
}
