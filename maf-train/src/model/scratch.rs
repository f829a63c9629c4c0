//! Buffers reused from one training step to the next: the forward pass's caches
//! and the backward pass's per-row gradients have the same shapes at every
//! minibatch, so they are taken from and given back to a [`Scratch`] instead of
//! being allocated and zeroed each step.
//!
//! A buffer taken from a `Scratch` holds whatever it held before (stale values,
//! possibly NaN): every user overwrites all of it before reading (an assignment
//! by `Zip`, or a matrix product with `beta = 0`, which `matrixmultiply` computes
//! without reading its output).

use ndarray::{Array1, Array2};

use super::arch::Real;

/// Most buffers a [`Scratch`] keeps (more than one step of the deepest model
/// uses; beyond it, given-back buffers are dropped).
const MAX_KEPT: usize = 512;

/// A pool of `Vec` buffers, handed out as arrays of any shape.
#[derive(Debug, Default)]
pub struct Scratch<F> {
    free: Vec<Vec<F>>,
}

impl<F: Real> Scratch<F> {
    /// An empty pool.
    pub fn new() -> Self {
        Scratch { free: Vec::new() }
    }

    /// A buffer of `len` values (unspecified contents): the smallest kept one
    /// that holds `len`, or the largest grown to `len`, or a new one.
    fn take_vec(&mut self, len: usize) -> Vec<F> {
        let fit = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = match fit {
            Some(i) => self.free.swap_remove(i),
            None => self.free.pop().unwrap_or_default(),
        };
        v.resize(len, F::zero());
        v
    }

    /// A `rows × cols` array with unspecified contents.
    pub(super) fn take2(&mut self, rows: usize, cols: usize) -> Array2<F> {
        let v = self.take_vec(rows * cols);
        Array2::from_shape_vec((rows, cols), v)
            .unwrap_or_else(|_| unreachable!("the buffer has rows * cols values"))
    }

    /// A `len`-vector with unspecified contents.
    pub(super) fn take1(&mut self, len: usize) -> Array1<F> {
        Array1::from_vec(self.take_vec(len))
    }

    /// Gives `a`'s buffer back.
    pub(super) fn give2(&mut self, a: Array2<F>) {
        self.give_vec(a.into_raw_vec_and_offset().0);
    }

    /// Gives `a`'s buffer back.
    pub(super) fn give1(&mut self, a: Array1<F>) {
        self.give_vec(a.into_raw_vec_and_offset().0);
    }

    fn give_vec(&mut self, v: Vec<F>) {
        if v.capacity() > 0 && self.free.len() < MAX_KEPT {
            self.free.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::super::arch::{Activation, Arch};
    use super::super::params::{Masks, Params};
    use super::Scratch;

    /// A pool full of NaN buffers of every size a step of `arch` on `n` rows
    /// takes (and some others).
    fn poisoned(n: usize, arch: &Arch) -> Scratch<f32> {
        let mut s = Scratch::new();
        let (d, h) = (arch.dim, arch.hidden);
        for len in [1, n, n * d, n * 2 * d, n * h, n * h + 3, 7 * n * h] {
            for _ in 0..12 {
                let mut a = s.take2(1, len);
                a.fill(f32::NAN);
                s.give2(a);
            }
        }
        for _ in 0..100 {
            let mut a = s.take2(n, h);
            a.fill(f32::NAN);
            s.free.insert(0, a.into_raw_vec_and_offset().0);
        }
        s
    }

    /// Loss and gradient (every tensor's bits) of steps with reused, NaN-filled
    /// buffers equal those of a fresh pool, for every path of the forward and
    /// backward passes (batch norm, two hidden layers, context, mixture base).
    #[test]
    fn stale_buffers_do_not_change_a_step() {
        for (activation, hidden_layers, context, base) in [
            (Activation::Tanh, 1, 0, maf_core::Base::StandardNormal),
            (
                Activation::Relu,
                2,
                3,
                maf_core::Base::Mixture {
                    components: 3,
                    covariance: maf_core::Covariance::Full,
                },
            ),
        ] {
            let arch = Arch {
                dim: 5,
                context,
                hidden: 24,
                hidden_layers,
                layers: 3,
                batch_norm: true,
                activation,
                base,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let masks = Masks::<f32>::new(&arch);
            let p = Params::<f32>::init(arch, &masks, &mut rng);
            let n = 150;
            let x = Array2::from_shape_fn((n, arch.dim), |_| rng.gen_range(-2.0f32..2.0));
            let c = Array2::from_shape_fn((n, context), |_| rng.gen_range(-2.0f32..2.0));
            let mut want = Params::<f32>::zeros(arch);
            let want_loss = p.loss_and_grad(&masks, x.view(), c.view(), &mut want);
            assert!(want_loss.is_finite());
            let mut scratch = poisoned(n, &arch);
            for _ in 0..3 {
                let mut got = Params::<f32>::zeros(arch);
                got.tensors.iter_mut().for_each(|t| t.fill(f32::NAN));
                let loss =
                    p.loss_and_grad_with(&masks, x.view(), c.view(), &mut got, 1, &mut scratch);
                assert_eq!(loss.to_bits(), want_loss.to_bits());
                for (g, w) in got.tensors.iter().zip(&want.tensors) {
                    let gb: Vec<u32> = g.iter().map(|v| v.to_bits()).collect();
                    let wb: Vec<u32> = w.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(gb, wb);
                }
            }
        }
    }
}
