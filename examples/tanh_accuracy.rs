//! Checks `tanh`, `sigmoid` and `exp` (`f32`) over all 2^32 inputs on every path this CPU
//! supports, against `f64` math rounded to `f32`, with the ulp measure of
//! `rnn_kernels::vecmath::ulp_error_f32` and the bounds pinned in `rnn_kernels::vecmath`.
//!
//! `cargo run --release --example tanh_accuracy [-- --sample N]` (every N-th input only).
//! Prints `path function max_ulp worst_input special_cases=ok|FAIL` per path and function and
//! exits with status 1 if a bound or a special case fails.

use std::time::Instant;

use rayon::prelude::*;
use rnn_kernels::Isa;
use rnn_kernels::vecmath::{
    self, MAX_EXP_F32_ULP, MAX_SIGMOID_F32_ULP, MAX_TANH_F32_ULP, ulp_error_f32,
};

const CHUNK: u64 = 1 << 16;
const FUNCS: [&str; 3] = ["tanh", "sigmoid", "exp"];
const BOUNDS: [f64; 3] = [MAX_TANH_F32_ULP, MAX_SIGMOID_F32_ULP, MAX_EXP_F32_ULP];

type Kernel = fn(Isa, &mut [f32]) -> rnn_kernels::Result<()>;
const KERNELS: [Kernel; 3] = [
    vecmath::tanh_f32_with,
    vecmath::sigmoid_f32_with,
    vecmath::exp_f32_with,
];

/// Max error, the input where it occurs, and whether every special case held.
#[derive(Clone, Copy)]
struct Stat {
    max_ulp: f64,
    worst: f32,
    special_ok: bool,
}

impl Stat {
    const NEW: Stat = Stat {
        max_ulp: 0.0,
        worst: 0.0,
        special_ok: true,
    };
    fn merge(self, o: Stat) -> Stat {
        let (max_ulp, worst) = if o.max_ulp > self.max_ulp {
            (o.max_ulp, o.worst)
        } else {
            (self.max_ulp, self.worst)
        };
        Stat {
            max_ulp,
            worst,
            special_ok: self.special_ok && o.special_ok,
        }
    }
}

fn tanh_ref(x: f32) -> f32 {
    if x.abs() >= 10.0 {
        // 1 - tanh(10) < 2^-25: rounds to exactly ±1.
        return 1f32.copysign(x);
    }
    f64::from(x).tanh() as f32
}

fn sigmoid_ref(x: f32) -> f32 {
    if x >= 18.0 {
        // 1 - sigmoid(18) < 2^-25: rounds to exactly 1.
        return 1.0;
    }
    if x < -104.0 {
        // sigmoid(-104) < 2^-150: rounds to 0.
        return 0.0;
    }
    let x = f64::from(x);
    let y = if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    };
    y as f32
}

fn exp_ref(x: f32) -> f32 {
    if x > 89.0 {
        return f32::INFINITY;
    }
    if x < -104.0 {
        return 0.0;
    }
    f64::from(x).exp() as f32
}

const REFS: [fn(f32) -> f32; 3] = [tanh_ref, sigmoid_ref, exp_ref];

/// Per-output properties that must hold for every input (range, sign, symmetry is separate).
fn output_ok(func: usize, x: f32, y: f32) -> bool {
    if x.is_nan() {
        return y.is_nan();
    }
    match func {
        0 => y.abs() <= 1.0 && (y.to_bits() >> 31) == (x.to_bits() >> 31),
        1 => (0.0..=1.0).contains(&y),
        _ => y >= 0.0,
    }
}

/// Bit-exact special values, per function: (input, expected output bits; NaN means any NaN).
fn specials(func: usize) -> Vec<(f32, f32)> {
    let nan = f32::NAN;
    match func {
        0 => vec![
            (0.0, 0.0),
            (-0.0, -0.0),
            (nan, nan),
            (-nan, nan),
            (f32::INFINITY, 1.0),
            (f32::NEG_INFINITY, -1.0),
            (9.02, 1.0),
            (-9.02, -1.0),
            (50.0, 1.0),
            (f32::MAX, 1.0),
            (-f32::MAX, -1.0),
            (f32::from_bits(1), f32::from_bits(1)),
            (-f32::from_bits(1), -f32::from_bits(1)),
            (f32::MIN_POSITIVE, f32::MIN_POSITIVE),
            (1e-20, 1e-20),
        ],
        1 => vec![
            (f32::NEG_INFINITY, 0.0),
            (f32::INFINITY, 1.0),
            (nan, nan),
            (0.0, 0.5),
            (-0.0, 0.5),
            (-200.0, 0.0),
            (200.0, 1.0),
        ],
        _ => vec![
            (f32::NEG_INFINITY, 0.0),
            (f32::INFINITY, f32::INFINITY),
            (nan, nan),
            (0.0, 1.0),
            (-0.0, 1.0),
            (-200.0, 0.0),
            (100.0, f32::INFINITY),
            (f32::MAX, f32::INFINITY),
        ],
    }
}

fn specials_ok(isa: Isa, func: usize) -> bool {
    specials(func).into_iter().all(|(x, want)| {
        let mut buf = [x];
        KERNELS[func](isa, &mut buf).is_ok()
            && (buf[0].to_bits() == want.to_bits() || (want.is_nan() && buf[0].is_nan()))
    })
}

/// Per-thread buffers, reused across chunks (fresh 256 KiB vectors per chunk would cost a
/// page fault storm).
#[derive(Default)]
struct Scratch {
    inputs: Vec<f32>,
    negated: Vec<f32>,
    refs: [Vec<f32>; 3],
    buf: Vec<f32>,
    neg: Vec<f32>,
}

fn check_chunk(s: &mut Scratch, paths: &[Isa], first: u64, step: u64, end: u64) -> Vec<[Stat; 3]> {
    s.inputs.clear();
    s.inputs.extend(
        (0..CHUNK)
            .map(|i| first + i * step)
            .take_while(|&b| b < end)
            .map(|b| f32::from_bits(b as u32)),
    );
    let inputs = &s.inputs;
    for (r, out) in REFS.iter().zip(s.refs.iter_mut()) {
        out.clear();
        out.extend(inputs.iter().map(|&x| r(x)));
    }
    s.negated.clear();
    s.negated.extend(inputs.iter().map(|&x| -x));
    s.buf.resize(inputs.len(), 0.0);
    s.neg.resize(inputs.len(), 0.0);
    let (buf, neg) = (&mut s.buf, &mut s.neg);
    paths
        .iter()
        .map(|&isa| {
            let mut stats = [Stat::NEW; 3];
            for (func, stat) in stats.iter_mut().enumerate() {
                buf.copy_from_slice(inputs);
                if KERNELS[func](isa, buf).is_err() {
                    stat.special_ok = false;
                    continue;
                }
                for ((&x, &y), &want) in inputs.iter().zip(buf.iter()).zip(&s.refs[func]) {
                    let err = ulp_error_f32(y, want);
                    if err > stat.max_ulp {
                        stat.max_ulp = err;
                        stat.worst = x;
                    }
                    if !output_ok(func, x, y) {
                        stat.special_ok = false;
                    }
                }
                if func == 0 {
                    // Odd symmetry, bit for bit (NaN payloads aside).
                    neg.copy_from_slice(&s.negated);
                    let sym_ok = KERNELS[0](isa, neg).is_ok()
                        && buf.iter().zip(neg.iter()).all(|(&p, &n)| {
                            (p.is_nan() && n.is_nan()) || p.to_bits() == (-n).to_bits()
                        });
                    stat.special_ok &= sym_ok;
                }
            }
            stats
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let step: u64 = match args.iter().position(|a| a == "--sample") {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse().ok()) {
            Some(n) if n >= 1 => n,
            _ => {
                eprintln!("usage: tanh_accuracy [--sample N]   (N >= 1)");
                std::process::exit(2);
            }
        },
        None => 1,
    };
    let start = Instant::now();
    let paths = Isa::available();
    let end = 1u64 << 32;
    let count = end.div_ceil(step);
    let chunks = count.div_ceil(CHUNK);
    let stats = (0..chunks)
        .into_par_iter()
        .map_init(Scratch::default, |s, c| {
            check_chunk(s, &paths, c * CHUNK * step, step, end)
        })
        .reduce(
            || vec![[Stat::NEW; 3]; paths.len()],
            |a, b| {
                a.iter()
                    .zip(&b)
                    .map(|(x, y)| [x[0].merge(y[0]), x[1].merge(y[1]), x[2].merge(y[2])])
                    .collect()
            },
        );
    println!("# inputs checked per path and function: {count} (every {step}-th f32 bit pattern)");
    println!("# path function max_ulp worst_input special_cases");
    let mut failed = false;
    for (isa, per_func) in paths.iter().zip(&stats) {
        for (func, stat) in per_func.iter().enumerate() {
            let special_ok = stat.special_ok && specials_ok(*isa, func);
            let bound_ok = stat.max_ulp <= BOUNDS[func];
            failed |= !special_ok || !bound_ok;
            println!(
                "{} {} {:.3} {:e} special_cases={}{}",
                isa.name(),
                FUNCS[func],
                stat.max_ulp,
                stat.worst,
                if special_ok { "ok" } else { "FAIL" },
                if bound_ok {
                    String::new()
                } else {
                    format!(" BOUND_VIOLATED(max {})", BOUNDS[func])
                },
            );
        }
    }
    println!("# wall time {:.1} s", start.elapsed().as_secs_f64());
    if failed {
        std::process::exit(1);
    }
}
