//! The portable path: [`Lanes`] for `wide::f32x8` / `wide::f64x4` (whatever the compile-time
//! target offers, SSE2 on a default x86_64 build), and the slice kernels. Tails use the scalar
//! forms ([`tanh_scalar_f32`] and friends), which run the same operations as the vector
//! lanes (no fused multiply-add on this path) and so give bit-identical results.

use wide::{f32x8, f64x4, u32x8, u64x4};

use super::exp::{exp_f32_body, exp_f64_body, exp_scalar_f32, exp_scalar_f64};
use super::lanes::Lanes;
use super::sigmoid::{sigmoid_f32_body, sigmoid_f64_body, sigmoid_scalar_f32, sigmoid_scalar_f64};
use super::tanh::{tanh_f32_body, tanh_f64_body, tanh_scalar_f32, tanh_scalar_f64};

impl Lanes for f32x8 {
    type Elem = f32;
    const FUSED: bool = false;
    type Mask = f32x8;
    #[inline(always)]
    fn splat(self, c: f32) -> Self {
        f32x8::splat(c)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        self * b + c
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32x8::from_bits(self.to_bits() & u32x8::splat(0x7fff_ffff))
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        f32x8::from_bits(self.to_bits() & u32x8::splat(0x8000_0000))
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        f32x8::from_bits(self.to_bits() | o.to_bits())
    }
    #[inline(always)]
    fn lt(self, o: Self) -> f32x8 {
        self.simd_lt(o)
    }
    #[inline(always)]
    fn select(m: f32x8, if_true: Self, if_false: Self) -> Self {
        m.select(if_true, if_false)
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        f32x8::from_bits((self.to_bits() << 23) + u32x8::splat(0x3f80_0000))
    }
}

impl Lanes for f64x4 {
    type Elem = f64;
    const FUSED: bool = false;
    type Mask = f64x4;
    #[inline(always)]
    fn splat(self, c: f64) -> Self {
        f64x4::splat(c)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        self * b + c
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64x4::from_bits(self.to_bits() & u64x4::splat(0x7fff_ffff_ffff_ffff))
    }
    #[inline(always)]
    fn sign_bit(self) -> Self {
        f64x4::from_bits(self.to_bits() & u64x4::splat(0x8000_0000_0000_0000))
    }
    #[inline(always)]
    fn or_bits(self, o: Self) -> Self {
        f64x4::from_bits(self.to_bits() | o.to_bits())
    }
    #[inline(always)]
    fn lt(self, o: Self) -> f64x4 {
        self.simd_lt(o)
    }
    #[inline(always)]
    fn select(m: f64x4, if_true: Self, if_false: Self) -> Self {
        m.select(if_true, if_false)
    }
    #[inline(always)]
    fn pow2_of_magic(self) -> Self {
        f64x4::from_bits((self.to_bits() << 52) + u64x4::splat(0x3ff0_0000_0000_0000))
    }
}

#[inline(always)]
fn map_f32(x: &mut [f32], f: impl Fn(f32x8) -> f32x8, tail: impl Fn(f32) -> f32) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut a = [0.0f32; 8];
        a.copy_from_slice(c);
        c.copy_from_slice(&f(f32x8::new(a)).to_array());
    }
    for v in chunks.into_remainder() {
        *v = tail(*v);
    }
}

#[inline(always)]
fn map_f64(x: &mut [f64], f: impl Fn(f64x4) -> f64x4, tail: impl Fn(f64) -> f64) {
    let mut chunks = x.chunks_exact_mut(4);
    for c in &mut chunks {
        let mut a = [0.0f64; 4];
        a.copy_from_slice(c);
        c.copy_from_slice(&f(f64x4::new(a)).to_array());
    }
    for v in chunks.into_remainder() {
        *v = tail(*v);
    }
}

/// `tanh` in place, portable.
pub(crate) fn tanh_f32(x: &mut [f32]) {
    map_f32(x, tanh_f32_body, tanh_scalar_f32);
}

/// `tanh` in place, portable.
pub(crate) fn tanh_f64(x: &mut [f64]) {
    map_f64(x, tanh_f64_body, tanh_scalar_f64);
}

/// `sigmoid` in place, portable.
pub(crate) fn sigmoid_f32(x: &mut [f32]) {
    map_f32(x, sigmoid_f32_body, sigmoid_scalar_f32);
}

/// `sigmoid` in place, portable.
pub(crate) fn sigmoid_f64(x: &mut [f64]) {
    map_f64(x, sigmoid_f64_body, sigmoid_scalar_f64);
}

/// `exp` in place, portable.
pub(crate) fn exp_f32(x: &mut [f32]) {
    map_f32(x, exp_f32_body, exp_scalar_f32);
}

/// `exp` in place, portable.
pub(crate) fn exp_f64(x: &mut [f64]) {
    map_f64(x, exp_f64_body, exp_scalar_f64);
}
