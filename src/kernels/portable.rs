//! Portable path: plain Rust on 8-element arrays (the compiler vectorizes them for whatever
//! the build target offers), `MR = 4` rows x `NV = 2` arrays (16 columns) per tile; no fused
//! multiply-add (it would be a libm call without target FMA); tanh from `vecmath`'s scalar
//! forms.

use std::ops::Range;

use super::{Epilogue, Operands, Simd, Steps, gemm_body, steps_body};
use crate::float::Float;
use crate::vecmath::{tanh_scalar_f32, tanh_scalar_f64};

/// Arrays per panel.
pub const NV: usize = 2;
/// Rows per register tile.
pub(crate) const MR: usize = 4;
/// Elements per array.
const L: usize = 8;

/// The packed GEMM on the portable path.
///
/// # Safety
///
/// The memory contract of [`super::KernelFn`] (no CPU feature is needed).
pub unsafe fn gemm<F: Float, E: Epilogue<F>>(ops: &Operands<F>, epi: &E, panels: Range<usize>) {
    // SAFETY: the memory contract is the caller's; the portable type needs no feature.
    unsafe { gemm_body::<F::VPort, E, MR, NV, 0, true, false>(ops, epi, panels, false) }
}

/// The packed GEMM with `A` as columns and `B` as rows in place (see [`super::gemm_b_rows`]).
///
/// # Safety
///
/// As [`gemm`], with `ops.lda = 1`, `ops.ldb = ops.n` a multiple of `ops.nr`.
pub unsafe fn gemm_b_rows<F: Float, E: Epilogue<F>>(
    ops: &Operands<F>,
    epi: &E,
    panels: Range<usize>,
) {
    // SAFETY: the memory contract is the caller's.
    unsafe { gemm_body::<F::VPort, E, MR, NV, 0, false, true>(ops, epi, panels, false) }
}

/// Steps `0..n` of `steps` over `panels`, in order, in this one call (see [`super::StepsFn`]).
///
/// # Safety
///
/// The contract of [`super::Steps`] (no CPU feature is needed).
pub unsafe fn steps<F: Float, S: Steps<F>>(steps: &S, n: usize, panels: Range<usize>) {
    // SAFETY: this path needs no CPU feature; the `Steps` contract is the caller's.
    unsafe { steps_body::<F::VPort, S, MR, NV, 0, false>(steps, n, panels, gemm::<F, S::Epi>) }
}

/// 8 lanes of `F` in an array.
#[derive(Clone, Copy, Debug)]
pub struct Port<F>([F; L]);

macro_rules! impl_simd {
    ($e:ty, $tanh:ident) => {
        impl Simd for Port<$e> {
            type Elem = $e;
            const LANES: usize = L;
            #[inline(always)]
            unsafe fn zero() -> Self {
                Port([0.0; L])
            }
            #[inline(always)]
            unsafe fn splat(x: $e) -> Self {
                Port([x; L])
            }
            #[inline(always)]
            unsafe fn load(p: *const $e) -> Self {
                // SAFETY: `p` is valid for L elements (trait contract); unaligned is allowed.
                Port(unsafe { p.cast::<[$e; L]>().read_unaligned() })
            }
            #[inline(always)]
            unsafe fn load_part(p: *const $e, n: usize) -> Self {
                let mut v = [0.0; L];
                for (i, x) in v.iter_mut().enumerate().take(n) {
                    // SAFETY: i < n and `p` is valid for n elements (trait contract).
                    *x = unsafe { *p.add(i) };
                }
                Port(v)
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $e) {
                // SAFETY: `p` is valid for L elements (trait contract); unaligned is allowed.
                unsafe { p.cast::<[$e; L]>().write_unaligned(self.0) }
            }
            #[inline(always)]
            unsafe fn store_part(self, p: *mut $e, n: usize) {
                for (i, &x) in self.0.iter().enumerate().take(n) {
                    // SAFETY: i < n and `p` is valid for n elements (trait contract).
                    unsafe { *p.add(i) = x };
                }
            }
            #[inline(always)]
            unsafe fn fma(self, b: Self, c: Self) -> Self {
                Port(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
            }
            #[inline(always)]
            unsafe fn add(self, b: Self) -> Self {
                Port(std::array::from_fn(|i| self.0[i] + b.0[i]))
            }
            #[inline(always)]
            unsafe fn mul(self, b: Self) -> Self {
                Port(std::array::from_fn(|i| self.0[i] * b.0[i]))
            }
            #[inline(always)]
            unsafe fn tanh(self) -> Self {
                Port(self.0.map($tanh))
            }
            #[inline(always)]
            unsafe fn relu(self) -> Self {
                Port(self.0.map(|x| if x > 0.0 || x.is_nan() { x } else { 0.0 }))
            }
            #[inline(always)]
            unsafe fn tanh_deriv(self) -> Self {
                Port(self.0.map(|h| 1.0 - h * h))
            }
            #[inline(always)]
            unsafe fn relu_deriv(self) -> Self {
                Port(self.0.map(|h| if h > 0.0 { 1.0 } else { 0.0 }))
            }
        }
    };
}

impl_simd!(f32, tanh_scalar_f32);
impl_simd!(f64, tanh_scalar_f64);
