//! The device computes the host's log densities bit for bit.
//!
//! A model is trained with `maf-train fit` on real data (BasicMotions, few epochs),
//! a few hundred vectors — normal ones, anomalous ones (badminton) and two far
//! outside the data (log density `-inf`) — are scored by `maf-train score` on the
//! host and by the firmware on an emulated Cortex-M4F with the documented command
//! (`MAF_MODEL=... cargo run --release -- vectors.csv` in `firmware-example/`),
//! and the two CSV outputs must be equal byte for byte.

// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::time::Duration;

use maf_tests::{
    assert_success, csv_subset, data, firmware_cargo, maf_train_ok, require_qemu, run, summary,
    tempdir,
};

#[test]
fn device_scores_equal_host_scores_bit_for_bit() {
    require_qemu();
    let tmp = tempdir();
    let dir = tmp.path();
    let model = dir.join("basicmotions.maf");
    let path = |p: &std::path::Path| p.to_str().expect("temporary paths are UTF-8").to_owned();

    maf_train_ok(&[
        "fit",
        "--data",
        &path(&data("basicmotions_train.csv")),
        "--valid",
        &path(&data("basicmotions_valid.csv")),
        "--out",
        &path(&model),
        "--layers",
        "3",
        "--hidden",
        "32",
        "--max-epochs",
        "15",
        "--seed",
        "7",
        "--quiet",
    ]);

    // 200 normal rows, then 50 normal and 100 anomalous ones (test rows 3000.. are
    // badminton, see data/basicmotions_test_labels.csv).
    let vectors = csv_subset(
        &data("basicmotions_test.csv"),
        dir,
        "vectors.csv",
        &[(0, 200), (2950, 150)],
    );
    // Two vectors so far out that log p is not representable: `-inf,1` on both sides.
    let mut text = fs::read_to_string(&vectors).expect("just written");
    text.push_str("1e30,1e30,1e30,1e30,1e30,1e30\n3e38,-3e38,3e38,0,0,0\n");
    fs::write(&vectors, text).expect("writable");
    let rows = 352;

    let host = dir.join("host.csv");
    maf_train_ok(&[
        "score",
        "--model",
        &path(&model),
        "--data",
        &path(&vectors),
        "--out",
        &path(&host),
    ]);
    let host = fs::read_to_string(&host).expect("maf-train score wrote its output");

    // The documented command, run from firmware-example/.
    let device = run(
        firmware_cargo(&model).args(["run", "--release", "--quiet", "--", &path(&vectors)]),
        Duration::from_secs(1800),
    );
    assert_success("MAF_MODEL=... cargo run --release -- vectors.csv", &device);

    let host_lines: Vec<&str> = host.lines().collect();
    let dev_lines: Vec<&str> = device.stdout.lines().collect();
    assert_eq!(host_lines.first(), Some(&"log_prob,anomaly"));
    assert_eq!(dev_lines.first(), Some(&"log_prob,anomaly"));
    assert_eq!(host_lines.len(), rows + 1, "host rows");
    assert_eq!(
        dev_lines.len(),
        rows + 1,
        "device rows; stderr:\n{}",
        device.stderr
    );
    let mut anomalies = 0;
    for (i, (h, d)) in host_lines.iter().zip(&dev_lines).enumerate().skip(1) {
        let parse = |l: &str| -> (f32, String) {
            let (lp, flag) = l
                .split_once(',')
                .unwrap_or_else(|| panic!("row {i}: {l:?}"));
            let lp: f32 = lp
                .parse()
                .unwrap_or_else(|_| panic!("row {i}: log_prob {lp:?}"));
            (lp, flag.to_owned())
        };
        let (hl, hf) = parse(h);
        let (dl, df) = parse(d);
        assert_eq!(
            hl.to_bits(),
            dl.to_bits(),
            "row {i}: host log_prob {hl} ({:#010x}), device {dl} ({:#010x})",
            hl.to_bits(),
            dl.to_bits()
        );
        assert_eq!(hf, df, "row {i}: anomaly flags differ");
        anomalies += usize::from(df == "1");
    }
    // The whole files, byte for byte (number formatting included).
    assert_eq!(host, device.stdout, "host and device CSVs differ");
    // The comparison covered both kinds of verdict.
    assert!(anomalies >= 2, "no anomaly flagged: {anomalies}");
    assert!(anomalies < rows, "everything flagged");
    let (scored, flagged, bad, instructions, _) =
        summary(&device.stderr).unwrap_or_else(|| panic!("no summary:\n{}", device.stderr));
    assert_eq!((scored, flagged, bad), (rows as u64, anomalies as u64, 0));
    assert!(instructions > 0, "no instruction count:\n{}", device.stderr);
}
