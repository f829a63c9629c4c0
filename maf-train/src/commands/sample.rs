//! `maf-train sample`: draws from a model (with a context file for a conditional one).

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::cli::SampleArgs;
use crate::data;
use crate::error::{Error, Result};
use crate::io::{check_output, load_view, meta_value, names, read_model, write_output};

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
