//! The hidden layer's `tanh` over a slice, with AVX2 where the CPU has it.
//!
//! The training step spends about a sixth of its time in `tanh` (maf-core's
//! rational approximation, [`maf_core::tanh`]). A build for baseline x86-64
//! vectorises it four lanes wide (SSE2); the same loop compiled with AVX2, chosen
//! at run time, is eight lanes wide. Only the instructions' width changes: AVX2
//! without FMA performs the very IEEE operations (multiply, add, divide, select)
//! of the scalar function, in its order, so every lane's result is the same bits
//! (tested below against the scalar function on every `f32` of a wide sample).

/// `h[i] = maf_core::tanh(a[i])` for every `i` (the slices have one length).
pub(super) fn tanh_into(h: &mut [f32], a: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the only requirement of
        // `tanh_avx2`.
        #[allow(unsafe_code)]
        unsafe {
            tanh_avx2(h, a)
        };
        return;
    }
    tanh_plain(h, a);
}

#[inline(always)]
fn tanh_plain(h: &mut [f32], a: &[f32]) {
    for (h, &a) in h.iter_mut().zip(a) {
        *h = maf_core::tanh(a);
    }
}

/// [`tanh_plain`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(h: &mut [f32], a: &[f32]) {
    tanh_plain(h, a);
}

#[cfg(test)]
mod tests {
    /// Every 4099th `f32` bit pattern (all signs and exponents), the infinities,
    /// a NaN and the edges of the linear and clamped ranges, in slices of
    /// awkward lengths: the same bits as the scalar function.
    #[test]
    fn slice_tanh_is_scalar_tanh() {
        let mut xs: Vec<f32> = (0..u32::MAX / 4099)
            .map(|i| f32::from_bits(i * 4099))
            .collect();
        for x in [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            4e-4,
            -4e-4,
            7.905_311,
            -7.905_311,
            0.0,
            -0.0,
        ] {
            xs.extend([
                x,
                f32::from_bits(x.to_bits() + 1),
                f32::from_bits(x.to_bits().wrapping_sub(1)),
            ]);
        }
        let mut out = vec![0.0f32; xs.len()];
        for chunk in [1usize, 7, 8, 9, 63, 4096] {
            for (o, x) in out.chunks_mut(chunk).zip(xs.chunks(chunk)) {
                super::tanh_into(o, x);
            }
            for (&o, &x) in out.iter().zip(&xs) {
                assert_eq!(o.to_bits(), maf_core::tanh(x).to_bits(), "x = {x:e}");
            }
        }
    }
}
