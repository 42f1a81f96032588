//! The time loop's threading. Each step's panels are split into `threads` contiguous chunks;
//! the (step, chunk) pairs are numbered in order and handed out by one atomic ticket counter,
//! and a chunk of step `s` starts once every chunk of step `s - 1` is done. The calling thread
//! works too, so the loop completes even when no helper is ever scheduled (a busy pool, a call
//! from inside a parallel iterator): helpers only speed it up, nothing waits for them to
//! arrive. One `rayon::scope` covers the whole loop (a rayon join per step costs far more than
//! a step of a small recurrence). `K` is never split, so every element is computed by the same
//! instructions whoever runs its chunk: results are bitwise identical for any thread count.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Work (flops per step, per thread) below which a loop stays on the calling thread. Handing a
/// chunk to another core costs well under a microsecond on an idle machine, but waking the
/// pool and sharing a busy machine cost far more: measured on the shared 2-vCPU Zen 5 under
/// load, 2 threads lost even at 8 Mflop per step, so this errs high (4 Mflop, about 20 us of
/// one core's arithmetic) and keeps every B = 1 workload single-threaded.
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
        let tickets = Tickets {
            chunks: self.threads,
            total: steps * self.threads,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        };
        let work = || tickets.work(panels, &step);
        rayon::scope(|scope| {
            for _ in 1..self.threads {
                scope.spawn(|_| work());
            }
            work();
        });
    }
}

/// The shared state of one threaded loop: ticket `t` is chunk `t % chunks` of step
/// `t / chunks`.
struct Tickets {
    chunks: usize,
    total: usize,
    /// The next unclaimed ticket.
    next: AtomicUsize,
    /// Tickets completed. Tickets are claimed in order, so once `done` reaches
    /// `s * chunks`, every chunk of the steps before `s` is complete.
    done: AtomicUsize,
    /// Set when a participant unwinds, so the others stop waiting for its chunk.
    poisoned: AtomicBool,
}

impl Tickets {
    /// Claims and runs tickets until none are left (or the loop is poisoned).
    fn work(&self, panels: usize, step: &(impl Fn(usize, Range<usize>) + Sync)) {
        let _guard = PoisonOnPanic(&self.poisoned);
        denormals_flushed(|| {
            loop {
                let t = self.next.fetch_add(1, Ordering::Relaxed);
                if t >= self.total {
                    return;
                }
                let (s, c) = (t / self.chunks, t % self.chunks);
                if !self.wait_for(s * self.chunks) {
                    return;
                }
                step(s, panels * c / self.chunks..panels * (c + 1) / self.chunks);
                self.done.fetch_add(1, Ordering::Release);
            }
        })
    }

    /// Waits until `done >= target`, spinning briefly and then yielding (the machine may be
    /// shared). Returns false if the loop was poisoned. Never deadlocks: every ticket below
    /// `target` was claimed by a thread that is running it, and the lowest unfinished one
    /// waits for nothing.
    fn wait_for(&self, target: usize) -> bool {
        let mut spins = 0u32;
        // Acquire pairs with the Release increments: the chunks' writes are visible after.
        while self.done.load(Ordering::Acquire) < target {
            if self.poisoned.load(Ordering::Relaxed) {
                return false;
            }
            if spins < 1 << 12 {
                spins += 1;
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
