//! Benchmark table in the format and with the timing scheme of the RNN anchors
//! (`/work/shared/anchors`, `src/onednn_rnn_bench.cpp`), so that the crate's lines can be put
//! next to oneDNN's, PyTorch's and ONNX Runtime's.
//!
//! ```text
//! cargo run --release --example bench_table -- [--threads 1,2] [--modes infer,train] WORKLOAD...
//! ```
//!
//! stdout: one line per (workload, mode, threads):
//! `rnn-kernels WORKLOAD MODE THREADS median_ms min_ms gflops`; stderr: `#` diagnostics
//! (instruction-set path, output checks, sample counts).
//!
//! What is measured (mirroring the anchor harness):
//!
//! * timing loop: one call to check the outputs, one cold call, warm-up calls for at least
//!   0.1 s (at most 50), then N samples, each the mean of `inner` back-to-back calls (`inner`
//!   chosen so that a sample lasts at least 2 ms), N = clamp(target / sample time, 5, 101)
//!   with target 1 s (`--target-s`, or `ANCHOR_TARGET_S` as in the anchors' `run.sh`);
//!   `median_ms` is the median sample, `min_ms` the fastest.
//! * `infer`: [`Rnn::forward`] writing the whole output sequence `[T, B, H]` and the final
//!   state `h_n`, because oneDNN's `forward_inference` in the anchor binds `dst_layer`
//!   (`[T, B, H]`) and `dst_iter`; the weights are prepared once ([`Rnn::new`]), untimed, as
//!   the anchor reorders the weights for inference once, untimed.
//! * `train`: forward (output + `h_n`), zeroing the weight and bias gradients (the crate
//!   accumulates into them, as oneDNN does), then [`Rnn::backward`] with `grad_output` = ones
//!   (the gradient of `sum(y)`) and `grad_h_n` = zeros (the anchor's zero-filled
//!   `diff_dst_iter`), producing dX, dh0, dW_ih, dW_hh, db_ih and db_hh. With `--replan` the
//!   layer is also rebuilt from the user's weights ([`Rnn::new`]) inside every training step,
//!   as the anchor re-reorders the user weights every training step; by default the plan is
//!   built once, outside the timed region.
//! * data: weights and biases uniform(-1/sqrt(H), 1/sqrt(H)), input uniform(-1, 1),
//!   h0 uniform(-0.5, 0.5) (the anchor's distributions), fixed seed.
//! * FLOPs: forward `2*T*B*H*(I+H)`, train = 3x forward (the anchors' convention);
//!   `gflops` = FLOPs / median time.
//! * `--threads N` runs everything inside an N-thread rayon pool. The anchors' `run.sh` also
//!   pins the process (`taskset -c 0` for 1 thread, `taskset -c 0,1` for 2); to mirror that
//!   run the built binary under `taskset` once per thread count (see `BENCHMARKS.md`).

use std::process::ExitCode;
use std::time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rnn_kernels::{Activation, Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace};

const ENGINE: &str = "rnn-kernels";

/// The rnn rows of the anchors' workload table (`run.sh`, `ALL_WL`).
const ALL_RNN: [&str; 7] = [
    "rnn_h32_b1_t672",
    "rnn_h64_b1_t96",
    "rnn_h256_b1_t150",
    "rnn_h512_b16_t50",
    "rnn_h512_b64_t50",
    "rnn_h1760_b16_t50",
    "rnn_h1760_b64_t50",
];

/// Largest number of f32 elements all buffers of one workload may hold (4 GiB).
const MAX_ELEMS: usize = 1 << 30;

const USAGE: &str = "\
usage: bench_table [--threads LIST] [--modes LIST] [--target-s SEC] [--replan]
                   [--weight-scale S] WORKLOAD...
       bench_table --list

  WORKLOAD      rnn_hH_bB_tT or rnn_hH_bB_tT_iI (I defaults to H), e.g. rnn_h512_b16_t50;
                `all` = the rnn rows of the anchors' table
  --threads     comma-separated rayon pool sizes, e.g. 1,2 (default 1,2)
  --modes       comma-separated subset of infer,train (default infer,train)
  --target-s    seconds of timed samples per line (default $ANCHOR_TARGET_S or 1.0)
  --replan      train: rebuild the layer from the weights inside every step
  --weight-scale  multiply W_ih, W_hh and the biases by S (default 1); e.g. 1e-3 makes the
                BPTT carry decay into the subnormal range within a few steps
  --list        print the workloads of `all`

stdout: `rnn-kernels WORKLOAD MODE THREADS median_ms min_ms gflops`
stderr: `#` diagnostics";

#[derive(Clone, Debug)]
struct Workload {
    id: String,
    h: usize,
    b: usize,
    t: usize,
    i: usize,
}

impl Workload {
    fn fwd_flops(&self) -> f64 {
        2.0 * self.t as f64 * self.b as f64 * self.h as f64 * (self.i + self.h) as f64
    }
}

#[derive(Debug)]
struct Options {
    threads: Vec<usize>,
    infer: bool,
    train: bool,
    target_s: f64,
    replan: bool,
    weight_scale: f32,
    workloads: Vec<Workload>,
}

/// What went wrong with the command line: a usage error (exit 2) with its message.
struct UsageError(String);

fn parse_dim(part: &str, prefix: char, id: &str) -> Result<usize, UsageError> {
    let bad = || {
        UsageError(format!(
            "bad workload `{id}`: expected rnn_hH_bB_tT[_iI] with positive integers"
        ))
    };
    let digits = part.strip_prefix(prefix).ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<usize>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(v) => Ok(v),
    }
}

fn parse_workload(id: &str) -> Result<Workload, UsageError> {
    let cell = id.split('_').next().unwrap_or("");
    match cell {
        "rnn" => {}
        "lstm" | "gru" => {
            return Err(UsageError(format!(
                "workload `{id}`: only rnn_ workloads are supported yet \
                 (the crate has no {} cell)",
                cell.to_uppercase()
            )));
        }
        _ => {
            return Err(UsageError(format!(
                "unknown workload `{id}`: expected rnn_hH_bB_tT[_iI] or `all`"
            )));
        }
    }
    let parts: Vec<&str> = id.split('_').skip(1).collect();
    if parts.len() != 3 && parts.len() != 4 {
        return Err(UsageError(format!(
            "bad workload `{id}`: expected rnn_hH_bB_tT[_iI]"
        )));
    }
    let h = parse_dim(parts[0], 'h', id)?;
    let b = parse_dim(parts[1], 'b', id)?;
    let t = parse_dim(parts[2], 't', id)?;
    let i = match parts.get(3) {
        Some(p) => parse_dim(p, 'i', id)?,
        None => h,
    };
    // Everything the train mode holds: x, dX; output, ones, backward workspace; h0, h_n, dh0,
    // zeros; weights and their gradients (twice: user copy and the layer's); biases.
    let elems = (|| {
        let tb = t.checked_mul(b)?;
        let x = tb.checked_mul(i)?.checked_mul(2)?;
        let y = tb.checked_mul(h)?.checked_mul(3)?;
        let bh = b.checked_mul(h)?.checked_mul(5)?;
        let w = h.checked_mul(i.checked_add(h)?)?.checked_mul(3)?;
        x.checked_add(y)?
            .checked_add(bh)?
            .checked_add(w)?
            .checked_add(h.checked_mul(6)?)
    })();
    match elems {
        Some(e) if e <= MAX_ELEMS => {}
        _ => {
            return Err(UsageError(format!(
                "workload `{id}` is too large: its buffers would exceed {MAX_ELEMS} f32 elements"
            )));
        }
    }
    Ok(Workload {
        id: id.to_string(),
        h,
        b,
        t,
        i,
    })
}

fn parse_threads(s: &str) -> Result<Vec<usize>, UsageError> {
    let bad = || UsageError(format!("bad --threads `{s}`: expected e.g. 1 or 1,2"));
    let mut out = Vec::new();
    for part in s.split(',') {
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        match part.parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => out.push(n),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn parse_target(s: &str, what: &str) -> Result<f64, UsageError> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(UsageError(format!(
            "bad {what} `{s}`: expected seconds in (0, 3600]"
        ))),
    }
}

/// `Ok(None)` means "done, exit 0" (help or list printed).
fn parse_args(args: &[String]) -> Result<Option<Options>, UsageError> {
    let mut threads = vec![1, 2];
    let (mut infer, mut train) = (true, true);
    let mut target_s = match std::env::var("ANCHOR_TARGET_S") {
        Ok(v) => parse_target(&v, "ANCHOR_TARGET_S")?,
        Err(_) => 1.0,
    };
    let mut replan = false;
    let mut weight_scale = 1.0f32;
    let mut ids: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| UsageError(format!("missing value for {name}")))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--list" => {
                for w in ALL_RNN {
                    println!("{w}");
                }
                return Ok(None);
            }
            "--threads" => threads = parse_threads(&value("--threads")?)?,
            "--modes" => {
                let v = value("--modes")?;
                (infer, train) = (false, false);
                for m in v.split(',') {
                    match m {
                        "infer" => infer = true,
                        "train" => train = true,
                        _ => {
                            return Err(UsageError(format!(
                                "bad --modes `{v}`: modes are infer and train"
                            )));
                        }
                    }
                }
            }
            "--target-s" => target_s = parse_target(&value("--target-s")?, "--target-s")?,
            "--replan" => replan = true,
            "--weight-scale" => {
                let v = value("--weight-scale")?;
                weight_scale = match v.parse::<f32>() {
                    Ok(x) if x.is_finite() && x > 0.0 => x,
                    _ => {
                        return Err(UsageError(format!(
                            "bad --weight-scale `{v}`: a positive finite number"
                        )));
                    }
                };
            }
            s if s.starts_with('-') => return Err(UsageError(format!("unknown option `{s}`"))),
            s => ids.push(s.to_string()),
        }
    }
    if ids.is_empty() {
        return Err(UsageError("no workload given".into()));
    }
    let mut workloads = Vec::new();
    for id in ids
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        if id == "all" {
            for w in ALL_RNN {
                workloads.push(parse_workload(w)?);
            }
        } else {
            workloads.push(parse_workload(id)?);
        }
    }
    if workloads.is_empty() {
        return Err(UsageError("no workload given".into()));
    }
    Ok(Some(Options {
        threads,
        infer,
        train,
        target_s,
        replan,
        weight_scale,
        workloads,
    }))
}

struct Stats {
    med_ms: f64,
    min_ms: f64,
    samples: usize,
    inner: usize,
}

/// The anchors' timing loop (`bench()` in `onednn_rnn_bench.cpp`).
fn bench<E>(target_s: f64, mut f: impl FnMut() -> Result<(), E>) -> Result<Stats, E> {
    // One cold call, then warm-up calls until >= 0.1 s spent (at most 50).
    f()?;
    let w0 = Instant::now();
    let mut nw = 0;
    let t = loop {
        let a = Instant::now();
        f()?;
        let t = a.elapsed().as_secs_f64();
        nw += 1;
        if w0.elapsed().as_secs_f64() >= 0.1 || nw >= 50 {
            break t;
        }
    };
    // Each sample averages `inner` calls so that a sample lasts >= ~2 ms.
    let inner = ((0.002 / t.max(1e-9)).ceil() as usize).max(1);
    let samples = ((target_s / (t * inner as f64).max(1e-9)) as usize).clamp(5, 101);
    let mut v = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = Instant::now();
        for _ in 0..inner {
            f()?;
        }
        v.push(a.elapsed().as_secs_f64() / inner as f64);
    }
    v.sort_by(f64::total_cmp);
    let med = if samples % 2 == 1 {
        v[samples / 2]
    } else {
        0.5 * (v[samples / 2 - 1] + v[samples / 2])
    };
    Ok(Stats {
        med_ms: med * 1e3,
        min_ms: v[0] * 1e3,
        samples,
        inner,
    })
}

fn print_line(wid: &str, mode: &str, threads: usize, st: &Stats, flops: f64) {
    println!(
        "{ENGINE} {wid} {mode} {threads} {:.4} {:.4} {:.2}",
        st.med_ms,
        st.min_ms,
        flops / (st.med_ms * 1e-3) / 1e9
    );
    eprintln!(
        "# samples {ENGINE} {wid} {mode} samples={} inner={}",
        st.samples, st.inner
    );
}

/// The anchors' output check: every value finite and not all zero. Returns whether it passed.
fn check(wid: &str, what: &str, v: &[f32]) -> bool {
    let finite = v.iter().all(|x| x.is_finite());
    let max_abs = v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x.abs())));
    let mean_abs = v.iter().map(|&x| f64::from(x.abs())).sum::<f64>() / v.len().max(1) as f64;
    let ok = finite && max_abs > 0.0;
    eprintln!(
        "# check {ENGINE} {wid} {what} finite={} max_abs={max_abs:.4} mean_abs={mean_abs:.4} {}",
        u8::from(finite),
        if ok { "OK" } else { "FAIL" }
    );
    ok
}

fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Everything one training step writes, allocated once.
struct TrainBuffers {
    output: Vec<f32>,
    h_n: Vec<f32>,
    ones: Vec<f32>,
    zeros: Vec<f32>,
    d_x: Vec<f32>,
    d_h0: Vec<f32>,
    d_w_ih: Vec<f32>,
    d_w_hh: Vec<f32>,
    d_b_ih: Vec<f32>,
    d_b_hh: Vec<f32>,
    ws: Workspace<f32>,
}

impl TrainBuffers {
    fn new(w: &Workload) -> Self {
        let (h, b, t, i) = (w.h, w.b, w.t, w.i);
        TrainBuffers {
            output: vec![0.0; t * b * h],
            h_n: vec![0.0; b * h],
            ones: vec![1.0; t * b * h],
            zeros: vec![0.0; b * h],
            d_x: vec![0.0; t * b * i],
            d_h0: vec![0.0; b * h],
            d_w_ih: vec![0.0; h * i],
            d_w_hh: vec![0.0; h * h],
            d_b_ih: vec![0.0; h],
            d_b_hh: vec![0.0; h],
            ws: Workspace::new(),
        }
    }

    /// One training step: forward, zero the parameter gradients (the crate accumulates into
    /// them), backward from the gradient of `sum(output)`.
    fn step(
        &mut self,
        rnn: &Rnn<f32>,
        seq: &Sequences<'_>,
        x: &[f32],
        h0: &[f32],
    ) -> rnn_kernels::Result<()> {
        rnn.forward(seq, x, Some(h0), &mut self.output, Some(&mut self.h_n))?;
        self.d_w_ih.fill(0.0);
        self.d_w_hh.fill(0.0);
        self.d_b_ih.fill(0.0);
        self.d_b_hh.fill(0.0);
        rnn.backward(
            seq,
            x,
            Some(h0),
            &self.output,
            Some(&self.ones),
            Some(&self.zeros),
            RnnGrads {
                d_input: Some(&mut self.d_x),
                d_h0: Some(&mut self.d_h0),
                d_w_ih: Some(&mut self.d_w_ih),
                d_w_hh: Some(&mut self.d_w_hh),
                d_b_ih: Some(&mut self.d_b_ih),
                d_b_hh: Some(&mut self.d_b_hh),
            },
            &mut self.ws,
        )
    }
}

/// Runs the requested modes of one workload in the current rayon pool; `Ok(false)` when an
/// output check failed.
fn run_workload(opts: &Options, w: &Workload, threads: usize) -> rnn_kernels::Result<bool> {
    let (h, b, t, i) = (w.h, w.b, w.t, w.i);
    let mut rng = StdRng::seed_from_u64(12345);
    let k = opts.weight_scale / (h as f32).sqrt();
    let w_ih = uniform(&mut rng, h * i, -k, k);
    let w_hh = uniform(&mut rng, h * h, -k, k);
    let b_ih = uniform(&mut rng, h, -k, k);
    let b_hh = uniform(&mut rng, h, -k, k);
    let x = uniform(&mut rng, t * b * i, -1.0, 1.0);
    let h0 = uniform(&mut rng, b * h, -0.5, 0.5);

    let dims = RnnDims {
        input_size: i,
        hidden_size: h,
    };
    let weights = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: Some(&b_ih),
        b_hh: Some(&b_hh),
    };
    let rnn = Rnn::new(Activation::Tanh, dims, weights)?;
    eprintln!(
        "# impl {ENGINE} {} isa={:?} rayon_threads={} replan={} weight_scale={}",
        w.id,
        rnn.isa(),
        rayon::current_num_threads(),
        opts.replan,
        opts.weight_scale
    );
    let seq = Sequences::new(t, b);
    let f = w.fwd_flops();
    let mut ok = true;

    if opts.infer {
        let mut output = vec![0.0f32; t * b * h];
        let mut h_n = vec![0.0f32; b * h];
        let infer = |output: &mut [f32], h_n: &mut [f32]| {
            rnn.forward(&seq, &x, Some(&h0), output, Some(h_n))
        };
        infer(&mut output, &mut h_n)?;
        ok &= check(&w.id, "infer.dst_layer", &output);
        let st = bench(opts.target_s, || infer(&mut output, &mut h_n))?;
        print_line(&w.id, "infer", threads, &st, f);
    }

    if opts.train {
        let mut tb = TrainBuffers::new(w);
        let replan = opts.replan;
        let train = |tb: &mut TrainBuffers| -> rnn_kernels::Result<()> {
            if replan {
                // The user's weights changed: lay them out again, as the anchor reorders them.
                let layer = Rnn::new(Activation::Tanh, dims, weights)?;
                tb.step(&layer, &seq, &x, &h0)
            } else {
                tb.step(&rnn, &seq, &x, &h0)
            }
        };
        // The first step also grows the workspace, so the timed steps never allocate.
        train(&mut tb)?;
        ok &= check(&w.id, "train.dst_layer", &tb.output);
        ok &= check(&w.id, "train.dX", &tb.d_x);
        ok &= check(&w.id, "train.dh0", &tb.d_h0);
        ok &= check(&w.id, "train.dW_ih", &tb.d_w_ih);
        ok &= check(&w.id, "train.dW_hh", &tb.d_w_hh);
        ok &= check(&w.id, "train.db_ih", &tb.d_b_ih);
        ok &= check(&w.id, "train.db_hh", &tb.d_b_hh);
        let st = bench(opts.target_s, || train(&mut tb))?;
        print_line(&w.id, "train", threads, &st, 3.0 * f);
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(UsageError(msg)) => {
            eprintln!("bench_table: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "# {ENGINE} version {} target_s={}",
        env!("CARGO_PKG_VERSION"),
        opts.target_s
    );
    let mut all_ok = true;
    for &n in &opts.threads {
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("bench_table: cannot build a {n}-thread pool: {e}");
                return ExitCode::FAILURE;
            }
        };
        pool.install(|| {
            for w in &opts.workloads {
                match run_workload(&opts, w, n) {
                    Ok(ok) => all_ok &= ok,
                    Err(e) => {
                        eprintln!("# error {ENGINE} {}: {e}", w.id);
                        println!("{ENGINE} {} error {n} nan nan nan", w.id);
                        all_ok = false;
                    }
                }
            }
        });
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
