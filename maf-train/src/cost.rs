//! What a model costs on the device: an instruction estimate for one log density
//! on a Cortex-M4F (`thumbv7em-none-eabihf`), and the blob's size.
//!
//! The estimate is a linear model in the counts that decide the work —
//! multiply-accumulates, hidden units (their activation), `expf` calls — with
//! coefficients fitted to QEMU instruction counts of `scripts/bench-device.sh`
//! (`docs/model.md`, "Device cost model", gives the fit and its error). It is
//! meant for choosing among models within a budget, not as a promise: ReLU
//! models are counted as if every unit were active (their worst case).

use maf_core::{Base, Covariance, Shape};

use crate::model::Activation;

/// Instructions per multiply-accumulate of the packed kernel.
const PER_MAC: f64 = 2.6;
/// Instructions per ReLU hidden unit (compare, branch, bookkeeping).
const PER_RELU_UNIT: f64 = 4.0;
/// Instructions per tanh hidden unit (the rational approximation).
const PER_TANH_UNIT: f64 = 43.0;
/// Instructions per `expf` / `logf` call.
const PER_EXP: f64 = 40.0;
/// Fixed instructions per MADE (loop set-up, order reversal, batch norm).
const PER_MADE: f64 = 60.0;
/// Fixed instructions per mixture component (centring, log-sum-exp step).
const PER_COMPONENT: f64 = 15.0;
/// Fixed instructions per call (standardisation, checks, the final sum).
const PER_CALL: f64 = 100.0;

/// Estimated Cortex-M4F instructions for one log density of a model with these
/// shapes, activation and base.
pub fn instructions(shape: Shape, activation: Activation, base: Base) -> usize {
    let d = shape.dim as f64;
    let layers = shape.layers as f64;
    let units = (shape.hidden * shape.hidden_layers) as f64 * layers;
    let per_unit = match activation {
        Activation::Relu => PER_RELU_UNIT,
        Activation::Tanh => PER_TANH_UNIT,
    };
    let flow = if shape.layers == 0 {
        0.0
    } else {
        PER_MAC * shape.macs() as f64 + per_unit * units + PER_EXP * d * layers + PER_MADE * layers
    };
    let base_cost = match base {
        Base::StandardNormal => 2.0 * d,
        Base::Mixture { components, .. } => {
            let k = components as f64;
            k * (PER_MAC * base.macs(shape.dim) as f64 / k + 2.0 * d + PER_EXP + PER_COMPONENT)
                + PER_EXP
        }
    };
    (PER_CALL + flow + base_cost).round() as usize
}

/// Bytes of a blob with these shapes and base, without metadata and column
/// names (the header's fixed part, padding and CRC counted at their largest).
pub fn blob_bytes(shape: Shape, base: Base) -> usize {
    64 + 4 * (shape.weight_count() + base.weight_count(shape.dim))
}

/// A short name for a model: `mixture K=16 full`, `flow L=5 H=64 tanh on
/// mixture K=4 diag`, `flow L=5 H=64 relu on N(0, I)`.
pub fn label(shape: Shape, activation: Activation, base: Base) -> String {
    let base_name = match base {
        Base::StandardNormal => "N(0, I)".to_string(),
        Base::Mixture {
            components,
            covariance,
        } => format!(
            "mixture K={components} {}",
            match covariance {
                Covariance::Full => "full",
                Covariance::Diagonal => "diag",
            }
        ),
    };
    if shape.layers == 0 {
        return base_name;
    }
    let act = match activation {
        Activation::Relu => "relu",
        Activation::Tanh => "tanh",
    };
    let hl = if shape.hidden_layers == 2 { "x2" } else { "" };
    format!(
        "flow L={} H={}{hl} {act} on {base_name}",
        shape.layers, shape.hidden
    )
}
