//! `maf-train sample`: draws from a model (with a context file for a conditional one).

use std::fmt::Write as _;

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cli::SampleArgs;
use crate::data;
use crate::error::{Error, Result};
use crate::error::{count, name_list};
use crate::io::{Output, check_output, load_view, model_columns, read_model};

/// Runs `maf-train sample`.
///
/// # Errors
/// Bad model or context files, an output that is an input, writing the output.
pub fn run(a: &SampleArgs) -> Result<()> {
    if let Some(out) = &a.out {
        let mut inputs = vec![a.model.as_path()];
        inputs.extend(a.context.as_deref());
        check_output(out, &inputs)?;
    }
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    let shape = view.shape();
    let named = model_columns(&view);
    let x_names = named
        .as_ref()
        .map(|n| n.0.clone())
        .filter(|n| n.len() == shape.dim)
        .unwrap_or_else(|| (0..shape.dim).map(|i| format!("x{i}")).collect());
    let c_names = named
        .as_ref()
        .map(|n| n.1.clone())
        .filter(|n| n.len() == shape.context)
        .unwrap_or_else(|| (0..shape.context).map(|i| format!("c{i}")).collect());
    let ctx: Array2<f64> = match (&a.context, shape.context) {
        (None, 0) => Array2::zeros((1, 0)),
        (None, c) => {
            return Err(Error::InvalidParam {
                name: "context",
                message: format!(
                    "the model is conditional on {}: give --context",
                    count(c, "context column", "context columns")
                ),
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
            let want = named.as_ref().map(|n| n.1.clone());
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
                                        name_list(&t.header),
                                        name_list(&w)
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
                            "{}, the model has {}",
                            count(t.header.len(), "column", "columns"),
                            count(c, "context column", "context columns")
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
    let mut out = Output::new(a.out.as_deref())?;
    let mut line = x_names
        .iter()
        .chain(&c_names)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    out.put(line.as_bytes())?;
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
        // The sample, then the context it was drawn for (a conditional model's
        // sample is only meaningful with it).
        line.clear();
        for (j, v) in x.iter().chain(&cr).enumerate() {
            if j > 0 {
                line.push(',');
            }
            let _ = write!(line, "{v}");
        }
        line.push('\n');
        out.put(line.as_bytes())?;
    }
    let name = out.name();
    out.finish()?;
    if a.out.is_some() {
        eprintln!(
            "wrote {} to {name} (columns {})",
            count(a.count, "sample", "samples"),
            name_list(&x_names.iter().chain(&c_names).collect::<Vec<_>>())
        );
    }
    Ok(())
}
