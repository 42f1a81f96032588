//! `tanh` for `f32` and `f64`.
//!
//! # Method
//!
//! Work on `a = |x|` and copy the sign of `x` back with a bit operation at the end, so
//! `tanh(-x) = -tanh(x)` bit for bit, `tanh(-0) = -0` and NaN stays NaN. Beyond `SAT` (9.1
//! for `f32`, 19.5 for `f64`, where `tanh` rounds to 1) and for infinity the result is exactly
//! 1, chosen with an ordered compare (the two-branch form) or by clamping to `SAT` with a NaN
//! keeping `min` (the one-formula form), so a NaN lane keeps its NaN.
//!
//! **`f32` on the paths with a fused multiply-add** (AVX-512, AVX2+FMA, NEON): one formula,
//! `tanh(a) = q / (q + 2)` with `q = expm1(2a)`. `expm1` uses the reduction of
//! [`super::exp`] (`2a = k·ln2 + r`, `|r| <= ln2/2`) and `expm1(2a) = 2^k·expm1(r) + (2^k - 1)`
//! with `expm1(r) = r + r²·P(r)` formed directly (never as `exp(r) - 1`, so it is accurate
//! relative to itself for small `r`) and `2^k - 1` exact; `q >= 0`, so `q / (q + 2)` lies in
//! `[0, 1]`. For tiny and subnormal `a`, `q = 2a` and `q + 2` rounds to 2: the result is
//! exactly `a`. It is evaluated on halves (`r/2` reduced from `a` itself, `2^(k+1)` as one
//! factor), which moves no rounding: the results are bit for bit those of the same formula on
//! full values (compared over all 2^32 inputs on AVX-512 and AVX2), in 19 vector operations and
//! one division per register on AVX-512 (23 on full values; about 40 for the two-branch form,
//! which computes both branches for every lane). Beyond `SAT` the input is clamped to `SAT`
//! with a `min` whose NaN rule keeps a NaN lane, and the formula gives exactly 1 there. `cargo
//! bench --bench vecmath -- '^tanh/avx512/1024$'` (AVX-512, 1 Ki elements): two-branch 2.0,
//! full values 2.7-2.9; full values 2.76-2.93 against halves 2.83-3.10 in four alternating
//! runs of both builds. Its error is
//! larger (2 ulp at worst against 1) but inside the bound. Without a fused multiply-add the
//! same formula reaches 3 ulp (measured over all inputs), so the portable path keeps:
//!
//! **The two-branch form** (`f64` everywhere, `f32` on the portable path):
//!
//! * `a < 0.625`: `tanh(a) = a + a·s·Q(s)` with `s = a²` and `Q` a near-minimax polynomial
//!   (Chebyshev fit computed for this crate, degree 5 for `f32`, 11 for `f64`) of
//!   `(tanh(a) - a)/a³`. For tiny and subnormal `a` the correction underflows and the
//!   result is exactly `a`.
//! * `0.625 <= a <= SAT`: `tanh(a) = 1 - 2/(exp(2a) + 1)` with the range-reduced `exp` of
//!   [`super::exp`] (Cody-Waite reduction by ln2, polynomial, `2^k` through the exponent
//!   bits). The subtraction is from 1 and `2/(e + 1) >= 0`, so the result never exceeds 1.
//!
//! Both branches are computed for every lane and one is selected (compares are ordered, so
//! a NaN lane falls through to the `exp` branch, which propagates it).
//!
//! # Bounds
//!
//! Ulps are measured as in [`super::ulp`]. `f32`: at most [`MAX_TANH_F32_ULP`] ulp over all
//! 2^32 inputs against `f64` `tanh` rounded to `f32` (checked exhaustively by
//! `examples/tanh_accuracy.rs`), on every path. `f64`: at most [`MAX_TANH_F64_ULP`] ulp
//! against std's `f64::tanh` (which is itself within about 1 ulp), on sampled inputs.

use super::exp::{exp_reduced_f32, exp_reduced_f64, expm1_half_reduced_f32};
use super::lanes::{Lanes, horner};
use super::portable;
use crate::{Isa, Result};

/// Bound of [`tanh_f32`] in ulps of `f32` (see the module docs).
pub const MAX_TANH_F32_ULP: f64 = 2.5;
/// Bound of [`tanh_f64`] in ulps of `f64` against std's `f64::tanh`.
pub const MAX_TANH_F64_ULP: f64 = 4.0;

/// Below this `|x|` the odd polynomial is used.
const SMALL: f64 = 0.625;
const SAT_F32: f32 = 9.1;
const SAT_F64: f64 = 19.5;
/// `Q(s) = (tanh(a) - a)/a³` with `s = a²`, on `0 <= s <= 0.625²`, lowest degree first.
const Q_F32: [f32; 6] = [
    -3.333_333_4e-1,
    1.333_330_4e-1,
    -5.395_925_8e-2,
    2.176_891_8e-2,
    -8.343_945e-3,
    2.292_744_8e-3,
];
const Q_F64: [f64; 12] = [
    -0.333_333_333_333_333_3,
    0.133_333_333_333_330_42,
    -0.053_968_253_967_896_99,
    0.021_869_488_519_008_305,
    -0.008_863_235_103_240_878,
    0.003_592_121_751_154_962_2,
    -0.001_455_775_412_047_805_5,
    0.000_589_660_657_775_704_3,
    -0.000_237_590_649_605_556_2,
    9.257_116_129_556_769e-5,
    -3.120_110_142_579_74e-5,
    6.485_163_482_793_113e-6,
];

/// `tanh` of every lane, `f32`: one formula on the paths with a fused multiply-add, the two
/// branches on the portable one.
#[inline(always)]
pub(crate) fn tanh_f32_body<V: Lanes<Elem = f32>>(x: V) -> V {
    if V::FUSED {
        tanh_f32_expm1(x)
    } else {
        tanh_f32_two_branches(x)
    }
}

/// `tanh(a) = q / (q + 2)` with `q = expm1(2a) = 2^k·expm1(r) + (2^k - 1)`, one formula for
/// every `a` up to saturation (larger `a`, and infinity, are clamped to `SAT`, where the
/// formula gives exactly 1).
///
/// Written on halves, which changes no rounding (every scaling is by a power of two): the
/// reduction `a = k·ln2/2 + r/2` gives `h = r/2` directly from `a` (no `2a`), `e = expm1(r)/2
/// = h + h²·P̃(h)` with `P̃`'s coefficients those of `P` times `2^(i+1)`, and `q = 2^(k+1)·e +
/// (2^k - 1)` with `2^(k+1)` in one instruction where the path has one. With the clamp as one
/// `min` and the sign as one bit-select, 19 vector operations per register on AVX-512 against 23
/// for the same formula on full values.
#[inline(always)]
fn tanh_f32_expm1<V: Lanes<Elem = f32>>(x: V) -> V {
    // NaN stays NaN through the clamp (`at_most`) and every operation after it.
    let a = x.abs().at_most(x.splat(SAT_F32));
    let (e, t, k) = expm1_half_reduced_f32(a);
    let s2 = t.pow2_plus1_of_magic(k);
    let q = s2.mul_add(e, s2.mul_add(x.splat(0.5), x.splat(-1.0)));
    let y = q / (q + x.splat(2.0));
    y.with_sign_of(x)
}

/// The two-branch form (small `a`: odd polynomial; else `1 - 2/(exp(2a) + 1)`).
#[inline(always)]
fn tanh_f32_two_branches<V: Lanes<Elem = f32>>(x: V) -> V {
    let one = x.splat(1.0);
    let a = x.abs();
    let s = a * a;
    let small = (a * s).mul_add(horner(s, &Q_F32), a);
    let (e, t) = exp_reduced_f32(a + a);
    let e = e * t.pow2_of_magic();
    let large = one - x.splat(2.0) / (e + one);
    let y = V::select(a.lt(x.splat(SMALL as f32)), small, large);
    let y = V::select(x.splat(SAT_F32).lt(a), one, y);
    y.or_bits(x.sign_bit())
}

/// `tanh` of every lane, `f64`.
#[inline(always)]
pub(crate) fn tanh_f64_body<V: Lanes<Elem = f64>>(x: V) -> V {
    let one = x.splat(1.0);
    let a = x.abs();
    let s = a * a;
    let small = (a * s).mul_add(horner(s, &Q_F64), a);
    let (e, t) = exp_reduced_f64(a + a);
    let e = e * t.pow2_of_magic();
    let large = one - x.splat(2.0) / (e + one);
    let y = V::select(a.lt(x.splat(SMALL)), small, large);
    let y = V::select(x.splat(SAT_F64).lt(a), one, y);
    y.or_bits(x.sign_bit())
}

/// Portable scalar `tanh` for `f32`: the portable path's form for slice tails, bit-identical
/// to that path's vector lanes.
#[inline(always)]
pub fn tanh_scalar_f32(x: f32) -> f32 {
    tanh_f32_body(x)
}

/// Portable scalar `tanh` for `f64`, as [`tanh_scalar_f32`].
#[inline(always)]
pub fn tanh_scalar_f64(x: f64) -> f64 {
    tanh_f64_body(x)
}

/// `x[i] = tanh(x[i])` in place on the best path ([`Isa::detect`]).
pub fn tanh_f32(x: &mut [f32]) {
    if tanh_f32_with(Isa::detect(), x).is_err() {
        portable::tanh_f32(x);
    }
}

/// `x[i] = tanh(x[i])` in place on the best path ([`Isa::detect`]).
pub fn tanh_f64(x: &mut [f64]) {
    if tanh_f64_with(Isa::detect(), x).is_err() {
        portable::tanh_f64(x);
    }
}

/// `x[i] = tanh(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn tanh_f32_with(isa: Isa, x: &mut [f32]) -> Result<()> {
    super::dispatch!(isa, tanh_f32, x)
}

/// `x[i] = tanh(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn tanh_f64_with(isa: Isa, x: &mut [f64]) -> Result<()> {
    super::dispatch!(isa, tanh_f64, x)
}
