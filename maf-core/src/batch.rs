//! Many vectors at once: the density pass with [`LANES`] vectors in lockstep.
//!
//! Host scoring of big logs evaluates one model on many vectors. Here every
//! activation is a block of [`LANES`] floats, one per vector ("lanes across
//! vectors"), and each weight read from the blob is applied to all lanes at once,
//! so the compiler turns every step into SIMD instructions (on x86-64 two SSE2
//! operations of 4 lanes each; the assembly of [`crate::MafView::log_prob_batch`]
//! shows `mulps`/`addps`).
//!
//! **Bit for bit the one-vector kernel.** Each lane performs exactly the f32
//! operations of [`crate::MafView::log_prob`] (and so of the device), in the same
//! order: the same dot products folded in index order, no fused multiply-add, the
//! same [`crate::tanh`], and an `expf` that reproduces `libm::expf` for every one
//! of the 2³² inputs (tested exhaustively), falling back to `libm::expf` itself for
//! the lanes outside its fast range; `logf` is `libm::logf` per lane. Two details
//! of the one-vector kernel need care when no lane may skip work:
//!
//! * A ReLU unit at zero feeds no output there (its output weights are
//!   skipped). Here every unit's terms are added, and a unit at zero adds
//!   `w * +0.0`, a zero (weights are finite): the accumulator changes at most in
//!   the sign of a zero (`-0.0 + +0.0` is `+0.0`). Such a sign never reaches the
//!   log density: `mu`'s only changes the sign of a zero `u`; `alpha`'s is lost
//!   in `expf(-alpha) = 1` and in `Σ alpha`, which starts at `+0.0`; a zero's
//!   sign then only flows, through sums, products and `tanh` (odd), into other
//!   zeros, until the base density squares it away. The bits of the log density
//!   are the one-vector kernel's (the test `tests/batch.rs` checks them on
//!   weights and inputs full of zeros of both signs); those of the base vector
//!   `u` could differ in the sign of a zero, which is why only the log density is
//!   batched.
//! * The mixture's streaming log-sum-exp branches on `v > max`; here both branches
//!   are computed and each lane selects its own.
//!
//! Nothing here is used by the one-vector paths, so a firmware that does not call
//! [`crate::MafView::log_prob_batch`] links none of it.

use crate::base::{Base, Covariance};
use crate::num::HALF_LN_2PI;
use crate::shape::{TANH_CLAMP, TANH_LINEAR};
use crate::{Activation, Error, Result, Shape};
use wide::{CmpGt, CmpLt, f32x8};

/// Vectors evaluated in lockstep by [`crate::MafView::log_prob_batch`]. Row counts
/// need not be a multiple of it (the last block is padded).
pub const LANES: usize = 8;

/// One activation of [`LANES`] vectors.
type Lane = [f32; LANES];

const MALFORMED: Error = Error::Malformed("weights");

/// Floats of scratch [`log_prob_batch`] needs for a shape: [`LANES`] times
/// [`Shape::scratch_len`].
pub(crate) const fn scratch_len(shape: Shape) -> usize {
    LANES * shape.scratch_len()
}

/// The model's parts the batched pass reads (those of a [`crate::MafView`]).
#[derive(Clone, Copy)]
pub(crate) struct Model<'a> {
    pub shape: Shape,
    pub activation: Activation,
    pub weights: &'a [f32],
    pub log_det_const: f32,
    pub base: Base,
    pub base_weights: &'a [f32],
}

/// Working memory of one block of lanes.
struct Work<'s> {
    /// State vector (`D` lanes).
    s: &'s mut [Lane],
    /// MADE output / base scratch (`D`).
    u: &'s mut [Lane],
    /// Output accumulators, `(mu_p, alpha_p)` interleaved (`2 D`).
    acc: &'s mut [Lane],
    /// Standardised context (`C`).
    cz: &'s mut [Lane],
    /// First hidden layer, two hidden layers only (`H` or empty).
    h: &'s mut [Lane],
}

impl<'s> Work<'s> {
    fn split(shape: Shape, scratch: &'s mut [f32]) -> Result<Self> {
        let found = scratch.len();
        let (blocks, _) = scratch.as_chunks_mut::<LANES>();
        let blocks = blocks
            .get_mut(..shape.scratch_len())
            .ok_or(Error::LengthMismatch {
                what: "scratch",
                expected: scratch_len(shape),
                found,
            })?;
        let (s, rest) = blocks.split_at_mut(shape.dim);
        let (u, rest) = rest.split_at_mut(shape.dim);
        let (acc, rest) = rest.split_at_mut(2 * shape.dim);
        let (cz, h) = rest.split_at_mut(shape.context);
        Ok(Self { s, u, acc, cz, h })
    }
}

/// The lanes as one SIMD vector (two SSE registers on baseline x86-64).
#[inline(always)]
fn v(a: &Lane) -> f32x8 {
    f32x8::from(*a)
}

/// `a + Σ w[j] x[j]` per lane, in index order (the one-vector `dot`), each
/// term a product, then a sum: never fused.
#[inline(always)]
fn dot(a: &mut Lane, w: &[f32], x: &[Lane]) {
    let mut acc = v(a);
    for (&w, x) in w.iter().zip(x) {
        acc += f32x8::splat(w) * v(x);
    }
    *a = acc.to_array();
}

/// A hidden activation over lanes.
trait LaneAct: Copy {
    /// `act(a)` per lane.
    fn apply(self, a: &Lane) -> Lane;
}

#[cfg(feature = "relu")]
#[derive(Clone, Copy)]
struct Relu;

#[cfg(feature = "relu")]
impl LaneAct for Relu {
    #[inline(always)]
    fn apply(self, a: &Lane) -> Lane {
        // `if a > 0 { a } else { +0.0 }` (NaN gives +0.0).
        let a = v(a);
        let zero = f32x8::splat(0.0);
        a.cmp_gt(zero).blend(a, zero).to_array()
    }
}

#[cfg(feature = "tanh")]
#[derive(Clone, Copy)]
struct Tanh;

#[cfg(feature = "tanh")]
impl LaneAct for Tanh {
    /// [`crate::tanh`] per lane (branch-free: clamp, rational, select), its
    /// operations in its order.
    #[inline(always)]
    fn apply(self, a: &Lane) -> Lane {
        let a = v(a);
        let (lo, hi) = (f32x8::splat(-TANH_CLAMP), f32x8::splat(TANH_CLAMP));
        // `f32::clamp`: below `lo` gives `lo`, above `hi` gives `hi`, NaN stays.
        let x = a.cmp_lt(lo).blend(lo, a);
        let x = x.cmp_gt(hi).blend(hi, x);
        let x2 = x * x;
        let k = f32x8::splat;
        let mut p = k(-2.760_768_5e-16_f32);
        p = p * x2 + k(2.000_188e-13);
        p = p * x2 + k(-8.604_672e-11);
        p = p * x2 + k(5.122_297e-8);
        p = p * x2 + k(1.485_722_4e-5);
        p = p * x2 + k(6.372_619_3e-4);
        p = p * x2 + k(4.893_524_6e-3);
        p *= x;
        let mut q = k(1.198_258_4e-6_f32);
        q = q * x2 + k(1.185_347e-4);
        q = q * x2 + k(2.268_434_6e-3);
        q = q * x2 + k(4.893_525e-3);
        let r = p / q;
        a.abs().cmp_lt(k(TANH_LINEAR)).blend(a, r).to_array()
    }
}

/// Adds a unit of value `h` to the outputs `tail` through its column `col`
/// (every unit: see the module documentation for ReLU units at zero).
#[inline(always)]
fn scatter(h: &Lane, col: &[f32], tail: &mut [Lane]) {
    let h = v(h);
    for (t, &w) in tail.iter_mut().zip(col) {
        *t = (v(t) + f32x8::splat(w) * h).to_array();
    }
}

/// Splits `n` floats off the front of `cur`.
#[inline(always)]
fn take<'a>(cur: &mut &'a [f32], n: usize) -> Result<&'a [f32]> {
    let (head, rest) = cur.split_at_checked(n).ok_or(MALFORMED)?;
    *cur = rest;
    Ok(head)
}

/// One MADE in the density direction over lanes (the one-vector `made_density`):
/// `u[p] = (s[p] - mu_p) exp(-alpha_p)`; returns `Σ_p alpha_p` per lane.
#[inline(always)]
fn made_density<A: LaneAct>(shape: Shape, act: A, made: &[f32], w: &mut Work<'_>) -> Result<Lane> {
    let dim = shape.dim;
    let mut cur = made;
    let mut l1 = take(&mut cur, shape.layer1_len())?;
    let mut l2 = take(&mut cur, shape.layer2_len())?;
    let bias = take(&mut cur, 2 * dim)?;
    let mut out = cur;
    let acc = w.acc.get_mut(..2 * dim).ok_or(MALFORMED)?;
    for (a, &b) in acc.iter_mut().zip(bias) {
        *a = [b; LANES];
    }
    let (z, cz) = (&*w.s, &*w.cz);
    let c = shape.context;
    if shape.hidden_layers == 1 {
        for m in 1..=shape.degrees() {
            let zs = z.get(..m).ok_or(MALFORMED)?;
            let tail = acc.get_mut(2 * m..).unwrap_or_default();
            for _ in 0..shape.units_of_degree(m) {
                let row = take(&mut l1, 1 + m + c)?;
                let col = take(&mut out, tail.len())?;
                let (b, rest) = row.split_first().ok_or(MALFORMED)?;
                let (wx, wc) = rest.split_at_checked(m).ok_or(MALFORMED)?;
                let mut a = [*b; LANES];
                dot(&mut a, wx, zs);
                dot(&mut a, wc, cz);
                scatter(&act.apply(&a), col, tail);
            }
        }
    } else {
        let mut slots = w.h.iter_mut();
        for m in 1..=shape.degrees() {
            let zs = z.get(..m).ok_or(MALFORMED)?;
            for _ in 0..shape.units_of_degree(m) {
                let row = take(&mut l1, 1 + m + c)?;
                let (b, rest) = row.split_first().ok_or(MALFORMED)?;
                let (wx, wc) = rest.split_at_checked(m).ok_or(MALFORMED)?;
                let mut a = [*b; LANES];
                dot(&mut a, wx, zs);
                dot(&mut a, wc, cz);
                *slots.next().ok_or(MALFORMED)? = act.apply(&a);
            }
        }
        let h1 = &*w.h;
        for m in 1..=shape.degrees() {
            let hs = h1.get(..shape.cum(m)).unwrap_or_default();
            let tail = acc.get_mut(2 * m..).unwrap_or_default();
            for _ in 0..shape.units_of_degree(m) {
                let row = take(&mut l2, 1 + hs.len())?;
                let col = take(&mut out, tail.len())?;
                let (b, wh) = row.split_first().ok_or(MALFORMED)?;
                let mut a = [*b; LANES];
                dot(&mut a, wh, hs);
                scatter(&act.apply(&a), col, tail);
            }
        }
    }
    let mut sum_alpha = [0.0f32; LANES];
    for ((up, zp), pair) in w.u.iter_mut().zip(z).zip(acc.chunks_exact(2)) {
        if let [mu, alpha] = pair {
            let mut neg = *alpha;
            for v in &mut neg {
                *v = -*v;
            }
            let e = expf(&neg);
            for (((u, &z), (&mu, &e)), (s, &al)) in up
                .iter_mut()
                .zip(zp)
                .zip(mu.iter().zip(&e))
                .zip(sum_alpha.iter_mut().zip(alpha))
            {
                *u = (z - mu) * e;
                *s += al;
            }
        }
    }
    Ok(sum_alpha)
}

/// Reverses the order of `v`'s blocks (positions), as the one-vector `reverse`.
#[inline(always)]
fn reverse(v: &mut [Lane]) {
    let (front, back) = v.split_at_mut(v.len() / 2);
    for (a, b) in front.iter_mut().zip(back.iter_mut().rev()) {
        core::mem::swap(a, b);
    }
}

/// The flow to the base space over lanes: `w.s` holds the standardised inputs on
/// entry and `u = f⁻¹(x)` on return; returns `Σ_l Σ_p alpha` per lane.
#[inline(always)]
fn to_base<A: LaneAct>(model: &Model<'_>, act: A, w: &mut Work<'_>) -> Result<Lane> {
    let shape = model.shape;
    let dim = shape.dim;
    let made_len = shape.made_len();
    let mades = model.weights.get(shape.preamble_len()..).ok_or(MALFORMED)?;
    let mut sum_alpha = [0.0f32; LANES];
    for layer in 0..shape.layers {
        let made = mades
            .get(layer * made_len..(layer + 1) * made_len)
            .ok_or(MALFORMED)?;
        let odd = layer % 2 == 1;
        if odd {
            reverse(w.s);
        }
        let s = made_density(shape, act, made, w)?;
        for (t, &s) in sum_alpha.iter_mut().zip(&s) {
            *t += s;
        }
        if odd {
            reverse(w.u);
        }
        if shape.batch_norm {
            let bn = made.get(made_len - 2 * dim..).unwrap_or_default();
            let (scale, shift) = bn.split_at_checked(dim).unwrap_or((bn, &[]));
            for (((s, u), &a), &b) in w.s.iter_mut().zip(w.u.iter()).zip(scale).zip(shift) {
                for (s, &u) in s.iter_mut().zip(u) {
                    *s = u * a + b;
                }
            }
        } else {
            for (s, u) in w.s.iter_mut().zip(w.u.iter()) {
                *s = *u;
            }
        }
    }
    Ok(sum_alpha)
}

/// The base log density per lane of `u` (`d`: scratch of the same length), as
/// the one-vector `base::log_density`.
#[inline(always)]
fn base_log_density(base: Base, section: &[f32], u: &[Lane], d: &mut [Lane]) -> Lane {
    let dim = u.len();
    let Base::Mixture { covariance, .. } = base else {
        // `Iterator::sum` of f32 starts at -0.0.
        let mut sq = [-0.0f32; LANES];
        for v in u {
            for (s, &v) in sq.iter_mut().zip(v) {
                *s += v * v;
            }
        }
        let c = dim as f32 * HALF_LN_2PI;
        for s in &mut sq {
            *s = -0.5 * *s - c;
        }
        return sq;
    };
    let mut max = [f32::NEG_INFINITY; LANES];
    let mut sum = [0.0f32; LANES];
    for comp in section.chunks_exact(base.component_len(dim)) {
        let (c, rest) = comp.split_first().unwrap_or((&0.0, &[]));
        let (mean, factor) = rest.split_at_checked(dim).unwrap_or((rest, &[]));
        for ((d, u), &m) in d.iter_mut().zip(u).zip(mean) {
            for (d, &u) in d.iter_mut().zip(u) {
                *d = u - m;
            }
        }
        let mut sq = [0.0f32; LANES];
        match covariance {
            Covariance::Full => {
                let mut row = factor;
                for j in 0..dim {
                    let (w, rest) = row.split_at_checked(j + 1).unwrap_or((row, &[]));
                    row = rest;
                    let mut z = [0.0f32; LANES];
                    dot(&mut z, w, d);
                    for (s, &z) in sq.iter_mut().zip(&z) {
                        *s += z * z;
                    }
                }
            }
            Covariance::Diagonal => {
                for (&w, d) in factor.iter().zip(d.iter()) {
                    for (s, &d) in sq.iter_mut().zip(d) {
                        let z = w * d;
                        *s += z * z;
                    }
                }
            }
        }
        // Both branches of the streaming log-sum-exp, each lane taking its own.
        let mut v = [0.0f32; LANES];
        let mut arg = [0.0f32; LANES];
        for (((v, a), &sq), &mx) in v.iter_mut().zip(&mut arg).zip(&sq).zip(&max) {
            *v = *c - 0.5 * sq;
            *a = if *v > mx {
                mx - *v
            } else if *v > f32::NEG_INFINITY {
                *v - mx
            } else {
                0.0
            };
        }
        let e = expf(&arg);
        for (((s, mx), &v), &e) in sum.iter_mut().zip(&mut max).zip(&v).zip(&e) {
            if v > *mx {
                *s = *s * e + 1.0;
                *mx = v;
            } else if v > f32::NEG_INFINITY {
                *s += e;
            }
        }
    }
    for (m, &s) in max.iter_mut().zip(&sum) {
        *m += libm::logf(s);
    }
    max
}

/// The log densities of one block of lanes whose standardised inputs and context
/// are in `w.s` and `w.cz`.
#[inline(always)]
fn block<A: LaneAct>(model: &Model<'_>, act: A, w: &mut Work<'_>) -> Result<Lane> {
    let sum_alpha = to_base(model, act, w)?;
    let base = base_log_density(model.base, model.base_weights, w.s, w.u);
    let mut lp = [0.0f32; LANES];
    for ((lp, &b), &s) in lp.iter_mut().zip(&base).zip(&sum_alpha) {
        *lp = b + (model.log_det_const - s);
    }
    Ok(lp)
}

/// Writes row `x`'s standardised values into lane `lane` of `s` and its
/// context's into `cz`, or returns the one-vector path's error for the row.
#[inline(always)]
fn load_row(
    model: &Model<'_>,
    x: &[f32],
    ctx: &[f32],
    lane: usize,
    w: &mut Work<'_>,
) -> Result<()> {
    let shape = model.shape;
    let (x_mean, rest) = model.weights.split_at_checked(shape.dim).ok_or(MALFORMED)?;
    let (x_inv, rest) = rest.split_at_checked(shape.dim).ok_or(MALFORMED)?;
    let (c_mean, rest) = rest.split_at_checked(shape.context).ok_or(MALFORMED)?;
    let c_inv = rest.get(..shape.context).ok_or(MALFORMED)?;
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteInput { index });
    }
    if let Some(index) = ctx.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteContext { index });
    }
    for (((s, &x), &m), &k) in w.s.iter_mut().zip(x).zip(x_mean).zip(x_inv) {
        *s.get_mut(lane).ok_or(MALFORMED)? = (x - m) * k;
    }
    for (((z, &c), &m), &k) in w.cz.iter_mut().zip(ctx).zip(c_mean).zip(c_inv) {
        *z.get_mut(lane).ok_or(MALFORMED)? = (c - m) * k;
    }
    Ok(())
}

/// Copies lane 0 of the inputs into lanes `from..` (padding of the last block).
fn pad(w: &mut Work<'_>, from: usize) {
    for v in w.s.iter_mut().chain(w.cz.iter_mut()) {
        let first = v[0];
        for x in v.iter_mut().skip(from) {
            *x = first;
        }
    }
}

/// The log densities of `rows = out.len()` vectors, `xs` holding them row after
/// row (`rows × D`) and `ctxs` their contexts (`rows × C`): `out[r]` is what
/// [`crate::MafView::log_prob`] returns for row `r`, bit for bit.
pub(crate) fn log_prob_batch(
    model: &Model<'_>,
    xs: &[f32],
    ctxs: &[f32],
    out: &mut [Result<f32>],
    scratch: &mut [f32],
) -> Result<()> {
    match model.activation {
        #[cfg(feature = "relu")]
        Activation::Relu => run(model, Relu, xs, ctxs, out, scratch),
        #[cfg(feature = "tanh")]
        Activation::Tanh => run(model, Tanh, xs, ctxs, out, scratch),
        #[allow(unreachable_patterns)]
        act => Err(Error::ActivationNotBuilt(act)),
    }
}

fn run<A: LaneAct>(
    model: &Model<'_>,
    act: A,
    xs: &[f32],
    ctxs: &[f32],
    out: &mut [Result<f32>],
    scratch: &mut [f32],
) -> Result<()> {
    let shape = model.shape;
    let rows = out.len();
    let (dim, c) = (shape.dim, shape.context);
    for (what, expected, found) in [
        ("inputs", rows * dim, xs.len()),
        ("contexts", rows * c, ctxs.len()),
    ] {
        if expected != found {
            return Err(Error::LengthMismatch {
                what,
                expected,
                found,
            });
        }
    }
    let mut w = Work::split(shape, scratch)?;
    let mut rows_of = [0usize; LANES];
    let mut filled = 0;
    for r in 0..rows {
        let x = xs.get(r * dim..(r + 1) * dim).ok_or(MALFORMED)?;
        let ctx = ctxs.get(r * c..(r + 1) * c).ok_or(MALFORMED)?;
        match load_row(model, x, ctx, filled, &mut w) {
            Ok(()) => {
                if let Some(slot) = rows_of.get_mut(filled) {
                    *slot = r;
                }
                filled += 1;
                if filled == LANES {
                    finish(model, act, &mut w, &rows_of, out)?;
                    filled = 0;
                }
            }
            // The rows still in the block are written when it is evaluated.
            Err(e) => {
                if let Some(slot) = out.get_mut(r) {
                    *slot = Err(e);
                }
            }
        }
    }
    if filled > 0 {
        pad(&mut w, filled);
        finish(
            model,
            act,
            &mut w,
            rows_of.get(..filled).unwrap_or_default(),
            out,
        )?;
    }
    Ok(())
}

/// Evaluates the block in `w` and writes lane `l`'s result to `out[rows_of[l]]`
/// (`Err(Overflow)` where it is not finite, as the one-vector path).
#[inline(always)]
fn finish<A: LaneAct>(
    model: &Model<'_>,
    act: A,
    w: &mut Work<'_>,
    rows_of: &[usize],
    out: &mut [Result<f32>],
) -> Result<()> {
    let lp = block(model, act, w)?;
    for (&r, &v) in rows_of.iter().zip(&lp) {
        if let Some(slot) = out.get_mut(r) {
            *slot = if v.is_finite() {
                Ok(v)
            } else {
                Err(Error::Overflow)
            };
        }
    }
    Ok(())
}

/// `libm::expf` per lane, bit for bit (a test checks every f32 input): the fast
/// path reproduces its arithmetic without branches for `|x| < 80` and for
/// `x <= -103.972084` (0); the other lanes (NaN, overflow, subnormal results)
/// call `libm::expf` itself.
#[inline(always)]
fn expf(x: &Lane) -> Lane {
    let mut y = expf_fast(v(x)).to_array();
    if x.iter().any(|&x| needs_libm(x)) {
        for (y, &x) in y.iter_mut().zip(x) {
            if needs_libm(x) {
                *y = libm::expf(x);
            }
        }
    }
    y
}

/// Whether [`expf_fast`] does not reproduce `libm::expf(x)`.
#[inline(always)]
fn needs_libm(x: f32) -> bool {
    let hx = x.to_bits() & 0x7fff_ffff;
    let zero = x.is_sign_negative() && (0x42cf_f1b5..=0x7f80_0000).contains(&hx);
    hx >= 0x42a0_0000 && !zero
}

/// `libm::expf` (FreeBSD's `e_expf.c`) on 8 lanes without branches, right for
/// `|x| < 80` (then `scalbnf(y, k)` is the exact product `y 2^k`) and for
/// `x <= -103.972084` (0). The float-to-integer conversions are done in float
/// arithmetic, exact in that range.
#[inline(always)]
fn expf_fast(x: f32x8) -> f32x8 {
    use wide::i32x8;
    const LN2_HI: f32 = 6.931_457_5e-1;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // libm's 0x3fb8aa3b, which is `LOG2_E` rounded to f32.
    const INV_LN2: f32 = core::f32::consts::LOG2_E;
    const P1: f32 = 1.666_662_5e-1;
    const P2: f32 = -2.766_733_3e-3;
    /// `1.5 * 2^23`: `(t + ROUND) - ROUND` rounds `|t| < 2^22` to an integer.
    const ROUND: f32 = 12_582_912.0;
    /// `2^23 + 127`: the low bits of `k + BIAS` are `k + 127`.
    const BIAS: f32 = 8_388_735.0;
    let k = f32x8::splat;
    let mask = |m: i32x8| -> f32x8 { bytemuck::cast(m) };
    let hx = bytemuck::cast::<f32x8, i32x8>(x) & i32x8::splat(0x7fff_ffff);
    let above = |b: i32| mask(hx.cmp_gt(i32x8::splat(b)));
    // Where `x` is non-zero, which is wherever the sign is used below.
    let negative = x.cmp_lt(k(0.0));
    let sign = negative.blend(k(-1.0), k(1.0));
    // `k = (INV_LN2 * x + HALF[sign]) as i32`: truncation toward zero.
    let t = k(INV_LN2) * x + k(0.5) * sign;
    let near = (t + k(ROUND)) - k(ROUND);
    let k_big = near.abs().cmp_gt(t.abs()).blend(near - sign, near);
    let kf = above(0x3f85_1592).blend(k_big, above(0x3eb1_7218).blend(sign, k(0.0)));
    let hi = x - kf * k(LN2_HI);
    let lo = kf * k(LN2_LO);
    let r = hi - lo;
    let xx = r * r;
    let c = r - xx * (k(P1) + xx * k(P2));
    let y = k(1.0) + (r * c / (k(2.0) - c) - lo + hi);
    // `2^k` (other k than -126..=127 only in lanes that are replaced).
    let e = bytemuck::cast::<f32x8, i32x8>(kf + k(BIAS)) & i32x8::splat(0xff);
    let scale: f32x8 = bytemuck::cast(e << 23);
    let main = y * scale;
    let zero = negative & above(0x42cf_f1b4);
    above(0x3900_0000).blend(zero.blend(k(0.0), main), k(1.0) + x)
}

#[cfg(test)]
// Tests fail by panicking.
#[allow(clippy::panic)]
mod tests {
    use super::{LANES, expf};

    /// The lane `expf` gives the bits of `libm::expf` for every one of the 2³²
    /// `f32` inputs (NaNs compared as NaN), on two threads.
    #[test]
    fn lane_expf_is_bit_identical_for_every_f32() {
        let half = |top: u32| {
            move || {
                let mut bad = None;
                let mut lane = [0.0f32; LANES];
                for low in (0..=u32::MAX >> 1).step_by(LANES) {
                    for (i, v) in lane.iter_mut().enumerate() {
                        *v = f32::from_bits(top | (low + i as u32));
                    }
                    let got = expf(&lane);
                    for (&a, &g) in lane.iter().zip(&got) {
                        let want = libm::expf(a);
                        let same = want.to_bits() == g.to_bits() || (want.is_nan() && g.is_nan());
                        if !same && bad.is_none() {
                            bad = Some((a, want, g));
                        }
                    }
                }
                bad
            }
        };
        let negative = std::thread::spawn(half(1 << 31));
        let positive = half(0)();
        let Ok(negative) = negative.join() else {
            panic!("the thread for negative inputs panicked");
        };
        assert_eq!(positive, None, "(input, libm::expf, lane expf)");
        assert_eq!(negative, None, "(input, libm::expf, lane expf)");
    }
}
