//! The epilogues the microkernel fuses: what happens to each finished vector of a product.
//!
//! Each holds raw addresses of tensors the caller validated once for the whole call (the time
//! loop moves them per step without checks); rows are `[B, H]` states with leading dimension
//! `ld`, so the kernel's row `r` is sequence `r` of the batch.

use super::{Epilogue, Simd};
use crate::float::Float;

/// How a row is treated in one step: per sequence, from its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowMode {
    /// The sequence runs through this step and beyond.
    Active,
    /// This is the sequence's last step.
    Ending,
    /// The sequence has ended: the row's result is exactly zero.
    Inactive,
}

#[inline(always)]
fn mode_of(lengths: Option<&[usize]>, t: usize, r: usize) -> RowMode {
    match lengths {
        None => RowMode::Active,
        Some(l) => {
            let n = l[r];
            if t >= n {
                RowMode::Inactive
            } else if t + 1 == n {
                RowMode::Ending
            } else {
                RowMode::Active
            }
        }
    }
}

/// `C = acc + addend` (`C[m, n]`, leading dimension `ldc`; see [`Addend`]).
#[derive(Debug)]
pub struct Store<F> {
    c: *mut F,
    ldc: usize,
    /// What is added to the product: null (nothing), or row `r`, column `j` at
    /// `add + r * add_ld + j` (`C` itself to accumulate; a row vector with `add_ld = 0`).
    add: *const F,
    add_ld: usize,
}

impl<F> Store<F> {
    /// Stores `acc + addend` into `c` (row `r`, column `j` at `c + r * ldc + j`).
    pub fn new(c: *mut F, ldc: usize, addend: Addend<'_, F>) -> Self {
        let (add, add_ld) = match addend {
            Addend::Zero => (std::ptr::null(), 0),
            Addend::C => (c.cast_const(), ldc),
            Addend::Row(row) => (row.as_ptr(), 0),
        };
        Store {
            c,
            ldc,
            add,
            add_ld,
        }
    }
}

/// What [`Store`] (and [`super::gemm_packed`]) adds to the product before storing it.
#[derive(Clone, Copy, Debug)]
pub enum Addend<'a, F> {
    /// Nothing: `C = A B`.
    Zero,
    /// `C` itself: `C += A B`.
    C,
    /// The same row vector (at least `n` long) to every row: `C[i] = A B[i] + row` (the
    /// forward projection's biases, added where the product leaves the registers instead of
    /// in a pass over `C` beforehand).
    Row(&'a [F]),
}

// SAFETY: the epilogue only writes through `c` at the rows and columns the kernel hands it;
// concurrent kernels get disjoint column ranges (the `KernelFn` contract), so sharing the
// address between threads creates no data race; `add` is only read.
unsafe impl<F: Send> Sync for Store<F> {}

impl<F: Float> Epilogue<F> for Store<F> {
    #[inline(always)]
    fn row_mode(&self, _r: usize) -> RowMode {
        RowMode::Active
    }

    #[inline(always)]
    unsafe fn apply<V: Simd<Elem = F>>(
        &self,
        _mode: RowMode,
        r: usize,
        col: usize,
        acc: V,
        lanes: usize,
    ) {
        // SAFETY: (r, col..col + lanes) is inside C (trait contract), so is the address; the
        // addend is C itself or a row of at least `n` elements (`Addend::Row`'s contract,
        // checked by `gemm_packed`).
        unsafe {
            let p = self.c.add(r * self.ldc + col);
            let q = self.add.wrapping_add(r * self.add_ld + col);
            if lanes == V::LANES {
                let v = if self.add.is_null() {
                    acc
                } else {
                    V::load(q).add(acc)
                };
                v.store(p);
            } else {
                let v = if self.add.is_null() {
                    acc
                } else {
                    V::load_part(q, lanes).add(acc)
                };
                v.store_part(p, lanes);
            }
        }
    }
}

/// The forward step in place: `c = act(c + acc)` (`c` holds the projection `P_t` on entry),
/// zero for sequences that have ended; at a sequence's last step the row is also copied to
/// `h_n` when given. `tanh` selects tanh, else relu.
#[derive(Debug)]
pub struct FwdStep<'a, F> {
    /// The step's `[B, H]` rows.
    pub c: *mut F,
    /// `H`.
    pub ld: usize,
    /// Per-sequence lengths (`None`: all run every step).
    pub lengths: Option<&'a [usize]>,
    /// The step index.
    pub t: usize,
    /// `[B, H]` final states, written at each sequence's last step (`lengths` given).
    pub h_n: Option<*mut F>,
    /// tanh, else relu. A field read in the tile's epilogue, not a type parameter: every path
    /// then compiles one forward and one backward time loop (with their step kernels) for
    /// both activations, not two. The `f32` code of `bench_table` went from 2.38 to 1.42 MB
    /// (`nm -S`) and its release build from 2m57s to 1m40s; speed in README ("Activation
    /// at run time").
    pub tanh: bool,
}

// SAFETY: writes go only to the rows and columns the kernel hands over, disjoint between
// concurrent calls (the `KernelFn` contract); everything else is read-only.
unsafe impl<F: Send> Sync for FwdStep<'_, F> {}

impl<F: Float> Epilogue<F> for FwdStep<'_, F> {
    #[inline(always)]
    fn row_mode(&self, r: usize) -> RowMode {
        mode_of(self.lengths, self.t, r)
    }

    /// The step's projection rows, read and overwritten by `apply` after the tile's product:
    /// written by the input GEMM long before (`T * B * H` elements: in L3 or memory when
    /// large), so without the fetch each tile ended in a wait for its rows' lines. A scratch
    /// build timing each phase of `forward` and `backward` (`Instant::now()` around each,
    /// means printed every few calls; run as `bench_table --threads 1 --modes train
    /// --target-s 2 WORKLOAD` under `taskset -c 0`, 2-3 runs each, Intel Xeon host), the
    /// time of the forward loop over that of the input projection (code unchanged, so the
    /// host's drift cancels), without / with: `rnn_h512_b64_t50` 1.069-1.083 / 1.034-1.040, `rnn_h1760_b16_t50`
    /// 1.165-1.167 / 1.112-1.123, `rnn_h1760_b64_t50` 1.023-1.039 / 1.019-1.024,
    /// `rnn_h512_b16_t50` 1.108-1.110 / 1.108-1.125. The backward step fetches its rows the
    /// same way ([`BwdStep::fetch`]); timed against the projection, as here, it had once
    /// measured no faster (`rnn_h512_b64_t50` 1.127-1.143 / 1.132-1.164), which a profile's
    /// samples and the sweep's time against the forward loop's, both steadier, contradict.
    #[inline(always)]
    fn fetch(&self, r0: usize, rows: usize, c0: usize, ncols: usize) {
        fetch_rows::<F, false>(self.c.cast_const(), self.ld, r0, rows, c0, ncols);
    }

    #[inline(always)]
    unsafe fn apply<V: Simd<Elem = F>>(
        &self,
        mode: RowMode,
        r: usize,
        col: usize,
        acc: V,
        lanes: usize,
    ) {
        let at = r * self.ld + col;
        // SAFETY: (r, col..col + lanes) is inside the step's rows and inside `h_n` (same
        // `[B, H]` shape) by the trait contract; V's features likewise.
        unsafe {
            let p = self.c.add(at);
            let full = lanes == V::LANES;
            let v = if mode == RowMode::Inactive {
                V::zero()
            } else {
                let x = if full {
                    V::load(p)
                } else {
                    V::load_part(p, lanes)
                }
                .add(acc);
                if self.tanh { x.tanh() } else { x.relu() }
            };
            if full {
                v.store(p)
            } else {
                v.store_part(p, lanes)
            }
            if mode == RowMode::Ending
                && let Some(h_n) = self.h_n
            {
                let q = h_n.add(at);
                if full {
                    v.store(q)
                } else {
                    v.store_part(q, lanes)
                }
            }
        }
    }
}

/// The BPTT step: `d = (g + acc) * act'(h)` where `acc` is the carry `dA_(t+1) W_hh`, `h`
/// the stored output of step `t` and `g` the upstream gradient `grad_output[t]` (if any). At
/// a sequence's last step the carry is replaced by `grad_h_n` (if any); after it, `d = 0`.
#[derive(Debug)]
pub struct BwdStep<'a, F> {
    /// `dA_t`, `[B, H]`, written.
    pub d: *mut F,
    /// `h_t`, `[B, H]`.
    pub h: *const F,
    /// `grad_output[t]`, `[B, H]`.
    pub g: Option<*const F>,
    /// `grad_h_n`, `[B, H]`.
    pub g_h_n: Option<*const F>,
    /// `H`.
    pub ld: usize,
    /// Per-sequence lengths (`None`: all end at the last step).
    pub lengths: Option<&'a [usize]>,
    /// The step index.
    pub t: usize,
    /// `T`.
    pub steps: usize,
    /// tanh, else relu (as [`FwdStep::tanh`]). Written as both derivatives computed, then
    /// one chosen: the compiler still branches (it sinks each into its arm), but the loop it
    /// emits for this form measured level with the type parameter at `B = 1`, where the form
    /// with the calls inside the `if` measured 2 % slower (README, "Activation at run time";
    /// why the two differ was not examined).
    pub tanh: bool,
}

// SAFETY: writes go only through `d` at the rows and columns the kernel hands over, disjoint
// between concurrent calls (the `KernelFn` contract); everything else is read-only.
unsafe impl<F: Send + Sync> Sync for BwdStep<'_, F> {}

impl<F: Float> Epilogue<F> for BwdStep<'_, F> {
    /// The step's rows of `h` and `grad_output`, read by `apply`, and of `dA`, written by it
    /// (a store to a line not in the cache waits for it as a load does): as for
    /// [`FwdStep::fetch`], all three were written long before (the forward call, the caller,
    /// the last call), so without the fetch each tile's epilogue waited for their lines.
    /// `perf record -e cpu-clock` of `taskset -c 0 bench_table --threads 1 --modes train
    /// --target-s 3 rnn_h512_b64_t50` (a scratch build choosing the fetches at run time, two
    /// alternated rounds, Intel Xeon host, model 207), samples in the sweep's epilogue over
    /// those in its tiles' loops (the forward loop's: 0.087-0.101): no fetch 0.195-0.219, `h`
    /// and `grad_output` 0.154-0.174, all three 0.141-0.153; `dA`'s lines fetched for writing
    /// into L1 (`prefetchw`) instead, 0.181-0.196. The sweep's time over the forward loop's
    /// (phase timers in the same build, so the host's drift cancels), none / all three:
    /// `rnn_h512_b64_t50` 1.123-1.147 / 1.069-1.090, `rnn_h256_b64_t50` 1.092-1.120 /
    /// 1.047-1.055, `rnn_h512_b16_t50` 1.030-1.068 / 1.017-1.039, `rnn_h1760_b16_t50`
    /// 1.021-1.042 / 1.016-1.040.
    #[inline(always)]
    fn fetch(&self, r0: usize, rows: usize, c0: usize, ncols: usize) {
        fetch_rows::<F, false>(self.h, self.ld, r0, rows, c0, ncols);
        if let Some(g) = self.g {
            fetch_rows::<F, false>(g, self.ld, r0, rows, c0, ncols);
        }
        fetch_rows::<F, false>(self.d.cast_const(), self.ld, r0, rows, c0, ncols);
    }

    #[inline(always)]
    fn row_mode(&self, r: usize) -> RowMode {
        match self.lengths {
            None if self.t + 1 == self.steps => RowMode::Ending,
            _ => mode_of(self.lengths, self.t, r),
        }
    }

    #[inline(always)]
    unsafe fn apply<V: Simd<Elem = F>>(
        &self,
        mode: RowMode,
        r: usize,
        col: usize,
        acc: V,
        lanes: usize,
    ) {
        let at = r * self.ld + col;
        let full = lanes == V::LANES;
        // SAFETY: (r, col..col + lanes) is inside every `[B, H]` tensor here (trait
        // contract); V's features likewise.
        unsafe {
            let ld = |p: *const F| {
                if full {
                    V::load(p)
                } else {
                    V::load_part(p, lanes)
                }
            };
            let v = if mode == RowMode::Inactive {
                V::zero()
            } else {
                let carry = match (mode, self.g_h_n) {
                    (RowMode::Ending, Some(q)) => Some(ld(q.add(at))),
                    (RowMode::Ending, None) => None,
                    _ => Some(acc),
                };
                let up = match (self.g, carry) {
                    (Some(g), Some(c)) => ld(g.add(at)).add(c),
                    (Some(g), None) => ld(g.add(at)),
                    (None, Some(c)) => c,
                    (None, None) => V::zero(),
                };
                let h = ld(self.h.add(at));
                let (dt, dr) = (h.tanh_deriv(), h.relu_deriv());
                up.mul(if self.tanh { dt } else { dr })
            };
            let p = self.d.add(at);
            if full {
                v.store(p)
            } else {
                v.store_part(p, lanes)
            }
        }
    }
}

/// Fetches the lines of rows `r0..r0 + rows`, columns `c0..c0 + ncols`, of a `[_, ld]` tensor
/// at `base` (hints: addresses are only computed, never read): one per line's worth of
/// elements from the row's first, and its last (a row that does not start a line ends in one
/// more). Into L1 when `L1`, else L2 (see [`super::prefetch_to`]).
#[inline(always)]
pub(super) fn fetch_rows<F, const L1: bool>(
    base: *const F,
    ld: usize,
    r0: usize,
    rows: usize,
    c0: usize,
    ncols: usize,
) {
    if ncols == 0 {
        return;
    }
    let line = super::PREFETCH_LINE / size_of::<F>();
    for r in r0..r0 + rows {
        let row = base.wrapping_add(r * ld + c0);
        for c in (0..ncols).step_by(line) {
            super::prefetch_to::<F, L1>(row.wrapping_add(c));
        }
        super::prefetch_to::<F, L1>(row.wrapping_add(ncols - 1));
    }
}
