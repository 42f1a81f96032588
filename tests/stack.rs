//! The kernels run on threads with small stacks, in every build: the forward and backward
//! passes on a thread of [`STACK`] bytes, and in a rayon pool whose workers have that much,
//! give the same bits as on the main thread.
//!
//! The README's test command builds optimized code; CI also runs this file in a debug build
//! (`opt-level = 0`, as a dependent's debug build compiles this crate), where the kernels'
//! tiles are kept out of line (see `build.rs`). Inlined there, they gave each kernel function
//! a frame of about 1 MiB, and a time loop overflowed the 2 MiB stack of a test thread.

mod common;

use common::{Flags, Problem, cast, layer, sequences};
use rnn_kernels::{Activation, Float, Isa, RnnGrads, Workspace};

/// A quarter of the 2 MiB that Rust's spawned threads, test threads and rayon's workers get by
/// default.
const STACK: usize = 512 * 1024;

/// Forward (`output`, `h_n`) and backward (every gradient) of `p` on path `isa`, concatenated.
fn run<F: Float>(p: &Problem, isa: Isa) -> Vec<F> {
    let rnn = layer::<F>(p, Activation::Tanh, isa);
    let seq = sequences(p);
    let (t, b, i, h) = (p.steps, p.batch, p.input_size, p.hidden_size);
    let input = cast::<F>(&p.input);
    let h0 = p.h0.as_deref().map(cast::<F>);
    let mut output = vec![F::ZERO; t * b * h];
    let mut h_n = vec![F::ZERO; b * h];
    rnn.forward(&seq, &input, h0.as_deref(), &mut output, Some(&mut h_n))
        .unwrap();
    let mut d_input = vec![F::ZERO; t * b * i];
    let mut d_h0 = vec![F::ZERO; b * h];
    let mut d_w_ih = vec![F::ZERO; h * i];
    let mut d_w_hh = vec![F::ZERO; h * h];
    let mut d_b = vec![F::ZERO; 2 * h];
    let (d_b_ih, d_b_hh) = d_b.split_at_mut(h);
    let grads = RnnGrads {
        d_input: Some(&mut d_input),
        d_h0: Some(&mut d_h0),
        d_w_ih: Some(&mut d_w_ih),
        d_w_hh: Some(&mut d_w_hh),
        d_b_ih: Some(d_b_ih),
        d_b_hh: Some(d_b_hh),
    };
    let mut ws = Workspace::new();
    let grad_output = cast::<F>(&p.grad_output);
    let grad_h_n = cast::<F>(&p.grad_h_n);
    rnn.backward(
        &seq,
        &input,
        h0.as_deref(),
        &output,
        Some(&grad_output),
        Some(&grad_h_n),
        grads,
        &mut ws,
    )
    .unwrap();
    [output, h_n, d_input, d_h0, d_w_ih, d_w_hh, d_b]
        .into_iter()
        .flatten()
        .collect()
}

/// Shapes that reach every kind of tile: `B = 1` (paired and single panels, odd `H`), a few
/// rows, the 12-row time-loop tiles (`B = 24`), and one problem large enough to be threaded.
fn problems() -> Vec<Problem> {
    let flags = |lengths| Flags {
        bias: true,
        h0: true,
        lengths,
    };
    [
        (5, 1, 3, 64, false),
        (4, 1, 7, 37, false),
        (3, 3, 5, 33, true),
        (3, 24, 9, 40, false),
        (2, 64, 64, 256, false),
    ]
    .into_iter()
    .enumerate()
    .map(|(s, (t, b, i, h, l))| Problem::random(t, b, i, h, flags(l), 7 + s as u64))
    .collect()
}

fn bits<F: Float>(v: &[F]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn check<F: Float + Send>() {
    for p in problems() {
        for isa in Isa::available() {
            let expected = bits(&run::<F>(&p, isa));
            let on_thread = std::thread::Builder::new()
                .stack_size(STACK)
                .spawn({
                    let p = p.clone();
                    move || bits(&run::<F>(&p, isa))
                })
                .unwrap()
                .join()
                .unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .stack_size(STACK)
                .build()
                .unwrap();
            let in_pool = pool.install(|| bits(&run::<F>(&p, isa)));
            let shape = (p.steps, p.batch, p.input_size, p.hidden_size);
            for (name, got) in [("thread", on_thread), ("pool", in_pool)] {
                assert!(
                    got.iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                        && got.len() == expected.len(),
                    "{isa:?} {} {shape:?}: {name} results differ",
                    std::any::type_name::<F>()
                );
            }
        }
    }
}

#[test]
fn f32_runs_on_small_stacks() {
    check::<f32>();
}

#[test]
fn f64_runs_on_small_stacks() {
    check::<f64>();
}
