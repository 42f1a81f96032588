//! A bounded RNN problem read from fuzzer bytes, the reference results for it, and the one
//! tolerance rule (the derivation of `tests/common/mod.rs`, restated below).

use rnn_kernels::reference::{self, RnnForward, RnnGradients};
use rnn_kernels::{Activation, Float, RnnDims, RnnWeights, Sequences};

use super::bytes::{Bytes, pseudo_random_bytes};

/// Largest T, B, I and H the fuzz targets build.
pub const MAX_DIM: usize = 24;

/// One Elman RNN problem in `f32` (so the `f64` copy is exact).
///
/// Clean values are drawn with the scaling the tolerance derivation needs: every entry of
/// `w_ih` is at most `0.3 / I` and of `w_hh` at most `0.6 / H` in magnitude (so
/// `||W_hh||_1, ||W_hh||_inf <= 0.6`), biases at most 0.05, inputs, `h0` and upstream
/// gradients at most 1.
#[derive(Clone, Debug)]
pub struct Problem {
    pub act: Activation,
    pub steps: usize,
    pub batch: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub w_ih: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub b_ih: Option<Vec<f32>>,
    pub b_hh: Option<Vec<f32>>,
    pub input: Vec<f32>,
    pub h0: Option<Vec<f32>>,
    pub lengths: Option<Vec<usize>>,
    pub grad_output: Option<Vec<f32>>,
    pub grad_h_n: Option<Vec<f32>>,
    /// Sequences whose active input rows or `h0` row hold hostile values (NaN, infinities,
    /// huge or arbitrary bits). Every other sequence is clean.
    pub corrupt: Vec<bool>,
    /// Whether the problem is big enough for the kernels to thread a step.
    pub big: bool,
    /// Whether some weight or bias holds a hostile value (then only the structural promises
    /// hold: Ok, no panic, zeros beyond lengths).
    pub hostile_weights: bool,
}

fn scaled(r: &mut Bytes<'_>, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.unit_f32() * scale).collect()
}

/// The clean values of a problem, read with the scaling of [`Problem`].
struct Values {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
    h0: Option<Vec<f32>>,
    lengths: Option<Vec<usize>>,
    input: Vec<f32>,
    grad_output: Option<Vec<f32>>,
    grad_h_n: Option<Vec<f32>>,
}

impl Values {
    fn read(r: &mut Bytes<'_>, flags: u8, t: usize, b: usize, i: usize, h: usize) -> Values {
        Values {
            w_ih: scaled(r, h * i, 0.3 / i as f32),
            w_hh: scaled(r, h * h, 0.6 / h as f32),
            b_ih: (flags & 2 != 0).then(|| scaled(r, h, 0.05)),
            b_hh: (flags & 4 != 0).then(|| scaled(r, h, 0.05)),
            h0: (flags & 8 != 0).then(|| scaled(r, b * h, 1.0)),
            lengths: (flags & 16 != 0).then(|| (0..b).map(|_| r.range(1, t)).collect()),
            input: scaled(r, t * b * i, 1.0),
            grad_output: (flags & 32 != 0).then(|| scaled(r, t * b * h, 1.0)),
            grad_h_n: (flags & 64 != 0).then(|| scaled(r, b * h, 1.0)),
        }
    }
}

impl Problem {
    /// Reads a problem; every byte string gives a valid one.
    pub fn read(r: &mut Bytes<'_>) -> Problem {
        let steps = r.range(1, MAX_DIM);
        let batch = r.range(1, MAX_DIM);
        let input_size = r.range(1, MAX_DIM);
        let hidden_size = r.range(1, MAX_DIM);
        let flags = r.u8();
        let act = if flags & 1 == 0 {
            Activation::Tanh
        } else {
            Activation::Relu
        };
        // One input in 16: a problem big enough (B*H*H >= 2^17) for the kernels to split each
        // step across threads, with values from a pseudo-random stream seeded by the input
        // (a fuzzer input cannot hold ~10^4 values).
        let big = flags & 128 != 0 && steps <= 3;
        let (batch, hidden_size) = if big {
            (17 + batch % 16, 90 + hidden_size % 39)
        } else {
            (batch, hidden_size)
        };
        let (t, b, i, h) = (steps, batch, input_size, hidden_size);
        let values = if big {
            let n = h * i + h * h + 2 * h + b * h + b + t * b * i + t * b * h + b * h;
            let data = pseudo_random_bytes(r.u64(), 6 * n);
            Values::read(&mut Bytes::new(&data), flags, t, b, i, h)
        } else {
            Values::read(r, flags, t, b, i, h)
        };
        let Values {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            h0,
            lengths,
            input,
            grad_output,
            grad_h_n,
        } = values;
        let mut p = Problem {
            act,
            steps,
            batch,
            input_size,
            hidden_size,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            input,
            h0,
            lengths,
            grad_output,
            grad_h_n,
            corrupt: vec![false; batch],
            big,
            hostile_weights: false,
        };
        let hostile = r.u8();
        // Padding beyond each length holds anything: it must never be read.
        if hostile & 1 != 0 && p.lengths.is_some() {
            for tt in 0..t {
                for bb in 0..b {
                    if !p.active(tt, bb) {
                        let row = tt * b + bb;
                        for v in &mut p.input[row * i..(row + 1) * i] {
                            *v = r.hostile_f32();
                        }
                        if let Some(g) = &mut p.grad_output {
                            for v in &mut g[row * h..(row + 1) * h] {
                                *v = r.hostile_f32();
                            }
                        }
                    }
                }
            }
        }
        // Hostile values in the active input rows, h0 rows and upstream gradients of some
        // sequences.
        if hostile & 2 != 0 {
            for bb in 0..b {
                if !r.u8().is_multiple_of(3) {
                    continue;
                }
                p.corrupt[bb] = true;
                for _ in 0..r.range(1, 4) {
                    let (tt, k) = (r.range(0, p.len_of(bb) - 1), r.range(0, i - 1));
                    p.input[(tt * b + bb) * i + k] = r.hostile_f32();
                }
                if let Some(h0) = &mut p.h0
                    && r.bool()
                {
                    h0[bb * h + r.range(0, h - 1)] = r.hostile_f32();
                }
                if let Some(g) = &mut p.grad_output
                    && r.bool()
                {
                    let tt = r.range(0, p.lengths.as_ref().map_or(t, |l| l[bb]) - 1);
                    g[(tt * b + bb) * h + r.range(0, h - 1)] = r.hostile_f32();
                }
            }
        }
        // Hostile weights: everything may become non-finite.
        if hostile & 4 != 0 {
            p.hostile_weights = true;
            for _ in 0..r.range(1, 4) {
                let v = r.hostile_f32();
                match r.u8() % 4 {
                    0 => {
                        let k = r.range(0, p.w_ih.len() - 1);
                        p.w_ih[k] = v;
                    }
                    1 => {
                        let k = r.range(0, p.w_hh.len() - 1);
                        p.w_hh[k] = v;
                    }
                    2 => {
                        if let Some(bias) = &mut p.b_ih {
                            bias[r.range(0, h - 1)] = v;
                        }
                    }
                    _ => {
                        if let Some(bias) = &mut p.b_hh {
                            bias[r.range(0, h - 1)] = v;
                        }
                    }
                }
            }
        }
        p
    }

    /// A one-line summary for failure messages (the full problem is in the fuzz artifact).
    pub fn summary(&self) -> String {
        format!(
            "{:?} T={} B={} I={} H={} b_ih={} b_hh={} h0={} lengths={:?} grad_output={} grad_h_n={} corrupt={:?} big={} hostile_weights={}",
            self.act,
            self.steps,
            self.batch,
            self.input_size,
            self.hidden_size,
            self.b_ih.is_some(),
            self.b_hh.is_some(),
            self.h0.is_some(),
            self.lengths,
            self.grad_output.is_some(),
            self.grad_h_n.is_some(),
            self.corrupt,
            self.big,
            self.hostile_weights
        )
    }

    pub fn len_of(&self, b: usize) -> usize {
        self.lengths.as_ref().map_or(self.steps, |l| l[b])
    }

    pub fn active(&self, t: usize, b: usize) -> bool {
        t < self.len_of(b)
    }

    pub fn dims(&self) -> RnnDims {
        RnnDims {
            input_size: self.input_size,
            hidden_size: self.hidden_size,
        }
    }

    pub fn seq(&self) -> Sequences<'_> {
        Sequences {
            steps: self.steps,
            batch: self.batch,
            lengths: self.lengths.as_deref(),
        }
    }

    /// Whether every sequence is clean and the weights are bounded: the tolerance applies to
    /// every tensor, parameter gradients included.
    pub fn all_clean(&self) -> bool {
        !self.hostile_weights && self.corrupt.iter().all(|c| !c)
    }

    /// Reference forward and backward in `f64` from the same `f32` values.
    pub fn reference(&self) -> (RnnForward<f64>, RnnGradients<f64>) {
        let w_ih = cast::<f64>(&self.w_ih);
        let w_hh = cast::<f64>(&self.w_hh);
        let b_ih = self.b_ih.as_deref().map(cast::<f64>);
        let b_hh = self.b_hh.as_deref().map(cast::<f64>);
        let w = RnnWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: b_ih.as_deref(),
            b_hh: b_hh.as_deref(),
        };
        let input = cast::<f64>(&self.input);
        let h0 = self.h0.as_deref().map(cast::<f64>);
        let go = self.grad_output.as_deref().map(cast::<f64>);
        let gh = self.grad_h_n.as_deref().map(cast::<f64>);
        let seq = self.seq();
        let fwd = reference::rnn_forward(self.act, self.dims(), &w, &seq, &input, h0.as_deref())
            .expect("reference forward rejected a valid problem");
        let grads = reference::rnn_backward(
            self.act,
            self.dims(),
            &w,
            &seq,
            &input,
            h0.as_deref(),
            go.as_deref(),
            gh.as_deref(),
        )
        .expect("reference backward rejected a valid problem");
        (fwd, grads)
    }
}

/// Converts an `f32` tensor to the precision under test (exact for `f64`).
pub fn cast<F: Float>(v: &[f32]) -> Vec<F> {
    v.iter().map(|&x| F::from_f64(f64::from(x))).collect()
}

/// The tolerance of `tests/common/mod.rs::tolerance`, for results in precision `F` compared
/// with the f64 reference as `max|ours - ref| / max(max|ref|, 1)`.
///
/// Derivation (restated): every result is built from dot products; a pre-activation sums
/// K = I + H + 2 terms, a weight gradient T*B terms. With the scaling of [`Problem`] the sum of
/// the terms' magnitudes is bounded by the result's scale or by 1, an n-term dot product errs by
/// at most n u times that (u = eps / 2), tanh and relu are 1-Lipschitz and the recurrent maps
/// are contractions, so one step's error is not amplified by later steps. One step costs at
/// most (K + 4) u plus the activation's own error; the final GEMMs add (T*B + H) u; doubling
/// for products of two rounded factors gives `2 u (T (K + 8) + T*B + H)`.
pub fn tolerance<F: Float>(steps: usize, batch: usize, input: usize, hidden: usize) -> f64 {
    let u = F::EPSILON.to_f64() / 2.0;
    let (t, b, i, h) = (steps as f64, batch as f64, input as f64, hidden as f64);
    let k = i + h + 2.0;
    2.0 * u * (t * (k + 8.0) + t * b + h)
}

/// `max|ours - ref| / max(max|ref|, 1)` over the elements `keep` selects; NaN if any selected
/// element of either side is NaN or infinite.
pub fn rel_err<F: Float>(ours: &[F], reference: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    assert_eq!(ours.len(), reference.len(), "tensor lengths differ");
    let mut scale = 1.0f64;
    let mut worst = 0.0f64;
    for (k, (&o, &r)) in ours.iter().zip(reference).enumerate() {
        if !keep(k) {
            continue;
        }
        let o = o.to_f64();
        if !o.is_finite() || !r.is_finite() {
            return f64::NAN;
        }
        scale = scale.max(r.abs());
        worst = worst.max((o - r).abs());
    }
    worst / scale
}

/// Bitwise equality that treats any two NaNs as equal.
pub fn same<F: Float>(a: &[F], b: &[F]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            (x.is_nan() && y.is_nan())
                || (!x.is_nan() && !y.is_nan() && x.to_f64().to_bits() == y.to_f64().to_bits())
        })
}
