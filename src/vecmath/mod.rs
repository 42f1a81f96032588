//! Vectorized math (tanh, sigmoid, exp) with runtime dispatch.
//!
//! In-place slice functions for `f32` and `f64`: [`tanh_f32`], [`sigmoid_f32`], [`exp_f32`]
//! and their `f64` twins run on the best path of [`Isa::detect`](crate::Isa::detect); the
//! `_with` forms (e.g. [`tanh_f32_with`]) run on a path named by the caller and return
//! [`Error::UnsupportedIsa`](crate::Error::UnsupportedIsa) if this CPU cannot run it. The path
//! is chosen once per call, never per element.
//!
//! Each function is one generic `#[inline(always)]` body (in `tanh.rs`, `sigmoid.rs`,
//! `exp.rs`) over a small lane abstraction, instantiated by the per-path kernels in
//! `avx512.rs` (AVX-512F, 16 `f32` / 8 `f64` lanes, masked tails), `avx2.rs` (AVX2 + FMA,
//! padded-buffer tails), `neon.rs` (aarch64) and `portable.rs` (the `wide` crate, scalar
//! tails bit-identical to its lanes). Every element on a path gets the same result wherever
//! it sits in the slice. The bounds are pinned as constants ([`MAX_TANH_F32_ULP`] and
//! friends) and measured with the ulp definition of [`ulp_error_f32`]. The trait [`VecMath`]
//! offers the same functions generically over `f32` and `f64`.
//!
//! Derivatives for backpropagation come from the outputs (`1 - y²`, `y·(1 - y)`) and are not
//! part of this module.

/// Runs the slice kernel `$kernel` of the path `$isa` on `$x`, or returns
/// `Err(UnsupportedIsa)` from the enclosing function when the CPU cannot run that path.
macro_rules! dispatch {
    ($isa:expr, $kernel:ident, $x:expr) => {{
        let isa: $crate::Isa = $isa;
        let x = $x;
        if !isa.is_supported() {
            return Err($crate::Error::UnsupportedIsa(isa));
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            $crate::Isa::Avx512 => {
                // SAFETY: avx512f, avx2 and fma were verified by `Isa::is_supported` just above.
                unsafe { $crate::vecmath::avx512::$kernel(x) }
            }
            #[cfg(target_arch = "x86_64")]
            $crate::Isa::Avx2Fma => {
                // SAFETY: avx2 and fma were verified by `Isa::is_supported` just above.
                unsafe { $crate::vecmath::avx2::$kernel(x) }
            }
            #[cfg(target_arch = "aarch64")]
            $crate::Isa::Neon => {
                // SAFETY: neon was verified by `Isa::is_supported` just above.
                unsafe { $crate::vecmath::neon::$kernel(x) }
            }
            _ => $crate::vecmath::portable::$kernel(x),
        }
        Ok(())
    }};
}
use dispatch;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
mod exp;
mod generic;
mod lanes;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
mod portable;
mod sigmoid;
mod tanh;
mod ulp;

pub use exp::{
    MAX_EXP_F32_ULP, MAX_EXP_F64_ULP, exp_f32, exp_f32_with, exp_f64, exp_f64_with, exp_scalar_f32,
    exp_scalar_f64,
};
pub use generic::VecMath;
pub use sigmoid::{
    MAX_SIGMOID_F32_ULP, MAX_SIGMOID_F64_ULP, sigmoid_f32, sigmoid_f32_with, sigmoid_f64,
    sigmoid_f64_with, sigmoid_scalar_f32, sigmoid_scalar_f64,
};
pub use tanh::{
    MAX_TANH_F32_ULP, MAX_TANH_F64_ULP, tanh_f32, tanh_f32_with, tanh_f64, tanh_f64_with,
    tanh_scalar_f32, tanh_scalar_f64,
};
pub use ulp::{ulp_error_f32, ulp_error_f64};
