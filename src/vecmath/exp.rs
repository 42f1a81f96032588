//! `exp` for `f32` and `f64`.
//!
//! # Method
//!
//! Classic range reduction in the style of Cody and Waite, as used by vector math libraries
//! such as Sleef or rten: `x = k·ln2 + r` with `k = round(x·log2(e))` obtained by adding a
//! "magic" constant 1.5·2^23 (1.5·2^52 for `f64`) so that the rounding of the addition is the
//! rounding to an integer, and `r = x - k·ln2_hi - k·ln2_lo` with `ln2` split in two parts
//! whose high part has enough trailing zero bits for `k·ln2_hi` to be exact. Then
//! `exp(r) = 1 + r + r²·P(r)` on `|r| <= ln2/2`, where `P` is a near-minimax polynomial
//! (Chebyshev fit computed for this crate) of degree 4 for `f32` (degree 6 overall) and 9 for
//! `f64` (degree 11 overall). Finally `2^k` is built by shifting the integer `k` into the
//! exponent field. To get overflow and gradual underflow right with one rounding, `2^k` is
//! applied as two factors `2^floor(k/2)·2^ceil(k/2)`, each a normal number. On AVX-512 the same
//! single rounding comes from one `vscalefps` (`p·2^k`), which gave bit-identical results over
//! all 2^32 inputs and takes 1 operation instead of about 9.
//!
//! The input is first clamped (with a `min` and a `max` in the operand order that keeps NaN, or
//! compares and selects where no such order exists) to
//! `[-104, 89]` (`f32`) or `[-746, 710]` (`f64`); both ends already give `0` and `+inf`.
//!
//! # Bounds
//!
//! Ulps are measured as in [`super::ulp`]. `f32`: at most [`MAX_EXP_F32_ULP`] ulp over all
//! 2^32 inputs against `f64` `exp` rounded to `f32` (checked exhaustively by
//! `examples/tanh_accuracy.rs`), including subnormal results (the ulp there is the subnormal
//! spacing 2^-149); results that round to `+inf` in `f32` give `+inf`; `exp(-inf) = +0`,
//! `exp(+inf) = +inf`, NaN gives NaN. `f64`: at most [`MAX_EXP_F64_ULP`] ulp against std's
//! `f64::exp` (itself within about 1 ulp), measured on sampled inputs by the tests.

use super::lanes::{Lanes, clamp_keep_nan, horner};
use super::portable;
use crate::{Isa, Result};

/// Bound of [`exp_f32`] in ulps of `f32` (see the module docs).
pub const MAX_EXP_F32_ULP: f64 = 1.5;
/// Bound of [`exp_f64`] in ulps of `f64` against std's `f64::exp`.
pub const MAX_EXP_F64_ULP: f64 = 2.0;

pub(crate) const MAGIC_F32: f32 = 12_582_912.0; // 1.5 * 2^23
pub(crate) const MAGIC_F64: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
const LN2_HI_F32: f32 = 0.693_145_75; // 16 significant bits
const LN2_LO_F32: f32 = 1.428_606_8e-6;
const LN2_HI_F64: f64 = 0.693_147_180_601_954_5; // 32 significant bits
const LN2_LO_F64: f64 = -4.200_915_072_681_084_6e-11;
/// `P(r) = (exp(r) - 1 - r) / r²` on `|r| <= 0.3467`, lowest degree first.
const P_F32: [f32; 5] = [
    5.0e-1,
    1.666_657_6e-1,
    4.166_655_6e-2,
    8.363_195e-3,
    1.392_620_4e-3,
];
/// `P_F32[i]·2^(i+1)` (exact scalings): Horner on `r/2` with these is `2·P(r)`, step for step.
const P_HALF_F32: [f32; 5] = [
    P_F32[0] * 2.0,
    P_F32[1] * 4.0,
    P_F32[2] * 8.0,
    P_F32[3] * 16.0,
    P_F32[4] * 32.0,
];
const P_F64: [f64; 10] = [
    0.500_000_000_000_000_1,
    0.166_666_666_666_666_69,
    0.041_666_666_666_624_04,
    0.008_333_333_333_330_055,
    0.001_388_888_891_725_875_9,
    0.000_198_412_698_630_882_55,
    2.480_152_122_598_643_2e-5,
    2.755_726_840_619_079_5e-6,
    2.762_012_171_738_193_3e-7,
    2.510_041_108_201_49e-8,
];

/// Reduced `exp` for `f32`: returns `(exp(r), k + MAGIC)` with `x = k·ln2 + r`. Valid for
/// `|x| <= 150` or so; NaN in gives NaN in the first part.
#[inline(always)]
pub(crate) fn exp_reduced_f32<V: Lanes<Elem = f32>>(x: V) -> (V, V) {
    let (em1, t) = expm1_reduced_f32(x);
    (em1 + x.splat(1.0), t)
}

/// As [`exp_reduced_f32`] but returns `exp(r) - 1 = r + r²·P(r)`, accurate relative to itself
/// (no cancellation: it is never formed from `exp(r)`).
#[inline(always)]
pub(crate) fn expm1_reduced_f32<V: Lanes<Elem = f32>>(x: V) -> (V, V) {
    let t = x.mul_add(x.splat(std::f32::consts::LOG2_E), x.splat(MAGIC_F32));
    let k = t - x.splat(MAGIC_F32);
    let r = k.mul_add(x.splat(-LN2_HI_F32), x);
    let r = k.mul_add(x.splat(-LN2_LO_F32), r);
    let p = horner(r, &P_F32);
    ((r * r).mul_add(p, r), t)
}

/// `expm1` of `2a` on halves, for `tanh`: returns `(expm1(r)/2, k + MAGIC, k)` with `2a = k·ln2
/// + r`. The same roundings as [`expm1_reduced_f32`] of `2a`, each result halved exactly:
/// `h = a - k·ln2/2` is `r/2` (the split constants halved), and Horner on `h` with `P`'s
/// coefficients times `2^(i+1)` gives `2·P(r)` step for step.
#[inline(always)]
pub(crate) fn expm1_half_reduced_f32<V: Lanes<Elem = f32>>(a: V) -> (V, V, V) {
    let t = a.mul_add(a.splat(2.0 * std::f32::consts::LOG2_E), a.splat(MAGIC_F32));
    let k = t - a.splat(MAGIC_F32);
    let h = k.mul_add(a.splat(-0.5 * LN2_HI_F32), a);
    let h = k.mul_add(a.splat(-0.5 * LN2_LO_F32), h);
    let p = horner(h, &P_HALF_F32);
    ((h * h).mul_add(p, h), t, k)
}

/// Reduced `exp` for `f64`, as [`exp_reduced_f32`].
#[inline(always)]
pub(crate) fn exp_reduced_f64<V: Lanes<Elem = f64>>(x: V) -> (V, V) {
    let t = x.mul_add(x.splat(std::f64::consts::LOG2_E), x.splat(MAGIC_F64));
    let k = t - x.splat(MAGIC_F64);
    let r = k.mul_add(x.splat(-LN2_HI_F64), x);
    let r = k.mul_add(x.splat(-LN2_LO_F64), r);
    let p = horner(r, &P_F64);
    ((r * r).mul_add(p, r) + x.splat(1.0), t)
}

/// Multiplies `p` by `2^k` given `t = k + magic`, as two normal factors so that a subnormal
/// or overflowing result is rounded once.
#[inline(always)]
fn scale_twice<V: Lanes>(p: V, t: V, magic: V::Elem, half: V::Elem, quarter: V::Elem) -> V {
    let magic = p.splat(magic);
    let k = t - magic;
    // floor(k/2): k/2 - 1/4 is exact and rounds to floor(k/2) for even and odd k.
    let t1 = k.mul_add(p.splat(half), p.splat(quarter)) + magic;
    let k2 = k - (t1 - magic);
    let t2 = k2 + magic;
    p * t1.pow2_of_magic() * t2.pow2_of_magic()
}

/// `exp` of every lane, `f32`.
#[inline(always)]
pub(crate) fn exp_f32_body<V: Lanes<Elem = f32>>(x: V) -> V {
    let x = clamp_keep_nan(x, -104.0, 89.0);
    let (p, t) = exp_reduced_f32(x);
    // One rounding either way: vscalef rounds p·2^k once, the two factors do too.
    match p.scale_pow2(t - x.splat(MAGIC_F32)) {
        Some(y) => y,
        None => scale_twice(p, t, MAGIC_F32, 0.5, -0.25),
    }
}

/// `exp` of every lane, `f64`.
#[inline(always)]
pub(crate) fn exp_f64_body<V: Lanes<Elem = f64>>(x: V) -> V {
    let x = clamp_keep_nan(x, -746.0, 710.0);
    let (p, t) = exp_reduced_f64(x);
    match p.scale_pow2(t - x.splat(MAGIC_F64)) {
        Some(y) => y,
        None => scale_twice(p, t, MAGIC_F64, 0.5, -0.25),
    }
}

/// Portable scalar `exp` for `f32` (the portable path's tail form).
#[inline(always)]
pub fn exp_scalar_f32(x: f32) -> f32 {
    exp_f32_body(x)
}

/// Portable scalar `exp` for `f64` (the portable path's tail form).
#[inline(always)]
pub fn exp_scalar_f64(x: f64) -> f64 {
    exp_f64_body(x)
}

/// `x[i] = exp(x[i])` in place on the best path ([`Isa::detect`]).
pub fn exp_f32(x: &mut [f32]) {
    if exp_f32_with(Isa::detect(), x).is_err() {
        portable::exp_f32(x);
    }
}

/// `x[i] = exp(x[i])` in place on the best path ([`Isa::detect`]).
pub fn exp_f64(x: &mut [f64]) {
    if exp_f64_with(Isa::detect(), x).is_err() {
        portable::exp_f64(x);
    }
}

/// `x[i] = exp(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn exp_f32_with(isa: Isa, x: &mut [f32]) -> Result<()> {
    super::dispatch!(isa, exp_f32, x)
}

/// `x[i] = exp(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn exp_f64_with(isa: Isa, x: &mut [f64]) -> Result<()> {
    super::dispatch!(isa, exp_f64, x)
}
