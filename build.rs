//! Sets `rnn_unoptimized` when this crate is compiled at `opt-level = 0` (a dependent's or
//! this crate's debug build), where the kernels' tiles are kept out of line: at `opt-level = 0`
//! nothing shares stack slots, so the dozens of tiles that optimized builds inline into one
//! kernel function gave that function a frame of about 1 MiB, and a time loop (two such
//! frames) overflowed the 2 MiB stack of a test thread or a rayon worker. Optimized builds
//! (any other level) inline them as before.
//!
//! The fuzz targets' build (cargo-fuzz passes `--cfg fuzzing`) keeps the tiles out of line too,
//! declared here so the cfg is known: with AddressSanitizer every inlined copy of a tile is
//! instrumented and optimized again, and that build took about 6 of CI's 14 minutes (the same
//! arithmetic in the same order either way; see `.ci/run`).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(rnn_unoptimized)");
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
    println!("cargo::rerun-if-env-changed=OPT_LEVEL");
    if std::env::var("OPT_LEVEL").is_ok_and(|l| l == "0") {
        println!("cargo::rustc-cfg=rnn_unoptimized");
    }
}
