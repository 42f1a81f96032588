//! The AVX2 + FMA path: [`Lanes`] for `__m256` / `__m256d`, the register forms the RNN step
//! kernels inline, and the slice kernels (the tail is copied through a zero-padded stack
//! buffer, so every element goes through the same 8- or 4-lane computation wherever it
//! sits).

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::exp::{exp_f32_body, exp_f64_body};
use super::lanes::Lanes;
use super::sigmoid::{sigmoid_f32_body, sigmoid_f64_body};
use super::tanh::{tanh_f32_body, tanh_f64_body};

/// 8 `f32` lanes. Invariant: a value exists only on a CPU with avx2 and fma.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// 4 `f64` lanes. Invariant: a value exists only on a CPU with avx2 and fma.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

macro_rules! binop {
    ($t:ident, $trait:ident, $method:ident, $intr:ident) => {
        impl $trait for $t {
            type Output = $t;
            #[inline(always)]
            fn $method(self, o: $t) -> $t {
                // SAFETY: avx2 and fma are available: a value of this type exists (invariant).
                $t(unsafe { $intr(self.0, o.0) })
            }
        }
    };
}
binop!(F32x8, Add, add, _mm256_add_ps);
binop!(F32x8, Sub, sub, _mm256_sub_ps);
binop!(F32x8, Mul, mul, _mm256_mul_ps);
binop!(F32x8, Div, div, _mm256_div_ps);
binop!(F64x4, Add, add, _mm256_add_pd);
binop!(F64x4, Sub, sub, _mm256_sub_pd);
binop!(F64x4, Mul, mul, _mm256_mul_pd);
binop!(F64x4, Div, div, _mm256_div_pd);

impl Lanes for F32x8 {
    type Elem = f32;
    const FUSED: bool = true;
    type Mask = __m256;
    #[inline(always)]
    fn splat(self, c: f32) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_set1_ps(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_and_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_or_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256 {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: __m256, if_true: Self, if_false: Self) -> Self {
        // SAFETY: avx2 and fma are available: `if_true` exists (type invariant).
        Self(unsafe { _mm256_blendv_ps(if_false.0, if_true.0, m) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe {
            let k = _mm256_slli_epi32::<23>(_mm256_castps_si256(self.0));
            _mm256_castsi256_ps(_mm256_add_epi32(k, _mm256_set1_epi32(0x3f80_0000)))
        })
    }
    #[inline(always)]
    fn pow2_plus1_of_magic(self, _k: Self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe {
            let k = _mm256_slli_epi32::<23>(_mm256_castps_si256(self.0));
            _mm256_castsi256_ps(_mm256_add_epi32(k, _mm256_set1_epi32(0x4000_0000)))
        })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // `vminps hi, self` gives `hi < self ? hi : self`: the second operand when either is
        // NaN, so a NaN `self` stays.
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_min_ps(hi.0, self.0) })
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        // `vmaxps lo, self` gives `lo > self ? lo : self`: a NaN `self` stays.
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_max_ps(lo.0, self.0) })
    }
}

impl Lanes for F64x4 {
    type Elem = f64;
    const FUSED: bool = true;
    type Mask = __m256d;
    #[inline(always)]
    fn splat(self, c: f64) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_set1_pd(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_and_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_or_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256d {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: __m256d, if_true: Self, if_false: Self) -> Self {
        // SAFETY: avx2 and fma are available: `if_true` exists (type invariant).
        Self(unsafe { _mm256_blendv_pd(if_false.0, if_true.0, m) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe {
            let k = _mm256_slli_epi64::<52>(_mm256_castpd_si256(self.0));
            let one = _mm256_set1_epi64x(0x3ff0_0000_0000_0000);
            _mm256_castsi256_pd(_mm256_add_epi64(k, one))
        })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // `vminpd hi, self`: the second operand when either is NaN.
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_min_pd(hi.0, self.0) })
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        // `vmaxpd lo, self`: the second operand when either is NaN.
        // SAFETY: avx2 and fma are available: `self` exists (type invariant).
        Self(unsafe { _mm256_max_pd(lo.0, self.0) })
    }
}

macro_rules! register_forms {
    ($($(#[$doc:meta])* $name:ident: $reg:ident, $lanes:ident, $body:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        ///
        /// The CPU must support avx2 and fma.
        #[inline(always)]
        pub(crate) unsafe fn $name(x: $reg) -> $reg {
            // The caller's avx2 + fma guarantee is the invariant of the lane type built here.
            $body($lanes(x)).0
        }
    )*};
}

register_forms! {
    /// `tanh` of 8 `f32` lanes (bound [`super::MAX_TANH_F32_ULP`]).
    tanh_avx2_ps: __m256, F32x8, tanh_f32_body;
    /// `tanh` of 4 `f64` lanes (bound [`super::MAX_TANH_F64_ULP`]).
    tanh_avx2_pd: __m256d, F64x4, tanh_f64_body;
    /// `sigmoid` of 8 `f32` lanes (bound [`super::MAX_SIGMOID_F32_ULP`]).
    sigmoid_avx2_ps: __m256, F32x8, sigmoid_f32_body;
    /// `sigmoid` of 4 `f64` lanes (bound [`super::MAX_SIGMOID_F64_ULP`]).
    sigmoid_avx2_pd: __m256d, F64x4, sigmoid_f64_body;
    /// `exp` of 8 `f32` lanes (bound [`super::MAX_EXP_F32_ULP`]).
    exp_avx2_ps: __m256, F32x8, exp_f32_body;
    /// `exp` of 4 `f64` lanes (bound [`super::MAX_EXP_F64_ULP`]).
    exp_avx2_pd: __m256d, F64x4, exp_f64_body;
}

/// Applies `f` to `x` 8 lanes at a time; the tail goes through a zero-padded buffer.
///
/// # Safety
///
/// The CPU must support avx2 and fma.
#[inline(always)]
unsafe fn map_ps(x: &mut [f32], f: impl Fn(__m256) -> __m256) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 8 f32 behind `p` (unaligned access is allowed); avx2 and
        // fma are the caller's contract.
        unsafe { _mm256_storeu_ps(p, f(_mm256_loadu_ps(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f32; 8];
        buf[..rest.len()].copy_from_slice(rest);
        let p = buf.as_mut_ptr();
        // SAFETY: `buf` holds 8 f32 behind `p`; avx2 and fma are the caller's contract.
        unsafe { _mm256_storeu_ps(p, f(_mm256_loadu_ps(p))) }
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

/// Applies `f` to `x` 4 lanes at a time; the tail goes through a zero-padded buffer.
///
/// # Safety
///
/// The CPU must support avx2 and fma.
#[inline(always)]
unsafe fn map_pd(x: &mut [f64], f: impl Fn(__m256d) -> __m256d) {
    let mut chunks = x.chunks_exact_mut(4);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 4 f64 behind `p` (unaligned access is allowed); avx2 and
        // fma are the caller's contract.
        unsafe { _mm256_storeu_pd(p, f(_mm256_loadu_pd(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f64; 4];
        buf[..rest.len()].copy_from_slice(rest);
        let p = buf.as_mut_ptr();
        // SAFETY: `buf` holds 4 f64 behind `p`; avx2 and fma are the caller's contract.
        unsafe { _mm256_storeu_pd(p, f(_mm256_loadu_pd(p))) }
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

macro_rules! slice_kernels {
    ($($name:ident: $elem:ty, $map:ident, $form:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` in place, 256-bit lanes.")]
        ///
        /// # Safety
        ///
        /// The CPU must support avx2 and fma.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn $name(x: &mut [$elem]) {
            // SAFETY: avx2 and fma are this function's contract; the register form needs no
            // more.
            unsafe { $map(x, |v| $form(v)) }
        }
    )*};
}

slice_kernels! {
    tanh_f32: f32, map_ps, tanh_avx2_ps;
    tanh_f64: f64, map_pd, tanh_avx2_pd;
    sigmoid_f32: f32, map_ps, sigmoid_avx2_ps;
    sigmoid_f64: f64, map_pd, sigmoid_avx2_pd;
    exp_f32: f32, map_ps, exp_avx2_ps;
    exp_f64: f64, map_pd, exp_avx2_pd;
}
