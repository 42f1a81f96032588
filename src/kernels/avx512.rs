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

use super::{Epilogue, Operands, Simd, Steps, gemm_body};
use crate::float::Float;
use crate::vecmath::avx512::{tanh_avx512_pd, tanh_avx512_ps};

/// Vectors per panel.
pub const NV: usize = 2;
/// Vectors of the one-row tile over two panels (see `gemm_body`): 16 accumulators.
const NW: usize = 2 * NV;
/// Rows per register tile.
const MR: usize = 8;
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
    unsafe { gemm_body::<F::V512, E, MR, NV, NW, false>(ops, epi, panels) }
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
    unsafe { gemm_body::<F::V512, E, MR_TALL, NV, NW, true>(ops, epi, panels) }
}

/// Steps `0..n` of `steps` over `panels`, in order, in this one call (see [`super::StepsFn`]).
///
/// # Safety
///
/// The CPU must support avx512f, avx2 and fma, plus the contract of [`super::Steps`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn steps<F: Float, S: Steps<F>>(steps: &S, n: usize, panels: Range<usize>) {
    for s in 0..n {
        let (ops, epi) = steps.step(s);
        // SAFETY: the features are enabled here; step `s`'s operands and epilogue meet the
        // kernel's memory contract once steps `0..s` have returned (the `Steps` contract),
        // which program order guarantees on this one thread.
        unsafe { gemm_body::<F::V512, S::Epi, MR, NV, NW, false>(&ops, &epi, panels.clone()) }
    }
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
     $elem_splat:ident, $opaque:ident) => {
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
    opaque_ps
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
