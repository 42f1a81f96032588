//! `sigmoid(x) = 1/(1 + exp(-x))` for `f32` and `f64`.
//!
//! # Method
//!
//! With `e = exp(-|x|)` from [`super::exp`] (so `0 <= e <= 1`, subnormal-correct), the result
//! is `1/(1 + e)` for `x >= 0` and `e/(1 + e)` for `x < 0`: one division, no cancellation,
//! and tiny results for very negative `x` keep their relative (or subnormal) accuracy
//! instead of flushing to 0 when `exp(-x)` would overflow. The numerator never exceeds the
//! denominator, so the result stays in `[0, 1]`. `sigmoid(-inf) = 0`, `sigmoid(+inf) = 1`,
//! NaN gives NaN, `sigmoid(±0) = 0.5`.
//!
//! # Bounds
//!
//! Ulps are measured as in [`super::ulp`]. `f32`: at most [`MAX_SIGMOID_F32_ULP`] ulp over
//! all 2^32 inputs against the `f64` formula rounded to `f32` (checked exhaustively by
//! `examples/tanh_accuracy.rs`). `f64`: at most [`MAX_SIGMOID_F64_ULP`] ulp against the same
//! formula evaluated with std's `f64::exp` (`1/(1+exp(-x))` for `x >= 0`,
//! `exp(x)/(1+exp(x))` otherwise; that reference has about 1.5 ulp error itself), on sampled
//! inputs.

use super::exp::{exp_f32_body, exp_f64_body};
use super::lanes::Lanes;
use super::portable;
use crate::{Isa, Result};

/// Bound of [`sigmoid_f32`] in ulps of `f32` (see the module docs).
pub const MAX_SIGMOID_F32_ULP: f64 = 2.5;
/// Bound of [`sigmoid_f64`] in ulps of `f64` against the std-based reference.
pub const MAX_SIGMOID_F64_ULP: f64 = 4.0;

/// `sigmoid` of every lane, `f32`.
#[inline(always)]
pub(crate) fn sigmoid_f32_body<V: Lanes<Elem = f32>>(x: V) -> V {
    let one = x.splat(1.0);
    let e = exp_f32_body(x.splat(0.0) - x.abs());
    let num = V::select(x.lt(x.splat(0.0)), e, one);
    num / (one + e)
}

/// `sigmoid` of every lane, `f64`.
#[inline(always)]
pub(crate) fn sigmoid_f64_body<V: Lanes<Elem = f64>>(x: V) -> V {
    let one = x.splat(1.0);
    let e = exp_f64_body(x.splat(0.0) - x.abs());
    let num = V::select(x.lt(x.splat(0.0)), e, one);
    num / (one + e)
}

/// Portable scalar `sigmoid` for `f32`: the portable path's form for slice tails,
/// bit-identical to that path's vector lanes.
#[inline(always)]
pub fn sigmoid_scalar_f32(x: f32) -> f32 {
    sigmoid_f32_body(x)
}

/// Portable scalar `sigmoid` for `f64`, as [`sigmoid_scalar_f32`].
#[inline(always)]
pub fn sigmoid_scalar_f64(x: f64) -> f64 {
    sigmoid_f64_body(x)
}

/// `x[i] = sigmoid(x[i])` in place on the best path ([`Isa::detect`]).
pub fn sigmoid_f32(x: &mut [f32]) {
    if sigmoid_f32_with(Isa::detect(), x).is_err() {
        portable::sigmoid_f32(x);
    }
}

/// `x[i] = sigmoid(x[i])` in place on the best path ([`Isa::detect`]).
pub fn sigmoid_f64(x: &mut [f64]) {
    if sigmoid_f64_with(Isa::detect(), x).is_err() {
        portable::sigmoid_f64(x);
    }
}

/// `x[i] = sigmoid(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn sigmoid_f32_with(isa: Isa, x: &mut [f32]) -> Result<()> {
    super::dispatch!(isa, sigmoid_f32, x)
}

/// `x[i] = sigmoid(x[i])` in place on the path `isa`.
///
/// # Errors
///
/// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
pub fn sigmoid_f64_with(isa: Isa, x: &mut [f64]) -> Result<()> {
    super::dispatch!(isa, sigmoid_f64, x)
}
