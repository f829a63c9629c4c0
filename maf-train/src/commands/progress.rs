//! The progress bar of the streaming commands (`score`, `eval`): input bytes
//! read, shown only when standard error is a terminal.

use std::io::IsTerminal as _;
use std::path::Path;

/// A bar over the size of `path`, or `None` when standard error is not a
/// terminal (a log file or a pipe gets no bar).
pub fn bytes_bar(path: &Path) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed:>4} [{bar:30}] {bytes}/{total_bytes} read ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(pb)
}
