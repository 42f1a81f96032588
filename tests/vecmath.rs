//! Sampled accuracy, special values, symmetry and tail independence of `rnn_kernels::vecmath`
//! on every path this CPU supports (each run explicitly through the `_with` functions).
//! The exhaustive 2^32 check of the `f32` functions is `examples/tanh_accuracy.rs`.

use rnn_kernels::vecmath::{self, *};
use rnn_kernels::{Error, Isa};

type KernelF32 = fn(Isa, &mut [f32]) -> rnn_kernels::Result<()>;
type KernelF64 = fn(Isa, &mut [f64]) -> rnn_kernels::Result<()>;
type AutoF32 = fn(&mut [f32]);
type AutoF64 = fn(&mut [f64]);
type RefF64 = fn(f64) -> f64;

/// Denser sampling in release, a quick one in debug builds.
const STRIDE: u32 = if cfg!(debug_assertions) {
    65_521
} else {
    4_093
};

fn tanh_ref(x: f32) -> f32 {
    f64::from(x).tanh() as f32
}

fn sigmoid_ref64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn sigmoid_ref(x: f32) -> f32 {
    sigmoid_ref64(f64::from(x)) as f32
}

fn exp_ref(x: f32) -> f32 {
    f64::from(x).exp() as f32
}

struct F32Case {
    name: &'static str,
    kernel: KernelF32,
    reference: fn(f32) -> f32,
    bound: f64,
}

const F32_CASES: [F32Case; 3] = [
    F32Case {
        name: "tanh",
        kernel: tanh_f32_with,
        reference: tanh_ref,
        bound: MAX_TANH_F32_ULP,
    },
    F32Case {
        name: "sigmoid",
        kernel: sigmoid_f32_with,
        reference: sigmoid_ref,
        bound: MAX_SIGMOID_F32_ULP,
    },
    F32Case {
        name: "exp",
        kernel: exp_f32_with,
        reference: exp_ref,
        bound: MAX_EXP_F32_ULP,
    },
];

/// `n` consecutive f32 on each side of `x` (both signs).
fn around(x: f32, n: u32, out: &mut Vec<f32>) {
    let b = x.to_bits();
    for d in 0..n {
        for v in [b.wrapping_add(d), b.wrapping_sub(d)] {
            out.push(f32::from_bits(v));
            out.push(-f32::from_bits(v));
        }
    }
}

/// Strided bit patterns plus dense neighbourhoods of the places where the methods switch.
fn f32_inputs() -> Vec<f32> {
    let mut v: Vec<f32> = (0..=u32::MAX / STRIDE)
        .map(|i| f32::from_bits(i * STRIDE))
        .collect();
    let n = if cfg!(debug_assertions) { 300 } else { 3000 };
    for x in [
        0.0,               // zero and the smallest subnormals
        f32::MIN_POSITIVE, // subnormal / normal boundary
        1e-4,              // tanh(x) = x region
        0.625,             // tanh: polynomial / exp switch
        0.346_573_6,       // exp: k changes at ln2/2
        9.010_913,         // tanh rounds to 1 from here
        9.1,               // tanh saturation switch
        17.33,             // sigmoid rounds to 1
        88.722_84,         // exp overflow
        87.336_55,         // exp result becomes subnormal (negated)
        103.972_08,        // exp result rounds to 0 (negated)
        1.0,
        2.0,
    ] {
        around(x, n, &mut v);
    }
    v
}

#[test]
fn f32_sampled_accuracy_on_every_path() {
    let inputs = f32_inputs();
    for isa in Isa::available() {
        for case in &F32_CASES {
            let mut y = inputs.clone();
            (case.kernel)(isa, &mut y).unwrap();
            let (mut worst, mut at) = (0.0f64, 0.0f32);
            for (&x, &got) in inputs.iter().zip(&y) {
                let err = ulp_error_f32(got, (case.reference)(x));
                if err > worst {
                    (worst, at) = (err, x);
                }
            }
            eprintln!(
                "{} {} f32: max {worst} ulp at {at:e}",
                isa.name(),
                case.name
            );
            assert!(
                worst <= case.bound,
                "{} {}: {worst} ulp at {at:e} (bound {})",
                isa.name(),
                case.name,
                case.bound
            );
        }
    }
}

fn same(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

#[test]
fn f32_special_values_are_bit_exact() {
    let nan = f32::NAN;
    let tiny = f32::from_bits(1);
    let table: [(KernelF32, &[(f32, f32)]); 3] = [
        (
            tanh_f32_with,
            &[
                (0.0, 0.0),
                (-0.0, -0.0),
                (nan, nan),
                (-nan, nan),
                (f32::INFINITY, 1.0),
                (f32::NEG_INFINITY, -1.0),
                (9.02, 1.0),
                (-20.0, -1.0),
                (f32::MAX, 1.0),
                (-f32::MAX, -1.0),
                (tiny, tiny),
                (-tiny, -tiny),
                (f32::MIN_POSITIVE, f32::MIN_POSITIVE),
                (1e-10, 1e-10),
            ],
        ),
        (
            sigmoid_f32_with,
            &[
                (f32::NEG_INFINITY, 0.0),
                (f32::INFINITY, 1.0),
                (nan, nan),
                (0.0, 0.5),
                (-0.0, 0.5),
                (-150.0, 0.0),
                (40.0, 1.0),
                (f32::MAX, 1.0),
                (-f32::MAX, 0.0),
            ],
        ),
        (
            exp_f32_with,
            &[
                (f32::NEG_INFINITY, 0.0),
                (f32::INFINITY, f32::INFINITY),
                (nan, nan),
                (0.0, 1.0),
                (-0.0, 1.0),
                (-200.0, 0.0),
                (89.0, f32::INFINITY),
                (f32::MAX, f32::INFINITY),
                (-f32::MAX, 0.0),
            ],
        ),
    ];
    for isa in Isa::available() {
        for (kernel, cases) in &table {
            let mut x: Vec<f32> = cases.iter().map(|c| c.0).collect();
            kernel(isa, &mut x).unwrap();
            for (got, (input, want)) in x.iter().zip(cases.iter()) {
                assert!(
                    same(*got, *want),
                    "{}: f({input:e}) = {got:e}, expected {want:e}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn f32_ranges_and_tanh_odd_symmetry() {
    let inputs = f32_inputs();
    let negated: Vec<f32> = inputs.iter().map(|x| -x).collect();
    for isa in Isa::available() {
        let mut pos = inputs.clone();
        let mut neg = negated.clone();
        tanh_f32_with(isa, &mut pos).unwrap();
        tanh_f32_with(isa, &mut neg).unwrap();
        for ((x, p), n) in inputs.iter().zip(&pos).zip(&neg) {
            assert!(same(*p, -*n), "{}: tanh not odd at {x:e}", isa.name());
            assert!(x.is_nan() || p.abs() <= 1.0);
        }
        let mut s = inputs.clone();
        sigmoid_f32_with(isa, &mut s).unwrap();
        let mut e = inputs.clone();
        exp_f32_with(isa, &mut e).unwrap();
        for ((x, s), e) in inputs.iter().zip(&s).zip(&e) {
            if x.is_nan() {
                assert!(s.is_nan() && e.is_nan());
            } else {
                assert!(
                    (0.0..=1.0).contains(s),
                    "{}: sigmoid({x:e}) = {s}",
                    isa.name()
                );
                assert!(*e >= 0.0, "{}: exp({x:e}) = {e}", isa.name());
            }
        }
    }
}

/// Varied inputs covering every branch, for the position tests.
fn mixed_f32(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = (i as f32 * 0.618_034).fract();
            match i % 5 {
                0 => (t - 0.5) * 1.3,
                1 => (t - 0.5) * 24.0,
                2 => (t - 0.5) * 240.0,
                3 => (t - 0.5) * 1e-30,
                _ => (t - 0.5) * 4.0,
            }
        })
        .collect()
}

#[test]
fn results_do_not_depend_on_position_in_the_slice() {
    let src = mixed_f32(67);
    let src64: Vec<f64> = src.iter().map(|&x| f64::from(x) * 1.000_000_1).collect();
    let f64_kernels: [KernelF64; 3] = [tanh_f64_with, sigmoid_f64_with, exp_f64_with];
    for isa in Isa::available() {
        for case in &F32_CASES {
            let mut whole = src.clone();
            (case.kernel)(isa, &mut whole).unwrap();
            for start in 0..20 {
                for len in 0..=40 {
                    let mut part = src[start..start + len].to_vec();
                    (case.kernel)(isa, &mut part).unwrap();
                    assert_eq!(
                        part.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        whole[start..start + len]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect::<Vec<_>>(),
                        "{} {} at {start}..+{len}",
                        isa.name(),
                        case.name
                    );
                }
            }
        }
        for kernel in f64_kernels {
            let mut whole = src64.clone();
            kernel(isa, &mut whole).unwrap();
            for start in 0..12 {
                for len in 0..=20 {
                    let mut part = src64[start..start + len].to_vec();
                    kernel(isa, &mut part).unwrap();
                    for (a, b) in part.iter().zip(&whole[start..start + len]) {
                        assert_eq!(a.to_bits(), b.to_bits(), "{} f64", isa.name());
                    }
                }
            }
        }
    }
}

#[test]
fn portable_scalar_forms_match_the_portable_path() {
    let src = mixed_f32(64);
    let mut t = src.clone();
    let mut s = src.clone();
    let mut e = src.clone();
    tanh_f32_with(Isa::Portable, &mut t).unwrap();
    sigmoid_f32_with(Isa::Portable, &mut s).unwrap();
    exp_f32_with(Isa::Portable, &mut e).unwrap();
    for (i, &x) in src.iter().enumerate() {
        assert_eq!(tanh_scalar_f32(x).to_bits(), t[i].to_bits());
        assert_eq!(sigmoid_scalar_f32(x).to_bits(), s[i].to_bits());
        assert_eq!(exp_scalar_f32(x).to_bits(), e[i].to_bits());
        let y = f64::from(x);
        let mut v = [y; 5];
        tanh_f64_with(Isa::Portable, &mut v[..1]).unwrap();
        sigmoid_f64_with(Isa::Portable, &mut v[1..2]).unwrap();
        exp_f64_with(Isa::Portable, &mut v[2..3]).unwrap();
        assert_eq!(tanh_scalar_f64(y).to_bits(), v[0].to_bits());
        assert_eq!(sigmoid_scalar_f64(y).to_bits(), v[1].to_bits());
        assert_eq!(exp_scalar_f64(y).to_bits(), v[2].to_bits());
    }
}

#[test]
fn unsupported_isa_is_an_error_and_leaves_the_slice_alone() {
    let unsupported: Vec<Isa> = Isa::ALL.into_iter().filter(|i| !i.is_supported()).collect();
    #[cfg(target_arch = "x86_64")]
    assert!(unsupported.contains(&Isa::Neon));
    for isa in unsupported {
        let mut x = [0.5f32, 2.0];
        let mut y = [0.5f64, 2.0];
        for kernel in [tanh_f32_with, sigmoid_f32_with, exp_f32_with] {
            assert_eq!(kernel(isa, &mut x), Err(Error::UnsupportedIsa(isa)));
        }
        for kernel in [tanh_f64_with, sigmoid_f64_with, exp_f64_with] {
            assert_eq!(kernel(isa, &mut y), Err(Error::UnsupportedIsa(isa)));
        }
        assert_eq!(x, [0.5, 2.0]);
        assert_eq!(y, [0.5, 2.0]);
    }
}

#[test]
fn detected_path_functions_match_their_with_forms() {
    let src = mixed_f32(100);
    let isa = Isa::detect();
    let pairs: [(AutoF32, KernelF32); 3] = [
        (vecmath::tanh_f32, tanh_f32_with),
        (vecmath::sigmoid_f32, sigmoid_f32_with),
        (vecmath::exp_f32, exp_f32_with),
    ];
    for (auto, with) in pairs {
        let (mut a, mut b) = (src.clone(), src.clone());
        auto(&mut a);
        with(isa, &mut b).unwrap();
        assert_eq!(a, b);
    }
    let src64: Vec<f64> = src.iter().map(|&x| f64::from(x)).collect();
    let pairs64: [(AutoF64, KernelF64); 3] = [
        (vecmath::tanh_f64, tanh_f64_with),
        (vecmath::sigmoid_f64, sigmoid_f64_with),
        (vecmath::exp_f64, exp_f64_with),
    ];
    for (auto, with) in pairs64 {
        let (mut a, mut b) = (src64.clone(), src64.clone());
        auto(&mut a);
        with(isa, &mut b).unwrap();
        assert_eq!(a, b);
    }
}

/// Deterministic sample of `f64` inputs: log-uniform magnitudes in `[2^lo, 2^hi]`, both signs,
/// plus dense neighbourhoods of the switch points.
fn f64_inputs(lo: i32, hi: i32) -> Vec<f64> {
    let n = if cfg!(debug_assertions) {
        20_000
    } else {
        400_000
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(n + 4000);
    for _ in 0..n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        let m = 2f64.powf(f64::from(lo) + u * f64::from(hi - lo));
        v.push(if state & 1 == 0 { m } else { -m });
    }
    for x in [
        0.625f64,
        0.346_573_590_279_972_6,
        19.06,
        19.5,
        709.78,
        708.4,
        745.13,
        1.0,
    ] {
        let b = x.to_bits();
        for d in 0..500u64 {
            for w in [b + d, b - d] {
                v.push(f64::from_bits(w));
                v.push(-f64::from_bits(w));
            }
        }
    }
    for s in [0.0f64, -0.0, f64::from_bits(1), f64::MIN_POSITIVE, 1e-300] {
        v.push(s);
    }
    v
}

#[test]
fn f64_sampled_accuracy_on_every_path() {
    let cases: [(&str, KernelF64, RefF64, f64, Vec<f64>); 3] = [
        (
            "tanh",
            tanh_f64_with,
            f64::tanh,
            MAX_TANH_F64_ULP,
            f64_inputs(-1074, 6),
        ),
        (
            "sigmoid",
            sigmoid_f64_with,
            sigmoid_ref64,
            MAX_SIGMOID_F64_ULP,
            f64_inputs(-60, 10),
        ),
        (
            "exp",
            exp_f64_with,
            f64::exp,
            MAX_EXP_F64_ULP,
            f64_inputs(-60, 10),
        ),
    ];
    for isa in Isa::available() {
        for (name, kernel, reference, bound, inputs) in &cases {
            let mut y = inputs.clone();
            kernel(isa, &mut y).unwrap();
            let (mut worst, mut at) = (0.0f64, 0.0f64);
            for (&x, &got) in inputs.iter().zip(&y) {
                let err = ulp_error_f64(got, reference(x));
                if err > worst {
                    (worst, at) = (err, x);
                }
            }
            eprintln!("{} {name} f64: max {worst} ulp at {at:e}", isa.name());
            assert!(
                worst <= *bound,
                "{} {name} f64: {worst} ulp at {at:e} (bound {bound})",
                isa.name()
            );
        }
    }
}

#[test]
fn f64_special_values_are_bit_exact() {
    let nan = f64::NAN;
    let tiny = f64::from_bits(1);
    let table: [(KernelF64, &[(f64, f64)]); 3] = [
        (
            tanh_f64_with,
            &[
                (0.0, 0.0),
                (-0.0, -0.0),
                (nan, nan),
                (f64::INFINITY, 1.0),
                (f64::NEG_INFINITY, -1.0),
                (19.1, 1.0),
                (-40.0, -1.0),
                (f64::MAX, 1.0),
                (tiny, tiny),
                (-tiny, -tiny),
                (1e-200, 1e-200),
            ],
        ),
        (
            sigmoid_f64_with,
            &[
                (f64::NEG_INFINITY, 0.0),
                (f64::INFINITY, 1.0),
                (nan, nan),
                (0.0, 0.5),
                (-0.0, 0.5),
                (-800.0, 0.0),
                (40.0, 1.0),
                (-f64::MAX, 0.0),
            ],
        ),
        (
            exp_f64_with,
            &[
                (f64::NEG_INFINITY, 0.0),
                (f64::INFINITY, f64::INFINITY),
                (nan, nan),
                (0.0, 1.0),
                (-800.0, 0.0),
                (710.0, f64::INFINITY),
                (f64::MAX, f64::INFINITY),
            ],
        ),
    ];
    for isa in Isa::available() {
        for (kernel, cases) in &table {
            let mut x: Vec<f64> = cases.iter().map(|c| c.0).collect();
            kernel(isa, &mut x).unwrap();
            for (got, (input, want)) in x.iter().zip(cases.iter()) {
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{}: f64 f({input:e}) = {got:e}, expected {want:e}",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn f64_subnormal_exp_and_tiny_sigmoid() {
    // exp over the gradual-underflow range, against std (both round the same subnormal grid).
    let xs: Vec<f64> = (0..2000).map(|i| -708.0 - f64::from(i) * 0.0185).collect();
    for isa in Isa::available() {
        let mut e = xs.clone();
        exp_f64_with(isa, &mut e).unwrap();
        let mut s = xs.clone();
        sigmoid_f64_with(isa, &mut s).unwrap();
        for ((x, e), s) in xs.iter().zip(&e).zip(&s) {
            assert!(ulp_error_f64(*e, x.exp()) <= MAX_EXP_F64_ULP, "exp({x})");
            assert!(
                ulp_error_f64(*s, sigmoid_ref64(*x)) <= MAX_SIGMOID_F64_ULP,
                "sig({x})"
            );
        }
    }
}
