//! Prints flash, RAM and compute figures for a range of model shapes, to choose a
//! shape that fits a part: `cargo run -p maf-core --example budget [D]`.
//!
//! Flash is the blob (weights are read in place); RAM is the activations one
//! evaluation keeps on the stack (call frames not included); MACs are the unmasked
//! multiply-accumulates per log density.

use maf_core::Shape;

fn main() {
    let dim: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    println!("D = {dim}, unconditional, batch norm on");
    println!(
        "{:>3} {:>5} {:>2} | {:>9} {:>10} {:>9} | {:>8} {:>11}",
        "L", "H", "K", "weights", "blob bytes", "RAM bytes", "MACs", "dense MACs"
    );
    for layers in [1, 3, 5, 8] {
        for hidden in [16, 32, 64, 128] {
            for hidden_layers in [1, 2] {
                let s = Shape {
                    dim,
                    context: 0,
                    hidden,
                    hidden_layers,
                    layers,
                    batch_norm: true,
                };
                if s.check().is_err() {
                    continue;
                }
                // Header: magic, version, shapes, flags, threshold, empty metadata,
                // padding, length prefixes and CRC: under 48 bytes.
                println!(
                    "{layers:>3} {hidden:>5} {hidden_layers:>2} | {:>9} {:>10} {:>9} | {:>8} {:>11}",
                    s.weight_count(),
                    format!("<{}", 4 * s.weight_count() + 48),
                    s.ram_bytes(),
                    s.macs(),
                    s.dense_macs()
                );
            }
        }
    }
}
