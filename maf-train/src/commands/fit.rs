//! `maf-train fit`: progress display, the fit itself ([`crate::fitting`]), the
//! atomic write and the search table.

use std::io::IsTerminal as _;

use crate::cli::FitArgs;
use crate::error::{Error, Result};
use crate::fitting::fit_blob;
use crate::io::write_atomic;

/// Runs `maf-train fit`.
///
/// # Errors
/// As [`fit_blob`], and writing the model.
pub fn run(a: &FitArgs) -> Result<()> {
    use crate::select::Progress;
    // SIGINT/SIGTERM stop the search at the end of the current minibatch and
    // keep the best model so far.
    crate::interrupt::install()?;
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
    // Candidates may train at once (their epochs interleave): labels by number.
    let mut labels: std::collections::HashMap<usize, String> = Default::default();
    let mut shown = 0usize;
    let mut progress = |p: Progress<'_>| match p {
        Progress::Start(i, n, label) => {
            let current = format!("[{i}/{n}] {label}");
            if let Some(pb) = &bar {
                pb.set_prefix(current.clone());
                pb.set_position(0);
                pb.set_message("");
                shown = i;
            } else if !quiet {
                eprintln!("{current} ...");
            }
            labels.insert(i, current);
        }
        Progress::Epoch(i, r) => {
            let current = labels.get(&i).map_or("", String::as_str);
            let line = format!(
                "training loss {:.4} (mean -log p per row, nats, standardised units)  \
                 validation log-likelihood {:.4} (mean log p per row, nats, raw units, the \
                 lowest anomaly-quantile of rows left out), best {:.4} at epoch {}",
                r.train_loss, r.valid_ll, r.best_ll, r.best_epoch
            );
            if let Some(pb) = &bar {
                // The bar follows the candidate of the latest epoch.
                if shown != i {
                    pb.set_prefix(current.to_string());
                    shown = i;
                }
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
                    eprintln!("  {current} epoch {}: {line}", r.epoch);
                }
            }
        }
        Progress::Done(i, t) => {
            let current = labels.remove(&i).unwrap_or_else(|| t.label.clone());
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
    let out = result?;
    write_atomic(&a.out, &out.blob)?;
    // (`fit_blob` checked the output path before any work.)
    if !a.quiet {
        eprintln!(
            "model search (* = chosen; valid LL = validation log-likelihood, raw units, the lowest anomaly-quantile of the rows left out; a flow must beat the best mixture by more than 2 SE of the paired difference):"
        );
        eprint!("{}", out.table);
    }
    if let Some(i) = out.interrupted {
        // Said even with --quiet: the model is not what a full run gives.
        return Err(Error::Interrupted(format!(
            "{i}; wrote the best model so far to {} ({})",
            a.out.display(),
            out.summary
        )));
    }
    if !a.quiet {
        eprintln!("wrote {}: {}", a.out.display(), out.summary);
    }
    Ok(())
}
