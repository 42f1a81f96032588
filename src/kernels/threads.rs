//! The time loop's threading: each step's panels are split into contiguous ranges, one per
//! thread, and the threads meet at a spin barrier after every step, all inside ONE
//! `rayon::broadcast` for the whole loop (a rayon join per step costs far more than a step
//! of a small recurrence). `K` is never split, so every element is computed by the same
//! instructions whatever the thread count: results are bitwise identical.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Work (flops per step, per thread) below which a loop stays on the calling thread. A spin
/// barrier costs well under a microsecond on an idle machine, but waking the pool and
/// sharing a busy machine cost far more: measured on the shared 2-vCPU Zen 5 under load, 2
/// threads lost even at 8 Mflop per step, so this errs high (4 Mflop, about 20 us of one
/// core's arithmetic) and keeps every B = 1 workload single-threaded.
const MIN_FLOPS_PER_THREAD: usize = 1 << 22;

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

    /// Threads the loop will use.
    #[allow(dead_code)]
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `step(s, panels_of_this_thread)` for `s` in `0..steps`, in order; all threads
    /// finish step `s` before any starts step `s + 1`. Subnormals are flushed to zero on every
    /// participating thread for the duration (see [`denormals_flushed`]).
    pub fn run(&self, steps: usize, panels: usize, step: impl Fn(usize, Range<usize>) + Sync) {
        if self.threads <= 1 {
            denormals_flushed(|| {
                for s in 0..steps {
                    step(s, 0..panels);
                }
            });
            return;
        }
        let n = self.threads;
        let barrier = SpinBarrier::new(n);
        rayon::broadcast(|ctx| {
            let i = ctx.index();
            if i >= n {
                return;
            }
            let range = panels * i / n..panels * (i + 1) / n;
            let _guard = PoisonOnPanic(&barrier);
            denormals_flushed(|| {
                for s in 0..steps {
                    step(s, range.clone());
                    barrier.wait();
                }
            });
        });
    }
}

/// A reusable spin barrier for a fixed number of threads; spins briefly, then yields (the
/// machine may be shared), and panics instead of hanging if a participant panicked.
struct SpinBarrier {
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
    n: usize,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        SpinBarrier {
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            n,
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // Nobody can arrive for the next round before the generation moves on.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation + 1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("a thread of the time loop panicked");
            }
            if spins < 1 << 14 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Marks the barrier poisoned when its thread unwinds, so the others stop waiting.
struct PoisonOnPanic<'a>(&'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `f` with subnormal inputs and results flushed to zero (x86_64: the MXCSR's FTZ and DAZ
/// bits, restored afterwards, also on unwinding). A recurrent state decaying toward zero would
/// otherwise cross the subnormal range, where arithmetic can be many times slower. Effect on
/// results: a value that would be subnormal (below 1.2e-38 in `f32`, 2.2e-308 in `f64`)
/// becomes zero, far below any tolerance of the recurrences. Elsewhere `f` just runs.
pub fn denormals_flushed<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
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
    #[cfg(not(target_arch = "x86_64"))]
    {
        f()
    }
}

#[cfg(target_arch = "x86_64")]
fn get_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: `stmxcsr` stores the 4-byte MXCSR into `v`, a valid, writable u32; SSE is part
    // of the x86_64 baseline.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
    }
    v
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: `ldmxcsr` reads the 4-byte value `v`; the callers only toggle the FTZ and DAZ
    // bits of a value read from MXCSR (no reserved bit set, so no fault), which changes
    // rounding of subnormals only, for this thread.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags, readonly));
    }
}
