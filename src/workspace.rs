//! Caller-owned scratch memory, so that a time loop never allocates.

use crate::float::Float;

/// Scratch memory for the crate's calls.
///
/// A call takes what it needs at its start, growing the buffer if it is too small (the only
/// allocation a call can make) and never inside its time loop. Reuse one workspace across calls
/// of the same size and no call allocates at all. A workspace holds no results between calls.
#[derive(Debug, Default)]
pub struct Workspace<F> {
    buf: Vec<F>,
}

impl<F: Float> Workspace<F> {
    /// An empty workspace; the first call grows it.
    pub fn new() -> Self {
        Workspace { buf: Vec::new() }
    }

    /// A workspace of `len` elements.
    pub fn with_len(len: usize) -> Self {
        Workspace {
            buf: vec![F::ZERO; len],
        }
    }

    /// Elements currently held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is held yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// At least `len` elements of scratch; contents are unspecified.
    pub(crate) fn take(&mut self, len: usize) -> &mut [F] {
        if self.buf.len() < len {
            self.buf.resize(len, F::ZERO);
        }
        &mut self.buf[..len]
    }
}
