//! Host throughput at one shape, for `scripts/bench-host.sh`: training rows/s on
//! one thread and on `threads` (`train::bench_threads`: each minibatch's forward
//! pass split by rows) and batched log density on `threads`
//! (`parallel::bench_log_density`, in-memory rows, no file parsing).
//!
//! `cargo run --release -p maf-train --example bench_host -- [threads] [dim layers hidden batch]`
use std::process::ExitCode;

use maf_train::{parallel, train};

/// mimalloc rather than the system allocator: training allocates and frees its
/// minibatch arrays every step, and trains faster on it (measured: docs/model.md,
/// "On several cores").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let get = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let threads = get(0, parallel::available_threads());
    let (dim, layers, hidden, batch) = (get(1, 8), get(2, 5), get(3, 64), get(4, 256));
    for t in [1, threads] {
        match train::bench_threads(dim, layers, hidden, batch, 8192, 5, t) {
            Ok(r) => println!(
                "training D={dim} L={layers} H={hidden} batch {batch}, {t} threads: {:.0} rows/s",
                r.rows_per_sec
            ),
            Err(e) => {
                eprintln!("bench_host: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for act in [maf_core::Activation::Relu, maf_core::Activation::Tanh] {
        match parallel::bench_log_density(dim, layers, hidden, act, 65_536, threads, 2.0) {
            Ok(r) => println!(
                "log density {act:?} D={dim} L={layers} H={hidden}, batched, {threads} threads: {:.0} rows/s",
                r.rows_per_sec
            ),
            Err(e) => {
                eprintln!("bench_host: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
