//! Forward pass: one hoisted input-projection GEMM, then the sequential recurrence.

use super::{Activation, Rnn};
use crate::error::Result;
use crate::float::Float;
use crate::kernels::{self, Addend, FwdStep, Operands, SharedMut, StepLoop};
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
        F::rnn_forward(self, seq, input, h0, output, h_n)
    }

    /// The body of [`Rnn::forward`], compiled once per element type (see [`Entry`]).
    pub(super) fn forward_body(
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
        self.recur(seq, 0, h0, output, None);

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
    /// time in `workspace` (about 64 Ki elements plus one state).
    pub fn forward_final(
        &self,
        seq: &Sequences<'_>,
        input: &[F],
        h0: Option<&[F]>,
        h_n: &mut [F],
        workspace: &mut Workspace<F>,
    ) -> Result<()> {
        F::rnn_forward_final(self, seq, input, h0, h_n, workspace)
    }

    /// The body of [`Rnn::forward_final`], compiled once per element type (see [`Entry`]).
    pub(super) fn forward_final_body(
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
        let [proj, state] = workspace.take_parts([chunk * state_len, state_len]);
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
            let first = if t0 == 0 { h0 } else { Some(&*state) };
            let capture = seq.lengths.is_some().then_some(&mut *h_n);
            self.recur(seq, t0, first, proj, capture);
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
        // The biases are added as each tile leaves the registers (no pass over `dst` first).
        let addend = match &self.bias {
            Some(bias) => Addend::Row(bias),
            None => Addend::Zero,
        };
        kernels::gemm_packed(
            self.isa,
            src,
            (input_size, 1),
            rows,
            self.packed_ih_t.view(),
            dst,
            hidden,
            addend,
        );
    }

    /// Steps `t0..t0 + len` of the recurrence in place, `len = states.len() / (B*H)`: block `k`
    /// of `states` holds the projection `P_(t0+k)` on entry and `h_(t0+k)` on exit, zero for
    /// sequences that have ended. `first_prev` is the state before step `t0` (`None`: zeros).
    /// With `capture`, each sequence's state at its last step is also written there.
    ///
    /// Each step is the packed product `h_(t-1) W_hh^T` with the activation fused
    /// ([`FwdSteps`]); single-threaded, all steps run inside one kernel call, else one call per
    /// thread's panels per step ([`StepLoop::run_steps`]), kernel and threading chosen once.
    fn recur(
        &self,
        seq: &Sequences<'_>,
        t0: usize,
        first_prev: Option<&[F]>,
        states: &mut [F],
        capture: Option<&mut [F]>,
    ) {
        let (batch, hidden) = (seq.batch, self.dims.hidden_size);
        let state_len = batch * hidden;
        assert!(
            state_len > 0 && states.len().is_multiple_of(state_len),
            "step shape bug"
        );
        assert!(
            first_prev.is_none_or(|p| p.len() == state_len),
            "h0 shape bug"
        );
        assert!(
            capture.as_ref().is_none_or(|c| c.len() == state_len),
            "h_n shape bug"
        );
        let len = states.len() / state_len;
        let packed = self.packed_fwd.view();
        // Checked here, once: every step reads one `[B, H]` state and writes the next.
        let first = match first_prev {
            Some(p) => Operands::new(p, hidden, batch, packed, hidden),
            None => Operands::new(&[], hidden, batch, packed, 0),
        };
        let rec = Operands::new(&states[..state_len], hidden, batch, packed, hidden);
        let steps = FwdSteps {
            first,
            rec,
            base: SharedMut(states.as_mut_ptr()),
            state_len,
            hidden,
            lengths: seq.lengths,
            t0,
            h_n: capture.map(|c| SharedMut(c.as_mut_ptr())),
            tanh: self.activation == Activation::Tanh,
        };
        let threads = StepLoop::recurrence(packed.panels(), batch, hidden, hidden, len);
        // SAFETY: the plan's isa is supported (checked when it was set); `FwdSteps` meets the
        // `Steps` contract for steps `0..len` over every panel of `W_hh^T` (see its impl).
        unsafe { threads.run_steps(self.isa, &steps, len, packed.panels()) };
    }
}

/// The forward recurrence as [`kernels::Steps`]: step `k` reads block `k - 1` of the states
/// (`first` at `k = 0`) and turns block `k` (the projection `P_(t0+k)`) into `h_(t0+k)`.
struct FwdSteps<'a, F> {
    /// Step 0's operands: the state before `t0` (`[B, H]`), or none (`K = 0`: zeros).
    first: Operands<F>,
    /// Operands with `A` = a `[B, H]` block of the states (moved along the sequence).
    rec: Operands<F>,
    /// The states, `len` blocks of `[B, H]`.
    base: SharedMut<F>,
    state_len: usize,
    hidden: usize,
    lengths: Option<&'a [usize]>,
    t0: usize,
    /// `[B, H]` final states written at each sequence's last step.
    h_n: Option<SharedMut<F>>,
    /// tanh, else relu.
    tanh: bool,
}

// SAFETY: built by `recur` with `first` checked against `first_prev` (`[B, H]` or K = 0),
// `rec` against the states' first block, `base` the states (`len` blocks of `B*H`), `h_n` a
// `[B, H]` buffer (asserted there), and `run_steps` called with `len` steps: step k reads
// block k - 1 (complete once steps before k returned; k = 0 reads `first`) and writes block k
// and rows of `h_n`, both only in the columns of the panels it is given; blocks k - 1 and k are
// disjoint.
unsafe impl<'a, F: Float> kernels::Steps<F> for FwdSteps<'a, F> {
    type Epi = FwdStep<'a, F>;

    #[inline(always)]
    fn step(&self, k: usize) -> (Operands<F>, Self::Epi) {
        let base = self.base.get();
        let ops = match k {
            0 => self.first,
            _ => self.rec.with_a(base.wrapping_add((k - 1) * self.state_len)),
        };
        let epi = FwdStep {
            c: base.wrapping_add(k * self.state_len),
            ld: self.hidden,
            lengths: self.lengths,
            t: self.t0 + k,
            h_n: self.h_n.map(|p| p.get()),
            tanh: self.tanh,
        };
        (ops, epi)
    }
}
