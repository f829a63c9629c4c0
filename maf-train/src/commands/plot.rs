//! `maf-train plot` (pictures of a two-dimensional model) and the hidden
//! `figure1-data` (the paper's Figure 1 data set).

use crate::charts::density::{base_space_plot, check_2d, density_plot, plot_paths};
use crate::cli::{Figure1Args, PlotArgs};
use crate::data;
use crate::error::{Error, Result};
use crate::io::{file_name, load_view, model_split, read_model, write_output};

/// Runs `maf-train plot`: writes the two plots and prints their paths.
///
/// # Errors
/// [`Error::InvalidParam`] for a model that is not 2-D; bad model or data files.
pub fn run(a: &PlotArgs) -> Result<()> {
    let blob = read_model(&a.model)?;
    let view = load_view(&blob, &a.model.display().to_string())?;
    check_2d(view.shape(), &a.model)?;
    let table = data::read_data(&a.data)?;
    let split = model_split(&view, &table)?;
    std::fs::create_dir_all(&a.out_dir).map_err(|e| Error::io(&a.out_dir, e))?;
    let [density, base] = plot_paths(&a.out_dir);
    let name = file_name(&a.model);
    let layers = view.shape().layers;
    density_plot(
        &density,
        &view,
        &split.x,
        &split.x_names,
        &format!(
            "Density of {name} ({layers} MADE{})",
            if layers == 1 { "" } else { "s" }
        ),
    )?;
    base_space_plot(
        &base,
        &view,
        &split.x,
        &if view.base() == maf_core::Base::StandardNormal {
            format!("Data in the base space of {name}: should look N(0, I)")
        } else {
            format!("Data in the base space of {name}: should look like its mixture base")
        },
    )?;
    write_output(
        None,
        &format!(
            "{}  model density p(x) with the data\n{}  data mapped to the base space u = f^-1(x)\n",
            density.display(),
            base.display()
        ),
    )
}

/// Runs `maf-train figure1-data`.
///
/// # Errors
/// Writing the output.
pub fn figure1_data(a: &Figure1Args) -> Result<()> {
    write_output(a.out.as_deref(), &data::figure1_csv(a.rows, a.seed))
}
