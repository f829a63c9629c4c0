//! SVG charts: the `report` plots ([`report`], and [`windows`] for a window),
//! and the pictures of a two-dimensional model ([`density`]), with the drawing
//! helpers they share ([`svg`]).

pub mod density;
pub mod report;
pub mod svg;
pub mod windows;
