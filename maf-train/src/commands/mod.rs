//! One module per subcommand; each turns its parsed arguments into calls to the
//! library ([`crate::io`] for files, [`crate::data`], [`crate::fitting`],
//! [`crate::scoring`], [`crate::report`], [`crate::charts`]) and prints the result.

mod bench;
mod eval;
mod fit;
mod inspect;
mod json;
mod plot;
mod progress;
mod recalibrate;
mod report;
mod sample;
mod score;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs a parsed command line.
///
/// # Errors
/// Any [`crate::Error`]; the binary prints it as one line and exits with status 1.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fit(a) => fit::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Score(a) => score::run(&a),
        Command::Sample(a) => sample::run(&a),
        Command::Recalibrate(a) => recalibrate::run(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Report(a) => report::run(&a),
        Command::Plot(a) => plot::run(&a),
        Command::Figure1Data(a) => plot::figure1_data(&a),
    }
}
