//! The `maf-train` command-line tool; everything it does lives in the library
//! (`maf_train::cli`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = maf_train::cli::Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line; the library's messages already name the file and cause.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: maf_train::cli::Cli) -> anyhow::Result<()> {
    maf_train::cli::run(cli)?;
    Ok(())
}
