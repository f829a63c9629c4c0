//! The bad-input matrix: every way a user can hand `maf-train` broken input, each
//! asserting exit status 1 (clap's 2 for usage errors), a one-line message naming
//! the problem (file, row, column where relevant), no panic, and no output file left
//! behind. `cargo test -p maf-train --test bad_input -- --nocapture` prints the
//! observed message of every case.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{data, files_in, npy_bytes, s};
use std::process::Command;

struct Case<'a> {
    name: &'a str,
    args: Vec<String>,
    code: i32,
    needles: Vec<&'a str>,
}

fn case<'a>(name: &'a str, args: &[&str], code: i32, needles: &[&'a str]) -> Case<'a> {
    Case {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        needles: needles.to_vec(),
    }
}

/// Runs one case in `dir` and checks exit code, message and that `dir` holds no
/// file the run created.
fn check(dir: &Path, c: &Case<'_>) {
    let before = files_in(dir);
    let o = Command::new(env!("CARGO_BIN_EXE_maf-train"))
        .args(&c.args)
        .output()
        .expect("run maf-train");
    let err = String::from_utf8_lossy(&o.stderr);
    println!(
        "| {} | {} | {} |",
        c.name,
        o.status.code().unwrap_or(-1),
        err.lines().next().unwrap_or("").replace('|', "\\|")
    );
    assert_eq!(o.status.code(), Some(c.code), "{}: {err}", c.name);
    assert!(!err.contains("panicked"), "{}: panic: {err}", c.name);
    assert!(!err.contains("RUST_BACKTRACE"), "{}: {err}", c.name);
    if c.code == 1 {
        assert!(err.starts_with("error: "), "{}: {err}", c.name);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{}: not one line: {err}",
            c.name
        );
    }
    // Short messages (#13): cells and column lists are cut to a readable length.
    assert!(
        err.len() < 600,
        "{}: message of {} bytes: {}…",
        c.name,
        err.len(),
        &err[..200.min(err.len())]
    );
    for n in &c.needles {
        assert!(err.contains(n), "{}: message {err:?} lacks {n:?}", c.name);
    }
    assert_eq!(
        files_in(dir),
        before,
        "{}: files created or removed",
        c.name
    );
}

#[test]
fn bad_input_matrix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let w = |name: &str, text: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    // A small valid model to corrupt and to score against.
    let model = d.join("good.maf");
    let train = data("basicmotions_train.csv");
    let valid = data("basicmotions_valid.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_maf-train"))
        .args([
            "fit",
            "--data",
            s(&train),
            "--valid",
            s(&valid),
            "--out",
            s(&model),
        ])
        .args([
            "--layers",
            "1",
            "--hidden",
            "8",
            "--max-epochs",
            "2",
            "--quiet",
        ])
        .output()
        .expect("fit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let good = std::fs::read(&model).expect("model");

    let empty = w("empty.csv", b"");
    let header_only = w("header.csv", b"a,b,c\n");
    let ragged = w("ragged.csv", b"a,b,c\n1,2,3\n4,5\n");
    let text = w("text.csv", b"a,b,c\n1,2,3\n4,abc,6\n");
    let nan = w("nan.csv", b"a,b,c\n1,2,3\n4,NaN,6\n");
    let inf = w("inf.csv", b"a,b,c\n1,2,3\n4,5,inf\n");
    let neg_inf = w("neginf.csv", b"a,b,c\n1,2,3\n-inf,5,6\n");
    let huge = w("huge.csv", b"a,b,c\n1,2,3\n4,1e39,6\n2,3,4\n");
    let constant = w("constant.csv", b"a,b,c\n1,7,3\n4,7,6\n2,7,9\n");
    let few_rows = w("few.csv", b"a,b,c\n1,2,3\n4,5,7\n2,3,1\n");
    let wrong_cols = w("wrongcols.csv", b"a,b,c\n1,2,3\n");
    let renamed = w(
        "renamed.csv",
        b"acc_x,acc_y,acc_z,gyr_x,gyr_y,other\n1,2,3,4,5,6\n",
    );
    // .npy arrays (format 1.0): 2 rows × 3 columns of '<f8' unless stated.
    let f8 = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let good_npy = npy_bytes("<f8", "False", "(2, 3)", &f8(&six));
    let npy_truncated = w("truncated.npy", &good_npy[..good_npy.len() - 5]);
    let npy_f2 = w("half.npy", &npy_bytes("<f2", "False", "(2, 3)", &[0; 12]));
    let npy_3d = w(
        "cube.npy",
        &npy_bytes("<f8", "False", "(1, 2, 3)", &f8(&six)),
    );
    let npy_fortran = w(
        "fortran.npy",
        &npy_bytes("<f8", "True", "(2, 3)", &f8(&six)),
    );
    let npy_nan = w(
        "nan.npy",
        &npy_bytes(
            "<f8",
            "False",
            "(2, 3)",
            &f8(&[1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0]),
        ),
    );
    let truncated = w("truncated.maf", &good[..good.len() / 2]);
    let mut flipped_bytes = good.clone();
    let mid = flipped_bytes.len() / 2;
    flipped_bytes[mid] ^= 0x10;
    let flipped = w("flipped.maf", &flipped_bytes);
    let mut v3 = good.clone();
    v3[8] = 3; // the version varint follows the 8-byte magic
    let other_version = w("v3.maf", &v3);
    let a_dir = d.join("a-directory");
    std::fs::create_dir(&a_dir).expect("mkdir");
    let unwritable = d.join("empty.csv").join("out.maf"); // a path under a file
    let out = d.join("out.maf");
    let zero = d.join("zero.maf");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let own_copy = w(
        "own.csv",
        &std::fs::read(data("banana2_train.csv")).expect("read"),
    );
    let own_link = d.join("own-link.csv");
    std::os::unix::fs::symlink(&own_copy, &own_link).expect("symlink");
    let missing_dir = d.join("no-such-folder").join("m.maf");
    let test = data("basicmotions_test.csv");
    // #13: headers and cells the data contract (docs/data-format.md) refuses.
    let dup_names = w("dup.csv", b"a,a,b,b\n1,2,3,4\n5,6,7,8\n");
    let no_names = w("nonames.csv", b",,,\n1,2,3,4\n5,6,7,8\n");
    let one_empty = w("oneempty.csv", b"a,,c\n1,2,3\n4,5,6\n");
    let semicolons = w("semicolon.csv", b"a;b;c\n1;2;3\n4;5;6\n");
    let tabs = w("tabs.csv", b"a\tb\tc\n1\t2\t3\n");
    let comment = w("comment.csv", b"# exported by logger\na,b\n1,2\n");
    let mut big = b"a,b\n1,".to_vec();
    big.extend(std::iter::repeat_n(b'7', 1 << 20));
    big.extend(b"x\n");
    let big_cell = w("bigcell.csv", &big);
    let wide_header: Vec<String> = (0..10_000).map(|j| format!("column_{j}")).collect();
    let wide = w(
        "wide.csv",
        format!(
            "{}\n{}\n",
            wide_header.join(","),
            vec!["1"; 10_000].join(",")
        )
        .as_bytes(),
    );
    let long_name = w(
        "longname.csv",
        format!("{},b\nx,2\n", "n".repeat(100_000)).as_bytes(),
    );
    let test_rows = std::fs::read_to_string(&test)
        .expect("test")
        .lines()
        .count()
        - 1;
    let labels_two = w(
        "labels2.csv",
        format!("anomaly\n2\n{}", "0\n".repeat(test_rows - 1)).as_bytes(),
    );
    let labels_half = w(
        "labelshalf.csv",
        format!("anomaly\n0.5\n{}", "0\n".repeat(test_rows - 1)).as_bytes(),
    );
    let labels_other = w("labelsother.csv", b"label\n0\n");
    // A conditional model with one context column, for the grammar of messages.
    let cond = d.join("cond.maf");
    let o = Command::new(env!("CARGO_BIN_EXE_maf-train"))
        .args([
            "fit",
            "--data",
            s(&train),
            "--valid",
            s(&valid),
            "--out",
            s(&cond),
        ])
        .args([
            "--context-columns",
            "gyr_z",
            "--layers",
            "1",
            "--hidden",
            "8",
        ])
        .args(["--components", "1", "--max-epochs", "2", "--quiet"])
        .output()
        .expect("fit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (o, m, g, t) = (s(&out), s(&model), s(&train), s(&test));
    let fit = |p: &Path| {
        vec![
            "fit".to_string(),
            "--data".into(),
            s(p).into(),
            "--out".into(),
            o.into(),
            "--quiet".into(),
        ]
    };
    let fit_case = |name: &'static str, p: &Path, needles: &[&'static str]| Case {
        name,
        args: fit(p),
        code: 1,
        needles: needles.to_vec(),
    };

    let cases = vec![
        case(
            "missing file",
            &["fit", "--data", "/no/such.csv", "--out", o],
            1,
            &["/no/such.csv"],
        ),
        fit_case("empty file", &empty, &["empty.csv"]),
        fit_case("header only", &header_only, &["header.csv", "no data rows"]),
        fit_case("ragged row", &ragged, &["ragged.csv", "line 3"]),
        fit_case(
            "non-numeric cell",
            &text,
            &["text.csv", "line 3", "column 2", "abc"],
        ),
        fit_case("NaN", &nan, &["nan.csv", "line 3", "column 2"]),
        fit_case("+inf", &inf, &["inf.csv", "line 3", "column 3"]),
        fit_case("-inf", &neg_inf, &["neginf.csv", "line 3", "column 1"]),
        fit_case(
            "huge value (1e39)",
            &huge,
            &["huge.csv", "line 3", "column 2"],
        ),
        fit_case("constant column", &constant, &["constant.csv", "column 2"]),
        fit_case(
            ".npy: truncated data",
            &npy_truncated,
            &["truncated.npy", "truncated"],
        ),
        fit_case(".npy: float16", &npy_f2, &["half.npy", "<f2"]),
        fit_case(".npy: 3-D array", &npy_3d, &["cube.npy", "3-D"]),
        fit_case(
            ".npy: Fortran order",
            &npy_fortran,
            &["fortran.npy", "fortran_order"],
        ),
        fit_case(
            ".npy: NaN element",
            &npy_nan,
            &["nan.npy", "row 1, column 1", "NaN"],
        ),
        case(
            "fewer rows than the batch size",
            &["fit", "--data", s(&few_rows), "--out", o, "--quiet"],
            1,
            &["few.csv", "2 training rows", "batch size 100"],
        ),
        case(
            "test data: other column count",
            &["score", "--model", m, "--data", s(&wrong_cols)],
            1,
            &["wrongcols.csv", "columns"],
        ),
        case(
            "test data: other header",
            &["eval", "--model", m, "--data", s(&renamed)],
            1,
            &["renamed.csv", "other"],
        ),
        case(
            "context column that does not exist",
            &[
                "fit",
                "--data",
                g,
                "--out",
                o,
                "--context-columns",
                "nope",
                "--quiet",
            ],
            1,
            &["nope"],
        ),
        case(
            "truncated blob",
            &["score", "--model", s(&truncated), "--data", t],
            1,
            &["truncated.maf", "truncated"],
        ),
        case(
            "blob with a flipped byte",
            &["score", "--model", s(&flipped), "--data", t],
            1,
            &["flipped.maf", "CRC"],
        ),
        case(
            "blob of another version",
            &["inspect", s(&other_version)],
            1,
            &["v3.maf", "version 3"],
        ),
        case(
            "directory given as data",
            &["fit", "--data", s(&a_dir), "--out", o, "--quiet"],
            1,
            &["a-directory"],
        ),
        case(
            "directory given as model",
            &["score", "--model", s(&a_dir), "--data", t],
            1,
            &["a-directory"],
        ),
        case(
            "model is a link to /dev/zero (inspect)",
            &["inspect", s(&zero)],
            1,
            &["zero.maf", "not a regular file"],
        ),
        case(
            "model is a link to /dev/zero (score)",
            &["score", "--model", s(&zero), "--data", t],
            1,
            &["zero.maf", "not a regular file"],
        ),
        case(
            "fit --out is the training data",
            &[
                "fit",
                "--data",
                s(&own_copy),
                "--out",
                s(&own_copy),
                "--quiet",
            ],
            1,
            &["--out", "own.csv", "also an input"],
        ),
        case(
            "fit --out links to the training data",
            &[
                "fit",
                "--data",
                s(&own_copy),
                "--out",
                s(&own_link),
                "--quiet",
            ],
            1,
            &["--out", "also an input"],
        ),
        case(
            "score --out is the data",
            &[
                "score",
                "--model",
                m,
                "--data",
                s(&own_copy),
                "--out",
                s(&own_copy),
            ],
            1,
            &["--out", "also an input"],
        ),
        case(
            "fit into a missing folder fails before training",
            &["fit", "--data", s(&own_copy), "--out", s(&missing_dir)],
            1,
            &["no-such-folder/m.maf", "does not exist"],
        ),
        case(
            "unwritable output path",
            &["score", "--model", m, "--data", t, "--out", s(&unwritable)],
            1,
            &["out.maf"],
        ),
        fit_case(
            "#8 header a,a,b,b",
            &dup_names,
            &["dup.csv", "\"a\" appears twice (columns 1 and 2)"],
        ),
        case(
            "#8 header a,a,b,b with --context-columns a",
            &[
                "fit",
                "--data",
                s(&dup_names),
                "--out",
                o,
                "--context-columns",
                "a",
                "--quiet",
            ],
            1,
            &["dup.csv", "appears twice"],
        ),
        fit_case(
            "#8 header ,,,",
            &no_names,
            &["nonames.csv", "column 1 of 4 has no name"],
        ),
        fit_case(
            "#8 header a,,c",
            &one_empty,
            &["oneempty.csv", "column 2 of 3 has no name"],
        ),
        fit_case(
            "wrong delimiter ';'",
            &semicolons,
            &["semicolon.csv", "1 column found; is the delimiter ';'?"],
        ),
        fit_case(
            "wrong delimiter tab",
            &tabs,
            &["tabs.csv", "is the delimiter a tab?"],
        ),
        fit_case("comment line", &comment, &["comment.csv", "comment lines"]),
        fit_case(
            "#9 a 1 MB cell",
            &big_cell,
            &["bigcell.csv", "line 2, column 2", "…\" is not a number"],
        ),
        fit_case(
            "#9 a 100 kB column name",
            &long_name,
            &["longname.csv", "…"],
        ),
        case(
            "#9 a 10,000-column file given to score",
            &["score", "--model", m, "--data", s(&wide)],
            1,
            &["wide.csv", "10000 columns", "and 9992 more"],
        ),
        case(
            "#14 eval with a label value 2",
            &[
                "eval",
                "--model",
                m,
                "--data",
                t,
                "--labels",
                s(&labels_two),
            ],
            1,
            &["labels2.csv", "label 2 in data row 1: must be 0 or 1"],
        ),
        case(
            "#14 eval with a label value 0.5",
            &[
                "eval",
                "--model",
                m,
                "--data",
                t,
                "--labels",
                s(&labels_half),
            ],
            1,
            &["label 0.5 in data row 1: must be 0 or 1"],
        ),
        case(
            "labels without an anomaly column",
            &[
                "eval",
                "--model",
                m,
                "--data",
                t,
                "--labels",
                s(&labels_other),
            ],
            1,
            &[
                "labelsother.csv",
                "no `anomaly` column",
                "0 (normal) and 1 (anomaly)",
            ],
        ),
        case(
            "grammar: sample a 1-context model without --context",
            &["sample", "--model", s(&cond), "--count", "2"],
            1,
            &["conditional on 1 context column:"],
        ),
        case(
            "grammar: score a 1-context model with 3 columns",
            &["score", "--model", s(&cond), "--data", s(&wrong_cols)],
            1,
            &["3 columns do not match the model's 6"],
        ),
        case(
            "--layers 0 with the standard normal base",
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
            1,
            &["--layers", "mixture base"],
        ),
        case(
            "--layers 33",
            &["fit", "--data", g, "--out", o, "--layers", "33"],
            1,
            &["--layers", "0..=32"],
        ),
        case(
            "--components 65",
            &["fit", "--data", g, "--out", o, "--components", "65"],
            1,
            &["--components", "0..=64"],
        ),
        case(
            "--time-budget 0",
            &["fit", "--data", g, "--out", o, "--time-budget", "0"],
            1,
            &["--time-budget"],
        ),
        case(
            "a budget no model fits",
            &[
                "fit",
                "--data",
                g,
                "--out",
                o,
                "--max-instructions",
                "10",
                "--quiet",
            ],
            1,
            &["device budget", "--max-instructions 10"],
        ),
        case(
            "--hidden 0",
            &["fit", "--data", g, "--out", o, "--hidden", "0"],
            1,
            &["--hidden"],
        ),
        case(
            "negative learning rate",
            &["fit", "--data", g, "--out", o, "--learning-rate", "-0.01"],
            1,
            &["--learning-rate"],
        ),
        case(
            "--batch-size neither a number nor auto (usage)",
            &["fit", "--data", g, "--out", o, "--batch-size", "big"],
            2,
            &["--batch-size", "auto"],
        ),
        case(
            "unknown option (usage)",
            &["fit", "--data", g, "--out", o, "--bogus"],
            2,
            &["--bogus"],
        ),
        case(
            "missing required option (usage)",
            &["score", "--model", m],
            2,
            &["--data"],
        ),
    ];
    println!("| case | exit | message |\n|---|---|---|");
    for c in &cases {
        check(d, c);
    }
}
