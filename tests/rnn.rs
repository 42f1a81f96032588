//! The optimized Elman RNN against the naive reference, and the reference against finite
//! differences.

mod common;

use common::{Flags, Problem, cast, layer, rel_err, sequences, tolerance};
use proptest::prelude::*;
use rnn_kernels::reference::{self, RnnGradients};
use rnn_kernels::{
    Activation, Float, Isa, Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace,
};

fn dims(p: &Problem) -> RnnDims {
    RnnDims {
        input_size: p.input_size,
        hidden_size: p.hidden_size,
    }
}

/// Reference results in f64 for a problem.
fn reference_f64(p: &Problem, act: Activation) -> (reference::RnnForward<f64>, RnnGradients<f64>) {
    let (w_ih, w_hh) = (cast::<f64>(&p.w_ih), cast::<f64>(&p.w_hh));
    let b_ih = p.b_ih.as_deref().map(cast::<f64>);
    let b_hh = p.b_hh.as_deref().map(cast::<f64>);
    let w = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: b_ih.as_deref(),
        b_hh: b_hh.as_deref(),
    };
    let seq = Sequences {
        steps: p.steps,
        batch: p.batch,
        lengths: p.lengths.as_deref(),
    };
    let input = cast::<f64>(&p.input);
    let h0 = p.h0.as_deref().map(cast::<f64>);
    let go = cast::<f64>(&p.grad_output);
    let gh = cast::<f64>(&p.grad_h_n);
    let fwd = reference::rnn_forward(act, dims(p), &w, &seq, &input, h0.as_deref()).unwrap();
    let grads = reference::rnn_backward(
        act,
        dims(p),
        &w,
        &seq,
        &input,
        h0.as_deref(),
        Some(&go),
        Some(&gh),
    )
    .unwrap();
    (fwd, grads)
}

/// Everything the optimized path produces, in precision F on path `isa`.
struct Ours<F> {
    output: Vec<F>,
    h_n: Vec<F>,
    h_n_final: Vec<F>,
    d_input: Vec<F>,
    d_h0: Vec<F>,
    d_w_ih: Vec<F>,
    d_w_hh: Vec<F>,
    d_b_ih: Vec<F>,
    d_b_hh: Vec<F>,
}

fn run_ours<F: Float>(p: &Problem, act: Activation, isa: Isa) -> Ours<F> {
    let rnn = layer::<F>(p, act, isa);
    let seq = sequences(p);
    let (t, b, i, h) = (p.steps, p.batch, p.input_size, p.hidden_size);
    let input = cast::<F>(&p.input);
    let h0 = p.h0.as_deref().map(cast::<F>);
    let mut ws = Workspace::new();
    let mut ours = Ours {
        output: vec![F::ZERO; t * b * h],
        h_n: vec![F::ZERO; b * h],
        h_n_final: vec![F::ZERO; b * h],
        d_input: vec![F::ZERO; t * b * i],
        d_h0: vec![F::ZERO; b * h],
        d_w_ih: vec![F::ZERO; h * i],
        d_w_hh: vec![F::ZERO; h * h],
        d_b_ih: vec![F::ZERO; if p.b_ih.is_some() { h } else { 0 }],
        d_b_hh: vec![F::ZERO; if p.b_hh.is_some() { h } else { 0 }],
    };
    rnn.forward(
        &seq,
        &input,
        h0.as_deref(),
        &mut ours.output,
        Some(&mut ours.h_n),
    )
    .unwrap();
    rnn.forward_final(&seq, &input, h0.as_deref(), &mut ours.h_n_final, &mut ws)
        .unwrap();
    let grads = RnnGrads {
        d_input: Some(&mut ours.d_input),
        d_h0: Some(&mut ours.d_h0),
        d_w_ih: Some(&mut ours.d_w_ih),
        d_w_hh: Some(&mut ours.d_w_hh),
        d_b_ih: p.b_ih.is_some().then_some(&mut ours.d_b_ih[..]),
        d_b_hh: p.b_hh.is_some().then_some(&mut ours.d_b_hh[..]),
    };
    rnn.backward(
        &seq,
        &input,
        h0.as_deref(),
        &ours.output,
        Some(&cast::<F>(&p.grad_output)),
        Some(&cast::<F>(&p.grad_h_n)),
        grads,
        &mut ws,
    )
    .unwrap();
    ours
}

/// Compares every tensor; returns the name and error of the first one out of tolerance.
fn compare<F: Float>(p: &Problem, act: Activation, isa: Isa) -> Result<(), String> {
    let (fwd, g) = reference_f64(p, act);
    let ours = run_ours::<F>(p, act, isa);
    let tol = tolerance::<F>(p);
    let pairs: [(&str, &[F], &[f64]); 9] = [
        ("output", &ours.output, &fwd.output),
        ("h_n", &ours.h_n, &fwd.h_n),
        ("h_n (forward_final)", &ours.h_n_final, &fwd.h_n),
        ("d_input", &ours.d_input, &g.d_input),
        ("d_h0", &ours.d_h0, &g.d_h0),
        ("d_w_ih", &ours.d_w_ih, &g.d_w_ih),
        ("d_w_hh", &ours.d_w_hh, &g.d_w_hh),
        ("d_b_ih", &ours.d_b_ih, &g.d_b_ih),
        ("d_b_hh", &ours.d_b_hh, &g.d_b_hh),
    ];
    // ReLU's derivative jumps at 0: a pre-activation within the forward's error bound of zero
    // may fall on either side in the two computations, and every gradient through that unit
    // then differs by O(1), which no rounding bound covers. Such draws check the forward only.
    let grads_comparable = !matches!(act, Activation::Relu) || !near_relu_kink(p, &fwd.output, tol);
    let compared = if grads_comparable { pairs.len() } else { 3 };
    for (name, o, r) in pairs.into_iter().take(compared) {
        let e = rel_err(o, r);
        if e.is_nan() || e > tol {
            return Err(format!(
                "{name}: error {e:e} > tolerance {tol:e} ({isa:?}, {act:?}, {})",
                std::any::type_name::<F>()
            ));
        }
    }
    // Beyond each length: outputs and input gradients exactly zero.
    if let Some(l) = &p.lengths {
        for t in 0..p.steps {
            for (b, &n) in l.iter().enumerate() {
                if t >= n {
                    let r = t * p.batch + b;
                    let h = p.hidden_size;
                    let i = p.input_size;
                    assert!(
                        ours.output[r * h..(r + 1) * h]
                            .iter()
                            .all(|v| *v == F::ZERO)
                    );
                    assert!(
                        ours.d_input[r * i..(r + 1) * i]
                            .iter()
                            .all(|v| *v == F::ZERO)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Whether a pre-activation of the f64 reference over the active steps lies within `tol`
/// (relative to `max(max|pre|, 1)`, as [`rel_err`] scales) of zero. `output` is the
/// reference's `[T, B, H]` states.
fn near_relu_kink(p: &Problem, output: &[f64], tol: f64) -> bool {
    let (batch, i_n, h_n) = (p.batch, p.input_size, p.hidden_size);
    let mut pre = Vec::new();
    for t in 0..p.steps {
        for b in 0..batch {
            if p.lengths.as_ref().is_some_and(|l| t >= l[b]) {
                continue;
            }
            let x = &p.input[(t * batch + b) * i_n..][..i_n];
            for j in 0..h_n {
                let mut v: f64 = (0..i_n)
                    .map(|i| p.w_ih[j * i_n + i] as f64 * x[i] as f64)
                    .sum();
                v += p.b_ih.as_ref().map_or(0.0, |b| b[j] as f64);
                v += p.b_hh.as_ref().map_or(0.0, |b| b[j] as f64);
                for k in 0..h_n {
                    let prev = match t {
                        0 => p.h0.as_ref().map_or(0.0, |h| h[b * h_n + k] as f64),
                        _ => output[((t - 1) * batch + b) * h_n + k],
                    };
                    v += p.w_hh[j * h_n + k] as f64 * prev;
                }
                pre.push(v);
            }
        }
    }
    let scale = pre.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    pre.iter().any(|v| v.abs() <= tol * scale)
}

fn compare_all_paths(p: &Problem, act: Activation) -> Result<(), String> {
    for isa in Isa::available() {
        compare::<f32>(p, act, isa)?;
        compare::<f64>(p, act, isa)?;
    }
    Ok(())
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::Tanh), Just(Activation::Relu)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn forward_and_backward_match_reference(
        steps in 1usize..=9,
        batch in 1usize..=5,
        input_size in 1usize..=19,
        hidden_size in 1usize..=37,
        act in activation(),
        bias in any::<bool>(),
        h0 in any::<bool>(),
        lengths in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let p = Problem::random(steps, batch, input_size, hidden_size, Flags { bias, h0, lengths }, seed);
        compare_all_paths(&p, act).map_err(TestCaseError::fail)?;
    }
}

/// Hidden sizes around every tile width a kernel may use (8, 16, 32 lanes and multiples), with
/// B = 1 and T = 1 among them.
#[test]
fn tile_boundary_sizes_match_reference() {
    let sizes = [
        1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 97,
    ];
    for (k, &h) in sizes.iter().enumerate() {
        for (steps, batch) in [(1, 1), (3, 1), (1, 4), (4, 7)] {
            for act in [Activation::Tanh, Activation::Relu] {
                let flags = Flags {
                    bias: k % 2 == 0,
                    h0: true,
                    lengths: batch > 1 && k % 3 == 0,
                };
                let p = Problem::random(steps, batch, 1 + (h * 7) % 13, h, flags, k as u64);
                compare_all_paths(&p, act).unwrap();
            }
        }
    }
}

/// With few rows the weight gradients read `dA^T` as a strided view of `dA` while a row of `H`
/// elements is under 2 KiB and packed in panels of a register tile's rows from there on:
/// hidden sizes on both sides of that (f32 at 511 / 512, f64 at 255 / 256; 512 and 256 also
/// end in a partial panel of the 12- and 6-row paths), with and without `h0` (which moves
/// where `dW_hh`'s rows of `dA` start) and with lengths (padded rows), against the reference.
/// (Rows of 1-2 KiB are packed when `dA` exceeds 2 MiB: `backward`'s `packs_d_a`, and the
/// workspace test below.)
#[test]
fn weight_gradients_match_reference_on_both_sides_of_the_packing_threshold() {
    for (k, &h) in [255usize, 256, 511, 512].iter().enumerate() {
        for h0 in [false, true] {
            let flags = Flags {
                bias: true,
                h0,
                lengths: h0,
            };
            let p = Problem::random(3, 2, 5, h, flags, 40 + k as u64);
            compare_all_paths(&p, Activation::Tanh).unwrap();
        }
    }
}

/// From the packing threshold on (`dA^T` packed for the weight gradients, its bias sums taken
/// by the pack; here in f64, whose rows of 264 and 268 take 2 KiB and more, while f32's take
/// the strided view): batches below, at and above the time loop's 8- and 12-row tiles (1 to
/// 36 rows), hidden sizes whose last panel of 12 (6 on AVX2, 4 portable) is full or partly
/// filled (264, 268), with and without `h0`, with lengths (rows zeroed after their sequence
/// ends), against the reference. (f32's packed panels: the kernels' own tests of
/// `pack_a_into` and `gemm_packed_a`, and the threshold test above.)
#[test]
fn weight_gradients_with_packed_d_a_match_reference_across_batches() {
    let mut k = 0;
    for h in [264usize, 268] {
        for batch in [1, 7, 8, 9, 13, 24, 36] {
            let flags = Flags {
                bias: true,
                h0: k % 2 == 0,
                lengths: batch > 1,
            };
            let p = Problem::random(3, batch, 5, h, flags, 90 + k);
            compare_all_paths(&p, Activation::Tanh).unwrap();
            k += 1;
        }
    }
}

/// Below the packing threshold the weight gradients read `X` and `h_(t-1)` in place when their
/// rows are whole panels (`I`, `H` multiples of the panel width: 32 / 16 in f32 / f64 on
/// AVX-512, 16 / 8 on AVX2, 8 portable) and `X` needs no zeros (no lengths); `h_(t-1)` then
/// comes from `h0` and the states in two products. Else they are packed. Both sides, with and
/// without `h0`, `M = H` at, below and above the 12-, 8- and 6-row tiles, against the
/// reference.
#[test]
fn weight_gradients_read_in_place_match_reference() {
    let mut k = 0;
    for (i, h) in [(32, 32), (16, 64), (64, 96), (48, 16), (8, 8), (32, 224)] {
        for (steps, batch) in [(1, 1), (5, 1), (3, 3)] {
            for (h0, lengths) in [(false, false), (true, false), (false, true)] {
                let flags = Flags {
                    bias: true,
                    h0,
                    lengths: lengths && batch > 1,
                };
                let p = Problem::random(steps, batch, i, h, flags, 60 + k);
                compare_all_paths(&p, Activation::Tanh).unwrap();
                k += 1;
            }
        }
    }
}

/// `backward`'s workspace holds no room for packed right operands when both are read in place
/// (`H` and `I` multiples of every path's panel width, `dA^T` not packed, no lengths), and
/// room for `X` packed when lengths are given: `T*B*H + H` elements, each part rounded up to a
/// 64-byte line, plus one line to align the start (the documented size). At `H = 256` (rows
/// of 1 KiB in f32) `dA^T` is packed from 2049 rows (`dA` over 2 MiB), and `X` and
/// `h_(t-1)` with it: room for at least two packed `T*B x H` at 2049 rows, none at 2048.
#[test]
fn backward_workspace_holds_packs_only_when_needed() {
    let line = 64 / size_of::<f32>();
    let up = |n: usize| n.next_multiple_of(line);
    let cases = [
        (64, 5, 1, false),
        (64, 4, 3, false),
        (64, 4, 3, true),
        (256, 512, 4, false),
        (256, 683, 3, false),
    ];
    let i = 64;
    for isa in Isa::available() {
        for (h, steps, batch, lengths) in cases {
            let flags = Flags {
                bias: true,
                h0: true,
                lengths,
            };
            let p = Problem::random(steps, batch, i, h, flags, 77);
            let rnn = layer::<f32>(&p, Activation::Tanh, isa);
            let seq = sequences(&p);
            let input = cast::<f32>(&p.input);
            let h0 = p.h0.as_deref().map(cast::<f32>);
            let rows = steps * batch;
            let mut output = vec![0f32; rows * h];
            rnn.forward(&seq, &input, h0.as_deref(), &mut output, None)
                .unwrap();
            let (mut d_w_ih, mut d_w_hh) = (vec![0f32; h * i], vec![0f32; h * h]);
            let grads = RnnGrads {
                d_input: None,
                d_h0: None,
                d_w_ih: Some(&mut d_w_ih),
                d_w_hh: Some(&mut d_w_hh),
                d_b_ih: None,
                d_b_hh: None,
            };
            let mut ws = Workspace::new();
            let go = cast::<f32>(&p.grad_output);
            rnn.backward(
                &seq,
                &input,
                h0.as_deref(),
                &output,
                Some(&go),
                None,
                grads,
                &mut ws,
            )
            .unwrap();
            let bare = up(rows * h) + up(h) + line;
            if rows * h * size_of::<f32>() > 2 << 20 {
                // `dA^T` and `h_(t-1)` packed: `T*B` rows of `H` each, or more (padding).
                let packed = bare + 2 * rows * h;
                assert!(ws.len() >= packed, "{isa:?} {steps}x{batch}: {}", ws.len());
            } else if lengths {
                // `X` packed: `T*B` rows of `I` (a multiple of the panel width here).
                assert_eq!(ws.len(), bare + up(rows * i), "{isa:?} {steps}x{batch}");
            } else {
                assert_eq!(ws.len(), bare, "{isa:?} {steps}x{batch}");
            }
        }
    }
}

/// 4th-order central differences of the loss in f64 against the reference's gradients.
#[test]
fn reference_gradients_match_finite_differences() {
    for (seed, act) in [
        (1, Activation::Tanh),
        (2, Activation::Relu),
        (3, Activation::Tanh),
    ] {
        let flags = Flags {
            bias: true,
            h0: true,
            lengths: seed == 3,
        };
        let p = Problem::random(4, 3, 3, 5, flags, seed);
        let (_, g) = reference_f64(&p, act);
        let seq = Sequences {
            steps: p.steps,
            batch: p.batch,
            lengths: p.lengths.as_deref(),
        };
        let go = cast::<f64>(&p.grad_output);
        let gh = cast::<f64>(&p.grad_h_n);
        // The loss as a function of all parameters and inputs, packed in one vector.
        let mut x: Vec<f64> = Vec::new();
        for part in [
            &p.input,
            p.h0.as_ref().unwrap(),
            &p.w_ih,
            &p.w_hh,
            p.b_ih.as_ref().unwrap(),
            p.b_hh.as_ref().unwrap(),
        ] {
            x.extend(cast::<f64>(part));
        }
        let (ni, nh0, nwi, nwh, nb) = (
            p.input.len(),
            p.h0.as_ref().unwrap().len(),
            p.w_ih.len(),
            p.w_hh.len(),
            p.hidden_size,
        );
        let loss = |x: &[f64]| -> f64 {
            let (input, r) = x.split_at(ni);
            let (h0, r) = r.split_at(nh0);
            let (w_ih, r) = r.split_at(nwi);
            let (w_hh, r) = r.split_at(nwh);
            let (b_ih, b_hh) = r.split_at(nb);
            let w = RnnWeights {
                w_ih,
                w_hh,
                b_ih: Some(b_ih),
                b_hh: Some(b_hh),
            };
            let f = reference::rnn_forward(act, dims(&p), &w, &seq, input, Some(h0)).unwrap();
            let a: f64 = f.output.iter().zip(&go).map(|(o, g)| o * g).sum();
            let b: f64 = f.h_n.iter().zip(&gh).map(|(o, g)| o * g).sum();
            a + b
        };
        let analytic: Vec<f64> = [
            &g.d_input, &g.d_h0, &g.d_w_ih, &g.d_w_hh, &g.d_b_ih, &g.d_b_hh,
        ]
        .into_iter()
        .flatten()
        .copied()
        .collect();
        let step = 1e-4;
        let mut worst = 0.0f64;
        for k in 0..x.len() {
            let at = |d: f64| {
                let mut y = x.clone();
                y[k] += d;
                loss(&y)
            };
            let fd = (-at(2.0 * step) + 8.0 * at(step) - 8.0 * at(-step) + at(-2.0 * step))
                / (12.0 * step);
            worst = worst.max((fd - analytic[k]).abs());
        }
        let scale = analytic.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        // Truncation error is O(step^4) = 1e-16 times the 5th derivative; rounding error is
        // about eps * |loss| / step = 1e-12. 1e-8 leaves room for both.
        assert!(
            worst / scale < 1e-8,
            "seed {seed} {act:?}: max |fd - analytic| / scale = {:e}",
            worst / scale
        );
    }
}

#[test]
fn parameter_gradients_accumulate_and_input_gradients_overwrite() {
    let p = Problem::random(
        5,
        3,
        4,
        6,
        Flags {
            bias: true,
            h0: true,
            lengths: true,
        },
        9,
    );
    let first = run_ours::<f64>(&p, Activation::Tanh, Isa::detect());
    // Run backward a second time into the same buffers.
    let rnn = Rnn::new(
        Activation::Tanh,
        dims(&p),
        RnnWeights {
            w_ih: &cast::<f64>(&p.w_ih),
            w_hh: &cast::<f64>(&p.w_hh),
            b_ih: Some(&cast::<f64>(p.b_ih.as_ref().unwrap())),
            b_hh: Some(&cast::<f64>(p.b_hh.as_ref().unwrap())),
        },
    )
    .unwrap();
    let mut again = run_ours::<f64>(&p, Activation::Tanh, Isa::detect());
    let seq = Sequences::with_lengths(p.steps, p.lengths.as_deref().unwrap());
    again.d_input.fill(7.0);
    again.d_h0.fill(7.0);
    rnn.backward(
        &seq,
        &cast::<f64>(&p.input),
        Some(&cast::<f64>(p.h0.as_ref().unwrap())),
        &again.output,
        Some(&cast::<f64>(&p.grad_output)),
        Some(&cast::<f64>(&p.grad_h_n)),
        RnnGrads {
            d_input: Some(&mut again.d_input),
            d_h0: Some(&mut again.d_h0),
            d_w_ih: Some(&mut again.d_w_ih),
            d_w_hh: Some(&mut again.d_w_hh),
            d_b_ih: Some(&mut again.d_b_ih),
            d_b_hh: Some(&mut again.d_b_hh),
        },
        &mut Workspace::new(),
    )
    .unwrap();
    assert_eq!(again.d_input, first.d_input);
    assert_eq!(again.d_h0, first.d_h0);
    for (a, f) in [
        (&again.d_w_ih, &first.d_w_ih),
        (&again.d_w_hh, &first.d_w_hh),
        (&again.d_b_ih, &first.d_b_ih),
        (&again.d_b_hh, &first.d_b_hh),
    ] {
        // The GEMM adds its product into the existing values block by block, so the sum may
        // differ from 2 * first by a rounding per addition: a few ulp, never more.
        for (a, f) in a.iter().zip(f.iter()) {
            assert!(
                (a - 2.0 * f).abs() <= 8.0 * f64::EPSILON * f.abs(),
                "{a} vs 2 * {f}"
            );
        }
    }
}

/// Padding holds arbitrary values, NaN included: none of it may reach a result.
#[test]
fn padding_is_never_read_into_results() {
    let p = Problem::random(
        6,
        4,
        5,
        7,
        Flags {
            bias: true,
            h0: true,
            lengths: true,
        },
        11,
    );
    let clean = run_ours::<f32>(&p, Activation::Tanh, Isa::detect());
    let mut dirty = p.clone();
    let lengths = p.lengths.clone().unwrap();
    for t in 0..p.steps {
        for (b, &n) in lengths.iter().enumerate() {
            if t >= n {
                let r = t * p.batch + b;
                dirty.input[r * p.input_size..(r + 1) * p.input_size].fill(f32::NAN);
                dirty.grad_output[r * p.hidden_size..(r + 1) * p.hidden_size].fill(f32::NAN);
            }
        }
    }
    let d = run_ours::<f32>(&dirty, Activation::Tanh, Isa::detect());
    assert_eq!(clean.output, d.output);
    assert_eq!(clean.h_n, d.h_n);
    assert_eq!(clean.h_n_final, d.h_n_final);
    assert_eq!(clean.d_input, d.d_input);
    assert_eq!(clean.d_h0, d.d_h0);
    assert_eq!(clean.d_w_ih, d.d_w_ih);
    assert_eq!(clean.d_w_hh, d.d_w_hh);
    assert_eq!(clean.d_b_ih, d.d_b_ih);
}

/// `forward_final` projects a block of about 64 Ki elements of steps at a time: 300 x 2 x 130
/// is two blocks (252 steps, then 48), with lengths and `h0`. Against the reference (every
/// path) and bitwise against `forward`'s final states.
#[test]
fn forward_final_in_blocks_matches_reference_and_forward_bitwise() {
    let p = Problem::random(
        300,
        2,
        9,
        130,
        Flags {
            bias: true,
            h0: true,
            lengths: true,
        },
        5,
    );
    compare_all_paths(&p, Activation::Tanh).unwrap();
    for isa in Isa::available() {
        let o = run_ours::<f32>(&p, Activation::Tanh, isa);
        assert_eq!(o.h_n, o.h_n_final, "{isa:?}");
    }
}

/// The time loop splits each step's columns, or its rows, across the caller's rayon threads:
/// results must be bitwise identical for 1, 2 and 3 threads (loops big enough to be shared:
/// `B = 24` and `B = 1` by columns, `B = 16` by rows).
#[test]
fn thread_count_does_not_change_results() {
    fn run_all<F: Float>(p: &Problem, isa: Isa) -> Vec<Vec<F>> {
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let o = pool.install(|| run_ours::<F>(p, Activation::Tanh, isa));
            runs.push(
                [
                    o.output,
                    o.h_n,
                    o.h_n_final,
                    o.d_input,
                    o.d_h0,
                    o.d_w_ih,
                    o.d_w_hh,
                    o.d_b_ih,
                    o.d_b_hh,
                ]
                .concat(),
            );
        }
        runs
    }
    let p = Problem::random(
        4,
        24,
        9,
        600,
        Flags {
            bias: true,
            h0: true,
            lengths: true,
        },
        3,
    );
    // B = 1 with W_hh of 256 x 256: the loop is shared from this size on, each thread's
    // panels (8 and 8, or 5, 5 and 6) paired into two-panel tiles where they can be.
    let single = Problem::random(
        40,
        1,
        9,
        256,
        Flags {
            bias: true,
            h0: true,
            lengths: false,
        },
        4,
    );
    // B = 16 with W_hh of 64 x 64 over 80 steps: the loops split their rows (two tiles of 8 on
    // AVX-512, four of 4 on the portable path) between two threads, each running its rows'
    // steps alone, with sequences ending on both sides of the split.
    let rows = Problem::random(
        80,
        16,
        9,
        64,
        Flags {
            bias: true,
            h0: true,
            lengths: true,
        },
        5,
    );
    // B = 16 with W_hh of 256 x 256: rows split as above (in L2 on every host), and `dA^T`
    // packed for the weight gradients in f64 (rows of 2 KiB); f32's rows of 1 KiB over 320
    // rows of `dA` take the strided view, with `h_(t-1)` read in place (`X` packed: lengths;
    // `p` above, rows of 2400 bytes, has f32's packed `dA^T`).
    let packed_rows = Problem::random(
        20,
        16,
        9,
        256,
        Flags {
            bias: true,
            h0: false,
            lengths: true,
        },
        6,
    );
    // B = 1 on one thread computes the projection strip by strip during the steps (`Ride`),
    // and the input gradient during the sweep (`InputGradRide`): bitwise the one GEMM of the
    // shared loops, with steps ending in a full strip, a strip of one or two rows (tiles
    // summing in other orders), past the GEMM's 96-row chunk, rows of `X` 4 KiB apart (`I =
    // 1024` in f32, 8 KiB in f64: the narrow kernel's strips), and a sequence shorter than
    // `T`.
    let mut riding = Vec::new();
    for (steps, input) in [
        (24, 40),
        (25, 256),
        (26, 130),
        (97, 9),
        (98, 1024),
        (60, 20),
    ] {
        let flags = Flags {
            bias: steps % 2 == 0,
            h0: true,
            lengths: steps == 60,
        };
        riding.push(Problem::random(steps, 1, input, 256, flags, 7));
    }
    for p in [&p, &single, &rows, &packed_rows]
        .into_iter()
        .chain(&riding)
    {
        for isa in Isa::available() {
            let r = run_all::<f32>(p, isa);
            assert!(r[0] == r[1] && r[0] == r[2], "f32 {isa:?} B = {}", p.batch);
            let r = run_all::<f64>(p, isa);
            assert!(r[0] == r[1] && r[0] == r[2], "f64 {isa:?} B = {}", p.batch);
        }
    }
}
