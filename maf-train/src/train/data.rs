//! The standardised rows the trainer works on.

use ndarray::ArrayView2;

/// Standardised data the trainer works on.
#[derive(Clone, Copy, Debug)]
pub struct Data<'a> {
    /// Features, rows × D.
    pub x: ArrayView2<'a, f32>,
    /// Context, rows × C (C may be 0).
    pub c: ArrayView2<'a, f32>,
}
