//! Windowed alarms on the device (issue #14): for a model fitted with
//! `--window 10`, the firmware's `log_prob,anomaly,window_score,alarm` rows
//! equal `maf-train score`'s byte for byte; with `calibrate=200` the device
//! re-baselines on its first 200 vectors to the very threshold `maf-train
//! recalibrate --rows 200` writes, and decides as the recalibrated model after
//! them (no alarms during the calibration phase).
// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::Path;

use maf_tests::{Firmware, csv_subset, data, maf_train_ok, tempdir};

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn window_threshold(model: &Path) -> f32 {
    let bytes = fs::read(model).expect("the model");
    let aligned = maf_core::blob::AlignedBlob::new(&bytes);
    let view = maf_core::MafView::from_blob(aligned.as_bytes()).expect("a valid blob");
    view.header().window.threshold.expect("a window threshold")
}

#[test]
fn device_window_decisions_and_calibration_equal_the_host() {
    let dir = tempdir();
    let model = dir.path().join("w10.maf");
    maf_train_ok(&[
        "fit",
        "--data",
        path(&data("basicmotions_train.csv")),
        "--valid",
        path(&data("basicmotions_valid.csv")),
        "--out",
        path(&model),
        "--layers",
        "1",
        "--hidden",
        "8",
        "--components",
        "2",
        "--max-epochs",
        "5",
        "--window",
        "10",
        "--false-alarm-rate",
        "0.05",
        "--quiet",
    ]);
    // 500 healthy vectors, then 300 anomalous ones.
    let vectors = csv_subset(
        &data("basicmotions_test.csv"),
        dir.path(),
        "vectors.csv",
        &[(2500, 800)],
    );
    let fw = Firmware::build_scorer(&model);

    let host_csv = dir.path().join("host.csv");
    maf_train_ok(&[
        "score",
        "--model",
        path(&model),
        "--data",
        path(&vectors),
        "--out",
        path(&host_csv),
    ]);
    let host = fs::read_to_string(&host_csv).expect("host scores");
    let device = fw.run("firmware-example", &model, &[path(&vectors)]);
    assert_eq!(device.code(), Some(0), "stderr:\n{}", device.stderr);
    assert!(host.starts_with("log_prob,anomaly,window_score,alarm\n"));
    assert_eq!(
        host, device.stdout,
        "host and device window decisions differ"
    );
    let alarms = host.lines().skip(1).filter(|l| l.ends_with(",1")).count();
    assert!(alarms > 10 && alarms < 800, "{alarms} alarms");
    let line = device
        .stderr
        .lines()
        .find(|l| l.starts_with("window: 10 vectors"))
        .expect("the window summary line");
    assert!(line.contains(&format!("{alarms} alarms")), "{line}");
    eprintln!("{line}");

    // Calibration phase on the first 200 vectors.
    let site_model = dir.path().join("site.maf");
    maf_train_ok(&[
        "recalibrate",
        "--model",
        path(&model),
        "--data",
        path(&vectors),
        "--rows",
        "200",
        "--out",
        path(&site_model),
    ]);
    let host2_csv = dir.path().join("host2.csv");
    maf_train_ok(&[
        "score",
        "--model",
        path(&site_model),
        "--data",
        path(&vectors),
        "--out",
        path(&host2_csv),
    ]);
    let host2 = fs::read_to_string(&host2_csv).expect("host scores");
    let device2 = fw.run(
        "firmware-example",
        &model,
        &[path(&vectors), "calibrate=200"],
    );
    assert_eq!(device2.code(), Some(0), "stderr:\n{}", device2.stderr);
    let t = window_threshold(&site_model);
    assert_ne!(t, window_threshold(&model), "the site moved the threshold");
    let said = device2
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("calibrated: window threshold "))
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse::<f32>().ok())
        .expect("the calibration line");
    assert_eq!(said.to_bits(), t.to_bits(), "device and host thresholds");
    let (h, d): (Vec<&str>, Vec<&str>) =
        (host2.lines().collect(), device2.stdout.lines().collect());
    assert_eq!(h.len(), d.len());
    assert_eq!(h[0], d[0]);
    for (i, (h, d)) in h.iter().zip(&d).enumerate().skip(1) {
        if i <= 200 {
            // Calibration phase: the same scores, never an alarm.
            let (hs, _) = h.rsplit_once(',').expect("four columns");
            assert_eq!(format!("{hs},0"), *d, "row {i}");
        } else {
            assert_eq!(h, d, "row {i}");
        }
    }
    // A malformed request is refused before any row.
    let bad = fw.run("firmware-example", &model, &[path(&vectors), "calibrate=3"]);
    assert_eq!(bad.code(), Some(1), "{}", bad.stderr);
    assert!(bad.stdout.is_empty());
}
