//! The README's main-job command, `./scripts/demo.sh`, works end to end: it trains
//! on the bundled BasicMotions data, scores the test set on the host and on the
//! emulated Cortex-M4F (QEMU), prints the result table with every row, writes
//! well-formed SVG plots, and the device's scores equal the host's bit for bit.
//! And `maf-train report` fails when the device differs by a single ulp; `maf-train
//! plot` draws a 2-D model (the paper's Figure 1 data) and refuses other shapes.
//!
//! Needs `qemu-system-arm`: without it the test **fails**, saying what to install.

// Tests state their expectations with expect().
#![allow(clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use maf_tests::{
    assert_success, csv_subset, data, example_model, maf_train, maf_train_ok, require_qemu, run,
    tempdir, workspace,
};

/// The value column of the table row `name` (rows are `  name   value`).
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no row {name:?} in the demo's output:\n{table}"))
}

/// Numbers in a piece of text (signs and decimals kept).
fn numbers(s: &str) -> Vec<f64> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Parses `path` as XML and checks it is an SVG drawing with content.
fn check_svg(path: &Path) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{}", path.display());
    let count = |tag: &str| {
        doc.descendants()
            .filter(|n| n.tag_name().name() == tag)
            .count()
    };
    assert!(count("text") >= 5, "{}: no axis labels", path.display());
    assert!(
        count("polyline") + count("path") + count("rect") >= 3,
        "{}: nothing drawn",
        path.display()
    );
}

#[test]
fn demo_script_trains_scores_on_both_sides_and_reports() {
    require_qemu();
    let tmp = tempdir();
    let out = tmp.path().join("demo");
    let start = Instant::now();
    // As the README runs it (with the outputs in a temporary directory).
    let r = run(
        Command::new("bash")
            .arg("scripts/demo.sh")
            .env("MAF_DEMO_OUT", &out)
            .current_dir(workspace()),
        Duration::from_secs(2400),
    );
    assert_success("./scripts/demo.sh", &r);
    let table = &r.stdout;
    eprintln!(
        "demo.sh took {:.1} s\n{table}",
        start.elapsed().as_secs_f64()
    );

    // The inspect output.
    for key in ["shape        D=6", "blob ", "RAM ", "MACs "] {
        assert!(table.contains(key), "no {key:?} in:\n{table}");
    }
    // Every row of the table, with plausible values.
    assert_eq!(
        numbers(row(table, "test vectors")),
        [4000.0, 3000.0, 1000.0]
    );
    for name in [
        "log-likelihood, normal vectors",
        "log-likelihood, all vectors",
    ] {
        let v = numbers(row(table, name));
        assert!(
            v.len() >= 2 && v[0].is_finite() && v[0] < 20.0 && v[0] > -100.0 && v[1] > 0.0,
            "{name}: {v:?}"
        );
    }
    let normal = numbers(row(table, "log-likelihood, normal vectors"))[0];
    let all = numbers(row(table, "log-likelihood, all vectors"))[0];
    assert!(
        normal > all,
        "anomalies should lower the mean: {normal} vs {all}"
    );
    let auroc = numbers(row(table, "AUROC, score -log p(x)"))[0];
    let auprc = numbers(row(table, "AUPRC, score -log p(x)"))[0];
    assert!(auroc > 0.7 && auroc <= 1.0, "AUROC {auroc}");
    assert!(auprc > 0.4 && auprc <= 1.0, "AUPRC {auprc}");
    assert!(row(table, "threshold (stored in the model)").starts_with("log p(x) < -"));
    let c = numbers(row(table, "confusion at the threshold"));
    assert_eq!(c.len(), 4, "{c:?}");
    assert_eq!(c[0] + c[3], 1000.0, "TP + FN = anomalies: {c:?}");
    assert_eq!(c[1] + c[2], 3000.0, "FP + TN = normal vectors: {c:?}");
    let instr = numbers(row(table, "instructions per inference"))[0];
    assert!(
        (1_000.0..1_000_000.0).contains(&instr),
        "instructions {instr}"
    );
    assert_eq!(
        row(table, "device = host, bit for bit"),
        "yes, 4000 of 4000 rows"
    );

    // The files, and parity checked here too: byte for byte.
    let host = fs::read_to_string(out.join("host_scores.csv")).expect("host scores written");
    let device = fs::read_to_string(out.join("device_scores.csv")).expect("device scores");
    assert_eq!(host.lines().count(), 4001);
    assert!(host == device, "device scores differ from the host's");
    assert!(out.join("model.maf").is_file());

    // The plots, where the output says they are.
    for name in ["log_density.svg", "roc.svg"] {
        let p = out.join(name);
        assert!(
            table.contains(&p.display().to_string()),
            "{name} not named in the output:\n{table}"
        );
        check_svg(&p);
    }
}

#[test]
fn report_fails_when_the_device_differs_by_one_ulp() {
    let tmp = tempdir();
    let dir = tmp.path();
    let s = |p: &Path| p.to_str().expect("temporary paths are UTF-8").to_owned();
    let model = example_model();
    // 20 normal and 20 anomalous test rows, with their labels.
    let vectors = csv_subset(
        &data("basicmotions_test.csv"),
        dir,
        "x.csv",
        &[(0, 20), (3000, 20)],
    );
    let labels = csv_subset(
        &data("basicmotions_test_labels.csv"),
        dir,
        "labels.csv",
        &[(0, 20), (3000, 20)],
    );
    let host = dir.join("host.csv");
    maf_train_ok(&[
        "score",
        "--model",
        &s(&model),
        "--data",
        &s(&vectors),
        "--out",
        &s(&host),
    ]);
    let host_text = fs::read_to_string(&host).expect("written");
    let report = |device: &Path| {
        run(
            Command::new(maf_train())
                .args(["report", "--model", &s(&model), "--labels", &s(&labels)])
                .args(["--host-scores", &s(&host), "--device-scores", &s(device)])
                .args(["--plot-dir", &s(&dir.join("plots"))]),
            Duration::from_secs(120),
        )
    };

    // Identical files: success, and valid plots.
    let same = dir.join("same.csv");
    fs::write(&same, &host_text).expect("writable");
    let ok = report(&same);
    assert_success("maf-train report (equal scores)", &ok);
    assert!(ok.stdout.contains("yes, 40 of 40 rows"), "{}", ok.stdout);
    check_svg(&dir.join("plots/log_density.svg"));
    check_svg(&dir.join("plots/roc.svg"));

    // Row 7's log density one ulp away (towards zero): exit status 1, the table
    // says NO, the message names the row and both bit patterns.
    let mut lines: Vec<String> = host_text.lines().map(str::to_owned).collect();
    let (lp, flag) = lines[8].split_once(',').expect("log_prob,anomaly");
    let v: f32 = lp.parse().expect("a number");
    let bumped = f32::from_bits(v.to_bits() - 1);
    assert_ne!(bumped.to_string(), lp);
    lines[8] = format!("{bumped},{flag}");
    let off = dir.join("off.csv");
    fs::write(&off, lines.join("\n") + "\n").expect("writable");
    let bad = report(&off);
    assert_eq!(bad.code(), Some(1), "{bad:?}");
    assert!(
        bad.stdout.contains("NO: 39 of 40 rows equal"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stderr.contains("first difference at data row 7")
            && bad.stderr.contains(&format!("{:#010x}", v.to_bits()))
            && bad.stderr.contains(&format!("{:#010x}", bumped.to_bits())),
        "{}",
        bad.stderr
    );
}

#[test]
fn plot_draws_a_2d_model_and_refuses_others() {
    let tmp = tempdir();
    let dir = tmp.path();
    let s = |p: &Path| p.to_str().expect("temporary paths are UTF-8").to_owned();
    let (train, model, out) = (dir.join("f1.csv"), dir.join("f1.maf"), dir.join("plots"));
    // The paper's Figure 1 data (seeded), a small MAF, its two plots.
    maf_train_ok(&[
        "figure1-data",
        "--rows",
        "1000",
        "--seed",
        "5",
        "--out",
        &s(&train),
    ]);
    maf_train_ok(&[
        "fit",
        "--data",
        &s(&train),
        "--out",
        &s(&model),
        "--layers",
        "2",
        "--hidden",
        "16",
        "--max-epochs",
        "10",
        "--quiet",
    ]);
    let r = maf_train_ok(&[
        "plot",
        "--model",
        &s(&model),
        "--data",
        &s(&train),
        "--out-dir",
        &s(&out),
    ]);
    for name in ["density.svg", "base_space.svg"] {
        let p = out.join(name);
        assert!(r.stdout.contains(&s(&p)), "{name} not named:\n{}", r.stdout);
        check_svg(&p);
    }
    // A 6-D model: a one-line error naming its dimension, nothing written.
    let bad_out = dir.join("none");
    let bad = run(
        Command::new(maf_train()).args([
            "plot",
            "--model",
            &s(&example_model()),
            "--data",
            &s(&data("basicmotions_test.csv")),
            "--out-dir",
            &s(&bad_out),
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(bad.code(), Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains("D=6") && bad.stderr.contains("two-dimensional"),
        "{}",
        bad.stderr
    );
    assert!(!bad_out.exists());
}
