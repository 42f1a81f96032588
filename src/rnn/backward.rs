//! Backward pass (BPTT): a sequential sweep that only carries the state gradient, then one GEMM
//! or reduction per gradient over all steps.

use super::Rnn;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::gemm::{Mat, MatMut, gemm};
use crate::sequences::{Sequences, check_len};
use crate::workspace::Workspace;

/// Where [`Rnn::backward`] writes its gradients. Any of them may be left out (`None`) when
/// the caller does not need it; what is left out is not computed.
///
/// `d_input` (`[T, B, I]`) and `d_h0` (`[B, H]`) are overwritten. `d_w_ih` (`[H, I]`),
/// `d_w_hh` (`[H, H]`), `d_b_ih` and `d_b_hh` (`[H]`) are accumulated (`+=`).
#[derive(Debug, Default)]
pub struct RnnGrads<'a, F> {
    /// dLoss/d`input`, `[T, B, I]`, overwritten; exactly zero beyond each sequence's length.
    pub d_input: Option<&'a mut [F]>,
    /// dLoss/d`h0`, `[B, H]`, overwritten (also meaningful when `h0` was zeros).
    pub d_h0: Option<&'a mut [F]>,
    /// dLoss/d`w_ih`, `[H, I]`, accumulated.
    pub d_w_ih: Option<&'a mut [F]>,
    /// dLoss/d`w_hh`, `[H, H]`, accumulated.
    pub d_w_hh: Option<&'a mut [F]>,
    /// dLoss/d`b_ih`, `[H]`, accumulated; only for a layer built with `b_ih`.
    pub d_b_ih: Option<&'a mut [F]>,
    /// dLoss/d`b_hh`, `[H]`, accumulated; only for a layer built with `b_hh`.
    pub d_b_hh: Option<&'a mut [F]>,
}

impl<F: Float> Rnn<F> {
    /// Backpropagation through time for a loss `L` seeded with `grad_output` = dL/d`output`
    /// (`[T, B, H]`) and `grad_h_n` = dL/d`h_n` (`[B, H]`), either defaulting to zeros.
    ///
    /// `input`, `h0` and `seq` must be those of the forward call and `output` what
    /// [`Rnn::forward`] wrote (the derivatives come from it: `1 - h^2` for tanh, `h > 0` for
    /// relu). Where a sequence ends, its `grad_output` row and its `grad_h_n` row are added.
    /// `grad_output` beyond a sequence's length is ignored. See [`RnnGrads`] for where each
    /// gradient goes.
    ///
    /// Workspace: `T*B*H + B*H` elements, plus `T*B*I` when `lengths` are given and `d_w_ih` is
    /// wanted (a copy of `input` with padded rows zeroed, so that whatever the padding holds,
    /// even NaN, never reaches the weight gradient).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        seq: &Sequences<'_>,
        input: &[F],
        h0: Option<&[F]>,
        output: &[F],
        grad_output: Option<&[F]>,
        grad_h_n: Option<&[F]>,
        grads: RnnGrads<'_, F>,
        workspace: &mut Workspace<F>,
    ) -> Result<()> {
        self.dims.validate_inputs(seq, input, h0)?;
        let (steps, batch) = (seq.steps, seq.batch);
        let (input_size, hidden) = (self.dims.input_size, self.dims.hidden_size);
        let state_len = batch * hidden;
        let seq_len = steps * state_len;
        let thd = || format!("T*B*H = {steps}*{batch}*{hidden}");
        let bh = || format!("B*H = {batch}*{hidden}");
        check_len("output", output.len(), seq_len, thd)?;
        if let Some(g) = grad_output {
            check_len("grad_output", g.len(), seq_len, thd)?;
        }
        if let Some(g) = grad_h_n {
            check_len("grad_h_n", g.len(), state_len, bh)?;
        }
        let RnnGrads {
            d_input,
            d_h0,
            d_w_ih,
            d_w_hh,
            d_b_ih,
            d_b_hh,
        } = grads;
        if let Some(d) = &d_input {
            check_len("d_input", d.len(), input.len(), || {
                format!("T*B*I = {steps}*{batch}*{input_size}")
            })?;
        }
        if let Some(d) = &d_h0 {
            check_len("d_h0", d.len(), state_len, bh)?;
        }
        if let Some(d) = &d_w_ih {
            check_len("d_w_ih", d.len(), self.w_ih.len(), || {
                format!("H*I = {hidden}*{input_size}")
            })?;
        }
        if let Some(d) = &d_w_hh {
            check_len("d_w_hh", d.len(), self.w_hh.len(), || {
                format!("H*H = {hidden}*{hidden}")
            })?;
        }
        for (arg, d, present) in [
            ("d_b_ih", &d_b_ih, self.has_b_ih),
            ("d_b_hh", &d_b_hh, self.has_b_hh),
        ] {
            if let Some(d) = d {
                if !present {
                    return Err(Error::Presence {
                        arg,
                        why: "the layer was built without this bias",
                    });
                }
                check_len(arg, d.len(), hidden, || "H".into())?;
            }
        }

        let masked_input = seq.lengths.is_some() && d_w_ih.is_some();
        let ws = workspace.take(seq_len + state_len + if masked_input { input.len() } else { 0 });
        let (d_pre, ws) = ws.split_at_mut(seq_len);
        let (carry, x_masked) = ws.split_at_mut(state_len);

        // The sequential sweep: dA_t = (dh_t + carry) * act'(h_t), carry = dA_t W_hh.
        carry.fill(F::ZERO);
        let act = self.activation;
        for t in (0..steps).rev() {
            let base = t * state_len;
            let d_pre_t = &mut d_pre[base..base + state_len];
            for b in 0..batch {
                let row = b * hidden..(b + 1) * hidden;
                let n = seq.len_of(b);
                if t >= n {
                    d_pre_t[row.clone()].fill(F::ZERO);
                    carry[row].fill(F::ZERO);
                    continue;
                }
                let carry_row = &mut carry[row.clone()];
                if t + 1 == n
                    && let Some(g) = grad_h_n
                {
                    for (c, &g) in carry_row.iter_mut().zip(&g[row.clone()]) {
                        *c += g;
                    }
                }
                let h_row = &output[base + row.start..base + row.end];
                let d_row = &mut d_pre_t[row.clone()];
                match grad_output {
                    Some(g) => {
                        let g_row = &g[base + row.start..base + row.end];
                        for (((d, &c), &g), &h) in d_row.iter_mut().zip(&*carry_row).zip(g_row).zip(h_row)
                        {
                            *d = (g + c) * act.derivative_from_output(h);
                        }
                    }
                    None => {
                        for ((d, &c), &h) in d_row.iter_mut().zip(&*carry_row).zip(h_row) {
                            *d = c * act.derivative_from_output(h);
                        }
                    }
                }
            }
            if t > 0 || d_h0.is_some() {
                gemm(
                    F::ONE,
                    Mat::new(d_pre_t, batch, hidden),
                    Mat::new(&self.w_hh, hidden, hidden),
                    F::ZERO,
                    MatMut::new(carry, batch, hidden),
                );
            }
        }
        if let Some(d_h0) = d_h0 {
            d_h0.copy_from_slice(carry);
        }

        // Everything else: one GEMM or reduction over all T*B rows.
        let rows = steps * batch;
        let d_pre = &*d_pre;
        if let Some(d_input) = d_input {
            gemm(
                F::ONE,
                Mat::new(d_pre, rows, hidden),
                Mat::new(&self.w_ih, hidden, input_size),
                F::ZERO,
                MatMut::new(d_input, rows, input_size),
            );
            // Exactly zero beyond each length, whatever the weights hold.
            if seq.lengths.is_some() {
                for (r, row) in d_input.chunks_exact_mut(input_size).enumerate() {
                    if !seq.is_active(r / batch, r % batch) {
                        row.fill(F::ZERO);
                    }
                }
            }
        }
        if let Some(d_w_ih) = d_w_ih {
            let x = if masked_input {
                for (r, (dst, src)) in x_masked
                    .chunks_exact_mut(input_size)
                    .zip(input.chunks_exact(input_size))
                    .enumerate()
                {
                    if seq.is_active(r / batch, r % batch) {
                        dst.copy_from_slice(src);
                    } else {
                        dst.fill(F::ZERO);
                    }
                }
                &*x_masked
            } else {
                input
            };
            gemm(
                F::ONE,
                Mat::new(d_pre, rows, hidden).t(),
                Mat::new(x, rows, input_size),
                F::ONE,
                MatMut::new(d_w_ih, hidden, input_size),
            );
        }
        if let Some(d_w_hh) = d_w_hh {
            // h_(t-1) for t >= 1 is output[t-1]: one GEMM over the T-1 later steps, plus h0.
            let later = (steps - 1) * batch;
            gemm(
                F::ONE,
                Mat::new(&d_pre[state_len..], later, hidden).t(),
                Mat::new(output, later, hidden),
                F::ONE,
                MatMut::new(&mut *d_w_hh, hidden, hidden),
            );
            if let Some(h0) = h0 {
                gemm(
                    F::ONE,
                    Mat::new(&d_pre[..state_len], batch, hidden).t(),
                    Mat::new(h0, batch, hidden),
                    F::ONE,
                    MatMut::new(d_w_hh, hidden, hidden),
                );
            }
        }
        if d_b_ih.is_some() || d_b_hh.is_some() {
            // Reuse the carry buffer for the column sums of dA.
            let db = &mut carry[..hidden];
            db.fill(F::ZERO);
            for row in d_pre.chunks_exact(hidden) {
                for (s, &d) in db.iter_mut().zip(row) {
                    *s += d;
                }
            }
            for d in [d_b_ih, d_b_hh].into_iter().flatten() {
                for (d, &s) in d.iter_mut().zip(&*db) {
                    *d += s;
                }
            }
        }
        Ok(())
    }
}
