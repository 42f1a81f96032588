//! Fuzz target `vecmath`: a thin wrapper around `checks::vecmath::check` (see fuzz/checks/vecmath.rs).
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::vecmath::check(data));
