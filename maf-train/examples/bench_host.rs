//! Host throughput at one shape, for `scripts/bench-host.sh`: training rows/s
//! (`train::bench_config`: each minibatch's step split by rows) with tanh units
//! on one thread and on `threads`, and with ReLU units (zuko's) on `threads`;
//! batched log density on `threads`
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
    use maf_train::model::Activation::{Relu, Tanh};
    // Each training measurement runs for at least 2 s (as zuko's, 4 s): short
    // runs swing with the load of this shared machine.
    for (t, activation) in [(1, Tanh), (threads, Tanh), (threads, Relu)] {
        let cfg = train::BenchConfig {
            dim,
            layers,
            hidden,
            activation,
            batch,
            rows: 8192,
            epochs: 5,
            min_seconds: 2.0,
            threads: t,
        };
        match train::bench_config(&cfg) {
            Ok(r) => println!(
                "training {activation:?} D={dim} L={layers} H={hidden} batch {batch}, {t} threads: {:.0} rows/s",
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
