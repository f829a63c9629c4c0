//! The arithmetic: one streaming pass over the packed weights per MADE.
//!
//! Every function takes the [`Shape`] by value and is `#[inline(always)]`: called
//! from the fixed-size [`Maf`](crate::Maf), the shapes are constants and the
//! compiler specialises the loops (prefix lengths, group sizes) at compile time;
//! called from [`MafView`](crate::MafView), the same code runs with run-time shapes,
//! performing the same operations in the same order, hence the same bits.

use crate::base::Base;
use crate::num::copy;
use crate::{Activation, Error, Result, Shape};

const MALFORMED: Error = Error::Malformed("weights");

/// A shape with the block lengths of one MADE worked out. [`Maf`](crate::Maf)
/// builds it in a `const`, so none of the (loop-computed) lengths is evaluated at
/// run time on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub shape: Shape,
    /// Floats of the first hidden layer's block.
    l1: usize,
    /// Floats of the second hidden layer's block (0 with one hidden layer).
    l2: usize,
    /// Floats of one MADE with its batch norm.
    made: usize,
    /// Whether the shape is a compile-time constant ([`Maf`](crate::Maf)): then
    /// the density pass of a one-hidden-layer model keeps its output accumulators
    /// in registers ([`Regs`]), code that only pays off when every index folds.
    fixed: bool,
}

impl Layout {
    /// The layout of a shape known only at run time.
    pub(crate) const fn new(shape: Shape) -> Self {
        Self {
            shape,
            l1: shape.layer1_len(),
            l2: shape.layer2_len(),
            made: shape.made_len(),
            fixed: false,
        }
    }

    /// The layout of a compile-time shape (built in a `const`).
    pub(crate) const fn fixed(shape: Shape) -> Self {
        Self {
            fixed: true,
            ..Self::new(shape)
        }
    }
}

/// A hidden activation. Every pass is monomorphised on it (`Relu`, `Tanh`), so no
/// unit pays for a `match`.
pub(crate) trait Act: Copy {
    /// Whether the density pass of a fixed-shape model keeps the output
    /// accumulators in registers ([`Regs`]) with this activation.
    const REGS: bool = false;

    fn apply(self, a: f32) -> f32;

    /// Whether a last-hidden-layer unit of value `h = apply(a)` feeds the outputs.
    ///
    /// The model defines each output as its bias plus the terms of the units that
    /// feed it, in unit order. A ReLU unit at zero does not feed: adding its
    /// `w * 0.0` would change an output only in the sign of a zero (`-0.0 + 0.0`
    /// is `+0.0`), and leaving it out lets the density pass skip the output
    /// weights of the inactive units, about half of them. Every pass (density,
    /// sampling, `Maf` and `MafView`) follows this definition, so they agree bit
    /// for bit.
    #[inline(always)]
    fn feeds(self, _h: f32) -> bool {
        true
    }
}

/// [`Activation::Relu`], fixed at compile time.
#[cfg(feature = "relu")]
#[derive(Clone, Copy)]
pub(crate) struct Relu;

#[cfg(feature = "relu")]
impl Act for Relu {
    const REGS: bool = true;

    #[inline(always)]
    fn apply(self, a: f32) -> f32 {
        Activation::Relu.apply(a)
    }

    #[inline(always)]
    fn feeds(self, h: f32) -> bool {
        // `apply(a)` is `a` when `a > 0`, else `+0.0` (also for `-0.0` and NaN).
        h > 0.0
    }
}

/// [`Activation::Tanh`], fixed at compile time.
#[cfg(feature = "tanh")]
#[derive(Clone, Copy)]
pub(crate) struct Tanh;

#[cfg(feature = "tanh")]
impl Act for Tanh {
    const REGS: bool = true;

    #[inline(always)]
    fn apply(self, a: f32) -> f32 {
        tanh_branchy(a)
    }
}

/// [`crate::tanh`] with branches where it selects: the same bits for every input
/// (a test checks all 2³² of them) in fewer instructions on a microcontroller,
/// where the common case (`4e-4 <= |a| < 7.9`) then skips the clamp and the
/// select. `crate::tanh` itself stays branch-free, so that `maf-train`'s loops
/// over it vectorise. Measured on the reference tanh model, together with
/// [`Regs`] for tanh: 25,646 instructions per log density instead of 29,538.
#[cfg(feature = "tanh")]
#[inline(always)]
pub(crate) fn tanh_branchy(a: f32) -> f32 {
    use crate::shape::{TANH_CLAMP, TANH_LINEAR, tanh_rational};
    let abs = a.abs();
    if abs < TANH_LINEAR {
        a
    } else if abs >= TANH_CLAMP {
        tanh_rational(TANH_CLAMP.copysign(a))
    } else {
        tanh_rational(a)
    }
}

/// Evaluates `$body` with `$a` bound to the compile-time activation ([`Relu`],
/// [`Tanh`]) of the run-time `$act`, or returns [`Error::ActivationNotBuilt`] for
/// an activation whose Cargo feature is off.
macro_rules! with_act {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            #[cfg(feature = "relu")]
            Activation::Relu => {
                let $a = Relu;
                $body
            }
            #[cfg(feature = "tanh")]
            Activation::Tanh => {
                let $a = Tanh;
                $body
            }
            #[allow(unreachable_patterns)]
            _ => Err(Error::ActivationNotBuilt($act)),
        }
    };
}

/// Working memory for one evaluation, split by role.
pub(crate) struct Work<'s> {
    /// State vector (`D`).
    pub s: &'s mut [f32],
    /// MADE output / base vector (`D`).
    pub u: &'s mut [f32],
    /// Output accumulators, `(mu_p, alpha_p)` interleaved (`2 D`).
    pub acc: &'s mut [f32],
    /// Standardised context (`C`).
    pub cz: &'s mut [f32],
    /// First hidden layer, kept only with two hidden layers (`H` or empty).
    pub h: &'s mut [f32],
}

impl<'s> Work<'s> {
    /// Splits one caller-supplied scratch slice.
    pub(crate) fn split(shape: Shape, scratch: &'s mut [f32]) -> Result<Self> {
        let needed = shape.scratch_len();
        let too_small = Error::LengthMismatch {
            what: "scratch",
            expected: needed,
            found: scratch.len(),
        };
        let scratch = scratch.get_mut(..needed).ok_or(too_small)?;
        let (s, rest) = scratch.split_at_mut(shape.dim);
        let (u, rest) = rest.split_at_mut(shape.dim);
        let (acc, rest) = rest.split_at_mut(2 * shape.dim);
        let (cz, h) = rest.split_at_mut(shape.context);
        Ok(Self { s, u, acc, cz, h })
    }
}

/// Reads consecutive rows off the weight stream.
struct Cursor<'a>(&'a [f32]);

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [f32]> {
        let (row, rest) = self.0.split_at_checked(n).ok_or(MALFORMED)?;
        self.0 = rest;
        Ok(row)
    }

    /// A row `[bias, w...]`.
    #[inline(always)]
    fn row(&mut self, n: usize) -> Result<(f32, &'a [f32])> {
        match self.take(1 + n)?.split_first() {
            Some((b, w)) => Ok((*b, w)),
            None => Err(MALFORMED),
        }
    }
}

/// `acc + Σ w[i] x[i]`, summed in index order.
#[inline(always)]
fn dot(acc: f32, w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(acc, |a, (w, x)| a + w * x)
}

/// The weight section split into the standardisation block and the MADEs.
struct Sections<'a> {
    x_mean: &'a [f32],
    x_inv: &'a [f32],
    c_mean: &'a [f32],
    c_inv: &'a [f32],
    mades: &'a [f32],
}

#[inline(always)]
fn sections(shape: Shape, weights: &[f32]) -> Result<Sections<'_>> {
    let mut cur = Cursor(weights);
    Ok(Sections {
        x_mean: cur.take(shape.dim)?,
        x_inv: cur.take(shape.dim)?,
        c_mean: cur.take(shape.context)?,
        c_inv: cur.take(shape.context)?,
        mades: cur.0,
    })
}

/// Standardises the context into `cz`, rejecting non-finite values.
#[inline(always)]
fn standardise_context(c_mean: &[f32], c_inv: &[f32], ctx: &[f32], cz: &mut [f32]) -> Result<()> {
    check_len("context", cz.len(), ctx.len())?;
    for (index, (((z, &c), &m), &k)) in cz.iter_mut().zip(ctx).zip(c_mean).zip(c_inv).enumerate() {
        if !c.is_finite() {
            return Err(Error::NonFiniteContext { index });
        }
        *z = (c - m) * k;
    }
    Ok(())
}

#[inline(always)]
fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            found,
        })
    }
}

/// The part of the log-determinant that does not depend on the input:
/// `Σ ln x_inv_std + Σ_l Σ_i ln bn_scale`.
pub(crate) fn constant_log_det(shape: Shape, weights: &[f32]) -> Result<f32> {
    let sec = sections(shape, weights)?;
    let mut total: f32 = sec.x_inv.iter().map(|&k| libm::logf(k)).sum();
    if shape.batch_norm {
        for block in sec.mades.chunks_exact(shape.made_len()) {
            let bn = block
                .get(block.len() - shape.batch_norm_len()..)
                .ok_or(MALFORMED)?;
            let scale = bn.get(..shape.dim).ok_or(MALFORMED)?;
            total += scale.iter().map(|&k| libm::logf(k)).sum::<f32>();
        }
    }
    if total.is_finite() {
        Ok(total)
    } else {
        Err(Error::Overflow)
    }
}

/// Runs the first-hidden-layer units of degree `M` (a compile-time constant, so
/// the `M`-term dot product is unrolled and `z[..M]` stays in registers):
/// `h = act(b + w·z[..M] + wc·cz)` for each of `n` consecutive rows, handing every
/// `h` to `sink` in row order.
#[inline(always)]
fn group_fixed<const M: usize, A: Act>(
    n: usize,
    act: A,
    rows: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    sink: &mut impl FnMut(f32) -> Result<()>,
) -> Result<()> {
    let zs: &[f32; M] = z.first_chunk().ok_or(MALFORMED)?;
    for _ in 0..n {
        let (b, w) = rows.row(M + cz.len())?;
        let (wx, wc) = w.split_first_chunk::<M>().ok_or(MALFORMED)?;
        let a = wx.iter().zip(zs).fold(b, |a, (w, x)| a + w * x);
        sink(act.apply(dot(a, wc, cz)))?;
    }
    Ok(())
}

/// [`group_fixed`] for a degree only known at run time: the same operations in the
/// same order, so the same bits.
#[inline(always)]
fn group_dyn<A: Act>(
    m: usize,
    n: usize,
    act: A,
    rows: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    sink: &mut impl FnMut(f32) -> Result<()>,
) -> Result<()> {
    let zs = z.get(..m).ok_or(MALFORMED)?;
    for _ in 0..n {
        let (b, w) = rows.row(m + cz.len())?;
        let (wx, wc) = w.split_at_checked(m).ok_or(MALFORMED)?;
        sink(act.apply(dot(dot(b, wx, zs), wc, cz)))?;
    }
    Ok(())
}

/// The first-layer units of degree `m`, dispatched to a specialised loop for the
/// degrees of models up to 17 dimensions.
#[inline(always)]
fn first_layer_group<A: Act>(
    m: usize,
    n: usize,
    act: A,
    rows: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    sink: &mut impl FnMut(f32) -> Result<()>,
) -> Result<()> {
    macro_rules! dispatch {
        ($($d:literal)*) => {
            match m {
                $($d => group_fixed::<$d, A>(n, act, rows, z, cz, sink),)*
                _ => group_dyn(m, n, act, rows, z, cz, sink),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// Adds a last-hidden-layer unit of degree `m` and value `h` to the outputs it
/// feeds ([`Act::feeds`]): positions `m .. D`, whose `(mu, alpha)` accumulators
/// are `acc[2m..]`.
#[inline(always)]
fn scatter<A: Act>(
    act: A,
    h: f32,
    m: usize,
    outputs: &mut Cursor<'_>,
    acc: &mut [f32],
) -> Result<()> {
    let tail = acc.get_mut(2 * m..).unwrap_or_default();
    let w = outputs.take(tail.len())?;
    if act.feeds(h) {
        for (a, w) in tail.iter_mut().zip(w) {
            *a += w * h;
        }
    }
    Ok(())
}

/// The hidden value of one unit of a one-hidden-layer MADE,
/// `h = act(b + w·z + wc·cz)` from its row `[b, w[..z.len()], wc[..cz.len()]]`, if
/// it feeds the outputs (a ReLU unit at 0 does not). The one piece of code every
/// `group1*` variant evaluates a unit with, so they cannot drift apart.
#[inline(always)]
fn hidden<A: Act>(act: A, row: &[f32], z: &[f32], cz: &[f32]) -> Option<f32> {
    let (&b, w) = row.split_first()?;
    let (wx, wc) = w.split_at_checked(z.len()).unwrap_or((w, &[]));
    let h = act.apply(dot(dot(b, wx, z), wc, cz));
    act.feeds(h).then_some(h)
}

/// One unit of a one-hidden-layer MADE ([`hidden`]), then `tail[i] += col[i] h`.
#[inline(always)]
fn unit<A: Act>(act: A, row: &[f32], z: &[f32], cz: &[f32], col: &[f32], tail: &mut [f32]) {
    if let Some(h) = hidden(act, row, z, cz) {
        for (t, w) in tail.iter_mut().zip(col) {
            *t += w * h;
        }
    }
}

/// The weight rows of a group of `n` first-layer units (`row_len` weights each)
/// and their output columns (`tail` weights each), taken from the streams;
/// `None` when the units feed no output (`tail` = 0, D = 1). Shared by every
/// `group1*` variant.
#[inline(always)]
fn group_weights<'a, 'b>(
    n: usize,
    row_len: usize,
    tail: usize,
    l1: &mut Cursor<'a>,
    out: &mut Cursor<'b>,
) -> Result<Option<(&'a [f32], &'b [f32])>> {
    let rows = l1.take(n * row_len)?;
    let cols = out.take(n * tail)?;
    if tail == 0 {
        return Ok(None);
    }
    Ok(Some((rows, cols)))
}

/// The output columns of a group of units with constant shapes: with const
/// shapes every row and column sits at a constant offset from the MADE's start,
/// and LLVM then addresses the columns as `base + iv + offset` with offsets
/// beyond VLDR's ±1020-byte reach: one extra ADD per weight. Hiding where the
/// column block starts gives it its own pointer. `len` (= `cols.len()`) is
/// passed so that the compiler still knows the length.
#[inline(always)]
fn own_pointer(cols: &[f32], len: usize) -> Result<&[f32]> {
    core::hint::black_box(cols).get(..len).ok_or(MALFORMED)
}

/// The `n` first-layer units of degree `M` of a one-hidden-layer MADE, each fed
/// straight into the outputs it reaches (`acc[2M..]`). The whole group's rows and
/// columns are split off once and walked in fixed-size chunks, so the loop has no
/// per-unit bounds checks; `z[..M]` is copied into a local array (registers).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group1<const M: usize, A: Act>(
    act: A,
    n: usize,
    l1: &mut Cursor<'_>,
    out: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    acc: &mut [f32],
) -> Result<()> {
    let tail = acc.get_mut(2 * M..).unwrap_or_default();
    let Some((rows, cols)) = group_weights(n, 1 + M + cz.len(), tail.len(), l1, out)? else {
        return Ok(());
    };
    let zs: [f32; M] = *z.first_chunk().ok_or(MALFORMED)?;
    let cols = own_pointer(cols, n * tail.len())?;
    for (row, col) in rows
        .chunks_exact(1 + M + cz.len())
        .zip(cols.chunks_exact(tail.len()))
    {
        unit(act, row, &zs, cz, col, tail);
    }
    Ok(())
}

/// [`group1`] for a degree only known at run time: the same operations in the same
/// order, so the same bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group1_dyn<A: Act>(
    act: A,
    m: usize,
    n: usize,
    l1: &mut Cursor<'_>,
    out: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    acc: &mut [f32],
) -> Result<()> {
    let tail = acc.get_mut(2 * m..).unwrap_or_default();
    let Some((rows, cols)) = group_weights(n, 1 + m + cz.len(), tail.len(), l1, out)? else {
        return Ok(());
    };
    let zs = z.get(..m).ok_or(MALFORMED)?;
    for (row, col) in rows
        .chunks_exact(1 + m + cz.len())
        .zip(cols.chunks_exact(tail.len()))
    {
        unit(act, row, zs, cz, col, tail);
    }
    Ok(())
}

/// The output accumulators `(mu_p, alpha_p)` of a model with `D <= REGS / 2`, one
/// field each. Fields, unlike the elements of an array, are always addressed by a
/// constant, so once [`made_density`] is inlined into a [`Maf`](crate::Maf) the
/// compiler promotes every field to a register for the whole MADE: a
/// multiply-accumulate is then a weight load and a `vmla`, instead of a load, a
/// `vmla` and a store of the accumulator.
#[derive(Clone, Copy)]
struct Regs(
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
    f32,
);

/// Accumulators [`Regs`] holds.
const REGS: usize = 32;

macro_rules! regs_impl {
    ($($k:tt)*) => {
        impl Regs {
            /// The accumulators `acc` (at most [`REGS`]; the rest are 0).
            #[inline(always)]
            fn load(acc: &[f32]) -> Self {
                let mut r = Self(
                    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                    0.0, 0.0, 0.0, 0.0,
                );
                $(if let Some(&a) = acc.get($k) { r.$k = a; })*
                r
            }

            /// Writes the accumulators back to `acc`.
            #[inline(always)]
            fn store(&self, acc: &mut [f32]) {
                $(if let Some(a) = acc.get_mut($k) { *a = self.$k; })*
            }

            /// `acc[from + i] += col[i] * h` for every `i < col.len()`: the
            /// scatter of one unit, in the same order as [`unit`]'s.
            #[inline(always)]
            fn scatter(&mut self, from: usize, col: &[f32], h: f32) {
                $(
                    if $k >= from {
                        if let Some(&w) = col.get($k - from) {
                            self.$k += w * h;
                        }
                    }
                )*
            }
        }
    };
}
regs_impl!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);

/// [`group1`] with the accumulators in [`Regs`]: the same operations in the same
/// order, so the same bits. (One generic `group1` over both kinds of accumulators
/// was measured 1.2% slower on the device: 10,984 instead of 10,859 instructions
/// per log density of the reference model, so the two stay separate.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group1_regs<const M: usize, A: Act>(
    act: A,
    n: usize,
    l1: &mut Cursor<'_>,
    out: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    dim: usize,
    regs: &mut Regs,
) -> Result<()> {
    let tail = 2 * dim.saturating_sub(M);
    let Some((rows, cols)) = group_weights(n, 1 + M + cz.len(), tail, l1, out)? else {
        return Ok(());
    };
    let zs: [f32; M] = *z.first_chunk().ok_or(MALFORMED)?;
    let cols = own_pointer(cols, n * tail)?;
    for (row, col) in rows
        .chunks_exact(1 + M + cz.len())
        .zip(cols.chunks_exact(tail))
    {
        if let Some(h) = hidden(act, row, &zs, cz) {
            regs.scatter(2 * M, col, h);
        }
    }
    Ok(())
}

/// The three weight streams of one MADE: first hidden layer, second hidden layer,
/// and the output columns (after the output biases, which initialise `acc`).
#[inline(always)]
fn streams<'a>(
    lay: Layout,
    made: &'a [f32],
    acc: &mut [f32],
) -> Result<(Cursor<'a>, Cursor<'a>, Cursor<'a>)> {
    let (l1, l2, bias, out) = split_made(lay, made)?;
    copy(acc, bias);
    Ok((l1, l2, out))
}

/// One MADE's weights: first hidden layer, second hidden layer, output biases,
/// output columns.
#[inline(always)]
fn split_made(lay: Layout, made: &[f32]) -> Result<(Cursor<'_>, Cursor<'_>, &[f32], Cursor<'_>)> {
    let mut cur = Cursor(made);
    let l1 = Cursor(cur.take(lay.l1)?);
    let l2 = Cursor(cur.take(lay.l2)?);
    let bias = cur.take(2 * lay.shape.dim)?;
    Ok((l1, l2, bias, cur))
}

/// One MADE in the density direction: `u[p] = (z[p] - mu_p) exp(-alpha_p)` for every
/// order position `p`; `w.s` (input) and `w.u` (output) are in this MADE's order.
/// Returns `Σ alpha_p`.
#[inline(always)]
fn made_density<A: Act>(lay: Layout, act: A, made: &[f32], w: &mut Work<'_>) -> Result<f32> {
    let shape = lay.shape;
    // Sliced to their lengths, which the compiler then knows (constants for `Maf`).
    let acc = w.acc.get_mut(..2 * shape.dim).ok_or(MALFORMED)?;
    let (z, cz, h1) = (&*w.s, &*w.cz, &mut *w.h);
    if A::REGS && lay.fixed && shape.hidden_layers == 1 && 2 * shape.dim <= REGS {
        // As below, with the accumulators in registers, starting from the biases.
        let (mut l1, _, bias, mut out) = split_made(lay, made)?;
        let dm = shape.degrees();
        let mut regs = Regs::load(bias);
        macro_rules! groups {
            ($($d:literal)*) => {
                $(
                    if $d <= dm {
                        let n = shape.units_of_degree($d);
                        group1_regs::<$d, A>(
                            act, n, &mut l1, &mut out, z, cz, shape.dim, &mut regs,
                        )?;
                    }
                )*
            };
        }
        groups!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        regs.store(acc);
    } else if shape.hidden_layers == 1 {
        let (mut l1, _, mut out) = streams(lay, made, acc)?;
        // Each unit goes straight into the outputs: no hidden vector is stored.
        let dm = shape.degrees();
        macro_rules! groups {
            ($($d:literal)*) => {
                $(
                    if $d <= dm {
                        let n = shape.units_of_degree($d);
                        group1::<$d, A>(act, n, &mut l1, &mut out, z, cz, acc)?;
                    }
                )*
            };
        }
        groups!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
        for m in 17..=dm {
            let n = shape.units_of_degree(m);
            group1_dyn(act, m, n, &mut l1, &mut out, z, cz, acc)?;
        }
    } else {
        let (mut l1, mut l2, mut out) = streams(lay, made, acc)?;
        let mut slots = h1.iter_mut();
        for m in 1..=shape.degrees() {
            let n = shape.units_of_degree(m);
            first_layer_group(m, n, act, &mut l1, z, cz, &mut |h| {
                *slots.next().ok_or(MALFORMED)? = h;
                Ok(())
            })?;
        }
        for m in 1..=shape.degrees() {
            let hs = h1.get(..shape.cum(m)).unwrap_or_default();
            for _ in 0..shape.units_of_degree(m) {
                let (b, w) = l2.row(hs.len())?;
                scatter(act, act.apply(dot(b, w, hs)), m, &mut out, acc)?;
            }
        }
    }
    let mut sum_alpha = 0.0;
    for ((up, &zp), pair) in w.u.iter_mut().zip(z).zip(acc.chunks_exact(2)) {
        if let [mu, alpha] = *pair {
            *up = (zp - mu) * libm::expf(-alpha);
            sum_alpha += alpha;
        }
    }
    Ok(sum_alpha)
}

/// One MADE in the sampling direction: `z[p] = u[p] exp(alpha_p) + mu_p` for
/// `p = 0 .. D` in turn. The units of degree `p` see positions `0 .. p`, all known
/// by step `p`, and feed positions `p .. D`: computing them at step `p` makes the
/// whole MADE one pass, and every unit and output gets exactly the value (same
/// operations, same order) the density pass computes.
#[inline(always)]
fn made_sample<A: Act>(lay: Layout, act: A, made: &[f32], w: &mut Work<'_>) -> Result<()> {
    let shape = lay.shape;
    let acc = w.acc.get_mut(..2 * shape.dim).ok_or(MALFORMED)?;
    let (u, z, cz, h1) = (&*w.u, &mut *w.s, &*w.cz, &mut *w.h);
    let (mut l1, mut l2, mut out) = streams(lay, made, acc)?;
    let mut k1 = 0;
    for p in 0..shape.dim {
        let n = shape.units_of_degree(p);
        let known = z.get(..p).unwrap_or_default();
        if shape.hidden_layers == 1 {
            first_layer_group(p, n, act, &mut l1, known, cz, &mut |h| {
                scatter(act, h, p, &mut out, acc)
            })?;
        } else {
            first_layer_group(p, n, act, &mut l1, known, cz, &mut |h| {
                *h1.get_mut(k1).ok_or(MALFORMED)? = h;
                k1 += 1;
                Ok(())
            })?;
            let hs = h1.get(..shape.cum(p)).unwrap_or_default();
            for _ in 0..n {
                let (b, w) = l2.row(hs.len())?;
                scatter(act, act.apply(dot(b, w, hs)), p, &mut out, acc)?;
            }
        }
        if let (Some(zp), Some(&up), Some(&[mu, alpha])) =
            (z.get_mut(p), u.get(p), acc.get(2 * p..2 * p + 2))
        {
            *zp = up * libm::expf(alpha) + mu;
        }
    }
    Ok(())
}

/// Density direction through the whole flow: writes `u = f⁻¹(x)` into `w.s` and
/// returns `Σ_l Σ_p alpha` (the input-dependent part of `-log|det|`).
#[inline(always)]
pub(crate) fn to_base(
    lay: Layout,
    act: Activation,
    weights: &[f32],
    x: &[f32],
    ctx: &[f32],
    w: &mut Work<'_>,
) -> Result<f32> {
    with_act!(act, a => to_base_with(lay, a, weights, x, ctx, w))
}

/// `Ok` if this build evaluates `act` (its Cargo feature is on), else
/// [`Error::ActivationNotBuilt`]: checked when a model is loaded.
pub(crate) fn check_built(act: Activation) -> Result<()> {
    with_act!(act, _a => Ok(()))
}

#[inline(always)]
fn to_base_with<A: Act>(
    lay: Layout,
    act: A,
    weights: &[f32],
    x: &[f32],
    ctx: &[f32],
    w: &mut Work<'_>,
) -> Result<f32> {
    let shape = lay.shape;
    check_len("input", shape.dim, x.len())?;
    let sec = sections(shape, weights)?;
    for (index, (((s, &xi), &m), &k)) in
        w.s.iter_mut()
            .zip(x)
            .zip(sec.x_mean)
            .zip(sec.x_inv)
            .enumerate()
    {
        if !xi.is_finite() {
            return Err(Error::NonFiniteInput { index });
        }
        *s = (xi - m) * k;
    }
    standardise_context(sec.c_mean, sec.c_inv, ctx, w.cz)?;
    let mut sum_alpha = 0.0;
    let made_len = lay.made;
    for (layer, made) in sec
        .mades
        .chunks_exact(made_len)
        .take(shape.layers)
        .enumerate()
    {
        let odd = layer % 2 == 1;
        if odd {
            reverse(w.s);
        }
        sum_alpha += made_density(lay, act, made, w)?;
        if odd {
            reverse(w.u);
        }
        if shape.batch_norm {
            let bn = made.get(made_len - 2 * shape.dim..).unwrap_or_default();
            let (scale, shift) = bn.split_at_checked(shape.dim).unwrap_or((bn, &[]));
            for (((s, &u), &a), &b) in w.s.iter_mut().zip(w.u.iter()).zip(scale).zip(shift) {
                *s = u * a + b;
            }
        } else {
            copy(w.s, w.u);
        }
    }
    Ok(sum_alpha)
}

/// Reverses `v` in place: [`slice::reverse`], written as the plain swap loop
/// that the compiler turns into a few moves for a constant length (for `D = 8`,
/// `slice::reverse` compiled to over a kilobyte of general-length code per call
/// site).
#[inline(always)]
fn reverse(v: &mut [f32]) {
    let (front, back) = v.split_at_mut(v.len() / 2);
    for (a, b) in front.iter_mut().zip(back.iter_mut().rev()) {
        core::mem::swap(a, b);
    }
}

/// The log density of `x`, in raw input units: the flow to the base space, then
/// the base density (`base_w`: the blob's base section).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_prob(
    lay: Layout,
    act: Activation,
    weights: &[f32],
    log_det_const: f32,
    base: Base,
    base_w: &[f32],
    x: &[f32],
    ctx: &[f32],
    w: &mut Work<'_>,
) -> Result<f32> {
    let sum_alpha = to_base(lay, act, weights, x, ctx, w)?;
    // `w.u` is free once the flow is done: the base's scratch.
    let lp = crate::base::log_density(base, base_w, w.s, w.u) + (log_det_const - sum_alpha);
    if lp.is_finite() {
        Ok(lp)
    } else {
        Err(Error::Overflow)
    }
}

/// Sampling direction through the whole flow: `x = f(u)` into `x`.
#[inline(always)]
pub(crate) fn from_base(
    lay: Layout,
    act: Activation,
    weights: &[f32],
    u: &[f32],
    ctx: &[f32],
    x: &mut [f32],
    w: &mut Work<'_>,
) -> Result<()> {
    with_act!(act, a => from_base_with(lay, a, weights, u, ctx, x, w))
}

#[inline(always)]
fn from_base_with<A: Act>(
    lay: Layout,
    act: A,
    weights: &[f32],
    u: &[f32],
    ctx: &[f32],
    x: &mut [f32],
    w: &mut Work<'_>,
) -> Result<()> {
    let shape = lay.shape;
    check_len("base vector", shape.dim, u.len())?;
    check_len("output", shape.dim, x.len())?;
    let sec = sections(shape, weights)?;
    for (index, (s, &ui)) in w.s.iter_mut().zip(u).enumerate() {
        if !ui.is_finite() {
            return Err(Error::NonFiniteInput { index });
        }
        *s = ui;
    }
    standardise_context(sec.c_mean, sec.c_inv, ctx, w.cz)?;
    let made_len = lay.made;
    for (layer, made) in sec
        .mades
        .chunks_exact(made_len)
        .take(shape.layers)
        .enumerate()
        .rev()
    {
        if shape.batch_norm {
            let bn = made.get(made_len - 2 * shape.dim..).unwrap_or_default();
            let (scale, shift) = bn.split_at_checked(shape.dim).unwrap_or((bn, &[]));
            for (((u, &s), &a), &b) in w.u.iter_mut().zip(w.s.iter()).zip(scale).zip(shift) {
                *u = (s - b) / a;
            }
        } else {
            copy(w.u, w.s);
        }
        let odd = layer % 2 == 1;
        if odd {
            reverse(w.u);
        }
        made_sample(lay, act, made, w)?;
        if odd {
            reverse(w.s);
        }
    }
    for (((xi, &s), &m), &k) in x.iter_mut().zip(w.s.iter()).zip(sec.x_mean).zip(sec.x_inv) {
        *xi = s / k + m;
    }
    if x.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::Overflow)
    }
}

#[cfg(all(test, feature = "tanh"))]
// Tests fail by panicking.
#[allow(clippy::panic)]
mod tests {
    use super::tanh_branchy;

    /// The device's branchy `tanh` gives the bits of [`crate::tanh`] for every one
    /// of the 2³² `f32` bit patterns (NaNs compared as NaN), on two threads.
    #[test]
    fn branchy_tanh_is_bit_identical_for_every_f32() {
        let half = |top: u32| {
            move || {
                let mut bad = None;
                for low in 0..=u32::MAX >> 1 {
                    let a = f32::from_bits(top | low);
                    let (want, got) = (crate::tanh(a), tanh_branchy(a));
                    let same = want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan());
                    if !same && bad.is_none() {
                        bad = Some((a, want, got));
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
        assert_eq!(positive, None, "(input, tanh, branchy)");
        assert_eq!(negative, None, "(input, tanh, branchy)");
    }
}
