//! The weight blob: parsing (and, with `std`, writing) the postcard format
//! specified in `docs/blob-format.md`.
//!
//! Parsing never copies the weights: [`Blob::weights`] borrows them in place as
//! `&[f32]`, so a blob in flash costs no RAM. For that the blob must start on a
//! 4-byte boundary (the format pads the weights to a multiple of 4 from the start);
//! on a host use [`AlignedBlob`], in firmware place the model region on an aligned
//! address or wrap `include_bytes!` in an `#[repr(align(4))]` struct.

use serde::Deserialize;

use crate::base::{self, Base};
use crate::crc::crc32;
use crate::{Activation, Error, Result, Shape};

// Weights are viewed in place as `f32`, whose byte order the format fixes as little
// endian: refuse to build where that view would be wrong.
#[cfg(target_endian = "big")]
compile_error!("maf-core reads weights in place and needs a little-endian target");

/// The 8 bytes every blob starts with.
pub const MAGIC: [u8; 8] = *b"MAFBLOB\0";

/// The blob format version this build writes. It reads this one and version 1.
pub const VERSION: u32 = 2;

/// The oldest blob format version this build reads.
pub const OLDEST_VERSION: u32 = 1;

/// Longest metadata string a blob may carry, in bytes.
pub const MAX_METADATA: usize = 4096;

/// Longest column-name list a blob may carry, in bytes.
pub const MAX_COLUMNS: usize = 16384;

/// The largest blob the format allows, in bytes: the largest shapes, the largest
/// mixture, the longest metadata and column names, and the header's fields at
/// their longest (a bound for readers that must not read without end).
pub const MAX_BLOB_BYTES: usize = {
    let largest = Shape {
        dim: Shape::MAX_DIM,
        context: Shape::MAX_CONTEXT,
        hidden: Shape::MAX_HIDDEN,
        hidden_layers: 2,
        layers: Shape::MAX_LAYERS,
        batch_norm: true,
    };
    let mixture = Base::Mixture {
        components: base::MAX_COMPONENTS,
        covariance: base::Covariance::Full,
    };
    4 * (largest.weight_count() + mixture.weight_count(Shape::MAX_DIM))
        + MAX_METADATA
        + MAX_COLUMNS
        + 128
};

/// Longest detection window a blob may declare, in vectors.
pub const MAX_WINDOW: u32 = 65536;

/// The detection window a model was calibrated for (format version 2): a decision
/// from the mean log density of the last `len` vectors against `threshold`.
/// `len = 1` with no threshold (what every version-1 blob means) is a decision per
/// vector with [`Header::threshold`].
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Vectors in the window, 1..=[`MAX_WINDOW`].
    pub len: u32,
    /// Threshold on the window's mean log density, if calibrated.
    pub threshold: Option<f32>,
    /// Median window score of the healthy data the threshold was calibrated on,
    /// if stored: the reference that on-site re-baselining
    /// ([`crate::calibrator`]) moves the threshold with.
    pub median: Option<f32>,
}

impl Window {
    /// One vector at a time, no window threshold.
    pub const PER_VECTOR: Window = Window {
        len: 1,
        threshold: None,
        median: None,
    };
}

/// Everything in a blob but the weights.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header<'a> {
    /// The model's shapes.
    pub shape: Shape,
    /// Hidden-unit activation.
    pub activation: Activation,
    /// The base density (version 1 blobs: always the standard normal).
    pub base: Base,
    /// Anomaly threshold on the log density: below it, a vector is an anomaly.
    pub threshold: Option<f32>,
    /// The detection window (version 1 blobs: [`Window::PER_VECTOR`]).
    pub window: Window,
    /// The names of the input columns, features then context columns, separated
    /// by `\n`; empty when unnamed (always so in version 1 blobs). See
    /// [`Header::column_names`].
    pub columns: &'a str,
    /// Free-form training metadata (`key=value` lines by convention).
    pub metadata: &'a str,
}

impl<'a> Header<'a> {
    /// A header with a standard-normal base, no threshold, per-vector decisions,
    /// no column names and no metadata.
    pub const fn new(shape: Shape, activation: Activation) -> Self {
        Header {
            shape,
            activation,
            base: Base::StandardNormal,
            threshold: None,
            window: Window::PER_VECTOR,
            columns: "",
            metadata: "",
        }
    }

    /// The column names (features first, then context columns), or nothing when
    /// the blob stores none.
    pub fn column_names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let cols = self.columns;
        cols.split('\n').filter(move |_| !cols.is_empty())
    }

    /// Floats in the weight section: the flow's, then the base's.
    pub const fn weight_count(&self) -> usize {
        self.shape.weight_count() + self.base.weight_count(self.shape.dim)
    }
}

/// A parsed, validated blob whose weights are borrowed in place.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    /// The header fields.
    pub header: Header<'a>,
    /// The weights, in the order of `docs/blob-format.md`: the flow's, then the
    /// base section (empty for the standard normal).
    pub weights: &'a [f32],
    /// Length of the blob in bytes, CRC included.
    pub len: usize,
    /// The format version the blob was written in (1 or 2).
    pub version: u32,
}

impl<'a> Blob<'a> {
    /// The flow's weights (everything before the base section).
    pub fn flow_weights(&self) -> &'a [f32] {
        let n = self.header.shape.weight_count();
        self.weights.get(..n).unwrap_or(self.weights)
    }

    /// The base section's weights (empty for the standard normal).
    pub fn base_weights(&self) -> &'a [f32] {
        let n = self.header.shape.weight_count();
        self.weights.get(n..).unwrap_or_default()
    }
}

/// Parses and validates a whole blob: nothing may follow its CRC.
///
/// # Errors
/// Any of the loader errors listed in `docs/blob-format.md`, in that order of checks;
/// never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<Blob<'_>> {
    let blob = parse_region(bytes)?;
    if blob.len != bytes.len() {
        return Err(Error::TrailingBytes);
    }
    Ok(blob)
}

/// Parses and validates the blob at the start of a memory region (a flash region):
/// bytes after its CRC (erased flash) are ignored; [`Blob::len`] says where it ends.
///
/// # Errors
/// As [`parse`], without [`Error::TrailingBytes`].
pub fn parse_region(bytes: &[u8]) -> Result<Blob<'_>> {
    let rest = match bytes.get(..MAGIC.len()) {
        Some(magic) if magic == MAGIC => bytes.get(MAGIC.len()..).unwrap_or_default(),
        Some(_) => return Err(Error::BadMagic),
        None if MAGIC.starts_with(bytes) => return Err(Error::Truncated),
        None => return Err(Error::BadMagic),
    };
    let (version, rest) = take::<u32>(rest, "version")?;
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(Error::VersionMismatch {
            expected: VERSION,
            found: version,
        });
    }
    let (dim, rest) = take_usize(rest, "dim")?;
    let (context, rest) = take_usize(rest, "context")?;
    let (hidden, rest) = take_usize(rest, "hidden")?;
    let (hidden_layers, rest) = take_usize(rest, "hidden_layers")?;
    let (layers, rest) = take_usize(rest, "layers")?;
    let (batch_norm, rest) = take::<bool>(rest, "batch_norm")?;
    let (activation, rest) = take::<u8>(rest, "activation")?;
    let activation = Activation::from_byte(activation).ok_or(Error::Malformed("activation"))?;
    let (base_kind, components, rest) = if version >= 2 {
        let (kind, rest) = take::<u8>(rest, "base")?;
        let (components, rest) = take_usize(rest, "components")?;
        (kind, components, rest)
    } else {
        (0, 0, rest)
    };
    let (threshold, rest) = take::<Option<f32>>(rest, "threshold")?;
    let (window_len, window_rule, window_threshold, window_median, columns, rest) = if version >= 2
    {
        let (len, rest) = take::<u32>(rest, "window")?;
        let (rule, rest) = take::<u8>(rest, "window_rule")?;
        let (wt, rest) = take::<Option<f32>>(rest, "window_threshold")?;
        let (wm, rest) = take::<Option<f32>>(rest, "window_median")?;
        let (columns, rest) = take::<&str>(rest, "columns")?;
        (len, rule, wt, wm, columns, rest)
    } else {
        (1, 0, None, None, "", rest)
    };
    let (metadata, rest) = take::<&str>(rest, "metadata")?;
    let (padding, rest) = take::<&[u8]>(rest, "padding")?;
    let (weight_bytes, rest) = take::<&[u8]>(rest, "weights")?;
    let body_len = bytes.len() - rest.len();
    let stored = match rest.get(..4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => return Err(Error::Truncated),
    };
    let computed = crc32(bytes.get(..body_len).unwrap_or_default());
    if stored != computed {
        return Err(Error::CrcMismatch { stored, computed });
    }

    if metadata.len() > MAX_METADATA {
        return Err(Error::Malformed("metadata (longer than 4096 bytes)"));
    }
    if padding.len() > 3 || padding.iter().any(|&b| b != 0) {
        return Err(Error::Malformed("padding"));
    }
    if threshold.is_some_and(|t| !t.is_finite()) {
        return Err(Error::Malformed("threshold (not finite)"));
    }
    if !(1..=MAX_WINDOW).contains(&window_len) {
        return Err(Error::Malformed("window (not in 1..=65536)"));
    }
    if window_rule != 0 {
        return Err(Error::Malformed("window_rule"));
    }
    if window_threshold.is_some_and(|t| !t.is_finite()) {
        return Err(Error::Malformed("window_threshold (not finite)"));
    }
    if window_median.is_some_and(|t| !t.is_finite()) {
        return Err(Error::Malformed("window_median (not finite)"));
    }
    let shape = Shape {
        dim,
        context,
        hidden,
        hidden_layers,
        layers,
        batch_norm,
    };
    let base = Base::from_parts(base_kind, components)?;
    check_shape(shape, base)?;
    check_columns(columns, dim + context)?;
    let header = Header {
        shape,
        activation,
        base,
        threshold,
        window: Window {
            len: window_len,
            threshold: window_threshold,
            median: window_median,
        },
        columns,
        metadata,
    };
    let expected = header.weight_count();
    if weight_bytes.len() != 4 * expected {
        return Err(Error::WeightCount {
            expected,
            found: weight_bytes.len() / 4,
        });
    }
    let weights: &[f32] = bytemuck::try_cast_slice(weight_bytes).map_err(|_| Error::Misaligned)?;
    check_weights(&shape, weights)?;
    let flow = shape.weight_count();
    base::check(base, dim, weights.get(flow..).unwrap_or_default(), flow)?;
    Ok(Blob {
        header,
        weights,
        len: body_len + 4,
        version,
    })
}

/// The shapes in range; `layers = 0` (no flow: the base alone) only with a
/// mixture base.
fn check_shape(shape: Shape, base: Base) -> Result<()> {
    if shape.layers == 0 && base != Base::StandardNormal {
        Shape { layers: 1, ..shape }.check()
    } else {
        shape.check()
    }
}

/// Column names: none, or exactly `count` non-empty, distinct names separated by
/// `\n`, at most [`MAX_COLUMNS`] bytes in all.
fn check_columns(columns: &str, count: usize) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    if columns.len() > MAX_COLUMNS {
        return Err(Error::Malformed("columns (longer than 16384 bytes)"));
    }
    if columns.split('\n').count() != count {
        return Err(Error::Malformed("columns (not one name per input column)"));
    }
    for (i, name) in columns.split('\n').enumerate() {
        if name.is_empty() {
            return Err(Error::Malformed("columns (an empty name)"));
        }
        if columns.split('\n').skip(i + 1).any(|other| other == name) {
            return Err(Error::Malformed("columns (a repeated name)"));
        }
    }
    Ok(())
}

/// Every weight finite; every scale (standardisation, batch norm) positive.
fn check_weights(shape: &Shape, weights: &[f32]) -> Result<()> {
    if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
        return Err(Error::InvalidWeight { index });
    }
    let positive = |start: usize, len: usize| -> Result<()> {
        let scales = weights.get(start..start + len).unwrap_or_default();
        match scales.iter().position(|&s| s <= 0.0) {
            Some(i) => Err(Error::InvalidWeight { index: start + i }),
            None => Ok(()),
        }
    };
    positive(shape.dim, shape.dim)?;
    positive(2 * shape.dim + shape.context, shape.context)?;
    if shape.batch_norm {
        for layer in 0..shape.layers {
            positive(shape.batch_norm_offset(layer), shape.dim)?;
        }
    }
    Ok(())
}

fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<(T, &'a [u8])> {
    postcard::take_from_bytes(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => Error::Truncated,
        _ => Error::Malformed(what),
    })
}

fn take_usize<'a>(bytes: &'a [u8], what: &'static str) -> Result<(usize, &'a [u8])> {
    let (v, rest) = take::<u32>(bytes, what)?;
    let v = usize::try_from(v).map_err(|_| Error::ShapeOutOfRange {
        what,
        found: usize::MAX,
    })?;
    Ok((v, rest))
}

#[cfg(feature = "std")]
pub use self::writer::{AlignedBlob, write, write_v1};

#[cfg(feature = "std")]
mod writer {
    extern crate std;
    use std::vec::Vec;

    use super::{
        Base, Header, MAGIC, MAX_COLUMNS, MAX_METADATA, MAX_WINDOW, VERSION, Window, check_shape,
        crc32, parse,
    };
    use crate::{Error, Result};

    /// Encodes a blob (format version 2) from a header and the weights in the
    /// order of `docs/blob-format.md` (the flow's, then the base section), and
    /// checks the result with the loader: what this returns always loads.
    ///
    /// # Errors
    /// [`Error::ShapeOutOfRange`], [`Error::WeightCount`], [`Error::InvalidHeader`]
    /// for metadata, columns, a window or a threshold that cannot be stored, and the
    /// loader's errors (a non-finite weight, a non-positive scale, mixture weights
    /// that do not sum to 1).
    pub fn write(header: &Header<'_>, weights: &[f32]) -> Result<Vec<u8>> {
        encode(header, weights, VERSION)
    }

    /// Encodes a blob in format version 1, for firmware built with an older
    /// `maf-core`. Only a model that version 1 can describe is accepted: a
    /// standard-normal base, per-vector decisions and no column names.
    ///
    /// # Errors
    /// [`Error::InvalidHeader`] for a header that needs version 2, else as [`write()`].
    pub fn write_v1(header: &Header<'_>, weights: &[f32]) -> Result<Vec<u8>> {
        if header.base != Base::StandardNormal {
            return Err(Error::InvalidHeader("format version 1 has no mixture base"));
        }
        if header.window != Window::PER_VECTOR || !header.columns.is_empty() {
            return Err(Error::InvalidHeader(
                "format version 1 has no detection window and no column names",
            ));
        }
        encode(header, weights, 1)
    }

    fn encode(header: &Header<'_>, weights: &[f32], version: u32) -> Result<Vec<u8>> {
        let shape = header.shape;
        check_shape(shape, header.base)?;
        if weights.len() != header.weight_count() {
            return Err(Error::WeightCount {
                expected: header.weight_count(),
                found: weights.len(),
            });
        }
        if header.metadata.len() > MAX_METADATA {
            return Err(Error::InvalidHeader("metadata longer than 4096 bytes"));
        }
        if header.columns.len() > MAX_COLUMNS {
            return Err(Error::InvalidHeader("column names longer than 16384 bytes"));
        }
        if header.threshold.is_some_and(|t| !t.is_finite())
            || header.window.threshold.is_some_and(|t| !t.is_finite())
            || header.window.median.is_some_and(|t| !t.is_finite())
        {
            return Err(Error::InvalidHeader("threshold is not finite"));
        }
        if !(1..=MAX_WINDOW).contains(&header.window.len) {
            return Err(Error::InvalidHeader("window not in 1..=65536"));
        }
        let mut out = Vec::with_capacity(96 + header.metadata.len() + 4 * weights.len());
        out.extend_from_slice(&MAGIC);
        let fields: [u32; 6] = [
            version,
            to_u32(shape.dim)?,
            to_u32(shape.context)?,
            to_u32(shape.hidden)?,
            to_u32(shape.hidden_layers)?,
            to_u32(shape.layers)?,
        ];
        for v in fields {
            push(&mut out, &v)?;
        }
        push(&mut out, &shape.batch_norm)?;
        push(&mut out, &header.activation.to_byte())?;
        if version >= 2 {
            push(&mut out, &header.base.kind_byte())?;
            push(&mut out, &to_u32(header.base.components())?)?;
        }
        push(&mut out, &header.threshold)?;
        if version >= 2 {
            push(&mut out, &header.window.len)?;
            push(&mut out, &0u8)?;
            push(&mut out, &header.window.threshold)?;
            push(&mut out, &header.window.median)?;
            push(&mut out, header.columns)?;
        }
        push(&mut out, header.metadata)?;
        let weight_bytes: &[u8] = bytemuck::cast_slice(weights);
        let mut len_prefix = Vec::new();
        push(&mut len_prefix, &to_u32(weight_bytes.len())?)?;
        // Padding: its one-byte length, its zeros, then the weights' length prefix;
        // the weights must start at a multiple of 4.
        let pad = (4 - (out.len() + 1 + len_prefix.len()) % 4) % 4;
        out.push(pad as u8);
        out.extend(core::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&len_prefix);
        out.extend_from_slice(weight_bytes);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        // What we write must load.
        parse(AlignedBlob::new(&out).as_bytes())?;
        Ok(out)
    }

    fn to_u32(v: usize) -> Result<u32> {
        u32::try_from(v).map_err(|_| Error::InvalidHeader("shape does not fit in u32"))
    }

    fn push<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(v).map_err(|_| Error::InvalidHeader("encoding"))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    /// A copy of a blob on a 4-byte boundary, so its weights can be viewed in place
    /// (a `Vec<u8>` read from a file has no alignment guarantee).
    #[derive(Debug, Clone)]
    pub struct AlignedBlob {
        words: Vec<u32>,
        len: usize,
    }

    impl AlignedBlob {
        /// Copies `bytes` into 4-aligned storage.
        pub fn new(bytes: &[u8]) -> Self {
            let mut words = std::vec![0u32; bytes.len().div_ceil(4)];
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
            for (d, s) in dst.iter_mut().zip(bytes) {
                *d = *s;
            }
            Self {
                words,
                len: bytes.len(),
            }
        }

        /// The blob's bytes, starting on a 4-byte boundary.
        pub fn as_bytes(&self) -> &[u8] {
            let all: &[u8] = bytemuck::cast_slice(&self.words);
            all.get(..self.len).unwrap_or_default()
        }
    }
}
