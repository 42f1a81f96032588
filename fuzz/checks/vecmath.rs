//! `vecmath`: tanh, sigmoid and exp on arbitrary slices on every available path.
//!
//! Checked for `f32` and `f64`, as `src/vecmath` states them:
//! - each result is within the pinned bound (`MAX_*_ULP`) of the f64 reference (`f32`: std's
//!   f64 function rounded to f32; `f64`: std's function), ulps measured by `ulp_error_*`;
//! - specials bit-exact: NaN gives NaN; tanh(+-0) = +-0, tanh(+-inf) = +-1; sigmoid(+-0) =
//!   0.5, sigmoid(+inf) = 1, sigmoid(-inf) = +0; exp(+-0) = 1, exp(+inf) = +inf,
//!   exp(-inf) = +0; tanh is odd bit for bit; sigmoid stays in [0, 1];
//! - an element's result does not depend on where it sits in the slice (slice vs alone), and
//!   the portable path equals the `*_scalar_*` functions bit for bit.

use rnn_kernels::Isa;
use rnn_kernels::vecmath::{self as vm};

use super::bytes::Bytes;

#[derive(Clone, Copy, Debug)]
enum Func {
    Tanh,
    Sigmoid,
    Exp,
}

pub fn check(data: &[u8]) {
    let mut r = Bytes::new(data);
    let n = r.range(0, 70);
    let xs32: Vec<f32> = (0..n)
        .map(|_| match r.u8() % 4 {
            0 => r.hostile_f32(),
            1 => f32::from_bits(r.u32()),
            // The interesting range of all three functions: |x| < 128.
            _ => (f32::from(r.u16()) / 256.0 - 128.0) * if r.bool() { 1.0 } else { 1.0 / 64.0 },
        })
        .collect();
    let xs64: Vec<f64> = xs32
        .iter()
        .map(|&x| {
            let wiggle = f64::from(r.u32()) * 2f64.powi(-60);
            // Most f64 inputs are not f32 values: perturb their low bits.
            if r.bool() {
                f64::from(x) * (1.0 + wiggle)
            } else {
                f64::from(x)
            }
        })
        .collect();
    for isa in Isa::available() {
        for func in [Func::Tanh, Func::Sigmoid, Func::Exp] {
            check_f32(isa, func, &xs32);
            check_f64(isa, func, &xs64);
        }
    }
}

fn run_f32(isa: Isa, func: Func, x: &mut [f32]) {
    match func {
        Func::Tanh => vm::tanh_f32_with(isa, x),
        Func::Sigmoid => vm::sigmoid_f32_with(isa, x),
        Func::Exp => vm::exp_f32_with(isa, x),
    }
    .expect("an available path was refused");
}

fn run_f64(isa: Isa, func: Func, x: &mut [f64]) {
    match func {
        Func::Tanh => vm::tanh_f64_with(isa, x),
        Func::Sigmoid => vm::sigmoid_f64_with(isa, x),
        Func::Exp => vm::exp_f64_with(isa, x),
    }
    .expect("an available path was refused");
}

/// The exact value to compare with, and the special result if `x` is special.
fn want_f32(func: Func, x: f32) -> f32 {
    let x = f64::from(x);
    (match func {
        Func::Tanh => x.tanh(),
        Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Func::Exp => x.exp(),
    }) as f32
}

fn want_f64(func: Func, x: f64) -> f64 {
    match func {
        Func::Tanh => x.tanh(),
        Func::Sigmoid => {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            }
        }
        Func::Exp => x.exp(),
    }
}

fn special(func: Func, x: f64) -> Option<f64> {
    if x.is_nan() {
        return Some(f64::NAN);
    }
    match (func, x) {
        (Func::Tanh, 0.0) => Some(x), // keeps the sign of zero
        (Func::Tanh, f64::INFINITY) => Some(1.0),
        (Func::Tanh, f64::NEG_INFINITY) => Some(-1.0),
        (Func::Sigmoid, 0.0) => Some(0.5),
        (Func::Sigmoid, f64::INFINITY) => Some(1.0),
        (Func::Sigmoid, f64::NEG_INFINITY) => Some(0.0),
        (Func::Exp, 0.0) => Some(1.0),
        (Func::Exp, f64::INFINITY) => Some(f64::INFINITY),
        (Func::Exp, f64::NEG_INFINITY) => Some(0.0),
        _ => None,
    }
}

fn bound(func: Func, f64_: bool) -> f64 {
    match (func, f64_) {
        (Func::Tanh, false) => vm::MAX_TANH_F32_ULP,
        (Func::Sigmoid, false) => vm::MAX_SIGMOID_F32_ULP,
        (Func::Exp, false) => vm::MAX_EXP_F32_ULP,
        (Func::Tanh, true) => vm::MAX_TANH_F64_ULP,
        (Func::Sigmoid, true) => vm::MAX_SIGMOID_F64_ULP,
        (Func::Exp, true) => vm::MAX_EXP_F64_ULP,
    }
}

fn scalar_f32(func: Func, x: f32) -> f32 {
    match func {
        Func::Tanh => vm::tanh_scalar_f32(x),
        Func::Sigmoid => vm::sigmoid_scalar_f32(x),
        Func::Exp => vm::exp_scalar_f32(x),
    }
}

fn scalar_f64(func: Func, x: f64) -> f64 {
    match func {
        Func::Tanh => vm::tanh_scalar_f64(x),
        Func::Sigmoid => vm::sigmoid_scalar_f64(x),
        Func::Exp => vm::exp_scalar_f64(x),
    }
}

fn same_bits_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn check_f32(isa: Isa, func: Func, xs: &[f32]) {
    let mut ys = xs.to_vec();
    run_f32(isa, func, &mut ys);
    for (k, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
        let ctx = || {
            format!(
                "{func:?} f32 on {isa:?}: x[{k}] = {x:e} ({:#010x}) -> {y:e} ({:#010x})",
                x.to_bits(),
                y.to_bits()
            )
        };
        if let Some(s) = special(func, f64::from(x)) {
            assert!(
                same_bits_f64(f64::from(y), s),
                "special wrong: {}, want {s:e}",
                ctx()
            );
        }
        let want = want_f32(func, x);
        let e = vm::ulp_error_f32(y, want);
        assert!(
            e <= bound(func, false),
            "{e} ulp > {} vs {want:e}: {}",
            bound(func, false),
            ctx()
        );
        if let Func::Sigmoid = func {
            assert!(
                x.is_nan() || (0.0..=1.0).contains(&y),
                "sigmoid out of [0, 1]: {}",
                ctx()
            );
        }
        // Alone, the element gets the same result.
        let mut alone = [x];
        run_f32(isa, func, &mut alone);
        assert!(
            same_bits_f64(f64::from(alone[0]), f64::from(y)),
            "alone: {:e} vs in slice: {}",
            alone[0],
            ctx()
        );
        if let Func::Tanh = func {
            let mut neg = [-x];
            run_f32(isa, func, &mut neg);
            assert!(
                same_bits_f64(f64::from(neg[0]), f64::from(-y)),
                "tanh not odd: tanh(-x) = {:e}: {}",
                neg[0],
                ctx()
            );
        }
        if isa == Isa::Portable {
            let s = scalar_f32(func, x);
            assert!(
                same_bits_f64(f64::from(s), f64::from(y)),
                "scalar {s:e} differs from portable lanes: {}",
                ctx()
            );
        }
    }
}

fn check_f64(isa: Isa, func: Func, xs: &[f64]) {
    let mut ys = xs.to_vec();
    run_f64(isa, func, &mut ys);
    for (k, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
        let ctx = || {
            format!(
                "{func:?} f64 on {isa:?}: x[{k}] = {x:e} ({:#018x}) -> {y:e}",
                x.to_bits()
            )
        };
        if let Some(s) = special(func, x) {
            assert!(same_bits_f64(y, s), "special wrong: {}, want {s:e}", ctx());
        }
        let want = want_f64(func, x);
        let e = vm::ulp_error_f64(y, want);
        assert!(
            e <= bound(func, true),
            "{e} ulp > {} vs {want:e}: {}",
            bound(func, true),
            ctx()
        );
        if let Func::Sigmoid = func {
            assert!(
                x.is_nan() || (0.0..=1.0).contains(&y),
                "sigmoid out of [0, 1]: {}",
                ctx()
            );
        }
        let mut alone = [x];
        run_f64(isa, func, &mut alone);
        assert!(
            same_bits_f64(alone[0], y),
            "alone: {:e} vs in slice: {}",
            alone[0],
            ctx()
        );
        if let Func::Tanh = func {
            let mut neg = [-x];
            run_f64(isa, func, &mut neg);
            assert!(
                same_bits_f64(neg[0], -y),
                "tanh not odd: tanh(-x) = {:e}: {}",
                neg[0],
                ctx()
            );
        }
        if isa == Isa::Portable {
            let s = scalar_f64(func, x);
            assert!(
                same_bits_f64(s, y),
                "scalar {s:e} differs from portable lanes: {}",
                ctx()
            );
        }
    }
}
