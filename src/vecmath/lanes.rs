//! The lane abstraction the math bodies are written against.
//!
//! Each function (`tanh`, `sigmoid`, `exp`) is written once, as an `#[inline(always)]` generic
//! body over [`Lanes`]. Each instruction-set path implements [`Lanes`] for its register type
//! (`__m512`, `__m256`, `float32x4_t`, `wide::f32x8`, plain `f32`, and the `f64` twins) and
//! instantiates the bodies inside its own `#[target_feature]` kernels, so the selection of a
//! path happens once per call of a public function and never per element.
//!
//! Every operation is lane-wise and the same on every path except `mul_add`, which is fused
//! on the SIMD paths (they all require FMA) and a separate multiply and add on the portable
//! path (an unfused `f32::mul_add` would be a slow libm call there). So the portable vector
//! path and the portable scalar forms give bit-identical results, and each SIMD path gives
//! one result per input whatever its position in a slice.

use std::ops::{Add, Div, Mul, Sub};

/// A register of `Self::Elem` lanes (or one scalar).
///
/// For the SIMD register types, holding a value is the proof that the CPU has the features
/// of its path: their constructors are `unsafe` with that precondition, so the methods here
/// can be safe.
pub(crate) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// `f32` or `f64`.
    type Elem: Copy;
    /// Whether [`Lanes::mul_add`] rounds once (a fused multiply-add).
    const FUSED: bool;
    /// The result of a comparison, as consumed by [`Lanes::select`].
    type Mask: Copy;
    /// A register of the same type with every lane set to `c`.
    fn splat(self, c: Self::Elem) -> Self;
    /// `self * b + c`, fused on the SIMD paths, two roundings on the portable path.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Clears the sign bits (a bit operation: NaN stays NaN).
    fn abs(self) -> Self;
    /// Keeps only the sign bits (`+0.0` or `-0.0` per lane).
    fn sign_bit(self) -> Self;
    /// Bitwise or.
    fn or_bits(self, o: Self) -> Self;
    /// Ordered `self < o`: false when either lane is NaN.
    fn lt(self, o: Self) -> Self::Mask;
    /// Per lane `if m { if_true } else { if_false }`.
    fn select(m: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// For `self = k + MAGIC` (`MAGIC` = 1.5·2^23 for `f32`, 1.5·2^52 for `f64`) with an
    /// integer `k` in the normal exponent range, returns `2^k` by shifting the low bits of
    /// `self` into the exponent field.
    fn pow2_of_magic(self) -> Self;
    /// `2^(k + 1)` for `self = k + MAGIC` as in [`Lanes::pow2_of_magic`], given `k` too (as
    /// a float): the paths that can scale by a float exponent in one instruction (AVX-512's
    /// `vscalefps`) use `k`, the others shift `self` with the exponent bias plus one.
    #[inline(always)]
    fn pow2_plus1_of_magic(self, k: Self) -> Self {
        let _ = k;
        let s = self.pow2_of_magic();
        s + s
    }
    /// `min(self, hi)` where a NaN `self` stays NaN (`hi` is a number): `self` unless
    /// `hi < self`. One instruction where the path's `min` returns its second operand when
    /// either is NaN (x86), a compare and a select elsewhere.
    #[inline(always)]
    fn at_most(self, hi: Self) -> Self {
        Self::select(hi.lt(self), hi, self)
    }
    /// `max(self, lo)` where a NaN `self` stays NaN (`lo` is a number): `self` unless
    /// `self < lo`, as [`Lanes::at_most`].
    #[inline(always)]
    fn at_least(self, lo: Self) -> Self {
        Self::select(self.lt(lo), lo, self)
    }
    /// `self·2^k` for integer-valued `k`, rounded once, where the path has an instruction for
    /// it (AVX-512's `vscalef`); `None` elsewhere (the caller then scales in steps).
    #[inline(always)]
    fn scale_pow2(self, k: Self) -> Option<Self> {
        let _ = k;
        None
    }
    /// `self` (whose sign bit is clear) with the sign bit of `x`: one bit-select where the
    /// path has a ternary logic instruction, else an and and an or.
    #[inline(always)]
    fn with_sign_of(self, x: Self) -> Self {
        self.or_bits(x.sign_bit())
    }
}

/// Horner evaluation of `c[0] + x·c[1] + x²·c[2] + …`.
#[inline(always)]
pub(crate) fn horner<V: Lanes, const N: usize>(x: V, c: &[V::Elem; N]) -> V {
    let mut acc = x.splat(c[N - 1]);
    let mut i = N - 1;
    while i > 0 {
        i -= 1;
        acc = acc.mul_add(x, x.splat(c[i]));
    }
    acc
}

/// Clamps to `[lo, hi]` so that NaN stays NaN (a min/max instruction may turn NaN into the
/// bound, depending on operand order: [`Lanes::at_least`] and [`Lanes::at_most`] pick the
/// order, or compare and select).
#[inline(always)]
pub(crate) fn clamp_keep_nan<V: Lanes>(x: V, lo: V::Elem, hi: V::Elem) -> V {
    x.at_least(x.splat(lo)).at_most(x.splat(hi))
}

impl Lanes for f32 {
    type Elem = f32;
    const FUSED: bool = false;
    type Mask = bool;
    #[inline(always)]
    fn splat(self, c: f32) -> f32 {
        c
    }
    #[inline(always)]
    fn mul_add(self, b: f32, c: f32) -> f32 {
        self * b + c
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::from_bits(self.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    fn sign_bit(self) -> f32 {
        f32::from_bits(self.to_bits() & 0x8000_0000)
    }
    #[inline(always)]
    fn or_bits(self, o: f32) -> f32 {
        f32::from_bits(self.to_bits() | o.to_bits())
    }
    #[inline(always)]
    fn lt(self, o: f32) -> bool {
        self < o
    }
    #[inline(always)]
    fn select(m: bool, if_true: f32, if_false: f32) -> f32 {
        if m { if_true } else { if_false }
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> f32 {
        f32::from_bits((self.to_bits() << 23).wrapping_add(0x3f80_0000))
    }
}

impl Lanes for f64 {
    type Elem = f64;
    const FUSED: bool = false;
    type Mask = bool;
    #[inline(always)]
    fn splat(self, c: f64) -> f64 {
        c
    }
    #[inline(always)]
    fn mul_add(self, b: f64, c: f64) -> f64 {
        self * b + c
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::from_bits(self.to_bits() & 0x7fff_ffff_ffff_ffff)
    }
    #[inline(always)]
    fn sign_bit(self) -> f64 {
        f64::from_bits(self.to_bits() & 0x8000_0000_0000_0000)
    }
    #[inline(always)]
    fn or_bits(self, o: f64) -> f64 {
        f64::from_bits(self.to_bits() | o.to_bits())
    }
    #[inline(always)]
    fn lt(self, o: f64) -> bool {
        self < o
    }
    #[inline(always)]
    fn select(m: bool, if_true: f64, if_false: f64) -> f64 {
        if m { if_true } else { if_false }
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> f64 {
        f64::from_bits((self.to_bits() << 52).wrapping_add(0x3ff0_0000_0000_0000))
    }
}
