//! Hand-tuned CPU kernels for recurrent neural networks.
#![warn(missing_docs)]

pub mod isa;
pub mod vecmath;

pub use isa::Isa;
