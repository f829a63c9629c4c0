//! The `maf-train` command line: `fit`, `eval`, `score`, `sample`, `inspect`,
//! `bench`, `report`, `plot`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::{self, Standardizer};
use crate::error::{Error, Result};
use crate::export::TrainedModel;
use crate::hyper::{BatchSize, DEFAULT_ANOMALY_QUANTILE, FitParams};
use crate::metrics;
use crate::model::Activation;
use crate::train;

/// Train Masked Autoregressive Flows on sensor data and export weight blobs that
/// `maf-core` evaluates on a microcontroller.
///
/// Data files are headered CSV files of numbers, one sensor vector per row, or
/// NumPy `.npy` files (recognised by the extension): a 2-D little-endian float32 or
/// float64 array in C order, one sensor vector per row, whose columns are named
/// x0, x1, ... by position.
#[derive(Debug, Parser)]
#[command(name = "maf-train", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit a MAF to training data and write its weight blob.
    Fit(FitArgs),
    /// Mean test log-likelihood (± 2 standard errors); with labels, AUROC and AUPRC.
    Eval(EvalArgs),
    /// Log density of every row (with maf-core, bit-identical to the device) and
    /// the anomaly flag.
    Score(ScoreArgs),
    /// Draw samples from a model.
    Sample(SampleArgs),
    /// Shapes, size, RAM and compute cost of a model blob.
    Inspect(InspectArgs),
    /// Measure training speed (rows per second) on synthetic data.
    Bench(BenchArgs),
    /// Result table of a scored test set, host vs device parity, and plots.
    ///
    /// Reads the host scores (`maf-train score`), the labels and, optionally, the
    /// device's scores and log (the firmware's standard output and error), and
    /// prints: test log-likelihood (normal vectors and all, ± 2 standard errors),
    /// AUROC and AUPRC of the anomaly score -log p(x), confusion counts at the
    /// model's stored threshold, the device's instructions per inference (from its
    /// `summary:` line), and whether the device's scores equal the host's bit for
    /// bit (every row's log_prob as f32 bits, and its flag). With --plot-dir, also
    /// writes `log_density.svg` (normal vs anomalous log densities, threshold
    /// marked) and `roc.svg` (ROC curve, operating point at the threshold).
    ///
    /// Exits with status 1 if device scores were given and differ from the host's.
    /// `scripts/demo.sh` runs the whole pipeline and ends with this table.
    Report(crate::report::ReportArgs),
    /// Plots of a two-dimensional model: density heat map and base space.
    ///
    /// Writes into --out-dir `density.svg`, the model's density p(x) as a heat map
    /// over the data's range with the data points on top, and `base_space.svg`, the
    /// data mapped to the base space u = f^-1(x) (maf-core's inverse pass) with the
    /// circles r = 1, 2, 3 of the standard normal it should follow and the fraction
    /// of points inside each (Figure 1 of Papamakarios et al. 2017). Models with
    /// D != 2 or context columns are refused. `scripts/figure1.sh` makes a 2-D
    /// example: the paper's Figure 1 data, a one-layer MADE and a 5-layer MAF.
    Plot(crate::plot::PlotArgs),
    /// Write the Figure 1 data set of the MAF paper (x2 ~ N(0, 2²), x1 ~ N(x2²/4, 1))
    /// as a CSV, seeded (used by scripts/figure1.sh).
    #[command(hide = true)]
    Figure1Data(crate::plot::Figure1Args),
}

/// Hidden activation on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    /// max(0, a), the paper's choice.
    Relu,
    /// tanh(a).
    Tanh,
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Self {
        match a {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Tanh => Activation::Tanh,
        }
    }
}

/// Covariance of the mixture components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CovarianceArg {
    /// Full covariance matrices: D (D + 1) / 2 values per component.
    Full,
    /// Diagonal covariances: D values per component.
    Diag,
}

impl From<CovarianceArg> for maf_core::Covariance {
    fn from(c: CovarianceArg) -> Self {
        match c {
            CovarianceArg::Full => maf_core::Covariance::Full,
            CovarianceArg::Diag => maf_core::Covariance::Diagonal,
        }
    }
}

/// `maf-train fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Training data (headered CSV, or a 2-D .npy array whose columns are x0, x1,
    /// ...; every column is a feature except --context-columns).
    #[arg(long, value_name = "TRAIN.csv")]
    pub data: PathBuf,
    /// Validation data for early stopping and the anomaly threshold (same columns;
    /// a .npy file on either side is matched by column position). Without it, a
    /// seeded 10% of the training rows is held out.
    #[arg(long, value_name = "VALID.csv")]
    pub valid: Option<PathBuf>,
    /// Where to write the model blob (written atomically).
    #[arg(long, value_name = "MODEL.maf")]
    pub out: PathBuf,
    /// Number of stacked MADEs (0..=32; 0 = the Gaussian mixture alone). Default:
    /// chosen by the search (2 and 5 are tried), like every shape setting left out.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden units per hidden layer (1..=1024). Default: chosen by the search (32
    /// with 2 MADEs, 64 with 5).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Hidden layers per MADE (1 or 2).
    #[arg(long, default_value_t = 1)]
    pub hidden_layers: usize,
    /// Mixture components of the base density (1..=64), or 0 for the standard
    /// normal base of the classic MAF. Default: chosen by the search among 1, 2,
    /// 4, 8, 16 and 32 (and the standard normal).
    #[arg(long)]
    pub components: Option<usize>,
    /// Covariance of the mixture components. Default: chosen by the search.
    #[arg(long, value_enum)]
    pub covariance: Option<CovarianceArg>,
    /// Device budget: most Cortex-M4F instructions per log density (the estimate
    /// `maf-train inspect` prints). The default, 16,000, is 0.1 ms on a 160 MHz
    /// Cortex-M4F. Candidates over it are not trained, unless the flags leave
    /// only one.
    #[arg(long, default_value_t = 16_000)]
    pub max_instructions: usize,
    /// Device budget: most blob bytes. The default, 131,072 (128 KiB), leaves half
    /// of a 256 KiB flash to the firmware.
    #[arg(long, default_value_t = 131_072)]
    pub max_blob_bytes: usize,
    /// Wall-time budget of the whole model search, in seconds. When it runs out
    /// the candidate in training stops at its best epoch so far, the rest are
    /// skipped, and the best so far is kept.
    #[arg(long, default_value_t = 480.0)]
    pub time_budget: f64,
    /// Minibatch size in rows, or `auto`: about 100 minibatches per epoch, within
    /// 100..=256 rows (100 up to 10,000 training rows, 256 from 25,600). Small
    /// sets keep the gradient noise of small batches; large ones get steadier
    /// gradients and batch-norm statistics (measured, see docs/model.md).
    #[arg(long, default_value_t = BatchSize::Auto, value_name = "ROWS|auto")]
    pub batch_size: BatchSize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3, allow_negative_numbers = true)]
    pub learning_rate: f64,
    /// L2 penalty on every weight matrix.
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Upper bound on training epochs (early stopping usually ends sooner).
    #[arg(long, default_value_t = 1000)]
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation log-likelihood
    /// (the best epoch's weights are kept).
    #[arg(long, default_value_t = 60)]
    pub patience: usize,
    /// Seed for initialisation, hold-out split and shuffling: same seed and data
    /// give a byte-identical blob (unless the --time-budget cut the search short,
    /// which the metadata and the table then say).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave out the batch-norm layer after every MADE of a flow on the standard
    /// normal base (flows on a mixture have none: they start as the identity).
    #[arg(long)]
    pub no_batch_norm: bool,
    /// Hidden activation of the flow. Default: tanh, whose bounded units keep the
    /// log scales bounded far from the data (relu costs about half the device
    /// instructions, but its log scales grow without bound outside the training
    /// range: measured, see docs/model.md).
    #[arg(long, value_enum)]
    pub activation: Option<ActivationArg>,
    /// Columns that are context (conditioning) inputs, not modelled features:
    /// a conditional MAF p(x | context). For .npy data, name them x3 or give the
    /// 0-based column index 3.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub context_columns: Vec<String>,
    /// Quantile of the validation log densities stored as the anomaly threshold
    /// (about this fraction of normal vectors will be flagged).
    #[arg(long, default_value_t = DEFAULT_ANOMALY_QUANTILE, allow_negative_numbers = true)]
    pub anomaly_quantile: f64,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    pub clip_norm: f64,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `maf-train eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model blob.
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Test data (same columns as the training data; CSV, or .npy with the model's
    /// columns by position).
    #[arg(long, value_name = "TEST.csv")]
    pub data: PathBuf,
    /// Labels: a CSV with an `anomaly` column of 0/1, row for row with --data.
    #[arg(long, value_name = "LABELS.csv")]
    pub labels: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `maf-train score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model blob.
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Data to score (same columns as the training data; CSV, or .npy with the
    /// model's columns by position).
    #[arg(long, value_name = "X.csv")]
    pub data: PathBuf,
    /// Output CSV (`log_prob,anomaly`); standard output if absent.
    #[arg(long, value_name = "SCORES.csv")]
    pub out: Option<PathBuf>,
}

/// `maf-train sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Model blob.
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(long)]
    pub count: usize,
    /// Seed of the base-distribution draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV; standard output if absent.
    #[arg(long, value_name = "SAMPLES.csv")]
    pub out: Option<PathBuf>,
    /// Context for a conditional model: a CSV with the context columns (or a .npy
    /// array of them, by position), one row (used for every sample) or --count
    /// rows.
    #[arg(long, value_name = "CONTEXT.csv")]
    pub context: Option<PathBuf>,
}

/// `maf-train inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Model blob.
    #[arg(value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `maf-train bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Data dimension.
    #[arg(long, default_value_t = 8)]
    pub dim: usize,
    /// Number of MADEs.
    #[arg(long, default_value_t = 5)]
    pub layers: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Synthetic training rows per epoch.
    #[arg(long, default_value_t = 51_200)]
    pub rows: usize,
    /// Epochs to time.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
}

/// Runs a parsed command line.
///
/// # Errors
/// Any [`Error`]; the binary prints it as one line and exits with status 1.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fit(a) => fit(&a),
        Command::Eval(a) => eval(&a),
        Command::Score(a) => score(&a),
        Command::Sample(a) => sample(&a),
        Command::Inspect(a) => inspect(&a),
        Command::Bench(a) => bench(&a),
        Command::Report(a) => crate::report::run(&a),
        Command::Plot(a) => crate::plot::run(&a),
        Command::Figure1Data(a) => {
            write_output(a.out.as_deref(), &crate::plot::figure1_csv(a.rows, a.seed))
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// renamed over `path` only once completely written, so no failure leaves a
/// half-written file.
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".maf-train-").suffix(".tmp");
    // An ordinary file's mode (subject to the umask), not a temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| folder_error(path, dir, &e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

pub(crate) fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => write_atomic(p, text.as_bytes()),
        None => {
            let mut so = std::io::stdout().lock();
            so.write_all(text.as_bytes())
                .and_then(|()| so.flush())
                .map_err(|e| Error::io("<stdout>", e))
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Fits a model as `maf-train fit` does and returns the blob bytes and a summary
/// (no file written). `progress` receives every epoch report.
///
/// # Errors
/// Bad settings, bad data, divergence.
pub fn fit_blob(
    a: &FitArgs,
    progress: &mut dyn FnMut(crate::select::Progress<'_>),
) -> Result<(Vec<u8>, String, String)> {
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
    };
    let (xt, ct) = (x_std.apply::<f32>(&tr.x), c_std.apply::<f32>(&tr.c));
    let (xv, cv) = (x_std.apply::<f32>(&va.x), c_std.apply::<f32>(&va.c));
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
        progress,
    )?;
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
    let blob = model.to_blob(threshold, &meta)?;
    let summary = format!(
        "{}, {} epochs (best {}), validation log-likelihood {:.4}, threshold {}, \
         {} bytes, about {} instructions per log density; search {:.1} s",
        winner.label,
        fitted.epochs,
        fitted.best_epoch,
        winner.valid_ll,
        threshold.map_or("none".to_string(), |t| t.to_string()),
        blob.len(),
        winner.instructions,
        chosen.elapsed.as_secs_f64()
    );
    Ok((blob, summary, table))
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

fn fit(a: &FitArgs) -> Result<()> {
    use crate::select::Progress;
    let tty = std::io::stderr().is_terminal();
    let bar = (!a.quiet && tty).then(|| {
        let pb = indicatif::ProgressBar::new(a.max_epochs as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed:>4} {prefix} [{bar:20}] epoch {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    });
    let quiet = a.quiet;
    let patience = a.patience;
    let mut current = String::new();
    let mut progress = |p: Progress<'_>| match p {
        Progress::Start(i, n, label) => {
            current = format!("[{i}/{n}] {label}");
            if let Some(pb) = &bar {
                pb.set_prefix(current.clone());
                pb.set_position(0);
                pb.set_message("");
            } else if !quiet {
                eprintln!("{current} ...");
            }
        }
        Progress::Epoch(r) => {
            let line = format!(
                "training loss {:.4} (nats per row, standardised)  validation \
                 log-likelihood {:.4} (raw units), best {:.4} at epoch {}",
                r.train_loss, r.valid_ll, r.best_ll, r.best_epoch
            );
            if let Some(pb) = &bar {
                // The run ends at the latest `patience` epochs after the best one.
                let bound = (r.best_epoch + patience).max(r.epoch).min(r.max_epochs);
                pb.set_length(bound as u64);
                pb.set_position(r.epoch as u64);
                pb.set_message(line);
                if let Some(m) = &r.recovered {
                    pb.println(format!("warning: {m}"));
                }
            } else if !quiet {
                if let Some(m) = &r.recovered {
                    eprintln!("warning: {m}");
                }
                if r.epoch.is_multiple_of(25) {
                    eprintln!("  epoch {}: {line}", r.epoch);
                }
            }
        }
        Progress::Done(t) => {
            let ll = if t.valid_ll.is_finite() {
                format!("validation log-likelihood {:.4}", t.valid_ll)
            } else {
                "no score".into()
            };
            let line = format!("{current}: {ll}, {} ({:.1} s)", t.status, t.seconds);
            if let Some(pb) = &bar {
                pb.println(line);
            } else if !quiet {
                eprintln!("{line}");
            }
        }
    };
    let result = fit_blob(a, &mut progress);
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    let (blob, summary, table) = result?;
    write_atomic(&a.out, &blob)?;
    // (`fit_blob` checked the output path before any work.)
    if !a.quiet {
        eprintln!(
            "model search (* = chosen; valid LL = validation log-likelihood, raw units, the lowest anomaly-quantile of the rows left out; a flow must beat the best mixture by more than 2 SE of the paired difference):"
        );
        eprint!("{table}");
        eprintln!("wrote {}: {summary}", a.out.display());
    }
    Ok(())
}

/// Refuses, before any work, an output path that is (or links to) one of the
/// command's inputs, and one whose folder is missing or not writable (a probe
/// file is created and removed there).
///
/// # Errors
/// [`Error::InvalidParam`] for an output that is an input, [`Error::Io`] naming
/// `out` for a folder that cannot take it.
pub fn check_output(out: &Path, inputs: &[&Path]) -> Result<()> {
    if let Ok(target) = std::fs::canonicalize(out) {
        for input in inputs {
            if std::fs::canonicalize(input).is_ok_and(|i| i == target) {
                return Err(Error::InvalidParam {
                    name: "out",
                    message: format!(
                        "{} is also an input of this command ({}); it would be destroyed",
                        out.display(),
                        input.display()
                    ),
                });
            }
        }
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".maf-train-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| folder_error(out, dir, &e))
}

/// An I/O error creating a file in `dir` for `out`, naming the user's path and
/// folder, not the temporary file's.
fn folder_error(out: &Path, dir: &Path, e: &std::io::Error) -> Error {
    let kind = e.kind();
    let why = if kind == std::io::ErrorKind::NotFound {
        "does not exist".to_string()
    } else {
        format!("cannot take a new file ({kind})")
    };
    Error::io(
        out,
        std::io::Error::new(kind, format!("the folder {} {why}", dir.display())),
    )
}

/// Reads a model blob from a file into 4-aligned memory.
///
/// # Errors
/// [`Error::Io`], [`Error::Model`] if `maf-core` refuses the blob.
pub fn read_model(path: &Path) -> Result<maf_core::blob::AlignedBlob> {
    use std::io::Read as _;
    let limit = maf_core::blob::MAX_BLOB_BYTES;
    let refuse = |why: String| Error::Model {
        context: path.display().to_string(),
        message: why,
    };
    // Only a regular file (a link to one is fine), and no more bytes than the
    // largest blob the format allows: a device, a FIFO or /dev/zero is refused at
    // once instead of read without end.
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file (a model is read only from a file)".into(),
        ));
    }
    if meta.len() > limit as u64 {
        return Err(refuse(format!(
            "{} bytes, larger than any blob the format allows ({limit} bytes)",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() > limit {
        return Err(refuse(format!(
            "larger than any blob the format allows ({limit} bytes)"
        )));
    }
    let aligned = maf_core::blob::AlignedBlob::new(&bytes);
    load_view(&aligned, &path.display().to_string())?;
    Ok(aligned)
}

pub(crate) fn load_view<'a>(
    blob: &'a maf_core::blob::AlignedBlob,
    what: &str,
) -> Result<maf_core::MafView<'a>> {
    maf_core::MafView::from_blob(blob.as_bytes()).map_err(|e| Error::Model {
        context: what.to_string(),
        message: format!("not a valid maf model: {e}"),
    })
}

/// `key=value` lookup in blob metadata.
fn meta_value<'a>(meta: &'a str, key: &str) -> Option<&'a str> {
    meta.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn names(list: &str) -> Vec<String> {
    if list.is_empty() {
        Vec::new()
    } else {
        list.split(',').map(str::to_string).collect()
    }
}

/// Splits a data file into the model's features and context, checking its header
/// against the column names stored in the model (or, for a blob without them,
/// the column count, context columns last).
pub(crate) fn model_split(
    view: &maf_core::MafView<'_>,
    table: &data::Table,
) -> Result<data::Split> {
    let shape = view.shape();
    let meta = view.header().metadata;
    if let (Some(cols), Some(ctx)) = (
        meta_value(meta, "columns"),
        meta_value(meta, "context_columns"),
    ) {
        let (x_names, c_names) = (names(cols), names(ctx));
        let mut expected: Vec<&String> = x_names.iter().chain(&c_names).collect();
        let mut found: Vec<&String> = table.header.iter().collect();
        expected.sort();
        found.sort();
        if expected != found && found.len() == expected.len() {
            let n = found.len();
            let positional: Vec<String> = (0..n).map(|j| format!("x{j}")).collect();
            let mut sorted_positional: Vec<&String> = positional.iter().collect();
            sorted_positional.sort();
            if expected == sorted_positional {
                // A model fitted on a .npy array (columns x0, x1, ... by position):
                // a CSV's columns are taken by position too.
                let mut named = table.clone();
                named.header = positional;
                return named.split(&c_names);
            }
            if table.positional {
                // A .npy array for a model fitted on named (CSV) columns: its
                // columns are the model's features, in the model's order, then its
                // context columns.
                let mut named = table.clone();
                named.header = x_names.iter().chain(&c_names).cloned().collect();
                return named.split(&c_names);
            }
        }
        if expected != found {
            return Err(Error::ColumnMismatch {
                path: table.path.clone(),
                message: format!(
                    "columns {} do not match the model's ({}{}{})",
                    table.header.join(","),
                    x_names.join(","),
                    if c_names.is_empty() { "" } else { "; context " },
                    c_names.join(",")
                ),
            });
        }
        let s = table.split(&c_names)?;
        if s.x_names != x_names {
            return Err(Error::ColumnMismatch {
                path: table.path.clone(),
                message: format!(
                    "feature columns are in the order {}, the model's are {}",
                    s.x_names.join(","),
                    x_names.join(",")
                ),
            });
        }
        return Ok(s);
    }
    let cols = table.header.len();
    if cols != shape.dim + shape.context {
        return Err(Error::ColumnMismatch {
            path: table.path.clone(),
            message: format!(
                "{cols} columns, the model needs {} features + {} context columns",
                shape.dim, shape.context
            ),
        });
    }
    let ctx: Vec<String> = table.header[shape.dim..].to_vec();
    table.split(&ctx)
}

/// Log density of every row with `maf-core`; a row whose result overflows `f32`
/// gives `-inf`.
fn core_log_probs(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<f64>> {
    Ok(core_log_probs_f32(view, x, c, path)?
        .into_iter()
        .map(|v| v.map_or(f64::NEG_INFINITY, f64::from))
        .collect())
}

fn core_log_probs_f32(
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    c: &Array2<f64>,
    path: &Path,
) -> Result<Vec<Option<f32>>> {
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let mut out = Vec::with_capacity(x.nrows());
    let (mut xr, mut cr) = (Vec::new(), Vec::new());
    for r in 0..x.nrows() {
        xr.clear();
        cr.clear();
        xr.extend(x.row(r).iter().map(|&v| v as f32));
        cr.extend(c.row(r).iter().map(|&v| v as f32));
        match view.log_prob(&xr, &cr, &mut scratch) {
            Ok(v) => out.push(Some(v)),
            Err(maf_core::Error::Overflow) => out.push(None),
            Err(e) => {
                return Err(Error::Model {
                    context: format!("{}, data row {}", path.display(), r + 1),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

pub(crate) fn read_labels(path: &Path, rows: usize) -> Result<Vec<bool>> {
    let t = data::read_csv(path)?;
    let Some(j) = t.header.iter().position(|h| h == "anomaly") else {
        return Err(Error::ColumnMismatch {
            path: path.into(),
            message: format!("no `anomaly` column (header: {})", t.header.join(",")),
        });
    };
    if t.values.nrows() != rows {
        return Err(Error::ColumnMismatch {
            path: path.into(),
            message: format!(
                "{} label rows, but the data has {rows} rows",
                t.values.nrows()
            ),
        });
    }
    t.values
        .column(j)
        .iter()
        .enumerate()
        .map(|(r, &v)| match v {
            0.0 => Ok(false),
            1.0 => Ok(true),
            _ => Err(Error::NotANumber {
                path: path.into(),
                line: r + 2,
                column: j + 1,
                name: "anomaly".into(),
                value: format!("{v} (must be 0 or 1)"),
            }),
        })
        .collect()
}

fn json_num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn eval(a: &EvalArgs) -> Result<()> {
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let table = data::read_data(&a.data)?;
    let split = model_split(&view, &table)?;
    let lps = core_log_probs(&view, &split.x, &split.c, &a.data)?;
    let rows = lps.len();
    let overflow = lps.iter().filter(|v| !v.is_finite()).count();
    let (mean, two_se) = metrics::mean_two_se(&lps);
    let mut obj = serde_json::json!({
        "rows": rows,
        "mean_log_prob": json_num(mean),
        "two_se": json_num(two_se),
        "overflow_rows": overflow,
        "threshold": view.threshold().map(|t| json_num(f64::from(t))),
    });
    let mut text = format!("rows {rows}\nmean log-likelihood {mean:.4} ± {two_se:.4} (2 SE)\n");
    if overflow > 0 {
        let _ = writeln!(
            text,
            "rows whose log density overflows f32 (counted as -inf): {overflow}"
        );
    }
    if let Some(lp) = &a.labels {
        let labels = read_labels(lp, rows)?;
        let normal: Vec<f64> = lps
            .iter()
            .zip(&labels)
            .filter(|(_, l)| !**l)
            .map(|(v, _)| *v)
            .collect();
        let (nm, nse) = metrics::mean_two_se(&normal);
        let scores: Vec<f64> = lps.iter().map(|v| -v).collect();
        let auroc = metrics::auroc(&scores, &labels);
        let auprc = metrics::auprc(&scores, &labels);
        obj["normal_rows"] = normal.len().into();
        obj["anomaly_rows"] = (rows - normal.len()).into();
        obj["normal_mean_log_prob"] = json_num(nm);
        obj["normal_two_se"] = json_num(nse);
        obj["auroc"] = auroc.map_or(serde_json::Value::Null, json_num);
        obj["auprc"] = auprc.map_or(serde_json::Value::Null, json_num);
        let _ = writeln!(
            text,
            "normal rows {}: mean log-likelihood {nm:.4} ± {nse:.4} (2 SE)",
            normal.len()
        );
        let fmt =
            |v: Option<f64>| v.map_or("n/a (one class only)".to_string(), |v| format!("{v:.5}"));
        let _ = writeln!(
            text,
            "AUROC {}  AUPRC {}  (score -log p)",
            fmt(auroc),
            fmt(auprc)
        );
        if let Some(t) = view.threshold() {
            let flagged: Vec<bool> = lps.iter().map(|&v| v < f64::from(t)).collect();
            let c = metrics::Confusion::new(&flagged, &labels);
            obj["tp"] = c.tp.into();
            obj["fp"] = c.fp.into();
            obj["tn"] = c.tn.into();
            obj["fn"] = c.fn_.into();
            let _ = writeln!(
                text,
                "at threshold {t}: tp {} fp {} tn {} fn {}",
                c.tp, c.fp, c.tn, c.fn_
            );
        }
    }
    if a.json {
        text = format!("{obj}\n");
    }
    write_output(None, &text)
}

fn score(a: &ScoreArgs) -> Result<()> {
    if let Some(out) = &a.out {
        check_output(out, &[&a.model, &a.data])?;
    }
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let table = data::read_data(&a.data)?;
    let split = model_split(&view, &table)?;
    let lps = core_log_probs_f32(&view, &split.x, &split.c, &a.data)?;
    let mut out = String::with_capacity(16 * lps.len() + 20);
    out.push_str("log_prob,anomaly\n");
    for lp in lps {
        match lp {
            Some(v) => {
                let _ = writeln!(out, "{v},{}", u8::from(view.is_anomaly(v)));
            }
            None => out.push_str("-inf,1\n"),
        }
    }
    write_output(a.out.as_deref(), &out)
}

fn sample(a: &SampleArgs) -> Result<()> {
    if let Some(out) = &a.out {
        let mut inputs = vec![a.model.as_path()];
        inputs.extend(a.context.as_deref());
        check_output(out, &inputs)?;
    }
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let shape = view.shape();
    let meta = view.header().metadata;
    let x_names = meta_value(meta, "columns")
        .map(names)
        .filter(|n| n.len() == shape.dim)
        .unwrap_or_else(|| (0..shape.dim).map(|i| format!("x{i}")).collect());
    let ctx: Array2<f64> = match (&a.context, shape.context) {
        (None, 0) => Array2::zeros((1, 0)),
        (None, c) => {
            return Err(Error::InvalidParam {
                name: "context",
                message: format!("the model is conditional on {c} context columns: give --context"),
            });
        }
        (Some(p), 0) => {
            return Err(Error::InvalidParam {
                name: "context",
                message: format!("the model is unconditional; {} is not used", p.display()),
            });
        }
        (Some(p), c) => {
            let t = data::read_data(p)?;
            let want = meta_value(meta, "context_columns").map(names);
            let vals = match want {
                Some(w) if w.len() == c && !t.positional => {
                    let mut idx = Vec::with_capacity(c);
                    for name in &w {
                        match t.header.iter().position(|h| h == name) {
                            Some(i) if t.header.len() == c => idx.push(i),
                            _ => {
                                return Err(Error::ColumnMismatch {
                                    path: p.clone(),
                                    message: format!(
                                        "columns {} are not the model's context columns ({})",
                                        t.header.join(","),
                                        w.join(",")
                                    ),
                                });
                            }
                        }
                    }
                    t.values.select(Axis(1), &idx)
                }
                _ if t.header.len() == c => t.values.clone(),
                _ => {
                    return Err(Error::ColumnMismatch {
                        path: p.clone(),
                        message: format!(
                            "{} columns, the model has {c} context columns",
                            t.header.len()
                        ),
                    });
                }
            };
            if vals.nrows() != 1 && vals.nrows() != a.count {
                return Err(Error::ColumnMismatch {
                    path: p.clone(),
                    message: format!(
                        "{} rows: give one row or --count ({}) rows",
                        vals.nrows(),
                        a.count
                    ),
                });
            }
            vals
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let mut scratch = vec![0.0f32; shape.scratch_len()];
    let mut eps = vec![0.0f32; shape.dim];
    let mut u = vec![0.0f32; shape.dim];
    let mut x = vec![0.0f32; shape.dim];
    let mut out = x_names.join(",");
    out.push('\n');
    for i in 0..a.count {
        for v in &mut eps {
            *v = StandardNormal.sample(&mut rng);
        }
        // The standard normal base uses eps as it is (the same draws as before
        // mixture bases existed); a mixture also draws its component.
        let choice: f32 = if view.base() == maf_core::Base::StandardNormal {
            0.0
        } else {
            rand::Rng::r#gen(&mut rng)
        };
        view.draw_base(choice, &eps, &mut u)
            .map_err(|e| Error::Model {
                context: format!("sample {}", i + 1),
                message: e.to_string(),
            })?;
        let cr: Vec<f32> = ctx
            .row(if ctx.nrows() == 1 { 0 } else { i })
            .iter()
            .map(|&v| v as f32)
            .collect();
        view.sample(&u, &cr, &mut x, &mut scratch)
            .map_err(|e| Error::Model {
                context: format!("sample {}", i + 1),
                message: e.to_string(),
            })?;
        let line: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    write_output(a.out.as_deref(), &out)
}

fn inspect(a: &InspectArgs) -> Result<()> {
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let s = view.shape();
    let h = view.header();
    let act = match h.activation {
        maf_core::Activation::Relu => "relu",
        maf_core::Activation::Tanh => "tanh",
    };
    let base_name = match h.base {
        maf_core::Base::StandardNormal => "normal".to_string(),
        maf_core::Base::Mixture {
            covariance: maf_core::Covariance::Full,
            ..
        } => "mixture-full".to_string(),
        maf_core::Base::Mixture { .. } => "mixture-diag".to_string(),
    };
    let flow_macs = if s.layers == 0 { 0 } else { s.macs() };
    let macs = flow_macs + h.base.macs(s.dim);
    let train_act = match h.activation {
        maf_core::Activation::Relu => Activation::Relu,
        maf_core::Activation::Tanh => Activation::Tanh,
    };
    let instructions = crate::cost::instructions(s, train_act, h.base);
    let meta: serde_json::Map<String, serde_json::Value> = h
        .metadata
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let obj = serde_json::json!({
        "dim": s.dim,
        "context": s.context,
        "hidden": s.hidden,
        "hidden_layers": s.hidden_layers,
        "layers": s.layers,
        "batch_norm": s.batch_norm,
        "activation": act,
        "base": base_name,
        "components": h.base.components(),
        "format_version": view.version(),
        "columns": h.column_names().collect::<Vec<_>>(),
        "parameters": s.parameter_count() + h.base.weight_count(s.dim),
        "weights": h.weight_count(),
        "blob_bytes": view.blob_len(),
        "ram_bytes": s.ram_bytes(),
        "macs_per_log_prob": macs,
        "dense_macs_per_log_prob": s.dense_macs() + h.base.macs(s.dim),
        "estimated_instructions_cortex_m4f": instructions,
        "threshold": h.threshold.map(|t| json_num(f64::from(t))),
        "metadata": meta,
    });
    let text = if a.json {
        format!("{obj}\n")
    } else {
        let mut t = String::new();
        let _ = writeln!(t, "model        {}", a.model.display());
        let _ = writeln!(t, "format       version {}", view.version());
        let _ = writeln!(
            t,
            "shape        D={} C={} H={} K={} L={} batch_norm={} activation={act}",
            s.dim, s.context, s.hidden, s.hidden_layers, s.layers, s.batch_norm
        );
        let _ = writeln!(
            t,
            "base         {}",
            crate::cost::label(maf_core::Shape { layers: 0, ..s }, train_act, h.base)
        );
        if !h.columns.is_empty() {
            let names: Vec<&str> = h.column_names().collect();
            let _ = writeln!(t, "columns      {}", names.join(","));
        }
        let _ = writeln!(
            t,
            "parameters   {} (weights in blob {})",
            s.parameter_count() + h.base.weight_count(s.dim),
            h.weight_count()
        );
        let _ = writeln!(t, "blob         {} bytes", view.blob_len());
        let _ = writeln!(
            t,
            "RAM          {} bytes per inference (activations)",
            s.ram_bytes()
        );
        let _ = writeln!(
            t,
            "MACs         {} per log density ({} dense), {} of them the base's",
            macs,
            s.dense_macs() + h.base.macs(s.dim),
            h.base.macs(s.dim)
        );
        let _ = writeln!(
            t,
            "device       about {instructions} instructions per log density on a Cortex-M4F \
             (estimate, maf-train/src/cost.rs; ReLU counted with every unit active)"
        );
        let _ = writeln!(
            t,
            "threshold    {}",
            h.threshold.map_or("none".to_string(), |v| v.to_string())
        );
        for l in h.metadata.lines() {
            let _ = writeln!(t, "meta         {l}");
        }
        t
    };
    write_output(None, &text)
}

fn bench(a: &BenchArgs) -> Result<()> {
    let r = train::bench(a.dim, a.layers, a.hidden, a.batch_size, a.rows, a.epochs)?;
    let text = format!(
        "training D={} L={} H={} batch {} (one thread): {:.0} rows/s ({} rows in {:.3} s)\n",
        a.dim, a.layers, a.hidden, a.batch_size, r.rows_per_sec, r.rows, r.seconds
    );
    write_output(None, &text)
}
