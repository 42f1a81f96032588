//! AVX2 + FMA path: `MR = 6` rows x `NV = 2` ymm (16 `f32` / 8 `f64` columns) per register
//! tile (12 accumulators of 16 registers), `vmaskmov` loads and stores for column remainders,
//! tanh from `vecmath`'s register form.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{Epilogue, Operands, Simd, Steps, gemm_body, steps_body};
use crate::float::Float;
use crate::vecmath::avx2::{tanh_avx2_pd, tanh_avx2_ps};

/// Vectors per panel.
pub const NV: usize = 2;
/// Rows per register tile.
pub(crate) const MR: usize = 6;

/// The packed GEMM on the AVX2 path.
///
/// # Safety
///
/// The CPU must support avx2 and fma (the caller proves it with
/// `Isa::Avx2Fma.is_supported()`), plus the memory contract of [`super::KernelFn`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm<F: Float, E: Epilogue<F>>(ops: &Operands<F>, epi: &E, panels: Range<usize>) {
    // SAFETY: the features are enabled here and the memory contract is the caller's.
    unsafe { gemm_body::<F::V256, E, MR, NV, 0, true, false>(ops, epi, panels, false) }
}

/// The packed GEMM with `A` as columns and `B` as rows in place (see [`super::gemm_b_rows`]).
///
/// # Safety
///
/// As [`gemm`], with `ops.lda = 1`, `ops.ldb = ops.n` a multiple of `ops.nr`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_b_rows<F: Float, E: Epilogue<F>>(
    ops: &Operands<F>,
    epi: &E,
    panels: Range<usize>,
) {
    // SAFETY: the features are enabled here and the memory contract is the caller's.
    unsafe { gemm_body::<F::V256, E, MR, NV, 0, false, true>(ops, epi, panels, false) }
}

/// Steps `0..n` of `steps` over `panels`, in order, in this one call (see [`super::StepsFn`]).
///
/// # Safety
///
/// The CPU must support avx2 and fma, plus the contract of [`super::Steps`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn steps<F: Float, S: Steps<F>>(steps: &S, n: usize, panels: Range<usize>) {
    // SAFETY: the features are enabled here; the `Steps` contract is the caller's.
    unsafe { steps_body::<F::V256, S, MR, NV, 0, false>(steps, n, panels, gemm::<F, S::Epi>) }
}

/// 8 `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F32x8(__m256);

/// 4 `f64` lanes.
#[derive(Clone, Copy, Debug)]
pub struct F64x4(__m256d);

/// A `vmaskmov` mask enabling the first `n` of 8 32-bit lanes.
///
/// # Safety
///
/// The CPU must support avx2.
#[inline(always)]
unsafe fn mask32(n: usize) -> __m256i {
    // SAFETY: avx2 is the caller's contract.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// A `vmaskmov` mask enabling the first `n` of 4 64-bit lanes.
///
/// # Safety
///
/// The CPU must support avx2.
#[inline(always)]
unsafe fn mask64(n: usize) -> __m256i {
    // SAFETY: avx2 is the caller's contract.
    unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
}

macro_rules! impl_simd {
    ($t:ident, $e:ty, $lanes:expr, $maskfn:ident, $tanh:ident, $setzero:ident, $set1:ident,
     $loadu:ident, $maskload:ident, $storeu:ident, $maskstore:ident, $fmadd:ident,
     $fnmadd:ident, $add:ident, $mul:ident, $max:ident, $cmp:ident, $and:ident,
     $block:expr, $block_splat:ident, $elem_splat:ident, $opaque:ident) => {
        impl Simd for $t {
            type Elem = $e;
            const LANES: usize = $lanes;
            const BLOCK: usize = $block;
            // SAFETY (every method): avx2 and fma are the trait's contract; pointers are valid
            // for the lanes accessed (trait contract); `vmaskmov` never touches masked-off
            // lanes (no fault, no write).
            #[inline(always)]
            unsafe fn opaque(self) -> Self {
                // SAFETY: avx2 present (trait contract); registers only, no memory access.
                $t(unsafe { $opaque(self.0) })
            }
            #[inline(always)]
            unsafe fn block_splat(self, q: usize) -> Self {
                // SAFETY: avx2 present (trait contract); registers only, no memory access.
                $t(unsafe { $block_splat(self.0, q) })
            }
            #[inline(always)]
            unsafe fn elem_splat(self, e: usize) -> Self {
                // SAFETY: avx2 present (trait contract); registers only, no memory access.
                $t(unsafe { $elem_splat(self.0, e) })
            }
            #[inline(always)]
            unsafe fn zero() -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $setzero() })
            }
            #[inline(always)]
            unsafe fn splat(x: $e) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $set1(x) })
            }
            #[inline(always)]
            unsafe fn load(p: *const $e) -> Self {
                // SAFETY: avx2 and fma present; `p` valid for LANES elements (trait contract).
                $t(unsafe { $loadu(p) })
            }
            #[inline(always)]
            unsafe fn load_part(p: *const $e, n: usize) -> Self {
                // SAFETY: avx2 and fma present; `p` valid for the first `n` lanes (trait
                // contract); masked-off lanes are not accessed.
                $t(unsafe { $maskload(p, $maskfn(n)) })
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $e) {
                // SAFETY: avx2 and fma present; `p` valid for LANES elements (trait contract).
                unsafe { $storeu(p, self.0) }
            }
            #[inline(always)]
            unsafe fn store_part(self, p: *mut $e, n: usize) {
                // SAFETY: avx2 and fma present; `p` valid for the first `n` lanes (trait
                // contract); masked-off lanes are not accessed.
                unsafe { $maskstore(p, $maskfn(n), self.0) }
            }
            #[inline(always)]
            unsafe fn fma(self, b: Self, c: Self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $fmadd(self.0, b.0, c.0) })
            }
            #[inline(always)]
            unsafe fn add(self, b: Self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $add(self.0, b.0) })
            }
            #[inline(always)]
            unsafe fn mul(self, b: Self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $mul(self.0, b.0) })
            }
            #[inline(always)]
            unsafe fn tanh(self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $tanh(self.0) })
            }
            #[inline(always)]
            unsafe fn relu(self) -> Self {
                // max(0, x) returns its second operand when either is NaN: NaN propagates.
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $max($setzero(), self.0) })
            }
            #[inline(always)]
            unsafe fn tanh_deriv(self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $fnmadd(self.0, self.0, $set1(1.0)) })
            }
            #[inline(always)]
            unsafe fn relu_deriv(self) -> Self {
                // SAFETY: avx2 and fma present (trait contract); registers only, no memory access.
                $t(unsafe { $and($cmp::<_CMP_GT_OQ>(self.0, $setzero()), $set1(1.0)) })
            }
        }
    };
}

impl_simd!(
    F32x8,
    f32,
    8,
    mask32,
    tanh_avx2_ps,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_maskload_ps,
    _mm256_storeu_ps,
    _mm256_maskstore_ps,
    _mm256_fmadd_ps,
    _mm256_fnmadd_ps,
    _mm256_add_ps,
    _mm256_mul_ps,
    _mm256_max_ps,
    _mm256_cmp_ps,
    _mm256_and_ps,
    4,
    block_splat_ps,
    elem_splat_ps,
    opaque_ps
);
impl_simd!(
    F64x4,
    f64,
    4,
    mask64,
    tanh_avx2_pd,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_maskload_pd,
    _mm256_storeu_pd,
    _mm256_maskstore_pd,
    _mm256_fmadd_pd,
    _mm256_fnmadd_pd,
    _mm256_add_pd,
    _mm256_mul_pd,
    _mm256_max_pd,
    _mm256_cmp_pd,
    _mm256_and_pd,
    2,
    block_splat_pd,
    elem_splat_pd,
    opaque_pd
);

/// Both 128-bit blocks of `v` set to its block `q` (`q` is a constant once the tile's loop is
/// unrolled, so the `match` leaves one shuffle).
#[inline(always)]
unsafe fn block_splat_ps(v: __m256, q: usize) -> __m256 {
    // SAFETY: avx present (the caller's contract); registers only, no memory access.
    unsafe {
        match q {
            0 => _mm256_permute2f128_ps::<0x00>(v, v),
            _ => _mm256_permute2f128_ps::<0x11>(v, v),
        }
    }
}

/// As [`block_splat_ps`] for `f64`.
#[inline(always)]
unsafe fn block_splat_pd(v: __m256d, q: usize) -> __m256d {
    // SAFETY: avx present (the caller's contract); registers only, no memory access.
    unsafe {
        match q {
            0 => _mm256_permute2f128_pd::<0x00>(v, v),
            _ => _mm256_permute2f128_pd::<0x11>(v, v),
        }
    }
}

/// Element `e` of each 128-bit block of `v` broadcast across that block.
#[inline(always)]
unsafe fn elem_splat_ps(v: __m256, e: usize) -> __m256 {
    // SAFETY: avx present (the caller's contract); registers only, no memory access.
    unsafe {
        match e {
            0 => _mm256_shuffle_ps::<0x00>(v, v),
            1 => _mm256_shuffle_ps::<0x55>(v, v),
            2 => _mm256_shuffle_ps::<0xAA>(v, v),
            _ => _mm256_shuffle_ps::<0xFF>(v, v),
        }
    }
}

/// As [`elem_splat_ps`] for the two `f64` of each block.
#[inline(always)]
unsafe fn elem_splat_pd(v: __m256d, e: usize) -> __m256d {
    // SAFETY: avx present (the caller's contract); registers only, no memory access.
    unsafe {
        match e {
            0 => _mm256_shuffle_pd::<0x0>(v, v),
            _ => _mm256_shuffle_pd::<0xF>(v, v),
        }
    }
}

macro_rules! opaque {
    ($name:ident, $reg:ty) => {
        /// `v` unchanged, through an empty `asm!` block the optimizer cannot see into.
        #[inline]
        #[target_feature(enable = "avx")]
        unsafe fn $name(mut v: $reg) -> $reg {
            // SAFETY: an empty template: no instruction, no memory access, no flags.
            unsafe {
                std::arch::asm!("/* {0} */", inout(ymm_reg) v, options(pure, nomem, nostack))
            };
            v
        }
    };
}
opaque!(opaque_ps, __m256);
opaque!(opaque_pd, __m256d);
