//! Pictures of a two-dimensional model — the learned density as
//! a heat map with the data on top, and the data mapped to the base space
//! `u = f⁻¹(x)` next to the standard normal it should follow (the diagnostic of
//! Figure 1 in Papamakarios et al. 2017).

use std::path::{Path, PathBuf};

use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::svg::{draw_legend, plot_err, write_svg};
use crate::error::{Error, Result};

/// Cells per side of the density grid.
const GRID: usize = 140;
/// At most this many data points are drawn (an even subsample of the rows).
const MAX_POINTS: usize = 1500;

/// Checks that a model can be plotted: two features, no context.
///
/// # Errors
/// [`Error::InvalidParam`] naming the model's shape otherwise.
pub fn check_2d(shape: maf_core::Shape, model: &Path) -> Result<()> {
    if shape.dim == 2 && shape.context == 0 {
        return Ok(());
    }
    Err(Error::InvalidParam {
        name: "model",
        message: format!(
            "{} has D={} features{}; `plot` draws two-dimensional unconditional models \
             only (D=2, no context). For a model of other shapes use `maf-train report` \
             (log-density histogram, ROC) or `eval`",
            model.display(),
            shape.dim,
            if shape.context > 0 {
                format!(" and {} context columns", shape.context)
            } else {
                String::new()
            }
        ),
    })
}

/// Indices of an even subsample of at most `max` of `n` rows.
fn subsample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        (0..n).collect()
    } else {
        (0..max).map(|i| i * n / max).collect()
    }
}

/// The plot files `plot` writes into a directory.
pub fn plot_paths(dir: &Path) -> [PathBuf; 2] {
    [dir.join("density.svg"), dir.join("base_space.svg")]
}

/// Heat map of the model's density `p(x)` over the data's range (linear colour
/// scale, viridis), with the data points on top.
///
/// # Errors
/// [`Error::Model`] if `maf-core` refuses a grid point, [`Error::Io`] writing.
pub fn density_plot(
    path: &Path,
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    names: &[String],
    title: &str,
) -> Result<()> {
    let col = |j: usize| x.column(j).to_vec();
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = 0.08 * (hi - lo).max(1e-6);
        (lo - pad, hi + pad)
    };
    let (x0, x1) = range(&col(0));
    let (y0, y1) = range(&col(1));
    let (dx, dy) = ((x1 - x0) / GRID as f64, (y1 - y0) / GRID as f64);
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let mut dens = vec![0.0f64; GRID * GRID];
    for iy in 0..GRID {
        for ix in 0..GRID {
            let p = [
                (x0 + (ix as f64 + 0.5) * dx) as f32,
                (y0 + (iy as f64 + 0.5) * dy) as f32,
            ];
            dens[iy * GRID + ix] = match view.log_prob(&p, &[], &mut scratch) {
                Ok(lp) => f64::from(lp).exp(),
                Err(maf_core::Error::Overflow) => 0.0,
                Err(e) => {
                    return Err(Error::Model {
                        context: format!("density at ({}, {})", p[0], p[1]),
                        message: e.to_string(),
                    });
                }
            };
        }
    }
    let pmax = dens
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    // Quantised colour levels; runs of equal level along a row become one rectangle
    // (keeps the SVG small).
    let level = |p: f64| ((p / pmax).clamp(0.0, 1.0) * 63.0).round() as u8;
    let colour = |l: u8| ViridisRGB::get_color_normalized(f64::from(l), 0.0, 63.0);
    let pts = subsample(x.nrows(), MAX_POINTS);
    write_svg(path, (760, 700), |root| {
        let e = |v| plot_err(path, v);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .disable_mesh()
            .x_desc(names.first().map_or("x1", String::as_str))
            .y_desc(names.get(1).map_or("x2", String::as_str))
            .draw()
            .map_err(e)?;
        let mut rects = Vec::new();
        for iy in 0..GRID {
            let mut ix = 0;
            while ix < GRID {
                let l = level(dens[iy * GRID + ix]);
                let mut j = ix + 1;
                while j < GRID && level(dens[iy * GRID + j]) == l {
                    j += 1;
                }
                rects.push(Rectangle::new(
                    [
                        (x0 + ix as f64 * dx, y0 + iy as f64 * dy),
                        (x0 + j as f64 * dx, y0 + (iy + 1) as f64 * dy),
                    ],
                    colour(l).filled(),
                ));
                ix = j;
            }
        }
        chart.draw_series(rects).map_err(e)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&r| Circle::new((x[[r, 0]], x[[r, 1]]), 2, WHITE.mix(0.55).filled())),
            )
            .map_err(e)?
            .label(format!("data ({} of {} rows)", pts.len(), x.nrows()))
            .legend(|(x, y)| Circle::new((x + 9, y), 3, BLACK.filled()));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x0, y0)],
                colour(63).filled(),
            )))
            .map_err(e)?
            .label(format!(
                "model density p(x), linear colour scale (max {pmax:.3})"
            ))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour(40).filled())
            });
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 14, path)?;
        Ok(())
    })
}

/// Mass of a 2-D standard normal within radius `r`: `1 - exp(-r²/2)`.
fn mass_within(r: f64) -> f64 {
    1.0 - (-r * r / 2.0).exp()
}

/// The data mapped to the base space, `u = f⁻¹(x)`, as a scatter with the circles
/// of radius 1, 2, 3 and, in the legend, the fraction of points inside each next
/// to what the base puts there: N(0, I) in closed form (a good fit looks like a
/// round, centred cloud), or for a mixture base the fraction of draws from it
/// (shown in grey under the data).
///
/// # Errors
/// [`Error::Model`] if `maf-core` refuses a row, [`Error::Io`] writing.
pub fn base_space_plot(
    path: &Path,
    view: &maf_core::MafView<'_>,
    x: &Array2<f64>,
    title: &str,
) -> Result<()> {
    let mut scratch = vec![0.0f32; view.shape().scratch_len()];
    let mut us = Vec::with_capacity(x.nrows());
    for r in 0..x.nrows() {
        let xr = [x[[r, 0]] as f32, x[[r, 1]] as f32];
        let mut u = [0.0f32; 2];
        match view.inverse(&xr, &[], &mut u, &mut scratch) {
            Ok(_) | Err(maf_core::Error::Overflow) => {}
            Err(e) => {
                return Err(Error::Model {
                    context: format!("data row {}", r + 1),
                    message: e.to_string(),
                });
            }
        }
        if u.iter().all(|v| v.is_finite()) {
            us.push((f64::from(u[0]), f64::from(u[1])));
        }
    }
    let n = us.len().max(1) as f64;
    let inside = |r: f64| us.iter().filter(|(a, b)| a * a + b * b <= r * r).count() as f64 / n;
    // The reference the points should follow: N(0, I) in closed form, or, for a
    // mixture base, 20,000 seeded draws from it (shown in grey).
    let mixture = view.base() != maf_core::Base::StandardNormal;
    let draws: Vec<(f64, f64)> = if mixture {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        (0..20_000)
            .filter_map(|_| {
                let eps: [f32; 2] = [
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng),
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng),
                ];
                let mut u = [0.0f32; 2];
                view.draw_base(rng.r#gen(), &eps, &mut u).ok()?;
                Some((f64::from(u[0]), f64::from(u[1])))
            })
            .collect()
    } else {
        Vec::new()
    };
    let reference = |r: f64| {
        if mixture {
            let m = draws.len().max(1) as f64;
            draws.iter().filter(|(a, b)| a * a + b * b <= r * r).count() as f64 / m
        } else {
            mass_within(r)
        }
    };
    let reference_name = if mixture { "the base" } else { "N(0, I)" };
    let lim = 4.5;
    let outside = us
        .iter()
        .filter(|(a, b)| a.abs() > lim || b.abs() > lim)
        .count();
    let pts = subsample(us.len(), MAX_POINTS);
    write_svg(path, (700, 720), |root| {
        let e = |v| plot_err(path, v);
        let (main, foot) = root.split_vertically(690);
        if outside > 0 {
            foot.draw(&Text::new(
                format!("{outside} points outside the plotted square are not shown"),
                (60, 5),
                ("sans-serif", 14).into_font().color(&BLACK.mix(0.7)),
            ))
            .map_err(e)?;
        }
        let mut chart = ChartBuilder::on(&main)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(50)
            .build_cartesian_2d(-lim..lim, -lim..lim)
            .map_err(e)?;
        if mixture {
            chart
                .draw_series(
                    draws
                        .iter()
                        .take(MAX_POINTS)
                        .filter(|(a, b)| a.abs() <= lim && b.abs() <= lim)
                        .map(|&p| Circle::new(p, 1, BLACK.mix(0.35).filled())),
                )
                .map_err(e)?
                .label("draws from the mixture base")
                .legend(|(x, y)| Circle::new((x + 9, y), 3, BLACK.mix(0.3).filled()));
        }
        chart
            .configure_mesh()
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .light_line_style(WHITE.mix(0.0))
            .x_desc("u1")
            .y_desc("u2")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&i| us[i])
                    .filter(|(a, b)| a.abs() <= lim && b.abs() <= lim)
                    .map(|p| Circle::new(p, 2, RGBColor(31, 119, 180).mix(0.5).filled())),
            )
            .map_err(e)?
            .label(format!(
                "data mapped to u = f⁻¹(x) ({} of {} rows)",
                pts.len(),
                us.len()
            ))
            .legend(|(x, y)| Circle::new((x + 9, y), 3, RGBColor(31, 119, 180).filled()));
        for r in [1.0f64, 2.0, 3.0] {
            let circle: Vec<(f64, f64)> = (0..=120)
                .map(|k| {
                    let t = k as f64 / 120.0 * std::f64::consts::TAU;
                    (r * t.cos(), r * t.sin())
                })
                .collect();
            let colour = RGBColor(214, 39, 40);
            chart
                .draw_series(DashedLineSeries::new(circle, 6, 4, colour.stroke_width(2)))
                .map_err(e)?
                .label(format!(
                    "r = {r}: {:.1}% of points inside, {reference_name} {:.1}%",
                    100.0 * inside(r),
                    100.0 * reference(r)
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 14, path)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_is_even_and_bounded() {
        assert_eq!(subsample(3, 10), vec![0, 1, 2]);
        assert_eq!(subsample(10, 5), vec![0, 2, 4, 6, 8]);
    }

    #[test]
    fn standard_normal_mass_within_radius() {
        assert!((mass_within(1.0) - 0.3935).abs() < 1e-4);
        assert!((mass_within(2.0) - 0.8647).abs() < 1e-4);
        assert!((mass_within(3.0) - 0.9889).abs() < 1e-4);
    }
}
