//! The output layer over all steps: `y_t = f(W_hy h_t + b_y)`, f = identity, tanh, sigmoid or
//! softmax (over the output features).
//!
//! Forward is one GEMM over all T·B rows plus the elementwise `f`. Backward computes
//! `dz = dy * f'(y)` row by row (softmax: `y * (dy - <dy, y>)`), then `dW_hy`, `db_y` and the
//! gradient flowing into the hidden states each from one GEMM or reduction.
//!
//! | tensor | shape |
//! |---|---|
//! | `hidden` | `[T, B, H]` (an RNN's `output`) |
//! | `y` | `[T, B, O]`, zero beyond each sequence's length |
//! | `w_hy` | `[O, H]` |
//! | `b_y` | `[O]`, optional |

use crate::error::{Error, Result};
use crate::float::Float;
use crate::gemm::{Mat, MatMut, gemm};
use crate::sequences::{Sequences, check_len, checked_len};
use crate::workspace::Workspace;

/// The output nonlinearity f.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputActivation {
    /// `y = z` (logits).
    Identity,
    /// `y = tanh(z)`.
    Tanh,
    /// `y = 1 / (1 + exp(-z))`.
    Sigmoid,
    /// `y = exp(z - max z) / sum(exp(z - max z))` over the O features of a row.
    Softmax,
}

/// The sizes of an output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputDims {
    /// Hidden features H (the input of this layer).
    pub hidden_size: usize,
    /// Output features O.
    pub output_size: usize,
}

/// The parameters of an output layer, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct OutputWeights<'a, F> {
    /// `[O, H]`.
    pub w_hy: &'a [F],
    /// `[O]`, optional.
    pub b_y: Option<&'a [F]>,
}

impl OutputDims {
    /// Checks that the weights have the shapes of these sizes.
    pub fn validate<F>(&self, w: &OutputWeights<'_, F>) -> Result<()> {
        let (h, o) = (self.hidden_size, self.output_size);
        if h == 0 {
            return Err(Error::ZeroSize { arg: "hidden_size" });
        }
        if o == 0 {
            return Err(Error::ZeroSize { arg: "output_size" });
        }
        check_len("w_hy", w.w_hy.len(), checked_len(o, h, "w_hy")?, || {
            format!("O*H = {o}*{h}")
        })?;
        if let Some(b) = w.b_y {
            check_len("b_y", b.len(), o, || "O".into())?;
        }
        Ok(())
    }

    /// Checks `hidden` `[T, B, H]` against `seq`.
    pub(crate) fn validate_hidden<F>(&self, seq: &Sequences<'_>, hidden: &[F]) -> Result<()> {
        seq.validate()?;
        let (t, b, h) = (seq.steps, seq.batch, self.hidden_size);
        check_len("hidden", hidden.len(), seq.tensor_len(h, "hidden")?, || {
            format!("T*B*H = {t}*{b}*{h}")
        })?;
        seq.tensor_len(self.output_size, "y")?;
        Ok(())
    }
}

/// Where [`OutputLayer::backward`] writes: `d_hidden` (`[T, B, H]`) is overwritten (zero
/// beyond each length); `d_w_hy` (`[O, H]`) and `d_b_y` (`[O]`) are accumulated (`+=`).
#[derive(Debug, Default)]
pub struct OutputGrads<'a, F> {
    /// dL/d`hidden`, overwritten: the `grad_output` to pass to the RNN's backward.
    pub d_hidden: Option<&'a mut [F]>,
    /// dL/d`w_hy`, accumulated.
    pub d_w_hy: Option<&'a mut [F]>,
    /// dL/d`b_y`, accumulated; only for a layer built with `b_y`.
    pub d_b_y: Option<&'a mut [F]>,
}

/// A prepared output layer (`Send + Sync`, reusable).
#[derive(Clone, Debug)]
pub struct OutputLayer<F> {
    f: OutputActivation,
    dims: OutputDims,
    w_hy: Vec<F>,
    b_y: Option<Vec<F>>,
}

impl<F: Float> OutputLayer<F> {
    /// Validates and prepares the weights.
    pub fn new(f: OutputActivation, dims: OutputDims, w: OutputWeights<'_, F>) -> Result<Self> {
        dims.validate(&w)?;
        Ok(OutputLayer {
            f,
            dims,
            w_hy: w.w_hy.to_vec(),
            b_y: w.b_y.map(<[F]>::to_vec),
        })
    }

    /// The layer's sizes.
    pub fn dims(&self) -> OutputDims {
        self.dims
    }

    /// `y = f(hidden W_hy^T + b_y)` for every row; `y` (`[T, B, O]`) is overwritten and is zero
    /// beyond each sequence's length.
    pub fn forward(&self, seq: &Sequences<'_>, hidden: &[F], y: &mut [F]) -> Result<()> {
        self.dims.validate_hidden(seq, hidden)?;
        let (h, o, batch) = (self.dims.hidden_size, self.dims.output_size, seq.batch);
        let rows = seq.steps * batch;
        check_len("y", y.len(), rows * o, || {
            format!("T*B*O = {}*{batch}*{o}", seq.steps)
        })?;
        let beta = match &self.b_y {
            Some(b) => {
                for row in y.chunks_exact_mut(o) {
                    row.copy_from_slice(b);
                }
                F::ONE
            }
            None => F::ZERO,
        };
        gemm(
            F::ONE,
            Mat::new(hidden, rows, h),
            Mat::new(&self.w_hy, o, h).t(),
            beta,
            MatMut::new(y, rows, o),
        );
        for (r, row) in y.chunks_exact_mut(o).enumerate() {
            if !seq.is_active(r / batch, r % batch) {
                row.fill(F::ZERO);
                continue;
            }
            match self.f {
                OutputActivation::Identity => {}
                OutputActivation::Tanh => row.iter_mut().for_each(|v| *v = v.tanh()),
                OutputActivation::Sigmoid => row
                    .iter_mut()
                    .for_each(|v| *v = F::ONE / (F::ONE + (-*v).exp())),
                OutputActivation::Softmax => {
                    let max = row.iter().fold(row[0], |m, &v| if v > m { v } else { m });
                    let mut total = F::ZERO;
                    for v in row.iter_mut() {
                        *v = (*v - max).exp();
                        total += *v;
                    }
                    for v in row.iter_mut() {
                        *v = *v / total;
                    }
                }
            }
        }
        Ok(())
    }

    /// Backward for `L` with `grad_y` = dL/d`y` (`[T, B, O]`), from the forward's `hidden` and
    /// `y`. Rows beyond each length contribute nothing. Workspace: `T*B*O` elements.
    pub fn backward(
        &self,
        seq: &Sequences<'_>,
        hidden: &[F],
        y: &[F],
        grad_y: &[F],
        grads: OutputGrads<'_, F>,
        workspace: &mut Workspace<F>,
    ) -> Result<()> {
        self.dims.validate_hidden(seq, hidden)?;
        let (h, o, batch) = (self.dims.hidden_size, self.dims.output_size, seq.batch);
        let rows = seq.steps * batch;
        let tbo = || format!("T*B*O = {}*{batch}*{o}", seq.steps);
        check_len("y", y.len(), rows * o, tbo)?;
        check_len("grad_y", grad_y.len(), rows * o, tbo)?;
        let OutputGrads {
            d_hidden,
            d_w_hy,
            d_b_y,
        } = grads;
        if let Some(d) = &d_hidden {
            check_len("d_hidden", d.len(), hidden.len(), || {
                format!("T*B*H = {}*{batch}*{h}", seq.steps)
            })?;
        }
        if let Some(d) = &d_w_hy {
            check_len("d_w_hy", d.len(), self.w_hy.len(), || {
                format!("O*H = {o}*{h}")
            })?;
        }
        if let Some(d) = &d_b_y {
            if self.b_y.is_none() {
                return Err(Error::Presence {
                    arg: "d_b_y",
                    why: "the layer was built without b_y",
                });
            }
            check_len("d_b_y", d.len(), o, || "O".into())?;
        }

        let dz = workspace.take(rows * o);
        for (r, ((dz, y), gy)) in dz
            .chunks_exact_mut(o)
            .zip(y.chunks_exact(o))
            .zip(grad_y.chunks_exact(o))
            .enumerate()
        {
            if !seq.is_active(r / batch, r % batch) {
                dz.fill(F::ZERO);
                continue;
            }
            match self.f {
                OutputActivation::Identity => dz.copy_from_slice(gy),
                OutputActivation::Tanh => {
                    for ((d, &y), &g) in dz.iter_mut().zip(y).zip(gy) {
                        *d = g * (F::ONE - y * y);
                    }
                }
                OutputActivation::Sigmoid => {
                    for ((d, &y), &g) in dz.iter_mut().zip(y).zip(gy) {
                        *d = g * y * (F::ONE - y);
                    }
                }
                OutputActivation::Softmax => {
                    let dot: F = y.iter().zip(gy).map(|(&y, &g)| y * g).sum();
                    for ((d, &y), &g) in dz.iter_mut().zip(y).zip(gy) {
                        *d = y * (g - dot);
                    }
                }
            }
        }
        let dz = &*dz;
        if let Some(d_hidden) = d_hidden {
            gemm(
                F::ONE,
                Mat::new(dz, rows, o),
                Mat::new(&self.w_hy, o, h),
                F::ZERO,
                MatMut::new(d_hidden, rows, h),
            );
            if seq.lengths.is_some() {
                for (r, row) in d_hidden.chunks_exact_mut(h).enumerate() {
                    if !seq.is_active(r / batch, r % batch) {
                        row.fill(F::ZERO);
                    }
                }
            }
        }
        if let Some(d_w_hy) = d_w_hy {
            gemm(
                F::ONE,
                Mat::new(dz, rows, o).t(),
                Mat::new(hidden, rows, h),
                F::ONE,
                MatMut::new(d_w_hy, o, h),
            );
        }
        if let Some(d_b_y) = d_b_y {
            for row in dz.chunks_exact(o) {
                for (d, &v) in d_b_y.iter_mut().zip(row) {
                    *d += v;
                }
            }
        }
        Ok(())
    }
}
