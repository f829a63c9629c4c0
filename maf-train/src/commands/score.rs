//! `maf-train score`: the log density and anomaly flag of every row, streamed
//! (input and output in chunks; memory independent of the number of rows).

use std::io::Write as _;

use crate::cli::ScoreArgs;
use crate::error::{Error, Result};
use crate::io::{Output, check_output, load_view, read_model};
use crate::scoring::score_file;

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
    let mut out = Output::new(a.out.as_deref())?;
    let name = out.name();
    out.put(b"log_prob,anomaly\n")?;
    let bar = super::progress::bytes_bar(&a.data);
    let mut line = String::new();
    score_file(
        &view,
        &a.data,
        &mut |lp| {
            line.clear();
            match lp {
                Some(v) => {
                    use std::fmt::Write as _;
                    let _ = writeln!(line, "{v},{}", u8::from(view.is_anomaly(v)));
                }
                None => line.push_str("-inf,1\n"),
            }
            out.write_all(line.as_bytes())
                .map_err(|e| Error::io(name.as_str(), e))
        },
        &mut |bytes| {
            if let Some(pb) = &bar {
                pb.set_position(bytes);
            }
        },
    )?;
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    out.finish()
}
