//! One test per row of the hostile-input table in `HOSTILE.md`, plus thread-safety and
//! determinism: what the crate does with wrong shapes, zero sizes, bad lengths, NaN,
//! infinities, subnormals, huge values, overflowing sizes and unsupported instruction sets.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rnn_kernels::reference;
use rnn_kernels::vecmath;
use rnn_kernels::{
    Activation, Error, Isa, OutputActivation, OutputDims, OutputGrads, OutputLayer, OutputWeights,
    Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace,
};

/// A small deterministic generator (no dependency on `rand`'s API).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A layer with the test suite's scaling (`|W_hh|` rows and columns <= 0.6).
struct Layer {
    i: usize,
    h: usize,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

impl Layer {
    fn new(i: usize, h: usize, seed: u64) -> Self {
        Layer {
            i,
            h,
            w_ih: values(h * i, seed, 0.3 / i as f32),
            w_hh: values(h * h, seed + 1, 0.6 / h as f32),
            b_ih: values(h, seed + 2, 0.05),
            b_hh: values(h, seed + 3, 0.05),
        }
    }

    fn dims(&self) -> RnnDims {
        RnnDims {
            input_size: self.i,
            hidden_size: self.h,
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

    fn rnn(&self, act: Activation) -> Rnn<f32> {
        Rnn::new(act, self.dims(), self.weights()).unwrap()
    }

    fn reference(
        &self,
        act: Activation,
        seq: &Sequences<'_>,
        input: &[f32],
        h0: Option<&[f32]>,
    ) -> reference::RnnForward<f64> {
        let c = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (w_ih, w_hh, b_ih, b_hh) = (c(&self.w_ih), c(&self.w_hh), c(&self.b_ih), c(&self.b_hh));
        let w = RnnWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: Some(&b_ih),
            b_hh: Some(&b_hh),
        };
        reference::rnn_forward(act, self.dims(), &w, seq, &c(input), h0.map(c).as_deref()).unwrap()
    }
}

/// Everything one forward + forward_final + backward produces, for bitwise comparisons.
#[derive(Debug, PartialEq)]
struct Run {
    output: Vec<u32>,
    h_n: Vec<u32>,
    h_n_final: Vec<u32>,
    d_input: Vec<u32>,
    d_h0: Vec<u32>,
    d_w_ih: Vec<u32>,
    d_w_hh: Vec<u32>,
    d_b: Vec<u32>,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

struct Case {
    steps: usize,
    lengths: Vec<usize>,
    input: Vec<f32>,
    h0: Vec<f32>,
    grad_output: Vec<f32>,
    grad_h_n: Vec<f32>,
}

impl Case {
    fn new(layer: &Layer, steps: usize, batch: usize, seed: u64) -> Self {
        Case {
            steps,
            lengths: (0..batch).map(|b| steps - (b * 7) % steps).collect(),
            input: values(steps * batch * layer.i, seed, 1.0),
            h0: values(batch * layer.h, seed + 1, 1.0),
            grad_output: values(steps * batch * layer.h, seed + 2, 1.0),
            grad_h_n: values(batch * layer.h, seed + 3, 1.0),
        }
    }

    fn seq(&self) -> Sequences<'_> {
        Sequences::with_lengths(self.steps, &self.lengths)
    }

    fn run(&self, rnn: &Rnn<f32>) -> Run {
        let (h, i) = (rnn.dims().hidden_size, rnn.dims().input_size);
        let seq = self.seq();
        let (t, b) = (seq.steps, seq.batch);
        let mut output = vec![0.0; t * b * h];
        let mut h_n = vec![0.0; b * h];
        let mut h_n_final = vec![0.0; b * h];
        let mut ws = Workspace::new();
        rnn.forward(
            &seq,
            &self.input,
            Some(&self.h0),
            &mut output,
            Some(&mut h_n),
        )
        .unwrap();
        rnn.forward_final(&seq, &self.input, Some(&self.h0), &mut h_n_final, &mut ws)
            .unwrap();
        let mut d_input = vec![0.0; t * b * i];
        let mut d_h0 = vec![0.0; b * h];
        let mut d_w_ih = vec![0.0; h * i];
        let mut d_w_hh = vec![0.0; h * h];
        let mut d_b = vec![0.0; h];
        rnn.backward(
            &seq,
            &self.input,
            Some(&self.h0),
            &output,
            Some(&self.grad_output),
            Some(&self.grad_h_n),
            RnnGrads {
                d_input: Some(&mut d_input),
                d_h0: Some(&mut d_h0),
                d_w_ih: Some(&mut d_w_ih),
                d_w_hh: Some(&mut d_w_hh),
                d_b_ih: Some(&mut d_b),
                d_b_hh: None,
            },
            &mut ws,
        )
        .unwrap();
        Run {
            output: bits(&output),
            h_n: bits(&h_n),
            h_n_final: bits(&h_n_final),
            d_input: bits(&d_input),
            d_h0: bits(&d_h0),
            d_w_ih: bits(&d_w_ih),
            d_w_hh: bits(&d_w_hh),
            d_b: bits(&d_b),
        }
    }
}

fn arg_of(e: &Error) -> &'static str {
    match e {
        Error::Length { arg, .. }
        | Error::ZeroSize { arg }
        | Error::SizeOverflow { arg }
        | Error::Presence { arg, .. } => arg,
        Error::SequenceLength { .. } => "lengths",
        Error::UnsupportedIsa(_) => "isa",
    }
}

// ---------------------------------------------------------------------------------------
// Row: wrong slice lengths.

#[test]
fn wrong_lengths_are_errors_naming_the_argument_and_write_nothing() {
    let layer = Layer::new(3, 4, 1);
    let rnn = layer.rnn(Activation::Tanh);
    let (t, b, i, h) = (5, 2, 3, 4);
    let seq = Sequences::new(t, b);
    let input = values(t * b * i, 9, 1.0);
    let h0 = values(b * h, 10, 1.0);

    // Rnn::new: every weight.
    for (arg, w_ih, w_hh, b_ih, b_hh) in [
        ("w_ih", h * i - 1, h * h, h, h),
        ("w_hh", h * i, h * h + 1, h, h),
        ("b_ih", h * i, h * h, h + 1, h),
        ("b_hh", h * i, h * h, h, 0),
    ] {
        let (a, bb, c, d) = (
            vec![0.0; w_ih],
            vec![0.0; w_hh],
            vec![0.0; b_ih],
            vec![0.0; b_hh],
        );
        let e = Rnn::new(
            Activation::Tanh,
            layer.dims(),
            RnnWeights {
                w_ih: &a,
                w_hh: &bb,
                b_ih: Some(&c),
                b_hh: Some(&d),
            },
        )
        .unwrap_err();
        assert_eq!(arg_of(&e), arg, "{e}");
        assert!(e.to_string().contains(arg));
    }

    // forward: input, h0, output, h_n. Outputs hold a sentinel that must survive.
    let sentinel = 1234.5f32;
    for arg in ["input", "h0", "output", "h_n"] {
        let bad = |name: &str, n: usize| if name == arg { n + 1 } else { n };
        let input = vec![0.5; bad("input", t * b * i)];
        let h0 = vec![0.5; bad("h0", b * h)];
        let mut output = vec![sentinel; bad("output", t * b * h)];
        let mut h_n = vec![sentinel; bad("h_n", b * h)];
        let e = rnn
            .forward(&seq, &input, Some(&h0), &mut output, Some(&mut h_n))
            .unwrap_err();
        assert_eq!(
            e,
            Error::Length {
                arg: arg_of(&e),
                expected: match &e {
                    Error::Length { expected, .. } => expected.clone(),
                    _ => unreachable!(),
                },
                actual: bad(
                    arg,
                    match arg {
                        "input" => t * b * i,
                        "output" => t * b * h,
                        _ => b * h,
                    }
                ),
            }
        );
        assert_eq!(arg_of(&e), arg);
        assert!(
            output.iter().chain(&h_n).all(|&v| v == sentinel),
            "{arg}: wrote before failing"
        );
    }

    // forward_final: h_n.
    let mut h_n = vec![sentinel; b * h + 2];
    let e = rnn
        .forward_final(&seq, &input, Some(&h0), &mut h_n, &mut Workspace::new())
        .unwrap_err();
    assert_eq!(arg_of(&e), "h_n");
    assert!(h_n.iter().all(|&v| v == sentinel));

    // backward: every slice.
    let mut output = vec![0.0; t * b * h];
    rnn.forward(&seq, &input, Some(&h0), &mut output, None)
        .unwrap();
    for arg in [
        "output",
        "grad_output",
        "grad_h_n",
        "d_input",
        "d_h0",
        "d_w_ih",
        "d_w_hh",
        "d_b_ih",
        "d_b_hh",
    ] {
        let bad = |name: &str, n: usize| if name == arg { n - 1 } else { n };
        let output = &output[..bad("output", t * b * h)];
        let go = vec![0.5; bad("grad_output", t * b * h)];
        let gh = vec![0.5; bad("grad_h_n", b * h)];
        let mut d_input = vec![sentinel; bad("d_input", t * b * i)];
        let mut d_h0 = vec![sentinel; bad("d_h0", b * h)];
        let mut d_w_ih = vec![sentinel; bad("d_w_ih", h * i)];
        let mut d_w_hh = vec![sentinel; bad("d_w_hh", h * h)];
        let mut d_b_ih = vec![sentinel; bad("d_b_ih", h)];
        let mut d_b_hh = vec![sentinel; bad("d_b_hh", h)];
        let e = rnn
            .backward(
                &seq,
                &input,
                Some(&h0),
                output,
                Some(&go),
                Some(&gh),
                RnnGrads {
                    d_input: Some(&mut d_input),
                    d_h0: Some(&mut d_h0),
                    d_w_ih: Some(&mut d_w_ih),
                    d_w_hh: Some(&mut d_w_hh),
                    d_b_ih: Some(&mut d_b_ih),
                    d_b_hh: Some(&mut d_b_hh),
                },
                &mut Workspace::new(),
            )
            .unwrap_err();
        assert_eq!(arg_of(&e), arg, "{e}");
        for d in [&d_input, &d_h0, &d_w_ih, &d_w_hh, &d_b_ih, &d_b_hh] {
            assert!(
                d.iter().all(|&v| v == sentinel),
                "{arg}: wrote before failing"
            );
        }
    }

    // The output layer: w_hy, b_y, hidden, y, grad_y, d_hidden, d_w_hy, d_b_y.
    let (o, w_hy, b_y) = (3, values(3 * h, 20, 0.25), values(3, 21, 0.05));
    let dims = OutputDims {
        hidden_size: h,
        output_size: o,
    };
    for (arg, nw, nb) in [("w_hy", o * h + 1, o), ("b_y", o * h, o - 1)] {
        let e = OutputLayer::new(
            OutputActivation::Softmax,
            dims,
            OutputWeights {
                w_hy: &vec![0.0; nw],
                b_y: Some(&vec![0.0; nb]),
            },
        )
        .unwrap_err();
        assert_eq!(arg_of(&e), arg);
    }
    let layer_o = OutputLayer::new(
        OutputActivation::Softmax,
        dims,
        OutputWeights {
            w_hy: &w_hy,
            b_y: Some(&b_y),
        },
    )
    .unwrap();
    let mut y = vec![sentinel; t * b * o + 1];
    assert_eq!(
        arg_of(&layer_o.forward(&seq, &output, &mut y).unwrap_err()),
        "y"
    );
    assert!(y.iter().all(|&v| v == sentinel));
    assert_eq!(
        arg_of(
            &layer_o
                .forward(&seq, &output[1..], &mut y[1..])
                .unwrap_err()
        ),
        "hidden"
    );
    let mut y = vec![0.0; t * b * o];
    layer_o.forward(&seq, &output, &mut y).unwrap();
    for arg in ["y", "grad_y", "d_hidden", "d_w_hy", "d_b_y"] {
        let bad = |name: &str, n: usize| if name == arg { n + 1 } else { n };
        let y = vec![0.5; bad("y", t * b * o)];
        let gy = vec![0.5; bad("grad_y", t * b * o)];
        let mut d_hidden = vec![sentinel; bad("d_hidden", t * b * h)];
        let mut d_w_hy = vec![sentinel; bad("d_w_hy", o * h)];
        let mut d_b_y = vec![sentinel; bad("d_b_y", o)];
        let e = layer_o
            .backward(
                &seq,
                &output,
                &y,
                &gy,
                OutputGrads {
                    d_hidden: Some(&mut d_hidden),
                    d_w_hy: Some(&mut d_w_hy),
                    d_b_y: Some(&mut d_b_y),
                },
                &mut Workspace::new(),
            )
            .unwrap_err();
        assert_eq!(arg_of(&e), arg, "{e}");
        for d in [&d_hidden, &d_w_hy, &d_b_y] {
            assert!(
                d.iter().all(|&v| v == sentinel),
                "{arg}: wrote before failing"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Row: zero sizes.

#[test]
fn zero_sizes_are_errors() {
    let e = Rnn::<f32>::new(
        Activation::Tanh,
        RnnDims {
            input_size: 0,
            hidden_size: 2,
        },
        RnnWeights {
            w_ih: &[],
            w_hh: &[0.0; 4],
            b_ih: None,
            b_hh: None,
        },
    )
    .unwrap_err();
    assert_eq!(e, Error::ZeroSize { arg: "input_size" });
    let e = Rnn::<f32>::new(
        Activation::Tanh,
        RnnDims {
            input_size: 2,
            hidden_size: 0,
        },
        RnnWeights {
            w_ih: &[],
            w_hh: &[],
            b_ih: None,
            b_hh: None,
        },
    )
    .unwrap_err();
    assert_eq!(e, Error::ZeroSize { arg: "hidden_size" });
    let e = OutputLayer::<f32>::new(
        OutputActivation::Identity,
        OutputDims {
            hidden_size: 2,
            output_size: 0,
        },
        OutputWeights {
            w_hy: &[],
            b_y: None,
        },
    )
    .unwrap_err();
    assert_eq!(e, Error::ZeroSize { arg: "output_size" });

    let layer = Layer::new(2, 3, 2);
    let rnn = layer.rnn(Activation::Relu);
    // T = 0 or B = 0 with (consistently) empty slices: still an error, nothing written.
    for (steps, batch, arg) in [(0, 2, "steps"), (2, 0, "batch"), (0, 0, "steps")] {
        let seq = Sequences::new(steps, batch);
        let mut h_n = vec![7.0; batch * 3];
        let e = rnn
            .forward(&seq, &[], None, &mut [], Some(&mut h_n))
            .unwrap_err();
        assert_eq!(e, Error::ZeroSize { arg });
        let e = rnn
            .forward_final(&seq, &[], None, &mut h_n, &mut Workspace::new())
            .unwrap_err();
        assert_eq!(e, Error::ZeroSize { arg });
        assert!(h_n.iter().all(|&v| v == 7.0));
        assert_eq!(seq.validate(), Err(Error::ZeroSize { arg }));
    }
    // An empty lengths slice means B = 0.
    assert_eq!(
        Sequences::with_lengths(3, &[]).validate(),
        Err(Error::ZeroSize { arg: "batch" })
    );
}

// ---------------------------------------------------------------------------------------
// Row: sequence lengths out of range or of the wrong count.

#[test]
fn lengths_out_of_range_are_errors() {
    let layer = Layer::new(2, 3, 3);
    let rnn = layer.rnn(Activation::Tanh);
    let input = vec![0.1; 4 * 3 * 2];
    let mut output = vec![0.0; 4 * 3 * 3];
    for (lengths, index, length) in [
        (vec![4, 0, 2], 1, 0),
        (vec![4, 5, 2], 1, 5),
        (vec![1, 2, usize::MAX], 2, usize::MAX),
    ] {
        let seq = Sequences::with_lengths(4, &lengths);
        let e = rnn
            .forward(&seq, &input, None, &mut output, None)
            .unwrap_err();
        assert_eq!(
            e,
            Error::SequenceLength {
                index,
                length,
                steps: 4
            }
        );
        assert!(e.to_string().contains(&format!("lengths[{index}]")));
    }
    // Wrong count: B = 3 but two lengths.
    let seq = Sequences {
        steps: 4,
        batch: 3,
        lengths: Some(&[4, 4]),
    };
    let e = rnn
        .forward(&seq, &input, None, &mut output, None)
        .unwrap_err();
    assert_eq!(arg_of(&e), "lengths");
    // Unsorted, repeated and full lengths are all fine.
    let lengths = [2, 4, 2];
    let seq = Sequences::with_lengths(4, &lengths);
    rnn.forward(&seq, &input, None, &mut output, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// Row: weight shapes that do not match the dims; a transposed matrix of the same length.

#[test]
fn mismatched_weight_shapes_are_errors_but_a_transpose_cannot_be_detected() {
    let layer = Layer::new(3, 5, 4);
    // Dims swapped: w_ih has H*I elements either way, but w_hh and the biases do not match.
    let swapped = RnnDims {
        input_size: 5,
        hidden_size: 3,
    };
    let e = Rnn::new(Activation::Tanh, swapped, layer.weights()).unwrap_err();
    assert_eq!(arg_of(&e), "w_hh");
    // A [I, H] (transposed) w_ih has the right length: accepted and read as [H, I]. The crate
    // cannot tell a layout from a flat slice; that is the caller's contract.
    let mut t = vec![0.0; 15];
    for r in 0..5 {
        for c in 0..3 {
            t[c * 5 + r] = layer.w_ih[r * 3 + c];
        }
    }
    let w = RnnWeights {
        w_ih: &t,
        ..layer.weights()
    };
    assert!(Rnn::new(Activation::Tanh, layer.dims(), w).is_ok());
    // Gradient of a bias the layer does not have: Presence.
    let rnn = Rnn::new(
        Activation::Tanh,
        layer.dims(),
        RnnWeights {
            b_ih: None,
            ..layer.weights()
        },
    )
    .unwrap();
    let seq = Sequences::new(2, 1);
    let input = vec![0.1; 6];
    let mut output = vec![0.0; 10];
    rnn.forward(&seq, &input, None, &mut output, None).unwrap();
    let mut d_b = vec![0.0; 5];
    let e = rnn
        .backward(
            &seq,
            &input,
            None,
            &output,
            None,
            None,
            RnnGrads {
                d_b_ih: Some(&mut d_b),
                ..Default::default()
            },
            &mut Workspace::new(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Presence { arg: "d_b_ih", .. }), "{e:?}");
    // With b_y absent, d_b_y is refused the same way.
    let out = OutputLayer::new(
        OutputActivation::Identity,
        OutputDims {
            hidden_size: 5,
            output_size: 2,
        },
        OutputWeights {
            w_hy: &[0.1; 10],
            b_y: None,
        },
    )
    .unwrap();
    let e = out
        .backward(
            &seq,
            &output,
            &[0.0; 4],
            &[0.0; 4],
            OutputGrads {
                d_b_y: Some(&mut [0.0; 2]),
                ..Default::default()
            },
            &mut Workspace::new(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Presence { arg: "d_b_y", .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------
// Row: aliasing. An output can never alias an input in safe Rust (`&mut` excludes every other
// borrow, so `rnn.forward(&seq, &buf, None, &mut buf, None)` does not compile). Inputs may
// share memory with each other: shared reads are fine.

#[test]
fn inputs_may_share_memory() {
    // I == H and T == 1, so one buffer can be input, h0 and grad_output at once.
    let layer = Layer::new(4, 4, 5);
    let rnn = layer.rnn(Activation::Tanh);
    let seq = Sequences::new(1, 2);
    let buf = values(8, 6, 1.0);
    let copy = buf.clone();
    let (mut a, mut b) = (vec![0.0; 8], vec![0.0; 8]);
    rnn.forward(&seq, &buf, Some(&buf), &mut a, None).unwrap();
    rnn.forward(&seq, &buf, Some(&copy), &mut b, None).unwrap();
    assert_eq!(bits(&a), bits(&b));
    let (mut da, mut db) = (vec![0.0; 8], vec![0.0; 8]);
    let mut ws = Workspace::new();
    rnn.backward(
        &seq,
        &buf,
        Some(&buf),
        &a,
        Some(&buf),
        Some(&buf),
        RnnGrads {
            d_input: Some(&mut da),
            ..Default::default()
        },
        &mut ws,
    )
    .unwrap();
    rnn.backward(
        &seq,
        &copy,
        Some(&copy),
        &b,
        Some(&copy),
        Some(&copy),
        RnnGrads {
            d_input: Some(&mut db),
            ..Default::default()
        },
        &mut ws,
    )
    .unwrap();
    assert_eq!(bits(&da), bits(&db));
}

// ---------------------------------------------------------------------------------------
// Row: NaN.

#[test]
fn nan_input_poisons_only_its_own_sequence_and_padding_is_never_read() {
    let layer = Layer::new(5, 20, 6);
    let (t, b) = (6, 4);
    let case = Case::new(&layer, t, b, 7);
    for isa in Isa::available() {
        for act in [Activation::Tanh, Activation::Relu] {
            let rnn = layer.rnn(act).with_isa(isa).unwrap();
            let clean = case.run(&rnn);
            let mut dirty = Case::new(&layer, t, b, 7);
            // Sequence 1 gets a NaN at step 2 of its (full) length 6; padding gets NaN too.
            assert_eq!(dirty.lengths[1], 6 - 7 % 6);
            dirty.input[(2 * b + 1) * 5 + 3] = f32::NAN;
            for (bb, &n) in case.lengths.iter().enumerate() {
                for tt in n..t {
                    let r = tt * b + bb;
                    dirty.input[r * 5..(r + 1) * 5].fill(f32::NAN);
                    dirty.grad_output[r * 20..(r + 1) * 20].fill(f32::NAN);
                }
            }
            let d = dirty.run(&rnn);
            let h = 20;
            for tt in 0..t {
                for bb in 0..b {
                    let r = (tt * b + bb) * h..(tt * b + bb + 1) * h;
                    let row = &d.output[r.clone()];
                    if bb == 1 && tt >= 2 && tt < case.lengths[1] {
                        assert!(
                            row.iter().all(|&v| f32::from_bits(v).is_nan()),
                            "{isa:?} {act:?}: NaN dropped at step {tt}"
                        );
                    } else {
                        assert_eq!(row, &clean.output[r], "{isa:?} {act:?}: step {tt} seq {bb}");
                    }
                }
            }
            for bb in [0, 2, 3] {
                let r = bb * h..(bb + 1) * h;
                assert_eq!(d.h_n[r.clone()], clean.h_n[r.clone()]);
                assert_eq!(d.h_n_final[r.clone()], clean.h_n_final[r.clone()]);
                assert_eq!(d.d_h0[r.clone()], clean.d_h0[r]);
            }
            // Input gradients of the clean sequences and of the padding are unaffected.
            for tt in 0..t {
                for bb in [0, 2, 3] {
                    let r = (tt * b + bb) * 5..(tt * b + bb + 1) * 5;
                    assert_eq!(d.d_input[r.clone()], clean.d_input[r]);
                }
            }
        }
    }
}

#[test]
fn nan_weights_give_nan_results_not_errors() {
    let mut layer = Layer::new(3, 4, 8);
    layer.w_hh[5] = f32::NAN;
    let rnn = layer.rnn(Activation::Relu);
    let case = Case::new(&layer, 3, 2, 9);
    let r = case.run(&rnn);
    // Every state from step 1 on multiplies the NaN weight.
    let h_n: Vec<f32> = r.h_n.iter().map(|&v| f32::from_bits(v)).collect();
    assert!(h_n.iter().any(|v| v.is_nan()), "{h_n:?}");
    // Beyond each length: still exactly zero.
    for (bb, &n) in case.lengths.iter().enumerate() {
        for tt in n..3 {
            let row = &r.output[(tt * 2 + bb) * 4..(tt * 2 + bb + 1) * 4];
            assert!(row.iter().all(|&v| v == 0), "step {tt} seq {bb}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Row: infinities.

#[test]
fn infinities_saturate_tanh_pass_relu_and_stay_in_their_sequence() {
    // One input feature, one hidden unit, w_ih = 0.5, w_hh = 0: h = act(0.5 x).
    let rnn = |act| {
        Rnn::new(
            act,
            RnnDims {
                input_size: 1,
                hidden_size: 1,
            },
            RnnWeights {
                w_ih: &[0.5f32],
                w_hh: &[0.0],
                b_ih: None,
                b_hh: None,
            },
        )
        .unwrap()
    };
    let seq = Sequences::new(1, 3);
    let input = [f32::INFINITY, f32::NEG_INFINITY, 0.25];
    let mut out = [0.0f32; 3];
    rnn(Activation::Tanh)
        .forward(&seq, &input, None, &mut out, None)
        .unwrap();
    assert_eq!(out[..2], [1.0, -1.0]);
    // The kernels' tanh, not libm's: within the vector math's pinned bound of the exact value.
    let ulps = vecmath::ulp_error_f32(out[2], 0.125f64.tanh() as f32);
    assert!(
        ulps <= vecmath::MAX_TANH_F32_ULP,
        "tanh(0.125) off by {ulps} ulp"
    );
    rnn(Activation::Relu)
        .forward(&seq, &input, None, &mut out, None)
        .unwrap();
    assert_eq!(out[..2], [f32::INFINITY, 0.0]);
    // With w_hh != 0, inf * 0-weight and inf - inf make NaN: IEEE arithmetic, no error.
    let layer = Layer::new(3, 6, 11);
    let mut case = Case::new(&layer, 4, 3, 12);
    case.input[2] = f32::INFINITY;
    case.h0[7] = f32::NEG_INFINITY;
    let r = case.run(&layer.rnn(Activation::Tanh));
    let clean = Case::new(&layer, 4, 3, 12).run(&layer.rnn(Activation::Tanh));
    // Sequence 2 had neither: bitwise unaffected.
    for tt in 0..4 {
        let k = (tt * 3 + 2) * 6..(tt * 3 + 3) * 6;
        assert_eq!(r.output[k.clone()], clean.output[k]);
    }
}

// ---------------------------------------------------------------------------------------
// Row: subnormals.

#[test]
fn subnormals_are_accepted_and_results_stay_within_tolerance() {
    let mut layer = Layer::new(4, 8, 13);
    // Subnormal weights, biases, inputs and h0.
    let tiny = f32::from_bits(0x0000_1234);
    for w in layer.w_ih.iter_mut().step_by(3) {
        *w = tiny;
    }
    layer.b_ih[0] = -tiny;
    let rnn = layer.rnn(Activation::Tanh);
    let case = {
        let mut c = Case::new(&layer, 5, 2, 14);
        for v in c.input.iter_mut().step_by(2) {
            *v = tiny;
        }
        c.h0[1] = f32::from_bits(1);
        c
    };
    let seq = case.seq();
    let mut output = vec![0.0; 5 * 2 * 8];
    rnn.forward(&seq, &case.input, Some(&case.h0), &mut output, None)
        .unwrap();
    let want = layer.reference(Activation::Tanh, &seq, &case.input, Some(&case.h0));
    // A subnormal may be flushed to zero (the time loop may run with FTZ/DAZ): an absolute
    // change of < 1.2e-38 per value, far inside the suite's tolerance.
    let worst = output
        .iter()
        .zip(&want.output)
        .map(|(&o, &w)| (f64::from(o) - w).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "{worst:e}");
    // vecmath keeps subnormals: tanh(x) = x for tiny x, exp gives subnormal results.
    let mut x = [tiny, -tiny, -100.0];
    vecmath::tanh_f32(&mut x[..2]);
    assert_eq!(x[..2], [tiny, -tiny]);
    vecmath::exp_f32(&mut x[2..]);
    assert!(x[2] > 0.0 && x[2] < f32::MIN_POSITIVE, "{:e}", x[2]);
}

// ---------------------------------------------------------------------------------------
// Row: huge magnitudes.

#[test]
fn huge_magnitudes_overflow_as_ieee_without_errors() {
    let layer = Layer::new(2, 3, 15);
    let mut case = Case::new(&layer, 3, 2, 16);
    case.input.fill(f32::MAX);
    for act in [Activation::Tanh, Activation::Relu] {
        let r = case.run(&layer.rnn(act));
        let out: Vec<f32> = r.output.iter().map(|&v| f32::from_bits(v)).collect();
        if act == Activation::Tanh {
            // Saturated (or NaN where inf - inf arose), never outside [-1, 1].
            assert!(out.iter().all(|v| v.is_nan() || v.abs() <= 1.0), "{out:?}");
        }
    }
    // Softmax subtracts the row maximum: huge finite logits stay finite.
    let out = OutputLayer::new(
        OutputActivation::Softmax,
        OutputDims {
            hidden_size: 1,
            output_size: 2,
        },
        OutputWeights {
            w_hy: &[1.0f32, -1.0],
            b_y: None,
        },
    )
    .unwrap();
    let mut y = [0.0f32; 2];
    out.forward(&Sequences::new(1, 1), &[1e30], &mut y).unwrap();
    assert_eq!(y, [1.0, 0.0]);
}

// ---------------------------------------------------------------------------------------
// Row: sizes whose products overflow usize.

#[test]
fn size_overflow_is_an_error_not_a_panic_or_allocation() {
    let big = 1usize << (usize::BITS / 2 + 1);
    let e = Rnn::<f32>::new(
        Activation::Tanh,
        RnnDims {
            input_size: big,
            hidden_size: big,
        },
        RnnWeights {
            w_ih: &[],
            w_hh: &[],
            b_ih: None,
            b_hh: None,
        },
    )
    .unwrap_err();
    assert_eq!(e, Error::SizeOverflow { arg: "w_ih" });
    let e = Rnn::<f32>::new(
        Activation::Tanh,
        RnnDims {
            input_size: 1,
            hidden_size: big,
        },
        RnnWeights {
            w_ih: &[],
            w_hh: &[],
            b_ih: None,
            b_hh: None,
        },
    )
    .unwrap_err();
    assert_eq!(arg_of(&e), "w_ih"); // H*I fits, so it is a length mismatch first
    let layer = Layer::new(2, 3, 17);
    let rnn = layer.rnn(Activation::Tanh);
    for (steps, batch) in [(usize::MAX, 2), (2, usize::MAX), (big, big)] {
        let seq = Sequences::new(steps, batch);
        let e = rnn
            .forward(&seq, &[0.0; 4], None, &mut [0.0; 4], None)
            .unwrap_err();
        assert_eq!(e, Error::SizeOverflow { arg: "input" });
        let e = rnn
            .forward_final(&seq, &[0.0; 4], None, &mut [0.0; 4], &mut Workspace::new())
            .unwrap_err();
        assert_eq!(e, Error::SizeOverflow { arg: "input" });
    }
    // T*B*I fits but is not the slice's length: a length error, nothing allocated.
    let e = rnn
        .forward(&Sequences::new(1 << 40, 1), &[0.0; 4], None, &mut [], None)
        .unwrap_err();
    assert_eq!(arg_of(&e), "input");
    let out = OutputLayer::<f32>::new(
        OutputActivation::Tanh,
        OutputDims {
            hidden_size: big,
            output_size: big,
        },
        OutputWeights {
            w_hy: &[],
            b_y: None,
        },
    )
    .unwrap_err();
    assert_eq!(out, Error::SizeOverflow { arg: "w_hy" });
}

// ---------------------------------------------------------------------------------------
// Row: an instruction set this CPU cannot run.

#[test]
fn unsupported_isa_is_an_error() {
    let layer = Layer::new(2, 3, 18);
    for isa in Isa::ALL {
        let r = layer.rnn(Activation::Tanh).with_isa(isa);
        let mut x = [0.5f32, -1.0];
        let v = vecmath::sigmoid_f32_with(isa, &mut x);
        if isa.is_supported() {
            assert_eq!(r.unwrap().isa(), isa);
            v.unwrap();
        } else {
            assert_eq!(r.unwrap_err(), Error::UnsupportedIsa(isa));
            assert_eq!(v.unwrap_err(), Error::UnsupportedIsa(isa));
            assert_eq!(x, [0.5, -1.0], "slice changed on error");
        }
    }
    // The environment cap's parser ignores unknown names (no panic): `from_name` is what it
    // uses.
    assert_eq!(Isa::from_name("avx9000"), None);
    assert!(Isa::detect().is_supported());
}

// ---------------------------------------------------------------------------------------
// Row: workspace of any size and content.

#[test]
fn workspace_size_and_content_do_not_matter() {
    let layer = Layer::new(3, 7, 19);
    let rnn = layer.rnn(Activation::Tanh);
    let case = Case::new(&layer, 5, 3, 20);
    let seq = case.seq();
    let mut want = vec![0.0; 21];
    rnn.forward_final(
        &seq,
        &case.input,
        Some(&case.h0),
        &mut want,
        &mut Workspace::new(),
    )
    .unwrap();
    // Too small, huge, and one left full of NaN by a call on NaN data.
    let mut dirty = Workspace::new();
    let nan_input = vec![f32::NAN; case.input.len()];
    rnn.forward_final(&seq, &nan_input, None, &mut [0.0; 21], &mut dirty)
        .unwrap();
    for mut ws in [Workspace::with_len(1), Workspace::with_len(100_000), dirty] {
        let mut got = vec![0.0; 21];
        rnn.forward_final(&seq, &case.input, Some(&case.h0), &mut got, &mut ws)
            .unwrap();
        assert_eq!(bits(&got), bits(&want));
    }
}

// ---------------------------------------------------------------------------------------
// Thread safety and determinism.

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Rnn<f32>>();
    send_sync::<Rnn<f64>>();
    send_sync::<OutputLayer<f32>>();
    send_sync::<OutputLayer<f64>>();
    send_sync::<Workspace<f32>>();
    send_sync::<Error>();
};

/// A problem large enough that the time loop splits a step across threads (each step is
/// 2*B*H*H = 10.6 Mflop, above the kernels' 4 Mflop-per-thread threshold).
fn big() -> (Layer, Case) {
    let layer = Layer::new(32, 288, 21);
    let case = Case::new(&layer, 4, 64, 22);
    (layer, case)
}

#[test]
fn results_are_bitwise_identical_across_repeated_runs() {
    let (layer, case) = big();
    let rnn = layer.rnn(Activation::Tanh);
    let first = case.run(&rnn);
    for _ in 0..3 {
        assert!(case.run(&rnn) == first);
    }
}

#[test]
fn results_are_bitwise_identical_across_rayon_pool_sizes() {
    let (layer, case) = big();
    for isa in Isa::available() {
        let rnn = layer.rnn(Activation::Tanh).with_isa(isa).unwrap();
        let runs: Vec<Run> = [1, 2, 3]
            .into_iter()
            .map(|n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
                    .install(|| case.run(&rnn))
            })
            .collect();
        assert!(runs[0] == runs[1], "{isa:?}: 1 vs 2 threads");
        assert!(runs[0] == runs[2], "{isa:?}: 1 vs 3 threads");
    }
}

#[test]
fn many_threads_share_one_plan_and_agree_bitwise() {
    let (layer, case) = big();
    let rnn = Arc::new(layer.rnn(Activation::Tanh));
    let case = Arc::new(case);
    let want = case.run(&rnn);
    let (tx, rx) = mpsc::channel();
    for k in 0..8 {
        let (rnn, case, tx) = (Arc::clone(&rnn), Arc::clone(&case), tx.clone());
        std::thread::spawn(move || {
            let runs: Vec<Run> = (0..3).map(|_| case.run(&rnn)).collect();
            tx.send((k, runs)).unwrap();
        });
    }
    drop(tx);
    for _ in 0..8 {
        // A generous bound: a hang here (threads waiting on each other) is a failure, not a
        // stuck test run.
        let (k, runs) = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("a thread did not finish within 300 s (deadlock?)");
        for r in runs {
            assert!(r == want, "thread {k} differs");
        }
    }
}

/// Batch inference from inside a rayon parallel iterator on the same pool (a common way to
/// serve many requests): every call must complete, with the same results as a lone call.
#[test]
fn calls_from_inside_a_rayon_parallel_iterator_complete() {
    use rayon::prelude::*;
    let (layer, case) = big();
    let rnn = layer.rnn(Activation::Tanh);
    let seq = case.seq();
    let len = seq.steps * seq.batch * layer.h;
    let mut want = vec![0.0; len];
    rnn.forward(&seq, &case.input, Some(&case.h0), &mut want, None)
        .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let all_equal = pool.install(|| {
        (0..3000).into_par_iter().all(|_| {
            let mut out = vec![0.0; len];
            rnn.forward(&seq, &case.input, Some(&case.h0), &mut out, None)
                .unwrap();
            bits(&out) == bits(&want)
        })
    });
    assert!(all_equal);
}
