//! How far apart the host puts two threads: they hand one cache line back and forth (`--trips`
//! times, default 200 000), and each probe prints the mean round trip.
//!
//! ```text
//! taskset -c 0,1 cargo run --release --example round_trip -- [--probes 12] [--gap-ms 500] [--trips 200000]
//! ```
//!
//! stdout: one line per probe, `round_trip NS` (ns per round trip, one decimal), probes
//! `--gap-ms` apart. Under `taskset -c 0,1` the two spinning threads take the two cores. On the
//! Zen 4 VM (2026-12-04/05): 50-95 ns most of the time, 320-370 ns in spells of seconds (as
//! between two dies): the far state that the time loops' meeting timer looks for
//! (`FAR_LATENCY`, `src/kernels/threads.rs`). `benches/far_ab.sh` runs one probe before and
//! one after each benchmark run to class it near or far.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let mut probes = 12usize;
    let mut gap_ms = 500u64;
    let mut trips = 200_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), parsed) {
            ("--probes", Some(v)) => probes = v as usize,
            ("--gap-ms", Some(v)) => gap_ms = v,
            ("--trips", Some(v)) if v > 0 => trips = v,
            _ => {
                eprintln!(
                    "usage: round_trip [--probes N] [--gap-ms MS] [--trips N > 0]; got {a} {}",
                    value.unwrap_or_default()
                );
                std::process::exit(2);
            }
        }
    }
    for probe in 0..probes {
        if probe > 0 {
            std::thread::sleep(Duration::from_millis(gap_ms));
        }
        println!("round_trip {:.1}", round_trip_ns(trips));
    }
}

/// Mean ns per round trip of one cache line between this thread and another, over `trips`.
fn round_trip_ns(trips: u64) -> f64 {
    let ball = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..trips {
                while ball.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                ball.store(2 * i + 2, Ordering::Release);
            }
        });
        let t = Instant::now();
        for i in 0..trips {
            ball.store(2 * i + 1, Ordering::Release);
            while ball.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
        t.elapsed().as_nanos() as f64 / trips as f64
    })
}
