//! The time loop's threading. Each step's panels are split into `threads` contiguous chunks,
//! and chunk `c` belongs to participant `c` (the caller is participant 0): every step, a
//! participant runs its own chunk, so each core keeps reading the same part of the packed
//! weights from its own cache. A chunk of step `s + 1` starts once every chunk of step `s`
//! is done. A participant that has finished its chunk and still waits after a short spin
//! runs any chunk of the step nobody has claimed yet, so the loop completes even when a
//! helper is never scheduled (a busy pool, a call from inside a parallel iterator): helpers
//! only speed it up, nothing waits for them to arrive. One `rayon::scope` covers the whole
//! loop (a rayon join per step costs far more than a step of a small recurrence). `K` is
//! never split, so every element is computed by the same instructions whoever runs its
//! chunk: results are bitwise identical for any thread count.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::Steps;
use crate::float::Float;
use crate::isa::Isa;

/// Work (flops per step, per thread) below which a loop stays on the calling thread. Handing a
/// chunk to another core costs well under a microsecond on an idle machine, but waking the
/// pool and sharing a busy machine cost far more: measured on the shared 2-vCPU Zen 5 under
/// load, 2 threads lost even at 8 Mflop per step, so this errs high (4 Mflop, about 20 us of
/// one core's arithmetic) and keeps every B = 1 workload single-threaded.
const MIN_FLOPS_PER_THREAD: usize = 1 << 22;

/// Spins a participant waits for a step's other chunks before it runs the unclaimed ones
/// itself (a few microseconds: longer than two busy participants drift apart in a step,
/// shorter than waking a sleeping pool thread).
const STEAL_AFTER_SPINS: u32 = 1 << 10;

/// Spins before a waiting participant starts yielding its core (the machine may be shared).
const YIELD_AFTER_SPINS: u32 = 1 << 12;

/// How a time loop runs: on how many threads.
#[derive(Clone, Copy, Debug)]
pub struct StepLoop {
    threads: usize,
}

impl StepLoop {
    /// A loop of steps of `flops` each over `panels` panels, on the caller's rayon pool
    /// (`rayon::current_num_threads()`), single-threaded when a step is too small to share.
    pub fn new(panels: usize, flops: usize) -> Self {
        let by_work = (flops / MIN_FLOPS_PER_THREAD).max(1);
        let threads = rayon::current_num_threads().min(panels).min(by_work).max(1);
        StepLoop { threads }
    }

    /// Participants the loop runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A loop on exactly `threads` participants (at least 1), whatever the pool holds.
    #[cfg(test)]
    pub(crate) fn with_threads(threads: usize) -> Self {
        StepLoop {
            threads: threads.max(1),
        }
    }

    /// Runs `step(s, panel_range)` for `s` in `0..steps`, covering `0..panels` at every step;
    /// every call of step `s` returns before any call of step `s + 1` starts. Subnormals are
    /// flushed to zero on every participating thread for the duration (see
    /// [`denormals_flushed`]). A panic in `step` stops the loop and propagates to the caller.
    pub fn run(&self, steps: usize, panels: usize, step: impl Fn(usize, Range<usize>) + Sync) {
        if self.threads <= 1 || steps == 0 {
            denormals_flushed(|| {
                for s in 0..steps {
                    step(s, 0..panels);
                }
            });
            return;
        }
        let chunks = Chunks {
            n: self.threads,
            steps,
            panels,
            next_step: (0..self.threads).map(|_| Padded::default()).collect(),
            done: Padded::default(),
            poisoned: AtomicBool::new(false),
        };
        let chunks = &chunks;
        let step = &step;
        rayon::scope(|scope| {
            for me in 1..self.threads {
                scope.spawn(move |_| chunks.work(me, step));
            }
            chunks.work(0, step);
        });
    }

    /// Runs steps `0..n` of `steps`, all `panels` of each: in one kernel call on this thread
    /// when the loop is single-threaded ([`super::StepsFn`]), else as [`StepLoop::run`] with
    /// one kernel call per participant's chunk of each step. The same tiles compute every
    /// element either way, so the results are bitwise identical.
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
    ) {
        if self.threads <= 1 {
            let f = super::select_steps::<F, S>(isa);
            // SAFETY: `isa` is supported and `steps` meets its contract (this function's
            // contract); the loop runs on this thread only.
            denormals_flushed(|| unsafe { f(steps, n, 0..panels) });
        } else {
            let kernel = super::select::<F, S::Epi>(isa);
            self.run(n, panels, |s, range| {
                let (ops, epi) = steps.step(s);
                // SAFETY: `isa` is supported (this function's contract); `run` starts step
                // `s` only after every chunk of the steps before it returned and hands
                // concurrent calls disjoint panel ranges, which is what the `Steps`
                // contract needs.
                unsafe { kernel(&ops, &epi, range) }
            });
        }
    }
}

/// A counter alone on its cache line (participants poll these while others update theirs).
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicUsize);

/// The shared state of one threaded loop.
struct Chunks {
    n: usize,
    steps: usize,
    panels: usize,
    /// `next_step[c]`: the first step whose chunk `c` nobody has claimed yet. A chunk is
    /// claimed by moving it from `s` to `s + 1`, so each runs exactly once.
    next_step: Vec<Padded>,
    /// Chunks completed over all steps: every chunk of the steps before `s` is done once
    /// this reaches `s * n`.
    done: Padded,
    /// Set when a participant unwinds, so the others stop waiting for its chunk.
    poisoned: AtomicBool,
}

impl Chunks {
    /// Participant `me`'s part of the loop: its own chunk of every step, plus any chunk of a
    /// step left unclaimed while it waits.
    fn work(&self, me: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) {
        let _guard = PoisonOnPanic(&self.poisoned);
        denormals_flushed(|| {
            for s in 0..self.steps {
                // Every chunk of step s - 1 is done here (waited below, or s = 0).
                self.try_run(me, s, step);
                if !self.finish_step(s, step) {
                    return;
                }
            }
        })
    }

    /// Runs chunk `c` of step `s` if nobody has claimed it.
    fn try_run(&self, c: usize, s: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) {
        let claimed = self.next_step[c]
            .0
            .compare_exchange(s, s + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if claimed {
            step(s, self.panels * c / self.n..self.panels * (c + 1) / self.n);
            // Release: this chunk's writes happen before anyone sees it counted.
            self.done.0.fetch_add(1, Ordering::Release);
        }
    }

    /// Waits until every chunk of step `s` is done, running the step's unclaimed chunks
    /// after a short spin. Returns false if the loop was poisoned. Never deadlocks: after the
    /// stealing pass every chunk of the step is claimed by a participant that is running it,
    /// and running a chunk waits for nothing.
    fn finish_step(&self, s: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) -> bool {
        let target = (s + 1) * self.n;
        let mut spins = 0u32;
        // Acquire pairs with the Release increments: the chunks' writes are visible after.
        while self.done.0.load(Ordering::Acquire) < target {
            if self.poisoned.load(Ordering::Relaxed) {
                return false;
            }
            spins = spins.saturating_add(1);
            if spins == STEAL_AFTER_SPINS {
                for c in 0..self.n {
                    self.try_run(c, s, step);
                }
            } else if spins < YIELD_AFTER_SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
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
