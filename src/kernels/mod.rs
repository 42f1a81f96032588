//! Packed-B GEMM microkernels with fused RNN epilogues.
//!
//! Method. `C[m, n] = epilogue(A[m, K] x B[K, n])` with `A` row-major (leading dimension
//! `lda`) and `B` packed ONCE (at plan time) by [`PackedB`] into column panels of width
//! `NR = NV * LANES`: panel `p` holds `B[0..K, p*NR..(p+1)*NR]` as `K` contiguous rows of `NR`,
//! zero-padded past `n`, 64-byte aligned. For each panel and each block of up to `MR` rows of
//! `A`, the microkernel keeps an `MR x NV` tile of accumulator registers, broadcasts one `A`
//! element per row and loads `NV` vectors of `B` per `k`; a last panel with fewer real
//! columns runs a tile of only the vectors it needs. Small row counts (the `B = 1`
//! matrix-vector step) split `K` into `KS` interleaved partial sums (`KS = 4` for one row, 8
//! for one row of a single vector, 2 for two rows), so at least 8 FMA chains are independent
//! and the loop is not bound by the FMA latency. The tile is then handed, one vector at a
//! time, to an [`Epilogue`], which fuses what the RNN does with the product: the forward step
//! `c = act(c + acc)`, the BPTT step `d = (g + acc) * act'(h)`, or a plain store /
//! accumulate. Column remainders use
//! partial (masked) loads and stores, so nothing outside `C`'s `n` columns is touched.
//! The weight gradients' products also take `A` as columns (`A^T` row-major) and, where its
//! rows are whole panels, `B` read in place as its row-major rows ([`gemm_b_rows`]).
//!
//! The body is written once, generic over a register type ([`Simd`]), and instantiated per
//! instruction-set path inside one `#[target_feature]` function (`avx512.rs`, `avx2.rs`,
//! `portable.rs`); [`select`] picks that function once per public call, never per step.
//! Every column's arithmetic depends only on `m`, `K` and its own column, never on which panel
//! range a caller asks for, so splitting panels across threads gives bitwise-identical results.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod epilogue;
mod portable;
mod threads;

use std::ops::Range;

use crate::float::Float;
use crate::isa::Isa;

pub use epilogue::{Addend, BwdStep, FwdStep, RowMode, Store};
pub use threads::{StepLoop, alone_while_far};

/// A SIMD register of `LANES` elements of one instruction-set path.
///
/// # Safety (of every method)
///
/// The CPU must support the features of the type's path (avx512f for the AVX-512 types, avx2
/// and fma for the AVX2 types, nothing for the portable ones); pointer arguments must be valid
/// for `LANES` elements (or `n` for the `_part` forms, `n < LANES`).
pub trait Simd: Copy {
    /// `f32` or `f64`.
    type Elem: Float;
    /// Elements per register.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `x`.
    unsafe fn splat(x: Self::Elem) -> Self;
    /// Unaligned load of `LANES` elements.
    unsafe fn load(p: *const Self::Elem) -> Self;
    /// Loads the first `n < LANES` elements; the other lanes are zero and are not read.
    unsafe fn load_part(p: *const Self::Elem, n: usize) -> Self;
    /// Unaligned store of `LANES` elements.
    unsafe fn store(self, p: *mut Self::Elem);
    /// Stores the first `n < LANES` lanes; nothing else is written.
    unsafe fn store_part(self, p: *mut Self::Elem, n: usize);
    /// `self * b + c` (fused where the path has FMA).
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    /// Lane-wise sum.
    unsafe fn add(self, b: Self) -> Self;
    /// Lane-wise product.
    unsafe fn mul(self, b: Self) -> Self;
    /// `tanh` of every lane (the crate's vecmath form for the path).
    unsafe fn tanh(self) -> Self;
    /// `max(0, x)` with NaN propagating (as [`crate::Activation::apply`]).
    unsafe fn relu(self) -> Self;
    /// `1 - h*h` for `h = tanh(a)`.
    unsafe fn tanh_deriv(self) -> Self;
    /// `1` where `h > 0`, else `0`.
    unsafe fn relu_deriv(self) -> Self;
    /// Elements per 128-bit block of the register when the path broadcasts a lane in
    /// registers ([`Simd::block_splat`], [`Simd::elem_splat`]); 0 when it does not, and the
    /// one-row tile then broadcasts each element of `A` from memory.
    const BLOCK: usize = 0;
    /// `self`, hidden from the optimizer (so broadcasts of its lanes stay shuffles in
    /// registers rather than being folded back into broadcast loads).
    #[inline(always)]
    unsafe fn opaque(self) -> Self {
        self
    }
    /// The product loop of an `R x NV` register tile (one partial sum) over a panel of `NVP`
    /// vectors, for `A`'s rows `lda` apart and contiguous (`csa = 1`): `acc[i][j] = A[i][kk]
    /// * panel[kk][j] + acc[i][j]` for `kk` in `0..` the returned count, in order (the same
    /// FMAs, the same bits, as the generic loop of `tile`), fetching line `pf + kk * 64 B`
    /// per `kk` when `PF`. A path without such a loop for the shape returns 0 (the default).
    ///
    /// # Safety
    ///
    /// As `tile`: `a` valid for `R` rows of `k` elements `lda` apart, `bpanel` for
    /// `k * NVP * LANES` elements.
    #[inline(always)]
    unsafe fn strided_loop<const R: usize, const NV: usize, const NVP: usize, const PF: bool>(
        acc: &mut [[Self; NV]; R],
        a: *const Self::Elem,
        lda: usize,
        bpanel: *const Self::Elem,
        k: usize,
        pf: *const Self::Elem,
    ) -> usize {
        let _ = (acc, a, lda, bpanel, k, pf);
        0
    }
    /// Every 128-bit block set to block `q < LANES / BLOCK` of `self`.
    #[inline(always)]
    unsafe fn block_splat(self, q: usize) -> Self {
        let _ = q;
        self
    }
    /// Every element of each 128-bit block set to that block's element `e < BLOCK`.
    #[inline(always)]
    unsafe fn elem_splat(self, e: usize) -> Self {
        let _ = e;
        self
    }
}

/// The register types of each path for one element type; implemented for `f32` and `f64`
/// (a supertrait of [`Float`], so every `F: Float` has them).
pub trait KernelFloat: Sized {
    /// AVX-512 register of this element type.
    #[cfg(target_arch = "x86_64")]
    type V512: Simd<Elem = Self>;
    /// AVX2 register of this element type.
    #[cfg(target_arch = "x86_64")]
    type V256: Simd<Elem = Self>;
    /// Portable register of this element type.
    type VPort: Simd<Elem = Self>;
}

impl KernelFloat for f32 {
    #[cfg(target_arch = "x86_64")]
    type V512 = avx512::F32x16;
    #[cfg(target_arch = "x86_64")]
    type V256 = avx2::F32x8;
    type VPort = portable::Port<f32>;
}

impl KernelFloat for f64 {
    #[cfg(target_arch = "x86_64")]
    type V512 = avx512::F64x8;
    #[cfg(target_arch = "x86_64")]
    type V256 = avx2::F64x4;
    type VPort = portable::Port<f64>;
}

/// What the microkernel does with each finished vector of the product.
///
/// # Safety (of `apply`)
///
/// The caller guarantees row `r` < the `m` the epilogue was built for and columns
/// `col..col + lanes` < its `n`, `lanes <= V::LANES`, and the CPU features of `V`.
pub trait Epilogue<F>: Sync {
    /// How row `r` is treated this call (per-row work hoisted out of the column loop).
    fn row_mode(&self, r: usize) -> RowMode;
    /// Consumes `acc` = the product's row `r`, columns `col..col + lanes`.
    unsafe fn apply<V: Simd<Elem = F>>(
        &self,
        mode: RowMode,
        r: usize,
        col: usize,
        acc: V,
        lanes: usize,
    );
    /// Asks for the lines that [`Epilogue::apply`] will read for rows `r0..r0 + rows`,
    /// columns `c0..c0 + ncols`, to be fetched (hints: nothing is read), at the start of a
    /// tile whose product hides the wait.
    #[inline(always)]
    fn fetch(&self, r0: usize, rows: usize, c0: usize, ncols: usize) {
        let _ = (r0, rows, c0, ncols);
    }
}

/// `B [K, n]` packed into zero-padded column panels of `nr` for one path and element type.
#[derive(Clone, Debug)]
pub struct PackedB<F> {
    buf: Vec<F>,
    /// Start of the aligned data inside `buf`.
    off: usize,
    k: usize,
    n: usize,
    nr: usize,
}

impl<F: Float> PackedB<F> {
    /// Packs `B[k][j] = get(k, j)` for the panel width of `isa`.
    pub fn new(isa: Isa, k: usize, n: usize, get: impl Fn(usize, usize) -> F) -> Self {
        let nr = panel_width::<F>(isa);
        let panels = n.div_ceil(nr);
        let align = 64 / size_of::<F>();
        // On huge pages where it is large enough (`crate::pages`).
        let mut buf = crate::pages::zeroed::<F>(panels * k * nr + align);
        let off = buf.as_ptr().align_offset(64).min(align);
        for p in 0..panels {
            for kk in 0..k {
                let row = off + (p * k + kk) * nr;
                for j in 0..nr.min(n - p * nr) {
                    buf[row + j] = get(kk, p * nr + j);
                }
            }
        }
        PackedB { buf, off, k, n, nr }
    }

    /// Panel width.
    pub fn nr(&self) -> usize {
        self.nr
    }

    /// The packed data as a view.
    pub fn view(&self) -> PackedRef<'_, F> {
        PackedRef {
            data: &self.buf[self.off..],
            k: self.k,
            n: self.n,
            nr: self.nr,
        }
    }
}

/// Packed panels of `B [K, n]` (see [`PackedB`]) anywhere: in a plan or in a workspace.
#[derive(Clone, Copy, Debug)]
pub struct PackedRef<'a, F> {
    data: &'a [F],
    k: usize,
    n: usize,
    nr: usize,
}

impl<F> PackedRef<'_, F> {
    /// Number of panels.
    pub fn panels(&self) -> usize {
        self.n.div_ceil(self.nr)
    }
}

/// Elements [`pack_into`] needs for `B [k, n]` on `isa`.
pub fn packed_len<F: Float>(isa: Isa, k: usize, n: usize) -> usize {
    let nr = panel_width::<F>(isa);
    n.div_ceil(nr) * k * nr
}

/// Packs `B [k, n]`, given row by row (`row(kk)` is `B[kk][0..n]`, or `None` for a row of
/// zeros), for `isa` into the start of `dst` (at least [`packed_len`] elements, e.g. from a
/// workspace), zero padding included. Rows are copied as slices: this runs once per backward
/// call over all `T * B` rows, so it must run at memory speed. Large packs split their rows
/// into one contiguous block per thread of the caller's rayon pool; mid-sized ones of rows
/// that several threads wrote (`spread`: a time loop shared between them) split their panels
/// into one contiguous range per thread (each reads its part of every row as one run, the
/// columns it wrote). The result does not depend on the split.
///
/// Panics if a row is shorter than `n` (a caller bug: checked, never read out of bounds).
pub fn pack_into<'a, 's, F: Float>(
    isa: Isa,
    k: usize,
    n: usize,
    row: impl Fn(usize) -> Option<&'s [F]> + Sync,
    dst: &'a mut [F],
    spread: bool,
) -> PackedRef<'a, F> {
    pack_panels(panel_width::<F>(isa), k, n, row, dst, None, spread)
}

/// Rows of `A` per panel of [`pack_a_into`] on `isa`: the rows of a register tile of the
/// hoisted products ([`select_tall`]), so that every tile reads one panel.
pub fn a_panel_rows(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::MR_TALL,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::MR,
        _ => portable::MR,
    }
}

/// Rows of a register tile of [`select`]'s kernels on `isa`.
fn select_rows(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::MR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::MR,
        _ => portable::MR,
    }
}

/// Elements [`pack_a_into`] needs for `A [m, k]` on `isa`.
pub fn packed_a_len(isa: Isa, k: usize, m: usize) -> usize {
    let mr = a_panel_rows(isa);
    m.div_ceil(mr) * k * mr
}

/// Packs `A = G^T` (`[m, k]`) for [`gemm_packed_a`], given `G [k, m]` row by row (`row(kk)` is
/// `G[kk][0..m]`), into the start of `dst` (at least [`packed_a_len`] elements): panels of
/// [`a_panel_rows`] rows of `A`, each `k` contiguous runs of that many elements, so a register
/// tile reads its rows of `A` for every `k` from one run. This is how the weight gradients
/// read `dA^T` (`G = dA`, `k = T * B`): the pack reads `dA` row by row and writes one stream
/// per panel, where a transposed copy wrote `H` streams, one per row of `dA^T`. When `sums`
/// is given (`m` elements, overwritten), it receives the sum of each column of `G`, added from
/// zero in row order (whatever the thread count): `dA`'s bias gradients in the same pass.
/// Split between threads as [`pack_into`].
///
/// Panics if a row is shorter than `m` or `sums` than `m` (a caller bug).
pub fn pack_a_into<'a, 's, F: Float>(
    isa: Isa,
    k: usize,
    m: usize,
    row: impl Fn(usize) -> &'s [F] + Sync,
    dst: &'a mut [F],
    sums: Option<&mut [F]>,
    spread: bool,
) -> PackedRef<'a, F> {
    pack_panels(
        a_panel_rows(isa),
        k,
        m,
        |kk| Some(row(kk)),
        dst,
        sums,
        spread,
    )
}

/// [`pack_into`] and [`pack_a_into`] for panels `nr` wide.
fn pack_panels<'a, 's, F: Float>(
    nr: usize,
    k: usize,
    n: usize,
    row: impl Fn(usize) -> Option<&'s [F]> + Sync,
    dst: &'a mut [F],
    sums: Option<&mut [F]>,
    spread: bool,
) -> PackedRef<'a, F> {
    use rayon::prelude::*;
    let panels = n.div_ceil(nr);
    let dst = &mut dst[..panels * k * nr];
    let mut sums = sums.map(|s| &mut s[..n]);
    if let Some(s) = sums.as_deref_mut() {
        s.fill(F::ZERO);
    }
    let threads = threads::pool_threads();
    // Panels `p0..` into `dst` (whole panels from `p0`), their columns' sums into `sums`.
    let min = if spread {
        PACK_SPREAD_PARALLEL_ELEMS
    } else {
        PACK_PARALLEL_ELEMS
    };
    let split = k * n >= min && threads > 1 && panels > 1 && k > 0;
    // Sums in blocks of rows where the parts meet in a line of `sums` (see
    // `pack_rows_summed`); on one thread row by row at every size.
    let blocked = split;
    let stream = sums.is_none() && streams_panels(nr, dst);
    let part = |p0: usize, dst: &mut [F], sums: Option<&mut [F]>| match nr {
        32 => pack_rows::<F, 32>(k, n, p0, &row, dst, sums, blocked, stream),
        16 => pack_rows::<F, 16>(k, n, p0, &row, dst, sums, blocked, stream),
        12 => pack_rows::<F, 12>(k, n, p0, &row, dst, sums, blocked, stream),
        8 => pack_rows::<F, 8>(k, n, p0, &row, dst, sums, blocked, stream),
        6 => pack_rows::<F, 6>(k, n, p0, &row, dst, sums, blocked, stream),
        4 => pack_rows::<F, 4>(k, n, p0, &row, dst, sums, blocked, stream),
        _ => unreachable!("panel widths are 4, 6, 8, 12, 16 or 32"),
    };
    if !split {
        part(0, dst, sums);
    } else if sums.is_none() && k * n >= PACK_PARALLEL_ELEMS {
        // A large pack without sums (the weight gradients' `X` and `h_(t-1)`): each thread
        // copies a contiguous block of the rows into those rows of every panel, reading one
        // run of the source, where a range of panels read part of every row (half of each
        // 2 KiB row at `n = 512`, the other half fetched by the other core's prefetchers).
        // Phase timers (scratch build, `taskset -c 0,1 bench_table --threads 2 --modes train`,
        // Zen 4, 6 alternated rounds, medians, ms, panels / rows): `rnn_h512_b64_t50` pack of
        // `X` 0.665 / 0.438, of `h_(t-1)` 0.640 / 0.314; `rnn_h1760_b64_t50` 2.153 / 1.690,
        // 2.043 / 1.501. A pack with sums keeps the panels: each column is summed in row order
        // by one thread.
        let d = SharedMut(dst.as_mut_ptr());
        (0..threads).into_par_iter().for_each(|c| {
            let rows = k * c / threads..k * (c + 1) / threads;
            let f = match nr {
                32 => pack_row_block::<F, 32>,
                16 => pack_row_block::<F, 16>,
                12 => pack_row_block::<F, 12>,
                8 => pack_row_block::<F, 8>,
                6 => pack_row_block::<F, 6>,
                4 => pack_row_block::<F, 4>,
                _ => unreachable!("panel widths are 4, 6, 8, 12, 16 or 32"),
            };
            // SAFETY: `d` is `dst` (`panels * k * nr` elements, borrowed mutably for this
            // call and not touched otherwise until every part has returned); part `c` writes
            // rows `rows` (< k) of each panel, disjoint from every other part's; with
            // `stream`, `streams_panels` found `dst` aligned to 64 bytes and `nr` elements a
            // multiple of 64 bytes.
            unsafe { f(k, n, rows, 0, panels, &row, d.get(), None, stream) };
        });
    } else {
        let per = panels.div_ceil(threads);
        let tasks = dst.par_chunks_mut(per * k * nr).enumerate();
        match sums {
            Some(s) => tasks
                .zip(s.par_chunks_mut(per * nr))
                .for_each(|((i, d), s)| part(i * per, d, Some(s))),
            None => tasks.for_each(|(i, d)| part(i * per, d, None)),
        }
    }
    PackedRef {
        data: dst,
        k,
        n,
        nr,
    }
}

/// Bytes of panels from which a pack without sums (the weight gradients' `X` and `h_(t-1)`)
/// writes them with non-temporal stores ([`streams_panels`]).
const PACK_STREAM_MIN_BYTES: usize = 1 << 20;

/// Whether [`pack_panels`] writes `dst` (the panels, `nr` wide) with non-temporal stores: on
/// x86_64, where a panel's row is whole 64-byte lines (`dst` aligned to them, `nr` elements a
/// multiple of 64 bytes: the AVX-512 and AVX2 paths) and the panels take at least
/// [`PACK_STREAM_MIN_BYTES`]. Such a pack writes lines that are in no cache (last written by
/// the previous call) and fills each of them whole: an ordinary store first reads the line from
/// memory, a non-temporal one does not, and the product after it reads the panels from memory
/// either way (they are larger than L2). Phase timers in a scratch build choosing at run time
/// (`taskset -c 0,1 bench_table --threads 1 --modes train --target-s 0.3`, Zen 4, 6
/// alternated rounds, medians, ms, ordinary / non-temporal stores), packs of `X` and of
/// `h_(t-1)`: `rnn_h512_b64_t50` (6.5 MB each) 0.65 / 0.37 and 0.54 / 0.31, `rnn_h1760_b16_t50`
/// 0.72 / 0.31 and 0.36 / 0.32, `rnn_h256_b64_t50` 0.27 / 0.17 and 0.23 / 0.14,
/// `rnn_h512_b16_t50` (1.6 MB) 0.141 / 0.077 and 0.113 / 0.088, with `dW_ih` and `dW_hh` level
/// (14.87 / 14.88 and 14.83 / 14.93 ms at `rnn_h512_b64_t50`); whole call 0.979-1.001. Smaller
/// packs stay in cache for the product: at `rnn_h512_b4_t50` (410 KB) the pack of `X` went
/// 0.030 -> 0.021 ms but `dW_ih` and `dW_hh` 1.088 -> 1.101 and 1.082 -> 1.106 (whole call
/// 1.017); at `rnn_h512_b8_t50` and `rnn_h1024_b4_t50` (820 KB) level (0.996, 0.985). On 2
/// threads (the same, `--threads 2`, 6 rounds): `rnn_h512_b64_t50` `X` 0.47 / 0.29, `h_(t-1)`
/// 0.84 / 0.25, `rnn_h1760_b16_t50` 0.53 / 0.31 and 0.65 / 0.28, the products level or
/// faster. The library's build against its parent (`bench_table --modes train --target-s 0.3`,
/// 8 alternated rounds, ratio of the medians): 1 thread `rnn_h256_b64_t50` 0.977,
/// `rnn_h512_b64_t50` 0.986, `rnn_h512_b16_t50` 0.992, `rnn_h1760_b16_t50` 1.000; 2 threads
/// 0.976-1.011 (fastest samples 0.991-1.007), within that hour's noise.
fn streams_panels<F>(nr: usize, dst: &[F]) -> bool {
    const LINE: usize = 64;
    cfg!(target_arch = "x86_64")
        && (nr * size_of::<F>()).is_multiple_of(LINE)
        && (dst.as_ptr() as usize).is_multiple_of(LINE)
        && size_of_val(dst) >= PACK_STREAM_MIN_BYTES
}

/// Elements (`k * n`) from which packs split their panels across threads.
const PACK_PARALLEL_ELEMS: usize = 1 << 18;
/// [`PACK_PARALLEL_ELEMS`] for rows that the threads of a shared time loop wrote, each its
/// own columns (`spread`): packed on one thread, half of them came from the other core's
/// cache, and the weight gradients' threads then read the packed panels from the packing
/// core's. `bench_table --threads 2 --modes train --target-s 0.4` (`taskset -c 0,1`, Zen 4,
/// this build against its parent, 6 alternated rounds, ratio of the medians):
/// `rnn_h256_b1_t150` (38 400 elements) 0.942, `rnn_h256_b2_t40` 0.921 (faster in every round
/// at both); `rnn_h100_b3_t100` 1.000 and `rnn_h200_b1_t150` 1.003, whose loops stay on one
/// thread (this threshold for every pack instead cost 1.055 at `rnn_h100_b3_t100`: hence the
/// hint). Phase timers in a scratch build: `dA^T`'s pack 0.025 -> 0.018 ms, `dW_ih` with its
/// pack of `X` 0.123 -> 0.097, `dW_hh` with `h_(t-1)`'s 0.106 -> 0.096 at `rnn_h256_b1_t150`.
/// A loop that splits its rows rather than its panels (`rnn_h256_b16_t50`) measured in a
/// noisy hour only: fastest samples 0.951 and 0.956 in two runs (6 and 8 rounds), medians
/// 0.79 and 1.06.
const PACK_SPREAD_PARALLEL_ELEMS: usize = 1 << 14;

/// [`pack_panels`]' loop for panels `NR` wide, panels `p0..p0 + dst.len() / (k * NR)`, row by
/// row: a full panel row is one fixed-size copy (a couple of vector moves in place, where a
/// slice copy of run-time length called `memmove` per row and panel). With `sums` (the
/// panels' columns from `p0 * NR`), each copied row is added to them, or with `blocked` in
/// blocks of rows by [`pack_rows_summed`] (the same bits). With `stream` (no sums), full panel
/// rows are written with non-temporal stores ([`streams_panels`]).
#[allow(clippy::too_many_arguments)]
fn pack_rows<'s, F: Float, const NR: usize>(
    k: usize,
    n: usize,
    p0: usize,
    row: &impl Fn(usize) -> Option<&'s [F]>,
    dst: &mut [F],
    sums: Option<&mut [F]>,
    blocked: bool,
    stream: bool,
) {
    let panel_len = k * NR;
    if panel_len == 0 {
        return;
    }
    let panels = dst.len() / panel_len;
    let sums = match sums {
        Some(sums) if blocked => return pack_rows_summed::<F, NR>(k, n, p0, row, dst, sums),
        sums => sums,
    };
    // SAFETY: `dst` is borrowed mutably for the call and holds `panels` whole panels: every
    // row of each is this call's. With `stream`, `pack_panels` found its whole buffer aligned
    // to 64 bytes and `NR` elements a multiple of 64 bytes, and this part starts whole panels
    // into it.
    unsafe { pack_row_block::<F, NR>(k, n, 0..k, p0, panels, row, dst.as_mut_ptr(), sums, stream) }
}

/// [`pack_rows`]' row loop, and [`pack_panels`]' for one thread's block of rows of a large
/// pack without sums: rows `rows` of the source into those rows of panels `p0..p0 + panels`
/// (`dst` pointing at panel `p0`), nothing else there touched; with `sums` (the columns from
/// `p0 * NR`), each copied row added to them. With `stream`, full rows of the panels given
/// rows are written by [`stream_panel_row`], and the call ends with a store fence, so that
/// whoever sees it return (this thread, or another after the pool's join) reads them.
///
/// # Safety
///
/// `dst` valid for writes of `panels * k * NR` elements, `rows` within `0..k`, and no one else
/// reading or writing those rows of those panels during the call; with `stream`, `dst`
/// aligned to 16 bytes and `NR` elements a multiple of 16 bytes.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_row_block<'s, F: Float, const NR: usize>(
    k: usize,
    n: usize,
    rows: Range<usize>,
    p0: usize,
    panels: usize,
    row: &impl Fn(usize) -> Option<&'s [F]>,
    dst: *mut F,
    mut sums: Option<&mut [F]>,
    stream: bool,
) {
    debug_assert!(rows.end <= k && (p0 + panels) * NR < n + NR);
    let panel_len = k * NR;
    for kk in rows {
        let src = row(kk);
        for p in 0..panels {
            let c0 = (p0 + p) * NR;
            // `p < panels` and `kk < k`: the row's `NR` elements lie within `dst` and are this
            // call's alone (the caller's contract).
            let d = dst.wrapping_add(p * panel_len + kk * NR);
            if stream
                && c0 + NR <= n
                && let Some(src) = src
            {
                let x: &[F; NR] = src[c0..c0 + NR].try_into().expect("NR elements");
                // SAFETY: `d` as above, 16-byte aligned: `dst` is, and `NR` elements are a
                // multiple of 16 bytes (the caller's contract with `stream`).
                unsafe { stream_panel_row(d, x) };
                continue;
            }
            // SAFETY: `d` as above.
            let d = unsafe { &mut *d.cast::<[F; NR]>() };
            copy_panel_row(d, src, c0, NR.min(n - c0), None);
        }
        if let (Some(s), Some(src)) = (sums.as_deref_mut(), src) {
            for (s, &x) in s.iter_mut().zip(&src[p0 * NR..]) {
                *s += x;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if stream {
        // Non-temporal stores are ordered by this fence only: after it they are visible
        // before anything this thread stores next (the pool's join, the caller's reads).
        // SAFETY: SSE is part of x86_64.
        unsafe { std::arch::x86_64::_mm_sfence() };
    }
}

/// `*d = *x` with non-temporal stores on x86_64 (SSE2's 16-byte `movntdq`, part of the
/// architecture: the bytes, whatever `F` is), an ordinary copy elsewhere.
///
/// # Safety
///
/// `d` valid for writes of `NR` elements and 16-byte aligned, `NR` elements a multiple of 16
/// bytes.
#[inline(always)]
unsafe fn stream_panel_row<F: Float, const NR: usize>(d: *mut F, x: &[F; NR]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let (s, d) = (x.as_ptr().cast::<__m128i>(), d.cast::<__m128i>());
        for i in 0..size_of::<[F; NR]>() / 16 {
            // SAFETY: the 16 bytes at `i * 16 < NR * size_of::<F>()` lie inside `x` (read
            // unaligned) and inside `d`'s `NR` elements, which are 16-byte aligned (the
            // caller's contract); SSE2 is part of x86_64.
            unsafe { _mm_stream_si128(d.add(i), _mm_loadu_si128(s.add(i))) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `d` valid for writes of `NR` elements (the caller's contract).
    unsafe {
        d.cast::<[F; NR]>().write(*x)
    };
}

/// Rows of [`pack_rows`]' source per block of [`pack_rows_summed`].
const SUM_ROWS: usize = 16;

/// [`pack_rows`] with the packed columns' sums (`sums`, from zero, the panels' columns from
/// `p0 * NR`) for packs split between threads: a block of [`SUM_ROWS`] rows at a time (32 KiB
/// at `n = 512` in `f32`: L1), their rows looked up once, then panel by panel, each panel's
/// sums carried in registers through the block's rows and stored once per block. [`pack_rows`]
/// adds every row into the sums in memory, and with two threads the line holding the columns
/// where their parts meet goes back and forth between the cores every row. Each column is
/// still added from zero in row order: the same bits, whichever loop runs. The `pack_speed`
/// probe (`pack_a_into` with sums, two runs alternated, us, row by row / in blocks): 2 threads
/// 3200x512 667-684 / 502-507, 1584x512 343-345 / 251-256, 3200x1760 1854-1909 / 1361-1370.
/// On one thread the row loop runs at every size: the blocks had measured ahead there too
/// (3200x1760 3804-4022 / 2785-2807), but on 2026-12-05 (Zen 4) a scratch probe alternating
/// the loops in one binary (`pack_a_into` with sums, 9 rounds, median us, row by row / blocks
/// with each row looked up per panel, as before / blocks as here) had 1 thread 3200x512 501 /
/// 681 / 505, 1584x512 164 / 283 / 202, 3200x1760 3363 / 5368 / 4425, 800x512 81 / 136 / 95,
/// 3200x256 191 / 291 / 213; 2 threads 3200x512 406 / 317 / 326, 1584x512 154 / 142 / 144,
/// 3200x1760 2071 / 2498 / 2086, 800x512 76 / 72 / 63. Inside `backward`, where `dA` and the
/// panels are not in cache, the row loop gains more: phase timers in a scratch build choosing
/// at run time (`taskset -c 0,1 bench_table --threads 1 --modes train --target-s 0.3`, 5
/// alternated rounds, medians, ms of the pack with its sums, blocks as before / row by row):
/// `rnn_h512_b64_t50` 1.45 / 0.94, `rnn_h256_b64_t50` 0.68 / 0.34, `rnn_h512_b16_t50` 0.30 /
/// 0.24, `rnn_h1760_b16_t50` 1.13 / 0.88; on 2 threads (6 rounds, blocks as before / as here)
/// `rnn_h512_b64_t50` 0.74 / 0.69, `rnn_h1760_b16_t50` 0.64 / 0.55.
fn pack_rows_summed<'s, F: Float, const NR: usize>(
    k: usize,
    n: usize,
    p0: usize,
    row: &impl Fn(usize) -> Option<&'s [F]>,
    dst: &mut [F],
    sums: &mut [F],
) {
    let panel_len = k * NR;
    let panels = dst.len() / panel_len;
    let mut block: [Option<&[F]>; SUM_ROWS] = [None; SUM_ROWS];
    for r0 in (0..k).step_by(SUM_ROWS) {
        let r1 = (r0 + SUM_ROWS).min(k);
        for (src, kk) in block.iter_mut().zip(r0..r1) {
            *src = row(kk);
        }
        let block = &block[..r1 - r0];
        for (p, panel) in dst.chunks_exact_mut(panel_len).take(panels).enumerate() {
            let c0 = (p0 + p) * NR;
            let width = NR.min(n - c0);
            let out = &mut sums[p * NR..][..width];
            let mut acc = [F::ZERO; NR];
            acc[..width].copy_from_slice(out);
            let rows = panel[r0 * NR..r1 * NR].chunks_exact_mut(NR);
            for (d, &src) in rows.zip(block) {
                let d: &mut [F; NR] = d.try_into().expect("NR elements");
                copy_panel_row(d, src, c0, width, Some(&mut acc));
            }
            out.copy_from_slice(&acc[..width]);
        }
    }
}

/// One row of a panel `NR` wide: `src`'s `width` columns from `c0` into `d`, zeros after them
/// (all zeros for a row given as `None`), the copied columns added into `acc` when given. A
/// full row is one fixed-size copy.
#[inline(always)]
fn copy_panel_row<F: Float, const NR: usize>(
    d: &mut [F; NR],
    src: Option<&[F]>,
    c0: usize,
    width: usize,
    acc: Option<&mut [F; NR]>,
) {
    let add = |acc: Option<&mut [F; NR]>, x: &[F]| {
        if let Some(acc) = acc {
            for (a, &x) in acc.iter_mut().zip(x) {
                *a += x;
            }
        }
    };
    match src {
        Some(src) if width == NR => {
            let x: &[F; NR] = src[c0..c0 + NR].try_into().expect("NR elements");
            *d = *x;
            add(acc, x);
        }
        Some(src) => {
            let x = &src[c0..c0 + width];
            d[..width].copy_from_slice(x);
            d[width..].fill(F::ZERO);
            add(acc, x);
        }
        None => *d = [F::ZERO; NR],
    }
}

/// `sums[j] = sum over r of g[r * n + j]` for `j < n`, `g` holding whole rows of `n`: each
/// column added from zero in row order (the bits of the plain loop), a block of columns at a
/// time in registers, compiled for `isa`'s vectors where the host has them (the plain loop,
/// compiled for the baseline, added each row into the sums in memory with 16-byte vectors).
/// The bias gradients of [`Rnn::backward`](crate::Rnn::backward) when `dA^T` is not packed.
///
/// Panics if `n == 0`, `g.len()` is not a multiple of `n`, or `sums.len() != n` (a caller bug).
pub fn col_sums<F: Float>(isa: Isa, g: &[F], n: usize, sums: &mut [F]) {
    assert!(
        n > 0 && g.len().is_multiple_of(n) && sums.len() == n,
        "col_sums shape bug"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx512f is present: `is_supported` checked the path's features.
        Isa::Avx512 if isa.is_supported() => unsafe { on_avx512(|| col_sums_by(g, n, sums)) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: avx2 is present: `is_supported` checked the path's features.
        Isa::Avx2Fma if isa.is_supported() => unsafe { on_avx2(|| col_sums_by(g, n, sums)) },
        _ => col_sums_by(g, n, sums),
    }
}

/// The body of [`col_sums`]: blocks of 64 columns, then one of 32, 16 and 8 where they fit
/// (each summed over all rows in registers before it is stored), the last few in memory.
#[inline(always)]
fn col_sums_by<F: Float>(g: &[F], n: usize, sums: &mut [F]) {
    let mut c0 = col_blocks::<F, 64>(g, n, sums, 0);
    c0 = col_blocks::<F, 32>(g, n, sums, c0);
    c0 = col_blocks::<F, 16>(g, n, sums, c0);
    c0 = col_blocks::<F, 8>(g, n, sums, c0);
    let out = &mut sums[c0..];
    out.fill(F::ZERO);
    for row in g.chunks_exact(n) {
        for (a, &x) in out.iter_mut().zip(&row[c0..]) {
            *a += x;
        }
    }
}

/// Sums of the whole blocks of `W` columns from `c0` (as [`col_sums`]); returns the first
/// column after them.
#[inline(always)]
fn col_blocks<F: Float, const W: usize>(g: &[F], n: usize, sums: &mut [F], c0: usize) -> usize {
    let blocks = (n - c0) / W;
    for b in 0..blocks {
        let c = c0 + b * W;
        let mut acc = [F::ZERO; W];
        for row in g.chunks_exact(n) {
            let x: &[F; W] = row[c..c + W].try_into().expect("W columns");
            for (a, &x) in acc.iter_mut().zip(x) {
                *a += x;
            }
        }
        sums[c..c + W].copy_from_slice(&acc);
    }
    c0 + blocks * W
}

/// Runs `f` inlined into a function compiled with avx512f.
///
/// # Safety
///
/// The CPU must support avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn on_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` inlined into a function compiled with avx2.
///
/// # Safety
///
/// The CPU must support avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn on_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The panel width (`NV * LANES`) of each path.
pub fn panel_width<F: Float>(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::NV * <F::V512 as Simd>::LANES,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::NV * <F::V256 as Simd>::LANES,
        _ => portable::NV * <F::VPort as Simd>::LANES,
    }
}

/// The unchecked operands of one packed GEMM: `A` (`m` rows of `K = bp.k()`, leading
/// dimension `lda`) times the packed `B`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Operands<F> {
    /// `A[0][0]`.
    pub a: *const F,
    /// Leading dimension of `A` (distance between rows).
    pub lda: usize,
    /// Distance between consecutive elements of a row of `A` (1: row-major).
    pub csa: usize,
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Contraction length (`bp.k()`, or 0 for an epilogue-only call).
    pub k: usize,
    /// The first panel (at the first `k` used).
    pub bp: *const F,
    /// Elements from one panel to the next (the packed `K * nr`; `nr` for `B` as rows).
    pub pstride: usize,
    /// Elements from one row of a panel to the next: `nr`, or `n` for `B` as rows (its
    /// row-major `[K, n]` read in place, [`gemm_b_rows`]).
    pub ldb: usize,
    /// Columns of `C` (the packed `B`'s `n`).
    pub n: usize,
    /// Panel width (`bp.nr()`).
    pub nr: usize,
    /// Elements from row `r` of `A` to row `r + 1` where `r + 1` starts a register tile
    /// (`r + 1` a multiple of the tile's `MR`): `lda`, or for `A` packed in panels of `MR` rows
    /// ([`pack_a_into`]: `lda = 1`, `csa = MR`) the panel's full `K` (so `MR` rows step one
    /// panel).
    pub lda_tile: usize,
    /// Where the rows after these start when the same kernel call's thread goes on to them
    /// next (the next `MC`-row chunk of a GEMM whose `A` rows are contiguous), else null: the
    /// last panel's tiles fetch them into L2 ahead (see `row_blocks`).
    pub a_next: *const F,
    /// As `a_next` for the rows of `C` the next chunk writes (contiguous: `ldc = n`), fetched
    /// by the panel before the last.
    pub c_next: *const F,
    /// Whether the first two register tiles of each panel fetch the next panel into L2 where
    /// `B` is beyond L2 (see `row_blocks`): set by every constructor, cleared for a time loop's
    /// step of more than two tiles ([`Operands::for_step_tiles`]).
    pub fetch_panels: bool,
}

impl<F: Float> Operands<F> {
    /// The operands for `A` in `a` (row-major, `lda`) times `bp`; `k_used = 0` makes an
    /// epilogue-only call (the product is taken as zero, `a` is not read).
    ///
    /// Panics if `a` is too short for `m` rows (checked once here, not per step).
    pub fn new(a: &[F], lda: usize, m: usize, bp: PackedRef<'_, F>, k_used: usize) -> Self {
        assert!(k_used == 0 || lda >= k_used, "kernel bug: lda < K");
        Self::strided(a, lda, 1, m, bp, k_used)
    }

    /// As [`Operands::new`] with `A[i][k]` at `a[i * rsa + k * csa]` (e.g. a transposed view).
    pub fn strided(
        a: &[F],
        rsa: usize,
        csa: usize,
        m: usize,
        bp: PackedRef<'_, F>,
        k_used: usize,
    ) -> Self {
        assert!(k_used == 0 || k_used == bp.k, "kernel bug: K mismatch");
        assert!(
            m == 0 || k_used == 0 || (m - 1) * rsa + (k_used - 1) * csa < a.len(),
            "kernel bug: A too short"
        );
        Operands {
            a: a.as_ptr(),
            lda: rsa,
            csa,
            m,
            k: k_used,
            bp: bp.data.as_ptr(),
            pstride: bp.k * bp.nr,
            ldb: bp.nr,
            n: bp.n,
            nr: bp.nr,
            lda_tile: rsa,
            a_next: std::ptr::null(),
            c_next: std::ptr::null(),
            fetch_panels: true,
        }
    }

    /// The operands for `A` packed in panels by [`pack_a_into`] (`[m, K]` with `m = ap.n`),
    /// from its contraction index `k0` on, times `bp` (`bp.k = K - k0`).
    ///
    /// Panics if the shapes disagree (checked once here).
    pub fn panels(ap: PackedRef<'_, F>, k0: usize, bp: PackedRef<'_, F>) -> Self {
        assert!(ap.nr > 0 && k0 + bp.k == ap.k, "kernel bug: K mismatch");
        assert!(
            ap.data.len() >= ap.n.div_ceil(ap.nr) * ap.k * ap.nr,
            "kernel bug: A too short"
        );
        Operands {
            a: ap.data.as_ptr().wrapping_add(k0 * ap.nr),
            lda: 1,
            csa: ap.nr,
            m: ap.n,
            k: bp.k,
            bp: bp.data.as_ptr(),
            pstride: bp.k * bp.nr,
            ldb: bp.nr,
            n: bp.n,
            nr: bp.nr,
            lda_tile: ap.k,
            a_next: std::ptr::null(),
            c_next: std::ptr::null(),
            fetch_panels: true,
        }
    }

    /// Whether `A` is packed in panels ([`Operands::panels`]; a packed `A` of `K = 1` reads
    /// as strided, the same tiles).
    #[inline(always)]
    fn packed_a(&self) -> bool {
        self.lda_tile != self.lda
    }

    /// Asks for every line of `A`'s rows to be brought into L1 at once, when they are
    /// contiguous rows (`csa = 1`) of at most [`FETCH_A_MAX_BYTES`] in all: a hint, never a
    /// memory access. For a time loop shared by threads, whose step reads `h_(t-1)` (or
    /// `dA_(t+1)`) just written by the other participants: the tile reads it a line at a
    /// time as `k` advances, so each of their lines waited for its own transfer between cores.
    #[inline]
    pub(crate) fn fetch_a(&self) {
        let size = size_of::<F>();
        if self.csa != 1 || self.k == 0 || self.m * self.k * size > FETCH_A_MAX_BYTES {
            return;
        }
        epilogue::fetch_rows::<F, true>(self.a, self.lda, 0, self.m, 0, self.k);
    }

    /// Whether a one-row tile broadcasts `A` in registers: its row is contiguous and `K` is at
    /// least [`REG_SPLAT_MIN_K`] (see `tile`).
    #[inline(always)]
    fn reg_splat(&self) -> bool {
        self.csa == 1 && self.k >= REG_SPLAT_MIN_K
    }

    /// `A`'s row `r` for register tiles of `MR` rows: `a + r * lda`, or for `A` packed in
    /// panels of `MR` rows, row `r % MR` of panel `r / MR`. (Arithmetic only, with `MR` known
    /// at compile time: a branch or a division by a run-time panel height here made the time
    /// loop's tiles keep their accumulators on the stack, 1.8x slower steps.)
    #[inline(always)]
    fn a_row<const MR: usize>(&self, r: usize) -> *const F {
        let s = r % MR;
        self.a.wrapping_add((r - s) * self.lda_tile + s * self.lda)
    }

    /// The operands of rows `r0..r0 + mc` of `A` (and of the product).
    #[inline(always)]
    pub fn rows(self, r0: usize, mc: usize) -> Self {
        Operands {
            // `r0` starts a tile: callers pass multiples of `MC`, which every `MR` divides.
            a: self.a.wrapping_add(r0 * self.lda_tile),
            m: mc,
            ..self
        }
    }

    /// The operands of the contraction indices `k0..k0 + kc` (`k0 + kc <= k`): `A`'s columns
    /// and every panel's rows from `k0`.
    #[inline(always)]
    pub fn k_block(self, k0: usize, kc: usize) -> Self {
        debug_assert!(k0 + kc <= self.k);
        Operands {
            a: self.a.wrapping_add(k0 * self.csa),
            k: kc,
            bp: self.bp.wrapping_add(k0 * self.ldb),
            ..self
        }
    }

    /// The same operands, with the rows after them at `a_next` and `c_next` (see
    /// [`Operands::a_next`]).
    #[inline(always)]
    pub fn with_next(self, a_next: *const F, c_next: *const F) -> Self {
        Operands {
            a_next,
            c_next,
            ..self
        }
    }

    /// The same operands for a time loop's step in register tiles of `tile_rows` rows: the
    /// first two tiles of a panel fetch the next one ([`Operands::fetch_panels`]) only where
    /// the step has at most two tiles, or on Intel's CPUs.
    ///
    /// A step's panel is read by each of its tiles. With more than two, the hardware's own
    /// fetches, as the first tile streams the panel from L3, keep up for the others, and the
    /// first two tiles fetching all of the next panel only put it in L2 a whole panel early,
    /// beside the step's `A`, which every tile of every panel reads from there. Phase timers
    /// around the time loops (a scratch build switching the fetch at run time, `taskset -c
    /// 0,1 bench_table --modes train --target-s 0.3`, Zen 4, L2 1 MiB, 4-6 alternated rounds,
    /// medians, ms, fetching / not; the forward loop, then the sweep with `dh_0`'s product):
    /// 1 thread `rnn_h1760_b64_t50` 178.8 / 176.3 and 182.0 / 177.9 (in a slower hour 187.5 /
    /// 184.1 and 192.9 / 184.4), `rnn_h1760_b48_t50` 134.8 / 133.8 and 137.4 / 134.3,
    /// `rnn_h1024_b64_t50` 61.4 / 60.8 and 60.6 / 60.1, `rnn_h1024_b128_t20` 49.6 / 49.2 and
    /// 49.5 / 48.5, `rnn_h768_b128_t50` 68.3 / 67.7 and 68.5 / 68.0, `rnn_h1760_b32_t50` 89.7
    /// / 89.5 and 90.7 / 90.1, `rnn_h2048_b64_t20` 99.3 / 100.6 and 101.8 / 100.8; 2 threads
    /// `rnn_h1760_b64_t50` 91.3 / 89.9 and 93.6 / 90.1, `rnn_h1024_b64_t50` 31.5 / 31.4 and
    /// 32.1 / 31.1, `rnn_h1760_b32_t50` 45.0 / 45.3 and 46.3 / 45.5. With two tiles (`B = 16`
    /// in 8-row tiles) both fetch, over the panel's whole time, and it stays: without it
    /// `rnn_h1760_b16_t50` went 43.7 -> 44.3 and 44.5 -> 44.8. The hoisted products keep it for
    /// their 96-row chunks (without it `rnn_h1760_b64_t50`'s moved -0.8 to +0.1 ms of 178-180,
    /// `rnn_h512_b64_t50`'s projection 15.9 -> 16.4). Intel's cores (2 MiB of L2) keep it
    /// too: not measured there.
    #[inline(always)]
    pub fn for_step_tiles(self, tile_rows: usize) -> Self {
        Operands {
            fetch_panels: self.m <= 2 * tile_rows || crate::isa::vendor_is_intel(),
            ..self
        }
    }

    /// The same operands with `A` at another address (the time loop moves `A` along the
    /// sequence).
    #[inline(always)]
    pub fn with_a(self, a: *const F) -> Self {
        Operands { a, ..self }
    }
}

// SAFETY: `Operands` is a bundle of addresses of data the caller keeps alive and reads only
// (A, packed B) for the duration of the calls; sharing those addresses between threads is
// sound exactly when sharing `&[F]` is, and F is Sync.
unsafe impl<F: Sync> Sync for Operands<F> {}
// SAFETY: as for `Sync`: read-only addresses of `F: Send + Sync` data.
unsafe impl<F: Send + Sync> Send for Operands<F> {}

/// A packed-GEMM function of one path: runs panels `panels` of the product through `E`.
///
/// # Safety
///
/// The CPU must support the path the function was selected for (by [`select`], which checks
/// nothing: the caller's `isa` must be supported); `ops` must describe readable memory (`m`
/// rows of `k` elements at `lda` from `a`; `bp` valid for `n.div_ceil(nr) * k * nr`
/// elements, `nr` = the path's panel width); `epi` must accept every row `< m` and column
/// `< n`; `panels` must lie in `0..n.div_ceil(nr)`. Concurrent calls must use disjoint
/// panel ranges when `epi` writes.
pub type KernelFn<F, E> = unsafe fn(&Operands<F>, &E, Range<usize>);

/// A recurrence as a sequence of dependent packed-GEMM steps: step `s` reads what steps
/// before it wrote (the previous state) and writes its own block through its epilogue. Every
/// step has the same rows (`m`, the batch): [`StepLoop::run_steps`] picks the tiles from step
/// 0's. The steps after the first differ only in where `A` starts (the previous state moves
/// along the sequence; the first step may read another state, or none): a single-threaded
/// loop reads step 1's other operands once (see [`steps_body`]).
///
/// # Safety
///
/// Implementers promise that, once every call of steps `0..s` has returned, the operands and
/// epilogue of [`Steps::step`]`(s)` meet the memory contract of [`KernelFn`] for every panel
/// of the product, and that calls of the same step on disjoint panel ranges write disjoint
/// memory; that the operands of every step `s >= 1` are step 1's but for `a` (checked in
/// debug builds); and that the rows are independent: row `r` of step `s` (its row of `A` and
/// what its epilogue reads and writes for row `r`) touches only row `r` of what the other
/// steps write. Rows split between threads then run their steps without waiting for each
/// other (see [`StepLoop::run_steps`]). With [`Steps::has_ride`], they also promise that the
/// tile of [`Steps::ride`]`(s)`, computed during step `s` once steps `0..s` have returned,
/// meets [`RideTile`]'s memory contract, writes memory no step touches before step `s + 1`,
/// and that the steps after `s` keep their memory contract once it is written.
pub unsafe trait Steps<F>: Sync {
    /// The epilogue of every step.
    type Epi: Epilogue<F>;
    /// The operands and epilogue of step `s`.
    fn step(&self, s: usize) -> (Operands<F>, Self::Epi);

    /// Whether steps carry register tiles of another product ([`Steps::ride`]):
    /// [`StepLoop::run_steps`] then runs every step on the calling thread, whatever its
    /// [`StepLoop`] says.
    fn has_ride(&self) -> bool {
        false
    }

    /// The tile of another product step `s` computes beside its own (see [`RideTile`]); only
    /// for one-row steps (`m = 1`), and never for step 0.
    #[inline(always)]
    fn ride(&self, _s: usize) -> Option<RideTile<'_, F>> {
        None
    }
}

/// A register tile of a hoisted product computed during a one-row step of a time loop
/// ([`ride_body`]): rows `0..ops.m` (at most [`RIDE_ROWS`]) of `A` (contiguous rows,
/// `csa = 1`) times the packed panels `p0..p1` of `B`, one after the other, each stored with
/// `addend` into `C` (row `r`, column `j` at `c + r * ldc + j`). Each element is summed as a
/// register tile of three or more rows of the product's kernels sums it (one chain over `k`
/// in order, from zero, the addend after), so a product whose every row is in such a tile
/// there gets the same bits from these tiles.
#[derive(Clone, Copy, Debug)]
pub struct RideTile<'a, F> {
    /// The tile's rows of `A` and the packed `B`.
    pub ops: Operands<F>,
    /// The first panel.
    pub p0: usize,
    /// One past the last panel.
    pub p1: usize,
    /// The tile's row 0 of `C`.
    pub c: SharedMut<F>,
    /// Leading dimension of `C`.
    pub ldc: usize,
    /// What is added to the product (not `Addend::C`).
    pub addend: Addend<'a, F>,
}

/// Rows of a [`RideTile`] at most: its 16 accumulators (AVX-512, two vectors per panel) beside
/// the one-row step's 8 fit the 32 registers.
pub const RIDE_ROWS: usize = 8;

/// Runs steps `0..n` of a [`Steps`] over panels `panels`, in order, inside one call of the
/// path's kernel: the time loop of a single-threaded recurrence, with no call, prologue or
/// reload of the activation's constants per step (they took about a quarter of a `B = 1`,
/// `H = 32` step as one call per step).
///
/// # Safety
///
/// The CPU must support the path the function was selected for ([`select_steps`] checks
/// nothing), and `steps` must meet the [`Steps`] contract for steps `0..n`.
pub type StepsFn<S> = unsafe fn(&S, usize, Range<usize>);

/// The body of every path's [`StepsFn`]: steps `0..n` of `steps` over `panels`, in order, on
/// this thread, each through [`gemm_body`] with `MR`-row tiles (step 0 through `first_step`,
/// the path's [`KernelFn`] with the same tiles). With `RIDE`, one-row steps carry the tiles
/// of another product [`Steps::ride`] gives them ([`ride_body`]): only where the path's
/// registers hold both sets of accumulators (AVX-512's 32), and only in the instance one-row
/// steps run (not AVX-512's 12-row one, see [`select_steps`]): each instance of the ride is
/// compiled for every [`Steps`] type and element type (in both instances, the forward's and
/// the backward's rides made the crate's test build in CI 2 minutes longer, 7m01s against
/// 4m49s).
///
/// # Safety
///
/// `V`'s features must be enabled in the caller, and `steps` must meet the [`Steps`] contract
/// for steps `0..n`.
#[inline(always)]
pub(crate) unsafe fn steps_body<
    V,
    S,
    const MR: usize,
    const NV: usize,
    const NW: usize,
    const RIDE: bool,
>(
    steps: &S,
    n: usize,
    panels: Range<usize>,
    first_step: KernelFn<V::Elem, S::Epi>,
) where
    V: Simd,
    S: Steps<V::Elem>,
{
    if n == 0 {
        return;
    }
    // Step 0 (whose operands may differ from the others') through the path's kernel function
    // for steps shared by threads: the same tiles, so the same bits (see
    // `select_step_kernel`), without a second inlined copy of the kernel body in this function
    // (that copy made every build of the crate, tests and fuzz targets included, 20-45 %
    // slower to compile).
    let (first, epi) = steps.step(0);
    // (Each step's fetches of the next panel: see `Operands::for_step_tiles`.)
    let first = first.for_step_tiles(MR);
    assert!(
        RIDE || !steps.has_ride(),
        "kernel bug: a ride on a path or tiles without"
    );
    // SAFETY: `V`'s features are the caller's contract, and `first_step` is the kernel of the
    // same path (the caller's), needing no others; step `s`'s operands and epilogue meet the
    // kernel's memory contract once steps `0..s` have returned (the `Steps` contract), which
    // program order guarantees on this one thread. (The same below.)
    unsafe { first_step(&first, &epi, panels.clone()) }
    if n == 1 {
        return;
    }
    // Steps `1..n` take step 1's operands with their own `A` (the `Steps` contract): read
    // from a local, the operands are loop invariants, and what the kernel derives from them
    // (panel addresses, tile choices, masks) is not recomputed and spilled every step, as it
    // was when each step's operands came from `steps` (which the kernel's stores might alias,
    // for all the compiler knows). `bench_table` (1 thread, Intel Xeon host, the two builds
    // alternated, 4 rounds, ratio of the medians, hoisted / per step; step 0 then inlined
    // too, the figures with the kernel function for it are in README): rnn_h64_b1_t96 infer
    // 0.965, train 0.980; rnn_h128_b1_t150 infer 0.941, train 1.006; rnn_h32_b1_t672 train
    // 0.970, infer 1.004; rnn_h256_b1_t150, rnn_h512_b64_t20, rnn_h1760_b16_t10 0.98-1.02.
    // With the loop nearly all the time (relu, `I = 1`, scratch build switching at run time,
    // 3 rounds, fastest medians): rnn_h64_b1_t96_i1 0.0078 ms per step, 0.0068-0.0071 hoisted.
    let rec = steps.step(1).0.for_step_tiles(MR);
    // Every other step runs its panels in reverse order (the same tiles, so the same bits):
    // a step then starts with the panels the previous one read last, still in L1 (or L2),
    // where in the same order every step would find them evicted by the rest of `W_hh`
    // when it is a little larger than the cache. Only where each panel is read once per step
    // (`m <= MR`, the small batches bound by reading `W_hh`: with more row tiles per panel it
    // was slower), and only for the part of `W_hh` this call reads up to `REVERSE_MAX_NEAR`
    // (the last panels stay in L1) or from `REVERSE_MIN_FAR` (in L2): in between, all of it
    // comes from L2 either way, and the jump back at each panel costs the prefetchers their
    // stream. `bench_table` (1 thread, Intel Xeon host, the two builds alternated 6-12
    // rounds, ratio of the medians, reversed / in order), infer: rnn_h128_b1_t1500_i1 0.780,
    // rnn_h128_b1_t150 0.755, rnn_h192_b1_t100 0.968, rnn_h1024_b1_t50 0.701-0.783 (faster
    // in every round), rnn_h1760_b8_t20_i1 0.926-0.931; rnn_h64_b1_t96 (`W_hh` in L1)
    // 0.944-1.058, rnn_h256_b1_t150 0.970-0.974 (by the minima 0.999); train:
    // rnn_h1024_b1_t50 0.815, rnn_h128_b1_t1500_i1 0.952, but rnn_h256_b1_t1500_i1 1.022
    // (by the minima 1.025) and rnn_h256_b1_t150 0.997-1.100. `B = 16` reversed:
    // rnn_h1760_b16_t20_i1 1.055, rnn_h1760_b16_t10 1.032-1.063.
    let bytes = panels.len() * rec.nr * rec.k * size_of::<V::Elem>();
    let reverse = rec.m <= MR && (bytes <= REVERSE_MAX_NEAR || bytes > REVERSE_MIN_FAR);
    for s in 1..n {
        let (ops, epi) = steps.step(s);
        debug_assert!(
            ops.with_a(rec.a).for_step_tiles(MR) == rec,
            "step {s}: operands other than `a` changed"
        );
        let ops = rec.with_a(ops.a);
        let rev = reverse && s % 2 == 1;
        if const { RIDE }
            && let Some(tile) = steps.ride(s)
        {
            debug_assert!(ops.m == 1);
            // SAFETY: as below; the tile meets `RideTile`'s contract once steps `0..s`
            // have returned (the `Steps` contract), on this thread, which runs every step
            // (`run_steps` runs steps with rides on one thread).
            unsafe { ride_body::<V, S::Epi, NV>(&ops, &epi, panels.clone(), rev, &tile) };
            continue;
        }
        // SAFETY: as above; `ops` equals step `s`'s operands (the `Steps` contract).
        unsafe { gemm_body::<V, S::Epi, MR, NV, NW, false, false>(&ops, &epi, panels.clone(), rev) }
    }
}

/// A one-row step (`ops.m = 1`) over `panels` (from the last with `rev`), as [`gemm_body`]
/// computes it, with the register tile `ride` of another product computed in the same loop:
/// one of its `k` between groups of the step's, spread evenly over the step. The step's
/// element `k` of each panel goes to partial sum `k % KS` as in the one-row tile (`KS` = 8
/// for a tile of one vector, else 4; the last `K % KS` into sum 0), reduced pairwise and
/// passed to `epi` as there: the same bits, paired panels or not (see `gemm_body`).
///
/// Why: a `B = 1` step reads all of `W_hh` for one FMA per element and waits on those reads
/// (from L2 or beyond, from `H = 128` or so in `f32`), or on the latency of its chains (`W_hh`
/// in L1); the tile's FMAs, independent of the step, run in those waits. Between steps
/// instead, a tile of thousands of instructions fills the reorder window and the next step's
/// loads wait for it.
///
/// # Safety
///
/// As [`gemm_body`] for the step; `ride` meets [`RideTile`]'s contract: its rows of `A`
/// (`ride.ops.m <= RIDE_ROWS`, `csa = 1`) and panels `p0..p1` lie in the operands, its rows
/// of `C` are writable and touched by nothing else during the call, and its panels are
/// `NV * LANES` wide, as the step's.
#[inline(always)]
unsafe fn ride_body<V, E, const NV: usize>(
    ops: &Operands<V::Elem>,
    epi: &E,
    panels: Range<usize>,
    rev: bool,
    ride: &RideTile<'_, V::Elem>,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    debug_assert!(ops.m == 1 && ops.nr == NV * V::LANES && ride.ops.nr == ops.nr);
    debug_assert!(0 < ride.ops.m && ride.ops.m <= RIDE_ROWS && ride.ops.csa == 1);
    let mut proj = RideAcc::<V, NV> {
        // SAFETY: `V`'s features are the caller's contract.
        acc: [[unsafe { V::zero() }; NV]; RIDE_ROWS],
        k: 0,
        panel: ride.p0,
    };
    let np = panels.len();
    let total = (ride.p1 - ride.p0) * ride.ops.k;
    for q in 0..np {
        let p = if rev {
            panels.end - 1 - q
        } else {
            panels.start + q
        };
        // The tile's `k` this panel of the step runs beside: an even share.
        let share = (q + 1) * total / np - q * total / np;
        let c0 = p * ops.nr;
        let ncols = ops.nr.min(ops.n - c0);
        // SAFETY: panel `p` is in range (the caller's contract), so its `pstride` offset is
        // inside the packed buffer; the rest is passed through.
        unsafe {
            let b = ops.bp.add(p * ops.pstride);
            let pr = &mut proj;
            match ncols.div_ceil(V::LANES) {
                1 if NV > 1 => {
                    ride_panel::<V, E, 1, NV, 8>(ops, epi, b, c0, ncols, ride, pr, share)
                }
                2 if NV > 2 => {
                    ride_panel::<V, E, 2, NV, 4>(ops, epi, b, c0, ncols, ride, pr, share)
                }
                _ if NV == 1 => {
                    ride_panel::<V, E, NV, NV, 8>(ops, epi, b, c0, ncols, ride, pr, share)
                }
                _ => ride_panel::<V, E, NV, NV, 4>(ops, epi, b, c0, ncols, ride, pr, share),
            }
        }
    }
    debug_assert_eq!(proj.panel, ride.p1);
}

/// The accumulators of a [`RideTile`] and where it is: contraction index `k` of panel `panel`.
struct RideAcc<V, const NV: usize> {
    acc: [[V; NV]; RIDE_ROWS],
    k: usize,
    panel: usize,
}

impl<V: Simd, const NV: usize> RideAcc<V, NV> {
    /// One `k` of the tile, and its store when that was the panel's last.
    ///
    /// # Safety
    ///
    /// As [`ride_body`], with `self.panel < ride.p1`.
    #[inline(always)]
    unsafe fn step(&mut self, ride: &RideTile<'_, V::Elem>) {
        let t = &ride.ops;
        // SAFETY: row `min(i, m - 1)` of `A` and its element `k < K` lie in `A`; the panel's
        // row `k` lies in the packed buffer (`panel < p1`, in range): the caller's contract.
        // Rows past `m` repeat the last row (never stored).
        unsafe {
            let brow = t.bp.add(self.panel * t.pstride + self.k * t.nr);
            let b: [V; NV] = std::array::from_fn(|j| V::load(brow.add(j * V::LANES)));
            for (i, acc_i) in self.acc.iter_mut().enumerate() {
                let ai = V::splat(*t.a.add(i.min(t.m - 1) * t.lda + self.k));
                for j in 0..NV {
                    acc_i[j] = ai.fma(b[j], acc_i[j]);
                }
            }
        }
        self.k += 1;
        if self.k == t.k {
            let c0 = self.panel * t.nr;
            let ncols = t.nr.min(t.n - c0);
            let epi = Store::new(ride.c.get(), ride.ldc, ride.addend);
            for (r, acc_r) in self.acc.iter_mut().enumerate().take(t.m) {
                for (j, v) in acc_r.iter_mut().enumerate() {
                    let off = j * V::LANES;
                    // SAFETY: row `r < m` and the panel's real columns lie in `C` (the
                    // caller's contract).
                    unsafe {
                        if off + V::LANES <= ncols {
                            epi.apply(RowMode::Active, r, c0 + off, *v, V::LANES);
                        } else if off < ncols {
                            epi.apply(RowMode::Active, r, c0 + off, *v, ncols - off);
                        }
                    }
                }
            }
            // SAFETY: `V`'s features are the caller's contract.
            self.acc = [[unsafe { V::zero() }; NV]; RIDE_ROWS];
            self.k = 0;
            self.panel += 1;
        }
    }
}

/// One panel of a [`ride_body`] step (its `NVT` vectors of `ncols` real columns, in a panel
/// of `NVP`), with `share` of the ride's `k` beside it: [`tile`]'s one-row arithmetic, the
/// ride's `k` after groups of `KS` of the step's.
///
/// # Safety
///
/// As [`ride_body`], for the panel at `bpanel`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // acc[s][j] indexed in lockstep with the panel's vectors
unsafe fn ride_panel<V, E, const NVT: usize, const NVP: usize, const KS: usize>(
    ops: &Operands<V::Elem>,
    epi: &E,
    bpanel: *const V::Elem,
    c0: usize,
    ncols: usize,
    ride: &RideTile<'_, V::Elem>,
    proj: &mut RideAcc<V, NVP>,
    share: usize,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    let (a, k, nr) = (ops.a, ops.k, ops.nr);
    let kmain = k - k % KS;
    let groups = kmain / KS;
    // SAFETY: the loads are inside `A`'s row (`k` elements) and the panel's `k * nr`
    // elements; the ride's as `RideAcc::step` (the caller's contract).
    unsafe {
        let mut acc = [[V::zero(); NVT]; KS];
        let mut done = 0;
        for g in 0..groups {
            let kk = g * KS;
            for (s, acc_s) in acc.iter_mut().enumerate() {
                let kx = kk + s;
                let ai = V::splat(*a.add(kx));
                let brow = bpanel.add(kx * nr);
                for j in 0..NVT {
                    acc_s[j] = ai.fma(V::load(brow.add(j * V::LANES)), acc_s[j]);
                }
            }
            // The ride's `k` due by the end of this group.
            let due = (g + 1) * share / groups;
            while done < due {
                proj.step(ride);
                done += 1;
            }
        }
        for kx in kmain..k {
            let ai = V::splat(*a.add(kx));
            let brow = bpanel.add(kx * nr);
            for j in 0..NVT {
                acc[0][j] = ai.fma(V::load(brow.add(j * V::LANES)), acc[0][j]);
            }
        }
        while done < share {
            proj.step(ride);
            done += 1;
        }
        let mut width = KS;
        while width > 1 {
            width /= 2;
            for s in 0..width {
                for j in 0..NVT {
                    acc[s][j] = acc[2 * s][j].add(acc[2 * s + 1][j]);
                }
            }
        }
        let mode = epi.row_mode(0);
        for (j, &v) in acc[0].iter().enumerate() {
            let off = j * V::LANES;
            if off + V::LANES <= ncols {
                epi.apply(mode, 0, c0 + off, v, V::LANES);
            } else if off < ncols {
                epi.apply(mode, 0, c0 + off, v, ncols - off);
            }
        }
    }
}

/// Selects [`StepsFn`] of `isa` for steps of `rows` rows of `A` `lda` apart: done once per
/// public call, as [`select`]. On AVX-512 in `f32` on Intel's CPUs, steps of at least
/// [`STEP_TALL_MIN_ROWS`] rows run the 12-row tiles of the hoisted products, else the 8-row
/// ones (see [`select_step_kernel`]).
pub fn select_steps<F: Float, S: Steps<F>>(isa: Isa, rows: usize, lda: usize) -> StepsFn<S> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, lda);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if step_tall::<F>(rows, lda) => {
            avx512::steps::<F, S, { avx512::MR_TALL }, false>
        }
        // One-row steps (`rows = 1`: never tall), the only ones with rides.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::steps::<F, S, { avx512::MR }, true>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::steps::<F, S>,
        _ => portable::steps::<F, S>,
    }
}

/// The kernel of one step of `rows` rows for a time loop shared by threads: the tiles of
/// [`select_steps`]'s choice for the same `rows`, so that any thread count computes every
/// element with the same tiles (a 2-row remainder tile sums `K` in two partial sums, a taller
/// one in one: the split of `B` into tiles decides the bits).
pub fn select_step_kernel<F: Float, E: Epilogue<F>>(
    isa: Isa,
    rows: usize,
    lda: usize,
) -> KernelFn<F, E> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, lda);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if step_tall::<F>(rows, lda) => avx512::gemm_tall::<F, E>,
        _ => select::<F, E>(isa),
    }
}

/// Bytes of `W_hh` per step up to which a time loop reverses every other step's panels (see
/// `steps_body`): four times the 48 KiB L1 of Zen 5 and of the Intel Xeons here.
const REVERSE_MAX_NEAR: usize = 192 << 10;
/// Bytes of `W_hh` per step above which a time loop reverses every other step's panels: the
/// L2 of the smaller cores here (1 MiB on Zen 4 and 5; Intel's Xeons have 2).
const REVERSE_MIN_FAR: usize = 1 << 20;

/// Rows per step from which the AVX-512 `f32` time loops run 12-row tiles: each panel of
/// `W_hh` is then read by `B / 12` tiles per step rather than `B / 8`. `bench_table` (1
/// thread, Intel Xeon host, 3 alternated rounds against the 8-row tiles, median ms) 8 / 12
/// rows: rnn_h1760_b64_t50 infer 196.9-197.6 / 192.0-193.3, train 618.5-619.3 /
/// 606.4-608.8; rnn_h512_b64_t50 infer 15.78-15.96 / 15.51-15.53; rnn_h512_b32_t50 infer
/// 7.91-7.92 / 7.70-7.73, train 25.1-25.6 / 24.6-24.8; rnn_h512_b24_t50 infer 5.92-5.94 /
/// 5.71-5.74. At `B = 16` (a 12-row and a 4-row tile) they lost: rnn_h1760_b16_t50 infer
/// 50.7-51.1 / 56.7-56.8 ms. `f64` keeps 8 rows (not measured). AMD's CPUs keep 8 rows too:
/// on Zen 4 a scratch build with 12 was no faster (`rnn_h512_b64_t50` infer 32.34 against
/// 31.81 ms, README), and rows a multiple of 4 KiB apart keep 8 rows everywhere (see
/// `gemm_ops_tuned` on the L1's sets).
///
/// Where threads may split the rows (`W_hh` in L2: `lda * lda` elements, `lda = H` in the
/// time loops, at most [`threads::ROW_SPLIT_MAX_BYTES_INTEL`]), only a batch that 12-row tiles
/// cover exactly runs them ([`STEP_TALL_ROWS`]): with a remainder tile, two threads could not
/// split the rows evenly (`B = 64`: 36 and 28 rows, so the loop split its panels and met at
/// every step), where 8-row tiles split `B = 32` and `64` in halves. A larger `W_hh`
/// (`rnn_h1760_b64_t50` above) splits its panels anyway and keeps 12 rows. `bench_table --modes infer,train --target-s 0.3` (Intel Xeon host, model
/// 207; a scratch build choosing at run time, alternated), ratio of the medians, 8-row tiles
/// / 12-row: 2 threads (`taskset -c 0-1 ... --threads 2`, 4 rounds, faster in all 4)
/// `rnn_h512_b64_t50` infer 0.928, train 0.917; `rnn_h256_b64_t50` 0.827, 0.925;
/// `rnn_h512_b32_t50` 0.934, 0.965; 1 thread (`taskset -c 0 ... --threads 1`, 6 rounds,
/// fastest samples) 0.991-1.008 on the same rows, within the noise of the 1-thread gain
/// measured above. The library's build with this rule against the one before (5 rounds,
/// medians): 2 threads `rnn_h512_b64_t50` 0.842 infer, 0.901 train (faster in all 5),
/// `rnn_h256_b64_t50` 0.857, 0.957, `rnn_h512_b32_t50` 0.964, 0.986; 1 thread (3 rounds,
/// fastest samples) `rnn_h512_b64_t50` 0.994 / 0.990, `rnn_h1760_b64_t50` (unchanged code)
/// 0.993 / 1.002.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub const STEP_TALL_MIN_ROWS: usize = 24;
/// Rows of the tall tiles ([`STEP_TALL_MIN_ROWS`]): a time loop runs them only on a batch
/// that is a multiple of this.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const STEP_TALL_ROWS: usize = 12;
#[cfg(target_arch = "x86_64")]
const _: () = assert!(STEP_TALL_ROWS == avx512::MR_TALL);

/// Rows of the register tiles of [`select_steps`]'s choice for steps of `rows` rows of `F`,
/// `lda` apart: every step's rows go in tiles of this many from row 0, the remainder last.
#[cfg_attr(
    not(target_arch = "x86_64"),
    allow(clippy::extra_unused_type_parameters)
)]
pub fn step_tile_rows<F: Float>(isa: Isa, rows: usize, lda: usize) -> usize {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, lda);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if step_tall::<F>(rows, lda) => avx512::MR_TALL,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::MR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::MR,
        _ => portable::MR,
    }
}

/// Whether steps of `rows` rows of `F`, `lda` apart, run the tall tiles on AVX-512.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn step_tall<F: Float>(rows: usize, lda: usize) -> bool {
    size_of::<F>() == 4
        && rows >= STEP_TALL_MIN_ROWS
        && (rows.is_multiple_of(STEP_TALL_ROWS)
            || lda * lda * size_of::<F>() > threads::ROW_SPLIT_MAX_BYTES_INTEL)
        && !(lda * size_of::<F>()).is_multiple_of(L1_ALIAS_BYTES)
        && crate::isa::vendor_is_intel()
}

/// Selects the packed GEMM of `isa` for the hoisted products ([`gemm_packed`]): as [`select`]
/// with [`Store`], but on AVX-512 with 12-row tiles (24 accumulators), which read each panel
/// row once per 24 FMAs instead of 16: a probe timing `gemm_packed` (1 thread, two builds, 9
/// rounds each, best GFLOP/s; reproduce with `avx512::MR_TALL = 8` and the `kernel_speed`
/// probe, see `gemm_packed`) 8 against 12 rows, 96-row chunks: 3200x1760x1760 150-154 /
/// 154-156, 800x1760x1760 146 / 153-157, 1760x3200x1760 145-149 / 144-158, K = 512 products
/// within 1 %. The time loop keeps 8 rows below [`STEP_TALL_MIN_ROWS`] (`B = 16` would run
/// a 12-row and a 4-row tile) and on AMD's CPUs.
pub fn select_tall<F: Float>(isa: Isa) -> KernelFn<F, Store<F>> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::gemm_tall::<F, Store<F>>,
        _ => select::<F, Store<F>>(isa),
    }
}

/// Selects the GEMM of `isa` for `A` as columns and `B` as rows ([`gemm_b_rows`]).
fn select_b_rows<F: Float>(isa: Isa) -> KernelFn<F, Store<F>> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::gemm_b_rows::<F, Store<F>>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::gemm_b_rows::<F, Store<F>>,
        _ => portable::gemm_b_rows::<F, Store<F>>,
    }
}

/// Selects the packed GEMM of `isa` for epilogue `E`: done once per public call.
///
/// `isa` must be supported by the CPU (the plan checks this when it is built) for the returned
/// function to be callable; see [`KernelFn`].
pub fn select<F: Float, E: Epilogue<F>>(isa: Isa) -> KernelFn<F, E> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::gemm::<F, E>,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => avx2::gemm::<F, E>,
        _ => portable::gemm::<F, E>,
    }
}

/// The generic body of every path: panels `panels`, all rows, row blocks of up to `MR`; with
/// `rev`, the panels from the last to the first (see [`steps_body`]).
///
/// A panel with fewer than `NV` vectors of real columns (the last one, when the panel width
/// does not divide `n`: `H = 16` in a 32-wide panel, the 16 columns past 32 of `H = 48`) runs
/// a tile of only the vectors it needs, so padding costs no arithmetic and no loads.
///
/// # Safety
///
/// As [`KernelFn`], with `V`'s features available and `ops.nr == NV * V::LANES`.
#[inline(always)]
pub(crate) unsafe fn gemm_body<
    V,
    E,
    const MR: usize,
    const NV: usize,
    const NW: usize,
    const PA: bool,
    const BR: bool,
>(
    ops: &Operands<V::Elem>,
    epi: &E,
    panels: Range<usize>,
    rev: bool,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    debug_assert_eq!(ops.nr, NV * V::LANES);
    let nr = ops.nr;
    let last = panels.end.wrapping_sub(1);
    let mut p = panels.start;
    if BR {
        debug_assert!(ops.lda == 1 && ops.ldb == ops.n && ops.n.is_multiple_of(nr));
        while p < panels.end {
            // SAFETY: panel `p` is columns `p * nr..` of `B`'s rows, inside them (`n` is a
            // multiple of `nr`, `p < n / nr`); the rest is the caller's contract.
            unsafe { b_rows_blocks::<V, E, MR, NV>(ops, epi, ops.bp.add(p * nr), p * nr) };
            p += 1;
        }
        return;
    }
    // The panels still to do: `lo..hi`. Forwards, each unit (a panel, or a pair of them for
    // one row) starts at `lo`; with `rev`, it ends at `hi`. Every unit's tiles are the same
    // either way, so the order changes no bits (see `steps_body` for why it is reversed).
    let (mut lo, mut hi) = (p, panels.end);
    while lo < hi {
        // One row (the `B = 1` matrix-vector step) over two full panels in one tile: a
        // broadcast of `A` serves `2 * NV` FMAs instead of `NV` (three loads per two FMAs
        // bound the one-panel tile). Each column's partial sums are those of the one-panel
        // tile (the same `KS`, element `k` into sum `k % KS`, the same reduction), so the
        // bits do not depend on whether a panel is paired, nor on how threads split them.
        // (A one-row call is the last chunk of its GEMM, so it never fetches ahead.)
        let pairs = const { NW == 2 * NV } && ops.m == 1 && hi - lo >= 2;
        let (p, width) = if !rev {
            (
                lo,
                if pairs && (lo + 2) * nr <= ops.n {
                    2
                } else {
                    1
                },
            )
        } else if pairs && hi * nr <= ops.n {
            (hi - 2, 2)
        } else {
            (hi - 1, 1)
        };
        if rev {
            hi -= width;
        } else {
            lo += width;
        }
        if width == 2 {
            debug_assert!(ops.a_next.is_null() && ops.c_next.is_null());
            // SAFETY: panels `p` and `p + 1` are in range and full (`(p + 2) * nr <= n`), so
            // both lie in the packed buffer, `pstride` apart; one row of `A` (`m = 1`); the
            // register-broadcast tile runs only where `csa = 1`. The rest is passed through.
            unsafe {
                let bpanel = ops.bp.add(p * ops.pstride);
                one_row_product::<V, E, NW, NV, NV>(ops, epi, bpanel, p * nr, 2 * nr);
            }
            continue;
        }
        // The last panel of this call fetches the next chunk's rows of `A`, the one before
        // its rows of `C`, when the caller runs that chunk next (see `Operands::a_next`).
        let ahead = if p == last {
            ops.a_next
        } else if p.wrapping_add(1) == last {
            ops.c_next
        } else {
            std::ptr::null()
        };
        let c0 = p * nr;
        let ncols = nr.min(ops.n - c0);
        // SAFETY: panel `p` starts `p * pstride` elements into the packed buffer, inside it
        // because `p < n.div_ceil(nr)` (caller's contract); the rest is passed through.
        unsafe {
            let bpanel = ops.bp.add(p * ops.pstride);
            match ncols.div_ceil(V::LANES) {
                1 if NV > 1 => {
                    row_blocks::<V, E, MR, 1, NV, PA>(ops, epi, bpanel, c0, ncols, ahead)
                }
                2 if NV > 2 => {
                    row_blocks::<V, E, MR, 2, NV, PA>(ops, epi, bpanel, c0, ncols, ahead)
                }
                _ => row_blocks::<V, E, MR, NV, NV, PA>(ops, epi, bpanel, c0, ncols, ahead),
            }
        }
    }
}

/// All rows of one panel (`ncols <= NV * LANES` real columns from `c0`; the panel is
/// `NVP * LANES` wide), in row blocks of up to `MR`. One row (the `B = 1` matrix-vector step)
/// splits `K` into interleaved partial sums (8 for a single vector of columns, else 4: at
/// least 8 independent FMA chains), two rows into 2. A partial panel (`NV < NVP`) uses only
/// full `MR` blocks and blocks of two and one rows, which keeps the number of compiled tiles
/// down.
///
/// The `if const` conditions are decided at compile time, so tiles a path cannot use (more
/// rows than its `MR`) are never instantiated.
///
/// # Safety
///
/// As [`gemm_body`] for the panel at `bpanel` (row stride `ops.nr == NVP * LANES`).
#[inline(always)]
unsafe fn row_blocks<V, E, const MR: usize, const NV: usize, const NVP: usize, const PA: bool>(
    ops: &Operands<V::Elem>,
    epi: &E,
    bpanel: *const V::Elem,
    c0: usize,
    ncols: usize,
    ahead: *const V::Elem,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    // A one-row product (the `B = 1` step over a panel it does not pair) is a single tile,
    // with nobody to fetch for (below): straight to it, without the fetch bookkeeping, whose
    // integer division and branches sit in every step of a time loop between one step's
    // activation and the next step's first FMA. The same tile, the same bits.
    if ops.m == 1 {
        // SAFETY: `m = 1`; the rest is the caller's contract, passed through.
        unsafe { one_row_product::<V, E, NV, NVP, NV>(ops, epi, bpanel, c0, ncols) };
        return;
    }
    // When B is beyond L2, the first tile of a panel would stream it from L3 and the others
    // from L2 (each panel is read once per row chunk, or per step in the time loop): the first
    // two tiles instead fetch the next panel (the packed panels are contiguous) into L2 ahead
    // of use, one line per `k` each (a panel row, 32 f32 or 16 f64, is two lines). The probe
    // described in `gemm_packed` (two builds, 9 rounds each, alternated twice), best GFLOP/s
    // without (reproduce: `PREFETCH_MIN_B = usize::MAX` and the `kernel_speed` probe) / with:
    // 16x1760x1760 107-115 / 136-142, 64x1760x1760 152 / 154-160, 3200x1760x1760 with 24-row
    // chunks 122-124 / 137-140, with 96-row chunks 150 / 149-150.
    // A B of exactly the L2's size (`H = 512` in f32) does not stay there beside A and C
    // either: a scratch probe switching the threshold at run time (1 thread, best of 9
    // alternated rounds, three runs; not kept) without / with: 800x512x512 156.1-159.2 /
    // 165.7-167.6, 3200x512x512 150.5-154.1 / 153.7-160.0, 64x512x512 163.5-169.3 /
    // 167.9-170.1, 16x512x512 155.4-163.8 / 158.7-163.7. (An earlier probe, two builds
    // rather than one alternating binary, had 16x512x512 at 172 without and 157-160 with,
    // which set the threshold above 1 MiB; the alternated rounds do not reproduce it.) A
    // single tile has nobody to fetch for (1x256x256: 52 / 33, 1x1760x1760: 13.5 both).
    let panels = ops.n.div_ceil(NVP * V::LANES);
    let far = panels * ops.pstride * size_of::<V::Elem>() >= PREFETCH_MIN_B;
    let next = bpanel.wrapping_add(ops.pstride);
    let fetchers = if ops.fetch_panels && far && ops.m > MR {
        2
    } else {
        0
    };
    // With `ahead` (the next chunk's rows of `A` or of `C`, one contiguous run, given to the
    // last two panels of a chunk whose successor this thread runs next), the tiles after
    // those fetch it into L2, one line per `k` each: `MC / 16` tiles of `k` lines in f32,
    // `MC` rows of `k` elements (of `C`'s `n`, all of it when `n = k`; half in f64). Else the
    // next chunk's first panel reads `A` from L3 or memory one broadcast at a time (figures
    // in `gemm_ops`).
    let line = PREFETCH_LINE / size_of::<V::Elem>();
    let a_fetchers = if ahead.is_null() {
        0
    } else {
        MC.div_ceil(line)
    };
    let mut r0 = 0;
    let mut ti = 0;
    while r0 < ops.m {
        let left = ops.m - r0;
        // Tile `ti < fetchers` fetches lines `ti * k ..` of the next panel, one per `k`; tile
        // `fetchers + j` lines `j * k ..` of the next rows of `A`.
        let fetch = ti < fetchers + a_fetchers;
        let pf = if ti < fetchers {
            next.wrapping_add(ti * ops.k * line)
        } else {
            ahead.wrapping_add((ti - fetchers) * ops.k * line)
        };
        ti += 1;
        let rows = if left >= MR {
            MR
        } else if const { NV < NVP } {
            left.min(2)
        } else {
            left
        };
        // SAFETY: rows `r0..r0 + rows` are < m, so A's row `r0` is inside A (or A is not read
        // when k = 0); a packed A's panels have `MR` rows (`gemm_packed_a` runs the tall
        // kernel, whose `MR` is `a_panel_rows`), and chunks and full tiles start at multiples
        // of `MR`, the smaller tiles only after the last full one: a tile's rows lie in one
        // panel, `lda = 1` and `csa = MR` apart; the columns' tiles run only where `lda = 1`;
        // the register-broadcast tile runs only where `csa = 1`. The rest is the caller's
        // contract, passed through.
        unsafe {
            let a = ops.a_row::<MR>(r0);
            let t = (
                a,
                ops.lda,
                ops.csa,
                ops.k,
                bpanel,
                epi,
                r0,
                c0,
                ncols,
                pf,
                ops.pstride,
            );
            // The full tiles of a packed `A`, and of `A`'s columns (the transposed `dA` of the
            // weight gradients), with their constant strides (see `tile`; `PA`: the hoisted
            // products' kernels, so that the time loops' kernels compile no such tiles).
            let pa = PA && ops.lda == 1 && ops.csa == MR;
            let cols = PA && ops.lda == 1 && !pa;
            if rows == MR && fetch && pa {
                tile::<V, E, MR, NV, NVP, 1, true, false, A_PANELS, false>(t);
            } else if rows == MR && pa {
                tile::<V, E, MR, NV, NVP, 1, false, false, A_PANELS, false>(t);
            } else if rows == MR && fetch && cols {
                tile::<V, E, MR, NV, NVP, 1, true, false, A_COLUMNS, false>(t);
            } else if rows == MR && cols {
                tile::<V, E, MR, NV, NVP, 1, false, false, A_COLUMNS, false>(t);
            } else if rows == MR && fetch && ops.csa == 1 {
                tile::<V, E, MR, NV, NVP, 1, true, false, A_STRIDED, true>(t);
            } else if rows == MR && ops.csa == 1 {
                tile::<V, E, MR, NV, NVP, 1, false, false, A_STRIDED, true>(t);
            } else if rows == MR && fetch {
                tile::<V, E, MR, NV, NVP, 1, true, false, A_STRIDED, false>(t);
            } else if rows == MR {
                tile::<V, E, MR, NV, NVP, 1, false, false, A_STRIDED, false>(t);
            } else if rows == 1 {
                // Register broadcasts of `A` (see `tile`) where its row is contiguous and `K`
                // long: a separate instantiation, so that the short-`K` matrix-vector steps
                // run a tile without that code.
                one_row::<V, E, NV, NVP, NV>(t, ops.reg_splat());
            } else if rows == 2 {
                tile::<V, E, 2, NV, NVP, 2, false, false, A_STRIDED, false>(t);
            } else if const { NV == NVP } {
                debug_assert!(2 < rows && rows < MR && MR <= 12);
                // One arm per row count a path's MR leaves (the `if const` keeps a tile wider
                // than the path's MR from being compiled).
                macro_rules! remainder {
                    ($($r:literal)*; $last:literal) => {
                        match rows {
                            $($r => {
                                if const { MR > $r } {
                                    tile::<V, E, $r, NV, NVP, 1, false, false, A_STRIDED, false>(t)
                                }
                            })*
                            _ => {
                                if const { MR > $last } {
                                    tile::<V, E, $last, NV, NVP, 1, false, false, A_STRIDED, false>(t)
                                }
                            }
                        }
                    };
                }
                remainder!(3 4 5 6 7 8 9 10; 11)
            }
        }
        r0 += rows;
    }
}

/// All rows of one panel of `B` as rows ([`gemm_b_rows`]: `A` as columns, `lda = 1`; the
/// panel `nr` columns of `B`'s rows, `ops.ldb` apart), in row blocks of up to `MR`, each a
/// [`tile`] of `B`'s layout with one partial sum (a remainder's rows too: no register
/// broadcasts, no fetches).
///
/// # Safety
///
/// As [`gemm_body`] for the panel at `bpanel` (columns `c0..c0 + nr`, all real).
#[inline(always)]
unsafe fn b_rows_blocks<V, E, const MR: usize, const NV: usize>(
    ops: &Operands<V::Elem>,
    epi: &E,
    bpanel: *const V::Elem,
    c0: usize,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    let ncols = NV * V::LANES;
    let mut r0 = 0;
    while r0 < ops.m {
        let rows = MR.min(ops.m - r0);
        // `B`'s row stride goes in the place of the panel stride, which a tile of one panel
        // does not use (see `tile`).
        let t = (
            ops.a.wrapping_add(r0),
            1,
            ops.csa,
            ops.k,
            bpanel,
            epi,
            r0,
            c0,
            ncols,
            std::ptr::null(),
            ops.ldb,
        );
        // SAFETY: rows `r0..r0 + rows` < m of `A` (columns: row `r` at `a + r`) and of the
        // product; the rest is the caller's contract, passed through.
        unsafe {
            macro_rules! by_rows {
                ($($r:literal)*) => {
                    match rows {
                        $($r => {
                            if const { MR >= $r } {
                                tile::<V, E, $r, NV, NV, 1, false, false, A_COLUMNS_B_ROWS, false>(t)
                            }
                        })*
                        _ => unreachable!("at most 12 rows"),
                    }
                };
            }
            by_rows!(1 2 3 4 5 6 7 8 9 10 11 12)
        }
        r0 += rows;
    }
}

/// A one-row product's only row (`ops.m == 1`: row 0, at `ops.a` whether `A` is strided or
/// packed) as [`one_row`] over the panel(s) at `bpanel`, columns `c0..c0 + ncols`: a single
/// tile, which fetches nothing ahead.
///
/// # Safety
///
/// `ops.m == 1`, and the rest as [`tile`] for that row.
#[cfg_attr(not(any(rnn_unoptimized, fuzzing)), inline(always))]
#[cfg_attr(any(rnn_unoptimized, fuzzing), inline(never))]
unsafe fn one_row_product<V, E, const NV: usize, const NVP: usize, const NK: usize>(
    ops: &Operands<V::Elem>,
    epi: &E,
    bpanel: *const V::Elem,
    c0: usize,
    ncols: usize,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    debug_assert_eq!(ops.m, 1);
    let t = (
        ops.a,
        ops.lda,
        ops.csa,
        ops.k,
        bpanel,
        epi,
        0,
        c0,
        ncols,
        std::ptr::null(),
        ops.pstride,
    );
    // SAFETY: the caller's contract; row 0 of `A` is `ops.a`.
    unsafe { one_row::<V, E, NV, NVP, NK>(t, ops.reg_splat()) }
}

/// The one-row tile of `NV` vectors over panels of `NVP`: `KS` = 8 partial sums when its panel
/// holds one vector of columns (`NK = 1`), else 4, so that at least 8 FMA chains run; with
/// `reg`, `A` broadcast in registers. `NK` is the panel's vectors, not the tile's, so the tile
/// over two panels sums each column as the one-panel tile does.
///
/// # Safety
///
/// As [`tile`] for one row; `csa = 1` when `reg`.
#[cfg_attr(not(any(rnn_unoptimized, fuzzing)), inline(always))]
#[cfg_attr(any(rnn_unoptimized, fuzzing), inline(never))]
unsafe fn one_row<V, E, const NV: usize, const NVP: usize, const NK: usize>(
    t: TileArgs<'_, V::Elem, E>,
    reg: bool,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    // SAFETY: the caller's contract.
    unsafe {
        match (const { NK == 1 }, reg) {
            (true, true) => tile::<V, E, 1, NV, NVP, 8, false, true, A_STRIDED, false>(t),
            (true, false) => tile::<V, E, 1, NV, NVP, 8, false, false, A_STRIDED, false>(t),
            (false, true) => tile::<V, E, 1, NV, NVP, 4, false, true, A_STRIDED, false>(t),
            (false, false) => tile::<V, E, 1, NV, NVP, 4, false, false, A_STRIDED, false>(t),
        }
    }
}

type TileArgs<'a, F, E> = (
    *const F,
    usize,
    usize,
    usize,
    *const F,
    &'a E,
    usize,
    usize,
    usize,
    *const F,
    usize,
);

/// Contraction length from which the one-row tile broadcasts `A` in registers (see `tile`).
const REG_SPLAT_MIN_K: usize = 128;

/// Contraction length from which a tile of 8 or more rows (6: [`EPI_FETCH_MIN_K_6`]) fetches
/// its epilogue's operands first (see [`Epilogue::fetch`]; measured at `H = 512` and `1760`,
/// not below): shorter tiles leave the fetch no time to arrive before their epilogue.
const EPI_FETCH_MIN_K: usize = 128;

/// [`EPI_FETCH_MIN_K`] for the 6-row tiles (the AVX2 path's full tiles, and the AVX-512
/// path's remainder tiles of 6 rows), each a third of the 8-row AVX-512 tile's work at the
/// same `K`. (AVX-512 at `rnn_h512_b14_t50`, a tile of 8 rows and one of 6, fetching from
/// `K = 128`: 1.000 / 0.995 infer / train, 4 rounds.) On Zen 4 held to AVX2 (`RNN_KERNELS_MAX_ISA=avx2
/// taskset -c 0 bench_table --threads 1`, against the build before, which fetched from 8 rows
/// only, alternated 4-8 rounds, ratio of the medians): fetching from `K = 128` made training
/// faster (`rnn_h512_b64_t50` 0.963, `rnn_h256_b64_t50` 0.956, `rnn_h512_b32_t50` 0.969,
/// `rnn_h128_b32_t100` 0.978) but inference at small `K` slower (`rnn_h256_b6_t100` 1.030,
/// `rnn_h128_b32_t100` 1.024; training there 1.016 / 0.978); `H = 512` and `1760` level in
/// inference. Hence from 512: that build against the same parent (6 rounds) trained
/// `rnn_h512_b64_t50` at 0.968, `rnn_h512_b16_t50` 0.975, `rnn_h1760_b16_t50` 0.981 (faster in
/// 5-6 of 6 rounds), inference 0.982-1.000, `rnn_h256_b6_t100` unchanged (it fetches nothing).
const EPI_FETCH_MIN_K_6: usize = 512;

/// Bytes per prefetched line.
const PREFETCH_LINE: usize = 64;
/// Packed B (bytes) from which the GEMM fetches panels ahead (the L2 of one core here).
const PREFETCH_MIN_B: usize = 1 << 20;

/// Asks for the cache line holding `p` to be brought into the cache (L2 and up on x86_64):
/// a hint, never a memory access, so any address is allowed.
#[inline(always)]
fn prefetch<F>(p: *const F) {
    prefetch_to::<F, false>(p)
}

/// As [`prefetch`], into L1 and up when `L1` (`prefetcht0`), else L2 and up (`prefetcht1`).
#[inline(always)]
fn prefetch_to<F, const L1: bool>(p: *const F) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetcht0` / `prefetcht1` (SSE, part of the x86_64 baseline) never fault and
    // read nothing architecturally visible, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1, _mm_prefetch};
        if L1 {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        } else {
            _mm_prefetch::<_MM_HINT_T1>(p.cast())
        }
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// Bytes of `A` up to which [`Operands::fetch_a`] fetches all of it.
const FETCH_A_MAX_BYTES: usize = 8 << 10;

/// `A`'s layout for [`tile`]: strides `lda` and `csa` at run time.
const A_STRIDED: u8 = 0;
/// `A`'s layout for [`tile`]: packed in panels of the tile's rows (`lda = 1`, `csa = R`).
const A_PANELS: u8 = 1;
/// `A`'s layout for [`tile`]: columns (`lda = 1`, `csa` at run time).
const A_COLUMNS: u8 = 2;
/// `A`'s layout for [`tile`]: columns, and `B` its rows in place (see [`b_rows_blocks`]): the
/// last argument is `B`'s row stride, not the panel stride.
const A_COLUMNS_B_ROWS: u8 = 3;

/// One `R x NV` register tile over all of `K`, in `KS` interleaved partial sums (reduced
/// pairwise), then the epilogue. The panel's rows are `NVP * LANES` apart (`NVP >= NV`: a
/// compile-time stride, so the loop's addressing needs no extra registers). `PF`: fetch a line
/// at `pf` ahead per `k`; `REG`: a one-row tile broadcasts `A` in registers (needs `csa = 1`);
/// `AL`: `A`'s layout ([`A_STRIDED`], [`A_PANELS`] or [`A_COLUMNS`]).
///
/// # Safety
///
/// `a` valid for `R` rows of `k` at `lda` / `csa` (unless `k = 0`), `bpanel` for `k * NVP * LANES`,
/// rows `r0..r0 + R` and columns `c0..c0 + ncols` accepted by `epi`, `V`'s features present;
/// `csa = 1` with `REG`; `lda = 1` with `A_PANELS` (and `csa = R`) or `A_COLUMNS`.
// Inlined into the kernel functions, except at `opt-level = 0` (see `build.rs`): there the
// dozens of tiles of one kernel function would each keep their own stack slots; and in the
// fuzz targets' AddressSanitizer build, where each inlined copy is instrumented and optimized
// again (the same on `one_row` and `one_row_product`).
#[cfg_attr(not(any(rnn_unoptimized, fuzzing)), inline(always))]
#[cfg_attr(any(rnn_unoptimized, fuzzing), inline(never))]
#[allow(clippy::needless_range_loop)] // acc[s][i][j] indexed in lockstep across s
unsafe fn tile<
    V,
    E,
    const R: usize,
    const NV: usize,
    const NVP: usize,
    const KS: usize,
    const PF: bool,
    const REG: bool,
    const AL: u8,
    const SL: bool,
>(
    (a, lda, csa, k, bpanel, epi, r0, c0, ncols, pf, pstride): TileArgs<'_, V::Elem, E>,
) where
    V: Simd,
    E: Epilogue<V::Elem>,
{
    let nr = NVP * V::LANES;
    // `A` packed in panels of this tile's rows (`lda = 1`, `csa = R`, checked by the caller)
    // with the strides as constants: each broadcast of `A` is then one address plus a fixed
    // offset. With run-time strides the compiler computes the rows' addresses by a chain of
    // integer additions per `k` (about 14 beside the 24 FMAs of a 12-row tile), which Intel's
    // cores issue partly on the FMA ports. The `kc_speed` probe on an Intel Xeon host (FMA
    // probe 246), blocks of 1600 / 1067, GFLOP/s, without / with: 512x3200x512 194.0 / 201.9,
    // 194.0 / 202.1; 1760x3200x1760 185.2 / 197.8, 185.6 / 198.9. The same bits.
    // `A` as columns (`lda = 1`, the transposed `dA` of the weight gradients below `H = 256`):
    // the rows at constant offsets from one address per `k`, the same bits. `bench_table`
    // (1 thread, Intel Xeon host, the two builds alternated 8 rounds, ratio of the medians,
    // with / without): rnn_h64_b1_t96 train 0.971, rnn_h32_b1_t672 0.987, rnn_h128_b1_t150
    // 0.981 (rnn_h256_b1_t150, whose `dA` is packed: 1.003). A packed `A` keeps `csa = R` as a
    // constant: with it at run time as here, the `kc_speed` probe lost 2-4 % (512x3200x512,
    // blocks of 1067, two runs: 140.3, 138.4 against 135.1, 136.0 GFLOP/s).
    let (lda, csa) = match AL {
        A_PANELS => {
            debug_assert!(lda == 1 && csa == R);
            (1, R)
        }
        A_COLUMNS | A_COLUMNS_B_ROWS => {
            debug_assert!(lda == 1);
            (1, csa)
        }
        _ => (lda, csa),
    };
    // The panel's row stride: `nr`, or `B`'s (`A_COLUMNS_B_ROWS`, one panel: `NV = NVP`).
    let (ldb, pstride) = if AL == A_COLUMNS_B_ROWS {
        debug_assert!(NV == NVP && !REG);
        (pstride, 0)
    } else {
        (nr, pstride)
    };
    let fetch_min_k = const {
        match R {
            8.. => EPI_FETCH_MIN_K,
            6 | 7 => EPI_FETCH_MIN_K_6,
            _ => usize::MAX,
        }
    };
    if k >= fetch_min_k {
        epi.fetch(r0, R, c0, ncols);
    }
    // SAFETY: V's features are the caller's contract; all loads below are inside A's rows
    // `0..R` and columns `0..k` and inside the panel's `k * nr` elements.
    unsafe {
        let mut acc = [[[V::zero(); NV]; R]; KS];
        let kmain = k - k % KS;
        let mut kk = 0;
        if const { REG && R == 1 && V::BLOCK > 0 && V::LANES % KS == 0 } {
            debug_assert!(csa == 1);
            // One row with `A` contiguous and `K` long: a load of `LANES` elements of `A` and
            // two shuffles per element in registers (the `opaque` keeps LLVM from folding
            // them back into broadcast loads), instead of a broadcast load per `k` beside the
            // `NV` loads of `B`. Element `kx` still goes to partial sum `kx % KS` in the same
            // order: the same bits. `bench_table` (1 thread) on two builds, `REG_SPLAT_MIN_K`
            // = `usize::MAX` and 0, fastest of 5 alternated rounds, ms, memory / register
            // broadcasts: rnn_h256_b1_t150 infer 0.459 / 0.435, train
            // 1.233 / 1.184; rnn_h128_b1_t150 infer 0.118 / 0.112, train 0.312 / 0.302; at
            // `K` = 64 and 32 they lost (h64_b1 infer 0.0159 / 0.0180, h32_b1 0.0452 /
            // 0.0496; presumably the shuffles' latency at the start of each step's chain),
            // hence `REG_SPLAT_MIN_K`.
            let kv = k - k % V::LANES;
            while kk < kv {
                let av = V::load(a.add(kk)).opaque();
                for q in 0..V::LANES / V::BLOCK {
                    let blk = av.block_splat(q);
                    for e in 0..V::BLOCK {
                        let kx = kk + q * V::BLOCK + e;
                        let ai = blk.elem_splat(e);
                        let brow = bpanel.add(kx * ldb);
                        let acc_s = &mut acc[kx % KS][0];
                        for j in 0..NV {
                            acc_s[j] = ai.fma(panel_load::<V, NVP>(brow, pstride, j), acc_s[j]);
                        }
                    }
                }
                kk += V::LANES;
            }
        }
        if SL {
            // The path's own loop where it has one (AVX-512 `f32`, 8 and 12 rows, see
            // `avx512::strided_loop_ps`); the loop below finishes whatever `k` it leaves. A
            // separate instantiation (`SL`, full tiles of a row-major `A`): a tile holding
            // both that call and the generic loop kept its accumulators in memory, storing
            // them per `k` in the generic loop (the transposed `A` of the small weight
            // gradients: `B = 1` training 1.2-1.4x slower).
            debug_assert!(KS == 1 && !REG && AL == A_STRIDED && csa == 1);
            kk = V::strided_loop::<R, NV, NVP, PF>(&mut acc[0], a, lda, bpanel, k, pf);
        }
        while kk < kmain {
            for (s, acc_s) in acc.iter_mut().enumerate() {
                let kx = kk + s;
                if PF {
                    prefetch(pf.wrapping_add(kx * (PREFETCH_LINE / size_of::<V::Elem>())));
                }
                let brow = bpanel.add(kx * ldb);
                let b: [V; NV] = std::array::from_fn(|j| panel_load::<V, NVP>(brow, pstride, j));
                for (i, acc_i) in acc_s.iter_mut().enumerate() {
                    let ai = V::splat(*a.add(i * lda + kx * csa));
                    for j in 0..NV {
                        acc_i[j] = ai.fma(b[j], acc_i[j]);
                    }
                }
            }
            kk += KS;
        }
        while kk < k {
            let brow = bpanel.add(kk * ldb);
            let b: [V; NV] = std::array::from_fn(|j| panel_load::<V, NVP>(brow, pstride, j));
            for (i, acc_i) in acc[0].iter_mut().enumerate() {
                let ai = V::splat(*a.add(i * lda + kk * csa));
                for j in 0..NV {
                    acc_i[j] = ai.fma(b[j], acc_i[j]);
                }
            }
            kk += 1;
        }
        // Pairwise reduction of the partial sums: (0 + 1) + (2 + 3), and so on.
        let mut width = KS;
        while width > 1 {
            width /= 2;
            for s in 0..width {
                for i in 0..R {
                    for j in 0..NV {
                        acc[s][i][j] = acc[2 * s][i][j].add(acc[2 * s + 1][i][j]);
                    }
                }
            }
        }
        for (i, acc_i) in acc[0].iter().enumerate() {
            let r = r0 + i;
            let mode = epi.row_mode(r);
            for (j, &v) in acc_i.iter().enumerate() {
                let off = j * V::LANES;
                if off + V::LANES <= ncols {
                    epi.apply(mode, r, c0 + off, v, V::LANES);
                } else if off < ncols {
                    epi.apply(mode, r, c0 + off, v, ncols - off);
                }
            }
        }
    }
}

/// Vector `j` of a tile's row `brow` of the panel: vectors past the panel's `NVP` are in the
/// next panel, `pstride` elements on (the one-row tile over two panels, see `gemm_body`).
///
/// # Safety
///
/// The vector must lie in the packed buffer, and `V`'s features be present.
#[inline(always)]
unsafe fn panel_load<V: Simd, const NVP: usize>(
    brow: *const V::Elem,
    pstride: usize,
    j: usize,
) -> V {
    // SAFETY: the caller's contract.
    unsafe {
        if j < NVP {
            V::load(brow.add(j * V::LANES))
        } else {
            V::load(brow.add(pstride + (j - NVP) * V::LANES))
        }
    }
}

/// `C = A B + addend` (see [`Addend`]) with bounds checked once: the safe entry point for the
/// hoisted, non-recurrent products. `A[i][k]` is at `a[i * rsa + k * csa]`; `c` is `[m, n]`
/// with leading dimension `ldc`. Large products split
/// their panels across the caller's rayon threads (bitwise identical for any thread count).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed<F: Float>(
    isa: Isa,
    a: &[F],
    (rsa, csa): (usize, usize),
    m: usize,
    bp: PackedRef<'_, F>,
    c: &mut [F],
    ldc: usize,
    addend: Addend<'_, F>,
) {
    let ops = Operands::strided(a, rsa, csa, m, bp, bp.k);
    gemm_ops(isa, ops, c, ldc, addend);
}

/// `C = A B + addend` as [`gemm_packed`], with `A` packed by [`pack_a_into`] (`ap`, `[m, K]`)
/// read from its contraction index `k0` on (`bp.k = K - k0`): the weight gradients, whose `A`
/// is `dA^T`.
pub fn gemm_packed_a<F: Float>(
    isa: Isa,
    ap: PackedRef<'_, F>,
    k0: usize,
    bp: PackedRef<'_, F>,
    c: &mut [F],
    ldc: usize,
    addend: Addend<'_, F>,
) {
    assert_eq!(
        ap.nr,
        a_panel_rows(isa),
        "kernel bug: A packed for another path"
    );
    gemm_ops(isa, Operands::panels(ap, k0, bp), c, ldc, addend);
}

/// `C = A B + addend` as [`gemm_packed`], with `A` as columns (`A[i][k]` at `a[i + k * csa]`:
/// the transposed `dA` of the weight gradients) and `B` (`[k, n]`, row-major, `n` a multiple
/// of the path's panel width) read in place as its panels, `n` elements from one row to the
/// next, instead of packed first (the weight gradients' `X` and `h_(t-1)`).
///
/// Panics if `n` is not a multiple of [`panel_width`] or `a`, `b` or `c` is too short (a
/// caller bug: checked once here).
#[allow(clippy::too_many_arguments)]
pub fn gemm_b_rows<F: Float>(
    isa: Isa,
    a: &[F],
    csa: usize,
    m: usize,
    b: &[F],
    k: usize,
    n: usize,
    c: &mut [F],
    ldc: usize,
    addend: Addend<'_, F>,
) {
    let nr = panel_width::<F>(isa);
    assert!(
        n.is_multiple_of(nr),
        "kernel bug: B's rows not whole panels"
    );
    assert!(b.len() >= k * n, "kernel bug: B too short");
    assert!(
        m == 0 || k == 0 || (m - 1) + (k - 1) * csa < a.len(),
        "kernel bug: A too short"
    );
    let ops = Operands {
        a: a.as_ptr(),
        lda: 1,
        csa,
        m,
        k,
        bp: b.as_ptr(),
        pstride: nr,
        ldb: n,
        n,
        nr,
        lda_tile: 1,
        a_next: std::ptr::null(),
        c_next: std::ptr::null(),
        fetch_panels: true,
    };
    gemm_ops(isa, ops, c, ldc, addend);
}

/// The body of [`gemm_packed`] and [`gemm_packed_a`] for checked operands.
fn gemm_ops<F: Float>(isa: Isa, ops: Operands<F>, c: &mut [F], ldc: usize, addend: Addend<'_, F>) {
    gemm_ops_tuned(isa, ops, c, ldc, addend, tuning());
}

/// The knobs of [`gemm_ops`] that the probes (`kc_speed`, `ahead_speed`) vary; the library
/// runs [`TUNING`].
#[derive(Clone, Copy, Debug)]
struct Tuning {
    /// K is split into equal blocks of at most this (`A` strided).
    kc_max: usize,
    /// As `kc_max` for `A` packed by [`pack_a_into`] (the weight gradients).
    kc_max_packed: usize,
    /// The next chunk's rows of `A` and `C` are fetched ahead where they are contiguous and
    /// small.
    ahead: bool,
    /// Rows of a strided `A` whose distance is a multiple of [`L1_ALIAS_BYTES`] go to the
    /// path's [`select`] kernel (its `MR` rows fit one L1 set) instead of the tall one.
    alias_narrow: bool,
}

/// What the library runs on AMD's hosts (and any but Intel's): see [`tuning`].
const TUNING: Tuning = Tuning {
    kc_max: KC_MAX,
    kc_max_packed: KC_MAX,
    ahead: true,
    alias_narrow: true,
};

/// What the library runs on this CPU: [`TUNING`], with the packed `A`'s K blocks of at most
/// [`KC_MAX_PACKED_INTEL`] on Intel's (see `gemm_ops_tuned`).
fn tuning() -> Tuning {
    if crate::isa::vendor_is_intel() {
        Tuning {
            kc_max_packed: KC_MAX_PACKED_INTEL,
            ..TUNING
        }
    } else {
        TUNING
    }
}

/// [`gemm_ops`] with the given [`Tuning`].
fn gemm_ops_tuned<F: Float>(
    isa: Isa,
    ops: Operands<F>,
    c: &mut [F],
    ldc: usize,
    addend: Addend<'_, F>,
    tuning: Tuning,
) {
    check_product(isa, &ops, c.len(), ldc, addend);
    let m = ops.m;
    let (f, _) = product_kernel(isa, &ops, tuning);
    // Rows go in chunks of `MC` over all of this thread's panels: each register tile runs over
    // all of K (or of a K block, below) with its panel streaming from L2, C touched once, and a
    // panel is fetched from L3 once per chunk and then read from L2 by the chunk's other
    // `MC / MR` tiles. The chunk sets that ratio. A probe timing `gemm_packed` (1 thread,
    // AVX-512, one binary with the chunk read from the environment, 9-25 interleaved rounds,
    // best GFLOP/s; not kept: reproduce with `MC` edited and `cargo test --release --lib
    // kernel_speed -- --ignored --nocapture`, best of 5 calls, one build at a time) with 24 /
    // 48 / 96 / 144 rows per chunk: 3200x1760x1760
    // 125 / 141 / 150 / 154, 1760x800x1760 122 / 130 / 142 / 144, 512x3200x512 129 / 144 /
    // 151 / 155, while K = 512 products stay at 156-166 from 24 to 192 rows (FMA probe 175).
    let panels = ops.n.div_ceil(ops.nr);
    let c = SharedMut(c.as_mut_ptr());
    // K blocks: one unless K is long (the weight gradients over T * B rows of long
    // sequences), so that a chunk of A (`MC x KC`) and a panel's slice of B need not come
    // from memory for every tile. Blocks cost a pass over C per block and each block streams
    // its slice of B once per row chunk. The `kc_speed` probe (`cargo test --release --lib
    // kc_speed -- --ignored --nocapture`: `A` packed, 1 thread, best of 9 alternated rounds),
    // GFLOP/s unblocked / blocks of 1600 / 1067 / 800 / 400, on 2026-12-02 (FMA probe 248):
    // 512x3200x512 217.3 / 214.5 / 211.6 / 211.3 / 207.1, 1760x3200x1760 225.1 / 211.7 /
    // 217.4 / 216.1 / 206.5; a scratch probe with the caches flushed and `C` zeroed before
    // each product, 1760x6400x1760: blocks of 1600 / 3200 / unblocked 225.8 / 229.6 / 228.4.
    // (On 2026-11-29, before the panel fetches of `row_blocks`, the same probe had blocks of
    // 1600 ahead: 512x3200x512 152.4-153.8 unblocked against 161.6-162.5.) Hence blocks of
    // at most 4096 on AMD's CPUs. On an Intel Xeon host (2 MiB L2 per core, FMA probe 246;
    // 2026-12-02, two runs) the same probe had blocks ahead for a packed `A`: unblocked /
    // 1600 / 1067 / 768 / 512 / 256, 512x3200x512 190.0-191.2 / 205.8-206.1 / 207.1-207.2 /
    // 205.6-206.1 / 204.7-204.8 / 212.1-212.3, 1760x3200x1760 180.9-182.9 / 194.2-195.0 /
    // 195.3-196.5 / 193.5-195.4 / 191.4-192.2 / 194.5-194.9; hence blocks of at most
    // [`KC_MAX_PACKED_INTEL`] there (K = 3200 in three). A strided `A` stays unblocked on
    // both: the `kc_strided_speed` probe on that host, unblocked / 1067 / 880 / 256,
    // 3200x1760x1760 199.5 / 194.0 / 193.8 / 184.3, 800x1760x1760 209.9 / 207.2 / 207.2 /
    // 201.4, 3200x512x512 214.2 / 213.9 / 214.8 / 209.2. Fixed by the shape and the CPU's
    // vendor alone, so every thread count sums in the same order.
    let kblocks = k_blocks(&ops, tuning);
    let chunks = m.div_ceil(MC);
    // The next chunk's rows of `A` and of `C` are fetched into L2 ahead (by the tiles of the
    // last panel and of the one before, see `row_blocks`) when they are contiguous (`X` or
    // `dA` and the output, `[T * B, K]` and `[T * B, n]`), `K` is one block, and a chunk takes
    // at most half of L2: else the next chunk's first panel reads `A` from L3 or memory one
    // broadcast at a time, and its stores wait for their lines. The `ahead_speed` probe
    // (`cargo test --release --lib ahead_speed -- --ignored --nocapture`: 1 thread, best of 7
    // alternated rounds; six runs, two of them in a slow phase of the host): with was faster in
    // 19 of 24 pairs; the best of the runs without / with, GFLOP/s: 3200x512x512 151.8 /
    // 159.1, 800x512x512 161.7 / 169.9, 3200x256x256 157.9 / 166.3, 800x256x256 163.6 /
    // 162.4 (slower in three runs, faster in three: its `A`, 800 KiB, is now left out by
    // `AHEAD_MIN_BYTES`); 3200x1760x1760 (too large: the same code both ways) 159.7 / 159.6.
    let a_ahead = tuning.ahead
        && kblocks == 1
        && ops.csa == 1
        && ops.lda == ops.k
        && ops.lda_tile == ops.lda
        && MC * ops.k * size_of::<F>() <= AHEAD_MAX_BYTES
        && m * ops.k * size_of::<F>() > AHEAD_MIN_BYTES;
    // `C`'s rows go with `A`'s (the same conditions, and `C` without gaps).
    let c_ahead = a_ahead && ldc == ops.n && MC * ops.n * size_of::<F>() <= AHEAD_MAX_BYTES;
    // The chunk of `MC` rows from `r0` over a range of panels: the same tiles, whoever runs
    // it. `ahead`: the chunk after it (same panels) is likely the next this thread runs.
    let run = |r0: usize, panels: Range<usize>, ahead: bool| {
        let mc = MC.min(m - r0);
        let c = c.get().wrapping_add(r0 * ldc);
        let (a_next, c_next) = if a_ahead && ahead && r0 + MC < m {
            let c_next = c.wrapping_add(MC * ldc);
            (
                ops.rows(r0 + MC, 0).a,
                if c_ahead {
                    c_next.cast_const()
                } else {
                    std::ptr::null()
                },
            )
        } else {
            (std::ptr::null(), std::ptr::null())
        };
        for kb in 0..kblocks {
            let (k0, k1) = (ops.k * kb / kblocks, ops.k * (kb + 1) / kblocks);
            // The first block adds the caller's addend, the others accumulate into C.
            let add = if kb == 0 { addend } else { Addend::C };
            let epi = Store::new(c, ldc, add);
            let chunk = ops
                .rows(r0, mc)
                .k_block(k0, k1 - k0)
                .with_next(a_next, c_next);
            // SAFETY: `isa` is supported (asserted); A's and C's extents were asserted
            // above and in `Operands::strided` / `Operands::panels`: rows `r0..r0 + mc`
            // < m of A and C, and columns `k0..k1` <= K of A and rows of every panel; `bp`
            // was packed with this path's panel width, or is `B` as rows of whole panels
            // of it (asserted; the tall, the `select` and the `B`-as-rows kernel of a path
            // share it), and a packed `A` (`csa != 1`) always
            // runs the tall kernel, whose `MR` is its panels' height; threads own disjoint
            // rows or disjoint panels (columns) of C; `a_next` / `c_next` are only fetched
            // (hints, never read).
            unsafe { f(&chunk, &epi, panels.clone()) };
        }
    };
    // The split whose busiest thread has the least to do (panels on a tie: each thread then
    // streams only its part of B). Participant `c` of `t` owns the chunks `u * c / t ..
    // u * (c + 1) / t` or the panels `u * c / t .. u * (c + 1) / t` (of `u`); rows and
    // columns measure a part's work.
    let threads = product_loop(m, ops.k, ops.n, ops.nr);
    let t = threads.threads();
    let busiest = |units: usize, width: usize, total: usize| {
        (0..t)
            .map(|c| ((units * (c + 1) / t) * width).min(total) - (units * c / t) * width)
            .max()
            .unwrap_or(0)
    };
    let by_rows = busiest(chunks, MC, m) as f64 / m as f64;
    let by_cols = busiest(panels, ops.nr, ops.n) as f64 / ops.n as f64;
    // Either way each thread owns a part and runs its chunks in order, and one that has run
    // its part takes the chunks others have not begun (`StepLoop::run_parts`).
    if t > 1 && by_rows < by_cols {
        // Threads own whole `MC`-row chunks and every panel (T * B = 3200 rows: 17 against
        // 17 chunks, where H = 1760 in 32-column panels splits 28 against 27 panels).
        threads.run_parts(
            |p| chunks * p / t,
            |ch, ahead| run(ch * MC, 0..panels, ahead),
        );
    } else {
        // Threads own disjoint panels (columns), each over all the rows, chunk by chunk.
        threads.run_parts(
            |p| chunks * p,
            |u, ahead| {
                let p = u / chunks;
                run(
                    (u % chunks) * MC,
                    panels * p / t..panels * (p + 1) / t,
                    ahead,
                )
            },
        );
    }
}

/// Panics unless `isa` is supported, `B` was packed for it, the addend row covers `n` and `C`
/// (`c_len` elements, leading dimension `ldc`) holds the product's `m x n`: the checks, made
/// once, that make a product of checked operands sound.
fn check_product<F: Float>(
    isa: Isa,
    ops: &Operands<F>,
    c_len: usize,
    ldc: usize,
    addend: Addend<'_, F>,
) {
    assert!(isa.is_supported(), "kernel bug: unsupported isa");
    if let Addend::Row(row) = addend {
        assert!(row.len() >= ops.n, "kernel bug: addend row too short");
    }
    assert_eq!(
        ops.nr,
        panel_width::<F>(isa),
        "kernel bug: B packed for another path"
    );
    let m = ops.m;
    assert!(
        m == 0 || (ldc >= ops.n && (m - 1) * ldc + ops.n <= c_len),
        "kernel bug: C too short"
    );
}

/// The kernel [`gemm_ops`] runs a product of `ops` with on `isa`, and the rows of its full
/// register tiles.
fn product_kernel<F: Float>(
    isa: Isa,
    ops: &Operands<F>,
    tuning: Tuning,
) -> (KernelFn<F, Store<F>>, usize) {
    // A register tile broadcasts from one line of each of its rows of `A` at a time. Rows a
    // multiple of 4 KiB apart (`K = 1024` in `f32`: the projection's `X` at `I = 1024`, `dX`'s
    // `dA` at `H = 1024`) all fall in one set of the L1 (64 sets of 64-byte lines). On Zen 4's
    // 8-way L1 the tall tile's 12 rows evict each other before their next 15 elements are
    // used; the path's `select` kernel fits (8 rows on AVX-512; the other paths' tall kernel
    // is their `select` kernel, 6 or 4 rows). Zen 5's 12-way L1 holds the 12 rows but not the
    // panel's lines beside them: not measured there. The `alias_speed` probe (`cargo test
    // --release --lib alias_speed -- --ignored --nocapture`; Zen 4, FMA probe 115 GFLOP/s
    // per core; best of 9 alternated rounds), GFLOP/s, tall / 8-row / tall on rows padded by
    // 16 elements: 1 thread 400x1024x1024 83.6 / 100.4 / 103.6, 400x2048x2048 92.8 / 99.6 /
    // 99.1; 2 threads 155.0 / 207.3 / 207.0, 141.9 / 191.4 / 193.2 (an earlier run: 72.6 /
    // 99.6 at 400x1024x1024, 1 thread). The padded rows show the loss is the aliasing alone.
    // A packed `A` (contiguous panels) and the transposed view of `dA` never alias.
    let aliased = ops.csa == 1
        && ops.m > 1
        && ops.lda > 0
        && (ops.lda * size_of::<F>()).is_multiple_of(L1_ALIAS_BYTES);
    // `B` as rows ([`gemm_b_rows`]; with one panel, `ldb = nr`, it is also its packed form).
    if ops.ldb != ops.nr {
        assert!(
            ops.lda == 1 && ops.ldb == ops.n,
            "kernel bug: B's rows need A's columns"
        );
        (select_b_rows::<F>(isa), a_panel_rows(isa))
    } else if tuning.alias_narrow && aliased {
        (select::<F, Store<F>>(isa), select_rows(isa))
    } else {
        (select_tall::<F>(isa), a_panel_rows(isa))
    }
}

/// The blocks [`gemm_ops`] splits the contraction of `ops` into (see `gemm_ops_tuned`).
fn k_blocks<F: Float>(ops: &Operands<F>, tuning: Tuning) -> usize {
    let kc_max = if ops.packed_a() {
        tuning.kc_max_packed
    } else {
        tuning.kc_max
    };
    ops.k.div_ceil(kc_max.max(1)).max(1)
}

/// A hoisted product ([`gemm_packed`]) computed in parts on the calling thread, each part
/// some rows and some panels of it: the input projection riding along a time loop whose steps
/// wait on memory (see `Rnn::recur`). Each part runs the kernel the one call runs, on rows in
/// strips of whole register tiles from row 0 ([`ProductParts::strip_rows`], which divides
/// `MC`): every row is in a tile of the height it has in the one call (a full tile, or the
/// same last remainder: tiles of one or two rows sum in other orders), with the same
/// contraction and epilogue, so the parts compute the bits of the one call.
#[derive(Clone, Copy, Debug)]
pub struct ProductParts<'a, F> {
    ops: Operands<F>,
    kernel: KernelFn<F, Store<F>>,
    strip: usize,
    c: SharedMut<F>,
    ldc: usize,
    addend: Addend<'a, F>,
}

impl<'a, F: Float> ProductParts<'a, F> {
    /// The parts of [`gemm_packed`]`(isa, a, (rsa, csa), m, bp, c, ldc, addend)`, or `None`
    /// where the one call splits the contraction into blocks (then run it instead).
    ///
    /// Panics as [`gemm_packed`] where the operands are too short (checked once here).
    #[allow(clippy::too_many_arguments)]
    pub fn strided(
        isa: Isa,
        a: &'a [F],
        (rsa, csa): (usize, usize),
        m: usize,
        bp: PackedRef<'a, F>,
        c: &mut [F],
        ldc: usize,
        addend: Addend<'a, F>,
    ) -> Option<Self> {
        let ops = Operands::strided(a, rsa, csa, m, bp, bp.k);
        let tuning = tuning();
        check_product(isa, &ops, c.len(), ldc, addend);
        if k_blocks(&ops, tuning) > 1 {
            return None;
        }
        let (kernel, strip) = product_kernel(isa, &ops, tuning);
        debug_assert!(MC.is_multiple_of(strip));
        Some(ProductParts {
            ops,
            kernel,
            strip,
            c: SharedMut(c.as_mut_ptr()),
            ldc,
            addend,
        })
    }

    /// Rows of a strip: parts start at its multiples.
    pub fn strip_rows(&self) -> usize {
        self.strip
    }

    /// Panels of the product (of [`panel_width`] columns).
    pub fn panels(&self) -> usize {
        self.ops.n.div_ceil(self.ops.nr)
    }

    /// Rows from 0 that the one call sums in register tiles of three or more rows, one chain
    /// over `k` per element as a [`RideTile`] sums them: the full tiles (of
    /// [`ProductParts::strip_rows`]), and a last, remainder tile of three or more rows where
    /// every panel is full (a partial panel's remainder runs tiles of two and one rows, see
    /// `row_blocks`, whose rows sum in partial sums, as do a remainder of one or two rows).
    pub fn chained_rows(&self) -> usize {
        let m = self.ops.m;
        let full = m - m % self.strip;
        if m - full >= 3 && self.ops.n.is_multiple_of(self.ops.nr) {
            m
        } else {
            full
        }
    }

    /// Rows `rows` (at most [`RIDE_ROWS`], below [`ProductParts::chained_rows`]) over panels
    /// `p0..p1`, as a tile riding along a time loop's step: the bits the one call computes
    /// there, every such row being in a full tile of it (see [`RideTile`]).
    pub fn ride_tile(&self, rows: Range<usize>, p0: usize, p1: usize) -> RideTile<'a, F> {
        debug_assert!(rows.len() <= RIDE_ROWS && rows.end <= self.chained_rows());
        debug_assert!(p0 < p1 && p1 <= self.panels() && self.ops.csa == 1);
        RideTile {
            ops: self.ops.rows(rows.start, rows.len()),
            p0,
            p1,
            c: SharedMut(self.c.get().wrapping_add(rows.start * self.ldc)),
            ldc: self.ldc,
            addend: self.addend,
        }
    }

    /// Rows `rows` of the product over panels `panels`, on this thread.
    ///
    /// # Safety
    ///
    /// `rows.start` is a multiple of [`ProductParts::strip_rows`], `rows.end <= m` and
    /// `panels.end <=` [`ProductParts::panels`] (not checked: a time loop calls this); `A` and
    /// `C` given to [`ProductParts::strided`] are still alive, and nothing else reads or
    /// writes these rows' columns of `C` until this returns.
    #[inline]
    pub unsafe fn run(&self, rows: Range<usize>, panels: Range<usize>) {
        debug_assert!(rows.start.is_multiple_of(self.strip) && rows.end <= self.ops.m);
        debug_assert!(panels.end <= self.panels());
        let ops = self.ops.rows(rows.start, rows.len());
        let c = self.c.get().wrapping_add(rows.start * self.ldc);
        let epi = Store::new(c, self.ldc, self.addend);
        // SAFETY: the isa was asserted supported, the operands' extents at construction (rows
        // `rows` of them, `rows.end <= m`; panels inside `B`'s, this function's contract),
        // `C`'s rows are this thread's alone (this function's contract) and the kernel is
        // the one `gemm_packed` runs these operands with (`product_kernel`), K in one block.
        unsafe { (self.kernel)(&ops, &epi, panels) }
    }
}

/// The threads of [`gemm_packed`] (and [`gemm_packed_a`], [`gemm_b_rows`]) for `C = A B` of
/// `m` rows, contraction `k` and `n` columns in panels `nr` wide: its `MC`-row chunks or its
/// panels shared on the caller's pool when the product is large enough ([`StepLoop::new`]).
fn product_loop(m: usize, k: usize, n: usize, nr: usize) -> StepLoop {
    let (panels, chunks) = (n.div_ceil(nr.max(1)), m.div_ceil(MC));
    StepLoop::new(panels.max(chunks), 2 * m * k * n)
}

/// Whether a product of `m` rows, contraction `k` and `n` columns in panels `nr` wide runs on
/// more than one thread of the caller's pool (see [`product_loop`]).
pub fn product_shared(m: usize, k: usize, n: usize, nr: usize) -> bool {
    product_loop(m, k, n, nr).threads() > 1
}

/// Distance between rows of `A` (bytes; and its multiples) that puts them in one set of the
/// L1 data cache (64 sets of 64-byte lines on the x86_64 cores here, 32 or 48 KiB, 8 or 12
/// ways; see `gemm_ops_tuned`).
const L1_ALIAS_BYTES: usize = 4096;

/// Rows of A per pass over the panels in [`gemm_packed`] (a multiple of every path's `MR`: 4,
/// 6, 8 and 12).
const MC: usize = 96;
/// Largest chunk of `A` or `C` (`MC` rows, bytes) fetched ahead into L2 (half of it here).
const AHEAD_MAX_BYTES: usize = 1 << 19;
/// All of `A` (bytes) above which its chunks are fetched ahead: a smaller one stays in L2 or
/// L3 from one call to the next (the `B = 1` workloads' `T * B` rows of `H <= 64`), where the
/// fetches only add instructions to short tiles.
const AHEAD_MIN_BYTES: usize = 1 << 20;
/// Longest contraction [`gemm_packed`] runs in one pass (a longer one is split into equal
/// blocks of at most this).
const KC_MAX: usize = 4096;
/// [`KC_MAX`] for a packed `A` on Intel's CPUs (see `gemm_ops_tuned`).
const KC_MAX_PACKED_INTEL: usize = 1280;

/// A raw address shared with the threads of a time loop, which write disjoint parts of it
/// (their own panels' columns) within a step (steps are ordered by [`StepLoop::run`]).
#[derive(Clone, Copy, Debug)]
pub struct SharedMut<F>(pub *mut F);

impl<F> SharedMut<F> {
    /// The address (a method, so closures capture the `Sync` wrapper, not the pointer).
    #[inline(always)]
    pub fn get(self) -> *mut F {
        self.0
    }
}

// SAFETY: the wrapper only moves an address between threads; every access through it is an
// `unsafe` kernel call whose contract requires disjoint columns per thread within a step.
unsafe impl<F: Send> Send for SharedMut<F> {}
// SAFETY: as for `Send`.
unsafe impl<F: Send> Sync for SharedMut<F> {}

#[cfg(test)]
mod tests;
