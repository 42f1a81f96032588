//! The AVX-512F path: [`Lanes`] for `__m512` / `__m512d`, the register forms the RNN step
//! kernels inline, and the slice kernels (masked loads and stores for the tail, so every
//! element goes through the same 16- or 8-lane computation wherever it sits).

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::exp::{exp_f32_body, exp_f64_body};
use super::lanes::Lanes;
use super::sigmoid::{sigmoid_f32_body, sigmoid_f64_body};
use super::tanh::{tanh_f32_body, tanh_f64_body};

/// 16 `f32` lanes. Invariant: a value exists only on a CPU with avx512f.
#[derive(Clone, Copy)]
pub(crate) struct F32x16(__m512);

/// 8 `f64` lanes. Invariant: a value exists only on a CPU with avx512f.
#[derive(Clone, Copy)]
pub(crate) struct F64x8(__m512d);

macro_rules! binop {
    ($t:ident, $trait:ident, $method:ident, $intr:ident) => {
        impl $trait for $t {
            type Output = $t;
            #[inline(always)]
            fn $method(self, o: $t) -> $t {
                // SAFETY: avx512f is available: a value of this type exists (type invariant).
                $t(unsafe { $intr(self.0, o.0) })
            }
        }
    };
}
binop!(F32x16, Add, add, _mm512_add_ps);
binop!(F32x16, Sub, sub, _mm512_sub_ps);
binop!(F32x16, Mul, mul, _mm512_mul_ps);
binop!(F32x16, Div, div, _mm512_div_ps);
binop!(F64x8, Add, add, _mm512_add_pd);
binop!(F64x8, Sub, sub, _mm512_sub_pd);
binop!(F64x8, Mul, mul, _mm512_mul_pd);
binop!(F64x8, Div, div, _mm512_div_pd);

impl Lanes for F32x16 {
    type Elem = f32;
    const FUSED: bool = true;
    type Mask = __mmask16;
    #[inline(always)]
    fn splat(self, c: f32) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_set1_ps(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_abs_ps(self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let bits = _mm512_castps_si512(self.0);
            _mm512_castsi512_ps(_mm512_and_si512(bits, _mm512_set1_epi32(i32::MIN)))
        })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let (a, b) = (_mm512_castps_si512(self.0), _mm512_castps_si512(o.0));
            _mm512_castsi512_ps(_mm512_or_si512(a, b))
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask16 {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: __mmask16, if_true: Self, if_false: Self) -> Self {
        // SAFETY: avx512f is available: `if_true` exists (type invariant).
        Self(unsafe { _mm512_mask_blend_ps(m, if_false.0, if_true.0) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let k = _mm512_slli_epi32::<23>(_mm512_castps_si512(self.0));
            _mm512_castsi512_ps(_mm512_add_epi32(k, _mm512_set1_epi32(0x3f80_0000)))
        })
    }
    #[inline(always)]
    fn pow2_plus1_of_magic(self, k: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_scalef_ps(_mm512_set1_ps(2.0), k.0) })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // `vminps hi, self` gives `hi < self ? hi : self`: the second operand when either is
        // NaN, so a NaN `self` stays.
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_min_ps(hi.0, self.0) })
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        // `vmaxps lo, self` gives `lo > self ? lo : self`: a NaN `self` stays.
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_max_ps(lo.0, self.0) })
    }
    #[inline(always)]
    fn scale_pow2(self, k: Self) -> Option<Self> {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Some(Self(unsafe { _mm512_scalef_ps(self.0, k.0) }))
    }
    #[inline(always)]
    fn with_sign_of(self, x: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let (y, x) = (_mm512_castps_si512(self.0), _mm512_castps_si512(x.0));
            // 0xCA: `mask ? x : y` bit by bit, with the mask the sign bit.
            let m = _mm512_set1_epi32(i32::MIN);
            _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xCA>(m, x, y))
        })
    }
}

impl Lanes for F64x8 {
    type Elem = f64;
    const FUSED: bool = true;
    type Mask = __mmask8;
    #[inline(always)]
    fn splat(self, c: f64) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_set1_pd(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_fmadd_pd(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_abs_pd(self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let bits = _mm512_castpd_si512(self.0);
            _mm512_castsi512_pd(_mm512_and_si512(bits, _mm512_set1_epi64(i64::MIN)))
        })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let (a, b) = (_mm512_castpd_si512(self.0), _mm512_castpd_si512(o.0));
            _mm512_castsi512_pd(_mm512_or_si512(a, b))
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask8 {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: __mmask8, if_true: Self, if_false: Self) -> Self {
        // SAFETY: avx512f is available: `if_true` exists (type invariant).
        Self(unsafe { _mm512_mask_blend_pd(m, if_false.0, if_true.0) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe {
            let k = _mm512_slli_epi64::<52>(_mm512_castpd_si512(self.0));
            let one = _mm512_set1_epi64(0x3ff0_0000_0000_0000);
            _mm512_castsi512_pd(_mm512_add_epi64(k, one))
        })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // `vminpd hi, self`: the second operand when either is NaN (see the f32 form).
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_min_pd(hi.0, self.0) })
    }
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        // `vmaxpd lo, self` gives `lo > self ? lo : self`: a NaN `self` stays.
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Self(unsafe { _mm512_max_pd(lo.0, self.0) })
    }
    #[inline(always)]
    fn scale_pow2(self, k: Self) -> Option<Self> {
        // SAFETY: avx512f is available: `self` exists (type invariant).
        Some(Self(unsafe { _mm512_scalef_pd(self.0, k.0) }))
    }
}

macro_rules! register_forms {
    ($($(#[$doc:meta])* $name:ident: $reg:ident, $lanes:ident, $body:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        ///
        /// The CPU must support avx512f.
        #[inline(always)]
        pub(crate) unsafe fn $name(x: $reg) -> $reg {
            // The caller's avx512f guarantee is the invariant of the lane type built here.
            $body($lanes(x)).0
        }
    )*};
}

register_forms! {
    /// `tanh` of 16 `f32` lanes (bound [`super::MAX_TANH_F32_ULP`]).
    tanh_avx512_ps: __m512, F32x16, tanh_f32_body;
    /// `tanh` of 8 `f64` lanes (bound [`super::MAX_TANH_F64_ULP`]).
    tanh_avx512_pd: __m512d, F64x8, tanh_f64_body;
    /// `sigmoid` of 16 `f32` lanes (bound [`super::MAX_SIGMOID_F32_ULP`]).
    sigmoid_avx512_ps: __m512, F32x16, sigmoid_f32_body;
    /// `sigmoid` of 8 `f64` lanes (bound [`super::MAX_SIGMOID_F64_ULP`]).
    sigmoid_avx512_pd: __m512d, F64x8, sigmoid_f64_body;
    /// `exp` of 16 `f32` lanes (bound [`super::MAX_EXP_F32_ULP`]).
    exp_avx512_ps: __m512, F32x16, exp_f32_body;
    /// `exp` of 8 `f64` lanes (bound [`super::MAX_EXP_F64_ULP`]).
    exp_avx512_pd: __m512d, F64x8, exp_f64_body;
}

/// Applies `f` to `x` 16 lanes at a time; the tail goes through a masked load and store.
///
/// # Safety
///
/// The CPU must support avx512f.
#[inline(always)]
unsafe fn map_ps(x: &mut [f32], f: impl Fn(__m512) -> __m512) {
    let mut chunks = x.chunks_exact_mut(16);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 16 f32 behind `p` (unaligned access is allowed); avx512f
        // is the caller's contract.
        unsafe { _mm512_storeu_ps(p, f(_mm512_loadu_ps(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let m: __mmask16 = (1u16 << rest.len()) - 1;
        let p = rest.as_mut_ptr();
        // SAFETY: the mask enables only the first `rest.len()` (< 16) lanes, all inside
        // `rest`; masked-off lanes are neither read nor written. avx512f by the caller.
        unsafe { _mm512_mask_storeu_ps(p, m, f(_mm512_maskz_loadu_ps(m, p))) }
    }
}

/// Applies `f` to `x` 8 lanes at a time; the tail goes through a masked load and store.
///
/// # Safety
///
/// The CPU must support avx512f.
#[inline(always)]
unsafe fn map_pd(x: &mut [f64], f: impl Fn(__m512d) -> __m512d) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 8 f64 behind `p` (unaligned access is allowed); avx512f
        // is the caller's contract.
        unsafe { _mm512_storeu_pd(p, f(_mm512_loadu_pd(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let m: __mmask8 = (1u8 << rest.len()) - 1;
        let p = rest.as_mut_ptr();
        // SAFETY: the mask enables only the first `rest.len()` (< 8) lanes, all inside
        // `rest`; masked-off lanes are neither read nor written. avx512f by the caller.
        unsafe { _mm512_mask_storeu_pd(p, m, f(_mm512_maskz_loadu_pd(m, p))) }
    }
}

macro_rules! slice_kernels {
    ($($name:ident: $elem:ty, $map:ident, $form:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` in place, 512-bit lanes.")]
        ///
        /// # Safety
        ///
        /// The CPU must support avx512f.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn $name(x: &mut [$elem]) {
            // SAFETY: avx512f is this function's contract; the register form needs no more.
            unsafe { $map(x, |v| $form(v)) }
        }
    )*};
}

slice_kernels! {
    tanh_f32: f32, map_ps, tanh_avx512_ps;
    tanh_f64: f64, map_pd, tanh_avx512_pd;
    sigmoid_f32: f32, map_ps, sigmoid_avx512_ps;
    sigmoid_f64: f64, map_pd, sigmoid_avx512_pd;
    exp_f32: f32, map_ps, exp_avx512_ps;
    exp_f64: f64, map_pd, exp_avx512_pd;
}
