//! The time and batch layout shared by every call: `[T, B, ...]`, time-major, with optional
//! per-sequence lengths.

use crate::error::{Error, Result};

/// The layout of a batch of sequences: `steps` (T) by `batch` (B), time-major.
///
/// With `lengths`, sequence `b` has `lengths[b]` steps (each in `1..=steps`, in any order):
/// only its first `lengths[b]` input rows are read, its state stops updating after step
/// `lengths[b] - 1`, its outputs beyond that are zero and its gradients there are exactly zero.
/// This is PyTorch's packed-sequence behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequences<'a> {
    /// Number of time steps T (the padded length when `lengths` is given).
    pub steps: usize,
    /// Number of sequences B.
    pub batch: usize,
    /// Optional per-sequence lengths, `[B]`, each in `1..=steps`.
    pub lengths: Option<&'a [usize]>,
}

impl<'a> Sequences<'a> {
    /// `steps` x `batch` sequences, all of full length.
    pub fn new(steps: usize, batch: usize) -> Self {
        Sequences {
            steps,
            batch,
            lengths: None,
        }
    }

    /// `steps` x `lengths.len()` sequences of the given lengths.
    pub fn with_lengths(steps: usize, lengths: &'a [usize]) -> Self {
        Sequences {
            steps,
            batch: lengths.len(),
            lengths: Some(lengths),
        }
    }

    /// Checks sizes and lengths; every public entry point calls this first.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::ZeroSize { arg: "steps" });
        }
        if self.batch == 0 {
            return Err(Error::ZeroSize { arg: "batch" });
        }
        if let Some(lengths) = self.lengths {
            if lengths.len() != self.batch {
                return Err(Error::length(
                    "lengths",
                    format!("B = {}", self.batch),
                    lengths.len(),
                ));
            }
            if let Some((index, &length)) = lengths
                .iter()
                .enumerate()
                .find(|&(_, &n)| n == 0 || n > self.steps)
            {
                return Err(Error::SequenceLength {
                    index,
                    length,
                    steps: self.steps,
                });
            }
        }
        Ok(())
    }

    /// Length of sequence `b` (T when no lengths are given).
    #[inline]
    pub fn len_of(&self, b: usize) -> usize {
        self.lengths.map_or(self.steps, |l| l[b])
    }

    /// Whether sequence `b` is still running at step `t`.
    #[inline]
    pub fn is_active(&self, t: usize, b: usize) -> bool {
        t < self.len_of(b)
    }

    /// `T * B * width`, the length of a `[T, B, width]` tensor, or an error naming `arg`.
    pub(crate) fn tensor_len(&self, width: usize, arg: &'static str) -> Result<usize> {
        self.steps
            .checked_mul(self.batch)
            .and_then(|v| v.checked_mul(width))
            .ok_or(Error::SizeOverflow { arg })
    }
}

/// `rows * cols`, or an error naming `arg`.
pub(crate) fn checked_len(rows: usize, cols: usize, arg: &'static str) -> Result<usize> {
    rows.checked_mul(cols).ok_or(Error::SizeOverflow { arg })
}

/// Checks that `actual` elements were passed for a tensor of `expected` elements.
pub(crate) fn check_len(
    arg: &'static str,
    actual: usize,
    expected: usize,
    shape: impl FnOnce() -> String,
) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::length(
            arg,
            format!("{} = {expected}", shape()),
            actual,
        ))
    }
}
