//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong when loading a blob or evaluating a model.
///
/// Small and `Copy` so it costs nothing on a microcontroller; the context is
/// `&'static str`, never an allocated string.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the blob magic `MAFBLOB\0`.
    BadMagic,
    /// The blob's format version is not the one this build reads.
    VersionMismatch {
        /// The version this build reads.
        expected: u32,
        /// The version found in the blob.
        found: u32,
    },
    /// The blob ends before all of its fields.
    Truncated,
    /// A field does not parse (the name of the field says which).
    Malformed(&'static str),
    /// The CRC-32 stored in the blob differs from the CRC of its contents.
    CrcMismatch {
        /// The CRC stored in the blob.
        stored: u32,
        /// The CRC computed over the blob's contents.
        computed: u32,
    },
    /// Bytes follow the CRC of a blob that should end there.
    TrailingBytes,
    /// A shape parameter lies outside the range this crate supports.
    ShapeOutOfRange {
        /// Which shape parameter.
        what: &'static str,
        /// Its value.
        found: usize,
    },
    /// A shape parameter differs from the one this model was built for.
    ShapeMismatch {
        /// Which shape parameter.
        what: &'static str,
        /// The value compiled into the firmware (or expected by the caller).
        expected: usize,
        /// The value found in the blob.
        found: usize,
    },
    /// The number of weights differs from the number the shapes imply.
    WeightCount {
        /// The number the shapes imply.
        expected: usize,
        /// The number found.
        found: usize,
    },
    /// The weights do not start on a 4-byte boundary in memory, so they cannot be
    /// read in place. Place the blob at a 4-aligned address (see `AlignedBlob`).
    Misaligned,
    /// A weight is not finite, or a scale that must be positive is not.
    InvalidWeight {
        /// Index of the weight in the blob's weight section.
        index: usize,
    },
    /// A slice passed in has the wrong length.
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The length the model needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// An input value is NaN or infinite.
    NonFiniteInput {
        /// Index of the offending value in the input vector.
        index: usize,
    },
    /// A context value is NaN or infinite.
    NonFiniteContext {
        /// Index of the offending value in the context vector.
        index: usize,
    },
    /// The computation left the range of `f32` (the input is so far from the
    /// training data that its log density cannot be represented). Treat the vector
    /// as an anomaly.
    Overflow,
    /// A value to be written (threshold, metadata) cannot be stored in a blob.
    InvalidHeader(&'static str),
    /// The model's activation was left out of this build of the crate (its Cargo
    /// feature, `relu` or `tanh`, is off).
    ActivationNotBuilt(crate::Activation),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => f.write_str("not a maf model blob (bad magic)"),
            Error::VersionMismatch { expected, found } => write!(
                f,
                "unsupported blob format version {found} (this build reads version {expected})"
            ),
            Error::Truncated => f.write_str("blob is truncated"),
            Error::Malformed(what) => write!(f, "blob is malformed: bad {what}"),
            Error::CrcMismatch { stored, computed } => write!(
                f,
                "blob is corrupt: CRC-32 mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Error::TrailingBytes => f.write_str("unexpected bytes after the end of the blob"),
            Error::ShapeOutOfRange { what, found } => {
                write!(f, "unsupported model shape: {what} = {found}")
            }
            Error::ShapeMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "model shape mismatch: {what} is {found} in the blob, expected {expected}"
            ),
            Error::WeightCount { expected, found } => {
                write!(f, "blob holds {found} weights, its shapes need {expected}")
            }
            Error::Misaligned => f.write_str("blob weights are not 4-byte aligned in memory"),
            Error::InvalidWeight { index } => {
                write!(
                    f,
                    "blob weight {index} is not finite (or a scale is not positive)"
                )
            }
            Error::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what} has length {found}, the model needs {expected}"),
            Error::NonFiniteInput { index } => {
                write!(f, "input value {index} is not a finite number")
            }
            Error::NonFiniteContext { index } => {
                write!(f, "context value {index} is not a finite number")
            }
            Error::Overflow => {
                f.write_str("log density out of f32 range (input far outside the training data)")
            }
            Error::InvalidHeader(what) => write!(f, "cannot write blob: {what}"),
            Error::ActivationNotBuilt(act) => {
                let name = match act {
                    crate::Activation::Relu => "relu",
                    crate::Activation::Tanh => "tanh",
                };
                write!(
                    f,
                    "the model uses {name} units, left out of this build of maf-core (enable its feature `{name}`)"
                )
            }
        }
    }
}

impl core::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
