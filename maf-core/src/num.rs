//! Scalar constants and slice helpers shared by the kernel, the base densities and
//! the batched path (a leaf: it imports nothing of the crate).

/// `0.5 * ln(2π)`.
pub(crate) const HALF_LN_2PI: f32 = 0.918_938_5;

/// [`slice::copy_from_slice`] where the lengths are equal (they always are here),
/// with no panic path (and its formatting code) in the inference code.
#[inline(always)]
pub(crate) fn copy(dst: &mut [f32], src: &[f32]) {
    if dst.len() == src.len() {
        dst.copy_from_slice(src);
    }
}
