//! The command line's types: the clap definitions of every subcommand and its
//! arguments, and nothing else (the commands themselves are in
//! [`crate::commands`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hyper::{BatchSize, DEFAULT_ANOMALY_QUANTILE};
use crate::model::Activation;

/// Train Masked Autoregressive Flows on sensor data and export weight blobs that
/// `maf-core` evaluates on a microcontroller.
///
/// Data files are headered CSV files of numbers, one sensor vector per row, or
/// NumPy `.npy` files (recognised by the extension): a 2-D little-endian float32 or
/// float64 array in C order, one sensor vector per row, whose columns are named
/// x0, x1, ... by position. The CSV dialect, column rules and exit statuses (1 bad
/// input, 2 usage, 130 interrupted) are in docs/data-format.md.
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
    /// Re-baseline a model's window threshold on healthy vectors from a new
    /// site, for the same false-alarm rate; writes a blob that differs only in
    /// its calibration.
    ///
    /// By default the threshold moves by the site's median window score minus
    /// the median stored at fit time (maf-core's `calibrator`, which the
    /// firmware runs at boot: the same bits), so a few hundred site vectors
    /// suffice for any rate. With --window or --false-alarm-rate it calibrates
    /// afresh on the site's rows instead (the rate quantile of their window
    /// scores).
    Recalibrate(RecalibrateArgs),
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
    Report(ReportArgs),
    /// Plots of a two-dimensional model: density heat map and base space.
    ///
    /// Writes into --out-dir `density.svg`, the model's density p(x) as a heat map
    /// over the data's range with the data points on top, and `base_space.svg`, the
    /// data mapped to the base space u = f^-1(x) (maf-core's inverse pass) with the
    /// circles r = 1, 2, 3 of the standard normal it should follow and the fraction
    /// of points inside each (Figure 1 of Papamakarios et al. 2017). Models with
    /// D != 2 or context columns are refused. `scripts/figure1.sh` makes a 2-D
    /// example: the paper's Figure 1 data, a one-layer MADE and a 5-layer MAF.
    Plot(PlotArgs),
    /// Write the Figure 1 data set of the MAF paper (x2 ~ N(0, 2²), x1 ~ N(x2²/4, 1))
    /// as a CSV, seeded (used by scripts/figure1.sh).
    #[command(hide = true)]
    Figure1Data(Figure1Args),
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
    /// ...; every column is a feature except --context-columns). Held in memory:
    /// about 60 bytes per cell (columns x rows) at the peak, measured (340 MB for
    /// 1,000,000 rows of 6 columns).
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
    /// Threads of the model search (0 = one per core). Candidates train at once,
    /// sharing the threads; a candidate left training alone (or the only one)
    /// splits its minibatches over all of them. The chosen model is the same for
    /// every count (each training gives the same bits on any number of threads);
    /// only what a spent time budget cuts can differ.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
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
    /// Detection window, in vectors (1..=65536): the device decides on the mean
    /// log density of the last N vectors (maf-core's `Detector`). The window
    /// threshold is calibrated on the validation rows taken as a time series
    /// (consecutive rows, as logged; give --valid for that, the default hold-out
    /// is a random sample of rows), and stored in the blob with its median for
    /// on-site re-baselining (`maf-train recalibrate`). 1 = per-vector decisions,
    /// the same threshold as --anomaly-quantile gives for the same rate.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub window: usize,
    /// Target false-alarm rate per decision of the window threshold: the
    /// fraction of healthy windows that raise an alarm. The fit prints a 95%
    /// interval of the rate the validation rows support.
    #[arg(long, default_value_t = DEFAULT_ANOMALY_QUANTILE, value_name = "P", allow_negative_numbers = true)]
    pub false_alarm_rate: f64,
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
    /// Test data (same columns as the training data, matched by name; CSV, or .npy
    /// with the model's columns by position). Streamed; 8 bytes per row are kept
    /// (its log density, for the mean and AUROC).
    #[arg(long, value_name = "TEST.csv")]
    pub data: PathBuf,
    /// Labels: a CSV with an `anomaly` column of 0 (normal) / 1 (anomaly), row for
    /// row with --data (read whole: 8 bytes per cell).
    #[arg(long, value_name = "LABELS.csv")]
    pub labels: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Window-level results for a detection window of N vectors (rows taken in
    /// file order, as logged): AUROC over windows whose N rows are all normal
    /// or all anomalous, the false-alarm rate on all-normal windows at the
    /// model's window threshold against its target, and the detection delay
    /// (rows from the first anomalous row of a run to the first alarm). Without
    /// --labels every row counts as normal. Default: the model's window when it
    /// was fitted with --window N > 1.
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
}

/// `maf-train recalibrate`.
#[derive(Debug, Args)]
pub struct RecalibrateArgs {
    /// Model blob (fitted with --window, or any model with --false-alarm-rate).
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Healthy vectors from the site (same columns as the training data), in
    /// the order they were logged.
    #[arg(long, value_name = "SITE.csv")]
    pub data: PathBuf,
    /// Where to write the recalibrated blob (atomically; it must not be an
    /// input).
    #[arg(long, value_name = "MODEL2.maf")]
    pub out: PathBuf,
    /// Use only the first M rows of --data (default: all).
    #[arg(long, value_name = "M")]
    pub rows: Option<usize>,
    /// Calibrate afresh for this window instead of re-baselining: the threshold
    /// becomes the --false-alarm-rate quantile of the site's window scores
    /// (needs many healthy rows: at least 5 / P non-overlapping windows for a
    /// rate that is known to within a factor of about 2).
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
    /// Calibrate afresh for this false-alarm rate (with the model's window,
    /// or --window).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub false_alarm_rate: Option<f64>,
}

/// `maf-train score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model blob.
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Data to score (same columns as the training data, matched by name; CSV, or
    /// .npy with the model's columns by position). Streamed in chunks of 4096 rows:
    /// memory does not grow with the number of rows.
    #[arg(long, value_name = "X.csv")]
    pub data: PathBuf,
    /// Output CSV (`log_prob,anomaly`, and with a window
    /// `log_prob,anomaly,window_score,alarm`); standard output if absent.
    #[arg(long, value_name = "SCORES.csv")]
    pub out: Option<PathBuf>,
    /// Detection window in vectors: adds the columns `window_score` (the mean
    /// log density of the last N rows, empty while fewer than N rows were seen)
    /// and `alarm` (the device's decision, window score below the model's window
    /// threshold), row for row as the firmware decides. Default: the model's
    /// window when it was fitted with --window N > 1, else no window columns.
    /// N must be the model's window (recalibrate it for another).
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
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
    /// Output CSV (the sample's columns, then a conditional model's context
    /// columns), streamed; standard output if absent.
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
    /// Threads for training and for the batched log density (0 = every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Hidden activation of the trained model (tanh is fit's usual choice; relu
    /// compares with PyTorch MAFs such as zuko's on equal terms).
    #[arg(long, value_enum, default_value_t = ActivationArg::Tanh)]
    pub activation: ActivationArg,
}

/// `maf-train report` (see `maf-train report --help`).
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The model blob that scored the data (for its stored threshold).
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Labels: a CSV with an `anomaly` column of 0/1, row for row with the scores.
    #[arg(long, value_name = "LABELS.csv")]
    pub labels: PathBuf,
    /// Host scores, as written by `maf-train score --out`.
    #[arg(long, value_name = "HOST.csv")]
    pub host_scores: PathBuf,
    /// Device scores: the firmware's standard output (same `log_prob,anomaly`
    /// format). When given, every row must equal the host's bit for bit, or the
    /// command fails.
    #[arg(long, value_name = "DEVICE.csv")]
    pub device_scores: Option<PathBuf>,
    /// The firmware's standard error, for the instructions per inference on its
    /// `summary:` line.
    #[arg(long, value_name = "DEVICE.log")]
    pub device_log: Option<PathBuf>,
    /// Also write `log_density.svg` and `roc.svg` into this directory (created if
    /// missing); with a window, also `window_score.svg` and `window_roc.svg`.
    #[arg(long, value_name = "DIR")]
    pub plot_dir: Option<PathBuf>,
    /// Window length N for the window rows of the table (window AUROC,
    /// false-alarm rate against the target, detection delay) and the window
    /// plots, computed from the host log densities as `score --window N` does.
    /// Default: the model's window when it is longer than one vector (a model
    /// fitted with `--window 1` gets no window rows unless asked).
    #[arg(long, value_name = "N")]
    pub window: Option<usize>,
}

/// `maf-train plot` (see `maf-train plot --help`).
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A two-dimensional model blob (D=2, no context).
    #[arg(long, value_name = "MODEL.maf")]
    pub model: PathBuf,
    /// Data to draw (headered CSV with the model's two columns, or a .npy array
    /// of them), e.g. the training or test data.
    #[arg(long, value_name = "DATA.csv")]
    pub data: PathBuf,
    /// Directory for `density.svg` and `base_space.svg` (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// `maf-train figure1-data` (hidden): the Figure 1 data set as CSV.
#[derive(Debug, Args)]
pub struct Figure1Args {
    /// Number of rows.
    #[arg(long, default_value_t = 5000)]
    pub rows: usize,
    /// Seed of the generator (same seed, same file).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV; standard output if absent.
    #[arg(long, value_name = "OUT.csv")]
    pub out: Option<PathBuf>,
}
