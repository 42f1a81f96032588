//! Fuzz target `rnn_vs_reference`: a thin wrapper around `checks::rnn_vs_reference::check` (see fuzz/checks/rnn_vs_reference.rs).
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::rnn_vs_reference::check(data));
