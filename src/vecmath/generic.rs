//! The slice functions of this module as one trait over `f32` and `f64`, for code that is
//! generic over the element type.

use crate::{Isa, Result};

/// In-place `tanh`, `sigmoid` and `exp` over slices of `Self`, forwarding to
/// [`super::tanh_f32`] and friends (same paths, same bounds).
pub trait VecMath: Copy + Sized {
    /// `x[i] = tanh(x[i])` on the best path ([`Isa::detect`]).
    fn tanh_slice(x: &mut [Self]);
    /// `x[i] = sigmoid(x[i])` on the best path ([`Isa::detect`]).
    fn sigmoid_slice(x: &mut [Self]);
    /// `x[i] = exp(x[i])` on the best path ([`Isa::detect`]).
    fn exp_slice(x: &mut [Self]);
    /// `x[i] = tanh(x[i])` on the path `isa`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
    fn tanh_slice_with(isa: Isa, x: &mut [Self]) -> Result<()>;
    /// `x[i] = sigmoid(x[i])` on the path `isa`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
    fn sigmoid_slice_with(isa: Isa, x: &mut [Self]) -> Result<()>;
    /// `x[i] = exp(x[i])` on the path `isa`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::UnsupportedIsa`] if this CPU cannot run `isa`; `x` is then unchanged.
    fn exp_slice_with(isa: Isa, x: &mut [Self]) -> Result<()>;
}

macro_rules! impl_vec_math {
    ($t:ty, $tanh:ident, $sigmoid:ident, $exp:ident, $tanh_w:ident, $sigmoid_w:ident, $exp_w:ident) => {
        impl VecMath for $t {
            fn tanh_slice(x: &mut [$t]) {
                super::$tanh(x)
            }
            fn sigmoid_slice(x: &mut [$t]) {
                super::$sigmoid(x)
            }
            fn exp_slice(x: &mut [$t]) {
                super::$exp(x)
            }
            fn tanh_slice_with(isa: Isa, x: &mut [$t]) -> Result<()> {
                super::$tanh_w(isa, x)
            }
            fn sigmoid_slice_with(isa: Isa, x: &mut [$t]) -> Result<()> {
                super::$sigmoid_w(isa, x)
            }
            fn exp_slice_with(isa: Isa, x: &mut [$t]) -> Result<()> {
                super::$exp_w(isa, x)
            }
        }
    };
}

impl_vec_math!(
    f32,
    tanh_f32,
    sigmoid_f32,
    exp_f32,
    tanh_f32_with,
    sigmoid_f32_with,
    exp_f32_with
);
impl_vec_math!(
    f64,
    tanh_f64,
    sigmoid_f64,
    exp_f64,
    tanh_f64_with,
    sigmoid_f64_with,
    exp_f64_with
);

#[cfg(test)]
mod tests {
    use super::VecMath;
    use crate::Isa;

    fn generic_tanh<T: VecMath>(x: &mut [T]) {
        T::tanh_slice(x);
    }

    #[test]
    fn trait_forwards_to_the_slice_functions() {
        let mut a = [0.5f32, -3.0, 20.0];
        let mut b = a;
        generic_tanh(&mut a);
        super::super::tanh_f32(&mut b);
        assert_eq!(a, b);
        let mut c = [0.5f64, -3.0];
        assert!(f64::exp_slice_with(Isa::Portable, &mut c).is_ok());
        assert_eq!(c[0].to_bits(), super::super::exp_scalar_f64(0.5).to_bits());
    }
}
