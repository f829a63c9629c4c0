//! The seeded data set of the MAF paper's Figure 1 (`maf-train figure1-data`).

use std::fmt::Write as _;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The data set of the paper's Figure 1: `x2 ~ N(0, 2²)`, `x1 ~ N(x2²/4, 1)`, as a
/// headered CSV (`x1,x2`), `rows` rows drawn with a seeded generator (same seed,
/// same file).
pub fn figure1_csv(rows: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::with_capacity(24 * rows + 8);
    out.push_str("x1,x2\n");
    for _ in 0..rows {
        let z2: f64 = StandardNormal.sample(&mut rng);
        let z1: f64 = StandardNormal.sample(&mut rng);
        let x2 = 2.0 * z2;
        let x1 = x2 * x2 / 4.0 + z1;
        let _ = writeln!(out, "{x1:.6},{x2:.6}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure1_data_is_seeded_and_has_the_right_moments() {
        let a = figure1_csv(20_000, 3);
        assert_eq!(a, figure1_csv(20_000, 3));
        assert_ne!(a, figure1_csv(20_000, 4));
        let rows: Vec<(f64, f64)> = a
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(','))
            .filter_map(|(p, q)| Some((p.parse().ok()?, q.parse().ok()?)))
            .collect();
        assert_eq!(rows.len(), 20_000);
        let n = rows.len() as f64;
        let m2 = rows.iter().map(|r| r.1).sum::<f64>() / n;
        let v2 = rows.iter().map(|r| r.1 * r.1).sum::<f64>() / n;
        // x1 - x2²/4 is standard normal.
        let r1: Vec<f64> = rows.iter().map(|r| r.0 - r.1 * r.1 / 4.0).collect();
        let m1 = r1.iter().sum::<f64>() / n;
        let v1 = r1.iter().map(|v| v * v).sum::<f64>() / n;
        assert!(m2.abs() < 0.05 && (v2 - 4.0).abs() < 0.15, "{m2} {v2}");
        assert!(m1.abs() < 0.03 && (v1 - 1.0).abs() < 0.05, "{m1} {v1}");
    }
}
