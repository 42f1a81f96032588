//! Criterion benches of the Elman RNN layer, one group per workload, comparing:
//!
//! * `crate/infer`: [`Rnn::forward`] (all hidden states `[T, B, H]` and `h_n`), and
//!   `crate/train`: forward + [`Rnn::backward`] from the gradient of `sum(output)`, producing
//!   dX, dh0, dW_ih, dW_hh and both bias gradients;
//! * `reference/infer`, `reference/train`: the crate's naive [`rnn_kernels::reference`] loops,
//!   only for workloads where they take under ~50 ms per iteration (see [`REFERENCE_MAX_FLOPS`]);
//! * `sgemm_per_step/infer`, `sgemm_per_step/train`: the obvious implementation a user would
//!   write on top of `matrixmultiply::sgemm`: per step, the input projection, the recurrent
//!   product and `tanh`; backward per step likewise (written below, checked against the crate
//!   once before timing).
//!
//! Throughput is in "elements" = FLOPs with the anchors' convention (forward `2*T*B*H*(I+H)`,
//! train = 3x forward), so criterion's `elem/s` reads as FLOP/s.
//!
//! Everything runs in a rayon pool of `RNN_BENCH_THREADS` threads (default 1, so that every
//! contender, the single-threaded baselines included, gets one core). Extra workloads:
//! `RNN_BENCH_WORKLOADS=rnn_h512_b64_t50,rnn_h1760_b16_t50 cargo bench --bench rnn` (ids
//! `rnn_hH_bB_tT[_iI]`, as in `examples/bench_table.rs`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::ThreadPool;
use rnn_kernels::reference::{rnn_backward, rnn_forward};
use rnn_kernels::{Activation, Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace};

/// Small and medium workloads of the anchors' table, so that `cargo bench` stays short.
const DEFAULT_WORKLOADS: [&str; 4] = [
    "rnn_h32_b1_t672",
    "rnn_h64_b1_t96",
    "rnn_h256_b1_t150",
    "rnn_h512_b16_t50",
];

/// The naive reference runs at a few GFLOP/s at best; above this many FLOPs per training
/// iteration (3x forward) it would take well over ~50 ms per iteration, so it is skipped.
/// This keeps it for rnn_h32_b1_t672, rnn_h64_b1_t96 and rnn_h256_b1_t150 (~118 MFLOP per
/// training iteration) and skips it for rnn_h512_b16_t50 (2.5 GFLOP) and everything bigger.
const REFERENCE_MAX_FLOPS: f64 = 150e6;

#[derive(Clone, Copy, Debug)]
struct Workload {
    h: usize,
    b: usize,
    t: usize,
    i: usize,
}

impl Workload {
    fn parse(id: &str) -> Option<Workload> {
        let rest = id.strip_prefix("rnn_")?;
        let parts: Vec<&str> = rest.split('_').collect();
        let dim = |k: usize, p: char| -> Option<usize> {
            let v: usize = parts.get(k)?.strip_prefix(p)?.parse().ok()?;
            (v > 0).then_some(v)
        };
        let (h, b, t) = (dim(0, 'h')?, dim(1, 'b')?, dim(2, 't')?);
        let i = match parts.len() {
            3 => h,
            4 => dim(3, 'i')?,
            _ => return None,
        };
        Some(Workload { h, b, t, i })
    }

    fn fwd_flops(&self) -> f64 {
        2.0 * (self.t * self.b * self.h) as f64 * (self.i + self.h) as f64
    }
}

/// Weights, biases, input and h0 with the anchors' distributions.
struct Data {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
    x: Vec<f32>,
    h0: Vec<f32>,
}

impl Data {
    fn new(w: Workload) -> Data {
        let mut rng = StdRng::seed_from_u64(12345);
        let mut uniform = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
            (0..n).map(|_| rng.random_range(lo..hi)).collect()
        };
        let k = 1.0 / (w.h as f32).sqrt();
        Data {
            w_ih: uniform(w.h * w.i, -k, k),
            w_hh: uniform(w.h * w.h, -k, k),
            b_ih: uniform(w.h, -k, k),
            b_hh: uniform(w.h, -k, k),
            x: uniform(w.t * w.b * w.i, -1.0, 1.0),
            h0: uniform(w.b * w.h, -0.5, 0.5),
        }
    }

    fn weights(&self) -> RnnWeights<'_, f32> {
        RnnWeights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: Some(&self.b_ih),
            b_hh: Some(&self.b_hh),
        }
    }
}

/// Gradients of one training iteration (the parameter ones are zeroed by each iteration).
struct Grads {
    d_x: Vec<f32>,
    d_h0: Vec<f32>,
    d_w_ih: Vec<f32>,
    d_w_hh: Vec<f32>,
    d_b_ih: Vec<f32>,
    d_b_hh: Vec<f32>,
}

impl Grads {
    fn new(w: Workload) -> Grads {
        Grads {
            d_x: vec![0.0; w.t * w.b * w.i],
            d_h0: vec![0.0; w.b * w.h],
            d_w_ih: vec![0.0; w.h * w.i],
            d_w_hh: vec![0.0; w.h * w.h],
            d_b_ih: vec![0.0; w.h],
            d_b_hh: vec![0.0; w.h],
        }
    }

    fn zero_params(&mut self) {
        self.d_w_ih.fill(0.0);
        self.d_w_hh.fill(0.0);
        self.d_b_ih.fill(0.0);
        self.d_b_hh.fill(0.0);
    }
}

/// `c = alpha * a b + beta * c` for row-major `a` `[m, k]` and `c` `[m, n]`; `b` is `[k, n]`
/// row-major, or, with `b_t`, the transpose of a row-major `[n, k]` matrix.
#[allow(clippy::too_many_arguments)]
fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], b_t: bool, beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let (rsb, csb) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the assert above keeps every addressed element of a, b and c inside the slices,
    // and c does not alias a or b (a shared and an exclusive borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The same as [`sgemm`] with `a` transposed: `a` is a row-major `[k, m]` matrix.
fn sgemm_at(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: as in `sgemm`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// The per-step SGEMM baseline. Forward: for each step, `h_t = tanh(x_t W_ih^T + b + h_(t-1)
/// W_hh^T)`, the projection and the recurrent product each one `sgemm`.
fn naive_forward(w: Workload, d: &Data, output: &mut [f32], h_n: &mut [f32]) {
    let (h, b, i) = (w.h, w.b, w.i);
    let sl = b * h;
    for t in 0..w.t {
        let (done, rest) = output.split_at_mut(t * sl);
        let cur = &mut rest[..sl];
        for row in cur.chunks_exact_mut(h) {
            for ((c, &x), &y) in row.iter_mut().zip(&d.b_ih).zip(&d.b_hh) {
                *c = x + y;
            }
        }
        sgemm(
            b,
            i,
            h,
            &d.x[t * b * i..(t + 1) * b * i],
            &d.w_ih,
            true,
            1.0,
            cur,
        );
        let prev = if t == 0 {
            &d.h0[..]
        } else {
            &done[(t - 1) * sl..]
        };
        sgemm(b, h, h, prev, &d.w_hh, true, 1.0, cur);
        for v in cur.iter_mut() {
            *v = v.tanh();
        }
    }
    h_n.copy_from_slice(&output[(w.t - 1) * sl..]);
}

/// The per-step SGEMM baseline's BPTT from `grad_output` = ones: per step (newest first),
/// `dA_t = (1 + carry) * (1 - h_t^2)`, `carry = dA_t W_hh`, `dX_t = dA_t W_ih`,
/// `dW_ih += dA_t^T x_t`, `dW_hh += dA_t^T h_(t-1)`, `db += colsum(dA_t)`.
fn naive_backward(
    w: Workload,
    d: &Data,
    output: &[f32],
    da: &mut [f32],
    carry: &mut [f32],
    g: &mut Grads,
) {
    let (h, b, i) = (w.h, w.b, w.i);
    let sl = b * h;
    g.zero_params();
    carry.fill(0.0);
    for t in (0..w.t).rev() {
        let h_t = &output[t * sl..(t + 1) * sl];
        for ((a, &c), &y) in da.iter_mut().zip(&*carry).zip(h_t) {
            *a = (1.0 + c) * (1.0 - y * y);
        }
        sgemm(b, h, h, da, &d.w_hh, false, 0.0, carry);
        sgemm(
            b,
            h,
            i,
            da,
            &d.w_ih,
            false,
            0.0,
            &mut g.d_x[t * b * i..(t + 1) * b * i],
        );
        sgemm_at(
            h,
            b,
            i,
            da,
            &d.x[t * b * i..(t + 1) * b * i],
            1.0,
            &mut g.d_w_ih,
        );
        let prev = if t == 0 {
            &d.h0[..]
        } else {
            &output[(t - 1) * sl..t * sl]
        };
        sgemm_at(h, b, h, da, prev, 1.0, &mut g.d_w_hh);
        for row in da.chunks_exact(h) {
            for ((x, y), &a) in g.d_b_ih.iter_mut().zip(g.d_b_hh.iter_mut()).zip(row) {
                *x += a;
                *y += a;
            }
        }
    }
    g.d_h0.copy_from_slice(carry);
}

/// Runs `f` `iters` times inside `pool` (so that the crate's parallel loops run on the pool's
/// threads, entered once per batch rather than once per call) and returns the elapsed time.
fn timed(pool: &ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    pool.install(|| {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        start.elapsed()
    })
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn bench_workload(c: &mut Criterion, pool: &ThreadPool, id: &str, w: Workload) {
    let d = Data::new(w);
    let dims = RnnDims {
        input_size: w.i,
        hidden_size: w.h,
    };
    let rnn = Rnn::new(Activation::Tanh, dims, d.weights()).expect("valid layer");
    let seq = Sequences::new(w.t, w.b);
    let f = w.fwd_flops();
    let ones = vec![1.0f32; w.t * w.b * w.h];
    let zeros = vec![0.0f32; w.b * w.h];
    let mut output = vec![0.0f32; w.t * w.b * w.h];
    let mut h_n = vec![0.0f32; w.b * w.h];
    let mut g = Grads::new(w);
    let mut ws = Workspace::<f32>::new();

    let mut train_step = |output: &mut [f32], h_n: &mut [f32], g: &mut Grads| {
        rnn.forward(&seq, &d.x, Some(&d.h0), output, Some(h_n))
            .expect("forward");
        g.zero_params();
        rnn.backward(
            &seq,
            &d.x,
            Some(&d.h0),
            output,
            Some(&ones),
            Some(&zeros),
            RnnGrads {
                d_input: Some(&mut g.d_x),
                d_h0: Some(&mut g.d_h0),
                d_w_ih: Some(&mut g.d_w_ih),
                d_w_hh: Some(&mut g.d_w_hh),
                d_b_ih: Some(&mut g.d_b_ih),
                d_b_hh: Some(&mut g.d_b_hh),
            },
            &mut ws,
        )
        .expect("backward");
    };

    // Check the per-step baseline against the crate once, so that both compute the same thing.
    train_step(&mut output, &mut h_n, &mut g);
    let mut n_output = vec![0.0f32; output.len()];
    let mut n_h_n = vec![0.0f32; h_n.len()];
    let mut n_g = Grads::new(w);
    let mut da = vec![0.0f32; w.b * w.h];
    let mut carry = vec![0.0f32; w.b * w.h];
    naive_forward(w, &d, &mut n_output, &mut n_h_n);
    naive_backward(w, &d, &n_output, &mut da, &mut carry, &mut n_g);
    for (what, a, b) in [
        ("output", &n_output, &output),
        ("d_input", &n_g.d_x, &g.d_x),
        ("d_h0", &n_g.d_h0, &g.d_h0),
        ("d_w_ih", &n_g.d_w_ih, &g.d_w_ih),
        ("d_w_hh", &n_g.d_w_hh, &g.d_w_hh),
        ("d_b_ih", &n_g.d_b_ih, &g.d_b_ih),
    ] {
        let diff = max_rel_diff(a, b);
        assert!(
            diff < 1e-3,
            "{id}: sgemm baseline {what} differs from the crate by {diff}"
        );
    }

    let mut group = c.benchmark_group(id);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    group.throughput(Throughput::Elements(f as u64));
    group.bench_function(BenchmarkId::new("crate", "infer"), |bch| {
        bch.iter_custom(|iters| {
            timed(pool, iters, || {
                rnn.forward(
                    &seq,
                    black_box(&d.x),
                    Some(&d.h0),
                    &mut output,
                    Some(&mut h_n),
                )
                .expect("forward");
                black_box(&output);
            })
        })
    });
    group.bench_function(BenchmarkId::new("sgemm_per_step", "infer"), |bch| {
        bch.iter_custom(|iters| {
            timed(pool, iters, || {
                naive_forward(w, black_box(&d), &mut n_output, &mut n_h_n);
                black_box(&n_output);
            })
        })
    });
    let with_reference = 3.0 * f <= REFERENCE_MAX_FLOPS;
    if with_reference {
        group.bench_function(BenchmarkId::new("reference", "infer"), |bch| {
            bch.iter_custom(|iters| {
                timed(pool, iters, || {
                    let r = rnn_forward(
                        Activation::Tanh,
                        dims,
                        &d.weights(),
                        &seq,
                        black_box(&d.x),
                        Some(&d.h0),
                    )
                    .expect("reference forward");
                    black_box(r);
                })
            })
        });
    }

    group.throughput(Throughput::Elements((3.0 * f) as u64));
    group.bench_function(BenchmarkId::new("crate", "train"), |bch| {
        bch.iter_custom(|iters| {
            timed(pool, iters, || {
                train_step(&mut output, &mut h_n, &mut g);
                black_box(&g.d_w_hh);
            })
        })
    });
    group.bench_function(BenchmarkId::new("sgemm_per_step", "train"), |bch| {
        bch.iter_custom(|iters| {
            timed(pool, iters, || {
                naive_forward(w, black_box(&d), &mut n_output, &mut n_h_n);
                naive_backward(w, &d, &n_output, &mut da, &mut carry, &mut n_g);
                black_box(&n_g.d_w_hh);
            })
        })
    });
    if with_reference {
        group.bench_function(BenchmarkId::new("reference", "train"), |bch| {
            bch.iter_custom(|iters| {
                timed(pool, iters, || {
                    // rnn_backward reruns the forward itself, so this is forward + backward.
                    let r = rnn_backward(
                        Activation::Tanh,
                        dims,
                        &d.weights(),
                        &seq,
                        black_box(&d.x),
                        Some(&d.h0),
                        Some(&ones),
                        Some(&zeros),
                    )
                    .expect("reference backward");
                    black_box(r);
                })
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let threads = match std::env::var("RNN_BENCH_THREADS") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .expect("RNN_BENCH_THREADS must be a positive integer"),
        Err(_) => 1,
    };
    let ids: Vec<String> = match std::env::var("RNN_BENCH_WORKLOADS") {
        Ok(v) => v
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Err(_) => DEFAULT_WORKLOADS.iter().map(|s| s.to_string()).collect(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    for id in &ids {
        let w = Workload::parse(id)
            .unwrap_or_else(|| panic!("bad workload `{id}`: expected rnn_hH_bB_tT[_iI]"));
        bench_workload(c, &pool, id, w);
    }
}

criterion_group!(rnn_benches, benches);
criterion_main!(rnn_benches);
