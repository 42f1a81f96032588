//! What the core gives a register tile whose FMAs are fed by loads: the ceiling under the
//! hoisted GEMMs' and the `B >= 16` time loop's speed, against the anchors' FMA probe (which
//! runs FMAs on registers only).
//!
//! ```text
//! cargo run --release --example load_probe [-- --target-s 0.5]
//! ```
//!
//! Every variant is an assembly loop of `f32` AVX-512 FMAs (`vfmadd231ps` on `zmm`, 24 or 16
//! independent accumulators, enough to cover the FMA latency on both pipes) with some loads
//! between them, all but the last two from one 4 KiB buffer that stays in L1, so only the core
//! is measured:
//!
//! * `fma24`, `fma16`: FMAs only (the anchors' probe runs 16 chains);
//! * `fma24_vN`: 24 FMAs per iteration and `N` full-vector loads (64 bytes) beside them;
//! * `fma24_bN`: the same with `N` broadcast loads (`vbroadcastss`, 4 bytes);
//! * `fma24_m24`: every FMA reads its own 64 bytes as its memory operand: the `B = 1` step's
//!   form (one vector of `W_hh` per FMA), bound by the loads; its GFLOP/s times 2 is the
//!   bytes per ns it reads;
//! * `tile_RxV`: a register tile of `R` rows and `V` vectors (`R * V = 24`): per `k`, `V`
//!   vector loads of the panel, `R` broadcasts of `A`, each broadcast feeding `V` FMAs
//!   (`tile_12x2` is the shape and instruction mix of the AVX-512 hoisted GEMMs' assembly loop,
//!   without its address steps: every iteration reads the same lines, so this is a ceiling);
//! * `emb_12x2`: the 12x2 tile with the broadcasts folded into the FMAs (`{1to16}` operands);
//! * `step_l2`: the `B = 1`, `H = 256` time loop's step reading `W_hh` (256 KiB) from L2, 16
//!   FMAs per iteration; `ride_l2`: the same with one `k` of the riding 8x2 tile (the input
//!   projection computed during the steps) per iteration, 32 FMAs: the ceiling of
//!   `rnn_h256_b1_t150`'s one-thread loop, loads and FMAs only (see `step_variant`).
//!
//! stdout: `load_probe VARIANT - 1 median_ms min_ms gflops` (the anchors' line format; one
//! sample = one call of the loop, 0.07-0.13 Gflop, about 0.5-1.4 ms), then `#` lines with each
//! variant's median as a fraction of `fma24`'s. Run it pinned (`taskset -c 0`) beside `run.sh
//! machine`'s FMA probe. Without AVX-512 on the host (or off x86_64) it says so and exits.

#[cfg(target_arch = "x86_64")]
mod probe {
    use std::arch::asm;
    use std::time::Instant;

    /// Loop iterations per sample: 2^17 iterations of 24 FMAs (32 flops each), 0.1 Gflop.
    const ITERS: usize = 1 << 17;

    /// Builds a function running `n` iterations of the assembly in `$body` (which may read
    /// `[rsi + offset]` for offsets below 4096) and returning the flops it did.
    macro_rules! variant {
        ($name:ident, $fmas:literal, $body:expr) => {
            /// # Safety
            ///
            /// avx512f present; `buf` 4096 readable bytes. `buf` is `rsi` and the count `rcx` in
            /// the assembly.
            #[target_feature(enable = "avx512f")]
            unsafe fn $name(buf: *const u8, n: usize) -> f64 {
                // SAFETY: reads only `buf[..4096]` (the offsets in `$body`), writes registers
                // only (all vector registers are declared clobbered by the C ABI clause).
                unsafe {
                    asm!(
                        "vxorps xmm28, xmm28, xmm28",
                        "vxorps xmm29, xmm29, xmm29",
                        "2:",
                        $body,
                        "dec rcx",
                        "jnz 2b",
                        in("rsi") buf,
                        inout("rcx") n => _,
                        clobber_abi("C"),
                        options(nostack, readonly),
                    );
                }
                (n * $fmas * 32) as f64
            }
        };
    }

    /// 24 FMAs (accumulators `zmm0..zmm23`), with a load into `zmm30` after each of the first
    /// `L` of them: `$load` is the instruction, `$stride` bytes between the loads' offsets.
    macro_rules! fma24_with {
        ($name:ident, $l:literal, $load:literal, $stride:literal) => {
            variant!(
                $name,
                24,
                concat!(
                    ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n",
                    "vfmadd231ps zmm\\i, zmm28, zmm29\n",
                    ".if \\i < ",
                    $l,
                    "\n",
                    $load,
                    " zmm30, [rsi + ",
                    $stride,
                    " * \\i]\n",
                    ".endif\n",
                    ".endr"
                )
            );
        };
    }

    variant!(
        fma24_m24,
        24,
        concat!(
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n",
            "vfmadd231ps zmm\\i, zmm28, [rsi + 64 * \\i]\n",
            ".endr"
        )
    );
    variant!(
        fma16,
        16,
        concat!(
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n",
            "vfmadd231ps zmm\\i, zmm28, zmm29\n",
            ".endr"
        )
    );
    fma24_with!(fma24, "0", "vmovups", "64");
    fma24_with!(fma24_v2, "2", "vmovups", "64");
    fma24_with!(fma24_v4, "4", "vmovups", "64");
    fma24_with!(fma24_v8, "8", "vmovups", "64");
    fma24_with!(fma24_v14, "14", "vmovups", "64");
    fma24_with!(fma24_b2, "2", "vbroadcastss", "4");
    fma24_with!(fma24_b8, "8", "vbroadcastss", "4");
    fma24_with!(fma24_b12, "12", "vbroadcastss", "4");

    /// One row of a tile: broadcast `A[r]` (at `[rsi + 2048 + 64 * r]`) into `zmm31` and one
    /// FMA per panel vector (`zmm24..`) into the row's accumulators.
    macro_rules! row {
        ($r:literal, [$($acc:literal $b:literal),*]) => {
            concat!(
                "vbroadcastss zmm31, [rsi + 2048 + 64 * ", $r, "]\n",
                $("vfmadd231ps zmm", $acc, ", zmm31, zmm", $b, "\n",)*
            )
        };
    }

    variant!(
        tile_12x2,
        24,
        concat!(
            "vmovups zmm24, [rsi]\n",
            "vmovups zmm25, [rsi + 64]\n",
            row!("0", ["0" "24", "1" "25"]),
            row!("1", ["2" "24", "3" "25"]),
            row!("2", ["4" "24", "5" "25"]),
            row!("3", ["6" "24", "7" "25"]),
            row!("4", ["8" "24", "9" "25"]),
            row!("5", ["10" "24", "11" "25"]),
            row!("6", ["12" "24", "13" "25"]),
            row!("7", ["14" "24", "15" "25"]),
            row!("8", ["16" "24", "17" "25"]),
            row!("9", ["18" "24", "19" "25"]),
            row!("10", ["20" "24", "21" "25"]),
            row!("11", ["22" "24", "23" "25"]),
        )
    );
    variant!(
        tile_8x3,
        24,
        concat!(
            "vmovups zmm24, [rsi]\n",
            "vmovups zmm25, [rsi + 64]\n",
            "vmovups zmm26, [rsi + 128]\n",
            row!("0", ["0" "24", "1" "25", "2" "26"]),
            row!("1", ["3" "24", "4" "25", "5" "26"]),
            row!("2", ["6" "24", "7" "25", "8" "26"]),
            row!("3", ["9" "24", "10" "25", "11" "26"]),
            row!("4", ["12" "24", "13" "25", "14" "26"]),
            row!("5", ["15" "24", "16" "25", "17" "26"]),
            row!("6", ["18" "24", "19" "25", "20" "26"]),
            row!("7", ["21" "24", "22" "25", "23" "26"]),
        )
    );
    variant!(
        tile_6x4,
        24,
        concat!(
            "vmovups zmm24, [rsi]\n",
            "vmovups zmm25, [rsi + 64]\n",
            "vmovups zmm26, [rsi + 128]\n",
            "vmovups zmm27, [rsi + 192]\n",
            row!("0", ["0" "24", "1" "25", "2" "26", "3" "27"]),
            row!("1", ["4" "24", "5" "25", "6" "26", "7" "27"]),
            row!("2", ["8" "24", "9" "25", "10" "26", "11" "27"]),
            row!("3", ["12" "24", "13" "25", "14" "26", "15" "27"]),
            row!("4", ["16" "24", "17" "25", "18" "26", "19" "27"]),
            row!("5", ["20" "24", "21" "25", "22" "26", "23" "27"]),
        )
    );
    /// One row of [`tile_12x2`] with its broadcast folded into the two FMAs.
    macro_rules! emb_row {
        ($r:literal, $c0:literal, $c1:literal) => {
            concat!(
                "vfmadd231ps zmm",
                $c0,
                ", zmm24, dword ptr [rsi + 2048 + 64 * ",
                $r,
                "]{{1to16}}\n",
                "vfmadd231ps zmm",
                $c1,
                ", zmm25, dword ptr [rsi + 2048 + 64 * ",
                $r,
                "]{{1to16}}\n",
            )
        };
    }

    variant!(
        emb_12x2,
        24,
        concat!(
            "vmovups zmm24, [rsi]\n",
            "vmovups zmm25, [rsi + 64]\n",
            emb_row!("0", "0", "1"),
            emb_row!("1", "2", "3"),
            emb_row!("2", "4", "5"),
            emb_row!("3", "6", "7"),
            emb_row!("4", "8", "9"),
            emb_row!("5", "10", "11"),
            emb_row!("6", "12", "13"),
            emb_row!("7", "14", "15"),
            emb_row!("8", "16", "17"),
            emb_row!("9", "18", "19"),
            emb_row!("10", "20", "21"),
            emb_row!("11", "22", "23"),
        )
    );

    /// Bytes [`step_l2`] and [`ride_l2`] read: `W_hh` (256 KiB), `h` (1 KiB), a panel of
    /// `W_ih` (32 KiB), 8 rows of `X` (8 KiB), in that order.
    const STEP_BYTES: usize = (256 + 1 + 32 + 8) << 10;

    /// One `k` of the step: broadcast `h[k]` (`[rdx + 4 * k]`), two FMAs with the panel's row
    /// `k` (`[rax + 128 * k]`, 32 columns) into the accumulators of partial sum `k % 4`.
    macro_rules! step_k {
        ($k:literal, $acc0:literal, $acc1:literal) => {
            concat!(
                "vbroadcastss zmm24, [rdx + 4 * ",
                $k,
                "]\n",
                "vfmadd231ps zmm",
                $acc0,
                ", zmm24, [rax + 128 * ",
                $k,
                "]\n",
                "vfmadd231ps zmm",
                $acc1,
                ", zmm24, [rax + 128 * ",
                $k,
                " + 64]\n",
            )
        };
    }

    /// Row `r` of one `k` of the riding 8x2 tile: broadcast `X[r][k]` (`[rdi + 1024 * r]`)
    /// and two FMAs with the row of `W_ih` in `zmm25`, `zmm26`.
    macro_rules! ride_row {
        ($r:literal, $acc0:literal, $acc1:literal) => {
            concat!(
                "vbroadcastss zmm27, [rdi + 1024 * ",
                $r,
                "]\n",
                "vfmadd231ps zmm",
                $acc0,
                ", zmm27, zmm25\n",
                "vfmadd231ps zmm",
                $acc1,
                ", zmm27, zmm26\n",
            )
        };
    }

    /// The `B = 1`, `H = 256` step reading `W_hh` from L2: a ceiling for `rnn_h256_b1_t150`'s
    /// time loop on one thread. Per pass, 8 panels of 32 columns by 256 `k` (256 KiB: more
    /// than L1, less than L2), 8 `k` per iteration; each `k` a broadcast of `h` (1 KiB, read
    /// again for each panel) and two FMAs with the panel's row (`zmm0..7`: 4 partial sums of
    /// 2 vectors, as the crate's one-row tile). With `$ride`, each iteration also runs one `k`
    /// of the riding 8x2 tile (`zmm8..23`) reading a 32 KiB panel of `W_ih` and 8 rows of
    /// `X` 1 KiB apart: the projection the crate computes during the steps. Loads and FMAs
    /// only: no reduction, activation, stores or address arithmetic beyond the pointers'
    /// steps.
    macro_rules! step_variant {
        ($name:ident, $fmas:literal, $ride:expr) => {
            /// # Safety
            ///
            /// avx512f present; `buf` [`STEP_BYTES`] readable bytes. `n / 256` passes.
            #[target_feature(enable = "avx512f")]
            unsafe fn $name(buf: *const u8, n: usize) -> f64 {
                let passes = (n / 256).max(1);
                // SAFETY: reads `buf[..STEP_BYTES]` only (each pass sets the pointers back to
                // the start of their part), writes registers only (those used are clobbered by
                // the C ABI clause; `buf` in `r12`, which it does not clobber).
                unsafe {
                    asm!(
                        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n",
                        "vpxord zmm\\i, zmm\\i, zmm\\i\n",
                        ".endr",
                        "4:",
                        "mov rax, r12",
                        "lea rsi, [r12 + 263168]",
                        "lea rdi, [r12 + 295936]",
                        "mov r9, 8",
                        "3:",
                        "lea rdx, [r12 + 262144]",
                        "mov r8, 32",
                        "2:",
                        step_k!("0", "0", "1"),
                        step_k!("1", "2", "3"),
                        step_k!("2", "4", "5"),
                        step_k!("3", "6", "7"),
                        step_k!("4", "0", "1"),
                        step_k!("5", "2", "3"),
                        step_k!("6", "4", "5"),
                        step_k!("7", "6", "7"),
                        $ride,
                        "add rax, 1024",
                        "add rdx, 32",
                        "dec r8",
                        "jnz 2b",
                        "dec r9",
                        "jnz 3b",
                        "dec rcx",
                        "jnz 4b",
                        in("r12") buf,
                        inout("rcx") passes => _,
                        clobber_abi("C"),
                        options(nostack, readonly),
                    );
                }
                (passes * 256 * $fmas * 32) as f64
            }
        };
    }

    step_variant!(step_l2, 16, "");
    step_variant!(
        ride_l2,
        32,
        concat!(
            "vmovups zmm25, [rsi]\n",
            "vmovups zmm26, [rsi + 64]\n",
            ride_row!("0", "8", "9"),
            ride_row!("1", "10", "11"),
            ride_row!("2", "12", "13"),
            ride_row!("3", "14", "15"),
            ride_row!("4", "16", "17"),
            ride_row!("5", "18", "19"),
            ride_row!("6", "20", "21"),
            ride_row!("7", "22", "23"),
            "add rsi, 128\n",
            "add rdi, 4\n",
        )
    );

    type Variant = unsafe fn(*const u8, usize) -> f64;

    const VARIANTS: [(&str, Variant); 17] = [
        ("fma24", fma24),
        ("fma16", fma16),
        ("fma24_v2", fma24_v2),
        ("fma24_v4", fma24_v4),
        ("fma24_v8", fma24_v8),
        ("fma24_v14", fma24_v14),
        ("fma24_b2", fma24_b2),
        ("fma24_b8", fma24_b8),
        ("fma24_b12", fma24_b12),
        ("fma24_m24", fma24_m24),
        ("tile_12x2", tile_12x2),
        ("tile_8x3", tile_8x3),
        ("tile_6x4", tile_6x4),
        ("emb_12x2", emb_12x2),
        ("step_l2", step_l2),
        ("ride_l2", ride_l2),
        ("fma24", fma24),
    ];

    pub fn run(target_s: f64) {
        if !is_x86_feature_detected!("avx512f") {
            println!("# load_probe: the host has no AVX-512; nothing to measure");
            return;
        }
        // 64-byte aligned small finite floats (the values do not matter to the timing: no
        // subnormals, no overflow within a sample): 4 KiB for most variants, `STEP_BYTES` for
        // `step_l2` and `ride_l2`.
        let mut words = vec![0x3c00_0000_u32; STEP_BYTES / 4 + 16];
        let at = words.as_ptr().align_offset(64);
        let buf = words[at..].as_mut_ptr().cast::<u8>().cast_const();
        let mut medians = Vec::new();
        for &(name, f) in &VARIANTS {
            // SAFETY: avx512f detected above; `buf` has `STEP_BYTES` (more than 4096)
            // readable bytes after alignment.
            let sample = || unsafe {
                let t = Instant::now();
                let flops = f(buf, ITERS);
                (t.elapsed().as_secs_f64(), flops)
            };
            let warm = Instant::now();
            while warm.elapsed().as_secs_f64() < 0.05 {
                sample();
            }
            let (first, flops) = sample();
            let count = ((target_s / first) as usize).clamp(5, 101);
            let mut times: Vec<f64> = (0..count).map(|_| sample().0).collect();
            times.sort_by(f64::total_cmp);
            let (median, min) = (times[count / 2], times[0]);
            println!(
                "load_probe {name} - 1 {:.4} {:.4} {:.2}",
                median * 1e3,
                min * 1e3,
                flops / median / 1e9
            );
            medians.push((name, median / flops));
        }
        // `fma24` runs first and last: the reference is the better of the two.
        let reference = medians
            .iter()
            .filter(|(n, _)| *n == "fma24")
            .map(|&(_, s)| s)
            .fold(f64::MAX, f64::min);
        for (name, s) in &medians {
            println!("# {name}: {:.3} of fma24", reference / s);
        }
    }
}

fn main() {
    let mut target_s = 0.5;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<f64>())) {
            ("--target-s", Some(Ok(v))) if v > 0.0 => target_s = v,
            _ => {
                eprintln!("usage: load_probe [--target-s SECONDS]");
                std::process::exit(2);
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    probe::run(target_s);
    #[cfg(not(target_arch = "x86_64"))]
    println!("# load_probe: x86_64 only; nothing to measure (target_s {target_s})");
}
