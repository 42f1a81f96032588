//! `rnn_vs_reference`: forward, forward_final and backward of an arbitrary bounded problem on
//! an arbitrary available ISA path, in `f32` (and `f64`), against the f64 reference.
//!
//! The promise checked (documented in HOSTILE.md):
//! - every call on a well-shaped problem returns `Ok`, whatever the values;
//! - rows beyond a sequence's length are exactly zero in `output` and `d_input`, whatever the
//!   padding, the weights or the other values hold;
//! - a sequence whose values are finite and bounded (see [`Problem`]) gets `output`, `h_n`,
//!   `d_input` and `d_h0` rows within the derived tolerance of the reference when the weights
//!   are bounded, whatever the other sequences hold (NaN and infinities included): sequences
//!   never contaminate each other;
//! - with every value bounded, the parameter gradients are within tolerance too;
//! - a NaN in a sequence's active input or `h0` (with bounded weights) makes that sequence's
//!   outputs NaN from that step to its end: NaN is never silently dropped;
//! - `forward_final` writes bitwise the same `h_n` as `forward`;
//! - `d_input` and `d_h0` are overwritten (they start as NaN here) and the workspace's old
//!   contents (NaN here) never matter.

use std::sync::OnceLock;

use rnn_kernels::reference;
use rnn_kernels::{
    Activation, Float, Isa, OutputActivation, OutputDims, OutputGrads, OutputLayer, OutputWeights,
    Rnn, RnnGrads, RnnWeights, Workspace,
};

use super::api_misuse::output_tolerances;
use super::bytes::Bytes;
use super::problem::{Problem, cast, rel_err, same, tolerance};

pub fn check(data: &[u8]) {
    let mut r = Bytes::new(data);
    let p = Problem::read(&mut r);
    let isas = Isa::available();
    let isa = isas[r.u8() as usize % isas.len()];
    let wants = r.u8();
    let also_f64 = r.bool();
    let spec = OutputSpec::read(&mut r, &p);
    let (fwd, grads) = p.reference();
    let reference = Reference { fwd, grads };
    let run = || {
        let output = check_precision::<f32>(&p, isa, wants, &reference);
        check_output_layer(&p, &spec, &output);
        if also_f64 {
            check_precision::<f64>(&p, isa, wants, &reference);
        }
    };
    if p.big {
        // Three threads on whatever cores there are: uneven splits of a step's panels.
        static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
        POOL.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .expect("a rayon pool")
        })
        .install(run);
    } else {
        run();
    }
}

/// A tensor to compare: name, ours, the reference's, and which elements count.
type Comparison<'a, F> = (&'a str, &'a [F], &'a [f64], Box<dyn Fn(usize) -> bool + 'a>);

struct Reference {
    fwd: rnn_kernels::reference::RnnForward<f64>,
    grads: rnn_kernels::reference::RnnGradients<f64>,
}

/// Runs and checks every call in precision `F`; returns the forward `output`.
fn check_precision<F: Float>(p: &Problem, isa: Isa, wants: u8, reference: &Reference) -> Vec<F> {
    let ctx = || format!("{} on {isa:?}, {}", std::any::type_name::<F>(), p.summary());
    let (t, b, i, h) = (p.steps, p.batch, p.input_size, p.hidden_size);
    let (w_ih, w_hh) = (cast::<F>(&p.w_ih), cast::<F>(&p.w_hh));
    let b_ih = p.b_ih.as_deref().map(cast::<F>);
    let b_hh = p.b_hh.as_deref().map(cast::<F>);
    let weights = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: b_ih.as_deref(),
        b_hh: b_hh.as_deref(),
    };
    let rnn = Rnn::new(p.act, p.dims(), weights)
        .unwrap_or_else(|e| panic!("Rnn::new: {e} ({})", ctx()))
        .with_isa(isa)
        .unwrap_or_else(|e| panic!("with_isa: {e} ({})", ctx()));
    let seq = p.seq();
    let input = cast::<F>(&p.input);
    let h0 = p.h0.as_deref().map(cast::<F>);
    let go = p.grad_output.as_deref().map(cast::<F>);
    let gh = p.grad_h_n.as_deref().map(cast::<F>);
    let nan = F::from_f64(f64::NAN);

    // A workspace left full of NaN by an earlier call: its contents must never matter.
    let mut ws = Workspace::<F>::new();
    if wants & 64 != 0 {
        let junk = vec![nan; input.len()];
        let mut h_n = vec![F::ZERO; b * h];
        rnn.forward_final(&seq, &junk, None, &mut h_n, &mut ws)
            .unwrap_or_else(|e| panic!("forward_final (junk): {e} ({})", ctx()));
    }

    // Outputs start as NaN: they must be overwritten.
    let mut output = vec![nan; t * b * h];
    let mut h_n = vec![nan; b * h];
    rnn.forward(&seq, &input, h0.as_deref(), &mut output, Some(&mut h_n))
        .unwrap_or_else(|e| panic!("forward: {e} ({})", ctx()));
    let mut h_n_final = vec![nan; b * h];
    rnn.forward_final(&seq, &input, h0.as_deref(), &mut h_n_final, &mut ws)
        .unwrap_or_else(|e| panic!("forward_final: {e} ({})", ctx()));
    assert!(
        same(&h_n, &h_n_final),
        "forward_final's h_n differs from forward's: {h_n:?} vs {h_n_final:?} ({})",
        ctx()
    );

    // Exactly zero beyond each length.
    for tt in 0..t {
        for bb in 0..b {
            if !p.active(tt, bb) {
                let row = &output[(tt * b + bb) * h..(tt * b + bb + 1) * h];
                assert!(
                    row.iter().all(|&v| v == F::ZERO),
                    "output[{tt}, {bb}] beyond length {} is {row:?} ({})",
                    p.len_of(bb),
                    ctx()
                );
            }
        }
    }

    let bounded_weights = !p.hostile_weights;
    let tol = tolerance::<F>(t, b, i, h);
    // Rows of [T, B, width] and [B, width] tensors belonging to clean sequences.
    let clean_tbw = |width: usize| move |k: usize| !p.corrupt[(k / width) % b];
    let clean_bw = |width: usize| move |k: usize| !p.corrupt[k / width];
    if bounded_weights {
        for (name, ours, want, keep) in [
            (
                "output",
                &output,
                &reference.fwd.output,
                &clean_tbw(h) as &dyn Fn(usize) -> bool,
            ),
            ("h_n", &h_n, &reference.fwd.h_n, &clean_bw(h)),
        ] {
            let e = rel_err(ours, want, keep);
            assert!(
                e <= tol,
                "{name}: error {e:e} > tolerance {tol:e} ({})\nours {ours:?}\nref  {want:?}",
                ctx()
            );
        }
        check_nan_propagates(p, &output, &h_n, &ctx);
    }

    // Backward, with the requested subset of gradients. Overwritten ones start as NaN,
    // accumulated ones as zero.
    let mut d_input = vec![nan; input.len()];
    let mut d_h0 = vec![nan; b * h];
    let mut d_w_ih = vec![F::ZERO; w_ih.len()];
    let mut d_w_hh = vec![F::ZERO; w_hh.len()];
    let mut d_b_ih = vec![F::ZERO; h];
    let mut d_b_hh = vec![F::ZERO; h];
    let grads = RnnGrads {
        d_input: (wants & 1 != 0).then_some(&mut d_input[..]),
        d_h0: (wants & 2 != 0).then_some(&mut d_h0[..]),
        d_w_ih: (wants & 4 != 0).then_some(&mut d_w_ih[..]),
        d_w_hh: (wants & 8 != 0).then_some(&mut d_w_hh[..]),
        d_b_ih: (wants & 16 != 0 && p.b_ih.is_some()).then_some(&mut d_b_ih[..]),
        d_b_hh: (wants & 32 != 0 && p.b_hh.is_some()).then_some(&mut d_b_hh[..]),
    };
    rnn.backward(
        &seq,
        &input,
        h0.as_deref(),
        &output,
        go.as_deref(),
        gh.as_deref(),
        grads,
        &mut ws,
    )
    .unwrap_or_else(|e| panic!("backward: {e} ({})", ctx()));

    if wants & 1 != 0 {
        for tt in 0..t {
            for bb in 0..b {
                if !p.active(tt, bb) {
                    let row = &d_input[(tt * b + bb) * i..(tt * b + bb + 1) * i];
                    assert!(
                        row.iter().all(|&v| v == F::ZERO),
                        "d_input[{tt}, {bb}] beyond length {} is {row:?} ({})",
                        p.len_of(bb),
                        ctx()
                    );
                }
            }
        }
    }

    if !bounded_weights || !relu_masks_agree(p, &output, &reference.fwd.output) {
        // Either nothing is promised about the values, or relu's derivative jumps between
        // our pre-activation and the reference's (both within tolerance of 0): the gradients
        // legitimately differ there.
        return output;
    }
    let g = &reference.grads;
    let mut pairs: Vec<Comparison<'_, F>> = Vec::new();
    if wants & 1 != 0 {
        pairs.push(("d_input", &d_input, &g.d_input, Box::new(clean_tbw(i))));
    }
    if wants & 2 != 0 {
        pairs.push(("d_h0", &d_h0, &g.d_h0, Box::new(clean_bw(h))));
    }
    if p.all_clean() {
        let all = || Box::new(|_: usize| true);
        if wants & 4 != 0 {
            pairs.push(("d_w_ih", &d_w_ih, &g.d_w_ih, all()));
        }
        if wants & 8 != 0 {
            pairs.push(("d_w_hh", &d_w_hh, &g.d_w_hh, all()));
        }
        if wants & 16 != 0 && p.b_ih.is_some() {
            pairs.push(("d_b_ih", &d_b_ih, &g.d_b_ih, all()));
        }
        if wants & 32 != 0 && p.b_hh.is_some() {
            pairs.push(("d_b_hh", &d_b_hh, &g.d_b_hh, all()));
        }
    }
    for (name, ours, want, keep) in pairs {
        let e = rel_err(ours, want, keep);
        assert!(
            e <= tol,
            "{name}: error {e:e} > tolerance {tol:e} ({})\nours {ours:?}\nref  {want:?}",
            ctx()
        );
    }
    output
}

/// For relu: whether our outputs and the reference's are positive at exactly the same places
/// among clean sequences (the derivative is 1 there and 0 elsewhere, so equal masks mean the
/// gradients are comparable). Always true for tanh.
fn relu_masks_agree<F: Float>(p: &Problem, ours: &[F], reference: &[f64]) -> bool {
    if p.act != Activation::Relu {
        return true;
    }
    let h = p.hidden_size;
    ours.iter()
        .zip(reference)
        .enumerate()
        .filter(|(k, _)| !p.corrupt[(k / h) % p.batch])
        .all(|(_, (&o, &r))| (o > F::ZERO) == (r > 0.0))
}

/// With bounded weights, a NaN in an active input element of sequence b at step t makes every
/// output of b from step t to its end NaN (each pre-activation sums a product with every input
/// and every state element); a NaN in b's h0 row makes all of b's outputs NaN.
fn check_nan_propagates<F: Float>(p: &Problem, output: &[F], h_n: &[F], ctx: &dyn Fn() -> String) {
    let (b, i, h) = (p.batch, p.input_size, p.hidden_size);
    for bb in 0..b {
        let n = p.len_of(bb);
        let h0_nan =
            p.h0.as_ref()
                .is_some_and(|h0| h0[bb * h..(bb + 1) * h].iter().any(|v| v.is_nan()));
        let first = if h0_nan {
            Some(0)
        } else {
            (0..n).find(|&tt| {
                p.input[(tt * b + bb) * i..(tt * b + bb + 1) * i]
                    .iter()
                    .any(|v| v.is_nan())
            })
        };
        let Some(first) = first else { continue };
        for tt in first..n {
            let row = &output[(tt * b + bb) * h..(tt * b + bb + 1) * h];
            assert!(
                row.iter().all(|v| v.is_nan()),
                "NaN input of sequence {bb} at step {first} was dropped: output[{tt}, {bb}] = {row:?} ({})",
                ctx()
            );
        }
        let row = &h_n[bb * h..(bb + 1) * h];
        assert!(
            row.iter().all(|v| v.is_nan()),
            "NaN input of sequence {bb} was dropped: h_n[{bb}] = {row:?} ({})",
            ctx()
        );
    }
}

/// An output layer on top of the RNN's `output`, read from the fuzzer's bytes.
struct OutputSpec {
    f: OutputActivation,
    o: usize,
    w_hy: Vec<f32>,
    b_y: Option<Vec<f32>>,
    grad_y: Vec<f32>,
}

impl OutputSpec {
    fn read(r: &mut Bytes<'_>, p: &Problem) -> OutputSpec {
        let f = r.pick(&[
            OutputActivation::Identity,
            OutputActivation::Tanh,
            OutputActivation::Sigmoid,
            OutputActivation::Softmax,
        ]);
        let (h, o) = (p.hidden_size, r.range(1, 12));
        let scale = 1.0 / h as f32;
        OutputSpec {
            f,
            o,
            w_hy: (0..o * h).map(|_| r.unit_f32() * scale).collect(),
            b_y: r
                .bool()
                .then(|| (0..o).map(|_| r.unit_f32() * 0.05).collect()),
            grad_y: (0..p.steps * p.batch * o).map(|_| r.unit_f32()).collect(),
        }
    }
}

/// The output layer on our own `output` (so only the layer's error counts), against the
/// reference fed the same values: rows of clean sequences within the output layer's
/// tolerance (`api_misuse::output_tolerances`), parameter gradients too when everything is
/// clean, and rows beyond each length exactly zero whatever the values.
fn check_output_layer(p: &Problem, spec: &OutputSpec, hidden: &[f32]) {
    let ctx = || format!("output layer {:?} O={} on {}", spec.f, spec.o, p.summary());
    let (t, b, h, o) = (p.steps, p.batch, p.hidden_size, spec.o);
    let dims = OutputDims {
        hidden_size: h,
        output_size: o,
    };
    let layer = OutputLayer::new(
        spec.f,
        dims,
        OutputWeights {
            w_hy: &spec.w_hy,
            b_y: spec.b_y.as_deref(),
        },
    )
    .unwrap_or_else(|e| panic!("OutputLayer::new: {e} ({})", ctx()));
    let seq = p.seq();
    let mut y = vec![f32::NAN; t * b * o];
    layer
        .forward(&seq, hidden, &mut y)
        .unwrap_or_else(|e| panic!("OutputLayer::forward: {e} ({})", ctx()));
    let mut d_hidden = vec![f32::NAN; hidden.len()];
    let mut d_w_hy = vec![0.0f32; o * h];
    let mut d_b_y = vec![0.0f32; o];
    layer
        .backward(
            &seq,
            hidden,
            &y,
            &spec.grad_y,
            OutputGrads {
                d_hidden: Some(&mut d_hidden),
                d_w_hy: Some(&mut d_w_hy),
                d_b_y: spec.b_y.is_some().then_some(&mut d_b_y[..]),
            },
            &mut Workspace::new(),
        )
        .unwrap_or_else(|e| panic!("OutputLayer::backward: {e} ({})", ctx()));
    for row in 0..t * b {
        if !p.active(row / b, row % b) {
            assert!(
                y[row * o..(row + 1) * o].iter().all(|&v| v == 0.0),
                "y beyond length not zero ({})",
                ctx()
            );
            assert!(
                d_hidden[row * h..(row + 1) * h].iter().all(|&v| v == 0.0),
                "d_hidden beyond length not zero ({})",
                ctx()
            );
        }
    }
    if p.hostile_weights {
        return;
    }
    let c = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let (w64, b64, h64, g64) = (
        c(&spec.w_hy),
        spec.b_y.as_deref().map(c),
        c(hidden),
        c(&spec.grad_y),
    );
    let w = OutputWeights {
        w_hy: &w64,
        b_y: b64.as_deref(),
    };
    let want_y = reference::output_forward(spec.f, dims, &w, &seq, &h64).expect("reference");
    let want = reference::output_backward(spec.f, dims, &w, &seq, &h64, &g64).expect("reference");
    let (tol_y, tol_grad) = output_tolerances(t * b, h, o);
    let clean = |width: usize| move |k: usize| !p.corrupt[(k / width) % b];
    let mut pairs: Vec<(Comparison<'_, f32>, f64)> = vec![
        (("y", &y, &want_y, Box::new(clean(o))), tol_y),
        (
            ("d_hidden", &d_hidden, &want.d_hidden, Box::new(clean(h))),
            tol_grad,
        ),
    ];
    if p.all_clean() {
        pairs.push((
            ("d_w_hy", &d_w_hy, &want.d_w_hy, Box::new(|_| true)),
            tol_grad,
        ));
        if spec.b_y.is_some() {
            pairs.push((("d_b_y", &d_b_y, &want.d_b_y, Box::new(|_| true)), tol_grad));
        }
    }
    for ((name, ours, want, keep), tol) in pairs {
        let e = rel_err(ours, want, keep);
        assert!(
            e <= tol,
            "{name}: error {e:e} > tolerance {tol:e} ({})",
            ctx()
        );
    }
}
