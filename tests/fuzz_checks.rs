//! The fuzz targets' checker functions under plain `cargo test`: on every committed seed
//! (`fuzz/seeds/<target>/`, crashes ever found included, as regression inputs) and on a few
//! hundred deterministic pseudo-random byte strings. The checkers are the same code the
//! `cargo fuzz` targets run (`fuzz/checks/`), included here by path.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

use checks::bytes::pseudo_random_bytes;

/// Runs `check` on every seed of `target` and on `cases` pseudo-random inputs of up to
/// `max_len` bytes.
fn run(target: &str, check: fn(&[u8]), cases: u64, max_len: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable seed directory").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    for path in &seeds {
        let data = std::fs::read(path).expect("readable seed");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: seed {} fails", path.display());
    }
    for case in 0..cases {
        // Lengths from empty to max_len, so short inputs (small problems, zero padding of the
        // reader) are covered as well as long ones.
        let len = (case as usize * 37) % (max_len + 1);
        let data = pseudo_random_bytes(case ^ 0x5eed, len);
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "{target}: pseudo-random case {case} (pseudo_random_bytes({}, {len})) fails",
            case ^ 0x5eed
        );
    }
}

#[test]
fn rnn_vs_reference_seeds_and_random_inputs() {
    run(
        "rnn_vs_reference",
        checks::rnn_vs_reference::check,
        200,
        4096,
    );
}

#[test]
fn api_misuse_seeds_and_random_inputs() {
    run("api_misuse", checks::api_misuse::check, 600, 1024);
}

#[test]
fn vecmath_seeds_and_random_inputs() {
    run("vecmath", checks::vecmath::check, 300, 1024);
}
