//! The checker functions of the fuzz targets, shared with `tests/fuzz_checks.rs`.
//!
//! Each checker takes the fuzzer's raw bytes, reads every choice from them with the tiny
//! reader in [`bytes`] (no `arbitrary`, so the main crate's tests need no extra dependency)
//! and panics when a promise of the crate is broken.
#![allow(dead_code)]

pub mod api_misuse;
pub mod bytes;
pub mod problem;
pub mod rnn_vs_reference;
pub mod vecmath;
