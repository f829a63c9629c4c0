//! The `maf-train` command-line tool; everything it does lives in the library
//! (`maf_train::commands`; the clap types are `maf_train::cli`).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: training allocates and frees its
/// minibatch arrays every step, and trains faster on it (measured: docs/model.md,
/// "On several cores").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = maf_train::cli::Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`maf-train sample ... | head`): stop
        // quietly, as other command-line tools do.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        // Interrupted: the message says what was kept (the best model so far).
        Err(e) if interrupted(&e) => {
            eprintln!("{e}");
            ExitCode::from(maf_train::interrupt::EXIT_INTERRUPTED)
        }
        Err(e) => {
            // One line; the library's messages already name the file and cause.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: maf_train::cli::Cli) -> anyhow::Result<()> {
    maf_train::commands::run(cli)?;
    Ok(())
}

/// Whether `e` is an interrupted `fit`.
fn interrupted(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<maf_train::Error>(),
        Some(maf_train::Error::Interrupted(_))
    )
}

/// Whether `e` was caused by writing to a closed pipe.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
