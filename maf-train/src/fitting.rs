//! The `fit` pipeline as a library call: read and split the data, standardise,
//! search the model space within the device budget, and pack the winner into a
//! blob with its threshold and metadata. No file is written here.

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Axis;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::cli::FitArgs;
use crate::data::{self, Standardizer};
use crate::error::{Error, Result};
use crate::export::TrainedModel;
use crate::hyper::FitParams;
use crate::io::{check_output, file_name, load_view};
use crate::metrics;
use crate::model::Activation;
use crate::scoring::core_log_probs;
use crate::select::Progress;
use crate::train;

/// What [`fit_blob`] made.
#[derive(Clone, Debug)]
pub struct FitOutput {
    /// The model blob.
    pub blob: Vec<u8>,
    /// One line: the winner, its epochs, validation log-likelihood, size, cost.
    pub summary: String,
    /// The search table (one line per candidate).
    pub table: String,
    /// If a stop was requested ([`crate::interrupt`]): where, and what was kept
    /// (also in the blob's metadata as `interrupted=`).
    pub interrupted: Option<String>,
}

/// Fits a model as `maf-train fit` does and returns the blob and its summary
/// (no file written). `progress` receives every epoch report. If a stop is
/// requested during the search ([`crate::interrupt::requested`]), the best model
/// so far is returned, marked as interrupted.
///
/// # Errors
/// Bad settings, bad data, divergence.
pub fn fit_blob(
    a: &FitArgs,
    progress: &mut dyn FnMut(crate::select::Progress<'_>),
) -> Result<FitOutput> {
    let hp = FitParams {
        layers: a.layers.unwrap_or(0),
        hidden: a.hidden.unwrap_or(1),
        hidden_layers: a.hidden_layers,
        batch_size: a.batch_size,
        learning_rate: a.learning_rate,
        weight_decay: a.weight_decay,
        max_epochs: a.max_epochs,
        patience: a.patience,
        seed: a.seed,
        batch_norm: !a.no_batch_norm,
        activation: a.activation.map_or(Activation::Tanh, Into::into),
        anomaly_quantile: a.anomaly_quantile,
        clip_norm: (a.clip_norm != 0.0).then_some(a.clip_norm),
        valid_fraction: 0.1,
    }
    .check()?;
    // The window settings are checked before any work (on no data).
    crate::windows::check_settings(a.window, a.false_alarm_rate)?;
    let inputs: Vec<&Path> = std::iter::once(a.data.as_path())
        .chain(a.valid.as_deref())
        .collect();
    check_output(&a.out, &inputs)?;
    let table = data::read_data(&a.data)?;
    let all = table.split(&a.context_columns)?;
    let (tr, va, valid_desc) = match &a.valid {
        Some(vp) => {
            let mut vt = data::read_data(vp)?;
            // A .npy file has no names: its columns are the other file's, by position.
            if (vt.positional || table.positional) && vt.header.len() == table.header.len() {
                vt.header.clone_from(&table.header);
            }
            if vt.header != table.header {
                return Err(Error::ColumnMismatch {
                    path: vp.clone(),
                    message: format!(
                        "header {} differs from the training data's {}",
                        vt.header.join(","),
                        table.header.join(",")
                    ),
                });
            }
            let v = vt.split(&a.context_columns)?;
            (all, v, file_name(vp))
        }
        None => {
            let n = all.x.nrows();
            let n_valid = ((n as f64 * hp.valid_fraction).round() as usize).max(1);
            if n < n_valid + 2 {
                return Err(Error::EmptyData {
                    path: a.data.clone(),
                    what: "too few rows to hold out a validation set (give --valid)",
                });
            }
            let mut idx: Vec<usize> = (0..n).collect();
            // A stream of its own, so the split does not shift the training draws.
            idx.shuffle(&mut ChaCha8Rng::seed_from_u64(hp.seed ^ 0x5EED_5B17));
            let (vi, ti) = idx.split_at(n_valid);
            let (mut vi, mut ti) = (vi.to_vec(), ti.to_vec());
            vi.sort_unstable();
            ti.sort_unstable();
            let pick = |rows: &[usize]| data::Split {
                x_names: all.x_names.clone(),
                c_names: all.c_names.clone(),
                x: all.x.select(Axis(0), rows),
                c: all.c.select(Axis(0), rows),
            };
            let (t, v) = (pick(&ti), pick(&vi));
            (
                t,
                v,
                format!("{} rows held out of {}", n_valid, file_name(&a.data)),
            )
        }
    };
    let x_std = Standardizer::fit(&tr.x, &a.data, &tr.x_names)?;
    let c_std = Standardizer::fit(&tr.c, &a.data, &tr.c_names)?;
    let batch_size = hp.batch_size.rows(tr.x.nrows());
    if tr.x.nrows() < batch_size {
        return Err(Error::TooFewRows {
            path: a.data.clone(),
            rows: tr.x.nrows(),
            batch_size,
        });
    }
    let space = search_space(a, tr.x.ncols() + tr.c.ncols())?;
    let budget = crate::select::Budget {
        max_instructions: a.max_instructions,
        max_blob_bytes: a.max_blob_bytes,
        time: std::time::Duration::from_secs_f64(a.time_budget),
        threads: a.threads,
    };
    let (xt, ct) = (x_std.apply::<f32>(&tr.x), c_std.apply::<f32>(&tr.c));
    let (xv, cv) = (x_std.apply::<f32>(&va.x), c_std.apply::<f32>(&va.c));
    // Where the search was when a stop was requested: the candidate and epoch.
    let mut stopped_at: Option<(String, usize)> = None;
    // Candidates may train at once: each one's label and last epoch, by number.
    let mut running: std::collections::BTreeMap<usize, (String, usize)> = Default::default();
    let mut current = (String::new(), 0usize);
    let mut watch = |p: Progress<'_>| {
        match &p {
            Progress::Start(i, n, label) => {
                running.insert(*i, (format!("candidate {i}/{n} {label}"), 0));
            }
            Progress::Epoch(i, r) => {
                if let Some(c) = running.get_mut(i) {
                    c.1 = r.epoch;
                }
            }
            Progress::Done(i, _) => {
                running.remove(i);
            }
        }
        if let Some(c) = running.values().next() {
            current = c.clone();
        }
        if stopped_at.is_none() && crate::interrupt::requested() {
            stopped_at = Some(current.clone());
        }
        progress(p);
    };
    let chosen = crate::select::search(
        &hp,
        &space,
        budget,
        train::Data {
            x: xt.view(),
            c: ct.view(),
        },
        train::Data {
            x: xv.view(),
            c: cv.view(),
        },
        x_std.log_jacobian(),
        &mut watch,
    );
    if crate::interrupt::requested() && stopped_at.is_none() {
        stopped_at = Some(current);
    }
    let chosen = match chosen {
        Err(e) if stopped_at.is_some() => {
            return Err(Error::Interrupted(format!(
                "no model was trained far enough to keep ({e}); nothing written"
            )));
        }
        other => other?,
    };
    let table = crate::select::table(&chosen);
    let arch = chosen.arch;
    let winner = chosen.trials[chosen.winner].clone();
    let fitted = chosen.fitted;
    let model = TrainedModel {
        params: fitted.params,
        stats: fitted.stats,
        x_std,
        c_std,
        columns: tr.x_names.iter().chain(&tr.c_names).cloned().collect(),
    };
    // The threshold comes from maf-core's own log densities of the validation rows,
    // so the device flags the intended fraction of them.
    let probe = model.to_blob(None, "")?;
    let aligned = maf_core::blob::AlignedBlob::new(&probe);
    let view = load_view(&aligned, "the fitted model")?;
    let lps = core_log_probs(&view, &va.x, &va.c, &a.data)?;
    let q = metrics::quantile(&lps, hp.anomaly_quantile);
    let threshold = q.is_finite().then_some(q as f32);
    // The window threshold, from the same log densities in the device's f32,
    // taken in row order (a time series).
    let lps32: Vec<Option<f32>> = lps
        .iter()
        .map(|&v| v.is_finite().then_some(v as f32))
        .collect();
    let calibration = crate::windows::calibrate(&lps32, a.window, a.false_alarm_rate)?;
    let mut meta = String::new();
    let _ = writeln!(meta, "trainer=maf-train {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(meta, "data={}", file_name(&a.data));
    let _ = writeln!(meta, "valid={valid_desc}");
    let _ = writeln!(meta, "train_rows={}", tr.x.nrows());
    let _ = writeln!(meta, "valid_rows={}", va.x.nrows());
    let _ = writeln!(meta, "epochs={}", fitted.epochs);
    let _ = writeln!(meta, "best_epoch={}", fitted.best_epoch);
    let _ = writeln!(meta, "valid_log_likelihood={:.6}", winner.valid_ll);
    let _ = writeln!(meta, "recoveries={}", fitted.recoveries);
    let interrupted = stopped_at.map(|(during, epoch)| {
        let kept = if fitted.epochs == 0 {
            format!("kept {} (fitted by EM)", winner.label)
        } else {
            format!(
                "kept {}, best epoch {} of {}",
                winner.label, fitted.best_epoch, fitted.epochs
            )
        };
        if epoch == 0 {
            format!("during {during}; {kept}")
        } else {
            format!("at epoch {epoch} of {during}; {kept}")
        }
    });
    if let Some(i) = &interrupted {
        let _ = writeln!(meta, "interrupted={i}");
    }
    let _ = writeln!(meta, "{}={}", crate::windows::RATE_KEY, calibration.rate);
    let _ = writeln!(meta, "{}", calibration.metadata_line());
    let _ = writeln!(meta, "model={}", winner.label);
    let _ = writeln!(
        meta,
        "search={} candidates, chosen by validation log-likelihood within {} instructions \
         and {} bytes",
        chosen.trials.len(),
        a.max_instructions,
        a.max_blob_bytes
    );
    let _ = writeln!(
        meta,
        "settings=layers={} hidden={} hidden_layers={} components={} batch_size={} \
         learning_rate={} weight_decay={} max_epochs={} patience={} seed={} batch_norm={} \
         activation={:?} clip_norm={} anomaly_quantile={}",
        arch.layers,
        arch.hidden,
        arch.hidden_layers,
        arch.components(),
        batch_size,
        hp.learning_rate,
        hp.weight_decay,
        hp.max_epochs,
        hp.patience,
        hp.seed,
        arch.batch_norm,
        arch.activation,
        a.clip_norm,
        hp.anomaly_quantile
    );
    for t in &chosen.trials {
        let line = format!(
            "tried={} | valid {:.6} | {} instructions | {}\n",
            t.label, t.valid_ll, t.instructions, t.status
        );
        if meta.len() + line.len() + 200 < maf_core::blob::MAX_METADATA {
            meta.push_str(&line);
        }
    }
    let cols = format!(
        "columns={}\ncontext_columns={}\n",
        tr.x_names.join(","),
        tr.c_names.join(",")
    );
    if meta.len() + cols.len() <= maf_core::blob::MAX_METADATA {
        meta.push_str(&cols);
    }
    let blob = model.to_blob_with_window(threshold, calibration.window, &meta)?;
    let summary = format!(
        "{}, {} epochs (best {}), validation log-likelihood {:.4}, threshold {}, \
         {} bytes, about {} instructions per log density; search {:.1} s; {}",
        winner.label,
        fitted.epochs,
        fitted.best_epoch,
        winner.valid_ll,
        threshold.map_or("none".to_string(), |t| t.to_string()),
        blob.len(),
        winner.instructions,
        chosen.elapsed.as_secs_f64(),
        calibration.describe()
    );
    Ok(FitOutput {
        blob,
        summary,
        table,
        interrupted,
    })
}

/// The search space the flags leave open: a flag fixes its choice, every other
/// one is searched.
fn search_space(a: &FitArgs, columns: usize) -> Result<crate::select::Space> {
    use crate::select::{DEFAULT_COMPONENTS, DEFAULT_FLOWS};
    let _ = columns;
    if a.components == Some(0) && a.layers == Some(0) {
        return Err(Error::InvalidParam {
            name: "layers",
            message: "0 MADEs needs a mixture base (--components 1 or more)".into(),
        });
    }
    if let Some(k) = a.components
        && k > maf_core::base::MAX_COMPONENTS
    {
        return Err(Error::InvalidParam {
            name: "components",
            message: format!("{k} is not in 0..=64"),
        });
    }
    if a.hidden == Some(0) || a.hidden.is_some_and(|h| h > 1024) {
        return Err(Error::InvalidParam {
            name: "hidden",
            message: format!("{} is not in 1..=1024", a.hidden.unwrap_or(0)),
        });
    }
    if !(a.time_budget.is_finite() && a.time_budget > 0.0) {
        return Err(Error::InvalidParam {
            name: "time-budget",
            message: format!("{} is not a positive number of seconds", a.time_budget),
        });
    }
    let components = match a.components {
        Some(k) => vec![k],
        None => DEFAULT_COMPONENTS.to_vec(),
    };
    let covariances = match a.covariance {
        Some(c) => vec![c.into()],
        None => vec![maf_core::Covariance::Full, maf_core::Covariance::Diagonal],
    };
    let flows = match (a.layers, a.hidden) {
        (Some(l), Some(h)) => vec![(l, h)],
        (Some(0), None) => vec![(0, 1)],
        (Some(l), None) => vec![(l, if l <= 2 { 32 } else { 64 })],
        (None, Some(h)) => DEFAULT_FLOWS.iter().map(|&(l, _)| (l, h)).collect(),
        (None, None) => DEFAULT_FLOWS.to_vec(),
    };
    let activations = match a.activation {
        Some(x) => vec![x.into()],
        // tanh only by default: measured, ReLU flows picked on validation gave
        // catastrophic log densities (down to -1e26) to healthy test rows outside
        // the training range (docs/model.md, "Model search").
        None => vec![Activation::Tanh],
    };
    Ok(crate::select::Space {
        components: if a.components == Some(0) {
            Vec::new()
        } else {
            components
        },
        covariances,
        flows,
        activations,
        hidden_layers: a.hidden_layers,
        batch_norm: !a.no_batch_norm,
        normal_base_flows: a.components.is_none(),
        averaged_mixtures: a.components.is_none(),
    })
}
