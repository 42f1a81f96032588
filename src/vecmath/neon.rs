//! The aarch64 NEON path: [`Lanes`] for `float32x4_t` / `float64x2_t`, register forms, and
//! slice kernels (tails through a zero-padded stack buffer, so every element goes through
//! the same 4- or 2-lane computation wherever it sits).

use std::arch::aarch64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::exp::{exp_f32_body, exp_f64_body};
use super::lanes::Lanes;
use super::sigmoid::{sigmoid_f32_body, sigmoid_f64_body};
use super::tanh::{tanh_f32_body, tanh_f64_body};

/// 4 `f32` lanes. Invariant: a value exists only on a CPU with neon.
#[derive(Clone, Copy)]
pub(crate) struct F32x4(float32x4_t);

/// 2 `f64` lanes. Invariant: a value exists only on a CPU with neon.
#[derive(Clone, Copy)]
pub(crate) struct F64x2(float64x2_t);

macro_rules! binop {
    ($t:ident, $trait:ident, $method:ident, $intr:ident) => {
        impl $trait for $t {
            type Output = $t;
            #[inline(always)]
            fn $method(self, o: $t) -> $t {
                // SAFETY: neon is available: a value of this type exists (type invariant).
                $t(unsafe { $intr(self.0, o.0) })
            }
        }
    };
}
binop!(F32x4, Add, add, vaddq_f32);
binop!(F32x4, Sub, sub, vsubq_f32);
binop!(F32x4, Mul, mul, vmulq_f32);
binop!(F32x4, Div, div, vdivq_f32);
binop!(F64x2, Add, add, vaddq_f64);
binop!(F64x2, Sub, sub, vsubq_f64);
binop!(F64x2, Mul, mul, vmulq_f64);
binop!(F64x2, Div, div, vdivq_f64);

impl Lanes for F32x4 {
    type Elem = f32;
    const FUSED: bool = true;
    type Mask = uint32x4_t;
    #[inline(always)]
    fn splat(self, c: f32) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe { vdupq_n_f32(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant). vfmaq(c, a, b) = c + a·b.
        Self(unsafe { vfmaq_f32(c.0, self.0, b.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe { vabsq_f32(self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let bits = vandq_u32(vreinterpretq_u32_f32(self.0), vdupq_n_u32(0x8000_0000));
            vreinterpretq_f32_u32(bits)
        })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let bits = vorrq_u32(vreinterpretq_u32_f32(self.0), vreinterpretq_u32_f32(o.0));
            vreinterpretq_f32_u32(bits)
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> uint32x4_t {
        // SAFETY: neon is available: `self` exists (type invariant).
        unsafe { vcltq_f32(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: uint32x4_t, if_true: Self, if_false: Self) -> Self {
        // SAFETY: neon is available: `if_true` exists (type invariant).
        Self(unsafe { vbslq_f32(m, if_true.0, if_false.0) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let k = vshlq_n_u32::<23>(vreinterpretq_u32_f32(self.0));
            vreinterpretq_f32_u32(vaddq_u32(k, vdupq_n_u32(0x3f80_0000)))
        })
    }
    #[inline(always)]
    fn pow2_plus1_of_magic(self, _k: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let k = vshlq_n_u32::<23>(vreinterpretq_u32_f32(self.0));
            vreinterpretq_f32_u32(vaddq_u32(k, vdupq_n_u32(0x4000_0000)))
        })
    }
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        // `fmin` returns NaN when either operand is NaN, so a NaN `self` stays.
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe { vminq_f32(self.0, hi.0) })
    }
    #[inline(always)]
    fn with_sign_of(self, x: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let m = vdupq_n_u32(0x8000_0000);
            let (x, y) = (vreinterpretq_u32_f32(x.0), vreinterpretq_u32_f32(self.0));
            vreinterpretq_f32_u32(vbslq_u32(m, x, y))
        })
    }
}

impl Lanes for F64x2 {
    type Elem = f64;
    const FUSED: bool = true;
    type Mask = uint64x2_t;
    #[inline(always)]
    fn splat(self, c: f64) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe { vdupq_n_f64(c) })
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant). vfmaq(c, a, b) = c + a·b.
        Self(unsafe { vfmaq_f64(c.0, self.0, b.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe { vabsq_f64(self.0) })
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let sign = vdupq_n_u64(0x8000_0000_0000_0000);
            vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(self.0), sign))
        })
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let bits = vorrq_u64(vreinterpretq_u64_f64(self.0), vreinterpretq_u64_f64(o.0));
            vreinterpretq_f64_u64(bits)
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> uint64x2_t {
        // SAFETY: neon is available: `self` exists (type invariant).
        unsafe { vcltq_f64(self.0, o.0) }
    }
    #[inline(always)]
    fn select(m: uint64x2_t, if_true: Self, if_false: Self) -> Self {
        // SAFETY: neon is available: `if_true` exists (type invariant).
        Self(unsafe { vbslq_f64(m, if_true.0, if_false.0) })
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        // SAFETY: neon is available: `self` exists (type invariant).
        Self(unsafe {
            let k = vshlq_n_u64::<52>(vreinterpretq_u64_f64(self.0));
            vreinterpretq_f64_u64(vaddq_u64(k, vdupq_n_u64(0x3ff0_0000_0000_0000)))
        })
    }
}

macro_rules! register_forms {
    ($($(#[$doc:meta])* $name:ident: $reg:ident, $lanes:ident, $body:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        ///
        /// The CPU must support neon.
        #[inline(always)]
        pub(crate) unsafe fn $name(x: $reg) -> $reg {
            // The caller's neon guarantee is the invariant of the lane type built here.
            $body($lanes(x)).0
        }
    )*};
}

register_forms! {
    /// `tanh` of 4 `f32` lanes.
    tanh_neon_ps: float32x4_t, F32x4, tanh_f32_body;
    /// `tanh` of 2 `f64` lanes.
    tanh_neon_pd: float64x2_t, F64x2, tanh_f64_body;
    /// `sigmoid` of 4 `f32` lanes.
    sigmoid_neon_ps: float32x4_t, F32x4, sigmoid_f32_body;
    /// `sigmoid` of 2 `f64` lanes.
    sigmoid_neon_pd: float64x2_t, F64x2, sigmoid_f64_body;
    /// `exp` of 4 `f32` lanes.
    exp_neon_ps: float32x4_t, F32x4, exp_f32_body;
    /// `exp` of 2 `f64` lanes.
    exp_neon_pd: float64x2_t, F64x2, exp_f64_body;
}

/// Applies `f` to `x` 4 lanes at a time; the tail goes through a zero-padded buffer.
///
/// # Safety
///
/// The CPU must support neon.
#[inline(always)]
unsafe fn map_ps(x: &mut [f32], f: impl Fn(float32x4_t) -> float32x4_t) {
    let mut chunks = x.chunks_exact_mut(4);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 4 f32 behind `p`; neon is the caller's contract.
        unsafe { vst1q_f32(p, f(vld1q_f32(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f32; 4];
        buf[..rest.len()].copy_from_slice(rest);
        let p = buf.as_mut_ptr();
        // SAFETY: `buf` holds 4 f32 behind `p`; neon is the caller's contract.
        unsafe { vst1q_f32(p, f(vld1q_f32(p))) }
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

/// Applies `f` to `x` 2 lanes at a time; the tail goes through a zero-padded buffer.
///
/// # Safety
///
/// The CPU must support neon.
#[inline(always)]
unsafe fn map_pd(x: &mut [f64], f: impl Fn(float64x2_t) -> float64x2_t) {
    let mut chunks = x.chunks_exact_mut(2);
    for c in &mut chunks {
        let p = c.as_mut_ptr();
        // SAFETY: `c` holds exactly 2 f64 behind `p`; neon is the caller's contract.
        unsafe { vst1q_f64(p, f(vld1q_f64(p))) }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut buf = [0.0f64; 2];
        buf[..rest.len()].copy_from_slice(rest);
        let p = buf.as_mut_ptr();
        // SAFETY: `buf` holds 2 f64 behind `p`; neon is the caller's contract.
        unsafe { vst1q_f64(p, f(vld1q_f64(p))) }
        rest.copy_from_slice(&buf[..rest.len()]);
    }
}

macro_rules! slice_kernels {
    ($($name:ident: $elem:ty, $map:ident, $form:ident;)*) => {$(
        #[doc = concat!("`", stringify!($name), "` in place, 128-bit lanes.")]
        ///
        /// # Safety
        ///
        /// The CPU must support neon.
        #[target_feature(enable = "neon")]
        pub(crate) unsafe fn $name(x: &mut [$elem]) {
            // SAFETY: neon is this function's contract; the register form needs no more.
            unsafe { $map(x, |v| $form(v)) }
        }
    )*};
}

slice_kernels! {
    tanh_f32: f32, map_ps, tanh_neon_ps;
    tanh_f64: f64, map_pd, tanh_neon_pd;
    sigmoid_f32: f32, map_ps, sigmoid_neon_ps;
    sigmoid_f64: f64, map_pd, sigmoid_neon_pd;
    exp_f32: f32, map_ps, exp_neon_ps;
    exp_f64: f64, map_pd, exp_neon_pd;
}
