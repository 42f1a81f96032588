//! `api_misuse`: arbitrary slice lengths and shape values (zero, small, huge, overflowing)
//! against every public entry point.
//!
//! An independent model of what a valid call is decides, before the call, which arguments
//! are wrong. The checker then demands:
//! - a valid call returns `Ok` and its results match the reference within tolerance;
//! - an invalid call returns an `Err` that names one of the arguments the model found wrong,
//!   with the right kind (`Length` with the slice's actual length, `ZeroSize`, `SizeOverflow`,
//!   `SequenceLength` with the offending index and value, `Presence`), a `Display` text naming
//!   it, and every output left bitwise untouched;
//! - never a panic, never a crash. Slices are capped at [`CAP`] elements, so a huge shape can
//!   only ever be an error, never an allocation.

use rnn_kernels::reference;
use rnn_kernels::{
    Activation, Error, Isa, OutputActivation, OutputDims, OutputGrads, OutputLayer, OutputWeights,
    Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace,
};

use super::bytes::Bytes;
use super::problem::{rel_err, tolerance};

/// Largest slice the checker allocates (elements).
pub const CAP: usize = 4096;

/// Sizes a fuzzer should try: mostly small, sometimes at a tile boundary, sometimes huge.
fn dim(r: &mut Bytes<'_>) -> usize {
    match r.u8() % 16 {
        0 => 0,
        1 => r.pick(&[
            usize::MAX,
            usize::MAX / 2,
            usize::MAX / 2 + 1,
            usize::MAX / 3,
            isize::MAX as usize,
            1 << 32,
            (1 << 32) + 1,
            1 << 31,
            1 << 62,
            u32::MAX as usize,
            CAP + 1,
        ]),
        2 => r.range(10, 40),
        _ => r.range(1, 6),
    }
}

/// A slice length for a tensor of `expected` elements (`None` when that overflows): right,
/// off by one, zero or anything small.
fn len_for(r: &mut Bytes<'_>, expected: Option<usize>) -> usize {
    let choice = r.u8() % 8;
    match expected.filter(|&e| e <= CAP) {
        Some(e) if choice < 5 => e,
        Some(e) if choice == 5 => (e + 1).min(CAP),
        Some(e) if choice == 6 => e.saturating_sub(1),
        _ => r.range(0, 64),
    }
}

fn mul(a: usize, b: usize) -> Option<usize> {
    a.checked_mul(b)
}

fn mul3(a: usize, b: usize, c: usize) -> Option<usize> {
    a.checked_mul(b)?.checked_mul(c)
}

/// What the model says is wrong with one argument.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wrong {
    Zero,
    /// The slice has this many elements, not the required number.
    Len(usize),
    Overflow,
    Presence,
}

/// The model's verdict on a call: every wrong argument it found.
#[derive(Debug, Default)]
struct Model {
    wrong: Vec<(&'static str, Wrong)>,
    /// `(lengths, steps)` if the call has per-sequence lengths.
    lengths: Option<(Vec<usize>, usize)>,
}

impl Model {
    fn zero(&mut self, arg: &'static str, v: usize) {
        if v == 0 {
            self.wrong.push((arg, Wrong::Zero));
        }
    }

    /// A slice argument of `actual` elements that must have `expected`.
    fn len(&mut self, arg: &'static str, actual: usize, expected: Option<usize>) {
        match expected {
            None => self.wrong.push((arg, Wrong::Overflow)),
            Some(e) if e != actual => self.wrong.push((arg, Wrong::Len(actual))),
            Some(_) => {}
        }
    }

    fn overflow(&mut self, arg: &'static str, expected: Option<usize>) {
        if expected.is_none() {
            self.wrong.push((arg, Wrong::Overflow));
        }
    }

    fn seq(&mut self, seq: &Sequences<'_>) {
        self.zero("steps", seq.steps);
        self.zero("batch", seq.batch);
        if let Some(l) = seq.lengths {
            self.len("lengths", l.len(), Some(seq.batch));
            self.lengths = Some((l.to_vec(), seq.steps));
        }
    }

    fn sequence_lengths_ok(&self) -> bool {
        self.lengths
            .as_ref()
            .is_none_or(|(l, steps)| l.iter().all(|&n| n >= 1 && n <= *steps))
    }

    fn valid(&self) -> bool {
        self.wrong.is_empty() && self.sequence_lengths_ok()
    }

    /// Panics unless `result` agrees with the model.
    fn judge<T>(&self, what: &str, result: &Result<T, Error>, ctx: &dyn Fn() -> String) {
        match result {
            Ok(_) => assert!(
                self.valid(),
                "{what} accepted an invalid call: {:?} ({})",
                self,
                ctx()
            ),
            Err(e) => {
                assert!(
                    !self.valid(),
                    "{what} rejected a valid call with `{e}` ({})",
                    ctx()
                );
                let text = e.to_string();
                let found = |arg: &str, pred: &dyn Fn(Wrong) -> bool| {
                    self.wrong.iter().any(|&(a, w)| a == arg && pred(w))
                };
                let ok = match e {
                    Error::Length { arg, actual, .. } => {
                        text.contains(arg) && found(arg, &|w| w == Wrong::Len(*actual))
                    }
                    Error::ZeroSize { arg } => {
                        text.contains(arg) && found(arg, &|w| w == Wrong::Zero)
                    }
                    Error::SizeOverflow { arg } => {
                        text.contains(arg) && found(arg, &|w| w == Wrong::Overflow)
                    }
                    Error::Presence { arg, .. } => {
                        text.contains(arg) && found(arg, &|w| w == Wrong::Presence)
                    }
                    Error::SequenceLength {
                        index,
                        length,
                        steps,
                    } => self.lengths.as_ref().is_some_and(|(l, s)| {
                        l.get(*index) == Some(length)
                            && s == steps
                            && (*length == 0 || length > steps)
                            && text.contains(&format!("lengths[{index}]"))
                    }),
                    Error::UnsupportedIsa(_) => false,
                };
                assert!(
                    ok,
                    "{what} returned `{e}` ({e:?}), which names no argument the model found wrong: {:?} ({})",
                    self,
                    ctx()
                );
            }
        }
    }
}

pub fn check(data: &[u8]) {
    let mut r = Bytes::new(data);
    match r.u8() % 8 {
        0 => sequences_alone(&mut r),
        1 => workspace_and_isa(&mut r),
        2..=4 => rnn_calls(&mut r),
        _ => output_calls(&mut r),
    }
}

/// A `Sequences` with arbitrary steps, batch and lengths (possibly not `batch` of them).
fn read_seq(r: &mut Bytes<'_>, lengths_buf: &mut Vec<usize>) -> (usize, usize, bool) {
    let steps = dim(r);
    let batch = dim(r);
    let with_lengths = r.u8().is_multiple_of(3);
    if with_lengths {
        let n = match r.u8() % 4 {
            0 => r.range(0, 8),
            _ => batch.min(64),
        };
        for _ in 0..n {
            let v = match r.u8() % 8 {
                0 => 0,
                1 => steps.saturating_add(1),
                2 => usize::MAX,
                3 => steps,
                _ => r.range(1, steps.clamp(1, 64)),
            };
            lengths_buf.push(v);
        }
    }
    (steps, batch, with_lengths)
}

fn sequences_alone(r: &mut Bytes<'_>) {
    let mut buf = Vec::new();
    let (steps, batch, with_lengths) = read_seq(r, &mut buf);
    let seq = Sequences {
        steps,
        batch,
        lengths: with_lengths.then_some(&buf[..]),
    };
    let mut model = Model::default();
    model.seq(&seq);
    model.judge("Sequences::validate", &seq.validate(), &|| {
        format!("{seq:?}")
    });
    if seq.validate().is_ok() {
        for b in 0..batch.min(64) {
            assert_eq!(seq.len_of(b), buf.get(b).copied().unwrap_or(steps));
        }
    }
    // The constructors agree with the struct.
    let s = Sequences::with_lengths(steps, &buf);
    assert_eq!(
        (s.steps, s.batch, s.lengths),
        (steps, buf.len(), Some(&buf[..]))
    );
    let s = Sequences::new(steps, batch);
    assert_eq!((s.steps, s.batch, s.lengths), (steps, batch, None));
}

fn workspace_and_isa(r: &mut Bytes<'_>) {
    let n = r.range(0, CAP);
    let ws = Workspace::<f32>::with_len(n);
    assert_eq!(ws.len(), n);
    assert_eq!(ws.is_empty(), n == 0);
    assert!(Workspace::<f64>::new().is_empty());
    let isa = r.pick(&Isa::ALL);
    let name = r.pick(&[
        "portable", "avx2", "avx512", "neon", " AVX512 ", "", "sse9", "Neon",
    ]);
    if let Some(parsed) = Isa::from_name(name) {
        assert_eq!(parsed.name(), name.trim().to_ascii_lowercase());
    }
    assert_eq!(Isa::from_name(isa.name()), Some(isa));
    assert!(Isa::detect().is_supported());
    assert_eq!(Isa::available().contains(&isa), isa.is_supported());
    // Every vecmath `_with` function: Ok on a supported path, UnsupportedIsa (slice
    // untouched) otherwise.
    let mut x = vec![0.5f32, -3.0, f32::NAN];
    let before = x.clone();
    let results = [
        rnn_kernels::vecmath::tanh_f32_with(isa, &mut x),
        rnn_kernels::vecmath::sigmoid_f32_with(isa, &mut x),
        rnn_kernels::vecmath::exp_f32_with(isa, &mut x),
    ];
    for res in results {
        match res {
            Ok(()) => assert!(isa.is_supported()),
            Err(e) => {
                assert_eq!(e, Error::UnsupportedIsa(isa));
                assert!(e.to_string().contains(isa.name()));
                assert!(!isa.is_supported());
                assert_eq!(
                    x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    before.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// A tensor of `n` values; entries scaled by `scale` (as the tolerance derivation needs).
fn values(r: &mut Bytes<'_>, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.unit_f32() * scale).collect()
}

/// A tensor for a slot of `expected` elements (see [`len_for`]).
fn vals(r: &mut Bytes<'_>, expected: Option<usize>, scale: f32) -> Vec<f32> {
    let n = len_for(r, expected);
    values(r, n, scale)
}

/// [`sentinel`] for a slot of `expected` elements (see [`len_for`]).
fn sentinel_for(r: &mut Bytes<'_>, expected: Option<usize>) -> Vec<f32> {
    let n = len_for(r, expected);
    sentinel(n)
}

/// Sentinel content for outputs: must survive an `Err` bitwise.
fn sentinel(n: usize) -> Vec<f32> {
    (0..n)
        .map(|k| f32::from_bits(0x7fc0_1234 + k as u32 % 7))
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[allow(clippy::too_many_lines)]
fn rnn_calls(r: &mut Bytes<'_>) {
    let act = if r.bool() {
        Activation::Tanh
    } else {
        Activation::Relu
    };
    let (i, h) = (dim(r), dim(r));
    // Scales of the tolerance derivation (any scale when a size is 0 or huge: then the call
    // is an error anyway).
    let si = if (1..=CAP).contains(&i) {
        0.3 / i as f32
    } else {
        1.0
    };
    let sh = if (1..=CAP).contains(&h) {
        0.6 / h as f32
    } else {
        1.0
    };
    let w_ih = vals(r, mul(h, i), si);
    let w_hh = vals(r, mul(h, h), sh);
    let b_ih = r.bool().then(|| vals(r, Some(h), 0.05));
    let b_hh = r.bool().then(|| vals(r, Some(h), 0.05));
    let dims = RnnDims {
        input_size: i,
        hidden_size: h,
    };
    let weights = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: b_ih.as_deref(),
        b_hh: b_hh.as_deref(),
    };
    let mut model = Model::default();
    model.zero("input_size", i);
    model.zero("hidden_size", h);
    model.len("w_ih", w_ih.len(), mul(h, i));
    model.len("w_hh", w_hh.len(), mul(h, h));
    if let Some(b) = &b_ih {
        model.len("b_ih", b.len(), Some(h));
    }
    if let Some(b) = &b_hh {
        model.len("b_hh", b.len(), Some(h));
    }
    let ctx = || {
        format!(
            "I={i} H={h} |w_ih|={} |w_hh|={} b_ih={:?} b_hh={:?}",
            w_ih.len(),
            w_hh.len(),
            b_ih.as_ref().map(Vec::len),
            b_hh.as_ref().map(Vec::len)
        )
    };
    let built = Rnn::new(act, dims, weights);
    model.judge("Rnn::new", &built, &ctx);
    let Ok(rnn) = built else { return };
    assert_eq!(rnn.dims(), dims);
    assert_eq!(rnn.activation(), act);
    assert_eq!(rnn.has_biases(), (b_ih.is_some(), b_hh.is_some()));
    let isa = r.pick(&Isa::ALL);
    let rnn = match rnn.clone().with_isa(isa) {
        Ok(rnn) => {
            assert!(
                isa.is_supported(),
                "with_isa({isa:?}) accepted an unsupported path"
            );
            assert_eq!(rnn.isa(), isa);
            rnn
        }
        Err(e) => {
            assert_eq!(e, Error::UnsupportedIsa(isa), "with_isa({isa:?})");
            assert!(
                !isa.is_supported(),
                "with_isa({isa:?}) rejected a supported path"
            );
            rnn
        }
    };

    let mut lengths_buf = Vec::new();
    let (steps, batch, with_lengths) = read_seq(r, &mut lengths_buf);
    let seq = Sequences {
        steps,
        batch,
        lengths: with_lengths.then_some(&lengths_buf[..]),
    };
    let tbi = mul3(steps, batch, i);
    let tbh = mul3(steps, batch, h);
    let bh = mul(batch, h);
    let input = vals(r, tbi, 1.0);
    let h0 = r.bool().then(|| vals(r, bh, 1.0));
    let mut model = Model::default();
    model.seq(&seq);
    model.len("input", input.len(), tbi);
    if let Some(h0) = &h0 {
        model.len("h0", h0.len(), bh);
    }
    model.overflow("output", tbh);
    let ctx = || {
        format!(
            "{act:?} I={i} H={h} {seq:?} |input|={} |h0|={:?}",
            input.len(),
            h0.as_ref().map(Vec::len)
        )
    };
    let reference_ok = model.valid();
    let reference_fwd = || {
        reference::rnn_forward(
            act,
            dims,
            &RnnWeights {
                w_ih: &f64s(&w_ih),
                w_hh: &f64s(&w_hh),
                b_ih: b_ih.as_deref().map(f64s).as_deref(),
                b_hh: b_hh.as_deref().map(f64s).as_deref(),
            },
            &seq,
            &f64s(&input),
            h0.as_deref().map(f64s).as_deref(),
        )
    };
    let tol = tolerance::<f32>(steps, batch, i, h);
    let mut ws = Workspace::new();

    match r.u8() % 3 {
        0 => {
            let mut output = sentinel_for(r, tbh);
            let mut h_n = r.bool().then(|| sentinel_for(r, bh));
            let mut m = model;
            m.len("output", output.len(), tbh);
            if let Some(h_n) = &h_n {
                m.len("h_n", h_n.len(), bh);
            }
            let (o0, hn0) = (bits(&output), h_n.as_deref().map(bits));
            let res = rnn.forward(&seq, &input, h0.as_deref(), &mut output, h_n.as_deref_mut());
            m.judge("Rnn::forward", &res, &ctx);
            if res.is_err() {
                assert_eq!(bits(&output), o0, "forward wrote `output` before failing");
                assert_eq!(
                    h_n.as_deref().map(bits),
                    hn0,
                    "forward wrote `h_n` before failing"
                );
                return;
            }
            let want = reference_fwd().expect("reference rejected a call the crate accepted");
            let e = rel_err(&output, &want.output, |_| true);
            assert!(e <= tol, "forward output error {e:e} > {tol:e} ({})", ctx());
            if let Some(h_n) = &h_n {
                let e = rel_err(h_n, &want.h_n, |_| true);
                assert!(e <= tol, "forward h_n error {e:e} > {tol:e} ({})", ctx());
            }
        }
        1 => {
            let mut h_n = sentinel_for(r, bh);
            let mut m = model;
            m.len("h_n", h_n.len(), bh);
            let hn0 = bits(&h_n);
            let res = rnn.forward_final(&seq, &input, h0.as_deref(), &mut h_n, &mut ws);
            m.judge("Rnn::forward_final", &res, &ctx);
            if res.is_err() {
                assert_eq!(bits(&h_n), hn0, "forward_final wrote `h_n` before failing");
                return;
            }
            let want = reference_fwd().expect("reference rejected a call the crate accepted");
            let e = rel_err(&h_n, &want.h_n, |_| true);
            assert!(
                e <= tol,
                "forward_final h_n error {e:e} > {tol:e} ({})",
                ctx()
            );
        }
        _ => {
            // `output` from our own forward when the shapes allow, so results can be checked.
            let mut output = vals(r, tbh, 1.0);
            let from_forward = reference_ok
                && Some(output.len()) == tbh
                && rnn
                    .forward(&seq, &input, h0.as_deref(), &mut output, None)
                    .is_ok();
            let grad_output = r.bool().then(|| vals(r, tbh, 1.0));
            let grad_h_n = r.bool().then(|| vals(r, bh, 1.0));
            let mut d_input = r.bool().then(|| sentinel_for(r, tbi));
            let mut d_h0 = r.bool().then(|| sentinel_for(r, bh));
            let zeros = |r: &mut Bytes<'_>, e: Option<usize>| vec![0.0f32; len_for(r, e)];
            let mut d_w_ih = r.bool().then(|| zeros(r, mul(h, i)));
            let mut d_w_hh = r.bool().then(|| zeros(r, mul(h, h)));
            let mut d_b_ih = r.bool().then(|| zeros(r, Some(h)));
            let mut d_b_hh = r.bool().then(|| zeros(r, Some(h)));
            let mut m = model;
            m.len("output", output.len(), tbh);
            if let Some(g) = &grad_output {
                m.len("grad_output", g.len(), tbh);
            }
            if let Some(g) = &grad_h_n {
                m.len("grad_h_n", g.len(), bh);
            }
            if let Some(d) = &d_input {
                m.len("d_input", d.len(), tbi);
            }
            if let Some(d) = &d_h0 {
                m.len("d_h0", d.len(), bh);
            }
            if let Some(d) = &d_w_ih {
                m.len("d_w_ih", d.len(), mul(h, i));
            }
            if let Some(d) = &d_w_hh {
                m.len("d_w_hh", d.len(), mul(h, h));
            }
            for (arg, d, present) in [
                ("d_b_ih", &d_b_ih, b_ih.is_some()),
                ("d_b_hh", &d_b_hh, b_hh.is_some()),
            ] {
                if let Some(d) = d {
                    if present {
                        m.len(arg, d.len(), Some(h));
                    } else {
                        m.wrong.push((arg, Wrong::Presence));
                    }
                }
            }
            let snapshot = |v: &Option<Vec<f32>>| v.as_deref().map(bits);
            let before = [
                snapshot(&d_input),
                snapshot(&d_h0),
                snapshot(&d_w_ih),
                snapshot(&d_w_hh),
                snapshot(&d_b_ih),
                snapshot(&d_b_hh),
            ];
            let res = rnn.backward(
                &seq,
                &input,
                h0.as_deref(),
                &output,
                grad_output.as_deref(),
                grad_h_n.as_deref(),
                RnnGrads {
                    d_input: d_input.as_deref_mut(),
                    d_h0: d_h0.as_deref_mut(),
                    d_w_ih: d_w_ih.as_deref_mut(),
                    d_w_hh: d_w_hh.as_deref_mut(),
                    d_b_ih: d_b_ih.as_deref_mut(),
                    d_b_hh: d_b_hh.as_deref_mut(),
                },
                &mut ws,
            );
            m.judge("Rnn::backward", &res, &ctx);
            let after = [
                snapshot(&d_input),
                snapshot(&d_h0),
                snapshot(&d_w_ih),
                snapshot(&d_w_hh),
                snapshot(&d_b_ih),
                snapshot(&d_b_hh),
            ];
            if res.is_err() {
                assert_eq!(
                    before,
                    after,
                    "backward wrote a gradient before failing ({})",
                    ctx()
                );
                return;
            }
            if !from_forward {
                return;
            }
            let want_fwd = reference_fwd().expect("reference rejected a call the crate accepted");
            if act == Activation::Relu
                && output
                    .iter()
                    .zip(&want_fwd.output)
                    .any(|(&o, &w)| (o > 0.0) != (w > 0.0))
            {
                return; // relu's derivative jumps between ours and the reference's
            }
            let want = reference::rnn_backward(
                act,
                dims,
                &RnnWeights {
                    w_ih: &f64s(&w_ih),
                    w_hh: &f64s(&w_hh),
                    b_ih: b_ih.as_deref().map(f64s).as_deref(),
                    b_hh: b_hh.as_deref().map(f64s).as_deref(),
                },
                &seq,
                &f64s(&input),
                h0.as_deref().map(f64s).as_deref(),
                grad_output.as_deref().map(f64s).as_deref(),
                grad_h_n.as_deref().map(f64s).as_deref(),
            )
            .expect("reference backward rejected a call the crate accepted");
            for (name, ours, want) in [
                ("d_input", &d_input, &want.d_input),
                ("d_h0", &d_h0, &want.d_h0),
                ("d_w_ih", &d_w_ih, &want.d_w_ih),
                ("d_w_hh", &d_w_hh, &want.d_w_hh),
                ("d_b_ih", &d_b_ih, &want.d_b_ih),
                ("d_b_hh", &d_b_hh, &want.d_b_hh),
            ] {
                if let Some(ours) = ours {
                    let e = rel_err(ours, want, |_| true);
                    assert!(
                        e <= tol,
                        "backward {name} error {e:e} > {tol:e} ({})",
                        ctx()
                    );
                }
            }
        }
    }
}

/// Tolerances of the output layer (relative to `max(max|ref|, 1)`), derived as in
/// `tests/common/mod.rs` with `|w_hy| <= 1 / H`, `|b_y| <= 0.05`, `|hidden|, |grad_y| <= 1`:
/// `z` sums H + 1 terms of total magnitude <= 1.05, so it errs by <= 1.05 (H + 1) u; every f
/// is 1-Lipschitz in the inf-norm here (softmax's shift by the max included) and adds at most
/// (O + 4) u of its own (exp, sum, division); so `y` errs by at most `2 u (H + O + 8)`. In
/// backward, `f'(y)` is at most 2-Lipschitz in `y` per element and softmax's dot sums O such
/// errors: `dz` errs by `(O + 2) tol_y + 2 u (O + 4)`; `d_w_hy` and `d_b_y` sum T*B of those
/// (each times `|hidden| <= 1`) plus their own T*B + H rounding each, relative to at most
/// 2 per term; `d_hidden` sums O of them.
pub fn output_tolerances(rows: usize, h: usize, o: usize) -> (f64, f64) {
    let u = f64::from(f32::EPSILON) / 2.0;
    let (rows, h, o) = (rows as f64, h as f64, o as f64);
    let tol_y = 2.0 * u * (h + o + 8.0);
    let tol_dz = (o + 2.0) * tol_y + 2.0 * u * (o + 4.0);
    let tol_grad = (rows + o) * (tol_dz + 4.0 * u * (rows + h + o));
    (tol_y, tol_grad)
}

#[allow(clippy::too_many_lines)]
fn output_calls(r: &mut Bytes<'_>) {
    let f = r.pick(&[
        OutputActivation::Identity,
        OutputActivation::Tanh,
        OutputActivation::Sigmoid,
        OutputActivation::Softmax,
    ]);
    let (h, o) = (dim(r), dim(r));
    let sh = if (1..=CAP).contains(&h) {
        1.0 / h as f32
    } else {
        1.0
    };
    let w_hy = vals(r, mul(o, h), sh);
    let b_y = r.bool().then(|| vals(r, Some(o), 0.05));
    let dims = OutputDims {
        hidden_size: h,
        output_size: o,
    };
    let mut model = Model::default();
    model.zero("hidden_size", h);
    model.zero("output_size", o);
    model.len("w_hy", w_hy.len(), mul(o, h));
    if let Some(b) = &b_y {
        model.len("b_y", b.len(), Some(o));
    }
    let ctx = || {
        format!(
            "{f:?} H={h} O={o} |w_hy|={} b_y={:?}",
            w_hy.len(),
            b_y.as_ref().map(Vec::len)
        )
    };
    let built = OutputLayer::new(
        f,
        dims,
        OutputWeights {
            w_hy: &w_hy,
            b_y: b_y.as_deref(),
        },
    );
    model.judge("OutputLayer::new", &built, &ctx);
    let Ok(layer) = built else { return };
    assert_eq!(layer.dims(), dims);

    let mut lengths_buf = Vec::new();
    let (steps, batch, with_lengths) = read_seq(r, &mut lengths_buf);
    let seq = Sequences {
        steps,
        batch,
        lengths: with_lengths.then_some(&lengths_buf[..]),
    };
    let tbh = mul3(steps, batch, h);
    let tbo = mul3(steps, batch, o);
    let hidden = vals(r, tbh, 1.0);
    let mut model = Model::default();
    model.seq(&seq);
    model.len("hidden", hidden.len(), tbh);
    model.overflow("y", tbo);
    let forward_ok = model.valid();
    let ctx = || format!("{f:?} H={h} O={o} {seq:?} |hidden|={}", hidden.len());
    let (w64, b64) = (f64s(&w_hy), b_y.as_deref().map(f64s));
    let w_ref = OutputWeights {
        w_hy: &w64,
        b_y: b64.as_deref(),
    };
    let (tol_y, tol_grad) = output_tolerances(steps.saturating_mul(batch), h, o);

    if r.bool() {
        let mut y = sentinel_for(r, tbo);
        let mut m = model;
        m.len("y", y.len(), tbo);
        let y0 = bits(&y);
        let res = layer.forward(&seq, &hidden, &mut y);
        m.judge("OutputLayer::forward", &res, &ctx);
        if res.is_err() {
            assert_eq!(bits(&y), y0, "forward wrote `y` before failing ({})", ctx());
            return;
        }
        let want = reference::output_forward(f, dims, &w_ref, &seq, &f64s(&hidden))
            .expect("reference rejected a call the crate accepted");
        let e = rel_err(&y, &want, |_| true);
        assert!(
            e <= tol_y,
            "output forward y error {e:e} > {tol_y:e} ({})",
            ctx()
        );
    } else {
        let mut y = vals(r, tbo, 1.0);
        let from_forward =
            forward_ok && Some(y.len()) == tbo && layer.forward(&seq, &hidden, &mut y).is_ok();
        let grad_y = vals(r, tbo, 1.0);
        let mut d_hidden = r.bool().then(|| sentinel_for(r, tbh));
        let mut d_w_hy = r.bool().then(|| vec![0.0f32; len_for(r, mul(o, h))]);
        let mut d_b_y = r.bool().then(|| vec![0.0f32; len_for(r, Some(o))]);
        let mut m = model;
        m.len("y", y.len(), tbo);
        m.len("grad_y", grad_y.len(), tbo);
        if let Some(d) = &d_hidden {
            m.len("d_hidden", d.len(), tbh);
        }
        if let Some(d) = &d_w_hy {
            m.len("d_w_hy", d.len(), mul(o, h));
        }
        if let Some(d) = &d_b_y {
            if b_y.is_some() {
                m.len("d_b_y", d.len(), Some(o));
            } else {
                m.wrong.push(("d_b_y", Wrong::Presence));
            }
        }
        let snapshot = |v: &Option<Vec<f32>>| v.as_deref().map(bits);
        let before = [snapshot(&d_hidden), snapshot(&d_w_hy), snapshot(&d_b_y)];
        let mut ws = Workspace::new();
        let res = layer.backward(
            &seq,
            &hidden,
            &y,
            &grad_y,
            OutputGrads {
                d_hidden: d_hidden.as_deref_mut(),
                d_w_hy: d_w_hy.as_deref_mut(),
                d_b_y: d_b_y.as_deref_mut(),
            },
            &mut ws,
        );
        m.judge("OutputLayer::backward", &res, &ctx);
        if res.is_err() {
            let after = [snapshot(&d_hidden), snapshot(&d_w_hy), snapshot(&d_b_y)];
            assert_eq!(
                before,
                after,
                "backward wrote a gradient before failing ({})",
                ctx()
            );
            return;
        }
        if !from_forward {
            return;
        }
        let want =
            reference::output_backward(f, dims, &w_ref, &seq, &f64s(&hidden), &f64s(&grad_y))
                .expect("reference rejected a call the crate accepted");
        for (name, ours, want) in [
            ("d_hidden", &d_hidden, &want.d_hidden),
            ("d_w_hy", &d_w_hy, &want.d_w_hy),
            ("d_b_y", &d_b_y, &want.d_b_y),
        ] {
            if let Some(ours) = ours {
                let e = rel_err(ours, want, |_| true);
                assert!(
                    e <= tol_grad,
                    "output backward {name} error {e:e} > {tol_grad:e} ({})",
                    ctx()
                );
            }
        }
        // Beyond each length d_hidden is exactly zero.
        if let (Some(d), Some(l)) = (&d_hidden, seq.lengths) {
            for (row, chunk) in d.chunks_exact(h).enumerate() {
                if row / batch >= l[row % batch] {
                    assert!(
                        chunk.iter().all(|&v| v == 0.0),
                        "d_hidden beyond length ({})",
                        ctx()
                    );
                }
            }
        }
    }
}
