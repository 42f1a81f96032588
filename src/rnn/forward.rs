//! Forward pass: one hoisted input-projection GEMM, then the sequential recurrence.

use super::Rnn;
use crate::error::Result;
use crate::float::Float;
use crate::gemm::{Mat, MatMut, gemm};
use crate::sequences::{Sequences, check_len};
use crate::workspace::Workspace;

/// Rows of the input projection computed at once by [`Rnn::forward_final`]: large enough that
/// the GEMM runs at full speed, small enough (256 KiB of f32) to stay in L2 for the steps.
const FINAL_CHUNK_ELEMS: usize = 1 << 16;

impl<F: Float> Rnn<F> {
    /// Runs the layer over all steps and writes every hidden state.
    ///
    /// `output` (`[T, B, H]`, overwritten) receives `h_t` for every step, zero beyond each
    /// sequence's length; it is also the record [`Rnn::backward`] needs, so this is the forward
    /// pass of training as well as inference that wants all states. `h_n` (`[B, H]`,
    /// overwritten), when given, receives each sequence's final state. `h0` (`[B, H]`) defaults
    /// to zeros.
    ///
    /// Needs no workspace: the input projection is computed in `output` and each step turns its
    /// rows into the step's state in place.
    pub fn forward(
        &self,
        seq: &Sequences<'_>,
        input: &[F],
        h0: Option<&[F]>,
        output: &mut [F],
        h_n: Option<&mut [F]>,
    ) -> Result<()> {
        self.dims.validate_inputs(seq, input, h0)?;
        let (steps, batch, hidden) = (seq.steps, seq.batch, self.dims.hidden_size);
        let state_len = batch * hidden;
        check_len("output", output.len(), steps * state_len, || {
            format!("T*B*H = {steps}*{batch}*{hidden}")
        })?;
        if let Some(h_n) = &h_n {
            check_len("h_n", h_n.len(), state_len, || {
                format!("B*H = {batch}*{hidden}")
            })?;
        }

        self.project(input, steps * batch, output);
        for t in 0..steps {
            let (done, rest) = output.split_at_mut(t * state_len);
            let prev = match t {
                0 => h0,
                _ => Some(&done[(t - 1) * state_len..]),
            };
            let cur = &mut rest[..state_len];
            self.step(prev, cur, batch);
            if seq.lengths.is_some() {
                for (b, row) in cur.chunks_exact_mut(hidden).enumerate() {
                    if !seq.is_active(t, b) {
                        row.fill(F::ZERO);
                    }
                }
            }
        }

        if let Some(h_n) = h_n {
            for (b, dst) in h_n.chunks_exact_mut(hidden).enumerate() {
                let at = (seq.len_of(b) - 1) * state_len + b * hidden;
                dst.copy_from_slice(&output[at..at + hidden]);
            }
        }
        Ok(())
    }

    /// Inference keeping only the final state: writes `h_n` (`[B, H]`, overwritten).
    ///
    /// Keeps no per-step history: the input projection is computed for a block of steps at a
    /// time in `workspace` (about [`FINAL_CHUNK_ELEMS`] elements plus one state).
    pub fn forward_final(
        &self,
        seq: &Sequences<'_>,
        input: &[F],
        h0: Option<&[F]>,
        h_n: &mut [F],
        workspace: &mut Workspace<F>,
    ) -> Result<()> {
        self.dims.validate_inputs(seq, input, h0)?;
        let (steps, batch, hidden) = (seq.steps, seq.batch, self.dims.hidden_size);
        let (input_size, state_len) = (self.dims.input_size, batch * hidden);
        check_len("h_n", h_n.len(), state_len, || {
            format!("B*H = {batch}*{hidden}")
        })?;

        let chunk = (FINAL_CHUNK_ELEMS / state_len).clamp(1, steps);
        let ws = workspace.take((chunk + 1) * state_len);
        let (proj, state) = ws.split_at_mut(chunk * state_len);
        let mut t0 = 0;
        while t0 < steps {
            let len = chunk.min(steps - t0);
            let rows = t0 * batch..(t0 + len) * batch;
            let proj = &mut proj[..len * state_len];
            self.project(
                &input[rows.start * input_size..rows.end * input_size],
                rows.len(),
                proj,
            );
            for k in 0..len {
                let t = t0 + k;
                let (done, rest) = proj.split_at_mut(k * state_len);
                let prev = match (k, t) {
                    (_, 0) => h0,
                    (0, _) => Some(&*state),
                    _ => Some(&done[(k - 1) * state_len..]),
                };
                let cur = &mut rest[..state_len];
                self.step(prev, cur, batch);
                if seq.lengths.is_some() {
                    for (b, row) in cur.chunks_exact_mut(hidden).enumerate() {
                        let n = seq.len_of(b);
                        if t + 1 == n {
                            h_n[b * hidden..(b + 1) * hidden].copy_from_slice(row);
                        } else if t >= n {
                            // Finished sequences keep a zero state so nothing grows unbounded.
                            row.fill(F::ZERO);
                        }
                    }
                }
            }
            state.copy_from_slice(&proj[(len - 1) * state_len..]);
            t0 += len;
        }
        if seq.lengths.is_none() {
            h_n.copy_from_slice(state);
        }
        Ok(())
    }

    /// `dst[r] = src[r] W_ih^T + b_ih + b_hh` for `rows` rows of `src` (`[rows, I]`), the one
    /// hoisted GEMM of the forward pass.
    fn project(&self, src: &[F], rows: usize, dst: &mut [F]) {
        let (input_size, hidden) = (self.dims.input_size, self.dims.hidden_size);
        let beta = match &self.bias {
            Some(bias) => {
                for row in dst.chunks_exact_mut(hidden) {
                    row.copy_from_slice(bias);
                }
                F::ONE
            }
            None => F::ZERO,
        };
        gemm(
            F::ONE,
            Mat::new(src, rows, input_size),
            Mat::new(&self.w_ih, hidden, input_size).t(),
            beta,
            MatMut::new(dst, rows, hidden),
        );
    }

    /// One recurrent step in place: `cur` holds the projection `P_t` (`[batch, H]`) on entry
    /// and `h_t = act(P_t + h_(t-1) W_hh^T)` on exit; `prev = None` means `h_(t-1) = 0`.
    fn step(&self, prev: Option<&[F]>, cur: &mut [F], batch: usize) {
        let hidden = self.dims.hidden_size;
        if let Some(prev) = prev {
            gemm(
                F::ONE,
                Mat::new(prev, batch, hidden),
                Mat::new(&self.w_hh, hidden, hidden).t(),
                F::ONE,
                MatMut::new(cur, batch, hidden),
            );
        }
        let act = self.activation;
        for v in cur.iter_mut() {
            *v = act.apply(*v);
        }
    }
}
