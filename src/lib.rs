//! Hand-tuned CPU kernels for recurrent neural networks.
//!
//! The Elman RNN (PyTorch's `nn.RNN`), forward and backpropagation through time, in `f32` and
//! `f64`, with the shape the hardware wants: the input projection for every step in one GEMM,
//! then only the sequential recurrence per step; in BPTT only the state gradient per step, and
//! every weight gradient from one GEMM over all steps.
//!
//! ```
//! use rnn_kernels::{Activation, Rnn, RnnDims, RnnWeights, Sequences};
//!
//! let (steps, batch, input_size, hidden_size) = (5, 2, 3, 4);
//! let w_ih = vec![0.1f32; hidden_size * input_size];
//! let w_hh = vec![0.05f32; hidden_size * hidden_size];
//! let dims = RnnDims { input_size, hidden_size };
//! let weights = RnnWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
//! let rnn = Rnn::new(Activation::Tanh, dims, weights)?;
//!
//! let input = vec![1.0f32; steps * batch * input_size]; // [T, B, I]
//! let mut output = vec![0.0f32; steps * batch * hidden_size]; // [T, B, H]
//! let mut h_n = vec![0.0f32; batch * hidden_size]; // [B, H]
//! rnn.forward(&Sequences::new(steps, batch), &input, None, &mut output, Some(&mut h_n))?;
//! assert_eq!(&h_n[..], &output[(steps - 1) * batch * hidden_size..]);
//! # Ok::<(), rnn_kernels::Error>(())
//! ```
//!
//! Layouts and where gradients go are documented in [`rnn`] and [`output`]. Every public
//! function validates its arguments and returns an [`Error`] naming the one at fault.
//!
//! A dependent's debug build compiles the kernels unoptimized, 100-160x slower than release;
//! `[profile.dev.package.rnn-kernels]` with `opt-level = 3`, `debug-assertions = false`,
//! `overflow-checks = false` and `codegen-units = 1` in the dependent's `Cargo.toml` gives them
//! release speed there (figures in the README).
#![warn(missing_docs)]

pub mod error;
pub mod float;
mod gemm;
pub mod isa;
mod kernels;
pub mod output;
mod pages;
pub mod reference;
pub mod rnn;
pub mod sequences;
pub mod vecmath;
pub mod workspace;

/// The README's code example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use error::{Error, Result};
pub use float::Float;
pub use isa::Isa;
pub use output::{OutputActivation, OutputDims, OutputGrads, OutputLayer, OutputWeights};
pub use rnn::{Activation, Rnn, RnnDims, RnnGrads, RnnWeights};
pub use sequences::Sequences;
pub use workspace::Workspace;
