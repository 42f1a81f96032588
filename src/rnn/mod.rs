//! The Elman RNN cell (PyTorch's `nn.RNN`, one layer, one direction):
//! `h_t = act(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)`, act = tanh or relu.
//!
//! # Layouts (all row-major, contiguous)
//!
//! | tensor | shape | notes |
//! |---|---|---|
//! | `input` | `[T, B, I]` | time-major |
//! | `h0` | `[B, H]` | optional: zeros when absent |
//! | `output` | `[T, B, H]` | the hidden state after every step; zero beyond a sequence's length |
//! | `h_n` | `[B, H]` | the state after each sequence's last step |
//! | `w_ih` | `[H, I]` | exactly as PyTorch's `weight_ih_l0` |
//! | `w_hh` | `[H, H]` | exactly as PyTorch's `weight_hh_l0` |
//! | `b_ih`, `b_hh` | `[H]` | optional, each independently |
//!
//! # Structure
//!
//! Forward: the input projection `X W_ih^T + b_ih + b_hh` for all T·B rows is ONE GEMM, written
//! straight into `output`; then each step only adds `h_(t-1) W_hh^T` and applies the
//! activation in place. Backward (BPTT): each step only computes
//! `dA_t = (dh_t + carry) * act'(h_t)` (the derivative from the stored output) and
//! `carry = dA_t W_hh`; after the sweep `dX`, `dW_ih`, `dW_hh` and the bias gradients each come
//! from one GEMM or one reduction over all steps.
//!
//! # Where results go
//!
//! Forward outputs (`output`, `h_n`) are overwritten. In [`Rnn::backward`], the gradients of the
//! call's inputs (`d_input`, `d_h0`) are overwritten and the gradients of the parameters
//! (`d_w_ih`, `d_w_hh`, `d_b_ih`, `d_b_hh`) are *accumulated* (`+=`), as PyTorch accumulates
//! into `.grad`: zero them before the first call, then several calls (chunks of a long
//! sequence, micro-batches) sum up.

mod backward;
mod entry;
mod forward;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::isa::Isa;
use crate::kernels::PackedB;
use crate::sequences::{Sequences, check_len, checked_len};

pub use backward::RnnGrads;
pub(crate) use entry::Entry;

/// The recurrent nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `tanh` (PyTorch's `RNN_TANH`, the default). Derivative `1 - h^2`.
    Tanh,
    /// `max(0, a)` (PyTorch's `RNN_RELU`). Derivative 1 where `h > 0`, else 0 (0 at exactly
    /// 0, as in PyTorch).
    Relu,
}

impl Activation {
    /// The activation of a pre-activation value.
    #[inline(always)]
    pub fn apply<F: Float>(self, a: F) -> F {
        match self {
            Activation::Tanh => a.tanh(),
            // NaN propagates, as in PyTorch's relu.
            Activation::Relu => {
                if a > F::ZERO || a.is_nan() {
                    a
                } else {
                    F::ZERO
                }
            }
        }
    }

    /// The derivative expressed through the output `h = act(a)`.
    #[inline(always)]
    pub fn derivative_from_output<F: Float>(self, h: F) -> F {
        match self {
            Activation::Tanh => F::ONE - h * h,
            Activation::Relu => {
                if h > F::ZERO {
                    F::ONE
                } else {
                    F::ZERO
                }
            }
        }
    }
}

/// The parameters of one RNN layer, borrowed, exactly as PyTorch stores them.
#[derive(Clone, Copy, Debug)]
pub struct RnnWeights<'a, F> {
    /// `[H, I]`.
    pub w_ih: &'a [F],
    /// `[H, H]`.
    pub w_hh: &'a [F],
    /// `[H]`, optional.
    pub b_ih: Option<&'a [F]>,
    /// `[H]`, optional.
    pub b_hh: Option<&'a [F]>,
}

/// The sizes of one RNN layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RnnDims {
    /// Input features I.
    pub input_size: usize,
    /// Hidden features H.
    pub hidden_size: usize,
}

impl RnnDims {
    /// Checks that the weights have the shapes of these sizes.
    pub fn validate<F>(&self, w: &RnnWeights<'_, F>) -> Result<()> {
        let (i, h) = (self.input_size, self.hidden_size);
        if i == 0 {
            return Err(Error::ZeroSize { arg: "input_size" });
        }
        if h == 0 {
            return Err(Error::ZeroSize { arg: "hidden_size" });
        }
        check_len("w_ih", w.w_ih.len(), checked_len(h, i, "w_ih")?, || {
            format!("H*I = {h}*{i}")
        })?;
        check_len("w_hh", w.w_hh.len(), checked_len(h, h, "w_hh")?, || {
            format!("H*H = {h}*{h}")
        })?;
        if let Some(b) = w.b_ih {
            check_len("b_ih", b.len(), h, || "H".into())?;
        }
        if let Some(b) = w.b_hh {
            check_len("b_hh", b.len(), h, || "H".into())?;
        }
        Ok(())
    }

    /// Checks `input` `[T, B, I]` and `h0` `[B, H]` against `seq`.
    pub(crate) fn validate_inputs<F>(
        &self,
        seq: &Sequences<'_>,
        input: &[F],
        h0: Option<&[F]>,
    ) -> Result<()> {
        seq.validate()?;
        let (t, b, i, h) = (seq.steps, seq.batch, self.input_size, self.hidden_size);
        check_len("input", input.len(), seq.tensor_len(i, "input")?, || {
            format!("T*B*I = {t}*{b}*{i}")
        })?;
        if let Some(h0) = h0 {
            check_len("h0", h0.len(), checked_len(b, h, "h0")?, || {
                format!("B*H = {b}*{h}")
            })?;
        }
        // The output tensor must be addressable too.
        seq.tensor_len(h, "output")?;
        Ok(())
    }
}

/// A prepared Elman RNN layer: weights validated and laid out once, reusable for any number of
/// calls and shareable between threads (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct Rnn<F> {
    activation: Activation,
    dims: RnnDims,
    /// `[H, I]`.
    w_ih: Vec<F>,
    /// `[H, H]`.
    w_hh: Vec<F>,
    /// `b_ih + b_hh` (whichever are present), `[H]`.
    bias: Option<Vec<F>>,
    has_b_ih: bool,
    has_b_hh: bool,
    isa: Isa,
    /// `W_hh^T` (`B[k][j] = W_hh[j][k]`) packed for `isa`: the forward step's right operand.
    packed_fwd: PackedB<F>,
    /// `W_hh` packed for `isa`: the BPTT step's right operand (`carry = dA_t W_hh`).
    packed_bwd: PackedB<F>,
    /// `W_ih^T` packed for `isa`: the input projection's right operand.
    packed_ih_t: PackedB<F>,
    /// `W_ih` packed for `isa`: the right operand of `d_input = dA W_ih`.
    packed_ih: PackedB<F>,
}

impl<F: Float> Rnn<F> {
    /// Runs `f`, a call over `seq`, on the calling thread alone while the far rule's verdict
    /// holds for its time loop ([`crate::kernels::alone_while_far`]).
    fn alone_while_far<R>(&self, seq: &Sequences<'_>, f: impl FnOnce() -> R) -> R {
        let (panels, h) = (self.packed_fwd.view().panels(), self.dims.hidden_size);
        crate::kernels::alone_while_far(panels, seq.batch, h, h, seq.steps, f)
    }

    /// Validates and prepares the weights of one layer.
    pub fn new(activation: Activation, dims: RnnDims, weights: RnnWeights<'_, F>) -> Result<Self> {
        F::rnn_new(activation, dims, weights)
    }

    /// The body of [`Rnn::new`], compiled once per element type (see [`Entry`]).
    pub(super) fn new_body(
        activation: Activation,
        dims: RnnDims,
        weights: RnnWeights<'_, F>,
    ) -> Result<Self> {
        dims.validate(&weights)?;
        let bias = match (weights.b_ih, weights.b_hh) {
            (None, None) => None,
            (Some(b), None) | (None, Some(b)) => Some(b.to_vec()),
            (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(&x, &y)| x + y).collect()),
        };
        let isa = Isa::detect();
        let (packed_fwd, packed_bwd) = pack_recurrent(isa, weights.w_hh, dims.hidden_size);
        let (packed_ih_t, packed_ih) = pack_input(isa, weights.w_ih, dims);
        Ok(Rnn {
            activation,
            dims,
            w_ih: weights.w_ih.to_vec(),
            w_hh: weights.w_hh.to_vec(),
            bias,
            has_b_ih: weights.b_ih.is_some(),
            has_b_hh: weights.b_hh.is_some(),
            isa,
            packed_fwd,
            packed_bwd,
            packed_ih_t,
            packed_ih,
        })
    }

    /// The same layer running on instruction-set path `isa` (for tests and comparisons).
    pub fn with_isa(self, isa: Isa) -> Result<Self> {
        F::rnn_with_isa(self, isa)
    }

    /// The body of [`Rnn::with_isa`], compiled once per element type (see [`Entry`]).
    pub(super) fn with_isa_body(mut self, isa: Isa) -> Result<Self> {
        if !isa.is_supported() {
            return Err(Error::UnsupportedIsa(isa));
        }
        if crate::kernels::panel_width::<F>(isa) != self.packed_fwd.nr() {
            (self.packed_fwd, self.packed_bwd) =
                pack_recurrent(isa, &self.w_hh, self.dims.hidden_size);
            (self.packed_ih_t, self.packed_ih) = pack_input(isa, &self.w_ih, self.dims);
        }
        self.isa = isa;
        Ok(self)
    }

    /// The instruction-set path this layer runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The layer's sizes.
    pub fn dims(&self) -> RnnDims {
        self.dims
    }

    /// The layer's nonlinearity.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Whether the layer was built with `b_ih` and with `b_hh`.
    pub fn has_biases(&self) -> (bool, bool) {
        (self.has_b_ih, self.has_b_hh)
    }
}

/// Packs `W_hh^T` and `W_hh` (`[H, H]`, row-major) for `isa`'s kernels.
fn pack_recurrent<F: Float>(isa: Isa, w_hh: &[F], h: usize) -> (PackedB<F>, PackedB<F>) {
    (
        PackedB::new(isa, h, h, |k, j| w_hh[j * h + k]),
        PackedB::new(isa, h, h, |k, j| w_hh[k * h + j]),
    )
}

/// Packs `W_ih^T` and `W_ih` (`[H, I]`, row-major) for `isa`'s kernels.
fn pack_input<F: Float>(isa: Isa, w_ih: &[F], dims: RnnDims) -> (PackedB<F>, PackedB<F>) {
    let (i, h) = (dims.input_size, dims.hidden_size);
    (
        PackedB::new(isa, i, h, |k, j| w_ih[j * i + k]),
        PackedB::new(isa, h, i, |k, j| w_ih[k * i + j]),
    )
}
