//! The time loop's threading. Each step's panels are split into `threads` contiguous chunks,
//! and chunk `c` belongs to participant `c` (the caller is participant 0): every step, a
//! participant runs its own chunk, so each core keeps reading the same part of the packed
//! weights from its own cache. A chunk of step `s + 1` starts once every chunk of step `s`
//! is done. A participant that has finished its chunk runs at once any chunk of the step
//! nobody has claimed yet, then waits for the claimed ones, so the loop completes even when a
//! helper is never scheduled (a busy pool, a call from inside a parallel iterator, a core
//! taken by another process): helpers only speed it up, nothing waits for one to arrive, and
//! a late one costs at most its chunk run by another participant. A participant that waits
//! too long for a claimed chunk (its holder lost its core) runs the rest of the loop alone
//! (see [`Chunks::finish_step`]). One `rayon::scope` covers
//! the whole loop (a rayon join per step costs far more than a step of a small recurrence).
//! `K` is never split, so every element is computed by the same instructions whoever runs
//! its chunk: results are bitwise identical for any thread count.
//!
//! A loop whose rows (the batch) hold a register tile per thread, and whose weights fit in
//! L2, splits its rows instead, in whole tiles: each thread runs all the steps of its rows
//! in one call and meets the others only at the end (see [`StepLoop::run_steps`]).
//!
//! The hoisted products (one call, no steps) split their row chunks or panels into one part
//! per thread, and a thread done with its part takes chunks the others have not begun (see
//! [`StepLoop::run_parts`]).

use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Epilogue, Operands, RowMode, Simd, Steps};
use crate::float::Float;
use crate::isa::Isa;

/// Work (flops, per thread) below which a product, or a whole time loop, stays on the
/// calling thread: waking the pool's threads costs microseconds, so a threaded region must
/// hold many of them (4 Mflop is about 20 us of one core's arithmetic). See
/// [`StepLoop::recurrence`] for the measurements.
const MIN_FLOPS_PER_THREAD: usize = 1 << 22;

/// Work per step, per thread ([`step_share_work`]), below which a time loop stays on the
/// calling thread on Intel's cores: the participants meet once per step (each chunk's done
/// mark and the state's lines cross between cores, ~0.1-0.2 us here), so a thread's part of a
/// step must take a few times that. 128 Kflop: `B = 1` from `H = 210`, `B = 4` from 182, `B =
/// 16` from 91 (64 Kflop, until the one-thread loops reversed every other step's panels,
/// shared `B = 1` from `H = 148`).
const MIN_STEP_WORK_PER_THREAD_INTEL: usize = 1 << 17;

/// [`MIN_STEP_WORK_PER_THREAD_INTEL`] on the other cores (measured on AMD's Zen 4), in
/// [`step_share_work`]'s measure there: 42 Kflop, so two threads share `B = 1` from `H = 170`,
/// `B = 2` from 147, `B = 3` from 120, `B = 4` from 104, `B = 8` from 74 (see
/// [`StepLoop::recurrence`]).
const MIN_STEP_WORK_PER_THREAD: usize = 42 << 10;

/// A step's work as the time it takes, in flops: `2 * max(rows, 3) * n * k`. Every step reads
/// all of the `[k, n]` packed weights from L2 whatever its rows, which takes about as long as
/// three rows of FMAs (Zen 5: ~150-200 GB/s from L2 against ~220 GFLOP/s of FMAs per core;
/// `f64` halves both).
fn step_work(rows: usize, n: usize, k: usize) -> usize {
    2usize
        .saturating_mul(rows.max(3))
        .saturating_mul(n)
        .saturating_mul(k)
}

/// A step's work as [`StepLoop::recurrence`] weighs it against the per-step meeting of the
/// threads that would share it: [`step_work`] on Intel's cores; elsewhere its flops, `2 * rows
/// * n * k`, with one row counted as one and a half (`n * k * max(2 * rows, 3)`). On Zen 4
/// that put every batch measured (1 to 8 rows) where two threads began to gain, where
/// [`step_work`]'s three rows for every batch up to three could not: `B = 2` at `H = 144` (two
/// threads 1-3 % slower) and `B = 1` at `H = 160` (4 % slower in inference) weigh more than
/// `B = 3` at `H = 120` (22-25 % faster) by its measure, less by this one.
fn step_share_work(rows: usize, n: usize, k: usize, intel: bool) -> usize {
    match intel {
        true => step_work(rows, n, k),
        false => rows
            .saturating_mul(2)
            .max(3)
            .saturating_mul(n)
            .saturating_mul(k),
    }
}

/// Bytes of packed weights up to which a time loop may split its rows (the batch) between
/// threads (see [`StepLoop::run_steps`]): every thread then reads all of the weights every
/// step, which must stay in its own L2. Larger weights come from L3 (or memory) every step,
/// and reading them all on every core would double that traffic: their loops split the
/// panels. Half the 1 MiB L2 of the AMD cores here. Lifting it on Zen 4 gained nothing
/// consistent (a scratch build switching at run time, phase timers, `taskset -c 0,1
/// bench_table --threads 2 --modes infer,train --target-s 0.3`, 4 alternated rounds, ratio of
/// the medians, no limit / this one, training and inference): `rnn_h512_b64_t50` (1 MiB of
/// weights) 1.014 / 0.974 (fastest samples 1.005 / 1.000; the training loops 8.43 -> 8.52
/// ms), `rnn_h512_b16_t50` 1.018 / 0.999, `rnn_h1760_b64_t50` 0.978 / 1.017 (fastest 0.994 /
/// 0.997). Weights between 512 KiB and 1 MiB (`H` 353-511 in `f32`) were not measured.
const ROW_SPLIT_MAX_BYTES: usize = 1 << 19;
/// [`ROW_SPLIT_MAX_BYTES`] on Intel's cores (2 MiB of L2 on the Xeons here): `H = 512` in
/// `f32`.
pub(super) const ROW_SPLIT_MAX_BYTES_INTEL: usize = 1 << 20;
/// One more than the most threads a loop splits its rows between.
const MAX_ROW_THREADS: usize = 9;

/// Spins before a waiting participant starts yielding its core (the machine may be shared).
const YIELD_AFTER_SPINS: u32 = 1 << 12;

/// One pass of a wait: counts it in `spins`, and spins for the first [`YIELD_AFTER_SPINS`]
/// passes, then yields the core.
fn pause(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < YIELD_AFTER_SPINS {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Spins between two reads of the clock while a participant waits for a claimed chunk (a
/// healthy wait ends long before the first read).
const CLOCK_EVERY_SPINS: u32 = 1 << 8;

/// Work per thread per step ([`step_share_work`]'s measure) below which a loop shared by the
/// rule of the non-Intel cores times its meetings (see [`StepLoop::recurrence`]): about the
/// least of the loops measured still faster on two threads while the two cores were far
/// apart (`rnn_h256_b1_t150`, 98 Kflop).
const FAR_MIN_WORK_PER_THREAD: usize = 96 << 10;

/// Steps `1..=FAR_SAMPLE_STEPS` of a loop that times its meetings carry a stamp with their
/// done marks (each costs two clock reads, about 30 ns each here).
pub(super) const FAR_SAMPLE_STEPS: usize = 8;

/// Meetings a participant times before it may run the loop alone ([`Chunks::finish_step`]).
const FAR_MIN_SAMPLES: usize = 2;

/// The time from another participant's done mark to its waiter's seeing it (two clock reads
/// included) above which the two cores count as far apart (between two dies). On the Zen 4
/// host (`rnn_h120_b3_t100`, 2 threads, the least of a participant's first two meetings)
/// 155-165 ns while its two vCPUs were near each other (a round trip through one line
/// between two threads 50-95 ns: `examples/round_trip.rs`), 275-500 ns while they were
/// apart (320-370 ns).
const FAR_LATENCY: Duration = Duration::from_nanos(220);

/// How long a participant may wait for a claimed chunk beyond [`StepLoop::stall`]'s estimate
/// before it runs the rest of the loop alone (see [`Chunks::finish_step`]).
const STALL_FLOOR: Duration = Duration::from_micros(50);

/// How a time loop runs: on how many threads, and after how long a wait for another
/// participant's chunk that participant counts as descheduled.
#[derive(Clone, Copy, Debug)]
pub struct StepLoop {
    threads: usize,
    stall: Duration,
    /// Threads a time loop may split its rows between ([`StepLoop::run_steps`]): the pool's,
    /// or 1 where rows are not to be split.
    row_threads: usize,
    /// Split the rows wherever each thread gets a tile of them, whatever the size and the
    /// balance (tests).
    rows_forced: bool,
    /// Time the first steps' meetings and run the rest alone if they cost more than this
    /// (see [`Chunks::finish_step`]); `None`: never.
    far: Option<Duration>,
}

impl StepLoop {
    /// A product of `flops` split into `units` (panels or row chunks) on the caller's rayon
    /// pool (`rayon::current_num_threads()`), single-threaded when it is too small to share
    /// ([`MIN_FLOPS_PER_THREAD`]).
    pub fn new(units: usize, flops: usize) -> Self {
        let by_work = (flops / MIN_FLOPS_PER_THREAD).max(1);
        let threads = pool_threads().min(units).min(by_work).max(1);
        StepLoop::with_stall(threads, flops)
    }

    /// A time loop of `steps` steps, each the product of `rows` rows of a state with packed
    /// `[k, n]` weights in `panels` panels, on the caller's rayon pool: single-threaded when a
    /// step's part per thread is below [`MIN_STEP_WORK_PER_THREAD_INTEL`] on Intel's cores,
    /// [`MIN_STEP_WORK_PER_THREAD`] elsewhere (in [`step_share_work`]'s units), or the whole
    /// loop's below [`MIN_FLOPS_PER_THREAD`] (in [`step_work`]'s).
    ///
    /// Measured on a quiet host (`bench_table --threads 2 --target-s 0.2`, 3 alternated
    /// rounds, fastest median, ms, one thread / two; infer, train): shared here:
    /// `rnn_h256_b1_t150` 0.336 / 0.233, 0.767 / 0.553; `rnn_h192_b1_t100` 0.128 / 0.117,
    /// 0.331 / 0.299; `rnn_h160_b1_t100` 0.093 / 0.082, 0.241 / 0.224; `rnn_h128_b4_t100`
    /// 0.126 / 0.093, 0.309 / 0.257; `rnn_h64_b16_t100` 0.131 / 0.092, 0.371 / 0.318;
    /// `rnn_h256_b16_t50` 0.754 / 0.487, 2.08 / 1.58. Kept on one thread, where two were
    /// slower or level: `rnn_h128_b2_t100` 0.071 / 0.077 (infer); `rnn_h96_b1_t100` 0.021 /
    /// 0.027; `rnn_h64_b1_t96` 0.009 / 0.021; `rnn_h256_b1_t5` train 0.045 / 0.060;
    /// `rnn_h256_b1_t12` 0.028 / 0.020 but train 0.088 / 0.090. On an Intel Xeon host (model
    /// 207, quiet at the time; `taskset -c 0-1 bench_table --threads N --modes infer,train
    /// --target-s 0.3`, 3 alternated rounds, medians, ms, one thread / two, at 64 Kflop, with
    /// the one-thread loops reversing every other step's panels): two threads slower at
    /// `rnn_h160_b1_t100` 0.104-0.106 / 0.144-0.156, train 0.277-0.279 / 0.342-0.396;
    /// `rnn_h192_b1_t100` 0.156-0.160 / 0.186-0.216, train 0.409-0.422 / 0.449-0.507;
    /// `rnn_h128_b4_t100` infer 0.194-0.197 / 0.208-0.240 (train 0.557-0.570 / 0.496-0.577);
    /// `rnn_h64_b16_t100` infer 0.203-0.204 / 0.217-0.313 (train level); faster at
    /// `rnn_h224_b1_t100` 0.227-0.252 / 0.202-0.239 and `rnn_h256_b1_t150` 0.438-0.447 /
    /// 0.324-0.352. Hence 128 Kflop per thread per step on Intel's cores.
    ///
    /// Elsewhere [`step_share_work`] and [`MIN_STEP_WORK_PER_THREAD`], from a Zen 4 host
    /// (family 25 model 17, 2 vCPUs; `taskset -c 0,1 bench_table --threads 2 --modes
    /// infer,train --target-s 0.25`, a build sharing these loops against its parent, which ran
    /// them on one thread, alternated 6-8 rounds, ratio of the medians, infer / train): shared
    /// now, `rnn_h170_b1_t100` 0.971 / 0.967, `rnn_h176_b1_t100` 0.940 / 0.949,
    /// `rnn_h192_b1_t100` 0.901 / 0.881, `rnn_h148_b2_t100` 0.803 / 0.798, `rnn_h192_b2_t100`
    /// 0.755 / 0.804, `rnn_h120_b3_t100` 0.757 / 0.743, `rnn_h128_b3_t100` 0.786 / 0.822,
    /// `rnn_h104_b4_t100` 0.757 / 0.733, `rnn_h128_b4_t100` 0.780 / 0.815, `rnn_h96_b5_t100`
    /// 0.914 / 0.895, `rnn_h96_b6_t100` 0.888 / 0.889, `rnn_h76_b8_t100` 0.836 / 0.770,
    /// `rnn_h80_b8_t100` 0.824 / 0.756, `rnn_h72_b10_t100` 0.814 / 0.786, `rnn_h64_b12_t100`
    /// 0.847 / 0.856. Kept on one thread, where two were slower: `rnn_h140_b2_t100` 1.024 /
    /// 1.025 and `rnn_h144_b2_t100` 1.031 / 1.019 (8 rounds, a build sharing them), and with
    /// every loop shared (a scratch build, 4 rounds, fastest samples) `rnn_h160_b1_t100` 1.041
    /// / 0.987, `rnn_h128_b2_t100` 1.046 / 0.999. The Zen 5 host's figures above (at 64 Kflop
    /// of [`step_work`]) agree but for `rnn_h160_b1_t100`, faster shared there and kept on one
    /// thread by this rule. Pools of more than two threads were not measured.
    pub fn recurrence(panels: usize, rows: usize, n: usize, k: usize, steps: usize) -> Self {
        let work = step_work(rows, n, k);
        let intel = crate::isa::vendor_is_intel();
        let min_share = match intel {
            true => MIN_STEP_WORK_PER_THREAD_INTEL,
            false => MIN_STEP_WORK_PER_THREAD,
        };
        let share_work = step_share_work(rows, n, k, intel);
        let by_step = (share_work / min_share).max(1);
        let by_loop = (work.saturating_mul(steps) / MIN_FLOPS_PER_THREAD).max(1);
        let pool = pool_threads();
        let threads = pool.min(panels).min(by_step).min(by_loop).max(1);
        // The smallest loops the rule above shares lose to one thread when the cores are far
        // apart: they time their meetings (see `Chunks::finish_step`).
        let far = (!intel && threads > 1 && share_work / threads < FAR_MIN_WORK_PER_THREAD)
            .then_some(FAR_LATENCY);
        StepLoop {
            row_threads: pool.max(1),
            far,
            ..StepLoop::with_stall(threads, work)
        }
    }

    /// `threads` participants sharing steps of `work` flops: a chunk should take about
    /// `work / threads / 100` ns at 100 GFLOP/s (below one Zen 5 core's FMA rate in `f64`;
    /// the AVX2, NEON and portable paths are slower, which only makes the hand-over come
    /// sooner), so a wait 8 times that, plus [`STALL_FLOOR`] (which dominates for the `B = 1`
    /// loops: 66 us at `H = 256`), means a participant is not running.
    fn with_stall(threads: usize, work: usize) -> Self {
        let chunk_ns = (work / threads.max(1) / 100) as u64;
        StepLoop {
            threads,
            stall: STALL_FLOOR + Duration::from_nanos(chunk_ns.saturating_mul(8)),
            row_threads: 1,
            rows_forced: false,
            far: None,
        }
    }

    /// Participants the loop runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A loop on exactly `threads` participants (at least 1), whatever the pool holds, each
    /// step's panels split between them.
    #[cfg(test)]
    pub(crate) fn with_threads(threads: usize) -> Self {
        StepLoop {
            threads: threads.max(1),
            stall: STALL_FLOOR,
            row_threads: 1,
            rows_forced: false,
            far: None,
        }
    }

    /// A loop that splits its rows between up to `threads` threads wherever
    /// [`StepLoop::run_steps`] can (else one thread), whatever its size.
    #[cfg(test)]
    pub(crate) fn with_row_threads(threads: usize) -> Self {
        StepLoop {
            row_threads: threads.max(1),
            rows_forced: true,
            ..StepLoop::with_threads(1)
        }
    }

    /// The rows' split of a time loop of `steps` steps of operands `ops` whose rows go in
    /// register tiles of `tile` rows (see [`StepLoop::run_steps`]): the first row of each
    /// thread's part and the end, or `None` to split the panels (or run on one thread). Where
    /// the packed weights fit in L2 ([`ROW_SPLIT_MAX_BYTES`]), each thread's part of the whole
    /// loop is worth waking it ([`MIN_FLOPS_PER_THREAD`]: a loop of split rows meets nobody
    /// until its end), and the busiest thread has no larger a share of the rows than a split
    /// of the panels would give it of those (whole tiles of rows per thread: `B = 16` in
    /// two tiles of 8 splits evenly, `B = 32` in tiles of 12 does not).
    pub(super) fn row_split<F: Float>(
        &self,
        ops: &Operands<F>,
        tile: usize,
        steps: usize,
    ) -> Option<([usize; MAX_ROW_THREADS], usize)> {
        let (rows, tile) = (ops.m, tile.max(1));
        let full_tiles = rows / tile;
        let panels = ops.n.div_ceil(ops.nr.max(1));
        let weights = panels * ops.nr * ops.k * size_of::<F>();
        let work = 2usize
            .saturating_mul(rows)
            .saturating_mul(ops.n)
            .saturating_mul(ops.k)
            .saturating_mul(steps);
        let by_work = match self.rows_forced {
            true => usize::MAX,
            false => work / MIN_FLOPS_PER_THREAD,
        };
        let t = self
            .row_threads
            .min(full_tiles)
            .min(by_work)
            .min(MAX_ROW_THREADS - 1);
        let max_bytes = match crate::isa::vendor_is_intel() {
            true => ROW_SPLIT_MAX_BYTES_INTEL,
            false => ROW_SPLIT_MAX_BYTES,
        };
        if t < 2 || ops.k == 0 || !(self.rows_forced || weights <= max_bytes) {
            return None;
        }
        // Thread `c` starts at the tile nearest to `c * rows / t`, leaving a whole tile or more
        // to each thread after it (both strictly increasing in `c`, as `rows / t` is at least
        // a tile); the last takes the remainder's rows too.
        let mut starts = [rows; MAX_ROW_THREADS];
        for (c, start) in starts.iter_mut().enumerate().take(t) {
            let nearest = (c * rows + t * tile / 2) / (t * tile);
            *start = nearest.min(full_tiles + c - t) * tile;
        }
        let busiest_rows = (0..t)
            .map(|c| starts[c + 1] - starts[c])
            .max()
            .unwrap_or(rows);
        let busiest_panels = (0..t)
            .map(|c| panels * (c + 1) / t - panels * c / t)
            .max()
            .unwrap_or(panels);
        (self.rows_forced || busiest_rows * panels <= busiest_panels * rows).then_some((starts, t))
    }

    /// Whether this loop times its first meetings (see [`Chunks::finish_step`]).
    #[cfg(test)]
    pub(crate) fn times_meetings(&self) -> bool {
        self.far.is_some()
    }

    /// This loop timing its first meetings and running alone where they took longer than
    /// `far` (see [`Chunks::finish_step`]).
    #[cfg(test)]
    pub(crate) fn far_beyond(self, far: Duration) -> Self {
        StepLoop {
            far: Some(far),
            ..self
        }
    }

    /// This loop with a wait of `stall` for a claimed chunk before the waiter runs on alone.
    #[cfg(test)]
    pub(crate) fn stalling_after(self, stall: Duration) -> Self {
        StepLoop { stall, ..self }
    }

    /// Runs `step(s, panel_range)` for `s` in `0..steps`, covering `0..panels` at every step;
    /// every call of step `s` returns before any call of step `s + 1` starts. Subnormals are
    /// flushed to zero on every participating thread for the duration (see
    /// [`denormals_flushed`]). A panic in `step` stops the loop and propagates to the caller.
    /// Returns the threads that ran the loop to its end: 1 where a participant ran the rest of
    /// it alone (see [`Chunks::solo`]; most of what the steps wrote is then in its cache).
    pub fn run(
        &self,
        steps: usize,
        panels: usize,
        step: impl Fn(usize, Range<usize>) + Sync,
    ) -> usize {
        if self.threads <= 1 || steps == 0 {
            denormals_flushed(|| {
                for s in 0..steps {
                    step(s, 0..panels);
                }
            });
            return 1;
        }
        let chunks = Chunks {
            n: self.threads,
            steps,
            panels,
            next_step: (0..self.threads).map(|_| Padded::default()).collect(),
            done: (0..self.threads).map(|_| DoneMark::default()).collect(),
            poisoned: AtomicBool::new(false),
            solo: AtomicUsize::new(NOBODY),
            stall: self.stall,
            far: self.far,
            far_hit: AtomicBool::new(false),
            start: Instant::now(),
        };
        let chunks = &chunks;
        let step = &step;
        rayon::scope(|scope| {
            for me in 1..self.threads {
                scope.spawn(move |_| chunks.work(me, step));
            }
            chunks.work(0, step);
        });
        if chunks.far_hit.load(Ordering::Relaxed) {
            FAR_SEEN.set(Some(Instant::now()));
        }
        match chunks.solo.load(Ordering::Relaxed) {
            NOBODY => self.threads,
            _ => 1,
        }
    }

    /// Runs `unit(u, ahead)` exactly once for every unit `u` in `0..bound(threads)`: the
    /// one-shot products (the hoisted GEMMs), not a time loop. Part `c` of the units,
    /// `bound(c)..bound(c + 1)` (`bound(0) = 0`, never decreasing), belongs to participant `c`
    /// (the caller is participant 0), which runs it from the front, with `ahead` telling it
    /// that the next unit of its part is still unclaimed (the one it will most likely run
    /// next); a participant whose part is used up takes the other parts' units from their
    /// backs, one at a time, while two or more are left there or their owner has not begun
    /// (see [`Parts::claim`]). A part's owner keeps its operands in its cache as a static
    /// split does, and a participant slowed down (its core shared with another process)
    /// hands over what it has not begun instead of holding up the call. Whoever runs a unit,
    /// it computes the same, so the results do not depend on who ran what. Subnormals are
    /// flushed as in [`StepLoop::run`]; a panic in `unit` propagates to the caller.
    pub fn run_parts(
        &self,
        bound: impl Fn(usize) -> usize + Sync,
        unit: impl Fn(usize, bool) + Sync,
    ) {
        let t = self.threads.max(1);
        let total = bound(t);
        // Each part's cursor packs its front and back into one word (a claim is one
        // compare-exchange); units beyond what half a word counts run single-threaded.
        if t <= 1 || total >= 1 << PART_BITS {
            denormals_flushed(|| {
                for u in 0..total {
                    unit(u, u + 1 < total);
                }
            });
            return;
        }
        let parts = Parts {
            cursors: (0..t)
                .map(|c| Padded(AtomicUsize::new((bound(c) << PART_BITS) | bound(c + 1))))
                .collect(),
            starts: (0..t).map(&bound).collect(),
            done: Padded::default(),
            total,
            poisoned: AtomicBool::new(false),
        };
        let (parts, unit) = (&parts, &unit);
        rayon::scope(|scope| {
            for me in 1..t {
                scope.spawn(move |_| parts.work(me, unit, false));
            }
            parts.work(0, unit, true);
        });
    }

    /// Runs steps `0..n` of `steps`, all `panels` of each: in one kernel call on this thread
    /// when the loop is single-threaded ([`super::StepsFn`]); with its rows split between
    /// threads ([`StepLoop::row_split`]), in one such call per thread over its rows; else as
    /// [`StepLoop::run`] with one kernel call per participant's chunk of each step. The same
    /// tiles compute every element every way, so the results are bitwise identical. Returns
    /// the threads that ran the loop to its end (1 where one ran the rest alone: see
    /// [`StepLoop::run`]).
    ///
    /// The rows' split, measured against the panels' (`bench_table --threads 2 --modes
    /// infer,train --target-s 0.3` under `taskset -c 0-1`, the two builds alternated 10
    /// rounds, ratio of the medians, rows / panels; Intel Xeon host, model 207):
    /// `rnn_h64_b16_t100` infer 0.818, train 0.885 (one thread before: its steps are too
    /// small to share); `rnn_h128_b16_t100` 0.871, 0.983; `rnn_h256_b16_t50` 0.865, 0.906;
    /// `rnn_h512_b16_t50` 0.978, 0.981; `rnn_h256_b24_t100` 0.916, 0.966. Against one thread
    /// (the same command with `--threads 1` under `taskset -c 0`, alternated with the two
    /// splits' builds on 2 threads, 6 rounds, ratio of the medians): `rnn_h64_b16_t64` 1.15x infer, 1.02x train; `rnn_h96_b16_t40`
    /// 1.32x, 1.29x. With `I = 1` (`rnn_h512_b16_t500_i1`) neither split gained much over one
    /// thread (1.18x, 1.20x), presumably because its projection (`K = 1`, on one thread) leaves
    /// every step's rows in the first core's cache (not examined further).
    ///
    /// # Safety
    ///
    /// The CPU must support `isa`, and `steps` must meet the [`Steps`] contract for steps
    /// `0..n` over `panels` panels.
    pub unsafe fn run_steps<F: Float, S: Steps<F>>(
        &self,
        isa: Isa,
        steps: &S,
        n: usize,
        panels: usize,
    ) -> usize {
        // Every step has the same rows (the `Steps` contract's shape); step 0's say how many,
        // and how far apart.
        let (rows, lda) = if n > 0 {
            let ops = steps.step(0).0;
            (ops.m, ops.lda)
        } else {
            (0, 0)
        };
        // Step 1's operands (step 0's may have `K = 0`) decide whether the rows are split.
        let tile = super::step_tile_rows::<F>(isa, rows, lda);
        // Steps carrying tiles of another product (`Steps::ride`) all run on this thread.
        let alone = steps.has_ride();
        let split = match n {
            0 | 1 => None,
            _ if alone => None,
            _ => self.row_split(&steps.step(1).0, tile, n),
        };
        // Every branch runs the steps as `RowsOf` them (all the rows at `r0 = 0` where they
        // are not split): one instantiation of every path's time loop and step kernels per
        // `Steps` type, where `S` itself beside `RowsOf<S>` made two (those loops and kernels
        // are most of the library's compile time).
        let all = RowsOf {
            steps,
            r0: 0,
            m: rows,
        };
        let f = super::select_steps::<F, RowsOf<'_, S>>(isa, rows, lda);
        if let Some((starts, threads)) = split {
            // Whole tiles of rows per thread, the remainder with the last: every row is in
            // the tile it has in one call over all rows (tiles from row 0), chosen for all
            // the rows, so the bits are the same. Each thread runs all the steps of its rows
            // in one call, as a single thread runs them all.
            let part = |c: usize| {
                let (r0, r1) = (starts[c], starts[c + 1]);
                let sub = RowsOf {
                    steps,
                    r0,
                    m: r1 - r0,
                };
                // SAFETY: `isa` is supported and `steps` meets its contract (this function's
                // contract), rows independent included: `sub`'s steps touch only rows
                // `r0..r1` of what the steps write, which no other thread's rows touch.
                denormals_flushed(|| unsafe { f(&sub, n, 0..panels) });
            };
            let part = &part;
            rayon::scope(|scope| {
                for c in 1..threads {
                    scope.spawn(move |_| part(c));
                }
                part(0);
            });
            threads
        } else if self.threads <= 1 || alone {
            // SAFETY: `isa` is supported and `steps` meets its contract (this function's
            // contract), which `all` (its rows `0..rows`) keeps; the loop runs on this thread
            // only.
            denormals_flushed(|| unsafe { f(&all, n, 0..panels) });
            1
        } else {
            let kernel = super::select_step_kernel::<F, Shifted<S::Epi>>(isa, rows, lda);
            // Whether a step's first tiles fetch the next panel (`Operands::for_step_tiles`),
            // decided once: every step has the same rows.
            let fetch_panels = all.step(0).0.for_step_tiles(tile).fetch_panels;
            self.run(n, panels, |s, range| {
                let (ops, epi) = all.step(s);
                let ops = Operands {
                    fetch_panels,
                    ..ops
                };
                ops.fetch_a();
                // SAFETY: `isa` is supported (this function's contract); `run` starts step
                // `s` only after every chunk of the steps before it returned and hands
                // concurrent calls disjoint panel ranges, which is what the `Steps`
                // contract needs.
                unsafe { kernel(&ops, &epi, range) }
            })
        }
    }
}

/// Rows `r0..r0 + m` of every step of a [`Steps`]: `A`'s rows and the product's from `r0`,
/// the epilogue's rows shifted by `r0` ([`Shifted`]).
struct RowsOf<'a, S> {
    steps: &'a S,
    r0: usize,
    m: usize,
}

// SAFETY: the operands are `steps`' rows `r0..r0 + m` (inside its rows: `run_steps` splits
// them) and the epilogue is `steps`' for those rows, so `steps`' contract carries over: the
// memory contract per step, disjoint writes for disjoint panels, step 1's operands but for
// `a`, and rows independent.
unsafe impl<F: Float, S: Steps<F>> Steps<F> for RowsOf<'_, S> {
    type Epi = Shifted<S::Epi>;

    #[inline(always)]
    fn step(&self, s: usize) -> (Operands<F>, Self::Epi) {
        let (ops, epi) = self.steps.step(s);
        (ops.rows(self.r0, self.m), Shifted { epi, r0: self.r0 })
    }

    #[inline(always)]
    fn has_ride(&self) -> bool {
        self.steps.has_ride()
    }

    /// `steps`' tile: `run_steps` runs steps with rides as one `RowsOf` of all their rows.
    #[inline(always)]
    fn ride(&self, s: usize) -> Option<super::RideTile<'_, F>> {
        let tile = self.steps.ride(s);
        debug_assert!(tile.is_none() || (self.r0 == 0 && self.m == self.steps.step(s).0.m));
        tile
    }
}

/// An epilogue whose row `r` is row `r0 + r` of `epi`'s.
struct Shifted<E> {
    epi: E,
    r0: usize,
}

impl<F, E: Epilogue<F>> Epilogue<F> for Shifted<E> {
    #[inline(always)]
    fn row_mode(&self, r: usize) -> RowMode {
        self.epi.row_mode(self.r0 + r)
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
        // SAFETY: row `r` of this epilogue is row `r0 + r` of `epi`, inside its rows (the
        // caller's contract for `r`, `RowsOf`'s rows inside `epi`'s); the rest is passed on.
        unsafe { self.epi.apply(mode, self.r0 + r, col, acc, lanes) }
    }

    #[inline(always)]
    fn fetch(&self, r0: usize, rows: usize, c0: usize, ncols: usize) {
        self.epi.fetch(self.r0 + r0, rows, c0, ncols)
    }
}

/// Bits of a [`Parts`] cursor's back (its front takes the rest of the word).
const PART_BITS: u32 = usize::BITS / 2;

/// The shared state of one [`StepLoop::run_parts`] call.
struct Parts {
    /// Per part, its unclaimed units `front..back` as `front << PART_BITS | back`: the owner
    /// claims the front, the others the back, each by one compare-exchange, so every unit is
    /// claimed once.
    cursors: Vec<Padded>,
    /// Each part's first unit (its owner has begun once its front has moved past it).
    starts: Vec<usize>,
    /// Units finished (Release by each, Acquire by the caller's wait).
    done: Padded,
    total: usize,
    /// Set when a participant unwinds, so the caller stops waiting for its unit.
    poisoned: AtomicBool,
}

impl Parts {
    /// Claims part `p`'s front unit (and whether another stays behind it), or its back one.
    /// The back only while two or more are left, or the owner has not begun: where the
    /// participants keep pace, the owner is then at its last unit or two when another has
    /// run its part, and that unit runs where its operands are (the owner's part of `B` in
    /// its L2) instead of being fetched by the other core at the end of the call.
    fn claim(&self, p: usize, front: bool) -> Option<(usize, bool)> {
        let cursor = &self.cursors[p].0;
        let mask = (1usize << PART_BITS) - 1;
        let mut v = cursor.load(Ordering::Relaxed);
        loop {
            let (f, b) = (v >> PART_BITS, v & mask);
            if f >= b || (!front && b - f < 2 && f > self.starts[p]) {
                return None;
            }
            let (next, got) = match front {
                true => (v + (1 << PART_BITS), (f, f + 1 < b)),
                false => (v - 1, (b - 1, false)),
            };
            match cursor.compare_exchange_weak(v, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(got),
                Err(now) => v = now,
            }
        }
    }

    /// Participant `me`: its own part, then the others' from their backs; the caller then
    /// waits for every unit (a helper returns, and `rayon::scope` waits for it).
    fn work(&self, me: usize, unit: &(impl Fn(usize, bool) + Sync), wait: bool) {
        let _guard = PoisonOnPanic(&self.poisoned);
        let n = self.cursors.len();
        denormals_flushed(|| {
            for p in (0..n).map(|q| (me + q) % n) {
                while let Some((u, ahead)) = self.claim(p, p == me) {
                    if self.poisoned.load(Ordering::Relaxed) {
                        return;
                    }
                    unit(u, ahead);
                    // Release: this unit's writes happen before the caller sees it done.
                    self.done.0.fetch_add(1, Ordering::Release);
                }
            }
            let mut spins = 0u32;
            while wait && self.done.0.load(Ordering::Acquire) < self.total {
                if self.poisoned.load(Ordering::Relaxed) {
                    return;
                }
                pause(&mut spins);
            }
        })
    }
}

/// How long after a time loop went on alone for cores far apart (the far rule, see
/// [`Chunks::finish_step`]) the calls from its thread whose loops that rule times run alone
/// ([`alone_while_far`]). The host's far spells last seconds; a call from this thread after
/// this times its loop's meetings again (and renews the verdict while the cores are apart).
pub(super) const FAR_KEEP: Duration = Duration::from_millis(50);

thread_local! {
    /// When a shared time loop called from this thread last went on alone for cores far
    /// apart ([`FAR_KEEP`]).
    static FAR_SEEN: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set while a call runs alone on this thread ([`alone_while_far`]).
    static ALONE: Cell<bool> = const { Cell::new(false) };
}

/// The threads of the caller's rayon pool as this crate's parallel regions count them: one
/// inside a call that [`alone_while_far`] runs alone.
pub fn pool_threads() -> usize {
    if ALONE.get() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Runs `f`, one call of the library whose time loop has `steps` steps of `rows` rows with
/// packed `[k, n]` weights in `panels` panels, on this thread alone (every product, pack and
/// loop in it sees a pool of one, [`pool_threads`]) when that loop is one of those the far
/// rule times ([`StepLoop::recurrence`]) and a loop called from this thread went on alone for
/// cores far apart within the last [`FAR_KEEP`]; else just runs `f`. While the Zen 4 host's
/// vCPUs were apart, training at `rnn_h76_b8_t100` on 2 threads took 1.03 ms against 0.59 on
/// one with only the loops going alone (phase timers in a scratch build, 3 far runs of 245,
/// medians, ms, 2 threads / 1: the sweep 0.265 / 0.101, the split packs of `X` and
/// `h_(t-1)` 0.102 / 0.010 and 0.121 / 0.010, the products 0.062-0.104 / 0.087-0.095).
/// With this (`bash benches/far_ab.sh PARENT THIS 420 rnn_h76_b8_t100 rnn_h120_b3_t100
/// rnn_h170_b1_t100`: `taskset -c 0,1 bench_table --threads 2 --modes infer,train --target-s
/// 0.1`, this build and its parent alternated for 7 minutes, each run classed by a
/// core-to-core round trip before and after it, medians, ms, parent / this, train and infer;
/// measured with a C ping-pong of the same form before that script existed): while apart
/// (3 / 8 runs) `rnn_h76_b8_t100` 0.931 / 0.585 and 0.209 / 0.199, `rnn_h120_b3_t100` 0.607 /
/// 0.527 and 0.201 / 0.178, `rnn_h170_b1_t100` 0.539 / 0.440 and 0.232 / 0.159 (one thread's
/// times: 0.59, 0.53, 0.44 in training); while near (230 / 235 runs) 1.000-1.007 of the
/// parent's.
pub fn alone_while_far<R>(
    panels: usize,
    rows: usize,
    n: usize,
    k: usize,
    steps: usize,
    f: impl FnOnce() -> R,
) -> R {
    let fresh = FAR_SEEN.get().is_some_and(|t| t.elapsed() < FAR_KEEP);
    if !fresh
        || ALONE.get()
        || StepLoop::recurrence(panels, rows, n, k, steps)
            .far
            .is_none()
    {
        return f();
    }
    /// Ends the call's solitude however `f` returns.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ALONE.set(false);
        }
    }
    ALONE.set(true);
    let _reset = Reset;
    f()
}

/// A counter alone on its cache line (participants poll these while others update theirs).
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicUsize);

/// A chunk's done mark ([`Chunks::done`]) with, on the steps a loop times, when it was set
/// (ns since the loop began), on the same line, so the waiter that sees the mark reads the
/// time with it.
#[derive(Default)]
#[repr(align(64))]
struct DoneMark {
    step: AtomicUsize,
    at: std::sync::atomic::AtomicU64,
}

/// The shared state of one threaded loop.
struct Chunks {
    n: usize,
    steps: usize,
    panels: usize,
    /// `next_step[c]`: the first step whose chunk `c` nobody has claimed yet. A chunk is
    /// claimed by moving it from `s` to `s + 1`, so each runs exactly once.
    next_step: Vec<Padded>,
    /// `done[c]`: the steps whose chunk `c` is done (chunk `c` of step `s` raises it from `s`
    /// to `s + 1`; a chunk's steps finish in order, since no step starts before the last
    /// ended). One line per chunk, each written by whoever ran that chunk and read by the
    /// rest: at a step's end a waiter reads each other chunk's line once it changes, where a
    /// single shared counter took a locked increment from every participant and bounced
    /// between the cores for each.
    done: Vec<DoneMark>,
    /// Set when a participant unwinds, so the others stop waiting for its chunk.
    poisoned: AtomicBool,
    /// The participant that runs every step alone from the next on, once one has waited
    /// longer than `stall` for a claimed chunk, or timed its meetings beyond `far`
    /// ([`NOBODY`] until then).
    solo: AtomicUsize,
    stall: Duration,
    /// [`StepLoop`]'s `far`: the meeting time beyond which a participant runs alone.
    far: Option<Duration>,
    /// Set when `solo` was set for meetings beyond `far` (not for a stall).
    far_hit: AtomicBool,
    /// When the loop began (the done marks' clock).
    start: Instant,
}

/// [`Chunks::solo`] while every participant runs its own chunks.
const NOBODY: usize = usize::MAX;

impl Chunks {
    /// Participant `me`'s part of the loop: its own chunk of every step, plus any chunk of a
    /// step left unclaimed when it has run its own; once another participant runs the loop
    /// alone, nothing more.
    fn work(&self, me: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) {
        let _guard = PoisonOnPanic(&self.poisoned);
        denormals_flushed(|| {
            let mut meetings = Meetings::default();
            for s in 0..self.steps {
                // Every chunk of step s - 1 is done here (waited below, or s = 0).
                let solo = self.solo.load(Ordering::Relaxed);
                if solo != NOBODY && solo != me {
                    return;
                }
                self.try_run(me, s, step);
                if !self.finish_step(me, s, step, &mut meetings) {
                    return;
                }
            }
        })
    }

    /// Runs chunk `c` of step `s` if nobody has claimed it. Another participant's claim is
    /// looked at before it is tried: a locked compare-exchange takes the line from its owner
    /// even when it fails, and in a healthy loop the owner has claimed its chunk already.
    fn try_run(&self, c: usize, s: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) {
        let claim = &self.next_step[c].0;
        let claimed = claim.load(Ordering::Relaxed) == s
            && claim
                .compare_exchange(s, s + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if claimed {
            step(s, self.panels * c / self.n..self.panels * (c + 1) / self.n);
            if self.timed(s) {
                self.done[c].at.store(self.now_ns(), Ordering::Relaxed);
            }
            // Release: this chunk's writes (and its time) happen before anyone sees it done.
            // Only this participant writes `done[c]` for step `s` (it holds the claim).
            self.done[c].step.store(s + 1, Ordering::Release);
        }
    }

    /// Whether every chunk of step `s` is done (Acquire, pairing with [`Chunks::try_run`]'s
    /// Release: the chunks' writes are visible after).
    fn step_done(&self, s: usize) -> bool {
        self.done.iter().all(|d| d.step.load(Ordering::Acquire) > s)
    }

    /// Whether step `s`'s meetings are timed: the first steps after step 0 (where a helper
    /// may still be arriving) of a loop with `far` set.
    fn timed(&self, s: usize) -> bool {
        self.far.is_some() && (1..=FAR_SAMPLE_STEPS).contains(&s)
    }

    /// Nanoseconds since the loop began.
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs the unclaimed chunks of step `s`, then waits until every chunk of it is done.
    /// Returns false if the loop was poisoned. Never deadlocks: after the stealing pass every
    /// chunk of the step is claimed by a participant that is running it, and running a chunk
    /// waits for nothing.
    ///
    /// Two rules for a machine shared with other processes, where a participant can lose its
    /// core for milliseconds. Stealing at once, not after a spin: a participant that has not
    /// claimed its chunk by the time another has run one is late (descheduled, or not yet
    /// woken). And a wait for a claimed chunk longer than the loop's `stall` (a multiple of a
    /// chunk's expected time) hands the rest of the loop to the waiter alone: that chunk's
    /// holder lost its core while running it, and would hold every step it loses it in. With
    /// 1 of the 2 vCPUs taken by a spinning process (`yes`), `rnn_h256_b1_t150` infer, 2
    /// threads: 4.0 ms with a 1024-spin wait before stealing, 0.36 stealing at once, 0.38
    /// single-threaded; with both vCPUs taken: 0.99 ms stealing at once, 0.38 with the hand-over,
    /// 0.35 single-threaded (`bench_table --threads 2 --target-s 0.5`, median of 3 rounds).
    ///
    /// A third for cores far apart (`far` set: the smallest loops shared on the non-Intel
    /// cores). On the first steps after step 0 each done mark carries its time, and a
    /// participant that waited for the step's last one takes the time from that mark to its
    /// seeing it: one meeting. Once two meetings have taken longer than `far` (the least of
    /// them), the caller runs the rest of the loop alone: the cores are on different
    /// dies, where each step's meeting and the other core's half of `h_(t-1)` cost more than
    /// sharing the step saves. The Zen 4 host's vCPUs were apart about a quarter of the time
    /// (2026-12-05, `taskset -c 0,1 bench_table --threads 2 --modes infer --target-s 0.2`,
    /// medians in ms, near / far / one thread): `rnn_h76_b8_t100` 0.19 / 0.34-0.45 /
    /// 0.20-0.23, `rnn_h120_b3_t100` 0.14 / 0.24-0.27 / 0.18-0.20; `rnn_h256_b1_t150` (above
    /// [`FAR_MIN_WORK_PER_THREAD`], not timed) 0.34 / 0.43-0.47 / 0.54-0.56.
    /// With this rule (the same command while the two were apart, `--target-s 0.1`, three
    /// runs, before / after): `rnn_h76_b8_t100` inference 0.34-0.35 / 0.21-0.24 ms. Training
    /// stayed 1.6-1.8x one thread's time (0.95-1.07 ms against 0.59): its hoisted products
    /// and packs split between the threads too, and cross the dies the same way. Its cost
    /// while they were near (`bench_table --threads 2 --modes infer,train --target-s 0.3`, 8
    /// alternated rounds, ratio of the medians, after / before): 0.994-1.017 on
    /// `rnn_h76_b8_t100`, `rnn_h120_b3_t100`, `rnn_h170_b1_t100`, `rnn_h64_b12_t100`,
    /// `rnn_h104_b4_t100` (fastest samples 0.994-1.016).
    fn finish_step(
        &self,
        me: usize,
        s: usize,
        step: &(impl Fn(usize, Range<usize>) + Sync),
        meetings: &mut Meetings,
    ) -> bool {
        for c in 0..self.n {
            self.try_run(c, s, step);
        }
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        let mut waited = false;
        while !self.step_done(s) {
            waited = true;
            if self.poisoned.load(Ordering::Relaxed) {
                return false;
            }
            pause(&mut spins);
            // Once yielding, every pass: a yield can hand the core away for a time slice, so
            // `CLOCK_EVERY_SPINS` of them could outlast the holder's stall unnoticed.
            if spins >= YIELD_AFTER_SPINS || spins.is_multiple_of(CLOCK_EVERY_SPINS) {
                let now = Instant::now();
                // Looked at again after the clock: if this participant was itself off its
                // core, the chunk may have finished meanwhile and nobody stalled.
                if now.duration_since(*since.get_or_insert(now)) > self.stall && !self.step_done(s)
                {
                    // Its holder is not running (a core taken by another process): the rest
                    // of the loop runs here alone, so the holder's next time off the core
                    // stalls nothing. The other participants stop at their next step; the
                    // chunks already claimed still run once, by their claimers.
                    let _ = self.solo.compare_exchange(
                        NOBODY,
                        me,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
        }
        if let (Some(far), true) = (self.far, waited && self.timed(s)) {
            // The step's last done mark was seen just now (a mark of step s + 1, set
            // meanwhile, only makes the meeting look shorter); the clock read after the
            // marks' times, so none is later.
            let last = self.done.iter().map(|d| d.at.load(Ordering::Relaxed)).max();
            let now = self.now_ns();
            meetings.add(Duration::from_nanos(
                now.saturating_sub(last.unwrap_or(now)),
            ));
            if meetings.count >= FAR_MIN_SAMPLES && meetings.least > far {
                // The caller (participant 0) goes on alone, whoever timed the meetings: it
                // runs the products before and after the loop, which read what the loop reads
                // and writes (on a helper's core those would cross the dies every step).
                let _ = self
                    .solo
                    .compare_exchange(NOBODY, 0, Ordering::Relaxed, Ordering::Relaxed);
                self.far_hit.store(true, Ordering::Relaxed);
            }
        }
        true
    }
}

/// The meetings one participant of a loop timed ([`Chunks::finish_step`]): how many, and the
/// shortest.
#[derive(Clone, Copy, Debug)]
struct Meetings {
    count: usize,
    least: Duration,
}

impl Default for Meetings {
    fn default() -> Self {
        Meetings {
            count: 0,
            least: Duration::MAX,
        }
    }
}

impl Meetings {
    fn add(&mut self, d: Duration) {
        self.count += 1;
        self.least = self.least.min(d);
    }
}

/// Marks the loop poisoned when its thread unwinds, so the others stop waiting.
struct PoisonOnPanic<'a>(&'a AtomicBool);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `f` with subnormal inputs and results flushed to zero (x86_64: the MXCSR's FTZ and DAZ
/// bits, restored afterwards, also on unwinding). A recurrent state decaying toward zero would
/// otherwise cross the subnormal range, where arithmetic can be many times slower. Effect on
/// results: a value that would be subnormal (below 1.2e-38 in `f32`, 2.2e-308 in `f64`)
/// becomes zero, far below any tolerance of the recurrences. Elsewhere `f` just runs (also
/// under Miri, which cannot run the MXCSR instructions).
pub fn denormals_flushed<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        struct Restore(u32);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_mxcsr(self.0);
            }
        }
        const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
        let saved = get_mxcsr();
        let _restore = Restore(saved);
        set_mxcsr(saved | FTZ_DAZ);
        f()
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    {
        f()
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn get_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: `stmxcsr` stores the 4-byte MXCSR into `v`, a valid, writable u32; SSE is part
    // of the x86_64 baseline.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
    }
    v
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn set_mxcsr(v: u32) {
    // SAFETY: `ldmxcsr` reads the 4-byte value `v`; the callers only toggle the FTZ and DAZ
    // bits of a value read from MXCSR (no reserved bit set, so no fault), which changes
    // rounding of subnormals only, for this thread.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags, readonly));
    }
}
