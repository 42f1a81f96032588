//! AVX-512F path: `MR = 8` rows x `NV = 2` zmm (32 `f32` / 16 `f64` columns) per register
//! tile (16 accumulators, 2 B loads and 8 embedded broadcasts per `k`), masked loads and
//! stores for column remainders, tanh from `vecmath`'s register form.
//!
//! Why 8 x 32 and not 8 x 48 (24 accumulators, which this path used first): in the
//! `kernel_speed` probe both run at the same speed (512x3200x512: 114.8 against 112.9
//! GFLOP/s, 1760x800x1760: 113.1 against 110.0, FMA probe 117), and the narrower panels
//! divide the common hidden sizes: `H = 64` is two full panels instead of one and a third, and
//! `H = 512` splits 16 panels 8 against 8 between two threads instead of 17 against 15 vectors.
//! Measured with `bench_table`, two interleaved passes: `rnn_h64_b1_t96` 6-7 % faster,
//! `rnn_h512_b16_t50` with 2 threads 4-5 % faster, 1-thread large workloads within 1-2 %.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{Epilogue, Operands, Simd, Steps, gemm_body, steps_body};
use crate::float::Float;
use crate::vecmath::avx512::{tanh_avx512_pd, tanh_avx512_ps};

/// Vectors per panel.
pub const NV: usize = 2;
/// Vectors of the one-row tile over two panels (see `gemm_body`): 16 accumulators.
const NW: usize = 2 * NV;
/// Rows per register tile.
pub(crate) const MR: usize = 8;
/// Rows per register tile of the hoisted products ([`gemm_tall`]).
pub(crate) const MR_TALL: usize = 12;

/// The packed GEMM on the AVX-512 path.
///
/// # Safety
///
/// The CPU must support avx512f, avx2 and fma (the caller proves it with
/// `Isa::Avx512.is_supported()`), plus the memory contract of [`super::KernelFn`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm<F: Float, E: Epilogue<F>>(ops: &Operands<F>, epi: &E, panels: Range<usize>) {
    // SAFETY: the features are enabled here and the memory contract is the caller's.
    unsafe { gemm_body::<F::V512, E, MR, NV, NW, false, false>(ops, epi, panels, false) }
}

/// The packed GEMM with 12-row register tiles (24 accumulators), for the hoisted products (see
/// [`super::select_tall`]).
///
/// # Safety
///
/// As [`gemm`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm_tall<F: Float, E: Epilogue<F>>(
    ops: &Operands<F>,
    epi: &E,
    panels: Range<usize>,
) {
    // SAFETY: the features are enabled here and the memory contract is the caller's.
    unsafe { gemm_body::<F::V512, E, MR_TALL, NV, NW, true, false>(ops, epi, panels, false) }
}

/// The packed GEMM with `A` as columns and `B` as rows in place (see [`super::gemm_b_rows`]).
///
/// # Safety
///
/// As [`gemm`], with `ops.lda = 1`, `ops.ldb = ops.n` a multiple of `ops.nr`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gemm_b_rows<F: Float, E: Epilogue<F>>(
    ops: &Operands<F>,
    epi: &E,
    panels: Range<usize>,
) {
    // SAFETY: the features are enabled here and the memory contract is the caller's.
    unsafe { gemm_body::<F::V512, E, MR_TALL, NV, NW, false, true>(ops, epi, panels, false) }
}

/// Steps `0..n` of `steps` over `panels`, in order, in this one call (see [`super::StepsFn`]),
/// in tiles of `R` rows: [`MR`], or [`MR_TALL`] as [`gemm_tall`] (see [`super::select_steps`]);
/// with `RIDE`, carrying the rides one-row steps are given (see `super::steps_body`).
///
/// # Safety
///
/// The CPU must support avx512f, avx2 and fma, plus the contract of [`super::Steps`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn steps<F: Float, S: Steps<F>, const R: usize, const RIDE: bool>(
    steps: &S,
    n: usize,
    panels: Range<usize>,
) {
    // The kernel of the same tiles as `R` for step 0 (see `super::select_step_kernel`).
    let first: super::KernelFn<F, S::Epi> = if const { R == MR_TALL } {
        gemm_tall::<F, S::Epi>
    } else {
        gemm::<F, S::Epi>
    };
    // SAFETY: the features are enabled here; the `Steps` contract is the caller's.
    unsafe { steps_body::<F::V512, S, R, NV, NW, RIDE>(steps, n, panels, first) }
}

/// 16 `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F32x16(__m512);

/// 8 `f64` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F64x8(__m512d);

macro_rules! impl_simd {
    ($t:ident, $e:ty, $lanes:expr, $reg:ty, $mask:ty, $sfx:ident, $tanh:ident,
     $setzero:ident, $set1:ident, $loadu:ident, $maskz_loadu:ident, $storeu:ident,
     $mask_storeu:ident, $fmadd:ident, $fnmadd:ident, $add:ident, $mul:ident, $max:ident,
     $cmp_mask:ident, $maskz_mov:ident, $block:expr, $shuf_blocks:ident,
     $elem_splat:ident, $opaque:ident $(, $strided:ident)?) => {
        impl Simd for $t {
            type Elem = $e;
            const LANES: usize = $lanes;
            // SAFETY (every method): avx512f is the trait's contract; pointers are valid for
            // the lanes accessed (trait contract); masked-off lanes are never accessed.
            #[inline(always)]
            unsafe fn zero() -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $setzero() })
            }
            #[inline(always)]
            unsafe fn splat(x: $e) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $set1(x) })
            }
            #[inline(always)]
            unsafe fn load(p: *const $e) -> Self {
                // SAFETY: avx512f present; `p` valid for LANES elements (trait contract).
                $t(unsafe { $loadu(p) })
            }
            #[inline(always)]
            unsafe fn load_part(p: *const $e, n: usize) -> Self {
                let m = ((1u32 << n) - 1) as $mask;
                // SAFETY: avx512f present; `p` valid for the first `n` lanes (trait
                // contract); masked-off lanes are not accessed.
                $t(unsafe { $maskz_loadu(m, p) })
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $e) {
                // SAFETY: avx512f present; `p` valid for LANES elements (trait contract).
                unsafe { $storeu(p, self.0) }
            }
            #[inline(always)]
            unsafe fn store_part(self, p: *mut $e, n: usize) {
                let m = ((1u32 << n) - 1) as $mask;
                // SAFETY: avx512f present; `p` valid for the first `n` lanes (trait
                // contract); masked-off lanes are not accessed.
                unsafe { $mask_storeu(p, m, self.0) }
            }
            #[inline(always)]
            unsafe fn fma(self, b: Self, c: Self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $fmadd(self.0, b.0, c.0) })
            }
            #[inline(always)]
            unsafe fn add(self, b: Self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $add(self.0, b.0) })
            }
            #[inline(always)]
            unsafe fn mul(self, b: Self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $mul(self.0, b.0) })
            }
            #[inline(always)]
            unsafe fn tanh(self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $tanh(self.0) })
            }
            #[inline(always)]
            unsafe fn relu(self) -> Self {
                // max(0, x) returns its second operand when either is NaN: NaN propagates.
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $max($setzero(), self.0) })
            }
            #[inline(always)]
            unsafe fn tanh_deriv(self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $fnmadd(self.0, self.0, $set1(1.0)) })
            }
            const BLOCK: usize = $block;
            #[inline(always)]
            unsafe fn opaque(self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $opaque(self.0) })
            }
            $(
            #[inline(always)]
            unsafe fn strided_loop<
                const R: usize,
                const NV: usize,
                const NVP: usize,
                const PF: bool,
            >(
                acc: &mut [[Self; NV]; R],
                a: *const $e,
                lda: usize,
                bpanel: *const $e,
                k: usize,
                pf: *const $e,
            ) -> usize {
                // SAFETY: the trait's contract, passed through.
                unsafe { $strided::<R, NV, NVP, PF>(acc, a, lda, bpanel, k, pf) }
            }
            )?
            #[inline(always)]
            unsafe fn block_splat(self, q: usize) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe {
                    match q {
                        0 => $shuf_blocks::<0x00>(self.0, self.0),
                        1 => $shuf_blocks::<0x55>(self.0, self.0),
                        2 => $shuf_blocks::<0xAA>(self.0, self.0),
                        _ => $shuf_blocks::<0xFF>(self.0, self.0),
                    }
                })
            }
            #[inline(always)]
            unsafe fn elem_splat(self, e: usize) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe { $elem_splat(self.0, e) })
            }
            #[inline(always)]
            unsafe fn relu_deriv(self) -> Self {
                // SAFETY: avx512f present (trait contract); registers only, no memory access.
                $t(unsafe {
                    let gt = $cmp_mask::<_CMP_GT_OQ>(self.0, $setzero());
                    $maskz_mov(gt, $set1(1.0))
                })
            }
        }
    };
}

impl_simd!(
    F32x16,
    f32,
    16,
    __m512,
    __mmask16,
    ps,
    tanh_avx512_ps,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_maskz_loadu_ps,
    _mm512_storeu_ps,
    _mm512_mask_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_fnmadd_ps,
    _mm512_add_ps,
    _mm512_mul_ps,
    _mm512_max_ps,
    _mm512_cmp_ps_mask,
    _mm512_maskz_mov_ps,
    4,
    _mm512_shuffle_f32x4,
    elem_splat_ps,
    opaque_ps,
    strided_loop_ps
);
impl_simd!(
    F64x8,
    f64,
    8,
    __m512d,
    __mmask8,
    pd,
    tanh_avx512_pd,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_maskz_loadu_pd,
    _mm512_storeu_pd,
    _mm512_mask_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_fnmadd_pd,
    _mm512_add_pd,
    _mm512_mul_pd,
    _mm512_max_pd,
    _mm512_cmp_pd_mask,
    _mm512_maskz_mov_pd,
    2,
    _mm512_shuffle_f64x2,
    elem_splat_pd,
    opaque_pd
);

/// Element `e` of each 128-bit block of `v` broadcast across that block (`e` is a constant
/// once the tile's loop is unrolled, so the `match` leaves one shuffle).
#[inline(always)]
unsafe fn elem_splat_ps(v: __m512, e: usize) -> __m512 {
    // SAFETY: avx512f present (the caller's contract); registers only, no memory access.
    unsafe {
        match e {
            0 => _mm512_shuffle_ps::<0x00>(v, v),
            1 => _mm512_shuffle_ps::<0x55>(v, v),
            2 => _mm512_shuffle_ps::<0xAA>(v, v),
            _ => _mm512_shuffle_ps::<0xFF>(v, v),
        }
    }
}

/// As [`elem_splat_ps`] for the two `f64` of each block.
#[inline(always)]
unsafe fn elem_splat_pd(v: __m512d, e: usize) -> __m512d {
    // SAFETY: avx512f present (the caller's contract); registers only, no memory access.
    unsafe {
        match e {
            0 => _mm512_shuffle_pd::<0x00>(v, v),
            _ => _mm512_shuffle_pd::<0xFF>(v, v),
        }
    }
}

macro_rules! opaque {
    ($name:ident, $reg:ty) => {
        /// `v` unchanged, through an empty `asm!` block the optimizer cannot see into.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(mut v: $reg) -> $reg {
            // SAFETY: an empty template: no instruction, no memory access, no flags.
            unsafe {
                std::arch::asm!("/* {0} */", inout(zmm_reg) v, options(pure, nomem, nostack))
            };
            v
        }
    };
}
opaque!(opaque_ps, __m512);
opaque!(opaque_pd, __m512d);

/// [`Simd::strided_loop`] for `f32`: the full-panel tiles of 8 and 12 rows (the time loop's
/// and the hoisted products'), two `k` per iteration, in assembly. The compiler's own loop
/// computes the rows' addresses by a chain of integer additions per `k` (about 11 beside the
/// 16 FMAs of the 8-row tile, 14 beside 24 of the 12-row one), which Intel's cores issue
/// partly on the FMA ports. Here rows are addressed from four bases (rows 0, 3, 6 and 9)
/// scaled by `lda`, with the second `k` as a displacement: 4 to 6 integer instructions per two
/// `k`. Returns the `k` done (even; the caller finishes an odd one).
#[inline(always)]
unsafe fn strided_loop_ps<const R: usize, const NV: usize, const NVP: usize, const PF: bool>(
    acc: &mut [[F32x16; NV]; R],
    a: *const f32,
    lda: usize,
    bpanel: *const f32,
    k: usize,
    pf: *const f32,
) -> usize {
    if NV != 2 || NVP != 2 || (R != 8 && R != 12) || k < 2 {
        return 0;
    }
    let pairs = k / 2;
    // The accumulators go to the loop (a function the compiler may keep out of line) and
    // back one by one, by value, at constant offsets.
    let p = acc.as_mut_ptr().cast::<F32x16>();
    macro_rules! run {
        ($f:ident, $($x:literal)*) => {{
            // SAFETY: `acc` holds `R * NV` registers (8 or 12 rows of 2, checked above), in
            // order; the caller's contract covers the rows, the panel and the fetches.
            unsafe {
                let out = $f::<PF>([$(p.add($x).read()),*], a, lda, bpanel, pairs, pf);
                $(p.add($x).write(out[$x]);)*
            }
        }};
    }
    if R == 8 {
        run!(loop_8, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    } else {
        run!(loop_12, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23);
    }
    2 * pairs
}

/// One row's broadcast of `A` at `[$addr + $d]` and its two FMAs into `$c0`, `$c1`.
macro_rules! row_fma {
    ($addr:literal, $d:literal, $c0:literal, $c1:literal) => {
        concat!(
            "vbroadcastss {t}, dword ptr [",
            $addr,
            " + ",
            $d,
            "]\n",
            "vfmadd231ps {",
            $c0,
            "}, {t}, {b0}\n",
            "vfmadd231ps {",
            $c1,
            "}, {t}, {b1}\n"
        )
    };
}

/// Rows 0-7 of a tile at byte displacement `$d` (0 for the first `k` of a pair, 4 for the
/// second): from bases `a0`, `a3`, `a6` (rows 0, 3, 6) plus `lda` bytes times 1, 2 or 4.
macro_rules! rows_8 {
    ($d:literal) => {
        concat!(
            row_fma!("{a0}", $d, "c00", "c01"),
            row_fma!("{a0} + {l}", $d, "c10", "c11"),
            row_fma!("{a0} + {l}*2", $d, "c20", "c21"),
            row_fma!("{a3}", $d, "c30", "c31"),
            row_fma!("{a0} + {l}*4", $d, "c40", "c41"),
            row_fma!("{a3} + {l}*2", $d, "c50", "c51"),
            row_fma!("{a6}", $d, "c60", "c61"),
            row_fma!("{a3} + {l}*4", $d, "c70", "c71"),
        )
    };
}

/// Rows 0-11 of a tile at byte displacement `$d`: [`rows_8`] and rows 8-11 (base `a9` for
/// row 9).
macro_rules! rows_12 {
    ($d:literal) => {
        concat!(
            rows_8!($d),
            row_fma!("{a0} + {l}*8", $d, "c80", "c81"),
            row_fma!("{a9}", $d, "c90", "c91"),
            row_fma!("{a6} + {l}*4", $d, "ca0", "ca1"),
            row_fma!("{a3} + {l}*8", $d, "cb0", "cb1"),
        )
    };
}

/// The loop over `pairs` pairs of `k`: the panel's two rows (256 bytes from `bp`), each with
/// its fetch (`$f0`, `$f1`, empty without `PF`) and the rows' FMAs (`$rows`), then the bases
/// step two elements on (`$bases`). `{a9}` and `{pf}` are operands whether used or not.
macro_rules! pair_loop {
    ($rows:ident, $bases:literal, $f0:literal, $f1:literal, $pf_step:literal) => {
        concat!(
            "2:\n",
            "vmovups {b0}, zmmword ptr [{bp}]\n",
            "vmovups {b1}, zmmword ptr [{bp} + 64]\n",
            $f0,
            $rows!("0"),
            "vmovups {b0}, zmmword ptr [{bp} + 128]\n",
            "vmovups {b1}, zmmword ptr [{bp} + 192]\n",
            $f1,
            $rows!("4"),
            $bases,
            "add {bp}, 256\n",
            $pf_step,
            "dec {n}\n",
            "jnz 2b\n",
            "/* {a9} {pf} */\n"
        )
    };
}

macro_rules! strided_loop_asm {
    ($name:ident, $n:literal, [$($acc:ident),*], $rows:ident, $bases:literal) => {
        /// The assembly loop of [`strided_loop_ps`] for this many rows, `pairs >= 1`.
        ///
        /// # Safety
        ///
        /// avx512f present; `a` valid for the rows of `2 * pairs` elements `lda` apart,
        /// `bpanel` for `2 * pairs` rows of 32 `f32`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn $name<const PF: bool>(
            acc: [F32x16; $n],
            a: *const f32,
            lda: usize,
            bpanel: *const f32,
            pairs: usize,
            pf: *const f32,
        ) -> [F32x16; $n] {
            let l = lda * 4;
            // Destructured in place: `acc.map(|v| v.0)` was a call of its own (and its
            // closure another) wherever the compiler keeps this loop out of line, as it does
            // in the library's test harness build (`kernel_speed` probe, 1 thread, two runs:
            // 800x512x512 140.0-140.9 GFLOP/s before, 163.2-166.8 after). The library's own
            // build inlines the loop either way (`bench_table`, fastest samples of 8
            // alternated rounds, after / before: 0.997-1.004).
            let [$(F32x16(mut $acc)),*] = acc;
            let (mut a0, mut a3, mut a6, mut a9) = (
                a,
                a.wrapping_add(3 * lda),
                a.wrapping_add(6 * lda),
                a.wrapping_add(9 * lda),
            );
            let (mut bp, mut n, mut pf) = (bpanel, pairs, pf);
            macro_rules! run {
                ($template:expr) => {
                    std::arch::asm!(
                        $template,
                        a0 = inout(reg) a0,
                        a3 = inout(reg) a3,
                        a6 = inout(reg) a6,
                        a9 = inout(reg) a9,
                        l = in(reg) l,
                        bp = inout(reg) bp,
                        n = inout(reg) n,
                        pf = inout(reg) pf,
                        t = out(zmm_reg) _,
                        b0 = out(zmm_reg) _,
                        b1 = out(zmm_reg) _,
                        $($acc = inout(zmm_reg) $acc,)*
                        options(nostack, readonly),
                    )
                };
            }
            // SAFETY: reads only inside `A`'s rows `0..R` and columns `0..2 * pairs` and the
            // panel's `2 * pairs` rows (the caller's contract); `prefetcht1` never faults.
            // The FMAs are `acc = A[i][kk] * b + acc` in `kk` order, as in `tile`.
            unsafe {
                if PF {
                    run!(pair_loop!(
                        $rows,
                        $bases,
                        "prefetcht1 byte ptr [{pf}]\n",
                        "prefetcht1 byte ptr [{pf} + 64]\n",
                        "add {pf}, 128\n"
                    ));
                } else {
                    run!(pair_loop!($rows, $bases, "", "", ""));
                }
            }
            let _ = (a0, a3, a6, a9, bp, n, pf);
            [$(F32x16($acc)),*]
        }
    };
}

strided_loop_asm!(
    loop_8,
    16,
    [
        c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71
    ],
    rows_8,
    "add {a0}, 8\nadd {a3}, 8\nadd {a6}, 8\n"
);

strided_loop_asm!(
    loop_12,
    24,
    [
        c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, c80, c81,
        c90, c91, ca0, ca1, cb0, cb1
    ],
    rows_12,
    "add {a0}, 8\nadd {a3}, 8\nadd {a6}, 8\nadd {a9}, 8\n"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;

    /// The assembly loops against the same FMAs one lane at a time (`f32::mul_add`, one
    /// rounding, as `vfmadd231ps`), bitwise: 8 and 12 rows, with and without the fetches,
    /// even and odd `k` (the odd one left to the caller), row strides short and long.
    #[test]
    fn strided_loops_match_scalar_fmas_bitwise() {
        if !Isa::Avx512.is_supported() {
            eprintln!("no AVX-512 on this host: the assembly loops cannot run here");
            return;
        }
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for &(k, lda) in &[(2usize, 2usize), (3, 5), (17, 17), (64, 1000), (129, 131)] {
            for rows in [8usize, 12] {
                let a: Vec<f32> = (0..rows * lda).map(|_| next()).collect();
                let b: Vec<f32> = (0..k * 32).map(|_| next()).collect();
                let init: Vec<f32> = (0..rows * 32).map(|_| next()).collect();
                for pf in [false, true] {
                    let mut want = init.clone();
                    let done = k - k % 2;
                    for i in 0..rows {
                        for j in 0..32 {
                            for kk in 0..done {
                                let c = &mut want[i * 32 + j];
                                *c = a[i * lda + kk].mul_add(b[kk * 32 + j], *c);
                            }
                        }
                    }
                    let (got, n) = match (rows, pf) {
                        (8, false) => run::<8, false>(&init, &a, lda, &b, k),
                        (8, true) => run::<8, true>(&init, &a, lda, &b, k),
                        (_, false) => run::<12, false>(&init, &a, lda, &b, k),
                        (_, true) => run::<12, true>(&init, &a, lda, &b, k),
                    };
                    assert_eq!(n, k - k % 2, "rows {rows} k {k}");
                    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "rows {rows} k {k} lda {lda} pf {pf} at {idx}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// `init` (`R` rows of 32) through `strided_loop_ps` over `a` (`R` rows, `lda` apart) and
    /// the panel `b` (`k` rows of 32, also the fetch address): the tile and the `k` done.
    fn run<const R: usize, const PF: bool>(
        init: &[f32],
        a: &[f32],
        lda: usize,
        b: &[f32],
        k: usize,
    ) -> (Vec<f32>, usize) {
        assert!(init.len() == R * 32 && a.len() >= (R - 1) * lda + k && b.len() >= k * 32);
        let mut got = vec![0f32; R * 32];
        // SAFETY: the caller checked AVX-512; `init` and `got` hold `R` rows of 32, `a` `R`
        // rows of `k` elements `lda` apart, `b` `k` rows of 32 (asserted); `prefetcht1` of any
        // address never faults.
        let n = unsafe {
            let mut acc = [[F32x16(_mm512_setzero_ps()); 2]; R];
            for (i, r) in acc.iter_mut().enumerate() {
                for (j, v) in r.iter_mut().enumerate() {
                    *v = F32x16(_mm512_loadu_ps(init.as_ptr().add(i * 32 + j * 16)));
                }
            }
            let n = strided_loop_ps::<R, 2, 2, PF>(
                &mut acc,
                a.as_ptr(),
                lda,
                b.as_ptr(),
                k,
                b.as_ptr(),
            );
            for (i, r) in acc.iter().enumerate() {
                for (j, v) in r.iter().enumerate() {
                    _mm512_storeu_ps(got.as_mut_ptr().add(i * 32 + j * 16), v.0);
                }
            }
            n
        };
        (got, n)
    }

    /// Shapes without an assembly loop are left to the caller.
    #[test]
    fn other_shapes_have_no_strided_loop() {
        if !Isa::Avx512.is_supported() {
            return;
        }
        let a = [1f32; 64];
        // SAFETY: nothing is read: these shapes return before any access.
        unsafe {
            let mut acc = [[F32x16(_mm512_setzero_ps()); 2]; 6];
            let p = a.as_ptr();
            assert_eq!(
                strided_loop_ps::<6, 2, 2, false>(&mut acc, p, 8, p, 8, p),
                0
            );
            let mut acc = [[F32x16(_mm512_setzero_ps()); 1]; 8];
            assert_eq!(
                strided_loop_ps::<8, 1, 2, false>(&mut acc, p, 8, p, 8, p),
                0
            );
            let mut acc = [[F32x16(_mm512_setzero_ps()); 2]; 8];
            assert_eq!(
                strided_loop_ps::<8, 2, 2, false>(&mut acc, p, 8, p, 1, p),
                0
            );
        }
    }
}
