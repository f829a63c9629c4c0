//! The drawing helpers every chart shares: error mapping, legend style, and the
//! atomic SVG write.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// A drawing error as an [`Error::Io`] naming the plot file.
pub(crate) fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::other(format!("drawing the plot: {e}")),
    )
}

/// Draws a chart's series labels in the style every plot uses: a translucent
/// white box with a light border at `position`.
pub(crate) fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
    path: &Path,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", font_size))
        .draw()
        .map_err(|e| plot_err(path, e))
}

/// Writes an SVG drawn into a string atomically.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(root.clone())?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::io::write_atomic(path, svg.as_bytes())
}
