//! Hand-tuned CPU kernels for recurrent neural networks.
#![warn(missing_docs)]

pub mod error;
pub mod isa;
pub mod vecmath;

pub use error::{Error, Result};
pub use isa::Isa;
