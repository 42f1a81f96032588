//! Large buffers of the crate's own (the workspace, the packed weights) on transparent huge
//! pages where Linux offers them on request (`/sys/kernel/mm/transparent_hugepage/enabled` set
//! to `madvise`, as on the hosts here; with `always` they get them anyway, with `never` not at
//! all). A GEMM over `T * B` rows streams each 4 KiB page of its panels and rows in a few
//! hundred nanoseconds, and every new page is a TLB miss and a stop for the cache's stream
//! fetcher; a 2 MiB page has neither for 512 times as long. (The mechanism is inferred, not
//! counted: the VMs here expose no performance counters to `perf`; the gain below is timed.)
//!
//! What it bought (Zen 4 host, 2026-12-05, a scratch build switching the advice by an
//! environment variable, phase timers; `taskset -c 0,1 bench_table --threads 1 --modes
//! infer,train --target-s 0.3`, 6 alternated rounds, medians, ms, without / with):
//! `rnn_h1760_b64_t50` training 1112.6 / 1095.6 (0.985; every GEMM phase 1.5-3 % faster:
//! projection 185.3 / 180.3, forward loop 186.9 / 181.8, sweep 190.6 / 184.3, `dX` 182.3 /
//! 179.7, `dW_ih` 182.4 / 179.7, `dW_hh` 183.5 / 180.6), inference 368.3 / 361.5;
//! `rnn_h512_b64_t50` (packed weights of 1 MiB) level, 1.000 and 1.003. A probe of the weight
//! gradients' product alone (1760 x 3200 x 1760, `A` packed, all three operands advised, best
//! of 5, two rounds each): 108.2-110.8 / 112.3-113.4 GFLOP/s.

use crate::float::Float;

/// The huge page size of x86_64 Linux (and of aarch64 Linux with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// `len` zeros, with the 2 MiB-aligned part of the buffer advised as huge pages before any of
/// it is written, so that writing the zeros faults huge pages in (a buffer under 2 MiB, or
/// whose aligned part is empty, gets none).
pub(crate) fn zeroed<F: Float>(len: usize) -> Vec<F> {
    let mut v = Vec::<F>::with_capacity(len);
    advise_huge(v.as_mut_ptr().cast::<u8>(), len * size_of::<F>());
    v.resize(len, F::ZERO);
    v
}

/// Advises the whole 2 MiB pages inside `bytes` bytes from `p` (memory this process
/// allocated) as huge pages; returns whether the kernel took the advice (false when there is
/// no whole huge page inside, off Linux, or when the kernel refuses: without THP, say).
fn advise_huge(p: *mut u8, bytes: usize) -> bool {
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end <= start {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let len = end - start;
        // SAFETY: `start..end` is inside the caller's allocation of `bytes` at `p` (rounded in);
        // `MADV_HUGEPAGE` changes only what backs those pages, not contents or mapping.
        let r = unsafe { libc::madvise(p.with_addr(start).cast(), len, libc::MADV_HUGEPAGE) };
        r == 0
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zeros_of_the_length_asked() {
        for len in [0, 1, 1000, (3 * HUGE_PAGE) / 4 + 7] {
            let v = zeroed::<f32>(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
            let v = zeroed::<f64>(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    /// The advice covers exactly the whole huge pages inside a buffer: none for one under
    /// 2 MiB, and on Linux with transparent huge pages offered (`madvise` or `always`) the
    /// kernel takes it for a buffer of 5 MiB (which holds at least one whole huge page).
    #[test]
    fn advice_goes_to_the_whole_huge_pages_inside() {
        let mut small = vec![0u8; HUGE_PAGE - 1];
        assert!(!advise_huge(small.as_mut_ptr(), small.len()));
        let mut big = vec![0u8; 5 << 20];
        let took = advise_huge(big.as_mut_ptr(), big.len());
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let offered = thp.contains("[always]") || thp.contains("[madvise]");
        assert_eq!(took, cfg!(target_os = "linux") && offered, "THP: {thp:?}");
    }
}
