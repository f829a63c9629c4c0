//! `fit`'s model search: what it tries, what it chooses, what flags fix, and the
//! mixture base through `sample`.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{data, run};

fn fit(out: &Path, extra: &[&str]) -> Output {
    let (t, v) = (data("banana2_train.csv"), data("banana2_valid.csv"));
    let mut args = vec![
        "fit",
        "--data",
        t.to_str().unwrap(),
        "--valid",
        v.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-epochs",
        "40",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `(label, mean validation log-likelihood, status)` of every `tried=` line.
fn tried(model: &Path) -> Vec<(String, f64, String)> {
    let o = run(&["inspect", model.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("meta         tried="))
        .map(|l| {
            let f: Vec<&str> = l.split(" | ").collect();
            let ll = f[1].trim_start_matches("valid ").parse::<f64>().unwrap();
            (f[0].to_string(), ll, f[3].to_string())
        })
        .collect()
}

fn inspect(model: &Path) -> serde_json::Value {
    let o = run(&["inspect", model.to_str().unwrap(), "--json"]);
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap()
}

#[test]
fn default_fit_searches_and_is_never_worse_than_its_best_mixture() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.maf");
    let o = fit(&m, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("model search"), "{err}");
    assert!(err.contains("mixture K=16 full"), "{err}");
    let trials = tried(&m);
    // 6 sizes x 2 covariances, K = 2..=16 also averaged over their 3 EM starts
    // (K=1 averages to itself, 3 x 32 > 64), then flows on a mixture and on N(0, I).
    assert!(trials.len() >= 22, "{trials:?}");
    let averages: Vec<_> = trials.iter().filter(|t| t.0.contains(" × K=")).collect();
    assert_eq!(averages.len(), 8, "{trials:?}");
    assert!(
        averages
            .iter()
            .any(|t| t.0.starts_with("mixture K=48 full (3 × K=16)"))
    );
    let best_mixture = trials
        .iter()
        .filter(|t| t.0.starts_with("mixture") && !t.2.starts_with("not a candidate"))
        .map(|t| t.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let v = inspect(&m);
    let chosen: f64 = v["metadata"]["valid_log_likelihood"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(chosen >= best_mixture - 1e-6, "{chosen} < {best_mixture}");
    assert_eq!(v["format_version"], 2);
    assert_eq!(v["columns"], serde_json::json!(["x1", "x2"]));
    assert!(v["components"].as_u64().unwrap() >= 1);
    let label = v["metadata"]["model"].as_str().unwrap();
    assert!(trials.iter().any(|t| t.0 == label), "{label}");
    // Over-budget candidates are listed, not trained.
    let o = fit(
        &dir.path().join("small.maf"),
        &["--max-instructions", "1000"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("over the device budget"), "{err}");
    let small = inspect(&dir.path().join("small.maf"));
    assert!(
        small["estimated_instructions_cortex_m4f"].as_u64().unwrap() <= 1000,
        "{small}"
    );
}

#[test]
fn flags_fix_every_choice() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("gmm.maf");
    fit(
        &m,
        &[
            "--components",
            "4",
            "--covariance",
            "full",
            "--layers",
            "0",
            "--quiet",
        ],
    );
    let v = inspect(&m);
    assert_eq!(v["layers"], 0);
    assert_eq!(v["components"], 4);
    assert_eq!(v["base"], "mixture-full");
    assert_eq!(tried(&m).len(), 1);

    let m = dir.path().join("maf.maf");
    fit(
        &m,
        &[
            "--components",
            "0",
            "--layers",
            "2",
            "--hidden",
            "8",
            "--activation",
            "relu",
            "--quiet",
        ],
    );
    let v = inspect(&m);
    assert_eq!(
        (v["layers"].as_u64(), v["hidden"].as_u64()),
        (Some(2), Some(8))
    );
    assert_eq!(v["base"], "normal");
    assert_eq!(v["activation"], "relu");
    assert_eq!(v["batch_norm"], true);
    assert_eq!(tried(&m).len(), 1);

    // A flow on a diagonal mixture: no batch norm (it starts as the identity).
    let m = dir.path().join("flow.maf");
    fit(
        &m,
        &[
            "--components",
            "3",
            "--covariance",
            "diag",
            "--layers",
            "2",
            "--hidden",
            "8",
            "--quiet",
        ],
    );
    let v = inspect(&m);
    assert_eq!(v["base"], "mixture-diag");
    assert_eq!(v["batch_norm"], false);
    assert_eq!(v["activation"], "tanh");
}

#[test]
fn a_spent_time_budget_keeps_the_best_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.maf");
    fit(&m, &["--time-budget", "0.000001", "--quiet"]);
    let trials = tried(&m);
    assert!(
        trials.iter().any(|t| t.2.contains("time budget")),
        "{trials:?}"
    );
    let v = inspect(&m);
    assert!(v["components"].as_u64().unwrap() >= 1);
}

#[test]
fn samples_of_a_mixture_model_have_the_data_s_moments() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("gmm.maf");
    fit(
        &m,
        &[
            "--components",
            "8",
            "--covariance",
            "full",
            "--layers",
            "0",
            "--quiet",
        ],
    );
    let s = dir.path().join("s.csv");
    let o = run(&[
        "sample",
        "--model",
        m.to_str().unwrap(),
        "--count",
        "20000",
        "--out",
        s.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let col_stats = |path: &Path| -> Vec<(f64, f64)> {
        let text = std::fs::read_to_string(path).unwrap();
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        (0..rows[0].len())
            .map(|j| {
                let n = rows.len() as f64;
                let m = rows.iter().map(|r| r[j]).sum::<f64>() / n;
                let v = rows.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / n;
                (m, v.sqrt())
            })
            .collect()
    };
    let want = col_stats(&data("banana2_train.csv"));
    let got = col_stats(&s);
    for ((wm, ws), (gm, gs)) in want.iter().zip(&got) {
        // 20,000 draws: the standard error of the mean is under 0.01 std.
        assert!((wm - gm).abs() < 0.05 * ws, "mean {gm} vs data {wm}");
        assert!((ws - gs).abs() < 0.05 * ws, "std {gs} vs data {ws}");
    }
}

#[test]
fn candidates_trained_at_once_give_the_same_model_as_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let blob = |threads: &str| {
        let m = dir.path().join(format!("t{threads}.maf"));
        let o = fit(
            &m,
            &[
                "--covariance",
                "diag",
                "--max-instructions",
                "100000",
                "--threads",
                threads,
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        (std::fs::read(&m).unwrap(), err, tried(&m))
    };
    let (one, _, trials) = blob("1");
    let (two, err, _) = blob("2");
    // Four flows (two shapes, on the mixture and on N(0, I)), at least two trained,
    // so two threads really train two at once.
    let flows = trials.iter().filter(|t| t.0.starts_with("flow")).count();
    let trained = trials.iter().filter(|t| t.2.starts_with("trained")).count();
    assert_eq!(flows, 4, "{trials:?}");
    assert!(trained >= 2, "{trials:?}");
    assert!(one == two, "the blob depends on the thread count");
    // Every candidate's progress lines carry its own number and label.
    for (i, t) in trials.iter().enumerate() {
        let prefix = format!("[{}/{}] {}:", i + 1, trials.len(), t.0);
        assert!(err.contains(&prefix), "no {prefix:?} in\n{err}");
    }
}
