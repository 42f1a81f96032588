//! The naive reference: obviously-correct loops, written for reading, not for speed.
//!
//! Each sequence is run alone, step by step, exactly as the equations read, keeping the
//! pre-activations so derivatives come from them (not from the outputs, as the fast path
//! does). The tests check these functions against central finite differences in `f64` and the
//! optimized kernels against these functions. Benches and fuzz targets use them too.
//!
//! Inputs are validated with the same checks as the public API, so a bad shape is an `Err`,
//! never a panic.

// Index loops over t, b, i, j are the readable form of the equations here.
#![allow(clippy::needless_range_loop)]

use crate::error::Result;
use crate::float::Float;
use crate::output::{OutputActivation, OutputDims, OutputWeights};
use crate::rnn::{Activation, RnnDims, RnnWeights};
use crate::sequences::{Sequences, check_len};

/// The outputs of [`rnn_forward`].
#[derive(Clone, Debug, PartialEq)]
pub struct RnnForward<F> {
    /// `[T, B, H]`, zero beyond each length.
    pub output: Vec<F>,
    /// `[B, H]`.
    pub h_n: Vec<F>,
}

/// The gradients computed by [`rnn_backward`]; bias gradients are empty for absent biases.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnGradients<F> {
    /// `[T, B, I]`.
    pub d_input: Vec<F>,
    /// `[B, H]`.
    pub d_h0: Vec<F>,
    /// `[H, I]`.
    pub d_w_ih: Vec<F>,
    /// `[H, H]`.
    pub d_w_hh: Vec<F>,
    /// `[H]` or empty.
    pub d_b_ih: Vec<F>,
    /// `[H]` or empty.
    pub d_b_hh: Vec<F>,
}

/// One sequence's trajectory: pre-activations `a[t]` and states `h[t]`, `t < n`.
struct Trajectory<F> {
    a: Vec<Vec<F>>,
    h: Vec<Vec<F>>,
}

fn relu_or_tanh<F: Float>(act: Activation, a: F) -> F {
    match act {
        Activation::Tanh => a.tanh(),
        Activation::Relu => {
            if a > F::ZERO || a.is_nan() {
                a
            } else {
                F::ZERO
            }
        }
    }
}

/// d act / d a, from the pre-activation (relu' at exactly 0 is 0, as in PyTorch).
fn derivative_at<F: Float>(act: Activation, a: F) -> F {
    match act {
        Activation::Tanh => {
            let y = a.tanh();
            F::ONE - y * y
        }
        Activation::Relu => {
            if a > F::ZERO {
                F::ONE
            } else {
                F::ZERO
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_sequence<F: Float>(
    act: Activation,
    dims: RnnDims,
    w: &RnnWeights<'_, F>,
    seq: &Sequences<'_>,
    input: &[F],
    h0: Option<&[F]>,
    b: usize,
) -> Trajectory<F> {
    let (i_n, h_n) = (dims.input_size, dims.hidden_size);
    let batch = seq.batch;
    let mut h_prev: Vec<F> = match h0 {
        Some(h0) => h0[b * h_n..(b + 1) * h_n].to_vec(),
        None => vec![F::ZERO; h_n],
    };
    let mut traj = Trajectory {
        a: Vec::new(),
        h: Vec::new(),
    };
    for t in 0..seq.len_of(b) {
        let x = &input[(t * batch + b) * i_n..(t * batch + b + 1) * i_n];
        let mut a = vec![F::ZERO; h_n];
        for (i, a_i) in a.iter_mut().enumerate() {
            let mut sum = F::ZERO;
            for j in 0..i_n {
                sum += w.w_ih[i * i_n + j] * x[j];
            }
            if let Some(b_ih) = w.b_ih {
                sum += b_ih[i];
            }
            for j in 0..h_n {
                sum += w.w_hh[i * h_n + j] * h_prev[j];
            }
            if let Some(b_hh) = w.b_hh {
                sum += b_hh[i];
            }
            *a_i = sum;
        }
        let h: Vec<F> = a.iter().map(|&a| relu_or_tanh(act, a)).collect();
        traj.a.push(a);
        traj.h.push(h.clone());
        h_prev = h;
    }
    traj
}

/// Forward pass of one Elman RNN layer (see [`crate::rnn`] for layouts and semantics).
pub fn rnn_forward<F: Float>(
    act: Activation,
    dims: RnnDims,
    w: &RnnWeights<'_, F>,
    seq: &Sequences<'_>,
    input: &[F],
    h0: Option<&[F]>,
) -> Result<RnnForward<F>> {
    dims.validate(w)?;
    dims.validate_inputs(seq, input, h0)?;
    let (batch, h_n) = (seq.batch, dims.hidden_size);
    let mut out = RnnForward {
        output: vec![F::ZERO; seq.steps * batch * h_n],
        h_n: vec![F::ZERO; batch * h_n],
    };
    for b in 0..batch {
        let traj = run_sequence(act, dims, w, seq, input, h0, b);
        for (t, h) in traj.h.iter().enumerate() {
            let at = (t * batch + b) * h_n;
            out.output[at..at + h_n].copy_from_slice(h);
        }
        out.h_n[b * h_n..(b + 1) * h_n].copy_from_slice(traj.h.last().expect("length >= 1"));
    }
    Ok(out)
}

/// Gradients of `L = sum(output * grad_output) + sum(h_n * grad_h_n)` with respect to the
/// input, `h0` and every parameter. Missing upstream gradients are zeros.
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward<F: Float>(
    act: Activation,
    dims: RnnDims,
    w: &RnnWeights<'_, F>,
    seq: &Sequences<'_>,
    input: &[F],
    h0: Option<&[F]>,
    grad_output: Option<&[F]>,
    grad_h_n: Option<&[F]>,
) -> Result<RnnGradients<F>> {
    dims.validate(w)?;
    dims.validate_inputs(seq, input, h0)?;
    let (i_n, h_n, batch) = (dims.input_size, dims.hidden_size, seq.batch);
    if let Some(g) = grad_output {
        check_len("grad_output", g.len(), seq.steps * batch * h_n, || {
            "T*B*H".into()
        })?;
    }
    if let Some(g) = grad_h_n {
        check_len("grad_h_n", g.len(), batch * h_n, || "B*H".into())?;
    }
    let mut g = RnnGradients {
        d_input: vec![F::ZERO; input.len()],
        d_h0: vec![F::ZERO; batch * h_n],
        d_w_ih: vec![F::ZERO; h_n * i_n],
        d_w_hh: vec![F::ZERO; h_n * h_n],
        d_b_ih: vec![F::ZERO; if w.b_ih.is_some() { h_n } else { 0 }],
        d_b_hh: vec![F::ZERO; if w.b_hh.is_some() { h_n } else { 0 }],
    };
    for b in 0..batch {
        let traj = run_sequence(act, dims, w, seq, input, h0, b);
        let n = traj.h.len();
        // dL/dh_t flowing back from later steps.
        let mut dh_next = vec![F::ZERO; h_n];
        if let Some(gh) = grad_h_n {
            dh_next.copy_from_slice(&gh[b * h_n..(b + 1) * h_n]);
        }
        for t in (0..n).rev() {
            let row = t * batch + b;
            let mut dh = dh_next.clone();
            if let Some(go) = grad_output {
                for k in 0..h_n {
                    dh[k] += go[row * h_n + k];
                }
            }
            let da: Vec<F> = (0..h_n)
                .map(|k| dh[k] * derivative_at(act, traj.a[t][k]))
                .collect();
            let x = &input[row * i_n..(row + 1) * i_n];
            let h_prev: Vec<F> = if t > 0 {
                traj.h[t - 1].clone()
            } else {
                match h0 {
                    Some(h0) => h0[b * h_n..(b + 1) * h_n].to_vec(),
                    None => vec![F::ZERO; h_n],
                }
            };
            for i in 0..h_n {
                for j in 0..i_n {
                    g.d_w_ih[i * i_n + j] += da[i] * x[j];
                    g.d_input[row * i_n + j] += w.w_ih[i * i_n + j] * da[i];
                }
                for j in 0..h_n {
                    g.d_w_hh[i * h_n + j] += da[i] * h_prev[j];
                }
                if w.b_ih.is_some() {
                    g.d_b_ih[i] += da[i];
                }
                if w.b_hh.is_some() {
                    g.d_b_hh[i] += da[i];
                }
            }
            for j in 0..h_n {
                let mut sum = F::ZERO;
                for i in 0..h_n {
                    sum += w.w_hh[i * h_n + j] * da[i];
                }
                dh_next[j] = sum;
            }
        }
        g.d_h0[b * h_n..(b + 1) * h_n].copy_from_slice(&dh_next);
    }
    Ok(g)
}

/// The output layer over every row: `y[r] = f(W_hy hidden[r] + b_y)`; rows of steps beyond a
/// sequence's length are zero.
pub fn output_forward<F: Float>(
    f: OutputActivation,
    dims: OutputDims,
    w: &OutputWeights<'_, F>,
    seq: &Sequences<'_>,
    hidden: &[F],
) -> Result<Vec<F>> {
    dims.validate(w)?;
    dims.validate_hidden(seq, hidden)?;
    let (h_n, o_n, batch) = (dims.hidden_size, dims.output_size, seq.batch);
    let mut y = vec![F::ZERO; seq.steps * batch * o_n];
    for r in 0..seq.steps * batch {
        if !seq.is_active(r / batch, r % batch) {
            continue;
        }
        let z: Vec<F> = (0..o_n)
            .map(|o| {
                let mut sum = w.b_y.map_or(F::ZERO, |b| b[o]);
                for k in 0..h_n {
                    sum += w.w_hy[o * h_n + k] * hidden[r * h_n + k];
                }
                sum
            })
            .collect();
        let yr = &mut y[r * o_n..(r + 1) * o_n];
        match f {
            OutputActivation::Identity => yr.copy_from_slice(&z),
            OutputActivation::Tanh => {
                for (y, z) in yr.iter_mut().zip(&z) {
                    *y = z.tanh();
                }
            }
            OutputActivation::Sigmoid => {
                for (y, &z) in yr.iter_mut().zip(&z) {
                    *y = F::ONE / (F::ONE + (-z).exp());
                }
            }
            OutputActivation::Softmax => {
                let max = z.iter().fold(z[0], |m, &v| if v > m { v } else { m });
                let e: Vec<F> = z.iter().map(|&v| (v - max).exp()).collect();
                let total: F = e.iter().copied().sum();
                for (y, e) in yr.iter_mut().zip(e) {
                    *y = e / total;
                }
            }
        }
    }
    Ok(y)
}

/// The gradients computed by [`output_backward`].
#[derive(Clone, Debug, PartialEq)]
pub struct OutputGradients<F> {
    /// dL/d`hidden`, `[T, B, H]`.
    pub d_hidden: Vec<F>,
    /// `[O, H]`.
    pub d_w_hy: Vec<F>,
    /// `[O]` or empty.
    pub d_b_y: Vec<F>,
}

/// Gradients of `L = sum(y * grad_y)` for the output layer, from the forward's `y`.
pub fn output_backward<F: Float>(
    f: OutputActivation,
    dims: OutputDims,
    w: &OutputWeights<'_, F>,
    seq: &Sequences<'_>,
    hidden: &[F],
    grad_y: &[F],
) -> Result<OutputGradients<F>> {
    let y = output_forward(f, dims, w, seq, hidden)?;
    check_len("grad_y", grad_y.len(), y.len(), || "T*B*O".into())?;
    let (h_n, o_n, batch) = (dims.hidden_size, dims.output_size, seq.batch);
    let mut g = OutputGradients {
        d_hidden: vec![F::ZERO; hidden.len()],
        d_w_hy: vec![F::ZERO; o_n * h_n],
        d_b_y: vec![F::ZERO; if w.b_y.is_some() { o_n } else { 0 }],
    };
    for r in 0..seq.steps * batch {
        if !seq.is_active(r / batch, r % batch) {
            continue;
        }
        let yr = &y[r * o_n..(r + 1) * o_n];
        let gy = &grad_y[r * o_n..(r + 1) * o_n];
        // dL/dz for z = W_hy h + b_y.
        let dz: Vec<F> = match f {
            OutputActivation::Identity => gy.to_vec(),
            OutputActivation::Tanh => (0..o_n).map(|o| gy[o] * (F::ONE - yr[o] * yr[o])).collect(),
            OutputActivation::Sigmoid => {
                (0..o_n).map(|o| gy[o] * yr[o] * (F::ONE - yr[o])).collect()
            }
            OutputActivation::Softmax => (0..o_n)
                .map(|o| {
                    // dy_k/dz_o = y_k (delta_ko - y_o)
                    let mut sum = F::ZERO;
                    for k in 0..o_n {
                        let delta = if k == o { F::ONE } else { F::ZERO };
                        sum += gy[k] * yr[k] * (delta - yr[o]);
                    }
                    sum
                })
                .collect(),
        };
        for o in 0..o_n {
            for k in 0..h_n {
                g.d_w_hy[o * h_n + k] += dz[o] * hidden[r * h_n + k];
                g.d_hidden[r * h_n + k] += w.w_hy[o * h_n + k] * dz[o];
            }
            if w.b_y.is_some() {
                g.d_b_y[o] += dz[o];
            }
        }
    }
    Ok(g)
}
