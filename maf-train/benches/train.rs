//! Training throughput at the reference shape D=8, L=5, H=64, batch 256, on one
//! thread. Run with `cargo bench -p maf-train`; `scripts/bench-host.sh` compares
//! with zuko side by side, on two threads.

/// The allocator of the `maf-train` binary (see its `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    match maf_train::train::bench(8, 5, 64, 256, 51_200, 10) {
        Ok(r) => println!(
            "train D=8 L=5 H=64 batch 256 (tanh, one thread): {:.0} rows/s ({} rows in {:.3} s)",
            r.rows_per_sec, r.rows, r.seconds
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
