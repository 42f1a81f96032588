//! Caller-owned scratch memory, so that a time loop never allocates.

use crate::float::Float;

/// Scratch memory for the crate's calls.
///
/// A call takes what it needs at its start, growing the buffer if it is too small (the only
/// allocation a call can make) and never inside its time loop. Reuse one workspace across calls
/// of the same size and no call allocates at all. A workspace holds no results between calls.
/// On Linux its buffer's whole 2 MiB pages are advised as transparent huge pages (the large
/// GEMMs over `T * B` rows stream it: fewer TLB misses; figures in the README).
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
            buf: crate::pages::zeroed(len),
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

    /// `len` elements of scratch starting on a 64-byte boundary; contents are unspecified.
    pub(crate) fn take(&mut self, len: usize) -> &mut [F] {
        let [part] = self.take_parts([len]);
        part
    }

    /// Disjoint scratch slices of the given lengths, each starting on a 64-byte boundary (a
    /// cache line, and a 512-bit vector), so that a kernel's vector loads and stores in them
    /// never straddle two lines; contents are unspecified. The allocator's blocks start 16
    /// bytes past a line when they are large (`malloc`'s header), where every 64-byte load of
    /// a packed panel and every row store of a `[B, H]` block would split in two.
    pub(crate) fn take_parts<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [F]; N] {
        let line = ALIGN_BYTES / size_of::<F>();
        // Each part padded to whole lines, and one line of slack to align the start. (The
        // lengths are of buffers the caller has already checked to be addressable.)
        let total = lens
            .iter()
            .map(|&l| l.next_multiple_of(line))
            .sum::<usize>()
            + line;
        if self.buf.len() < total {
            // A new buffer (whose contents need not survive), on huge pages where it is large
            // enough (`crate::pages`); the old one is freed first, so the two never coexist.
            self.buf = Vec::new();
            self.buf = crate::pages::zeroed(total);
        }
        let off = self.buf.as_ptr().align_offset(ALIGN_BYTES).min(line);
        let mut rest = &mut self.buf[off..];
        lens.map(|len| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(len.next_multiple_of(line));
            rest = tail;
            &mut part[..len]
        })
    }
}

/// Alignment of every part [`Workspace::take_parts`] hands out (bytes).
const ALIGN_BYTES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn check<F: Float>() {
        let mut ws = Workspace::<F>::new();
        for lens in [[0, 0, 0], [1, 2, 3], [17, 0, 64], [1000, 33, 5]] {
            let parts = ws.take_parts(lens);
            let mut spans = Vec::new();
            for (part, len) in parts.iter().zip(lens) {
                assert_eq!(part.len(), len);
                let start = part.as_ptr() as usize;
                assert_eq!(start % ALIGN_BYTES, 0, "{lens:?}: part not 64-byte aligned");
                spans.push(start..start + len * size_of::<F>());
            }
            for (i, a) in spans.iter().enumerate() {
                for b in &spans[i + 1..] {
                    assert!(
                        a.end <= b.start || b.end <= a.start,
                        "{lens:?}: parts overlap"
                    );
                }
            }
            assert_eq!(ws.take(lens[2]).as_ptr() as usize % ALIGN_BYTES, 0);
        }
    }

    #[test]
    fn parts_are_aligned_disjoint_and_of_the_lengths_asked() {
        check::<f32>();
        check::<f64>();
    }
}
