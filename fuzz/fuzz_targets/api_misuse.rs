//! Fuzz target `api_misuse`: a thin wrapper around `checks::api_misuse::check` (see fuzz/checks/api_misuse.rs).
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::api_misuse::check(data));
