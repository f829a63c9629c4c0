//! `maf-train score`: the log density and anomaly flag of every row.

use std::fmt::Write as _;

use crate::cli::ScoreArgs;
use crate::data;
use crate::error::Result;
use crate::io::{check_output, load_view, model_split, read_model, write_output};
use crate::scoring::core_log_probs_f32;

/// Runs `maf-train score`.
///
/// # Errors
/// Bad model or data files, an output that is an input, writing the output.
pub fn run(a: &ScoreArgs) -> Result<()> {
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
