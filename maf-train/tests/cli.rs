//! End-to-end tests of the `maf-train` binary: fit, score, eval, sample, inspect,
//! determinism, error messages and exit codes, atomic output.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{data, files_in, npy_bytes};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maf-train"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run maf-train")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small, fast fit on the BasicMotions training data.
fn fit(dir: &Path, name: &str, seed: &str, extra: &[&str]) -> PathBuf {
    fit_files(
        &dir.join(name),
        &data("basicmotions_train.csv"),
        &data("basicmotions_valid.csv"),
        seed,
        extra,
    )
}

/// A small, fast fit of `train` (validated on `valid`) written to `out`.
fn fit_files(out: &Path, train: &Path, valid: &Path, seed: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "fit",
        "--data",
        train.to_str().expect("utf-8 path"),
        "--valid",
        valid.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--layers",
        "2",
        "--hidden",
        "16",
        "--max-epochs",
        "3",
        "--seed",
        seed,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "fit failed: {}", stderr(&o));
    out.to_path_buf()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = std::fs::read(fit(dir.path(), "a.maf", "7", &[])).expect("read");
    let b = std::fs::read(fit(dir.path(), "b.maf", "7", &[])).expect("read");
    let c = std::fs::read(fit(dir.path(), "c.maf", "8", &[])).expect("read");
    assert_eq!(a, b, "same seed and data must give byte-identical blobs");
    assert_ne!(a, c);
    // Without --valid, a seeded hold-out; still deterministic.
    let train = data("basicmotions_train.csv");
    let mk = |name: &str| {
        let out = dir.path().join(name);
        let o = run(&[
            "fit",
            "--data",
            train.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--layers",
            "1",
            "--hidden",
            "8",
            "--max-epochs",
            "2",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).expect("read")
    };
    assert_eq!(mk("h1.maf"), mk("h2.maf"));
}

#[test]
fn score_eval_sample_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fit(dir.path(), "m.maf", "1", &["--activation", "tanh"]);
    let m = model.to_str().expect("utf-8");
    let test = data("basicmotions_test.csv");
    let t = test.to_str().expect("utf-8");
    let labels = data("basicmotions_test_labels.csv");

    // score: header, one row per input row, values equal maf-core's bit for bit.
    let scores = dir.path().join("scores.csv");
    let o = run(&[
        "score",
        "--model",
        m,
        "--data",
        t,
        "--out",
        scores.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&scores).expect("scores");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("log_prob,anomaly"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4000);
    let blob = maf_core::blob::AlignedBlob::new(&std::fs::read(&model).expect("model"));
    let view = maf_core::MafView::from_blob(blob.as_bytes()).expect("loads");
    let table = maf_train::data::read_csv(&test).expect("csv");
    let mut scratch = vec![0.0; view.shape().scratch_len()];
    for (r, line) in rows.iter().enumerate().take(200) {
        let x: Vec<f32> = table.values.row(r).iter().map(|&v| v as f32).collect();
        let lp = view.log_prob(&x, &[], &mut scratch).expect("log_prob");
        let (v, flag) = line.split_once(',').expect("two cells");
        assert_eq!(
            v.parse::<f32>().expect("f32").to_bits(),
            lp.to_bits(),
            "row {r}"
        );
        assert_eq!(flag, if view.is_anomaly(lp) { "1" } else { "0" });
    }

    // eval --json with labels.
    let o = run(&[
        "eval",
        "--model",
        m,
        "--data",
        t,
        "--labels",
        labels.to_str().expect("utf-8"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    for key in [
        "rows",
        "mean_log_prob",
        "two_se",
        "auroc",
        "auprc",
        "normal_rows",
        "tp",
        "fp",
        "tn",
        "fn",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["rows"], 4000);
    assert_eq!(v["normal_rows"], 3000);
    let auroc = v["auroc"].as_f64().expect("auroc");
    assert!(auroc > 0.5 && auroc <= 1.0, "{auroc}");
    // Plain text without labels.
    let o = run(&["eval", "--model", m, "--data", t]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("mean log-likelihood"));

    // sample.
    let o = run(&["sample", "--model", m, "--count", "5", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z");
    assert_eq!(lines.len(), 6);
    assert!(lines[1..].iter().all(|l| {
        l.split(',')
            .all(|c| c.parse::<f32>().is_ok_and(f32::is_finite))
    }));

    // inspect.
    let o = run(&["inspect", m, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(v["dim"], 6);
    assert_eq!(v["layers"], 2);
    assert_eq!(
        v["blob_bytes"],
        std::fs::metadata(&model).expect("meta").len()
    );
    assert!(v["threshold"].is_number());
    assert!(v["macs_per_log_prob"].as_u64().expect("macs") > 0);
    let o = run(&["inspect", m]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("RAM"));
}

fn expect_error(args: &[&str], needles: &[&str]) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
    let e = stderr(&o);
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    for n in needles {
        assert!(e.contains(n), "{args:?}: {e:?} lacks {n:?}");
    }
}

#[test]
fn bad_input_is_a_one_line_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = d.join("out.maf");
    let o = out.to_str().expect("utf-8");
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "ragged.csv",
            "a,b\n1,2\n3\n",
            &["ragged.csv", "line 3", "1 cell, ", "2 columns"],
        ),
        (
            "text.csv",
            "a,b\n1,2\n3,x\n",
            &["text.csv", "line 3", "column 2", "\"b\"", "\"x\""],
        ),
        (
            "nan.csv",
            "a,b\n1,2\nNaN,1\n",
            &["nan.csv", "line 3", "column 1", "not finite"],
        ),
        (
            "const.csv",
            "a,b\n1,2\n1,3\n1,4\n",
            &["const.csv", "column 1", "constant"],
        ),
        ("empty.csv", "a,b\n", &["empty.csv", "no data rows"]),
    ];
    for (name, text, needles) in cases {
        let p = write(d, name, text);
        expect_error(
            &[
                "fit",
                "--data",
                p.to_str().expect("utf-8"),
                "--out",
                o,
                "--quiet",
            ],
            needles,
        );
    }
    let good = data("basicmotions_train.csv");
    let g = good.to_str().expect("utf-8");
    expect_error(
        &[
            "fit",
            "--data",
            g,
            "--out",
            o,
            "--layers",
            "0",
            "--components",
            "0",
        ],
        &["--layers"],
    );
    expect_error(
        &["fit", "--data", g, "--out", o, "--hidden", "0"],
        &["--hidden"],
    );
    expect_error(
        &["fit", "--data", g, "--out", o, "--learning-rate", "-0.001"],
        &["--learning-rate"],
    );
    expect_error(
        &["fit", "--data", g, "--out", o, "--anomaly-quantile", "1.5"],
        &["--anomaly-quantile"],
    );
    expect_error(
        &["fit", "--data", g, "--out", o, "--context-columns", "nope"],
        &["nope"],
    );
    expect_error(
        &["fit", "--data", "/no/such/file.csv", "--out", o],
        &["/no/such/file.csv"],
    );
    let missing_dir = d.join("no-such-dir").join("m.maf");
    let o2 = run(&[
        "fit",
        "--data",
        g,
        "--out",
        missing_dir.to_str().expect("utf-8"),
        "--max-epochs",
        "1",
        "--layers",
        "1",
        "--hidden",
        "4",
        "--quiet",
    ]);
    assert_eq!(o2.status.code(), Some(1));
    // Nothing was written, no temporary file left behind.
    let left: Vec<String> = files_in(d)
        .into_iter()
        .filter(|f| !f.ends_with(".csv"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Usage errors are clap's exit 2.
    assert_eq!(run(&["fit", "--bogus"]).status.code(), Some(2));
}

#[test]
fn data_that_does_not_fit_the_model_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fit(dir.path(), "m.maf", "2", &[]);
    let m = model.to_str().expect("utf-8");
    let shuttle = data("shuttle_test.csv");
    expect_error(
        &[
            "score",
            "--model",
            m,
            "--data",
            shuttle.to_str().expect("utf-8"),
        ],
        &["shuttle_test.csv", "columns"],
    );
    let renamed = write(dir.path(), "renamed.csv", "a,b,c,d,e,f\n1,2,3,4,5,6\n");
    expect_error(
        &[
            "eval",
            "--model",
            m,
            "--data",
            renamed.to_str().expect("utf-8"),
        ],
        &["renamed.csv"],
    );
    let not_a_model = write(dir.path(), "junk.maf", "hello");
    expect_error(
        &["inspect", not_a_model.to_str().expect("utf-8")],
        &["junk.maf", "not a valid maf model"],
    );
    // A failed score to a file leaves an existing file untouched.
    let keep = write(dir.path(), "keep.csv", "old\n");
    let o = run(&[
        "score",
        "--model",
        m,
        "--data",
        renamed.to_str().expect("utf-8"),
        "--out",
        keep.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&keep).expect("keep"), "old\n");
}

#[test]
fn conditional_model_fit_score_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fit(
        dir.path(),
        "c.maf",
        "3",
        &["--context-columns", "gyr_z,acc_x"],
    );
    let m = model.to_str().expect("utf-8");
    let o = run(&["inspect", m, "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(v["dim"], 4);
    assert_eq!(v["context"], 2);
    let test = data("basicmotions_test.csv");
    let o = run(&[
        "score",
        "--model",
        m,
        "--data",
        test.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 4001);
    let ctx = write(dir.path(), "ctx.csv", "gyr_z,acc_x\n0.1,0.2\n");
    let o = run(&[
        "sample",
        "--model",
        m,
        "--count",
        "3",
        "--context",
        ctx.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The samples come with the context they were drawn for (#13).
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "acc_y,acc_z,gyr_x,gyr_y,gyr_z,acc_x");
    assert_eq!(lines.len(), 4);
    assert!(lines[1..].iter().all(|l| l.ends_with(",0.1,0.2")), "{s}");
    expect_error(&["sample", "--model", m, "--count", "3"], &["--context"]);
}

/// Writes `values` as a `.npy` file (format 1.0, little-endian float64, C order),
/// the way `numpy.save` does.
fn write_npy(path: &Path, values: &ndarray::Array2<f64>) {
    let (rows, cols) = values.dim();
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = npy_bytes("<f8", "False", &format!("({rows}, {cols})"), &data);
    std::fs::write(path, bytes).expect("write npy");
}

/// The BasicMotions CSV `name` as a `.npy` array in `dir` (same numbers).
fn npy_copy(dir: &Path, name: &str) -> PathBuf {
    let t = maf_train::data::read_csv(&data(&format!("{name}.csv"))).expect("csv");
    let p = dir.join(format!("{name}.npy"));
    write_npy(&p, &t.values);
    p
}

#[test]
fn npy_data_gives_the_same_results_as_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (train, valid, test) = (
        npy_copy(d, "basicmotions_train"),
        npy_copy(d, "basicmotions_valid"),
        npy_copy(d, "basicmotions_test"),
    );
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let fit_npy = |name: &str, data: &Path, valid: &Path, extra: &[&str]| {
        fit_files(&d.join(name), data, valid, "3", extra)
    };
    let csv_model = fit(d, "csv.maf", "3", &[]);
    let npy_model = fit_npy("npy.maf", &train, &valid, &[]);
    // CSV training data with a .npy validation file: matched by position.
    let mixed_model = fit_npy("mixed.maf", &data("basicmotions_train.csv"), &valid, &[]);
    let test_csv = data("basicmotions_test.csv");
    let labels = data("basicmotions_test_labels.csv");
    let out = |args: &[String]| {
        let o = bin().args(args).output().expect("run");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let score = |m: &Path, t: &Path| {
        out(&[
            "score".into(),
            "--model".into(),
            s(m),
            "--data".into(),
            s(t),
        ])
    };
    let eval = |m: &Path, t: &Path| {
        out(&[
            "eval".into(),
            "--model".into(),
            s(m),
            "--data".into(),
            s(t),
            "--labels".into(),
            s(&labels),
        ])
    };
    let reference = score(&csv_model, &test_csv);
    assert_eq!(reference.lines().count(), 4001);
    // Same numbers in, same weights out: identical scores every way round.
    assert_eq!(score(&npy_model, &test), reference);
    assert_eq!(score(&npy_model, &test_csv), reference);
    assert_eq!(score(&csv_model, &test), reference);
    assert_eq!(score(&mixed_model, &test), reference);
    assert_eq!(eval(&npy_model, &test), eval(&csv_model, &test_csv));
    // The .npy model names its columns by position.
    let o = run(&["inspect", npy_model.to_str().expect("utf-8"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(v["metadata"]["columns"], "x0,x1,x2,x3,x4,x5");

    // Context columns of a .npy array: by index or by positional name, same blob.
    let by_index = fit_npy("ci.maf", &train, &valid, &["--context-columns", "5,0"]);
    let by_name = fit_npy("cn.maf", &train, &valid, &["--context-columns", "x5,x0"]);
    assert_eq!(
        std::fs::read(&by_index).expect("read"),
        std::fs::read(&by_name).expect("read")
    );
    assert_eq!(score(&by_index, &test).lines().count(), 4001);
    let ctx = d.join("ctx.npy");
    write_npy(&ctx, &ndarray::array![[0.1, 0.2]]);
    let o = run(&[
        "sample",
        "--model",
        by_index.to_str().expect("utf-8"),
        "--count",
        "3",
        "--context",
        ctx.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Samples come with their context columns (#13).
    assert_eq!(stdout(&o).lines().next(), Some("x1,x2,x3,x4,x5,x0"));
    expect_error(
        &[
            "fit",
            "--data",
            &s(&train),
            "--out",
            &s(&d.join("x.maf")),
            "--context-columns",
            "6",
            "--quiet",
        ],
        &["basicmotions_train.npy", "\"6\"", "index 0..5"],
    );
    // A .npy array of the wrong width for the model.
    let narrow = d.join("narrow.npy");
    write_npy(&narrow, &ndarray::array![[0.1, 0.2], [0.3, 0.4]]);
    expect_error(
        &[
            "score",
            "--model",
            npy_model.to_str().expect("utf-8"),
            "--data",
            &s(&narrow),
        ],
        &["narrow.npy", "columns"],
    );
}

#[test]
fn a_reader_that_goes_away_ends_output_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let model = fit(dir.path(), "m.maf", "0", &[]);
    // Like `maf-train sample ... | head -c 64`: far more output than a pipe holds.
    let mut child = bin()
        .args([
            "sample",
            "--model",
            model.to_str().expect("utf-8"),
            "--count",
            "200000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut head = [0u8; 64];
    out.read_exact(&mut head).expect("first bytes");
    drop(out);
    let o = child.wait_with_output().expect("wait");
    assert!(head.starts_with(b"acc_x,"), "{head:?}");
    assert!(o.status.success(), "status {:?}: {}", o.status, stderr(&o));
    assert_eq!(stderr(&o), "");
}
