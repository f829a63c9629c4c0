//! Issue #14 on the host: `fit --window N --false-alarm-rate P` calibrates the
//! window threshold on the validation rows, `score --window` writes the
//! device's window score and alarm, `eval --window` the window metrics, and
//! `recalibrate` moves the threshold with the site's median.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};

use common::{data, ok, run, s, small_model};
use maf_train::windows::{Scorer, calibrate, evaluate, wilson};

/// A small BasicMotions model fitted with a window of 4 at a 5 % rate.
fn windowed_model(dir: &Path) -> PathBuf {
    small_model(
        dir,
        "w.maf",
        &["--window", "4", "--false-alarm-rate", "0.05"],
    )
}

fn inspect(m: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["inspect", "--json", s(m)])).unwrap()
}

/// `eval --json` of `m` on `data_file`, with labels when given.
fn eval_json(m: &Path, data_file: &Path, labels: Option<&Path>) -> serde_json::Value {
    let mut args = vec!["eval", "--model", s(m), "--data", s(data_file), "--json"];
    if let Some(l) = labels {
        args.extend(["--labels", s(l)]);
    }
    serde_json::from_str(&ok(&args)).unwrap()
}

/// `log_prob,anomaly,window_score,alarm` rows of `score --window`.
fn scores(m: &Path, data_file: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["score", "--model", s(m), "--data", s(data_file)];
    args.extend(extra);
    let out = ok(&args);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("log_prob,anomaly,window_score,alarm"),
        "a model fitted with --window 4 scores with its window by default"
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn fit_calibrates_the_window_on_validation_and_score_decides_as_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let m = windowed_model(dir.path());
    let info = inspect(&m);
    assert_eq!(info["window"], 4);
    let threshold = info["window_threshold"].as_f64().unwrap() as f32;
    assert!(info["window_median"].as_f64().unwrap() as f32 > threshold);
    assert_eq!(info["metadata"]["window_false_alarm_rate"], "0.05");

    // The validation rows' own windows: about 5 % below the threshold (the
    // 0.05 quantile of 597 window scores).
    let valid = scores(&m, &data("basicmotions_valid.csv"), &[]);
    assert_eq!(valid.len(), 600);
    let alarms = valid.iter().filter(|r| r[3] == "1").count();
    let windows = valid.len() - 3;
    let rate = alarms as f64 / windows as f64;
    assert!(
        (rate - 0.05).abs() <= 1.5 / windows as f64,
        "{alarms} of {windows}"
    );

    // Row for row: warm-up rows have no window score and no alarm; then the
    // mean of the last four log densities (an independent f64 sum, to 1e-5)
    // and the alarm rule of maf-core's Detector on the printed f32.
    let test = scores(&m, &data("basicmotions_test.csv"), &["--window", "4"]);
    let lp: Vec<f64> = test.iter().map(|r| r[0].parse().unwrap()).collect();
    for (i, r) in test.iter().enumerate() {
        if i < 3 {
            assert_eq!((r[2].as_str(), r[3].as_str()), ("", "0"), "row {i}");
            continue;
        }
        let want = lp[i - 3..=i].iter().sum::<f64>() / 4.0;
        let got: f32 = r[2].parse().unwrap();
        assert!(
            (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
            "row {i}: {got} vs {want}"
        );
        assert_eq!(r[3] == "1", got < threshold, "row {i}");
    }
    // Another window needs its own calibration: refused with a way out.
    let o = run(&[
        "score",
        "--model",
        s(&m),
        "--data",
        s(&data("basicmotions_test.csv")),
        "--window",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("recalibrate --window 5"));
}

#[test]
fn eval_reports_window_metrics_with_and_without_labels() {
    let dir = tempfile::tempdir().unwrap();
    let m = windowed_model(dir.path());
    let test = data("basicmotions_test.csv");
    let labels = data("basicmotions_test_labels.csv");
    let o = eval_json(&m, &test, Some(&labels));
    assert_eq!(o["window"], 4);
    assert_eq!(o["target_false_alarm_rate"], 0.05);
    // 3,000 normal rows then 1,000 anomalous: 2,997 + 997 pure windows, 3 mixed.
    assert_eq!(o["normal_windows"], 2997);
    assert_eq!(o["anomalous_windows"], 997);
    assert_eq!(o["mixed_windows"], 3);
    for key in ["window_auroc", "false_alarm_rate", "detection_delay_mean"] {
        assert!(o[key].is_number(), "{key}: {o}");
    }
    // The same numbers from the score file and the library's evaluate().
    let rows = scores(&m, &test, &[]);
    let lps: Vec<Option<f32>> = rows.iter().map(|r| r[0].parse().ok()).collect();
    let lab: Vec<bool> = std::fs::read_to_string(&labels)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l == "1")
        .collect();
    let alarms_normal = rows[3..3000].iter().filter(|r| r[3] == "1").count();
    let fa = o["false_alarm_rate"].as_f64().unwrap();
    assert!((fa - alarms_normal as f64 / 2997.0).abs() < 1e-12);
    let first_alarm = (3000..4000).find(|&i| rows[i][3] == "1").unwrap();
    assert_eq!(
        o["detection_delay_mean"].as_f64().unwrap(),
        (first_alarm - 3000) as f64
    );
    let threshold = inspect(&m)["window_threshold"].as_f64().unwrap() as f32;
    let ev = evaluate(&lps, Some(&lab), 4, Some(threshold));
    assert_eq!(ev.false_alarm_rate, Some(fa));
    // Without labels every row is normal.
    let o = eval_json(&m, &test, None);
    let all_alarms = rows.iter().filter(|r| r[3] == "1").count();
    assert!((o["false_alarm_rate"].as_f64().unwrap() - all_alarms as f64 / 3997.0).abs() < 1e-12);
}

#[test]
fn recalibrate_moves_the_threshold_with_the_site_median_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let m = windowed_model(dir.path());
    let before = inspect(&m);
    // Site rows: the validation rows themselves: the threshold must not move.
    let same = dir.path().join("same.maf");
    let valid = data("basicmotions_valid.csv");
    ok(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&valid),
        "--out",
        s(&same),
    ]);
    let after = inspect(&same);
    assert_eq!(after["window_threshold"], before["window_threshold"]);
    assert_eq!(after["window_median"], before["window_median"]);
    // Only the first 200 rows of the test file (other recordings): the
    // threshold moves by exactly the median difference, in f32.
    let site = dir.path().join("site.maf");
    let test = data("basicmotions_test.csv");
    ok(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&test),
        "--rows",
        "200",
        "--out",
        s(&site),
    ]);
    let moved = inspect(&site);
    let rows = scores(&m, &test, &[]);
    let mut site_scores: Vec<f32> = rows[3..200].iter().map(|r| r[2].parse().unwrap()).collect();
    let site_median = maf_core::calibrator::median(&mut site_scores).unwrap();
    let (t0, m0) = (
        before["window_threshold"].as_f64().unwrap() as f32,
        before["window_median"].as_f64().unwrap() as f32,
    );
    assert_eq!(moved["window_median"].as_f64().unwrap() as f32, site_median);
    assert_eq!(
        moved["window_threshold"].as_f64().unwrap() as f32,
        t0 + (site_median - m0)
    );
    // Reading stops after --rows: a site log whose row 300 is not a number gives
    // the same blob as the clean file.
    let text = std::fs::read_to_string(&test).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let cols = lines[0].split(',').count();
    let bad = vec!["oops"; cols].join(",");
    lines[300] = &bad;
    let broken = dir.path().join("broken.csv");
    std::fs::write(&broken, lines.join("\n") + "\n").unwrap();
    let early = dir.path().join("early.maf");
    ok(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&broken),
        "--rows",
        "200",
        "--out",
        s(&early),
    ]);
    let early_v = inspect(&early);
    assert_eq!(early_v["window_threshold"], moved["window_threshold"]);
    assert_eq!(early_v["window_median"], moved["window_median"]);
    // Without --rows the bad row is found.
    let o = run(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&broken),
        "--out",
        s(&early),
    ]);
    assert!(!o.status.success());
    // Same model otherwise: the log densities are unchanged, bit for bit.
    let again = scores(&site, &test, &[]);
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!((&a[0], &a[2]), (&b[0], &b[2]));
    }
    // Refusals: an output that is an input, too few rows, a model without a
    // median (a version-1 blob), each with a message and exit status 1.
    let o = run(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&test),
        "--out",
        s(&m),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[
        "recalibrate",
        "--model",
        s(&m),
        "--data",
        s(&test),
        "--rows",
        "5",
        "--out",
        s(&dir.path().join("few.maf")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too few site windows"));
    let v1 =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-example/models/basicmotions.maf");
    let o = run(&[
        "recalibrate",
        "--model",
        s(&v1),
        "--data",
        s(&test),
        "--out",
        s(&dir.path().join("v1.maf")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--false-alarm-rate"));
    assert!(!dir.path().join("v1.maf").exists());
    // ... which calibrates it afresh.
    ok(&[
        "recalibrate",
        "--model",
        s(&v1),
        "--data",
        s(&valid),
        "--out",
        s(&dir.path().join("v1.maf")),
        "--window",
        "10",
        "--false-alarm-rate",
        "0.02",
    ]);
    let fresh = inspect(&dir.path().join("v1.maf"));
    assert_eq!(fresh["window"], 10);
    assert_eq!(fresh["metadata"]["window_false_alarm_rate"], "0.02");
}

#[test]
fn the_host_scorer_and_calibration_follow_their_definitions() {
    // The scorer is maf-core's window score: NaN and overflow are -inf.
    let mut sc = Scorer::new(3);
    assert_eq!(sc.push(Some(-1.0)), None);
    assert_eq!(sc.push(Some(-2.0)), None);
    assert_eq!(sc.push(Some(-6.0)), Some(-3.0));
    assert_eq!(sc.push(None), Some(f32::NEG_INFINITY));
    // The threshold is the rate quantile of the window scores.
    let lps: Vec<Option<f32>> = (0..101).map(|i| Some(-(i as f32))).collect();
    let c = calibrate(&lps, 1, 0.1).unwrap();
    assert_eq!(c.window.threshold, Some(-90.0));
    assert_eq!(c.window.median, Some(-50.0));
    assert_eq!((c.windows, c.independent), (101, 101));
    assert!(calibrate(&lps[..3], 4, 0.1).is_err());
    assert!(calibrate(&lps, 1, 0.0).is_err());
    // Wilson's interval holds the rate and narrows with n.
    let (lo, hi) = wilson(0.01, 100);
    let (lo2, hi2) = wilson(0.01, 10_000);
    assert!(lo < 0.01 && 0.01 < hi && lo < lo2 && hi2 < hi);
    // Detection delay and pure windows: normal, a run of 3 anomalies, normal.
    let lps: Vec<Option<f32>> = [0.0, 0.0, 0.0, -9.0, -9.0, -9.0, 0.0, 0.0]
        .iter()
        .map(|&v| Some(v))
        .collect();
    let labels = [false, false, false, true, true, true, false, false];
    let ev = evaluate(&lps, Some(&labels), 2, Some(-4.0));
    assert_eq!(
        (ev.normal_windows, ev.anomalous_windows, ev.mixed_windows),
        (3, 2, 2)
    );
    assert_eq!(ev.auroc, Some(1.0));
    assert_eq!(ev.false_alarm_rate, Some(0.0));
    // Window [0, -9] at row 3 has mean -4.5 < -4: alarm on the run's first row.
    assert_eq!((ev.runs, ev.detected, ev.delay_mean), (1, 1, Some(0.0)));
}

#[test]
fn report_reads_windowed_scores_and_plots_the_window_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let m = windowed_model(dir.path());
    let test = data("basicmotions_test.csv");
    let labels = data("basicmotions_test_labels.csv");
    let host = dir.path().join("host.csv");
    ok(&[
        "score",
        "--model",
        s(&m),
        "--data",
        s(&test),
        "--out",
        s(&host),
    ]);
    let o = eval_json(&m, &test, Some(&labels));
    let plots = dir.path().join("plots");
    let report = |scores: &Path| {
        run(&[
            "report",
            "--model",
            s(&m),
            "--labels",
            s(&labels),
            "--host-scores",
            s(&host),
            "--device-scores",
            s(scores),
            "--plot-dir",
            s(&plots),
        ])
    };
    // The host file (4 columns) against itself: the window rows carry eval's numbers.
    let out = report(&host);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| {
                panic!("no {name:?} row in\n{text}");
            });
        line.trim_start()[name.len()..].trim().to_string()
    };
    assert!(value("window").starts_with("4 vectors: 2997 all-normal, 997 all-anomalous, 3 mixed"));
    let auroc: f64 = value("window AUROC, score -window score").parse().unwrap();
    assert!((auroc - o["window_auroc"].as_f64().unwrap()).abs() <= 5e-5);
    let fa = value("false-alarm rate, normal windows");
    assert_eq!(
        fa,
        format!(
            "{:.4} (target 0.0500)",
            o["false_alarm_rate"].as_f64().unwrap()
        )
    );
    let delay = o["detection_delay_mean"].as_f64().unwrap();
    assert!(value("anomaly runs detected").ends_with(&format!("mean delay {delay:.1} vectors")));
    assert!(value("device = host, bit for bit").starts_with("yes, 4000 of 4000"));
    for name in ["window_score.svg", "window_roc.svg"] {
        let svg = std::fs::read_to_string(plots.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
    }
    let timeline = std::fs::read_to_string(plots.join("window_score.svg")).unwrap();
    assert!(timeline.contains(&format!("false-alarm rate {}", &fa[..6])));
    // A device file that differs only in one alarm is a parity failure.
    let mut lines: Vec<String> = std::fs::read_to_string(&host)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let row = &mut lines[101];
    let flipped = if row.ends_with(",1") { ",0" } else { ",1" };
    row.truncate(row.len() - 2);
    row.push_str(flipped);
    let device = dir.path().join("device.csv");
    std::fs::write(&device, lines.join("\n") + "\n").unwrap();
    let out = report(&device);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("first difference at data row 100"), "{err}");
    assert!(err.contains("alarm"), "{err}");
}
