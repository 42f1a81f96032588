//! Backward pass (BPTT): a sequential sweep that only carries the state gradient, then one GEMM
//! or reduction per gradient over all steps.

use super::forward::rides;
use super::{Activation, Rnn};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::kernels::{self, Addend, BwdStep, Operands, RIDE_ROWS, SharedMut, StepLoop};
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
    /// Workspace: `T*B*H + H` elements, plus, when `d_w_ih` or `d_w_hh` is wanted, room
    /// for `input` or the previous states packed for the kernels (`T*B` rows of `I` or `H`,
    /// the wider of those packed, rounded up to the panel width; none when both are read in
    /// place: `dA^T` not packed, `H` and `I` multiples of the panel width, no lengths) and,
    /// when `dA^T` is packed, `T*B` rows of `H` rounded up to a register tile's rows (at most
    /// 11 more) for it. `dA^T` is packed when a row of `H` elements takes 2 KiB or more, or
    /// 1 KiB or more and the `T*B` rows take more than 2 MiB. Padded rows of `input` are
    /// packed as zeros, so whatever the padding holds, even NaN, never reaches the weight
    /// gradient.
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
        F::rnn_backward(
            self,
            seq,
            input,
            h0,
            output,
            grad_output,
            grad_h_n,
            grads,
            workspace,
        )
    }

    /// The body of [`Rnn::backward`], compiled once per element type (see [`Entry`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_body(
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

        let isa = self.isa;
        let rows = steps * batch;
        let weights = d_w_ih.is_some() || d_w_hh.is_some();
        // The weight-gradient GEMMs read `dA^T`: as a strided view of `dA` (a register tile
        // broadcasts neighbours of one row of `dA` per `k`) while a row of `dA` is short, else
        // packed in panels of a tile's rows (`kernels::pack_a_into`), since a long row puts
        // every `k` or two on a new page. The `dw_speed` probe (`cargo test --release --lib
        // dw_speed -- --ignored --nocapture`: one pass over `dA` and two products, 1 thread,
        // best of 7, three runs), strided against packed, ms: 64x96x64 0.010 / 0.012-0.013,
        // 128x800x128 0.335-0.358 / 0.346-0.347, 256x150x256 0.251-0.256 / 0.251-0.255,
        // 256x800x256 1.45-1.49 / 1.36-1.38, 512x800x512 8.5-9.0 / 5.5-5.6. A transposed copy
        // of `dA`, used before this from rows of 2 KiB and timed by the same probe before it
        // was removed, took 5.8 ms at 512x800x512 and 1.50-1.60 at 256x800x256; inside
        // `backward` at `rnn_h512_b64_t50`, 1 thread, the copy with the bias sums took 3.9-5.0
        // ms where the pack takes 1.4-1.5. Rows of 1-2 KiB are packed only when all of `dA`
        // is larger than 2 MiB ([`packs_d_a`]).
        let pack_a = weights && packs_d_a(rows, hidden * std::mem::size_of::<F>());
        let a_len = if pack_a {
            kernels::packed_a_len(isa, rows, hidden)
        } else {
            0
        };
        // The right operands of the weight gradients: read in place (see below) or packed
        // into the workspace, which then holds room for the wider of those packed.
        let nr = kernels::panel_width::<F>(isa);
        let x_in_place = !pack_a && seq.lengths.is_none() && input_size.is_multiple_of(nr);
        let h_in_place = !pack_a && hidden.is_multiple_of(nr);
        let x_packed = if d_w_ih.is_some() && !x_in_place {
            input_size
        } else {
            0
        };
        let h_packed = if d_w_hh.is_some() && !h_in_place {
            hidden
        } else {
            0
        };
        let pack_len = match x_packed.max(h_packed) {
            0 => 0,
            width => kernels::packed_len::<F>(isa, rows, width),
        };
        let [d_pre, db, a_buf, pack_buf] = workspace.take_parts([seq_len, hidden, a_len, pack_len]);

        // The sequential sweep: dA_t = (dh_t + dA_(t+1) W_hh) * act'(h_t), fused per step.
        // `spread`: whether its loop ran on several threads, each writing its own part of
        // `dA` (columns, or rows where the loop splits them; the forward's loop, over the same
        // rows and weights, split the states the same way unless its steps were too few to
        // share): the packs below then split between threads from a smaller size
        // (`kernels::pack_into`).
        // With `dX` computed during the sweep (`d_input_done`, see `InputGradRide`).
        let mut d_input = d_input;
        let dx = d_input.as_deref_mut();
        let (ran_on, d_input_done) =
            self.sweep(seq, output, grad_output, grad_h_n, d_pre, d_h0, dx);
        let spread = ran_on > 1;
        // A pack split between threads must wake the pool's other threads if the product before
        // it ran on one (rayon's idle threads go to sleep soon after running out of work); it
        // pays for that only if the product it feeds shares its work too, and they stay awake
        // for it. Each pack below is split as `spread` says only then. The wake-up was not
        // timed on its own: the split packs below took about 8 us more than on one thread,
        // where the pack itself takes 2.5. `rnn_h170_b1_t100` on 2 threads, whose loops are shared and
        // whose products (5.8 Mflop) are not: phase timers in a scratch build (`taskset -c
        // 0,1 bench_table --threads 2 --modes train --target-s 0.2`, 8 alternated rounds,
        // medians, ms, split / on one thread) pack of `X` 0.0117 / 0.0027, of `h_(t-1)` 0.0105
        // / 0.0024. Whole call (this build against its parent, alternated 8 rounds, ratio of
        // the medians): `rnn_h170_b1_t100` 0.964, `rnn_h192_b1_t100` 0.991; unchanged where the
        // products are shared (`rnn_h120_b3_t100` 0.990, `rnn_h76_b8_t100` 1.004,
        // `rnn_h256_b1_t150` 0.993, `rnn_h512_b16_t50` 1.000).
        let shared = |k: usize, n: usize| spread && kernels::product_shared(hidden, k, n, nr);
        // The rows of `h_(t-1)` that `dW_hh` sums over: `h0`'s (when given) and the states'.
        let h_rows = if h0.is_some() {
            rows
        } else {
            rows.saturating_sub(batch)
        };

        // Everything else: one GEMM or reduction over all T*B rows.
        let d_pre = &*d_pre;
        if let Some(d_input) = d_input {
            if !d_input_done {
                self.input_grad(d_pre, rows, d_input);
            }
            // Exactly zero beyond each length, whatever the weights hold.
            if seq.lengths.is_some() {
                for (r, row) in d_input.chunks_exact_mut(input_size).enumerate() {
                    if !seq.is_active(r / batch, r % batch) {
                        row.fill(F::ZERO);
                    }
                }
            }
        }
        // The bias gradients are `dA`'s column sums: taken by the pack when there is one,
        // in the same order (rows in order, from zero) as the loop below.
        let want_db = d_b_ih.is_some() || d_b_hh.is_some();
        let ap = if pack_a {
            let g = |r: usize| &d_pre[r * hidden..][..hidden];
            let sums = want_db.then_some(&mut *db);
            // It feeds `dW_ih`'s product, or `dW_hh`'s without it.
            let (k, n) = match d_w_ih {
                Some(_) => (rows, input_size),
                None => (h_rows, hidden),
            };
            Some(kernels::pack_a_into(
                isa,
                rows,
                hidden,
                g,
                a_buf,
                sums,
                shared(k, n),
            ))
        } else {
            None
        };
        if want_db && !pack_a {
            kernels::col_sums(isa, d_pre, hidden, db);
        }
        // The weight gradients: dA^T (packed, or strided) times the right operand packed into
        // the workspace; with dA^T strided, a right operand whose rows are whole panels and
        // need no zeros is read in place instead (`kernels::gemm_b_rows`): the packs took about
        // 1 us each at rnn_h64_b1_t96, 5 % of the call. `bench_table` (1 thread, Intel Xeon
        // host, the two builds alternated 8 rounds, ratio of the medians, `X` in place /
        // packed; `h0` given, so `h_(t-1)` packed in both): rnn_h64_b1_t96 train 0.974,
        // rnn_h32_b1_t672 0.962, rnn_h128_b1_t150 0.982 (every round faster at the first two);
        // rnn_h256_b1_t150, whose `dA^T` is packed, 1.002.
        if let Some(d_w_ih) = d_w_ih {
            if x_in_place {
                let x = &input[..rows * input_size];
                kernels::gemm_b_rows(
                    isa,
                    d_pre,
                    hidden,
                    hidden,
                    x,
                    rows,
                    input_size,
                    d_w_ih,
                    input_size,
                    Addend::C,
                );
            } else {
                // Padded rows are packed as zeros, so whatever the padding holds never arrives.
                let row = |r: usize| &input[r * input_size..][..input_size];
                let x = match seq.lengths {
                    // Every row is active: no per-row division to find its step.
                    None => kernels::pack_into(
                        isa,
                        rows,
                        input_size,
                        |r| Some(row(r)),
                        pack_buf,
                        shared(rows, input_size),
                    ),
                    Some(_) => kernels::pack_into(
                        isa,
                        rows,
                        input_size,
                        |r| seq.is_active(r / batch, r % batch).then(|| row(r)),
                        pack_buf,
                        shared(rows, input_size),
                    ),
                };
                match ap {
                    Some(ap) => {
                        kernels::gemm_packed_a(isa, ap, 0, x, d_w_ih, input_size, Addend::C)
                    }
                    None => kernels::gemm_packed(
                        isa,
                        d_pre,
                        (1, hidden),
                        hidden,
                        x,
                        d_w_ih,
                        input_size,
                        Addend::C,
                    ),
                }
            }
        }
        if let Some(d_w_hh) = d_w_hh {
            // h_(t-1) is h0 (when given) for t = 0, output[t-1] after: one product over the
            // steps that have a nonzero previous state.
            let (skip, k) = (rows - h_rows, h_rows);
            if h_in_place {
                // In place: `h0`'s rows for the first `B` rows of `dA`, then the states' first
                // `T*B - B` rows for the rest, each product adding into `d_w_hh` (two sums
                // where the packed operand has one: other bits, the same for any thread count).
                // `bench_table` (as above) with `h0` given, so far packed / in place as here:
                // rnn_h64_b1_t96 train 0.965, rnn_h32_b1_t672 0.948 (every round faster at
                // both), rnn_h128_b1_t150 0.996.
                if let Some(h0) = h0 {
                    let (a, c) = (d_pre, &mut *d_w_hh);
                    kernels::gemm_b_rows(
                        isa,
                        a,
                        hidden,
                        hidden,
                        h0,
                        batch,
                        hidden,
                        c,
                        hidden,
                        Addend::C,
                    );
                }
                let states = rows - batch;
                if states > 0 {
                    let (a, prev) = (&d_pre[batch * hidden..], &output[..states * hidden]);
                    let c = &mut *d_w_hh;
                    kernels::gemm_b_rows(
                        isa,
                        a,
                        hidden,
                        hidden,
                        prev,
                        states,
                        hidden,
                        c,
                        hidden,
                        Addend::C,
                    );
                }
            } else if k > 0 {
                let prev = |r: usize| {
                    Some(match h0 {
                        Some(h0) if r < batch => &h0[r * hidden..][..hidden],
                        Some(_) => &output[(r - batch) * hidden..][..hidden],
                        None => &output[r * hidden..][..hidden],
                    })
                };
                let hp = kernels::pack_into(isa, k, hidden, prev, pack_buf, shared(k, hidden));
                match ap {
                    Some(ap) => {
                        kernels::gemm_packed_a(isa, ap, skip, hp, d_w_hh, hidden, Addend::C)
                    }
                    None => {
                        let a = &d_pre[skip * hidden..];
                        let c = d_w_hh;
                        kernels::gemm_packed(isa, a, (1, hidden), hidden, hp, c, hidden, Addend::C)
                    }
                }
            }
        }
        for d in [d_b_ih, d_b_hh].into_iter().flatten() {
            for (d, &s) in d.iter_mut().zip(&*db) {
                *d += s;
            }
        }
        Ok(())
    }

    /// `d_input = d_pre W_ih` for `rows` rows of `d_pre` (`[rows, H]`), the one GEMM of the
    /// input gradient (before the lengths' zeros).
    fn input_grad(&self, d_pre: &[F], rows: usize, d_input: &mut [F]) {
        let (input_size, hidden) = (self.dims.input_size, self.dims.hidden_size);
        let ih = self.packed_ih.view();
        let dx = d_input;
        kernels::gemm_packed(
            self.isa,
            d_pre,
            (hidden, 1),
            rows,
            ih,
            dx,
            input_size,
            Addend::Zero,
        );
    }

    /// [`Rnn::input_grad`] in parts ([`kernels::ProductParts`]), `None` where it does not run
    /// in parts (its contraction in blocks: `H` beyond 4096).
    fn input_grad_parts<'s>(
        &'s self,
        d_pre: &'s [F],
        rows: usize,
        d_input: &mut [F],
    ) -> Option<kernels::ProductParts<'s, F>> {
        let (input_size, hidden) = (self.dims.input_size, self.dims.hidden_size);
        let ih = self.packed_ih.view();
        let dx = d_input;
        kernels::ProductParts::strided(
            self.isa,
            d_pre,
            (hidden, 1),
            rows,
            ih,
            dx,
            input_size,
            Addend::Zero,
        )
    }

    /// The BPTT sweep: for `t = T-1 .. 0`, `d_pre[t] = (grad_output[t] + d_pre[t+1] W_hh) *
    /// act'(output[t])` with `grad_h_n` at each sequence's last step and zeros after it, each
    /// step a packed product with the epilogue fused ([`BwdSteps`], run by
    /// [`StepLoop::run_steps`]); then `d_h0 = d_pre[0] W_hh`. Where one thread runs a
    /// matrix-vector loop ([`rides`]), also `d_input` = [`Rnn::input_grad`], strip by strip
    /// during the steps after (see [`InputGradRide`]). Returns the threads the loop ran on, and
    /// whether `d_input` was computed.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &self,
        seq: &Sequences<'_>,
        output: &[F],
        grad_output: Option<&[F]>,
        grad_h_n: Option<&[F]>,
        d_pre: &mut [F],
        d_h0: Option<&mut [F]>,
        d_input: Option<&mut [F]>,
    ) -> (usize, bool) {
        let (steps, batch, hidden) = (seq.steps, seq.batch, self.dims.hidden_size);
        let state_len = batch * hidden;
        let seq_len = steps * state_len;
        // Checked here, once, for every step of the loop.
        assert!(
            output.len() == seq_len && d_pre.len() == seq_len,
            "sweep shape bug"
        );
        assert!(
            grad_output.is_none_or(|g| g.len() == seq_len),
            "grad_output shape bug"
        );
        assert!(
            grad_h_n.is_none_or(|g| g.len() == state_len),
            "grad_h_n shape bug"
        );
        assert!(
            d_h0.as_ref().is_none_or(|g| g.len() == state_len),
            "d_h0 shape bug"
        );
        let packed = self.packed_bwd.view();
        let last = Operands::new(&[], hidden, batch, packed, 0);
        let rec = Operands::new(&d_pre[..state_len], hidden, batch, packed, hidden);
        let d = SharedMut(d_pre.as_mut_ptr());
        let threads = StepLoop::recurrence(packed.panels(), batch, hidden, hidden, steps);
        // As the forward's loop: a loop the threads would share rides on one thread instead up
        // to `RIDE_ALONE_MAX_W_HH_BYTES` (`Steps::has_ride` keeps it there).
        let rides = rides::<F>(self.isa, batch, hidden, threads.threads());
        let mut d_input = d_input.filter(|_| rides);
        let ride = (d_input.as_deref_mut()).and_then(|dx| self.input_grad_ride(d, steps, dx));
        let ridden = ride.map(|r| r.start..r.end);
        let (h, g, g_h_n) = (
            output.as_ptr(),
            grad_output.map(|g| g.as_ptr()),
            grad_h_n.map(|g| g.as_ptr()),
        );
        let (h, g, g_h_n) = (
            SharedMut(h.cast_mut()),
            g.map(|g| SharedMut(g.cast_mut())),
            g_h_n.map(|g| SharedMut(g.cast_mut())),
        );
        let sweep = BwdSteps {
            last,
            rec,
            d,
            h,
            g,
            g_h_n,
            state_len,
            hidden,
            lengths: seq.lengths,
            steps,
            tanh: self.activation == Activation::Tanh,
            ride,
        };
        // SAFETY: the plan's isa is supported (checked when it was set); `BwdSteps` meets the
        // `Steps` contract for steps `0..T` over every panel of `W_hh` (see its impl).
        let ran_on = unsafe { threads.run_steps(self.isa, &sweep, steps, packed.panels()) };
        let d_input_done = match (ridden, d_input) {
            (Some(ridden), Some(d_input)) => {
                // The rows the steps did not compute, all of `d_pre` written now: parts of the
                // same product, from `d_pre` itself.
                let parts = self.input_grad_parts(d_pre, steps, d_input);
                let parts = parts.expect("kernel bug: parts of dX that rode");
                let panels = 0..parts.panels();
                // SAFETY: rows from 0 and from `ridden.end` (a multiple of the product's tile
                // rows, or `T`) to `T`, every panel; `d_pre` and `d_input` are alive and this
                // thread's alone here.
                unsafe {
                    parts.run(0..ridden.start, panels.clone());
                    parts.run(ridden.end..steps, panels);
                }
                true
            }
            _ => false,
        };
        if let Some(d_h0) = d_h0 {
            // d_h0 = dA_0 W_hh, one more product of the step's shape, through the hoisted
            // products' kernels: as one more `Steps` type it compiled every path's time loop
            // and step kernels once more (a third of them) for a single step.
            kernels::gemm_packed(
                self.isa,
                &d_pre[..state_len],
                (hidden, 1),
                batch,
                packed,
                d_h0,
                hidden,
                Addend::Zero,
            );
        }
        (ran_on, d_input_done)
    }

    /// `d_input` = [`Rnn::input_grad`] of the `steps` rows of `dA` at `d` (`[steps, H]`,
    /// `B = 1`), as [`InputGradRide`] computes it during the sweep, or `None` where it does
    /// not run in parts or the steps would carry none of it.
    fn input_grad_ride<'s>(
        &'s self,
        d: SharedMut<F>,
        steps: usize,
        d_input: &mut [F],
    ) -> Option<InputGradRide<'s, F>> {
        let hidden = self.dims.hidden_size;
        // SAFETY: `d` is `d_pre` (`steps * H` elements, `B = 1`: asserted by `sweep`), alive
        // for the call. The parts take this view for its shape alone: the loop writes
        // `d_pre` through `d` and every riding tile reads it through `d` too
        // (`InputGradRide::tile`); this view is not read again.
        let view = unsafe { std::slice::from_raw_parts(d.get().cast_const(), steps * hidden) };
        let parts = self.input_grad_parts(view, steps, d_input)?;
        // The steps' tiles sum as the product's tiles of three or more rows: the rows after
        // those (a last tile of one or two, or a partial panel's remainder) are computed after
        // the loop, as are the rows before the first strip: whole tiles of the product from row
        // 0, at least a strip, so that the steps after the strip's last row carry it.
        let end = parts.chained_rows();
        let start = RIDE_ROWS.next_multiple_of(parts.strip_rows());
        if start >= end {
            return None;
        }
        #[cfg(test)]
        super::forward::tests::RIDDEN.set(super::forward::tests::RIDDEN.get() + 1);
        Some(InputGradRide {
            parts,
            panels: parts.panels(),
            start,
            end,
            steps,
            d,
            hidden,
        })
    }
}

/// The input gradient `dX = dA W_ih` of a `B = 1` sequence computed during the sweep, mirror
/// of the forward's projection ([`super::forward`]'s `Ride`): the sweep writes the rows of
/// `dA` from the last, and each strip of [`RIDE_ROWS`] rows from `start` to `end` rides along
/// the steps after it is complete (the strip's panels spread over them, one
/// [`kernels::RideTile`] per step, see `kernels::ride_body`), where the steps wait on reading
/// `W_hh`. The rows before `start` and from `end` run after the loop. The tiles sum as the one
/// GEMM's, so the bits are the same. `bench_table` (`taskset -c 0,1`, `--threads 1 --modes
/// train --target-s 0.3`, Zen 4, against the build computing `dX` after the sweep, the two
/// alternated 6 rounds, ratio of the medians): `rnn_h128_b1_t150` 0.952, `rnn_h192_b1_t100`
/// 0.919, `rnn_h256_b1_t150` 0.928 (1.281 ms against 1.381), `rnn_h512_b1_t100` 0.952;
/// not riding ([`rides`]), `rnn_h1024_b1_t50` 1.012 and (5 rounds) `rnn_h64_b1_t96` 0.998.
#[derive(Clone, Copy)]
struct InputGradRide<'a, F> {
    parts: kernels::ProductParts<'a, F>,
    panels: usize,
    /// The rows computed by the steps start here...
    start: usize,
    /// ... and end here (`ProductParts::chained_rows`).
    end: usize,
    steps: usize,
    /// `d_pre`, as the loop writes it.
    d: SharedMut<F>,
    hidden: usize,
}

impl<'a, F: Float> InputGradRide<'a, F> {
    /// The tile step `s` computes: its share of the panels of the strip the steps before
    /// completed last. Strip `j` (rows `start + j * STRIP..`) is complete once step `T - 1 -
    /// start - j * STRIP` (its first row's) has returned; the `STRIP` steps after carry it
    /// (`start >= STRIP`: all inside the loop; never step 0). Its rows of `dA` are read
    /// through `d`, the pointer the loop writes them through.
    #[inline(always)]
    fn tile(&self, s: usize) -> Option<kernels::RideTile<'a, F>> {
        const STRIP: usize = RIDE_ROWS;
        // Step `s = T - start - j * STRIP + i` carries the `i`-th share of strip `j`.
        let w = (self.steps + STRIP - 1).checked_sub(self.start + s)?;
        let (j, i) = (w / STRIP, STRIP - 1 - w % STRIP);
        let r0 = self.start + j * STRIP;
        let (p0, p1) = (i * self.panels / STRIP, (i + 1) * self.panels / STRIP);
        if r0 >= self.end || p0 == p1 {
            return None;
        }
        let tile = self.parts.ride_tile(r0..(r0 + STRIP).min(self.end), p0, p1);
        let a = self.d.get().cast_const().wrapping_add(r0 * self.hidden);
        Some(kernels::RideTile {
            ops: tile.ops.with_a(a),
            ..tile
        })
    }
}

/// The BPTT sweep as [`kernels::Steps`]: step `i` is time `t = T - 1 - i`; it reads block
/// `t + 1` of `d_pre` (nothing at `t = T - 1`: `K = 0`) and writes block `t`.
struct BwdSteps<'a, F> {
    /// Operands of the first step (`K = 0`: no carry).
    last: Operands<F>,
    /// Operands with `A` = a `[B, H]` block of `d_pre` (moved along the sequence).
    rec: Operands<F>,
    d: SharedMut<F>,
    h: SharedMut<F>,
    g: Option<SharedMut<F>>,
    g_h_n: Option<SharedMut<F>>,
    state_len: usize,
    hidden: usize,
    lengths: Option<&'a [usize]>,
    steps: usize,
    /// tanh, else relu.
    tanh: bool,
    /// The input gradient, during the steps after each strip of `dA`.
    ride: Option<InputGradRide<'a, F>>,
}

// SAFETY: built by `sweep` with `output`, `d_pre` and `grad_output` of `T` blocks of `[B, H]`
// and `grad_h_n` of one (asserted there), `rec` checked against `d_pre`'s first block, and
// `run_steps` called with `T` steps: step i (t = T - 1 - i) reads block t + 1 of `d_pre`
// (complete once the steps before i returned) or nothing (i = 0, K = 0), reads block t of
// `output`/`grad_output` and `grad_h_n`, and writes block t of `d_pre` only in the columns of
// the panels it is given; blocks t and t + 1 are disjoint.
unsafe impl<'a, F: Float> kernels::Steps<F> for BwdSteps<'a, F> {
    type Epi = BwdStep<'a, F>;

    #[inline(always)]
    fn step(&self, i: usize) -> (Operands<F>, Self::Epi) {
        let t = self.steps - 1 - i;
        let d = self.d.get();
        let ops = match i {
            0 => self.last,
            _ => self.rec.with_a(d.wrapping_add((t + 1) * self.state_len)),
        };
        let at = t * self.state_len;
        let epi = BwdStep {
            d: d.wrapping_add(at),
            h: self.h.get().wrapping_add(at).cast_const(),
            g: self.g.map(|g| g.get().wrapping_add(at).cast_const()),
            g_h_n: self.g_h_n.map(|g| g.get().cast_const()),
            ld: self.hidden,
            lengths: self.lengths,
            t,
            steps: self.steps,
            tanh: self.tanh,
        };
        (ops, epi)
    }

    #[inline(always)]
    fn has_ride(&self) -> bool {
        self.ride.is_some()
    }

    #[inline(always)]
    fn ride(&self, s: usize) -> Option<kernels::RideTile<'_, F>> {
        self.ride.as_ref()?.tile(s)
    }
}

/// Whether the weight gradients read `dA^T` packed in panels rather than as a strided view of
/// `dA` (see `Rnn::backward`), for `rows` rows of `dA` of `row_bytes` each: rows of
/// [`PACK_A_LONG_ROW_BYTES`] and more always, rows of [`PACK_A_ROW_BYTES`] and more when all
/// of `dA` is larger than [`PACK_A_MIN_BYTES`], shorter rows never.
///
/// A strided view streams all of `dA` once per panel of the right operand: from L2 while `dA`
/// fits there, from L3 beyond. The pack costs a pass over `dA` and packs of `X` and
/// `h_(t-1)`, which a strided view reads in place. Where the two cross was measured, not
/// derived: between 2 and 3 MiB of `dA` on Zen 4 (1 MiB of L2; Intel's cores, 2 MiB of L2,
/// not measured). Measured with a scratch build switching the choice at run time (phase
/// timers; `taskset -c 0,1 bench_table --modes train --target-s 0.3`, 3-6 alternated rounds,
/// Zen 4, 2026-12-05), training, strided / packed,
/// ratio of the medians (of the fastest samples on 2 threads, whose medians follow the
/// vCPUs' spells): 1 thread `rnn_h256_b1_t150` 0.984-0.993, `rnn_h256_b4_t50` 0.980-0.982,
/// `rnn_h256_b8_t50` 0.984-0.986, `rnn_h256_b16_t50` 0.988, `rnn_h384_b16_t50` 0.995; 2
/// threads 0.983, 0.972, 0.979; where `dA` is larger the pack wins: 1 thread
/// `rnn_h256_b64_t50` 1.053-1.067 (one run 0.983), `rnn_h384_b64_t50` 1.061,
/// `rnn_h448_b32_t50` 1.034, `rnn_h512_b16_t50` 1.029-1.040, `rnn_h1024_b4_t50`
/// 1.015-1.028, `rnn_h1760_b16_t50` 1.026, `rnn_h2048_b4_t20` 1.063. Rows of 2 KiB and more
/// with a small `dA` were level or faster packed on 2 threads (`rnn_h512_b2_t50` 1 thread
/// 0.987-0.992, 2 threads 1.036; `rnn_h1024_b1_t50` 0.980-0.999, 1.075), hence packed
/// whatever `dA`'s size; `rnn_h768_b2_t50` (0.963 / 0.964) is left on that side too. On 2
/// threads `far_ab.sh` (wrappers running that build with the choice forced, `MODES=train`,
/// 240 s, near runs) had the strided view slower on all of them: `rnn_h512_b2_t50` 1.042,
/// `rnn_h512_b4_t50` 1.006, `rnn_h768_b2_t50` 1.010, `rnn_h1024_b1_t50` 1.060,
/// `rnn_h1024_b2_t50` 1.012. Near
/// the size limit (the same build, 6 rounds, 1 thread / 2 threads): `rnn_h384_b16_t50` (1.2
/// MB of `dA`) 0.997 / 0.980, `rnn_h256_b24_t50` (1.2 MB) 0.988 / 0.973, `rnn_h256_b32_t50`
/// (1.6 MB) 0.988 / 0.990, `rnn_h320_b32_t50` (2.0 MB) 1.006 / 0.998 (fastest samples 0.996
/// / 0.991), `rnn_h384_b32_t50` (2.4 MB, 1 thread) 1.001; `rnn_h448_b32_t50` (2.8 MB) 1.034
/// above. This limit (2 MiB) against 1 MiB, the library's builds: 1 thread (8 alternated
/// rounds) 0.991, 0.985, 0.983, 0.994 on `rnn_h256_b24_t50`, `rnn_h256_b32_t50`,
/// `rnn_h384_b16_t50`, `rnn_h320_b32_t50` (1.2 to 2.0 MB, in that order); 2 threads
/// (`MODES=train bash benches/far_ab.sh OLD NEW 240 WORKLOAD...`, runs classed by the vCPUs'
/// distance) near 0.985, 0.999, 0.991, 1.000, far 0.877, 0.932, 0.949, 0.959.
fn packs_d_a(rows: usize, row_bytes: usize) -> bool {
    row_bytes >= PACK_A_LONG_ROW_BYTES
        || (row_bytes >= PACK_A_ROW_BYTES && rows.saturating_mul(row_bytes) > PACK_A_MIN_BYTES)
}

/// Bytes in a row of `dA` (`H` elements) below which the weight gradients always read `dA^T`
/// as a strided view (a register tile broadcasts neighbours of one row per `k`).
const PACK_A_ROW_BYTES: usize = 1024;
/// Bytes in a row of `dA` from which the weight gradients always read `dA^T` packed.
const PACK_A_LONG_ROW_BYTES: usize = 2048;
/// Bytes of `dA` (all `T * B` rows) above which rows of [`PACK_A_ROW_BYTES`] up to
/// [`PACK_A_LONG_ROW_BYTES`] are packed: twice the L2 of a Zen 4 or Zen 5 core.
const PACK_A_MIN_BYTES: usize = 2 << 20;

#[cfg(test)]
mod tests {
    use super::super::forward::tests::{riding_case, values, with_ride};
    use super::*;
    use crate::isa::Isa;

    /// `backward` of `B = 1` with the input gradient during the sweep ([`InputGradRide`]) and
    /// after it: the same bits for every gradient, on every path (those that do not ride
    /// compare with themselves): `H` of 1 to 10 panels (a partial last one), `I` of one panel
    /// of `dX` to 32 (none, one or more per step; a partial last one, whose remainder tile
    /// sums in partial sums and runs after the loop), steps ending in a full tile of the
    /// product (12 rows), one of one or two rows or of more, past its 96-row chunk, too few to
    /// ride (`T = 1`) and around the first tile (`T` of 12 to 15), a contraction in blocks (`H
    /// = 4097`: no parts), and a sequence shorter than `T` (`dX` zero after it).
    #[test]
    fn riding_input_gradient_matches_the_one_gemm_bitwise() {
        fn check<F: Float>(isa: Isa, steps: usize, input: usize, hidden: usize, len: usize) {
            let (rnn, x, mut seed) = riding_case::<F>(isa, steps, input, hidden);
            let g = values::<F>(steps * hidden, 1.0, &mut seed);
            let lengths = [len];
            let seq = match len < steps {
                true => Sequences::with_lengths(steps, &lengths),
                false => Sequences::new(steps, 1),
            };
            let mut out = vec![F::ZERO; steps * hidden];
            rnn.forward(&seq, &x, None, &mut out, None).unwrap();
            let run = |ride: bool| {
                with_ride(ride, || {
                    // Not zeros, so that a row left unwritten shows.
                    let mut d_input = vec![F::from_f64(7.0); steps * input];
                    let mut d_h0 = vec![F::ZERO; hidden];
                    let mut d_w_ih = vec![F::ZERO; hidden * input];
                    let mut d_w_hh = vec![F::ZERO; hidden * hidden];
                    let mut d_b_ih = vec![F::ZERO; hidden];
                    let grads = RnnGrads {
                        d_input: Some(&mut d_input),
                        d_h0: Some(&mut d_h0),
                        d_w_ih: Some(&mut d_w_ih),
                        d_w_hh: Some(&mut d_w_hh),
                        d_b_ih: Some(&mut d_b_ih),
                        d_b_hh: None,
                    };
                    let mut ws = Workspace::new();
                    rnn.backward(&seq, &x, None, &out, Some(&g), None, grads, &mut ws)
                        .unwrap();
                    [d_input, d_h0, d_w_ih, d_w_hh, d_b_ih].concat()
                })
            };
            let (riding, after) = (run(true), run(false));
            let name = std::any::type_name::<F>();
            let case = format!("{isa:?} {name} T = {steps}, I = {input}, H = {hidden}");
            assert_eq!(after.1, 0);
            // It rides on AVX-512 but where the contraction is in blocks or the steps are too
            // few: from 24 they never are, with one they always are (between, that depends on
            // the product's tiles, of 8 or 12 rows).
            let rides = isa == Isa::Avx512 && hidden <= 4096 && steps > 12;
            if steps == 1 || steps >= 24 {
                assert_eq!(riding.1, usize::from(rides), "{case}");
            }
            assert!(riding.0 == after.0, "{case}");
            let d_input = &riding.0[..steps * input];
            assert!(d_input.iter().all(|&v| F::to_f64(v) != 7.0), "{case}");
            assert!(
                d_input[len * input..].iter().all(|&v| F::to_f64(v) == 0.0),
                "{case}"
            );
        }
        for isa in Isa::available() {
            for hidden in [32, 64, 100, 256, 300] {
                for (steps, input) in [(49, 9), (50, 64), (62, 130), (40, 1), (45, 20), (97, 33)] {
                    check::<f32>(isa, steps, input, hidden, steps);
                    check::<f64>(isa, steps, input, hidden, steps);
                }
            }
            for (steps, len) in [(1, 1), (12, 12), (13, 13), (15, 15), (120, 77)] {
                check::<f32>(isa, steps, 40, 128, len);
                check::<f64>(isa, steps, 40, 128, len);
            }
            check::<f32>(isa, 150, 1024, 64, 150);
            check::<f64>(isa, 41, 512, 64, 41);
            // Only where it could ride: with `W_hh` of 64 MiB this case took most of the 35 s
            // the test added to CI's emulated run of the NEON path.
            if isa == Isa::Avx512 {
                check::<f32>(isa, 24, 16, 4097, 24);
            }
        }
    }

    /// The choice switches exactly at its three constants: rows of 1 KiB on both sides of 2
    /// MiB of `dA`, rows of 2 KiB at any size, rows under 1 KiB at none.
    #[test]
    fn d_a_is_packed_from_the_stated_sizes() {
        // 1 KiB rows: 2 MiB of `dA` at 2048 rows.
        assert!(!packs_d_a(2048, 1024));
        assert!(packs_d_a(2049, 1024));
        // Just under 2 KiB: 1026 rows are 2 MiB less 8 bytes, 1027 rows more than 2 MiB.
        assert!(!packs_d_a(1026, 2044));
        assert!(packs_d_a(1027, 2044));
        // 2 KiB and more: from one row.
        assert!(packs_d_a(1, 2048));
        assert!(packs_d_a(1, 4096));
        // Under 1 KiB: never, however many rows (the product saturates rather than wraps).
        assert!(!packs_d_a(1 << 20, 1020));
        assert!(!packs_d_a(usize::MAX, 1020));
        assert!(packs_d_a(usize::MAX, 1024));
    }
}
