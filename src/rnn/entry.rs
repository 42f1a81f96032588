//! The layer's entry points as plain functions of `f32` and of `f64`, compiled once, here.
//!
//! [`Rnn`]'s public methods are generic, and a generic function is compiled again in every
//! crate that calls it: each dependent crate, and each of this crate's test, example and fuzz
//! binaries, rebuilt all the kernels (every instruction-set path, both precisions), 30-80 s of
//! release compile apiece. The methods now only forward to the functions of [`Entry`], which
//! its impls for `f32` and `f64` define as ordinary functions (`#[inline(never)]`, so they
//! are not copied into the caller either): a dependent crate links them.

use super::{Activation, Rnn, RnnDims, RnnGrads, RnnWeights};
use crate::error::Result;
use crate::isa::Isa;
use crate::sequences::Sequences;
use crate::workspace::Workspace;

/// [`Rnn`]'s entry points for one element type (a supertrait of [`crate::Float`], sealed with
/// it, so implemented for `f32` and `f64` only).
pub trait Entry: Sized {
    /// [`Rnn::new`].
    fn rnn_new(activation: Activation, dims: RnnDims, w: RnnWeights<'_, Self>)
    -> Result<Rnn<Self>>;
    /// [`Rnn::with_isa`].
    fn rnn_with_isa(rnn: Rnn<Self>, isa: Isa) -> Result<Rnn<Self>>;
    /// [`Rnn::forward`].
    fn rnn_forward(
        rnn: &Rnn<Self>,
        seq: &Sequences<'_>,
        input: &[Self],
        h0: Option<&[Self]>,
        output: &mut [Self],
        h_n: Option<&mut [Self]>,
    ) -> Result<()>;
    /// [`Rnn::forward_final`].
    fn rnn_forward_final(
        rnn: &Rnn<Self>,
        seq: &Sequences<'_>,
        input: &[Self],
        h0: Option<&[Self]>,
        h_n: &mut [Self],
        workspace: &mut Workspace<Self>,
    ) -> Result<()>;
    /// [`Rnn::backward`].
    #[allow(clippy::too_many_arguments)]
    fn rnn_backward(
        rnn: &Rnn<Self>,
        seq: &Sequences<'_>,
        input: &[Self],
        h0: Option<&[Self]>,
        output: &[Self],
        grad_output: Option<&[Self]>,
        grad_h_n: Option<&[Self]>,
        grads: RnnGrads<'_, Self>,
        workspace: &mut Workspace<Self>,
    ) -> Result<()>;
}

macro_rules! impl_entry {
    ($t:ty) => {
        impl Entry for $t {
            #[inline(never)]
            fn rnn_new(
                activation: Activation,
                dims: RnnDims,
                w: RnnWeights<'_, $t>,
            ) -> Result<Rnn<$t>> {
                Rnn::new_body(activation, dims, w)
            }
            #[inline(never)]
            fn rnn_with_isa(rnn: Rnn<$t>, isa: Isa) -> Result<Rnn<$t>> {
                rnn.with_isa_body(isa)
            }
            #[inline(never)]
            fn rnn_forward(
                rnn: &Rnn<$t>,
                seq: &Sequences<'_>,
                input: &[$t],
                h0: Option<&[$t]>,
                output: &mut [$t],
                h_n: Option<&mut [$t]>,
            ) -> Result<()> {
                rnn.alone_while_far(seq, || rnn.forward_body(seq, input, h0, output, h_n))
            }
            #[inline(never)]
            fn rnn_forward_final(
                rnn: &Rnn<$t>,
                seq: &Sequences<'_>,
                input: &[$t],
                h0: Option<&[$t]>,
                h_n: &mut [$t],
                workspace: &mut Workspace<$t>,
            ) -> Result<()> {
                rnn.alone_while_far(seq, || {
                    rnn.forward_final_body(seq, input, h0, h_n, workspace)
                })
            }
            #[inline(never)]
            fn rnn_backward(
                rnn: &Rnn<$t>,
                seq: &Sequences<'_>,
                input: &[$t],
                h0: Option<&[$t]>,
                output: &[$t],
                grad_output: Option<&[$t]>,
                grad_h_n: Option<&[$t]>,
                grads: RnnGrads<'_, $t>,
                workspace: &mut Workspace<$t>,
            ) -> Result<()> {
                let (o, go, gh) = (output, grad_output, grad_h_n);
                rnn.alone_while_far(seq, || {
                    rnn.backward_body(seq, input, h0, o, go, gh, grads, workspace)
                })
            }
        }
    };
}

impl_entry!(f32);
impl_entry!(f64);
