//! `maf-train score`: the log density and anomaly flag of every row, and with a
//! window the device's window score and alarm, streamed (input and output in
//! chunks; memory independent of the number of rows).

use std::io::Write as _;

use crate::cli::ScoreArgs;
use crate::error::{Error, Result};
use crate::io::{Output, check_output, load_view, read_model, scores};
use crate::scoring::score_file;
use crate::windows;

/// Runs `maf-train score`.
///
/// # Errors
/// Bad model or data files, an output that is an input, a window the model
/// has no threshold for, writing the output.
pub fn run(a: &ScoreArgs) -> Result<()> {
    if let Some(out) = &a.out {
        check_output(out, &[&a.model, &a.data])?;
    }
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    // With a window: the running window and the model's threshold for it.
    let mut window = windows::choose(&view, a.window)?
        .map(|c| {
            let threshold = c.threshold.ok_or_else(|| Error::InvalidParam {
                name: "window",
                message: format!(
                    "{}: the model has no threshold for a window of {} (its window is {}); \
                     `maf-train recalibrate --window {}` calibrates one",
                    a.model.display(),
                    c.len,
                    view.header().window.len,
                    c.len
                ),
            })?;
            Ok::<_, Error>((windows::Scorer::new(c.len), threshold))
        })
        .transpose()?;
    let mut out = Output::new(a.out.as_deref())?;
    let name = out.name();
    let header = if window.is_some() {
        scores::WINDOW_HEADER
    } else {
        scores::HEADER
    };
    out.put(format!("{header}\n").as_bytes())?;
    let bar = super::progress::bytes_bar(&a.data);
    let mut line = String::new();
    score_file(
        &view,
        &a.data,
        &mut |lp| {
            use std::fmt::Write as _;
            line.clear();
            match lp {
                Some(v) => {
                    let _ = write!(line, "{v},{}", u8::from(view.is_anomaly(v)));
                }
                None => line.push_str("-inf,1"),
            }
            if let Some((scorer, threshold)) = &mut window {
                match scorer.push(lp) {
                    Some(s) => {
                        let _ = write!(line, ",{s},{}", u8::from(windows::alarm(s, *threshold)));
                    }
                    None => line.push_str(",,0"),
                }
            }
            line.push('\n');
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
