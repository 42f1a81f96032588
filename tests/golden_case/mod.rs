//! Loading and running the golden conformance files of `tests/golden/` (format and semantics:
//! `tests/golden/README.md` and the shared golden README it points to).
//!
//! Shared by `examples/conformance.rs` and `tests/golden.rs`: the loader validates a file
//! completely (metadata, the exact set of tensor names, every dtype and shape, finiteness,
//! float32-exact inputs, integral lengths) and returns an error naming the problem instead of
//! panicking; the runner drives the crate's public API in f32 and f64 and measures
//! `max|ours - golden| / max(max|golden|, 1e-6)` over every output and gradient tensor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use rnn_kernels::{
    Activation, Float, Isa, Rnn, RnnDims, RnnGrads, RnnWeights, Sequences, Workspace,
};
use safetensors::{Dtype, SafeTensors};

/// Largest error an f32 run may have to pass.
pub const TOL_F32: f64 = 1e-5;
/// Largest error an f64 run may have to pass.
pub const TOL_F64: f64 = 1e-10;
/// Floor of the scale a tensor's error is divided by.
const SCALE_FLOOR: f64 = 1e-6;
/// The `format` metadata value this loader understands.
const FORMAT: &str = "rnn-golden-v1";
/// Upper bound on every size in the metadata, so that no shape product can overflow.
const MAX_DIM: usize = 1 << 20;

/// The recurrent cell of a case (`mode` metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `RNN_TANH`.
    RnnTanh,
    /// `RNN_RELU`.
    RnnRelu,
    /// `LSTM`.
    Lstm,
    /// `GRU`.
    Gru,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        match s {
            "RNN_TANH" => Some(Mode::RnnTanh),
            "RNN_RELU" => Some(Mode::RnnRelu),
            "LSTM" => Some(Mode::Lstm),
            "GRU" => Some(Mode::Gru),
            _ => None,
        }
    }

    /// Gate blocks stacked in the weight rows.
    fn gates(self) -> usize {
        match self {
            Mode::RnnTanh | Mode::RnnRelu => 1,
            Mode::Lstm => 4,
            Mode::Gru => 3,
        }
    }
}

/// One validated golden file.
#[derive(Clone, Debug)]
pub struct GoldenCase {
    /// The `case` metadata value.
    pub case: String,
    /// The cell.
    pub mode: Mode,
    /// I.
    pub input_size: usize,
    /// H.
    pub hidden_size: usize,
    /// L.
    pub num_layers: usize,
    /// T (padded length when varlen).
    pub seq_len: usize,
    /// B.
    pub batch: usize,
    /// D = 2.
    pub bidirectional: bool,
    /// Whether the `bias_*` tensors are present.
    pub bias: bool,
    /// Per-sequence lengths (varlen cases), validated to be in `1..=T`.
    pub lengths: Option<Vec<usize>>,
    /// Every tensor, by name.
    tensors: BTreeMap<String, Vec<f64>>,
}

/// The error of one run (one precision) over all compared tensors.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The largest normalized error (infinite when a value is NaN or a length is wrong).
    pub max_err: f64,
    /// The tensor where it occurred.
    pub worst: String,
}

/// What running one case gave.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The crate does not implement what the case needs; the reason names it.
    Skip(String),
    /// Both precisions ran (or the crate returned an error, kept as the `Err`).
    Ran {
        /// f32 run, compared after widening with the f64 goldens.
        f32: Result<Measured, String>,
        /// f64 run.
        f64: Result<Measured, String>,
    },
}

impl Outcome {
    /// Whether the case ran and both precisions are within tolerance.
    pub fn passed(&self) -> bool {
        match self {
            Outcome::Ran {
                f32: Ok(a),
                f64: Ok(b),
            } => a.max_err <= TOL_F32 && b.max_err <= TOL_F64,
            _ => false,
        }
    }

    /// Whether the case is a failure (ran and is out of tolerance, or the crate errored).
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Ran { .. }) && !self.passed()
    }

    /// `PASS|FAIL|SKIP case max_err_f32 max_err_f64 [(why)]`.
    pub fn line(&self, case: &str) -> String {
        match self {
            Outcome::Skip(reason) => format!("SKIP {case} - - ({reason})"),
            Outcome::Ran { f32, f64 } => {
                let verdict = if self.passed() { "PASS" } else { "FAIL" };
                let mut line = format!("{verdict} {case} {} {}", fmt_err(f32), fmt_err(f64));
                let mut why = Vec::new();
                for (name, run, tol) in [("f32", f32, TOL_F32), ("f64", f64, TOL_F64)] {
                    match run {
                        Err(e) => why.push(format!("{name}: {e}")),
                        Ok(m) if m.max_err.is_nan() || m.max_err > tol => {
                            why.push(format!("{name}: worst tensor {} > {tol:e}", m.worst))
                        }
                        Ok(_) => {}
                    }
                }
                if !why.is_empty() {
                    let _ = write!(line, " ({})", why.join("; "));
                }
                line
            }
        }
    }
}

fn fmt_err(run: &Result<Measured, String>) -> String {
    match run {
        Ok(m) => format!("{:.2e}", m.max_err),
        Err(_) => "-".into(),
    }
}

/// The line for a file that could not be loaded.
pub fn error_line(path: &str, reason: &str) -> String {
    format!("ERROR {path} - - ({reason})")
}

fn meta<'m>(m: &'m HashMap<String, String>, key: &str) -> Result<&'m str, String> {
    m.get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("metadata key `{key}` is missing"))
}

fn meta_size(m: &HashMap<String, String>, key: &str) -> Result<usize, String> {
    let v = meta(m, key)?;
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_DIM).contains(&n) => Ok(n),
        _ => Err(format!(
            "metadata `{key}` = {v:?}, expected an integer in 1..={MAX_DIM}"
        )),
    }
}

fn meta_bool(m: &HashMap<String, String>, key: &str) -> Result<bool, String> {
    match meta(m, key)? {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(format!("metadata `{key}` = {v:?}, expected true or false")),
    }
}

/// Tensors that hold drawn float32 values (inputs, parameters, upstream gradients), as opposed
/// to the float64 results (`output`, `h_n`, `c_n`, `grad.*`).
fn is_drawn(name: &str) -> bool {
    !(name.starts_with("grad.") || matches!(name, "output" | "h_n" | "c_n" | "lengths"))
}

impl GoldenCase {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<GoldenCase, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        GoldenCase::from_bytes(&bytes)
    }

    /// Parses and validates the bytes of a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<GoldenCase, String> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| format!("not a valid safetensors file: {e}"))?;
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| format!("not a valid safetensors file: {e}"))?;
        let m = header
            .metadata()
            .as_ref()
            .ok_or("the header has no __metadata__")?;

        let format = meta(m, "format")?;
        if format != FORMAT {
            return Err(format!(
                "metadata `format` = {format:?}, expected {FORMAT:?}"
            ));
        }
        let mode_name = meta(m, "mode")?;
        let mode = Mode::parse(mode_name).ok_or_else(|| {
            format!("metadata `mode` = {mode_name:?}, expected RNN_TANH, RNN_RELU, LSTM or GRU")
        })?;
        let case = meta(m, "case")?.to_string();
        let mut golden = GoldenCase {
            case,
            mode,
            input_size: meta_size(m, "input_size")?,
            hidden_size: meta_size(m, "hidden_size")?,
            num_layers: meta_size(m, "num_layers")?,
            seq_len: meta_size(m, "seq_len")?,
            batch: meta_size(m, "batch")?,
            bidirectional: meta_bool(m, "bidirectional")?,
            bias: meta_bool(m, "bias")?,
            lengths: None,
            tensors: BTreeMap::new(),
        };
        let varlen = meta_bool(m, "varlen")?;

        // Exactly the expected names, each F64 with the expected shape.
        let expected = golden.expected_tensors(varlen);
        let present: BTreeSet<&str> = file.iter().map(|(name, _)| name).collect();
        let missing: Vec<&str> = expected
            .keys()
            .map(String::as_str)
            .filter(|n| !present.contains(n))
            .collect();
        let unexpected: Vec<&str> = present
            .iter()
            .copied()
            .filter(|n| !expected.contains_key(*n))
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(format!(
                "tensor names differ from the expected set: missing {missing:?}, unexpected {unexpected:?}"
            ));
        }
        for (name, shape) in &expected {
            let view = file
                .tensor(name)
                .map_err(|e| format!("tensor `{name}`: {e}"))?;
            if view.dtype() != Dtype::F64 {
                return Err(format!("tensor `{name}` is {}, expected F64", view.dtype()));
            }
            if view.shape() != shape.as_slice() {
                return Err(format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?}",
                    view.shape()
                ));
            }
            let data: Vec<f64> = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
                .collect();
            if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "tensor `{name}`[{i}] is {v}, expected a finite value"
                ));
            }
            if is_drawn(name)
                && let Some((i, v)) = data
                    .iter()
                    .enumerate()
                    .find(|&(_, &v)| f64::from(v as f32) != v)
            {
                return Err(format!(
                    "tensor `{name}`[{i}] = {v:e} is not exactly a float32 value"
                ));
            }
            golden.tensors.insert(name.clone(), data);
        }

        if varlen {
            let lengths = golden.get("lengths")?;
            let mut parsed = Vec::with_capacity(lengths.len());
            for (b, &v) in lengths.iter().enumerate() {
                if v.fract() != 0.0 || v < 1.0 || v > golden.seq_len as f64 {
                    return Err(format!(
                        "`lengths[{b}]` = {v}, expected an integer in 1..={}",
                        golden.seq_len
                    ));
                }
                parsed.push(v as usize);
            }
            if let Some(listed) = m.get("lengths") {
                let from_tensor: Vec<String> = parsed.iter().map(usize::to_string).collect();
                if *listed != from_tensor.join(",") {
                    return Err(format!(
                        "metadata `lengths` = {listed:?} disagrees with the `lengths` tensor \
                         {parsed:?}"
                    ));
                }
            }
            golden.lengths = Some(parsed);
        }
        Ok(golden)
    }

    /// Every tensor name the file must hold, with its shape (README "Tensors").
    fn expected_tensors(&self, varlen: bool) -> BTreeMap<String, Vec<usize>> {
        let (t, b, i, h) = (self.seq_len, self.batch, self.input_size, self.hidden_size);
        let d = if self.bidirectional { 2 } else { 1 };
        let gh = self.mode.gates() * h;
        let state = vec![self.num_layers * d, b, h];
        let mut e = BTreeMap::new();
        let mut both = |name: &str, shape: Vec<usize>| {
            e.insert(format!("grad.{name}"), shape.clone());
            e.insert(name.to_string(), shape);
        };
        both("input", vec![t, b, i]);
        both("h0", state.clone());
        if self.mode == Mode::Lstm {
            both("c0", state.clone());
        }
        for k in 0..self.num_layers {
            let ik = if k == 0 { i } else { d * h };
            for suffix in ["", "_reverse"].into_iter().take(d) {
                both(&format!("weight_ih_l{k}{suffix}"), vec![gh, ik]);
                both(&format!("weight_hh_l{k}{suffix}"), vec![gh, h]);
                if self.bias {
                    both(&format!("bias_ih_l{k}{suffix}"), vec![gh]);
                    both(&format!("bias_hh_l{k}{suffix}"), vec![gh]);
                }
            }
        }
        let mut results = vec![
            ("output", vec![t, b, d * h]),
            ("h_n", state.clone()),
            ("grad_output", vec![t, b, d * h]),
            ("grad_h_n", state.clone()),
        ];
        if self.mode == Mode::Lstm {
            results.push(("c_n", state.clone()));
            results.push(("grad_c_n", state));
        }
        if varlen {
            results.push(("lengths", vec![b]));
        }
        e.extend(results.into_iter().map(|(n, s)| (n.to_string(), s)));
        e
    }

    fn get(&self, name: &str) -> Result<&[f64], String> {
        self.tensors
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("tensor `{name}` is missing"))
    }

    /// Why the crate cannot run this case yet, or `None` if it can.
    pub fn unsupported(&self) -> Option<String> {
        let mut missing = Vec::new();
        match self.mode {
            Mode::Lstm => missing.push("LSTM".to_string()),
            Mode::Gru => missing.push("GRU".to_string()),
            Mode::RnnTanh | Mode::RnnRelu => {}
        }
        if self.num_layers > 1 {
            missing.push(format!("num_layers = {}", self.num_layers));
        }
        if self.bidirectional {
            missing.push("bidirectional".to_string());
        }
        (!missing.is_empty()).then(|| format!("{} not supported yet", missing.join(", ")))
    }

    /// Runs forward and backward in f32 and f64 on `isa` (the detected path when `None`) and
    /// measures both against the goldens.
    pub fn run(&self, isa: Option<Isa>) -> Outcome {
        if let Some(reason) = self.unsupported() {
            return Outcome::Skip(reason);
        }
        Outcome::Ran {
            f32: self.run_in::<f32>(isa),
            f64: self.run_in::<f64>(isa),
        }
    }

    /// One precision: the file's values rounded to `F` (exact for the drawn inputs), results
    /// widened to f64 and compared.
    fn run_in<F: Float>(&self, isa: Option<Isa>) -> Result<Measured, String> {
        let activation = match self.mode {
            Mode::RnnTanh => Activation::Tanh,
            Mode::RnnRelu => Activation::Relu,
            Mode::Lstm | Mode::Gru => return Err("not an Elman RNN case".into()),
        };
        let cast = |name: &str| -> Result<Vec<F>, String> {
            Ok(self.get(name)?.iter().map(|&v| F::from_f64(v)).collect())
        };
        let optional = |name: &str| -> Result<Option<Vec<F>>, String> {
            if self.bias {
                cast(name).map(Some)
            } else {
                Ok(None)
            }
        };
        let (w_ih, w_hh) = (cast("weight_ih_l0")?, cast("weight_hh_l0")?);
        let (b_ih, b_hh) = (optional("bias_ih_l0")?, optional("bias_hh_l0")?);
        let (input, h0) = (cast("input")?, cast("h0")?);
        let (grad_output, grad_h_n) = (cast("grad_output")?, cast("grad_h_n")?);

        let dims = RnnDims {
            input_size: self.input_size,
            hidden_size: self.hidden_size,
        };
        let weights = RnnWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: b_ih.as_deref(),
            b_hh: b_hh.as_deref(),
        };
        let mut rnn = Rnn::new(activation, dims, weights).map_err(|e| format!("Rnn::new: {e}"))?;
        if let Some(isa) = isa {
            rnn = rnn
                .with_isa(isa)
                .map_err(|e| format!("Rnn::with_isa: {e}"))?;
        }
        let seq = Sequences {
            steps: self.seq_len,
            batch: self.batch,
            lengths: self.lengths.as_deref(),
        };

        // What the crate overwrites starts as NaN, so anything it fails to write shows up;
        // what it accumulates into starts at zero.
        let nan = F::from_f64(f64::NAN);
        let state_len = self.batch * self.hidden_size;
        let mut output = vec![nan; self.seq_len * state_len];
        let mut h_n = vec![nan; state_len];
        rnn.forward(&seq, &input, Some(&h0), &mut output, Some(&mut h_n))
            .map_err(|e| format!("forward: {e}"))?;

        let mut d_input = vec![nan; input.len()];
        let mut d_h0 = vec![nan; state_len];
        let mut d_w_ih = vec![F::ZERO; w_ih.len()];
        let mut d_w_hh = vec![F::ZERO; w_hh.len()];
        let mut d_b_ih = b_ih.as_ref().map(|b| vec![F::ZERO; b.len()]);
        let mut d_b_hh = b_hh.as_ref().map(|b| vec![F::ZERO; b.len()]);
        let grads = RnnGrads {
            d_input: Some(&mut d_input),
            d_h0: Some(&mut d_h0),
            d_w_ih: Some(&mut d_w_ih),
            d_w_hh: Some(&mut d_w_hh),
            d_b_ih: d_b_ih.as_deref_mut(),
            d_b_hh: d_b_hh.as_deref_mut(),
        };
        rnn.backward(
            &seq,
            &input,
            Some(&h0),
            &output,
            Some(&grad_output),
            Some(&grad_h_n),
            grads,
            &mut Workspace::new(),
        )
        .map_err(|e| format!("backward: {e}"))?;

        let mut compared: Vec<(&str, &[F])> = vec![
            ("output", &output),
            ("h_n", &h_n),
            ("grad.input", &d_input),
            ("grad.h0", &d_h0),
            ("grad.weight_ih_l0", &d_w_ih),
            ("grad.weight_hh_l0", &d_w_hh),
        ];
        if let (Some(d_b_ih), Some(d_b_hh)) = (&d_b_ih, &d_b_hh) {
            compared.push(("grad.bias_ih_l0", d_b_ih));
            compared.push(("grad.bias_hh_l0", d_b_hh));
        }
        let mut worst = Measured {
            max_err: 0.0,
            worst: "-".into(),
        };
        for (name, ours) in compared {
            let err = normalized_error(ours, self.get(name)?);
            if err.is_nan() || err > worst.max_err {
                worst = Measured {
                    max_err: err,
                    worst: name.into(),
                };
            }
        }
        Ok(worst)
    }
}

/// `max|ours - golden| / max(max|golden|, 1e-6)`; infinite for a NaN or a length mismatch.
pub fn normalized_error<F: Float>(ours: &[F], golden: &[f64]) -> f64 {
    if ours.len() != golden.len() {
        return f64::INFINITY;
    }
    let scale = golden.iter().fold(SCALE_FLOOR, |m, g| m.max(g.abs()));
    let mut max_diff = 0.0f64;
    for (o, g) in ours.iter().zip(golden) {
        let diff = (o.to_f64() - g).abs();
        if diff.is_nan() {
            return f64::INFINITY;
        }
        max_diff = max_diff.max(diff);
    }
    max_diff / scale
}
