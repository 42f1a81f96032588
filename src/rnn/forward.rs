//! Forward pass: one hoisted input-projection GEMM, then the sequential recurrence.

use super::{Activation, Rnn};
use crate::error::Result;
use crate::float::Float;
use crate::isa::Isa;
use crate::kernels::{self, Addend, FwdStep, Operands, RIDE_ROWS, SharedMut, StepLoop};
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

        self.recur(seq, 0, input, h0, output, None);

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
            let input = &input[rows.start * input_size..rows.end * input_size];
            let first = if t0 == 0 { h0 } else { Some(&*state) };
            let capture = seq.lengths.is_some().then_some(&mut *h_n);
            self.recur(seq, t0, input, first, proj, capture);
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
        kernels::gemm_packed(
            self.isa,
            src,
            (input_size, 1),
            rows,
            self.packed_ih_t.view(),
            dst,
            hidden,
            self.proj_addend(),
        );
    }

    /// What the projection adds: the biases, as each tile leaves the registers (no pass over
    /// its output first).
    fn proj_addend(&self) -> Addend<'_, F> {
        match &self.bias {
            Some(bias) => Addend::Row(bias),
            None => Addend::Zero,
        }
    }

    /// The projection of `src` (`[steps, I]`, `B = 1`) into `dst` as [`Rnn::project`] computes
    /// it, in parts: the first strip now, the others by the steps ([`Ride`]). `None` where the
    /// projection does not run in parts (its contraction in blocks: `I` beyond 4096).
    fn ride<'s>(&'s self, src: &'s [F], steps: usize, dst: &mut [F]) -> Option<Ride<'s, F>> {
        let input_size = self.dims.input_size;
        let parts = kernels::ProductParts::strided(
            self.isa,
            src,
            (input_size, 1),
            steps,
            self.packed_ih_t.view(),
            dst,
            self.dims.hidden_size,
            self.proj_addend(),
        )?;
        let panels = parts.panels();
        // The steps' tiles sum as the product's tiles of three or more rows: the rows after
        // those (a last tile of one or two, or a partial panel's remainder) are computed first.
        let end = parts.chained_rows();
        // The rows before the steps' first strip: whole tiles of the product from row 0 (a
        // part ending inside one would sum its rows in a tile of other height), more than a
        // strip (the steps of the strip before carry it, and step 0 carries none).
        let start = (RIDE_ROWS + 1).next_multiple_of(parts.strip_rows());
        if start >= end {
            return None;
        }
        #[cfg(test)]
        tests::RIDDEN.set(tests::RIDDEN.get() + 1);
        // SAFETY: rows from 0 to `start < end <= steps` and from `end` to `steps` (both
        // multiples of the product's tile rows, or `steps`), all panels; `src` and `dst` are
        // alive and this thread's alone here.
        unsafe {
            parts.run(0..start, 0..panels);
            parts.run(end..steps, 0..panels);
        }
        Some(Ride {
            parts,
            panels,
            start,
            end,
        })
    }

    /// Steps `t0..t0 + len` from their inputs `input` (`[len * B, I]`), `len = states.len() /
    /// (B*H)`: block `k` of `states` receives the projection `P_(t0+k)` and then `h_(t0+k)`,
    /// zero for sequences that have ended. `first_prev` is the state before step `t0` (`None`:
    /// zeros). With `capture`, each sequence's state at its last step is also written there.
    ///
    /// Each step is the packed product `h_(t-1) W_hh^T` with the activation fused
    /// ([`FwdSteps`]); single-threaded, all steps run inside one kernel call, else one call per
    /// thread's panels per step ([`StepLoop::run_steps`]), kernel and threading chosen once.
    /// The projection is one GEMM before the steps ([`Rnn::project`]), or, where one thread
    /// runs a matrix-vector loop ([`rides`]), computed strip by strip during the steps before
    /// (see [`Ride`]).
    fn recur(
        &self,
        seq: &Sequences<'_>,
        t0: usize,
        input: &[F],
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
        let threads = StepLoop::recurrence(packed.panels(), batch, hidden, hidden, len);
        let ride = if rides::<F>(self.isa, batch, hidden, threads.threads()) {
            self.ride(input, len, states)
        } else {
            None
        };
        if ride.is_none() {
            self.project(input, len * batch, states);
        }
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
            ride,
        };
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
    /// The projection of the steps after the first strip, computed during the steps before.
    ride: Option<Ride<'a, F>>,
}

/// Whether the forward recurrence of `batch` rows and `hidden` units on `threads` threads,
/// on `isa`, computes its input projection during the steps ([`Ride`]) instead of before
/// them: one row per step (`B = 1`), on one thread (a loop of more stays on one up to
/// [`RIDE_ALONE_MAX_W_HH_BYTES`]), on AVX-512 (whose 32 registers hold the
/// step's accumulators and the ride's; not measured on the other paths), where the steps wait
/// on reading `W_hh` from L2 (from [`RIDE_MIN_W_HH_BYTES`] to [`RIDE_MAX_W_HH_BYTES`]).
pub(super) fn rides<F>(isa: Isa, batch: usize, hidden: usize, threads: usize) -> bool {
    let w_hh = hidden * hidden * size_of::<F>();
    let size = (RIDE_MIN_W_HH_BYTES..=RIDE_MAX_W_HH_BYTES).contains(&w_hh);
    #[cfg(test)]
    let size = tests::RIDE.get().unwrap_or(size);
    // A loop the threads would share rides on one thread instead (`Steps::has_ride` keeps it
    // there) up to `RIDE_ALONE_MAX_W_HH_BYTES`.
    let alone = threads == 1 || w_hh <= RIDE_ALONE_MAX_W_HH_BYTES;
    isa == Isa::Avx512 && batch == 1 && alone && size
}

/// `W_hh` (bytes) up to which a `B = 1` loop that two threads would share rides on one thread
/// instead ([`rides`]): 160 KiB (`H <= 202` in `f32`). `bench_table --modes infer
/// --target-s 0.3` (Zen 4, 3 runs each, ms, at `1988a0a`, 1 thread riding / 2 sharing):
/// `rnn_h192_b1_t100` 0.167-0.171 / 0.175-0.177, `rnn_h200_b1_t100` 0.199-0.222 / 0.198-0.209,
/// `rnn_h224_b1_t100` 0.233-0.237 / 0.181-0.183. With this rule (two threads: the forward loop
/// riding on one, the backward sweep shared), 1 / 2 threads, infer and train: `rnn_h192_b1_t100`
/// 0.167 / 0.167-0.168 and 0.509 / 0.483-0.492, `rnn_h200_b1_t100` 0.200 / 0.199-0.200 and
/// 0.597-0.603 / 0.563-0.573 (the training call on two threads took 0.478 with the loop shared).
/// The backward sweep follows the same rule (`InputGradRide`); with it, training, 3 runs, 1 / 2
/// threads: `rnn_h192_b1_t100` 0.470-0.474 / 0.471-0.475, `rnn_h200_b1_t100` 0.565-0.566 /
/// 0.564-0.576 (with the sweep shared on two threads, 0.485-0.583 and 0.579-0.687 against
/// 0.470-0.476 and 0.566-0.571 on one); 144 KiB instead (`rnn_h200_b1_t100` then shared) gave
/// that row 0.547-0.561 on two threads and its inference 0.196-0.261 (against 0.199-0.201).
const RIDE_ALONE_MAX_W_HH_BYTES: usize = 160 << 10;

/// `W_hh` (bytes) from which a `B = 1` loop computes its projection during the steps: 64 KiB,
/// beyond the L1 (32 or 48 KiB) of the x86_64 cores here. `bench_table` (`taskset -c 0,1`,
/// `--threads 1 --target-s 0.3`, Zen 4, FMA probe 117 GFLOP/s, against the build projecting
/// first, the two alternated 5 rounds, ratio of the medians), infer / train:
/// `rnn_h128_b1_t150` 0.934 / 0.977, `rnn_h192_b1_t100` 0.858 / 0.947, `rnn_h256_b1_t150`
/// 0.851 / 0.944 (0.457 ms against 0.537 in inference), `rnn_h512_b1_t100` 0.950 / 0.983.
/// Below, the steps wait on their chains' latency rather than on loads, and a strip of 8 rows
/// has fewer panels (one or two at `H = 32`, `64`) than steps: those steps carry all of it.
/// Riding there (4 rounds): `rnn_h64_b1_t96` 1.02 / 1.02, `rnn_h32_b1_t672` 0.98 / 0.99.
const RIDE_MIN_W_HH_BYTES: usize = 64 << 10;
/// `W_hh` (bytes) up to which a `B = 1` loop computes its projection during the steps: 1 MiB,
/// the L2 of a Zen 4 or Zen 5 core. Beyond, both `W_hh` and `W_ih` come from L3 and the
/// tiles' reads of `W_ih` add to the steps': `rnn_h1024_b1_t50` 0.99 / 1.04 (4 rounds, as
/// above).
const RIDE_MAX_W_HH_BYTES: usize = 1 << 20;

/// The input projection of a `B = 1` sequence computed during its steps: its first rows (here
/// steps) and the rows of its last register tile when that sums in partial sums before the steps, and
/// each strip of [`RIDE_ROWS`] rows after those during
/// the steps before it, its panels spread over them, one [`kernels::RideTile`] per step (see
/// `kernels::ride_body`). The tiles sum as the one GEMM's, so the bits are the same.
#[derive(Clone, Copy)]
struct Ride<'a, F> {
    parts: kernels::ProductParts<'a, F>,
    panels: usize,
    /// The rows computed by the steps start here (the rows before are computed first)...
    start: usize,
    /// ... and end here (`ProductParts::chained_rows`: the rows after are computed first).
    end: usize,
}

impl<'a, F: Float> Ride<'a, F> {
    /// The tile step `s` computes: its share of the panels of the strip after its own, stored
    /// through `states`, the pointer the steps write the states through (taken after `parts`
    /// took its own, which the tiles therefore do not use).
    #[inline(always)]
    fn tile(&self, s: usize, states: *mut F) -> Option<kernels::RideTile<'a, F>> {
        const STRIP: usize = RIDE_ROWS;
        // Step `s` works on strip `j`, rows `start + j * STRIP..`, during the `STRIP` steps
        // before it: those of rows `start + (j - 1) * STRIP..` (`start > STRIP`: never step
        // 0).
        let ahead = (s + STRIP).checked_sub(self.start)?;
        let (j, i) = (ahead / STRIP, ahead % STRIP);
        let r0 = self.start + j * STRIP;
        let (p0, p1) = (i * self.panels / STRIP, (i + 1) * self.panels / STRIP);
        if r0 >= self.end || p0 == p1 {
            return None;
        }
        let tile = self.parts.ride_tile(r0..(r0 + STRIP).min(self.end), p0, p1);
        Some(kernels::RideTile {
            c: SharedMut(states.wrapping_add(r0 * tile.ldc)),
            ..tile
        })
    }
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

    #[inline(always)]
    fn has_ride(&self) -> bool {
        self.ride.is_some()
    }

    #[inline(always)]
    fn ride(&self, s: usize) -> Option<kernels::RideTile<'_, F>> {
        self.ride.as_ref()?.tile(s, self.base.get())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::rnn::{RnnDims, RnnWeights};

    thread_local! {
        /// On this thread, `Some(true)`: [`rides`] whatever the size of `W_hh`, `Some(false)`:
        /// never; `None`: by its rule.
        pub(in crate::rnn) static RIDE: Cell<Option<bool>> = const { Cell::new(None) };
        /// Calls on this thread whose projection (or input gradient) rode along the steps.
        pub(in crate::rnn) static RIDDEN: Cell<usize> = const { Cell::new(0) };
    }

    /// `n` values uniform in `(-scale / 2, scale / 2)`, from `seed` (a linear congruence).
    pub(in crate::rnn) fn values<F: Float>(n: usize, scale: f64, seed: &mut u64) -> Vec<F> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                F::from_f64(((*seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale)
            })
            .collect()
    }

    /// A tanh layer on `isa` with random weights and bias for a riding test, an input of
    /// `steps` rows, and the seed for more values.
    pub(in crate::rnn) fn riding_case<F: Float>(
        isa: Isa,
        steps: usize,
        input: usize,
        hidden: usize,
    ) -> (Rnn<F>, Vec<F>, u64) {
        let mut seed = (steps * 1000 + input * 7 + hidden) as u64;
        let w_ih = values::<F>(hidden * input, 1.0 / input as f64, &mut seed);
        let w_hh = values::<F>(hidden * hidden, 1.5 / hidden as f64, &mut seed);
        let bias = values::<F>(hidden, 0.2, &mut seed);
        let x = values::<F>(steps * input, 2.0, &mut seed);
        let weights = RnnWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: Some(&bias),
            b_hh: None,
        };
        let dims = RnnDims {
            input_size: input,
            hidden_size: hidden,
        };
        let rnn = Rnn::new(Activation::Tanh, dims, weights).unwrap();
        (rnn.with_isa(isa).unwrap(), x, seed)
    }

    /// `f()` on a pool of one thread (the loops two would share never ride) with riding
    /// forced on or off ([`RIDE`]), and the calls that rode ([`RIDDEN`]).
    pub(in crate::rnn) fn with_ride<R: Send>(
        ride: bool,
        f: impl FnOnce() -> R + Send,
    ) -> (R, usize) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            RIDE.set(Some(ride));
            RIDDEN.set(0);
            let r = f();
            RIDE.set(None);
            (r, RIDDEN.get())
        })
    }

    /// `forward` of `B = 1` with the projection during the steps (`Ride`) and before them:
    /// the same bits, on every path (those that do not ride compare with themselves), whatever
    /// the size of `W_hh`: `H` of 1 to 10 panels (none, one or two per step; a partial last
    /// panel, whose one-vector tile sums the step in 8 partial sums), steps ending in a full
    /// tile of the product (12 rows), one of one or two rows or of more (whose rows sum in one
    /// chain but in a partial last panel), past its 96-row chunk, rows of
    /// `X` 4 KiB
    /// apart (the narrow kernel's 8-row tiles), and a contraction too long to ride (`I =
    /// 4097`). `forward_final` rides in its blocks.
    #[test]
    fn riding_projection_matches_the_one_gemm_bitwise() {
        fn check<F: Float>(isa: Isa, steps: usize, input: usize, hidden: usize) {
            let (rnn, x, mut seed) = riding_case::<F>(isa, steps, input, hidden);
            let h0 = values::<F>(hidden, 1.0, &mut seed);
            let seq = Sequences::new(steps, 1);
            let run = |ride: bool| {
                with_ride(ride, || {
                    let mut out = vec![F::ZERO; steps * hidden];
                    let mut h_n = vec![F::ZERO; hidden];
                    rnn.forward(&seq, &x, Some(&h0), &mut out, None).unwrap();
                    let mut ws = Workspace::new();
                    rnn.forward_final(&seq, &x, Some(&h0), &mut h_n, &mut ws)
                        .unwrap();
                    (out, h_n)
                })
            };
            let ((riding, ridden), (before, none)) = (run(true), run(false));
            let name = std::any::type_name::<F>();
            let case = format!("{isa:?} {name} T = {steps}, I = {input}, H = {hidden}");
            assert_eq!(none, 0);
            // Both calls ride on AVX-512 but where the contraction is in blocks.
            let rides = isa == Isa::Avx512 && input <= 4096;
            assert_eq!(ridden, if rides { 2 } else { 0 }, "{case}");
            assert!(riding == before, "{case}");
            assert!(riding.1 == riding.0[(steps - 1) * hidden..]);
        }
        for isa in Isa::available() {
            for hidden in [32, 64, 100, 256, 300] {
                for (steps, input) in [(49, 9), (50, 64), (62, 130), (40, 1), (45, 20), (97, 33)] {
                    check::<f32>(isa, steps, input, hidden);
                    check::<f64>(isa, steps, input, hidden);
                }
            }
            check::<f32>(isa, 150, 1024, 64);
            check::<f64>(isa, 41, 512, 64);
            check::<f32>(isa, 30, 4097, 32);
        }
    }
}
