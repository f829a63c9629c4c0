//! Packing a trained model into `maf-core`'s weight blob (`docs/blob-format.md`).

use ndarray::{Array1, Array2};

use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::model::{Activation, Arch, BN_EPS, BnStats, HALF_LN_2PI, Kind, Params, Real};

/// Everything a blob describes, in the trainer's form: the parameters, their
/// whole-training-set batch-norm statistics and the standardisations.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// Trained parameters.
    pub params: Params<f32>,
    /// Whole-training-set batch-norm statistics (empty without batch norm).
    pub stats: BnStats,
    /// Feature standardisation.
    pub x_std: Standardizer,
    /// Context standardisation (empty for an unconditional model).
    pub c_std: Standardizer,
    /// Column names, features then context columns (empty: unnamed).
    pub columns: Vec<String>,
}

/// The `maf-core` shape of an architecture.
pub fn core_shape(arch: &Arch) -> maf_core::Shape {
    maf_core::Shape {
        dim: arch.dim,
        context: arch.context,
        hidden: arch.hidden,
        hidden_layers: arch.hidden_layers,
        layers: arch.layers,
        batch_norm: arch.batch_norm,
    }
}

/// The base section of the blob (`docs/blob-format.md`): per component the log
/// normaliser `ln w_k + Σ ln W_jj - (D/2) ln 2π` (computed in `f64` from the
/// stored `f32` diagonal, so the loader's weight check sees consistent values),
/// the mean and the precision factor's rows.
fn pack_base(arch: &Arch, p: &Params<f32>) -> Vec<f32> {
    let d = arch.dim;
    let (Some((logits, means, factors)), maf_core::Base::Mixture { covariance, .. }) =
        (p.base(), arch.base)
    else {
        return Vec::new();
    };
    let lmax = logits
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
    let lse = lmax
        + logits
            .iter()
            .map(|&l| (f64::from(l) - lmax).exp())
            .sum::<f64>()
            .ln();
    let mut w = Vec::new();
    for k in 0..logits.ncols() {
        let diag: Vec<f32> = (0..d)
            .map(|j| f64::from(factors[(k, j * d + j)]).exp() as f32)
            .collect();
        let log_det: f64 = diag.iter().map(|&v| f64::from(v).ln()).sum();
        let c = f64::from(logits[(0, k)]) - lse + log_det - d as f64 * HALF_LN_2PI;
        w.push(c as f32);
        w.extend(means.row(k).iter());
        for j in 0..d {
            match covariance {
                maf_core::Covariance::Full => {
                    w.extend((0..j).map(|i| factors[(k, j * d + i)]));
                    w.push(diag[j]);
                }
                maf_core::Covariance::Diagonal => w.push(diag[j]),
            }
        }
    }
    w
}

/// The `maf-core` activation.
pub fn core_activation(a: Activation) -> maf_core::Activation {
    match a {
        Activation::Relu => maf_core::Activation::Relu,
        Activation::Tanh => maf_core::Activation::Tanh,
    }
}

/// Batch norm in inference form: `(bn_scale, bn_shift)` per variable, computed in
/// `f64` from `log_gamma`, `beta` and the whole-set `mean`, `var`.
pub fn bn_affine(
    log_gamma: &[f64],
    beta: &[f64],
    mean: &[f64],
    var: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let scale: Vec<f64> = log_gamma
        .iter()
        .zip(var)
        .map(|(&lg, &v)| lg.exp() / (v + BN_EPS).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((&b, &m), &s)| b - m * s)
        .collect();
    (scale, shift)
}

impl TrainedModel {
    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.params.arch
    }

    /// The weights in the blob's order: standardisations, then per MADE the first
    /// hidden layer (`b1[k]`, `w1[k][p < deg(k)]`, `wc[k][..]`), the second hidden
    /// layer, the output biases (`b_mu[p]`, `b_alpha[p]`), the output weights column
    /// by column (for unit `k`, interleaved `w_mu[p][k]`, `w_alpha[p][k]` for
    /// `p in deg(k) .. D`), and batch norm's `bn_scale`, `bn_shift`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the statistics do not match the architecture.
    pub fn pack(&self) -> Result<Vec<f32>> {
        let a = self.arch();
        let p = &self.params;
        let (d, h) = (a.dim, a.hidden);
        let mut w: Vec<f32> = Vec::new();
        w.extend(&self.x_std.mean);
        w.extend(&self.x_std.inv_std);
        w.extend(&self.c_std.mean);
        w.extend(&self.c_std.inv_std);
        if self.x_std.mean.len() != d || self.c_std.mean.len() != a.context {
            return Err(Error::Internal(
                "standardisation does not match the shape".into(),
            ));
        }
        for l in 0..a.layers {
            let var_of = |pos: usize| a.position(l, pos); // the order is an involution
            let (w1, wc, b1) = (p.get(l, Kind::W1), p.get(l, Kind::Wc), p.get(l, Kind::B1));
            for k in 0..h {
                w.push(b1[(0, k)]);
                for pos in 0..a.hidden_degree(k) {
                    w.push(w1[(var_of(pos), k)]);
                }
                for j in 0..a.context {
                    w.push(wc[(j, k)]);
                }
            }
            if a.hidden_layers == 2 {
                let (w2, b2) = (p.get(l, Kind::W2), p.get(l, Kind::B2));
                for j in 0..h {
                    w.push(b2[(0, j)]);
                    for k in 0..a.cum(a.hidden_degree(j)) {
                        w.push(w2[(k, j)]);
                    }
                }
            }
            let (wo, bo) = (p.get(l, Kind::Wo), p.get(l, Kind::Bo));
            for pos in 0..d {
                let v = var_of(pos);
                w.push(bo[(0, v)]);
                w.push(bo[(0, d + v)]);
            }
            // Output weights column by column: last-layer unit k feeds positions
            // deg(k) .. D.
            for k in 0..h {
                for pos in a.hidden_degree(k).min(d)..d {
                    let v = var_of(pos);
                    w.push(wo[(k, v)]);
                    w.push(wo[(k, d + v)]);
                }
            }
            if a.batch_norm {
                let (Some(mean), Some(var)) = (self.stats.mean.get(l), self.stats.var.get(l))
                else {
                    return Err(Error::Internal(format!(
                        "no batch-norm statistics for MADE {l}"
                    )));
                };
                let lg: Vec<f64> = p
                    .get(l, Kind::LogGamma)
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let beta: Vec<f64> = p.get(l, Kind::Beta).iter().map(|&v| f64::from(v)).collect();
                let (scale, shift) = bn_affine(&lg, &beta, mean, var);
                w.extend(scale.iter().map(|&v| v as f32));
                w.extend(shift.iter().map(|&v| v as f32));
            }
        }
        w.extend(pack_base(&a, p));
        let expected = core_shape(&a).weight_count() + a.base.weight_count(d);
        if w.len() != expected {
            return Err(Error::Internal(format!(
                "packed {} weights, the shape needs {expected}",
                w.len()
            )));
        }
        Ok(w)
    }

    /// Encodes the model as a blob with `maf-core`'s writer (which re-loads what it
    /// wrote, so the result always loads).
    ///
    /// # Errors
    /// [`Error::Model`] if `maf-core` refuses it (a non-finite weight, too long
    /// metadata), [`Error::Internal`] from [`TrainedModel::pack`].
    pub fn to_blob(&self, threshold: Option<f32>, metadata: &str) -> Result<Vec<u8>> {
        self.to_blob_with_window(threshold, maf_core::blob::Window::PER_VECTOR, metadata)
    }

    /// [`TrainedModel::to_blob`] with a calibrated detection window.
    ///
    /// # Errors
    /// As [`TrainedModel::to_blob`].
    pub fn to_blob_with_window(
        &self,
        threshold: Option<f32>,
        window: maf_core::blob::Window,
        metadata: &str,
    ) -> Result<Vec<u8>> {
        let weights = self.pack()?;
        // Names the blob can carry (one per column, distinct, no newline);
        // otherwise none, and the device matches columns by position.
        let joined = self.columns.join("\n");
        let named = self.columns.len() == self.arch().dim + self.arch().context
            && self
                .columns
                .iter()
                .all(|c| !c.is_empty() && !c.contains('\n'))
            && joined.len() <= maf_core::blob::MAX_COLUMNS
            && self
                .columns
                .iter()
                .enumerate()
                .all(|(i, c)| !self.columns[i + 1..].contains(c));
        let header = maf_core::blob::Header {
            shape: core_shape(&self.arch()),
            activation: core_activation(self.arch().activation),
            threshold,
            base: self.arch().base,
            window,
            columns: if named { &joined } else { "" },
            metadata,
        };
        maf_core::blob::write(&header, &weights).map_err(|e| Error::Model {
            context: "writing the blob".into(),
            message: e.to_string(),
        })
    }

    /// The trainer's own log densities of raw rows `x` (context `c`), in raw units,
    /// computed in `F` with the whole-set batch-norm statistics. `F = f64` is the
    /// reference the `maf-core` agreement test compares with.
    pub fn log_prob<F: Real>(&self, x: &Array2<f64>, c: &Array2<f64>) -> Array1<f64> {
        let xs = self.x_std.apply::<F>(x);
        let cs = self.c_std.apply::<F>(c);
        let p = self.params.cast::<F>();
        let stats = self.arch().batch_norm.then_some(&self.stats);
        let jac = self.x_std.log_jacobian();
        p.log_prob(xs.view(), cs.view(), stats)
            .mapv(|v| v.f64() + jac)
    }
}
