//! `maf-train inspect`: shapes, size, RAM and compute cost of a model blob.

use std::fmt::Write as _;

use super::json::json_num;
use crate::cli::InspectArgs;
use crate::error::Result;
use crate::io::{load_view, read_model, write_output};
use crate::model::Activation;

/// Runs `maf-train inspect`.
///
/// # Errors
/// A bad model file.
pub fn run(a: &InspectArgs) -> Result<()> {
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
        "window": h.window.len,
        "window_threshold": h.window.threshold.map(|t| json_num(f64::from(t))),
        "window_median": h.window.median.map(|t| json_num(f64::from(t))),
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
        let opt = |v: Option<f32>| v.map_or("none".to_string(), |v| v.to_string());
        let _ = writeln!(
            t,
            "window       {} vectors, threshold {} on their mean log density, healthy \
             median {}",
            h.window.len,
            opt(h.window.threshold),
            opt(h.window.median)
        );
        for l in h.metadata.lines() {
            let _ = writeln!(t, "meta         {l}");
        }
        t
    };
    write_output(None, &text)
}
