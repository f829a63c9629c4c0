//! The arithmetic: one streaming pass over the packed weights per MADE.
//!
//! Every function takes the [`Shape`] by value and is `#[inline(always)]`: called
//! from the fixed-size [`Maf`](crate::Maf), the shapes are constants and the
//! compiler specialises the loops (prefix lengths, group sizes) at compile time;
//! called from [`MafView`](crate::MafView), the same code runs with run-time shapes,
//! performing the same operations in the same order, hence the same bits.

use crate::{Activation, Error, Result, Shape};

/// `0.5 * ln(2π)`.
pub(crate) const HALF_LN_2PI: f32 = 0.918_938_5;

/// Working memory for one evaluation, split by role.
pub(crate) struct Work<'s> {
    /// State vector (`D`).
    pub s: &'s mut [f32],
    /// MADE output / base vector (`D`).
    pub u: &'s mut [f32],
    /// Standardised context (`C`).
    pub cz: &'s mut [f32],
    /// First hidden layer (`H`).
    pub h1: &'s mut [f32],
    /// Second hidden layer (`H`, or empty with one hidden layer).
    pub h2: &'s mut [f32],
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
        let (cz, rest) = rest.split_at_mut(shape.context);
        let (h1, h2) = rest.split_at_mut(shape.hidden);
        Ok(Self { s, u, cz, h1, h2 })
    }
}

/// Reads consecutive rows off the weight stream.
struct Cursor<'a>(&'a [f32]);

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [f32]> {
        let (row, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(Error::Malformed("weights"))?;
        self.0 = rest;
        Ok(row)
    }

    /// A row `[bias, w...]`.
    #[inline(always)]
    fn row(&mut self, n: usize) -> Result<(f32, &'a [f32])> {
        match self.take(1 + n)?.split_first() {
            Some((b, w)) => Ok((*b, w)),
            None => Err(Error::Malformed("weights")),
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
                .ok_or(Error::Malformed("weights"))?;
            let scale = bn.get(..shape.dim).ok_or(Error::Malformed("weights"))?;
            total += scale.iter().map(|&k| libm::logf(k)).sum::<f32>();
        }
    }
    if total.is_finite() {
        Ok(total)
    } else {
        Err(Error::Overflow)
    }
}

/// First hidden layer of one MADE: `h1[k] = act(b + w·z[..deg(k)] + wc·cz)`.
#[inline(always)]
fn first_layer(
    shape: Shape,
    act: Activation,
    cur: &mut Cursor<'_>,
    z: &[f32],
    cz: &[f32],
    h1: &mut [f32],
) -> Result<()> {
    let mut out = h1.iter_mut();
    for d in 1..=shape.degrees() {
        let zs = z.get(..d).unwrap_or(z);
        for _ in 0..shape.units_of_degree(d) {
            let (b, w) = cur.row(d + shape.context)?;
            let (wx, wc) = w.split_at_checked(d).unwrap_or((w, &[]));
            let a = dot(dot(b, wx, zs), wc, cz);
            if let Some(h) = out.next() {
                *h = act.apply(a);
            }
        }
    }
    Ok(())
}

/// Second hidden layer: `h2[j] = act(b + w·h1[..cum(deg(j))])`.
#[inline(always)]
fn second_layer(
    shape: Shape,
    act: Activation,
    cur: &mut Cursor<'_>,
    h1: &[f32],
    h2: &mut [f32],
) -> Result<()> {
    let mut out = h2.iter_mut();
    for d in 1..=shape.degrees() {
        let n = shape.cum(d);
        let hs = h1.get(..n).unwrap_or(h1);
        for _ in 0..shape.units_of_degree(d) {
            let (b, w) = cur.row(n)?;
            if let Some(h) = out.next() {
                *h = act.apply(dot(b, w, hs));
            }
        }
    }
    Ok(())
}

/// `(mu_p, alpha_p)` of order position `p` from the last hidden layer.
#[inline(always)]
fn output(shape: Shape, cur: &mut Cursor<'_>, p: usize, h: &[f32]) -> Result<(f32, f32)> {
    let n = shape.cum(p);
    let row = cur.take(2 + 2 * n)?;
    let (bias, w) = row.split_at_checked(2).ok_or(Error::Malformed("weights"))?;
    let (mut mu, mut alpha) = match bias {
        [m, a] => (*m, *a),
        _ => return Err(Error::Malformed("weights")),
    };
    let (pairs, _) = w.as_chunks::<2>();
    for ([wm, wa], &hk) in pairs.iter().zip(h) {
        mu += wm * hk;
        alpha += wa * hk;
    }
    Ok((mu, alpha))
}

/// One MADE in the density direction: `u[p] = (z[p] - mu_p) exp(-alpha_p)` for every
/// order position `p`; `z` and `u` are in this MADE's order. Returns `Σ alpha_p`.
#[inline(always)]
fn made_density(shape: Shape, act: Activation, made: &[f32], w: &mut Work<'_>) -> Result<f32> {
    let (z, u, cz, h1, h2) = (&*w.s, &mut *w.u, &*w.cz, &mut *w.h1, &mut *w.h2);
    let mut cur = Cursor(made);
    first_layer(shape, act, &mut cur, z, cz, h1)?;
    let h: &[f32] = if shape.hidden_layers == 2 {
        second_layer(shape, act, &mut cur, h1, h2)?;
        h2
    } else {
        h1
    };
    let mut sum_alpha = 0.0;
    for (p, (up, &zp)) in u.iter_mut().zip(z).enumerate() {
        let (mu, alpha) = output(shape, &mut cur, p, h)?;
        *up = (zp - mu) * libm::expf(-alpha);
        sum_alpha += alpha;
    }
    Ok(sum_alpha)
}

/// One MADE in the sampling direction: `z[p] = u[p] exp(alpha_p) + mu_p` for
/// `p = 0 .. D` in turn. Hidden units are computed as soon as the positions they
/// see are known, so the whole MADE costs one pass, and every unit gets exactly the
/// value the density pass computes.
#[inline(always)]
fn made_sample(shape: Shape, act: Activation, made: &[f32], w: &mut Work<'_>) -> Result<()> {
    let (u, z, cz, h1, h2) = (&*w.u, &mut *w.s, &*w.cz, &mut *w.h1, &mut *w.h2);
    let mut l1 = Cursor(made);
    let mut l2 = Cursor(made.get(shape.layer1_len()..).unwrap_or_default());
    let mut out = Cursor(
        made.get(shape.layer1_len() + shape.layer2_len()..)
            .unwrap_or_default(),
    );
    let (mut k1, mut k2) = (0, 0);
    for p in 0..shape.dim {
        // Units of degree p see positions 0 .. p, all known by now.
        for _ in 0..shape.units_of_degree(p) {
            let (b, w) = l1.row(p + shape.context)?;
            let (wx, wc) = w.split_at_checked(p).unwrap_or((w, &[]));
            let a = dot(dot(b, wx, z.get(..p).unwrap_or(z)), wc, cz);
            if let Some(h) = h1.get_mut(k1) {
                *h = act.apply(a);
            }
            k1 += 1;
        }
        if shape.hidden_layers == 2 {
            let n = shape.cum(p);
            for _ in 0..shape.units_of_degree(p) {
                let (b, w) = l2.row(n)?;
                let a = dot(b, w, h1.get(..n).unwrap_or(h1));
                if let Some(h) = h2.get_mut(k2) {
                    *h = act.apply(a);
                }
                k2 += 1;
            }
        }
        let h: &[f32] = if shape.hidden_layers == 2 { h2 } else { h1 };
        let (mu, alpha) = output(shape, &mut out, p, h)?;
        let up = u.get(p).copied().unwrap_or_default();
        if let Some(zp) = z.get_mut(p) {
            *zp = up * libm::expf(alpha) + mu;
        }
    }
    Ok(())
}

/// Density direction through the whole flow: writes `u = f⁻¹(x)` into `w.s` and
/// returns `Σ_l Σ_p alpha` (the input-dependent part of `-log|det|`).
#[inline(always)]
pub(crate) fn to_base(
    shape: Shape,
    act: Activation,
    weights: &[f32],
    x: &[f32],
    ctx: &[f32],
    w: &mut Work<'_>,
) -> Result<f32> {
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
    let made_len = shape.made_len();
    for (layer, made) in sec
        .mades
        .chunks_exact(made_len)
        .take(shape.layers)
        .enumerate()
    {
        let odd = layer % 2 == 1;
        if odd {
            w.s.reverse();
        }
        sum_alpha += made_density(shape, act, made, w)?;
        if odd {
            w.u.reverse();
        }
        if shape.batch_norm {
            let bn = made.get(made_len - 2 * shape.dim..).unwrap_or_default();
            let (scale, shift) = bn.split_at_checked(shape.dim).unwrap_or((bn, &[]));
            for (((s, &u), &a), &b) in w.s.iter_mut().zip(w.u.iter()).zip(scale).zip(shift) {
                *s = u * a + b;
            }
        } else {
            w.s.copy_from_slice(w.u);
        }
    }
    Ok(sum_alpha)
}

/// `-0.5 Σ u² - (D/2) ln 2π`: the standard normal log density.
#[inline(always)]
pub(crate) fn base_log_density(u: &[f32]) -> f32 {
    let sq: f32 = u.iter().map(|v| v * v).sum();
    -0.5 * sq - u.len() as f32 * HALF_LN_2PI
}

/// The log density of `x`, in raw input units.
#[inline(always)]
pub(crate) fn log_prob(
    shape: Shape,
    act: Activation,
    weights: &[f32],
    log_det_const: f32,
    x: &[f32],
    ctx: &[f32],
    w: &mut Work<'_>,
) -> Result<f32> {
    let sum_alpha = to_base(shape, act, weights, x, ctx, w)?;
    let lp = base_log_density(w.s) + (log_det_const - sum_alpha);
    if lp.is_finite() {
        Ok(lp)
    } else {
        Err(Error::Overflow)
    }
}

/// Sampling direction through the whole flow: `x = f(u)` into `x`.
#[inline(always)]
pub(crate) fn from_base(
    shape: Shape,
    act: Activation,
    weights: &[f32],
    u: &[f32],
    ctx: &[f32],
    x: &mut [f32],
    w: &mut Work<'_>,
) -> Result<()> {
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
    let made_len = shape.made_len();
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
            w.u.copy_from_slice(w.s);
        }
        let odd = layer % 2 == 1;
        if odd {
            w.u.reverse();
        }
        made_sample(shape, act, made, w)?;
        if odd {
            w.s.reverse();
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
