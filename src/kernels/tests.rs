//! Every kernel path this CPU runs against naive loops, at sizes below, at and above each tile
//! width, with `m = 1`, odd `m` and `K = 1`; nothing outside `C` is written.

use super::*;
use crate::rnn::Activation;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// A rayon pool of `threads` threads, for running a kernel as a caller with that many would.
fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// What [`check_store`] asks `gemm_packed` to add, by number (any other: a row vector), so
/// loops can cycle through the three.
const ZERO: usize = 0;
const ACCUMULATE: usize = 1;

fn check_store<F: Float>(isa: Isa, m: usize, k: usize, n: usize, add: usize) {
    check_store_lda::<F>(isa, m, k, n, add, k + 3);
}

/// [`check_store`] with rows of `A` `lda` elements apart.
fn check_store_lda<F: Float>(isa: Isa, m: usize, k: usize, n: usize, add: usize, lda: usize) {
    let mut seed = (m * 1000 + k * 10 + n) as u64;
    let ldc = n + 5;
    let a: Vec<F> = (0..m * lda).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let c0: Vec<F> = (0..m * ldc).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let row: Vec<F> = (0..n).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
    let mut c = c0.clone();
    let addend = match add {
        ZERO => Addend::Zero,
        ACCUMULATE => Addend::C,
        _ => Addend::Row(&row),
    };
    gemm_packed(isa, &a, (lda, 1), m, bp.view(), &mut c, ldc, addend);
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j].to_f64();
            if j >= n {
                assert_eq!(got, c0[i * ldc + j].to_f64(), "wrote outside C");
                continue;
            }
            let mut want = match add {
                ZERO => 0.0,
                ACCUMULATE => c0[i * ldc + j].to_f64(),
                _ => row[j].to_f64(),
            };
            let mut mag = want.abs();
            for kk in 0..k {
                let t = a[i * lda + kk].to_f64() * b[kk * n + j].to_f64();
                want += t;
                mag += t.abs();
            }
            let tol = 2.0 * (k + 2) as f64 * F::EPSILON.to_f64() * mag.max(1e-30);
            assert!(
                (got - want).abs() <= tol,
                "{isa:?} m={m} k={k} n={n} add={add}: c[{i}][{j}] = {got} vs {want}"
            );
        }
    }
}

/// Column counts around the panel width `nr`: a last panel with one, two or all vectors of
/// real columns (narrower tiles run the partial ones), below, at and above `nr`.
fn sizes(nr: usize) -> Vec<usize> {
    vec![
        1,
        2,
        nr - 1,
        nr,
        nr + 1,
        nr + nr / 2 + 1,
        2 * nr + 3,
        13,
        20,
        37,
    ]
}

#[test]
fn packed_gemm_matches_loops_on_every_path() {
    for isa in Isa::available() {
        // Every remainder of the 4-, 6-, 8- and 12-row tiles, and two full tiles of each.
        for m in (1..=14).chain([17, 23, 24, 25]) {
            for &k in &[1, 2, 7, 16, 33] {
                for &n in &sizes(panel_width::<f32>(isa)) {
                    check_store::<f32>(isa, m, k, n, m % 3);
                }
                for &n in &sizes(panel_width::<f64>(isa)) {
                    check_store::<f64>(isa, m, k, n, (m + 1) % 3);
                }
            }
        }
    }
}

/// Rows of `A` 4 KiB apart (`lda` = 1024 `f32` or 512 `f64`) run the `select` kernel instead
/// of the tall one (see `gemm_ops_tuned`): against loops for every remainder of its rows and
/// of a row chunk, `K` short and `K = lda`, and bitwise for 1 and 2 threads.
#[test]
fn aliased_rows_of_a_match_loops_on_every_path() {
    // K = lda: 2 * 250 * 1024 * 70 flops (f32; half in f64) are enough for `gemm_packed` to
    // share them between 2 threads (`MIN_FLOPS_PER_THREAD`), which a short K is not.
    fn run<F: Float>(isa: Isa, lda: usize, threads: usize) -> Vec<F> {
        let (m, k, n) = (250, lda, 70);
        let mut seed = 17;
        let a: Vec<F> = (0..m * lda).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let bp = PackedB::new(isa, k, n, |kk, j| F::from_f64((kk * 3 + j) as f64 * 0.01));
        let mut c = vec![F::ZERO; m * n];
        let pool = pool(threads);
        pool.install(|| gemm_packed(isa, &a, (lda, 1), m, bp.view(), &mut c, n, Addend::Zero));
        c
    }
    for isa in Isa::available() {
        for m in [1, 2, 3, 5, 7, 8, 9, 12, 13, 17, 25, 97] {
            for k in [5, 33] {
                let nr = panel_width::<f32>(isa);
                check_store_lda::<f32>(isa, m, k, nr + 1, m % 3, 1024);
                let nr = panel_width::<f64>(isa);
                check_store_lda::<f64>(isa, m, k, nr + 1, (m + 1) % 3, 512);
            }
        }
        check_store_lda::<f32>(isa, 13, 1024, 37, ACCUMULATE, 1024);
        check_store_lda::<f64>(isa, 13, 512, 37, ZERO, 512);
        // The 2-thread runs below do split (panels or row chunks, as `gemm_ops_tuned` counts;
        // the f64 product, half the f32 one, is the smaller).
        let units = 70usize
            .div_ceil(panel_width::<f64>(isa))
            .max(250usize.div_ceil(MC));
        let split = pool(2).install(|| StepLoop::new(units, 2 * 250 * 512 * 70).threads());
        assert_eq!(
            split, 2,
            "{isa:?}: the bitwise check would run on one thread"
        );
        assert!(
            run::<f32>(isa, 1024, 1) == run::<f32>(isa, 1024, 2),
            "{isa:?} f32"
        );
        assert!(
            run::<f64>(isa, 512, 1) == run::<f64>(isa, 512, 2),
            "{isa:?} f64"
        );
    }
}

/// The one-row tile broadcasts a contiguous row of `A` in registers from `REG_SPLAT_MIN_K`
/// on (AVX-512): against loops (a single row, and the row left after a 12-row tile), and
/// bitwise against the same row read with a column step of 2, which broadcasts from memory and
/// sums in the same order. The skipped elements are NaN, so reading one shows.
#[test]
fn one_row_tile_register_broadcasts_match_loops_and_memory_broadcasts() {
    for isa in Isa::available() {
        let min = REG_SPLAT_MIN_K;
        for k in [min - 1, min, min + 1, min + 15, min + 16, 200, 257] {
            // One vector of columns (8 partial sums), two, and partial panels.
            for n in [1, 16, 17, 32, 37, 69] {
                for m in [1, 13] {
                    check_store::<f32>(isa, m, k, n, (k + n + m) % 3);
                    check_store::<f64>(isa, m, k, n, (k + n + m + 1) % 3);
                }
                check_register_broadcast_bits::<f32>(isa, k, n);
                check_register_broadcast_bits::<f64>(isa, k, n);
            }
        }
    }
}

fn check_register_broadcast_bits<F: Float>(isa: Isa, k: usize, n: usize) {
    let mut seed = (k * 100 + n) as u64;
    let a: Vec<F> = (0..k).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let spread: Vec<F> = a.iter().flat_map(|&x| [x, F::from_f64(f64::NAN)]).collect();
    let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
    let (mut contiguous, mut stepped) = (vec![F::ZERO; n], vec![F::ZERO; n]);
    gemm_packed(
        isa,
        &a,
        (k, 1),
        1,
        bp.view(),
        &mut contiguous,
        n,
        Addend::Zero,
    );
    gemm_packed(
        isa,
        &spread,
        (2 * k, 2),
        1,
        bp.view(),
        &mut stepped,
        n,
        Addend::Zero,
    );
    for j in 0..n {
        assert_eq!(
            contiguous[j].to_f64().to_bits(),
            stepped[j].to_f64().to_bits(),
            "{isa:?} k={k} n={n} column {j}"
        );
    }
}

/// On AVX-512 one row runs a tile over two full panels where it can (`gemm_body`); its sums
/// must be those of the one-panel tile, so the bits do not depend on whether panels pair up
/// (or on how threads split them): the kernel over all panels in one call against one call
/// per panel (no pairs), bitwise, on every path, with both broadcast forms of `A`; and against
/// loops (`check_store`).
#[test]
fn one_row_tile_over_two_panels_matches_one_panel_tiles_bitwise() {
    for isa in Isa::available() {
        for k in [1, 3, 64, 127, REG_SPLAT_MIN_K, 129, 200] {
            for panels in [2, 3, 4] {
                for extra in [0, 1] {
                    let n32 = panels * panel_width::<f32>(isa) + extra;
                    let n64 = panels * panel_width::<f64>(isa) + extra;
                    check_pair_bits::<f32>(isa, k, n32);
                    check_pair_bits::<f64>(isa, k, n64);
                    check_store::<f32>(isa, 1, k, n32, (k + n32) % 3);
                    check_store::<f64>(isa, 1, k, n64, (k + n64 + 1) % 3);
                }
            }
        }
    }
}

fn check_pair_bits<F: Float>(isa: Isa, k: usize, n: usize) {
    let mut seed = (k * 1000 + n) as u64;
    let a: Vec<F> = (0..k).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
    let ops = Operands::new(&a, k, 1, bp.view(), k);
    let f = select::<F, Store<F>>(isa);
    let (mut together, mut apart) = (vec![F::ZERO; n], vec![F::ZERO; n]);
    let panels = bp.view().panels();
    // SAFETY: isa comes from `Isa::available()`; A is 1 x k, C is 1 x n, every panel of `bp`
    // is in range.
    unsafe {
        f(
            &ops,
            &Store::new(together.as_mut_ptr(), n, Addend::Zero),
            0..panels,
        );
        for p in 0..panels {
            f(
                &ops,
                &Store::new(apart.as_mut_ptr(), n, Addend::Zero),
                p..p + 1,
            );
        }
    }
    for j in 0..n {
        assert_eq!(
            together[j].to_f64().to_bits(),
            apart[j].to_f64().to_bits(),
            "{isa:?} k={k} n={n} column {j}"
        );
    }
}

#[test]
fn forward_epilogue_matches_scalar_with_lengths() {
    let (m, k, n, t) = (5, 19, 53, 2);
    let lengths = [1, 3, 2, 4, 3]; // rows 0 inactive, 2 ending, others active at t = 2
    let mut seed = 7;
    let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed) as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed) as f32 * 0.3).collect();
    let p: Vec<f32> = (0..m * n).map(|_| lcg(&mut seed) as f32).collect();
    for (isa, act) in Isa::available()
        .into_iter()
        .flat_map(|isa| [(isa, Activation::Tanh), (isa, Activation::Relu)])
    {
        let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
        let mut c = p.clone();
        let mut h_n = vec![9.0f32; m * n];
        let ops = Operands::new(&a, k, m, bp.view(), k);
        let epi = FwdStep::<'_, f32> {
            c: c.as_mut_ptr(),
            ld: n,
            lengths: Some(&lengths),
            t,
            h_n: Some(h_n.as_mut_ptr()),
            tanh: act == Activation::Tanh,
        };
        let f = select::<f32, FwdStep<'_, f32>>(isa);
        // SAFETY: isa comes from `Isa::available()`; A is m x k, C and h_n are m x n, all
        // panels of `bp` are in range.
        unsafe { f(&ops, &epi, 0..bp.view().panels()) };
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64)
                    .sum();
                let want = if t >= lengths[i] {
                    0.0
                } else {
                    act.apply(p[i * n + j] as f64 + dot)
                };
                let got = c[i * n + j] as f64;
                assert!(
                    (got - want).abs() < 1e-5,
                    "{isa:?} {act:?} [{i}][{j}] {got} vs {want}"
                );
                let hn = h_n[i * n + j] as f64;
                if t + 1 == lengths[i] {
                    assert_eq!(hn, got);
                } else {
                    assert_eq!(hn, 9.0);
                }
            }
        }
    }
}

/// Timing probe, not a test: `cargo test --release -- --ignored --nocapture kernel_speed`.
///
/// This and the other probes below run in the library's test harness build, which the
/// compiler partitions and inlines differently from the library's own build: the strided
/// assembly loops (`avx512::loop_12`, `loop_8`) stay out of line there and are inlined in the
/// library (before `9a71a56` they also copied their accumulators through calls there). A
/// probe's finding holds for the library only once `bench_table` agrees: on 2026-12-04,
/// before `9a71a56`, packing a row-major `A` chunk by chunk ran 1.05-2.3x faster than the
/// strided tiles in a scratch probe here, and in `bench_table` (`B = 1` rows and
/// `rnn_h512_b16_t50`, alternated rounds) its fastest samples were 0.97-1.08x the strided
/// build's times; not kept.
#[test]
#[ignore]
fn kernel_speed() {
    let pool = pool(1);
    pool.install(kernel_speed_1t);
}

fn kernel_speed_1t() {
    for (m, k, n) in [
        (512, 3200, 512),
        (1760, 3200, 1760),
        (1760, 800, 1760),
        (3200, 1760, 1760),
        (800, 1760, 1760),
        (16, 512, 512),
        (16, 1760, 1760),
        (64, 1760, 1760),
        (800, 512, 512),
        (1, 256, 256),
        (1, 32, 32),
    ] {
        let a = vec![0.5f32; m * k];
        let bp = PackedB::new(Isa::Avx512, k, n, |_, _| 0.25f32);
        let mut c = vec![0f32; m * n];
        let reps = (2e9 / (2 * m * k * n) as f64).max(10.0) as usize;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                gemm_packed(
                    Isa::Avx512,
                    &a,
                    (k, 1),
                    m,
                    bp.view(),
                    &mut c,
                    n,
                    Addend::Zero,
                );
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let mut mm = vec![0f32; m * n];
        let b = vec![0.25f32; k * n];
        let mut best_mm = f64::MAX;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                crate::gemm::gemm(
                    1.0,
                    crate::gemm::Mat::new(&a, m, k),
                    crate::gemm::Mat::new(&b, k, n),
                    0.0,
                    crate::gemm::MatMut::new(&mut mm, m, n),
                );
            }
            best_mm = best_mm.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let f = 2.0 * (m * k * n) as f64;
        // The weight-gradient shape: A = (a as [k, m])^T, strided.
        let mut best_t = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                gemm_packed(Isa::Avx512, &a, (1, m), m, bp.view(), &mut c, n, Addend::C);
            }
            best_t = best_t.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let mut best_mt = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                let at = crate::gemm::Mat::new(&a, k, m).t();
                let bm = crate::gemm::Mat::new(&b, k, n);
                crate::gemm::gemm(1.0, at, bm, 1.0, crate::gemm::MatMut::new(&mut mm, m, n));
            }
            best_mt = best_mt.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "A^T: packed {:.1} GF/s, mm {:.1}",
            f / best_t * 1e-9,
            f / best_mt * 1e-9
        );
        println!(
            "{m}x{k}x{n}: packed {:.1} GF/s ({:.2} us), matrixmultiply {:.1} GF/s",
            f / best * 1e-9,
            best * 1e6,
            f / best_mm * 1e-9
        );
    }
}

#[test]
fn strided_a_and_workspace_packing_match_loops() {
    for isa in Isa::available() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 17), (9, 33, 50), (17, 7, 97)] {
            let mut seed = 3;
            let lda_t = m + 2; // A^T stored as [k, m + 2]
            let at: Vec<f64> = (0..k * lda_t).map(|_| lcg(&mut seed)).collect();
            let b: Vec<f64> = (0..k * n).map(|_| lcg(&mut seed)).collect();
            let mut buf = vec![7.0; packed_len::<f64>(isa, k, n) + 3];
            // Every third row is given as `None`: packed as zeros, whatever `b` holds there.
            let given = |kk: usize| kk % 3 != 1;
            let bp = pack_into(
                isa,
                k,
                n,
                |kk| given(kk).then(|| &b[kk * n..][..n]),
                &mut buf,
                false,
            );
            let mut c = vec![1.0; m * n];
            gemm_packed(isa, &at, (1, lda_t), m, bp, &mut c, n, Addend::C);
            for i in 0..m {
                for j in 0..n {
                    let want = 1.0
                        + (0..k)
                            .filter(|&kk| given(kk))
                            .map(|kk| at[kk * lda_t + i] * b[kk * n + j])
                            .sum::<f64>();
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-12 * (k as f64 + 1.0),
                        "{isa:?} {m} {k} {n}"
                    );
                }
            }
        }
    }
}

/// `A` as columns (`A^T` stored row-major, the weight gradients' view of `dA`) in `f32`, with
/// `m` below, at and above the tiles' 8 and 12 rows (the columns' tiles and the remainders) and
/// `n` around the panel width, against the sum in `f64`. Each product and addition rounds once
/// (at most `2^-24` relative), so the error is at most about `(k + 1) 2^-24` times the sum of
/// the magnitudes (`1 + sum |a b|`); the bound allows twice that.
#[test]
fn a_as_columns_matches_f64_sums_in_f32() {
    for isa in Isa::available() {
        for &(m, k, n) in &[
            (7, 3, 16),
            (8, 5, 31),
            (11, 9, 32),
            (12, 64, 33),
            (13, 2, 17),
            (24, 96, 64),
            (25, 17, 65),
            (64, 96, 64),
        ] {
            let mut seed = 11;
            let lda_t = m + 3;
            let at: Vec<f32> = (0..k * lda_t).map(|_| lcg(&mut seed) as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|_| lcg(&mut seed) as f32).collect();
            let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
            let mut c = vec![1.0f32; m * n];
            gemm_packed(isa, &at, (1, lda_t), m, bp.view(), &mut c, n, Addend::C);
            for i in 0..m {
                for j in 0..n {
                    let terms = (0..k).map(|kk| at[kk * lda_t + i] as f64 * b[kk * n + j] as f64);
                    let want = 1.0 + terms.clone().sum::<f64>();
                    let mag = 1.0 + terms.map(f64::abs).sum::<f64>();
                    let bound = 2.0 * (k as f64 + 1.0) * f64::from(f32::EPSILON) / 2.0 * mag;
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= bound,
                        "{isa:?} {m}x{k}x{n} [{i}][{j}]: {got} against {want}"
                    );
                }
            }
        }
    }
}

/// `B` as rows in place ([`gemm_b_rows`]) with `A` as columns, `f32` and `f64` on every path:
/// `m` around every path's tile heights (4, 6, 8, 12), `n` one to three panels, against sums
/// in `f64` (`f32`: the bound of `a_as_columns_matches_f64_sums_in_f32`; `f64`: the same with
/// `2^-53`), in pools of 1 and 2 threads with the same bits (the largest shape is split).
#[test]
fn b_as_rows_matches_f64_sums() {
    fn check<F: Float>(isa: Isa, m: usize, k: usize, panels: usize) {
        let n = panels * panel_width::<F>(isa);
        let mut seed = 17;
        let lda_t = m + 1;
        let at: Vec<F> = (0..k * lda_t)
            .map(|_| F::from_f64(lcg(&mut seed)))
            .collect();
        let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let mut first: Option<Vec<F>> = None;
        for threads in [1, 2] {
            let mut c = vec![F::ONE; m * n];
            pool(threads)
                .install(|| gemm_b_rows(isa, &at, lda_t, m, &b, k, n, &mut c, n, Addend::C));
            for i in 0..m {
                for j in 0..n {
                    let terms =
                        (0..k).map(|kk| at[kk * lda_t + i].to_f64() * b[kk * n + j].to_f64());
                    let want = 1.0 + terms.clone().sum::<f64>();
                    let mag = 1.0 + terms.map(f64::abs).sum::<f64>();
                    let bound = (k as f64 + 1.0) * F::EPSILON.to_f64() * mag;
                    let got = c[i * n + j].to_f64();
                    assert!(
                        (got - want).abs() <= bound,
                        "{isa:?} {m}x{k}x{n} [{i}][{j}]: {got} against {want}"
                    );
                }
            }
            match &first {
                None => first = Some(c),
                Some(f) => assert!(
                    f.iter()
                        .zip(&c)
                        .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits()),
                    "{isa:?} {m}x{k}x{n}: 2 threads differ"
                ),
            }
        }
    }
    for isa in Isa::available() {
        for &(m, k, panels) in &[
            (1, 1, 1),
            (2, 7, 2),
            (4, 3, 1),
            (5, 9, 3),
            (6, 2, 2),
            (7, 33, 1),
            (8, 64, 2),
            (11, 5, 1),
            (12, 96, 2),
            (13, 17, 3),
            (25, 40, 2),
            (64, 96, 2),
            // Above the threads' threshold (4 Mflop per thread): 2 threads split it.
            (224, 1024, 2),
        ] {
            check::<f32>(isa, m, k, panels);
            check::<f64>(isa, m, k, panels);
        }
    }
}

/// `pack_into` past its parallel threshold (2^18 elements, split by rows, 1 and 3 rows
/// included; or 2^14 for rows several threads wrote, split by panels: 150x256 both ways), in 1
/// and 2 threads, against the layout written out: panel `p`,
/// row `kk`, lane `j` holds `B[kk][p * nr + j]`, zero past `n` and for rows given as `None`;
/// nothing past the packed length is written. In `f32` and `f64`, into a buffer aligned to 64
/// bytes and one 8 bytes past that: from 1 MiB of panels the aligned one is written with
/// non-temporal stores on the paths whose panel rows are whole lines (checked), the other not.
#[test]
fn pack_into_splits_panels_across_threads() {
    fn check<F: Float>(isa: Isa, k: usize, n: usize, spread: bool) {
        let mut seed = 5;
        let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let nr = panel_width::<F>(isa);
        let len = packed_len::<F>(isa, k, n);
        let seven = F::from_f64(7.0);
        for threads in [1, 2] {
            let pool = pool(threads);
            for shift in [0, 8] {
                let mut store = vec![seven; len + 3 + 128 / size_of::<F>()];
                let at = store.as_ptr().align_offset(64) + shift / size_of::<F>();
                let buf = &mut store[at..at + len + 3];
                let streamed = (nr * size_of::<F>()).is_multiple_of(64)
                    && len * size_of::<F>() >= PACK_STREAM_MIN_BYTES
                    && shift == 0
                    && cfg!(target_arch = "x86_64");
                assert_eq!(streams_panels(nr, &buf[..len]), streamed, "{isa:?} {k}x{n}");
                let given = |kk: usize| kk % 5 != 2;
                pool.install(|| {
                    pack_into(
                        isa,
                        k,
                        n,
                        |kk| given(kk).then(|| &b[kk * n..][..n]),
                        buf,
                        spread,
                    );
                });
                for (i, &got) in buf[..len].iter().enumerate() {
                    let (p, kk, j) = (i / (k * nr), i / nr % k, i % nr);
                    let c = p * nr + j;
                    let want = if c < n && given(kk) {
                        b[kk * n + c]
                    } else {
                        F::ZERO
                    };
                    assert_eq!(
                        got, want,
                        "{isa:?} {k}x{n} {threads} threads, shift {shift}, at {p},{kk},{j}"
                    );
                }
                assert_eq!(buf[len..], [seven; 3], "wrote past the packed length");
            }
        }
    }
    for isa in Isa::available() {
        for &(k, n, spread) in &[
            (600, 520, false),
            (513, 1000, false),
            (2, 300_000, false),
            (1, 300_001, false),
            (3, 100_003, true),
            (150, 256, true),
            (150, 256, false),
        ] {
            check::<f32>(isa, k, n, spread);
            check::<f64>(isa, k, n, spread);
        }
    }
}

/// `col_sums` on every path against the plain loop (each column added from zero in row order),
/// bit for bit: widths around its blocks of 64, 32, 16 and 8 columns and below them, 0, 1 and
/// odd row counts, values spanning magnitudes (so the order of the additions shows in the
/// bits), one column with a NaN and one with an infinity; the sums start as garbage.
#[test]
fn col_sums_match_the_row_order_loop() {
    fn check<F: Float>(isa: Isa) {
        for n in [
            1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 56, 63, 64, 65, 120, 129, 200,
        ] {
            for rows in [0, 1, 3, 96] {
                let mut seed = (n * 1000 + rows) as u64;
                let mut g: Vec<F> = (0..rows * n)
                    .map(|i| F::from_f64(lcg(&mut seed) * 10f64.powi((i % 9) as i32 - 4)))
                    .collect();
                if rows > 1 && n > 2 {
                    g[n + 1] = F::from_f64(f64::NAN);
                    g[2] = F::from_f64(f64::INFINITY);
                }
                let mut want = vec![F::ZERO; n];
                for row in g.chunks_exact(n) {
                    for (s, &x) in want.iter_mut().zip(row) {
                        *s += x;
                    }
                }
                let mut got = vec![F::from_f64(7.0); n];
                col_sums(isa, &g, n, &mut got);
                for (j, (&got, &want)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        got.to_f64().to_bits() == want.to_f64().to_bits()
                            || (got.is_nan() && want.is_nan()),
                        "{isa:?} n {n} rows {rows} column {j}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }
    for isa in Isa::available() {
        check::<f32>(isa);
        check::<f64>(isa);
    }
}

/// Records, for a threaded loop, that every panel of every step runs exactly once and that no
/// call of step `s + 1` starts before every call of step `s` has returned.
fn check_step_loop(steps: usize, panels: usize, threads: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs: Vec<AtomicUsize> = (0..steps * panels).map(|_| AtomicUsize::new(0)).collect();
    let finished: Vec<AtomicUsize> = (0..steps).map(|_| AtomicUsize::new(0)).collect();
    let early = AtomicUsize::new(0);
    let lp = StepLoop::with_threads(threads.min(panels));
    lp.run(steps, panels, |s, range| {
        if s > 0 && finished[s - 1].load(Ordering::Acquire) != panels {
            early.fetch_add(1, Ordering::Relaxed);
        }
        for p in range.clone() {
            runs[s * panels + p].fetch_add(1, Ordering::Relaxed);
        }
        finished[s].fetch_add(range.len(), Ordering::Release);
    });
    assert_eq!(early.load(Ordering::Relaxed), 0, "a step started early");
    assert!(
        runs.iter().all(|r| r.load(Ordering::Relaxed) == 1),
        "a panel ran other than once"
    );
}

#[test]
fn step_loop_runs_every_chunk_once_in_step_order() {
    for threads in [2, 3, 5] {
        let pool = pool(threads);
        pool.install(|| {
            for (steps, panels) in [(1, 2), (50, 7), (200, 3), (3, 64)] {
                check_step_loop(steps, panels, threads);
            }
        });
    }
}

/// The other pool thread is blocked for the whole loop: the caller must run every chunk.
#[test]
fn step_loop_completes_when_helpers_never_arrive() {
    let pool = pool(2);
    let done = std::sync::atomic::AtomicBool::new(false);
    pool.install(|| {
        rayon::join(
            || {
                check_step_loop(100, 5, 2);
                done.store(true, std::sync::atomic::Ordering::Release);
            },
            // Whichever pool thread runs this is held (not in rayon) until the loop is done.
            || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::yield_now();
                }
            },
        )
    });
}

/// `StepLoop::run_parts` on `threads` participants: every unit of parts of `bounds` runs
/// exactly once, with `ahead` only where the next unit is in the same part.
fn check_run_parts(threads: usize, bounds: &[usize]) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let total = bounds[threads];
    let runs: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
    StepLoop::with_threads(threads).run_parts(
        |p| bounds[p],
        |u, ahead| {
            runs[u].fetch_add(1, Ordering::Relaxed);
            let part_end = bounds.iter().copied().find(|&b| b > u).unwrap();
            assert!(!ahead || u + 1 < part_end, "unit {u}: ahead past its part");
        },
    );
    for (u, r) in runs.iter().enumerate() {
        assert_eq!(r.load(Ordering::Relaxed), 1, "unit {u} of {bounds:?}");
    }
}

#[test]
fn run_parts_runs_every_unit_once() {
    for threads in [1, 2, 3] {
        pool(threads).install(|| {
            check_run_parts(1, &[0, 0]);
            check_run_parts(1, &[0, 5]);
            check_run_parts(2, &[0, 1, 2]);
            check_run_parts(2, &[0, 40, 80]);
            check_run_parts(2, &[0, 0, 7]);
            check_run_parts(3, &[0, 7, 7, 30]);
            check_run_parts(3, &[0, 100, 200, 300]);
        });
    }
    // The other pool thread held outside rayon: the caller runs every part.
    let done = std::sync::atomic::AtomicBool::new(false);
    pool(2).install(|| {
        rayon::join(
            || {
                check_run_parts(2, &[0, 9, 20]);
                done.store(true, std::sync::atomic::Ordering::Release);
            },
            || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::yield_now();
                }
            },
        )
    });
}

/// A participant slowed down (here the helper sleeps 20 ms in each unit it runs, the caller's
/// units take nothing) leaves the units it has not begun to the other: the caller runs some
/// of the helper's part (the helper could only keep its part by running all ten, 200 ms,
/// while the caller never got to claim one).
#[test]
fn run_parts_hands_over_a_slow_participants_units() {
    use std::sync::Mutex;
    pool(2).install(|| {
        let caller = std::thread::current().id();
        let ran_on = Mutex::new(vec![None; 20]);
        StepLoop::with_threads(2).run_parts(
            |p| 10 * p,
            |u, _| {
                let me = std::thread::current().id();
                ran_on.lock().unwrap()[u] = Some(me);
                if me != caller {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            },
        );
        let ran_on = ran_on.into_inner().unwrap();
        assert!(ran_on.iter().all(Option::is_some), "a unit never ran");
        assert!(
            ran_on[10..].contains(&Some(caller)),
            "the caller took none of the helper's part: {ran_on:?}"
        );
    });
}

#[test]
fn run_parts_propagates_a_panic_instead_of_hanging() {
    for bad in [3, 17] {
        let result = std::panic::catch_unwind(|| {
            pool(2).install(|| {
                StepLoop::with_threads(2)
                    .run_parts(|p| 10 * p, |u, _| assert!(u != bad, "planted panic"))
            })
        });
        assert!(result.is_err(), "unit {bad}'s panic was lost");
    }
}

/// A loop timing its meetings with a limit of zero (every meeting counts as one between cores
/// far apart) runs the rest on the caller once a participant has timed two; with a limit of a second
/// (and the stall rule's), never. Timed meetings need both threads in the first steps, which
/// a busy host may not give a single run (a pool thread is woken when the loop begins, and can
/// lose its core): the first must run alone in at least one of 50 runs (in step 0 the caller
/// waits in its chunk, up to 100 ms, for the helper to run the other), the second in none of
/// 10.
#[test]
fn step_loop_runs_alone_between_cores_far_apart() {
    use std::time::Duration;
    pool(2).install(|| {
        assert!(
            (0..50).any(|_| far_loop(Duration::ZERO) == 1),
            "no run went alone with every meeting beyond the limit"
        );
        for _ in 0..10 {
            assert_eq!(
                far_loop(Duration::from_secs(1)),
                2,
                "went alone within the limit"
            );
        }
    });
}

/// A 40-step loop of 2 threads on the caller's pool (of 2) that times its meetings against
/// `far` (the stall rule's wait a second), each step after the first a 20 us spin; returns
/// the threads that ran it to its end ([`StepLoop::run`]).
fn far_loop(far: std::time::Duration) -> usize {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let spin = |d: Duration| {
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    };
    let caller = std::thread::current().id();
    let arrived = AtomicBool::new(false);
    StepLoop::with_threads(2)
        .stalling_after(Duration::from_secs(1))
        .far_beyond(far)
        .run(40, 2, |s, _| {
            if s > 0 {
                spin(Duration::from_micros(20));
            } else if std::thread::current().id() != caller {
                arrived.store(true, Ordering::Relaxed);
            } else {
                let t = Instant::now();
                while !arrived.load(Ordering::Relaxed) && t.elapsed().as_millis() < 100 {
                    std::hint::spin_loop();
                }
            }
        })
}

/// After a loop went on alone for cores far apart (a limit of zero, as above), calls from the
/// same thread whose time loops the far rule times (`rnn_h76_b8_t100`'s, on the non-Intel
/// cores) run alone: every parallel region in them sees a pool of one. Not before that, not
/// calls of larger loops (`rnn_h512_b16_t50`), not calls from another pool's thread, and not
/// after `FAR_KEEP`; a stall hand-over leaves no such verdict.
#[test]
fn calls_run_alone_while_a_far_verdict_holds() {
    use super::alone_while_far;
    use super::threads::{FAR_KEEP, pool_threads};
    use std::time::Duration;
    let small = || alone_while_far(5, 8, 76, 76, 100, pool_threads);
    let large = || alone_while_far(32, 16, 512, 512, 50, pool_threads);
    let intel = crate::isa::vendor_is_intel();
    pool(2).install(|| {
        assert_eq!((small(), large()), (2, 2), "before any far loop");
        assert!(
            (0..50).any(|_| far_loop(Duration::ZERO) == 1),
            "no run went alone with every meeting beyond the limit"
        );
        assert_eq!(
            small(),
            if intel { 2 } else { 1 },
            "a timed call after a far loop"
        );
        assert_eq!(large(), 2, "a larger call after a far loop");
        assert_eq!(pool_threads(), 2, "outside the call");
        assert_eq!(pool(2).install(small), 2, "another pool's thread");
        std::thread::sleep(FAR_KEEP + Duration::from_millis(10));
        assert_eq!(small(), 2, "after FAR_KEEP");
    });
    pool(2).install(|| {
        // A helper that never arrives: the caller runs on alone after the stall.
        let lp = StepLoop::with_threads(2).stalling_after(Duration::from_millis(1));
        let caller = std::thread::current().id();
        lp.run(3, 2, |_, _| {
            if std::thread::current().id() != caller {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        assert_eq!(small(), 2, "after a stall hand-over");
    });
}

/// Which shared loops time their meetings: on the non-Intel cores those shared with less than
/// 96 Kflop per thread per step (`rnn_h76_b8_t100`, `rnn_h120_b3_t100`, `rnn_h170_b1_t100`),
/// not larger ones (`rnn_h256_b1_t150`, `rnn_h128_b8_t100`) nor loops on one thread; never on
/// Intel's.
#[test]
fn only_the_smallest_shared_loops_time_their_meetings() {
    let intel = crate::isa::vendor_is_intel();
    // (rows, H, steps, timed elsewhere)
    for (rows, h, steps, timed) in [
        (8, 76usize, 100, true),
        (3, 120, 100, true),
        (1, 170, 100, true),
        (1, 256, 150, false),
        (8, 128, 100, false),
        (1, 64, 96, false),
    ] {
        let lp = pool(2).install(|| StepLoop::recurrence(h.div_ceil(16), rows, h, h, steps));
        assert_eq!(
            lp.times_meetings(),
            timed && !intel,
            "rows {rows} H {h}: {} threads",
            lp.threads()
        );
    }
}

/// A helper that loses its core while it holds a chunk (here: sleeps 200 ms in it, where the
/// loop's stall limit is 5 ms) hands the loop to the waiting participant: every step from the
/// one after next runs on one thread, each chunk still exactly once.
#[test]
fn step_loop_runs_alone_after_a_participant_stalls() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    let (steps, panels, stall_at) = (600, 4, 400);
    let pool = pool(2);
    pool.install(|| {
        let caller = std::thread::current().id();
        let ran_on: Vec<Mutex<Vec<std::thread::ThreadId>>> =
            (0..steps).map(|_| Mutex::new(Vec::new())).collect();
        let stalled = AtomicUsize::new(usize::MAX);
        let lp = StepLoop::with_threads(2).stalling_after(Duration::from_millis(5));
        lp.run(steps, panels, |s, range| {
            let me = std::thread::current().id();
            ran_on[s].lock().unwrap().extend(range.clone().map(|_| me));
            if s >= stall_at
                && me != caller
                && stalled
                    .compare_exchange(usize::MAX, s, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                // The helper's first chunk from `stall_at` on.
                std::thread::sleep(Duration::from_millis(200));
            } else {
                // Long enough chunks that both participants take part.
                std::thread::sleep(Duration::from_micros(20));
            }
        });
        let ran_on: Vec<Vec<_>> = ran_on.into_iter().map(|m| m.into_inner().unwrap()).collect();
        assert!(ran_on.iter().all(|r| r.len() == panels), "a panel ran other than once");
        assert!(
            ran_on[..stall_at].iter().flatten().any(|&t| t != caller),
            "the helper never ran a chunk: nothing was tested"
        );
        // Without the hand-over the helper takes part after `stall_at`, stalls in its first
        // chunk there and goes on taking part. With it, one thread runs every step from the
        // stall's next but one (if other tests kept a participant off its core for 5 ms
        // before, the hand-over came earlier and the helper never stalls: then one thread
        // from `stall_at` on).
        let stall = match stalled.load(Ordering::Relaxed) {
            usize::MAX => stall_at,
            s => s,
        };
        let after: Vec<_> = ran_on[(stall + 2).min(steps)..].iter().flatten().collect();
        assert!(
            after.iter().all(|&t| t == after[0]),
            "no participant took over the loop: stalled at {}, caller {caller:?}, steps from {}: {:?}",
            stalled.load(Ordering::Relaxed),
            stall + 2,
            &ran_on[stall..(stall + 12).min(steps)]
        );
    });
}

/// Which time loops share a 2-thread pool (the measurements are at [`StepLoop::recurrence`]):
/// on Intel's cores `W_hh` of 210 x 210 from `B = 1`, of 182 x 182 from `B = 4` and of 91 x 91
/// from `B = 16`; elsewhere 170 x 170 from `B = 1`, 147 from `B = 2`, 120 from `B = 3`, 104
/// from `B = 4`; both over enough steps; not the short-step workloads that two threads made
/// slower, a single step, or a short loop.
#[test]
fn time_loops_share_the_pool_only_from_the_measured_sizes() {
    let threads = |rows, h: usize, steps| {
        pool(2).install(|| StepLoop::recurrence(h.div_ceil(16), rows, h, h, steps).threads())
    };
    let intel = crate::isa::vendor_is_intel();
    // (rows, H, steps, threads on Intel's cores, elsewhere)
    let cases = [
        (1, 256, 150, 2, 2),
        (1, 256, 22, 2, 2),
        (1, 256, 21, 1, 1),
        (1, 210, 1000, 2, 2),
        (1, 209, 1000, 1, 2),
        (1, 224, 100, 2, 2),
        (1, 192, 100, 1, 2),
        (1, 170, 100, 1, 2),
        (1, 169, 100, 1, 1),
        (1, 160, 100, 1, 1),
        (2, 147, 100, 1, 2),
        (2, 146, 100, 1, 1),
        (2, 128, 100, 1, 1),
        (3, 120, 100, 1, 2),
        (3, 119, 100, 1, 1),
        (4, 182, 100, 2, 2),
        (4, 181, 100, 1, 2),
        (4, 128, 100, 1, 2),
        (4, 104, 100, 1, 2),
        (4, 103, 100, 1, 1),
        (16, 91, 100, 2, 2),
        (16, 64, 100, 1, 2),
        (1, 64, 96, 1, 1),
        (1, 96, 100, 1, 1),
        (1, 256, 5, 1, 1),
        (1, 256, 1, 1, 1),
        (64, 1760, 1, 2, 2),
    ];
    for (rows, h, steps, on_intel, elsewhere) in cases {
        let want = if intel { on_intel } else { elsewhere };
        assert_eq!(threads(rows, h, steps), want, "rnn_h{h}_b{rows}_t{steps}");
    }
    assert_eq!(
        pool(1).install(|| StepLoop::recurrence(110, 64, 1760, 1760, 50).threads()),
        1
    );
}

/// Which time loops on a 2-thread pool split their rows rather than their panels: those with
/// a tile of rows per thread, split as evenly as the panels would be, weights that fit in L2
/// (`H = 512` in `f32` on Intel's cores, 362 elsewhere) and enough work for the whole loop.
#[test]
fn time_loops_split_rows_where_even_and_in_l2() {
    let isa = Isa::detect();
    let split = |rows: usize, h: usize, steps: usize| {
        let bp = PackedB::<f32>::new(isa, h, h, |_, _| 0.0);
        let a = vec![0f32; rows * h];
        let ops = Operands::new(&a, h, rows, bp.view(), h);
        let tile = step_tile_rows::<f32>(isa, rows, h);
        pool(2).install(|| {
            StepLoop::recurrence(bp.view().panels(), rows, h, h, steps)
                .row_split(&ops, tile, steps)
                .map(|(starts, t)| starts[..=t].to_vec())
        })
    };
    let intel = crate::isa::vendor_is_intel();
    // Halves of whole tiles where the tiles divide them so (8 and 4 rows; not 6 or 12).
    let even = |rows: usize| {
        let tile = step_tile_rows::<f32>(isa, rows, 256);
        rows.is_multiple_of(2 * tile)
            .then(|| vec![0, rows / 2, rows])
    };
    assert_eq!(split(16, 256, 50), even(16));
    assert_eq!(split(16, 512, 50), even(16).filter(|_| intel));
    assert_eq!(split(16, 64, 100), even(16));
    // Weights beyond L2 on every path (12 MiB), a single tile of rows, too little work.
    assert_eq!(split(16, 1760, 50), None);
    assert_eq!(split(1, 256, 150), None);
    assert_eq!(split(4, 512, 100), None);
    assert_eq!(split(16, 32, 10), None);
    // 32 and 64 rows in tiles of 12 would split 12 against 20 and 36 against 28, where the
    // panels split evenly: the time loops run them in tiles of 8 (16 against 16, 32 against
    // 32) wherever the rows may be split; 48 rows in tiles of 12 (AVX-512 on Intel) split 24
    // against 24.
    assert_eq!(split(32, 256, 50), even(32));
    assert_eq!(split(64, 512, 50), even(64).filter(|_| intel));
    if isa == Isa::Avx512 && intel {
        assert_eq!(split(32, 256, 50), Some(vec![0, 16, 32]));
        assert_eq!(split(64, 512, 50), Some(vec![0, 32, 64]));
        assert_eq!(step_tile_rows::<f32>(isa, 48, 256), 12);
        assert_eq!(split(48, 256, 50), Some(vec![0, 24, 48]));
        // `W_hh` beyond L2: 12-row tiles whatever the batch.
        assert_eq!(step_tile_rows::<f32>(isa, 64, 1760), 12);
    }
    // Every thread gets a whole tile: 15 rows in tiles of 4 on three threads start at 0, 4
    // and 8 (the nearest tiles to 5 and 10 would leave the last thread only 3 rows).
    let bp = PackedB::<f32>::new(isa, 64, 64, |_, _| 0.0);
    let a = vec![0f32; 15 * 64];
    let ops = Operands::new(&a, 64, 15, bp.view(), 64);
    let (starts, t) = StepLoop::with_row_threads(3)
        .row_split(&ops, 4, 10)
        .expect("forced");
    assert_eq!(starts[..=t], [0, 4, 8, 15]);
}

#[test]
fn step_loop_propagates_a_panic_instead_of_hanging() {
    let pool = pool(2);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| {
            StepLoop::with_threads(2).run(100, 4, |s, range| {
                assert!(!(s == 7 && range.start > 0), "planted panic");
            })
        })
    }));
    assert!(result.is_err());
}

/// `gemm_packed_a` (A packed by `pack_a_into` from `G = A^T` given row by row) against loops on
/// every path: m = 1..25 (every remainder of 4-, 6- and 12-row panels and tiles), n around the
/// panel widths, from k0 = 0 and past it (the `dW_hh` product skips the first step), in 1 and
/// 2 threads with identical bits; the pack's column sums bitwise against a loop over the rows
/// in order; nothing past the packed length or `C` is written.
#[test]
fn packed_a_gemm_matches_loops_on_every_path() {
    for isa in Isa::available() {
        for m in (1..=25).chain([40, 97]) {
            for &(k, n, k0) in &[(1, 1, 0), (7, 17, 0), (33, 50, 3), (20, 33, 19), (64, 8, 8)] {
                check_packed_a(isa, m, k, n, k0, None);
            }
        }
        // Past the pack's parallel threshold (2^18 elements) and the GEMM's row chunks; past
        // the threshold for rows several threads wrote (2^14, `spread`: every pack here).
        check_packed_a(isa, 300, 1000, 40, 5, None);
        check_packed_a(isa, 256, 150, 40, 1, None);
    }
}

/// As above with the packed `A`'s contraction in K blocks whatever the host's [`tuning`]:
/// blocks of at most 7 (K = 33 in 5 blocks, from k0 = 3 and 0), one block exactly, and the
/// Intel hosts' [`KC_MAX_PACKED_INTEL`] over two blocks; 1 and 2 threads identical.
#[test]
fn packed_a_gemm_in_k_blocks_matches_loops_on_every_path() {
    for isa in Isa::available() {
        for m in [1, 5, 12, 25, 97] {
            check_packed_a(isa, m, 33, 50, 3, Some(7));
            check_packed_a(isa, m, 33, 50, 0, Some(7));
            check_packed_a(isa, m, 20, 17, 0, Some(20));
        }
        let k = KC_MAX_PACKED_INTEL + 60;
        check_packed_a(isa, 30, k, 40, 1, Some(KC_MAX_PACKED_INTEL));
    }
}

/// `C + A B` with `A` packed (`G = A^T` given row by row) against loops, 1 and 2 threads; with
/// `kc`, through [`gemm_ops_tuned`] with K blocks of at most `kc`, else [`gemm_packed_a`].
fn check_packed_a(isa: Isa, m: usize, k: usize, n: usize, k0: usize, kc: Option<usize>) {
    let mut seed = (m * 131 + k * 7 + n) as u64;
    let g: Vec<f64> = (0..k * m).map(|_| lcg(&mut seed)).collect();
    let b: Vec<f64> = (0..(k - k0) * n).map(|_| lcg(&mut seed)).collect();
    let bp = PackedB::new(isa, k - k0, n, |kk, j| b[kk * n + j]);
    let len = packed_a_len(isa, k, m);
    let ldc = n + 2;
    let mut results = Vec::new();
    for threads in [1, 2] {
        let pool = pool(threads);
        let mut buf = vec![7.0; len + 3];
        let mut sums = vec![7.0; m + 1];
        let mut c = vec![0.5; m * ldc];
        pool.install(|| {
            let row = |kk: usize| &g[kk * m..][..m];
            let ap = pack_a_into(isa, k, m, row, &mut buf, Some(&mut sums[..m]), true);
            match kc {
                None => gemm_packed_a(isa, ap, k0, bp.view(), &mut c, ldc, Addend::C),
                Some(kc) => {
                    let ops = Operands::panels(ap, k0, bp.view());
                    let tuning = Tuning {
                        kc_max_packed: kc,
                        ..tuning()
                    };
                    gemm_ops_tuned(isa, ops, &mut c, ldc, Addend::C, tuning);
                }
            }
        });
        assert_eq!(buf[len..], [7.0; 3], "pack wrote past its length");
        assert_eq!(sums[m], 7.0, "wrote past the sums");
        for i in 0..m {
            let want_sum = (0..k).fold(0.0, |s, kk| s + g[kk * m + i]);
            assert_eq!(sums[i].to_bits(), want_sum.to_bits(), "{isa:?} sum {i}");
            for j in 0..ldc {
                let got = c[i * ldc + j];
                if j >= n {
                    assert_eq!(got, 0.5, "wrote outside C");
                    continue;
                }
                let want = 0.5
                    + (k0..k)
                        .map(|kk| g[kk * m + i] * b[(kk - k0) * n + j])
                        .sum::<f64>();
                assert!(
                    (got - want).abs() < 1e-12 * (k as f64 + 1.0),
                    "{isa:?} m={m} k={k} n={n} k0={k0} at {i},{j}: {got} vs {want}"
                );
            }
        }
        results.push(c);
    }
    assert_eq!(results[0], results[1], "{isa:?} 1 vs 2 threads");
}

/// `gemm_packed` splits rows or panels across threads, whichever balances better: both must
/// give the loops' product and the single-threaded bits. (650, 64, 520) splits rows on 2
/// threads (21 chunks: 11 against 10; panels would be 6 against 5), (97, 300, 1000) panels.
#[test]
fn gemm_packed_is_bitwise_identical_for_any_thread_count() {
    fn run<F: Float>(isa: Isa, m: usize, k: usize, n: usize, threads: usize) -> Vec<F> {
        let mut seed = 11;
        let a: Vec<F> = (0..m * k).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
        let mut c = vec![F::ZERO; m * n];
        let pool = pool(threads);
        pool.install(|| gemm_packed(isa, &a, (k, 1), m, bp.view(), &mut c, n, Addend::Zero));
        c
    }
    for isa in Isa::available() {
        // The last shape has a long K and a large B: its contraction runs in K blocks.
        for (m, k, n) in [(650, 64, 520), (97, 300, 1000), (130, 1100, 3820)] {
            let one = run::<f32>(isa, m, k, n, 1);
            for threads in [2, 3] {
                assert!(
                    run::<f32>(isa, m, k, n, threads) == one,
                    "{isa:?} f32 {m}x{k}x{n}"
                );
            }
            let one = run::<f64>(isa, m, k, n, 1);
            assert!(
                run::<f64>(isa, m, k, n, 2) == one,
                "{isa:?} f64 {m}x{k}x{n}"
            );
        }
        // And the row split's product itself, on a 2-thread pool.
        let pool = pool(2);
        pool.install(|| check_store::<f32>(isa, 650, 64, 520, ACCUMULATE));
    }
}

/// [`ProductParts`] computes a product strip by strip over ranges of panels, as the forward
/// pass's projection riding along a time loop: bitwise the one `gemm_packed` call, for rows
/// ending in a full tile, a tile of one or two rows (which sum `K` in other orders), past an
/// `MC` chunk; `K` below and above the one-row tile's register broadcasts (`REG_SPLAT_MIN_K`)
/// and with rows 4 KiB apart (`f32`'s `K = 1024`, f64's 512: the narrow kernel's strips);
/// one panel, several, a partial last one.
#[test]
fn product_parts_match_the_one_call_bitwise() {
    fn check<F: Float>(isa: Isa, m: usize, k: usize, n: usize) {
        let mut seed = 17;
        let a: Vec<F> = (0..m * k).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let b: Vec<F> = (0..k * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let bias: Vec<F> = (0..n).map(|_| F::from_f64(lcg(&mut seed))).collect();
        let bp = PackedB::new(isa, k, n, |kk, j| b[kk * n + j]);
        let mut want = vec![F::ZERO; m * n];
        let add = Addend::Row(&bias);
        gemm_packed(isa, &a, (k, 1), m, bp.view(), &mut want, n, add);
        // Stale values where the parts write: every element must be written.
        let mut got = vec![F::from_f64(7.0); m * n];
        let parts = ProductParts::strided(isa, &a, (k, 1), m, bp.view(), &mut got, n, add).unwrap();
        let (strip, panels) = (parts.strip_rows(), parts.panels());
        assert_eq!(panels, n.div_ceil(panel_width::<F>(isa)));
        for (j, r0) in (0..m).step_by(strip).enumerate() {
            // Panels in `j % 3 + 1` ranges, as the steps of a strip share them.
            let ranges = j % 3 + 1;
            for i in 0..ranges {
                let ps = i * panels / ranges..(i + 1) * panels / ranges;
                // SAFETY: `r0` is a multiple of the strip, below `m`; the panels are in range;
                // `a` and `got` are alive and this thread's.
                unsafe { parts.run(r0..(r0 + strip).min(m), ps) };
            }
        }
        let name = std::any::type_name::<F>();
        assert!(got == want, "{isa:?} {name} {m}x{k}x{n}, strips of {strip}");
    }
    for isa in Isa::available() {
        for m in [1, 2, 3, 12, 13, 14, 25, 26, MC + 1, MC + 2, 150] {
            for (k, n) in [(9, 32), (256, 100), (130, 5)] {
                check::<f32>(isa, m, k, n);
                check::<f64>(isa, m, k, n);
            }
        }
        for m in [9, 10, 41] {
            check::<f32>(isa, m, 1024, 40);
            check::<f64>(isa, m, 512, 40);
        }
    }
    // A contraction the one call splits into blocks has no parts.
    let isa = Isa::available()[0];
    let (k, n) = (KC_MAX + 1, 8);
    let a = vec![0.5f32; k];
    let bp = PackedB::new(isa, k, n, |_, _| 1.0f32);
    let mut c = vec![0.0f32; n];
    let parts = ProductParts::strided(isa, &a, (k, 1), 1, bp.view(), &mut c, n, Addend::Zero);
    assert!(parts.is_none());
}

#[test]
fn k_blocked_products_match_loops_with_every_addend() {
    // K = KC_MAX + 76: two K blocks, the first with the caller's addend, the second
    // accumulating; m = 3 and MC + 2 (one and two row chunks); n = 69, a partial last panel.
    let (k, n) = (KC_MAX + 76, 69);
    for (i, isa) in Isa::available().into_iter().enumerate() {
        for add in [ZERO, ACCUMULATE, 2] {
            check_store::<f32>(isa, 3, k, n, add);
        }
        // Two row chunks (the loops are slow at this size: the best path only).
        if i == 0 {
            check_store::<f32>(isa, MC + 2, k, n, ACCUMULATE);
        }
    }
}

/// A test recurrence: block `s` of `states` becomes `tanh(block s + block s-1 · B)` (block 0
/// from `h0`), through [`FwdStep`], as the forward pass uses it.
struct TestSteps<F> {
    first: Operands<F>,
    rec: Operands<F>,
    base: SharedMut<F>,
    block: usize,
    n: usize,
}

// SAFETY: `first` and `rec` are built over `h0` and `states`' first block (`m x k`, checked by
// `Operands::new`), `base` holds `steps` blocks of `m x n` with `k = n`; step s reads block
// s - 1 (or `h0`) and writes block s in the given panels' columns only.
unsafe impl<F: Float> Steps<F> for TestSteps<F> {
    type Epi = FwdStep<'static, F>;
    fn step(&self, s: usize) -> (Operands<F>, Self::Epi) {
        let base = self.base.get();
        let ops = match s {
            0 => self.first,
            _ => self.rec.with_a(base.wrapping_add((s - 1) * self.block)),
        };
        let epi = FwdStep {
            c: base.wrapping_add(s * self.block),
            ld: self.n,
            lengths: None,
            t: s,
            h_n: None,
            tanh: true,
        };
        (ops, epi)
    }
}

fn run_test_steps<F: Float>(isa: Isa, m: usize, n: usize, steps: usize, threads: usize) -> Vec<F> {
    let panels = n.div_ceil(panel_width::<F>(isa));
    run_test_steps_on(
        isa,
        m,
        n,
        steps,
        StepLoop::with_threads(threads.min(panels)),
    )
}

/// [`run_test_steps`] on the given loop.
fn run_test_steps_on<F: Float>(
    isa: Isa,
    m: usize,
    n: usize,
    steps: usize,
    threads: StepLoop,
) -> Vec<F> {
    let mut seed = (m * 100 + n) as u64;
    let b: Vec<F> = (0..n * n)
        .map(|_| F::from_f64(lcg(&mut seed) * 0.5))
        .collect();
    let h0: Vec<F> = (0..m * n).map(|_| F::from_f64(lcg(&mut seed))).collect();
    let mut states: Vec<F> = (0..steps * m * n)
        .map(|_| F::from_f64(lcg(&mut seed)))
        .collect();
    let bp = PackedB::new(isa, n, n, |kk, j| b[kk * n + j]);
    let panels = bp.view().panels();
    let ts = TestSteps {
        first: Operands::new(&h0, n, m, bp.view(), n),
        rec: Operands::new(&states[..m * n], n, m, bp.view(), n),
        base: SharedMut(states.as_mut_ptr()),
        block: m * n,
        n,
    };
    // SAFETY: `isa` is available (from `Isa::available`); `TestSteps` meets the contract.
    unsafe { threads.run_steps(isa, &ts, steps, panels) };
    states
}

#[test]
fn run_steps_in_one_call_matches_threaded_steps_bitwise_and_loops() {
    for isa in Isa::available() {
        let nr = panel_width::<f32>(isa);
        for &(m, n) in &[
            (1, 1),
            (1, nr - 1),
            (1, nr),
            (1, 2 * nr + 3),
            // Odd steps run the panels in reverse (one row: pairs of panels, then the
            // partial last one first): 4 full panels, 5 and a partial one; 2 and 8 rows.
            (1, 4 * nr),
            (1, 5 * nr + 7),
            (2, 3 * nr + 1),
            (8, 4 * nr + 5),
            (3, nr + 1),
            (9, 37),
            // Rows split between threads in whole tiles: two and three 8-row tiles (a 4-row
            // one left over), with a partial panel; on the portable path's 4-row tiles, 15
            // rows in three threads, the last with a tile and the 3 rows left over.
            (16, nr + 5),
            (28, 2 * nr),
            (15, nr + 3),
            // From `STEP_TALL_MIN_ROWS` rows, where 12 divides them, the AVX-512 f32 loops on
            // Intel's CPUs run 12-row tiles: 24 rows in two, 36 in three; 26 and 34 rows run
            // 8-row tiles with a 2-row remainder (two partial sums).
            (STEP_TALL_MIN_ROWS, nr + 1),
            (36, nr + 7),
            (26, 37),
            (34, 2 * nr + 3),
        ] {
            let steps = 5;
            let one = run_test_steps::<f32>(isa, m, n, steps, 1);
            for threads in [2, 3] {
                let many = run_test_steps::<f32>(isa, m, n, steps, threads);
                // The rows split between the threads (wherever each gets a whole tile of
                // them: from 8 rows on the portable path's 4-row tiles, 12 on AVX2's 6, 16 on
                // AVX-512's 8 and 24 on its 12).
                let by_rows =
                    run_test_steps_on::<f32>(isa, m, n, steps, StepLoop::with_row_threads(threads));
                for (split, got) in [("panels", &many), ("rows", &by_rows)] {
                    assert!(
                        one.iter().zip(got).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{isa:?} m={m} n={n} threads={threads} ({split}): not bitwise identical"
                    );
                }
            }
            // Against loops in f64 from the same inputs.
            let mut seed = (m * 100 + n) as u64;
            let b: Vec<f64> = (0..n * n).map(|_| lcg(&mut seed) * 0.5).collect();
            let mut prev: Vec<f64> = (0..m * n).map(|_| lcg(&mut seed)).collect();
            let init: Vec<f64> = (0..steps * m * n).map(|_| lcg(&mut seed)).collect();
            for s in 0..steps {
                let mut cur = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        let mut x = init[s * m * n + i * n + j] as f32 as f64;
                        for kk in 0..n {
                            x += prev[i * n + kk] * (b[kk * n + j] as f32 as f64);
                        }
                        cur[i * n + j] = x.tanh();
                        let got = one[s * m * n + i * n + j] as f64;
                        // f32 products over n terms plus the tanh bound, growing with the
                        // steps through a contraction (|tanh'| <= 1, weights below 0.5).
                        let tol = 1e-5 * (n as f64 + 4.0) * (s as f64 + 1.0);
                        assert!(
                            (got - cur[i * n + j]).abs() <= tol,
                            "{isa:?} m={m} n={n} step {s} [{i}][{j}]: {got} vs {}",
                            cur[i * n + j]
                        );
                    }
                }
                prev = cur;
            }
        }
    }
}

/// Throughput probe of `pack_into` (the weight-gradient operands) and of `pack_a_into` with
/// the column sums (`dA^T` and the bias gradients), 1 and 2 threads, best of 7: `cargo test
/// --release --lib pack_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn pack_speed() {
    let isa = Isa::detect();
    for threads in [1, 2] {
        let pool = pool(threads);
        for &(k, n) in &[
            (1584usize, 512usize),
            (3200, 512),
            (672, 32),
            (3200, 1760),
            (96, 64),
            (150, 256),
        ] {
            let src = vec![0.5f32; k * n];
            let mut dst = vec![0f32; packed_len::<f32>(isa, k, n).max(packed_a_len(isa, k, n))];
            let mut sums = vec![0f32; n];
            let reps = (20_000_000 / (k * n)).max(3);
            // `pack_into`, then `pack_a_into` with the column sums (as `backward` packs `dA^T`).
            for a in [false, true] {
                let mut best = f64::MAX;
                for _ in 0..7 {
                    let t = std::time::Instant::now();
                    pool.install(|| {
                        for _ in 0..reps {
                            let row = |r: usize| &src[r * n..][..n];
                            let p = if a {
                                pack_a_into(isa, k, n, row, &mut dst, Some(&mut sums), false)
                            } else {
                                pack_into(isa, k, n, |r| Some(row(r)), &mut dst, false)
                            };
                            std::hint::black_box(&p);
                        }
                    });
                    best = best.min(t.elapsed().as_secs_f64() / reps as f64);
                }
                let gbs = 8.0 * (k * n) as f64 / best * 1e-9;
                let what = if a { "pack_a_into + sums" } else { "pack_into" };
                println!(
                    "{what} {k}x{n} ({isa:?}, {threads} threads): {:.1} us, {gbs:.2} GB/s read + written",
                    best * 1e6
                );
            }
        }
    }
}

/// The weight gradients' `dA^T` two ways, each followed by two products (as `dW_ih` and
/// `dW_hh` share it): panels packed by `pack_a_into` (with the bias sums) and a strided view.
/// A probe: `cargo test --release --lib dw_speed -- --ignored --nocapture` (1 thread, rounds
/// alternate the two, best of 7 per way).
#[test]
#[ignore]
fn dw_speed() {
    let pool = pool(1);
    pool.install(|| {
        let isa = Isa::detect();
        let shapes = [
            (512usize, 3200usize),
            (512, 800),
            (256, 800),
            (256, 150),
            (128, 800),
            (64, 96),
            (1760, 800),
        ];
        for &(h, rows) in &shapes {
            let mut seed = 9;
            let da: Vec<f32> = (0..rows * h).map(|_| lcg(&mut seed) as f32).collect();
            let x: Vec<f32> = (0..rows * h).map(|_| lcg(&mut seed) as f32).collect();
            let mut xbuf = vec![0f32; packed_len::<f32>(isa, rows, h)];
            let xp = pack_into(isa, rows, h, |r| Some(&x[r * h..][..h]), &mut xbuf, false);
            let mut a_buf = vec![0f32; packed_a_len(isa, rows, h)];
            let mut sums = vec![0f32; h];
            let mut c = vec![0f32; h * h];
            let best = best_of_rounds(7, &[true, false], |&packed| {
                let t = std::time::Instant::now();
                if packed {
                    let g = |r: usize| &da[r * h..][..h];
                    let ap = pack_a_into(isa, rows, h, g, &mut a_buf, Some(&mut sums), false);
                    for _ in 0..2 {
                        gemm_packed_a(isa, ap, 0, xp, &mut c, h, Addend::C);
                    }
                } else {
                    for _ in 0..2 {
                        gemm_packed(isa, &da, (1, h), h, xp, &mut c, h, Addend::C);
                    }
                }
                t.elapsed().as_secs_f64()
            });
            let f = 4.0 * (rows * h * h) as f64 * 1e-9;
            println!(
                "dW {h}x{rows}x{h} x2: packed A {:.3} ms ({:.1} GF/s), strided {:.3} ms ({:.1})",
                best[0] * 1e3,
                f / best[0],
                best[1] * 1e3,
                f / best[1]
            );
        }
    });
}

/// A probe of the weight-gradient products' K blocking: `cargo test --release --lib kc_speed
/// -- --ignored --nocapture` (1 thread, `A` packed as `backward` packs `dA^T`; rounds
/// alternate the block lengths, best of 9 rounds of 3 products each).
#[test]
#[ignore]
fn kc_speed() {
    let pool = pool(1);
    pool.install(|| {
        let isa = Isa::detect();
        for (h, rows) in [(512usize, 3200usize), (1760, 3200)] {
            let mut seed = 5;
            let da: Vec<f32> = (0..rows * h).map(|_| lcg(&mut seed) as f32).collect();
            let x: Vec<f32> = (0..rows * h).map(|_| lcg(&mut seed) as f32).collect();
            let mut xbuf = vec![0f32; packed_len::<f32>(isa, rows, h)];
            let xp = pack_into(isa, rows, h, |r| Some(&x[r * h..][..h]), &mut xbuf, false);
            let mut a_buf = vec![0f32; packed_a_len(isa, rows, h)];
            let ap = pack_a_into(isa, rows, h, |r| &da[r * h..][..h], &mut a_buf, None, false);
            let mut c = vec![0f32; h * h];
            let kcs = [rows, rows.div_ceil(2), 1067, 768, 512, 384, 256];
            let best = best_of_rounds(9, &kcs, |&kc| {
                let tuning = Tuning {
                    kc_max_packed: kc,
                    ..tuning()
                };
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    let ops = Operands::panels(ap, 0, xp);
                    gemm_ops_tuned(isa, ops, &mut c, h, Addend::C, tuning);
                }
                t.elapsed().as_secs_f64() / 3.0
            });
            for (kc, best) in kcs.iter().zip(&best) {
                let gf = 2.0 * (rows * h * h) as f64 / best * 1e-9;
                println!(
                    "{h}x{rows}x{h}, K blocks of <= {kc}: {:.3} ms, {gf:.1} GFLOP/s",
                    best * 1e3
                );
            }
        }
    });
}

/// The probes' timing scheme: `rounds` rounds, each timing every variant once in turn (so a
/// slow phase of a shared host falls on all of them), and the fastest time of each.
fn best_of_rounds<T>(rounds: usize, variants: &[T], mut time: impl FnMut(&T) -> f64) -> Vec<f64> {
    let mut best = vec![f64::MAX; variants.len()];
    for _ in 0..rounds {
        for (v, best) in variants.iter().zip(&mut best) {
            *best = best.min(time(v));
        }
    }
    best
}

/// Seconds per `gemm_ops_tuned` call, `C = A B` with `A` strided (`m` rows `lda` apart) and
/// `bp` packed, averaged over `reps` calls: the timing of the probes below.
#[allow(clippy::too_many_arguments)]
fn time_strided(
    isa: Isa,
    a: &[f32],
    lda: usize,
    m: usize,
    bp: &PackedB<f32>,
    c: &mut [f32],
    tuning: Tuning,
    reps: usize,
) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let ops = Operands::new(a, lda, m, bp.view(), bp.k);
        gemm_ops_tuned(isa, ops, c, bp.n, Addend::Zero, tuning);
    }
    t.elapsed().as_secs_f64() / reps as f64
}

/// A probe of fetching the next chunk's rows of `A` and `C` ahead (`Tuning::ahead`): `cargo
/// test --release --lib ahead_speed -- --ignored --nocapture` (1 thread, `A` and `C` as the
/// input projection and `dX` have them, rounds alternate without / with, best of 7).
#[test]
#[ignore]
fn ahead_speed() {
    let pool = pool(1);
    pool.install(|| {
        let isa = Isa::detect();
        for (m, k, n) in [
            (3200usize, 512usize, 512usize),
            (800, 512, 512),
            (3200, 256, 256),
            (800, 256, 256),
            (3200, 1760, 1760),
        ] {
            let a = vec![0.5f32; m * k];
            let bp = PackedB::new(isa, k, n, |_, _| 0.25f32);
            let mut c = vec![0f32; m * n];
            let reps = (1e9 / (2 * m * k * n) as f64).max(3.0) as usize;
            let best = best_of_rounds(7, &[false, true], |&ahead| {
                let tuning = Tuning { ahead, ..tuning() };
                time_strided(isa, &a, k, m, &bp, &mut c, tuning, reps)
            });
            let gf = |t: f64| 2.0 * (m * k * n) as f64 / t * 1e-9;
            println!(
                "{m}x{k}x{n}: without {:.1} GFLOP/s, with {:.1}",
                gf(best[0]),
                gf(best[1])
            );
        }
    });
}

/// A probe of the aliasing rows of `A` (see `gemm_ops_tuned`): `cargo test --release --lib
/// alias_speed -- --ignored --nocapture` (`A` strided as the input projection reads `X`; 1
/// and 2 threads; rounds alternate the tall kernel, the `select` kernel, and the tall kernel
/// on rows padded by 16 elements; best of 9 rounds).
#[test]
#[ignore]
fn alias_speed() {
    for threads in [1usize, 2] {
        let pool = pool(threads);
        pool.install(|| {
            let isa = Isa::detect();
            for (m, k, n) in [
                (400usize, 1024usize, 1024usize),
                (400, 2048, 2048),
                (800, 512, 512),
            ] {
                let mut seed = 3;
                let lda_pad = k + 16;
                let a: Vec<f32> = (0..m * lda_pad).map(|_| lcg(&mut seed) as f32).collect();
                let bp = PackedB::new(isa, k, n, |i, j| ((i * 7 + j * 3) % 11) as f32 * 0.1);
                let mut c = vec![0f32; m * n];
                let reps = (3e8 / (2 * m * k * n) as f64).max(3.0) as usize;
                // (lda, alias_narrow): tall, narrow, tall on padded rows.
                let runs = [(k, false), (k, true), (lda_pad, false)];
                let best = best_of_rounds(9, &runs, |&(lda, alias_narrow)| {
                    let tuning = Tuning {
                        alias_narrow,
                        ..tuning()
                    };
                    time_strided(isa, &a, lda, m, &bp, &mut c, tuning, reps)
                });
                let gf = |t: f64| 2.0 * (m * k * n) as f64 / t * 1e-9;
                println!(
                    "{threads} thread(s) {m}x{k}x{n}: tall {:.1} GFLOP/s, select kernel {:.1}, \
                     tall on rows of {lda_pad} {:.1}",
                    gf(best[0]),
                    gf(best[1]),
                    gf(best[2])
                );
            }
        });
    }
}

/// A probe of K blocks for a strided `A` (the input projection's and `dX`'s shapes): `cargo
/// test --release --lib kc_strided_speed -- --ignored --nocapture` (1 thread, rounds alternate
/// the block lengths, best of 7 rounds of 2 products each).
#[test]
#[ignore]
fn kc_strided_speed() {
    let pool = pool(1);
    pool.install(|| {
        let isa = Isa::detect();
        for (m, k, n) in [
            (3200usize, 1760usize, 1760usize),
            (3200, 512, 512),
            (800, 1760, 1760),
        ] {
            let a = vec![0.5f32; m * k];
            let bp = PackedB::new(isa, k, n, |_, _| 0.25f32);
            let mut c = vec![0f32; m * n];
            let kcs = [4096usize, 1067, 880, 600, 256];
            let best = best_of_rounds(7, &kcs, |&kc| {
                let tuning = Tuning {
                    kc_max: kc,
                    ..tuning()
                };
                time_strided(isa, &a, k, m, &bp, &mut c, tuning, 2)
            });
            for (kc, best) in kcs.iter().zip(&best) {
                let gf = 2.0 * (m * k * n) as f64 / best * 1e-9;
                println!("{m}x{k}x{n}, K blocks of <= {kc}: {gf:.1} GFLOP/s");
            }
        }
    });
}

/// Which products the backward's packs take as shared ([`super::product_shared`], the threads
/// `gemm_packed` runs on): `dW` of `rnn_h170_b1_t100` (170 x 100 x 170, 5.8 Mflop) stays on
/// one thread, `rnn_h76_b8_t100`'s (76 x 800 x 76, 9.2 Mflop) and `rnn_h512_b64_t50`'s share
/// two; nothing on a pool of one.
#[test]
fn products_share_their_threads_from_the_size_gemm_packed_shares() {
    use super::product_shared;
    let cases = [
        ((170, 100, 170), false),
        ((76, 800, 76), true),
        ((512, 3200, 512), true),
    ];
    for ((m, k, n), two) in cases {
        assert_eq!(
            pool(2).install(|| product_shared(m, k, n, 16)),
            two,
            "{m}x{k}x{n}"
        );
        assert!(
            !pool(1).install(|| product_shared(m, k, n, 16)),
            "{m}x{k}x{n}"
        );
    }
}
