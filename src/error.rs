//! The crate's one error type.

use std::fmt;

use crate::Isa;

/// What went wrong in a call, naming the argument at fault.
///
/// Every public function validates its arguments at the boundary and returns one of these
/// instead of panicking. Nothing is written to any output before validation succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A slice has the wrong number of elements.
    Length {
        /// The argument's name, as in the function signature.
        arg: &'static str,
        /// The required length, with the shape it comes from (e.g. `"T*B*I = 24"`).
        expected: String,
        /// The length that was passed.
        actual: usize,
    },
    /// A size that must be at least one is zero.
    ZeroSize {
        /// The size's name (`"steps"`, `"batch"`, `"input_size"`, `"hidden_size"`, ...).
        arg: &'static str,
    },
    /// A sequence length is outside `1..=steps`.
    SequenceLength {
        /// Index of the sequence in the batch.
        index: usize,
        /// The length that was passed.
        length: usize,
        /// The number of steps of the call.
        steps: usize,
    },
    /// A size is so large that a buffer of it would overflow `usize`.
    SizeOverflow {
        /// The argument whose size overflowed.
        arg: &'static str,
    },
    /// An argument is present where it must be absent, or absent where it is required.
    Presence {
        /// The argument's name.
        arg: &'static str,
        /// Why it is required or forbidden.
        why: &'static str,
    },
    /// An instruction-set path was requested that this CPU cannot run.
    UnsupportedIsa(Isa),
}

impl Error {
    pub(crate) fn length(arg: &'static str, expected: impl Into<String>, actual: usize) -> Self {
        Error::Length {
            arg,
            expected: expected.into(),
            actual,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Length {
                arg,
                expected,
                actual,
            } => write!(f, "`{arg}` has length {actual}, expected {expected}"),
            Error::ZeroSize { arg } => write!(f, "`{arg}` is zero, expected at least 1"),
            Error::SequenceLength {
                index,
                length,
                steps,
            } => write!(
                f,
                "`lengths[{index}]` is {length}, expected a value in 1..={steps}"
            ),
            Error::SizeOverflow { arg } => write!(f, "the size of `{arg}` overflows usize"),
            Error::Presence { arg, why } => write!(f, "`{arg}`: {why}"),
            Error::UnsupportedIsa(isa) => {
                write!(
                    f,
                    "instruction set `{}` is not supported by this CPU",
                    isa.name()
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
