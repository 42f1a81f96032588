//! Sets `rnn_unoptimized` when this crate is compiled at `opt-level = 0` (a dependent's or
//! this crate's debug build), where the kernels' tiles are kept out of line: at `opt-level = 0`
//! nothing shares stack slots, so the dozens of tiles that optimized builds inline into one
//! kernel function gave that function a frame of about 1 MiB, and a time loop (two such
//! frames) overflowed the 2 MiB stack of a test thread or a rayon worker. Optimized builds
//! (any other level) inline them as before.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(rnn_unoptimized)");
    println!("cargo::rerun-if-env-changed=OPT_LEVEL");
    if std::env::var("OPT_LEVEL").is_ok_and(|l| l == "0") {
        println!("cargo::rustc-cfg=rnn_unoptimized");
    }
}
