//! The ulp measure every bound of this module is stated in.
//!
//! For a computed `got` and a reference `want` (the exact-ish result rounded to the same
//! type), the error is `|got - want| / ulp(want)` where `ulp(want) = 2^(e - p + 1)` with `e`
//! the binary exponent of `|want|` (`floor(log2 |want|)`), `p` the precision (24 for `f32`,
//! 53 for `f64`), and `e` floored at the minimum normal exponent (-126, -1022), so the ulp of
//! a subnormal or zero reference is the subnormal spacing 2^-149 (2^-1074). Just below a
//! power of two the spacing halves; this measure then uses the larger spacing of the
//! reference's own binade. Bit-identical values (including the same NaN or infinity) have
//! error 0; a NaN on only one side, or an infinity that differs from the other side, has
//! infinite error.

/// The error of `got` against the reference `want` in ulps of `f32` (see the module docs).
pub fn ulp_error_f32(got: f32, want: f32) -> f64 {
    if got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) {
        return 0.0;
    }
    if got.is_nan() || want.is_nan() || got.is_infinite() || want.is_infinite() {
        return f64::INFINITY;
    }
    let biased = ((want.to_bits() >> 23) & 0xff) as i32;
    let e = (biased - 127).max(-126);
    (f64::from(got) - f64::from(want)).abs() / pow2_f64(e - 23)
}

/// The error of `got` against the reference `want` in ulps of `f64` (see the module docs).
pub fn ulp_error_f64(got: f64, want: f64) -> f64 {
    if got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) {
        return 0.0;
    }
    if got.is_nan() || want.is_nan() || got.is_infinite() || want.is_infinite() {
        return f64::INFINITY;
    }
    let biased = ((want.to_bits() >> 52) & 0x7ff) as i32;
    let e = (biased - 1023).max(-1022);
    (got - want).abs() / pow2_f64(e - 52)
}

/// `2^n` exactly, for `-1074 <= n <= 1023`.
fn pow2_f64(n: i32) -> f64 {
    if n >= -1022 {
        f64::from_bits(((n + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (n + 1074))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_examples() {
        assert_eq!(ulp_error_f32(1.0, 1.0), 0.0);
        assert_eq!(ulp_error_f32(f32::from_bits(0x3f80_0001), 1.0), 1.0);
        assert_eq!(ulp_error_f32(f32::from_bits(1), 0.0), 1.0);
        assert_eq!(ulp_error_f32(f32::NAN, f32::NAN), 0.0);
        assert_eq!(ulp_error_f32(f32::INFINITY, f32::MAX), f64::INFINITY);
        assert_eq!(
            ulp_error_f64(f64::from_bits(0x3ff0_0000_0000_0002), 1.0),
            2.0
        );
        assert_eq!(ulp_error_f64(f64::from_bits(3), f64::from_bits(1)), 2.0);
        assert_eq!(ulp_error_f64(f64::MIN_POSITIVE, f64::MIN_POSITIVE), 0.0);
        assert_eq!(ulp_error_f64(-1.0, 1.0), 2f64.powi(53));
    }
}
