//! Shared generators and the one tolerance rule of the test suite.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rnn_kernels::{Activation, Float, Isa, Rnn, RnnDims, RnnWeights, Sequences};

/// A random problem: parameters and inputs drawn in f32 (so the f64 copy is exact), with the
/// recurrent weights scaled so that both `||W_hh||_1` and `||W_hh||_inf` are at most 0.9 and
/// every row of `[W_ih | W_hh | b]` sums to at most 1 in absolute value. See [`tolerance`].
#[derive(Clone, Debug)]
pub struct Problem {
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
    pub grad_output: Vec<f32>,
    pub grad_h_n: Vec<f32>,
}

pub struct Flags {
    pub bias: bool,
    pub h0: bool,
    pub lengths: bool,
}

fn uniform(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * scale)
        .collect()
}

impl Problem {
    pub fn random(
        steps: usize,
        batch: usize,
        input_size: usize,
        hidden_size: usize,
        flags: Flags,
        seed: u64,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (t, b, i, h) = (steps, batch, input_size, hidden_size);
        // Row sums: |W_ih| row <= 0.3, |W_hh| row and column <= 0.6, |b_ih| + |b_hh| <= 0.1.
        let w_ih = uniform(&mut rng, h * i, 0.3 / i as f32);
        let w_hh = uniform(&mut rng, h * h, 0.6 / h as f32);
        let (b_ih, b_hh) = if flags.bias {
            (
                Some(uniform(&mut rng, h, 0.05)),
                Some(uniform(&mut rng, h, 0.05)),
            )
        } else {
            (None, None)
        };
        let input = uniform(&mut rng, t * b * i, 1.0);
        let h0 = flags.h0.then(|| uniform(&mut rng, b * h, 1.0));
        let lengths = flags
            .lengths
            .then(|| (0..b).map(|_| rng.random_range(1..=t)).collect::<Vec<_>>());
        let mut grad_output = uniform(&mut rng, t * b * h, 1.0);
        if let Some(l) = &lengths {
            for tt in 0..t {
                for bb in 0..b {
                    if tt >= l[bb] {
                        grad_output[(tt * b + bb) * h..(tt * b + bb + 1) * h].fill(0.0);
                    }
                }
            }
        }
        let grad_h_n = uniform(&mut rng, b * h, 1.0);
        Problem {
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
        }
    }
}

/// Converts a drawn f32 tensor to the precision under test (exact for f64).
pub fn cast<F: Float>(v: &[f32]) -> Vec<F> {
    v.iter().map(|&x| F::from_f64(x as f64)).collect()
}

/// The tolerance for comparing a result computed in precision `F` with the exact one (the f64
/// reference stands in for it), as `max|ours - ref| / max(max|ref|, 1)`.
///
/// Derivation. Every result is built from dot products: a pre-activation sums K = I + H + 2
/// terms, a weight gradient sums T*B terms. A dot product of n terms computed in any order has
/// error at most gamma_n * sum|terms| <= n u sum|terms| (Higham, Accuracy and Stability, 3.1),
/// u = eps / 2, and with the problem's scaling (`Problem::random`) sum|terms| is bounded by the
/// largest magnitude in the result or by 1. tanh and relu are 1-Lipschitz and the recurrent
/// maps are contractions in both the 1- and inf-norm (<= 0.9), so an error made at one step is
/// not amplified by later steps: after T steps the errors add up to at most T times one step's.
/// One step of the forward or of BPTT costs at most (K + 4) u plus the activation's own error
/// (std tanh: <= 2 ulp); the final GEMMs over all steps add (T*B + H) u. Summing the three
/// stages and doubling for the products of two rounded factors gives
/// `2 u (T (K + 8) + T*B + H)`, which also covers the f64 reference's own (much smaller) error.
pub fn tolerance<F: Float>(p: &Problem) -> f64 {
    let u = F::EPSILON.to_f64() / 2.0;
    let (t, b, i, h) = (
        p.steps as f64,
        p.batch as f64,
        p.input_size as f64,
        p.hidden_size as f64,
    );
    let k = i + h + 2.0;
    2.0 * u * (t * (k + 8.0) + t * b + h)
}

/// `max|ours - ref| / max(max|ref|, 1)` over a tensor.
pub fn rel_err<F: Float>(ours: &[F], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "tensor lengths differ");
    let scale = reference.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .map(|(&o, &r)| (o.to_f64() - r).abs())
        .fold(0.0, f64::max)
        / scale
}

/// The layer of `p`'s weights in precision F on path `isa`.
pub fn layer<F: Float>(p: &Problem, act: Activation, isa: Isa) -> Rnn<F> {
    let (w_ih, w_hh) = (cast::<F>(&p.w_ih), cast::<F>(&p.w_hh));
    let b_ih = p.b_ih.as_deref().map(cast::<F>);
    let b_hh = p.b_hh.as_deref().map(cast::<F>);
    let dims = RnnDims {
        input_size: p.input_size,
        hidden_size: p.hidden_size,
    };
    let weights = RnnWeights {
        w_ih: &w_ih,
        w_hh: &w_hh,
        b_ih: b_ih.as_deref(),
        b_hh: b_hh.as_deref(),
    };
    Rnn::new(act, dims, weights).unwrap().with_isa(isa).unwrap()
}

/// `p`'s steps, batch and lengths.
pub fn sequences(p: &Problem) -> Sequences<'_> {
    Sequences {
        steps: p.steps,
        batch: p.batch,
        lengths: p.lengths.as_deref(),
    }
}
