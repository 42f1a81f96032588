//! A character-level language model trained with this crate's forward pass and BPTT.
//!
//! ```text
//! cargo run --release --example char_rnn [-- --iters N] [--seed S] [--temperature T]
//! ```
//!
//! The network reads `examples/data/recurrent.txt` (a short essay written for this example)
//! one character at a time and learns to predict the next one:
//!
//! ```text
//! x_t  = one_hot(char_t)                          [V]      V = vocabulary size
//! h_t  = tanh(W_ih x_t + W_hh h_(t-1) + b_hh)     [H]      rnn_kernels::Rnn
//! z_t  = W_hy h_t + b_y                           [V]      rnn_kernels::OutputLayer (Identity)
//! loss = mean over t, b of  -log softmax(z_t)[char_(t+1)]  (computed here, in `cross_entropy`)
//! ```
//!
//! Training is truncated backpropagation through time: each iteration takes `BATCH` windows of
//! `STEPS` characters at random places in the text, runs them side by side (`[T, B, ...]`,
//! time-major), and sends the gradient back only through those `STEPS` steps. Every window
//! starts from a zero state (`h0 = None`); nothing is carried between batches. The update is
//! Adam, after clipping the global gradient norm (see `clip_grad_norm`).
//!
//! At the end the model writes text of its own, one sampled character at a time, each one fed
//! back in as the next input.

use std::collections::BTreeSet;
use std::error::Error;
use std::time::Instant;

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rnn_kernels::{
    Activation, OutputActivation, OutputDims, OutputGrads, OutputLayer, OutputWeights, Rnn,
    RnnDims, RnnGrads, RnnWeights, Sequences, Workspace,
};

/// The training text, compiled into the binary so the example runs from any directory.
const TEXT: &str = include_str!("data/recurrent.txt");

/// Hidden state size H.
const HIDDEN: usize = 128;
/// Window length T: how many steps the gradient flows back through.
const STEPS: usize = 48;
/// Windows per batch B.
const BATCH: usize = 24;
/// Adam step size.
const LEARNING_RATE: f32 = 3e-3;
/// Largest allowed global gradient norm (see `clip_grad_norm`).
const CLIP_NORM: f32 = 1.0;
/// Print the mean loss of the last this-many batches.
const REPORT_EVERY: usize = 50;
/// Training iterations unless `--iters N` is given.
const DEFAULT_ITERS: usize = 1500;
/// Characters to generate at the end, and the prompt they continue.
const GENERATE: usize = 200;
const PROMPT: &str = "the network ";

// ---------------------------------------------------------------------------------------------
// Vocabulary: every distinct character of the text gets an index 0..V.
// ---------------------------------------------------------------------------------------------

struct Vocab {
    /// Index -> character, sorted.
    chars: Vec<char>,
}

impl Vocab {
    fn new(text: &str) -> Self {
        let set: BTreeSet<char> = text.chars().collect();
        Vocab {
            chars: set.into_iter().collect(),
        }
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    /// Character -> index (a binary search: `chars` is sorted).
    fn index(&self, c: char) -> usize {
        self.chars
            .binary_search(&c)
            .unwrap_or_else(|_| panic!("character {c:?} is not in the vocabulary"))
    }

    fn encode(&self, text: &str) -> Vec<usize> {
        text.chars().map(|c| self.index(c)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters, with their gradient and the two Adam moments alongside.
// ---------------------------------------------------------------------------------------------

struct Param {
    value: Vec<f32>,
    /// dLoss/dvalue. The crate ACCUMULATES into parameter gradients (`+=`), so this is zeroed
    /// before every backward pass.
    grad: Vec<f32>,
    /// Adam's running mean of the gradient and of its square.
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Param {
    /// Uniform in `[-bound, bound]`, PyTorch's default for `nn.RNN` and `nn.Linear` with
    /// `bound = 1 / sqrt(H)`.
    fn uniform(len: usize, bound: f32, rng: &mut StdRng) -> Self {
        let value = (0..len).map(|_| rng.random_range(-bound..bound)).collect();
        Param {
            value,
            grad: vec![0.0; len],
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    fn zeros(len: usize) -> Self {
        Param {
            value: vec![0.0; len],
            grad: vec![0.0; len],
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }
}

/// The five trainable tensors, laid out exactly as the crate (and PyTorch) expects.
struct Model {
    vocab: usize,
    /// `[H, V]`: with one-hot inputs, column `c` is the "embedding" of character `c`.
    w_ih: Param,
    /// `[H, H]`: the recurrence.
    w_hh: Param,
    /// `[H]`: one hidden bias is enough (the crate sums `b_ih + b_hh` anyway), so `b_ih` is
    /// left out.
    b_hh: Param,
    /// `[V, H]`: hidden state -> logits.
    w_hy: Param,
    /// `[V]`.
    b_y: Param,
}

impl Model {
    fn new(vocab: usize, rng: &mut StdRng) -> Self {
        let bound = 1.0 / (HIDDEN as f32).sqrt();
        Model {
            vocab,
            w_ih: Param::uniform(HIDDEN * vocab, bound, rng),
            w_hh: Param::uniform(HIDDEN * HIDDEN, bound, rng),
            b_hh: Param::zeros(HIDDEN),
            w_hy: Param::uniform(vocab * HIDDEN, bound, rng),
            b_y: Param::zeros(vocab),
        }
    }

    fn params_mut(&mut self) -> [&mut Param; 5] {
        [
            &mut self.w_ih,
            &mut self.w_hh,
            &mut self.b_hh,
            &mut self.w_hy,
            &mut self.b_y,
        ]
    }

    /// Prepares the two layers from the current weights.
    ///
    /// This is the plan boundary: `Rnn::new` and `OutputLayer::new` validate the weights and
    /// COPY them into the prepared layer, so a layer built before an optimizer step keeps
    /// computing with the old weights. We therefore rebuild both after every update. That is
    /// cheap (a copy of ~30 K floats against millions of flops per batch).
    fn layers(&self) -> rnn_kernels::Result<(Rnn<f32>, OutputLayer<f32>)> {
        let rnn = Rnn::new(
            Activation::Tanh,
            RnnDims {
                input_size: self.vocab,
                hidden_size: HIDDEN,
            },
            RnnWeights {
                w_ih: &self.w_ih.value,
                w_hh: &self.w_hh.value,
                b_ih: None,
                b_hh: Some(&self.b_hh.value),
            },
        )?;
        // Identity (raw logits), not Softmax: we fuse softmax with the cross-entropy below.
        // With a Softmax layer the loss gradient would be dL/dy = -1/y at the target, which
        // blows up when y underflows, and the layer would then multiply it back through the
        // softmax Jacobian. Fused, the gradient w.r.t. the logits is simply `p - one_hot`,
        // bounded and exact.
        let out = OutputLayer::new(
            OutputActivation::Identity,
            OutputDims {
                hidden_size: HIDDEN,
                output_size: self.vocab,
            },
            OutputWeights {
                w_hy: &self.w_hy.value,
                b_y: Some(&self.b_y.value),
            },
        )?;
        Ok((rnn, out))
    }
}

// ---------------------------------------------------------------------------------------------
// Loss: softmax + cross-entropy over the logits, fused and numerically stable.
// ---------------------------------------------------------------------------------------------

/// Mean cross-entropy (in nats) of `logits` (`[N, V]`) against `targets` (`[N]`), and its
/// gradient w.r.t. the logits written to `grad` (`[N, V]`): `(softmax(z) - one_hot) / N`.
///
/// Stable: the row maximum is subtracted before `exp`, so nothing overflows, and the log
/// probability is `z - max - ln(sum)` rather than `ln(p)`, so nothing underflows to `ln(0)`.
fn cross_entropy(logits: &[f32], targets: &[usize], grad: &mut [f32]) -> f32 {
    let v = logits.len() / targets.len();
    let scale = 1.0 / targets.len() as f32;
    let mut total = 0.0f64;
    for ((z, g), &target) in logits
        .chunks_exact(v)
        .zip(grad.chunks_exact_mut(v))
        .zip(targets)
    {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (g, &z) in g.iter_mut().zip(z) {
            *g = (z - max).exp();
            sum += *g;
        }
        total += f64::from(sum.ln() - (z[target] - max));
        for g in g.iter_mut() {
            *g *= scale / sum;
        }
        g[target] -= scale;
    }
    (total / targets.len() as f64) as f32
}

// ---------------------------------------------------------------------------------------------
// A batch of windows and every buffer a training step needs, allocated once.
// ---------------------------------------------------------------------------------------------

struct Batch {
    steps: usize,
    batch: usize,
    /// One-hot characters, `[T, B, V]`.
    input: Vec<f32>,
    /// The next character after each input, `[T * B]`, in the same (time-major) order.
    targets: Vec<usize>,
    /// Every hidden state from the forward pass, `[T, B, H]`; BPTT reads it back.
    hidden: Vec<f32>,
    /// Logits, `[T, B, V]`.
    logits: Vec<f32>,
    /// dLoss/dlogits, `[T, B, V]`.
    grad_logits: Vec<f32>,
    /// dLoss/dhidden, `[T, B, H]`: the output layer writes it, the RNN's backward reads it.
    grad_hidden: Vec<f32>,
}

impl Batch {
    fn new(steps: usize, batch: usize, vocab: usize) -> Self {
        let rows = steps * batch;
        Batch {
            steps,
            batch,
            input: vec![0.0; rows * vocab],
            targets: vec![0; rows],
            hidden: vec![0.0; rows * HIDDEN],
            logits: vec![0.0; rows * vocab],
            grad_logits: vec![0.0; rows * vocab],
            grad_hidden: vec![0.0; rows * HIDDEN],
        }
    }

    fn seq(&self) -> Sequences<'static> {
        Sequences::new(self.steps, self.batch)
    }

    /// Loads window `b` = `ids[starts[b] ..= starts[b] + T]` (T inputs and, shifted by one,
    /// T targets) for every `b`.
    fn load(&mut self, ids: &[usize], starts: &[usize], vocab: usize) {
        assert_eq!(starts.len(), self.batch);
        self.input.fill(0.0);
        for t in 0..self.steps {
            for (b, &start) in starts.iter().enumerate() {
                let row = t * self.batch + b; // time-major: row (t, b) of [T, B, ...]
                self.input[row * vocab + ids[start + t]] = 1.0;
                self.targets[row] = ids[start + t + 1];
            }
        }
    }

    /// Forward pass over the loaded windows; returns the mean loss and leaves `hidden`,
    /// `logits` and `grad_logits` filled for `backward`.
    fn forward(&mut self, rnn: &Rnn<f32>, out: &OutputLayer<f32>) -> rnn_kernels::Result<f32> {
        let seq = self.seq();
        // h0 = None: every window starts from the zero state.
        rnn.forward(&seq, &self.input, None, &mut self.hidden, None)?;
        out.forward(&seq, &self.hidden, &mut self.logits)?;
        Ok(cross_entropy(
            &self.logits,
            &self.targets,
            &mut self.grad_logits,
        ))
    }

    /// Backpropagation through the output layer, then through time. Parameter gradients are
    /// accumulated into `model`'s `grad` buffers (zero them first).
    fn backward(
        &mut self,
        rnn: &Rnn<f32>,
        out: &OutputLayer<f32>,
        model: &mut Model,
        ws: &mut Workspace<f32>,
    ) -> rnn_kernels::Result<()> {
        let seq = self.seq();
        out.backward(
            &seq,
            &self.hidden,
            &self.logits,
            &self.grad_logits,
            OutputGrads {
                d_hidden: Some(&mut self.grad_hidden),
                d_w_hy: Some(&mut model.w_hy.grad),
                d_b_y: Some(&mut model.b_y.grad),
            },
            ws,
        )?;
        rnn.backward(
            &seq,
            &self.input,
            None,
            &self.hidden,
            Some(&self.grad_hidden),
            None, // the loss does not look at h_n separately: it is already the last output row
            RnnGrads {
                d_w_ih: Some(&mut model.w_ih.grad),
                d_w_hh: Some(&mut model.w_hh.grad),
                d_b_hh: Some(&mut model.b_hh.grad),
                ..RnnGrads::default() // no d_input / d_h0: nothing upstream needs them
            },
            ws,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Optimizer: global-norm clipping, then Adam.
// ---------------------------------------------------------------------------------------------

/// Scales all gradients together so that their joint L2 norm is at most `max_norm`; returns the
/// norm before clipping.
///
/// Why: BPTT multiplies the gradient by `W_hh^T diag(1 - h^2)` once per step. When those
/// factors are larger than one the gradient grows geometrically with the window length
/// (exploding gradients), and a single unlucky batch can throw the weights far away. Clipping
/// the norm keeps the direction and bounds the step.
fn clip_grad_norm(params: &mut [&mut Param], max_norm: f32) -> f32 {
    let norm = params
        .iter()
        .flat_map(|p| &p.grad)
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt() as f32;
    if norm > max_norm {
        let scale = max_norm / norm;
        for g in params.iter_mut().flat_map(|p| p.grad.iter_mut()) {
            *g *= scale;
        }
    }
    norm
}

/// One Adam step (Kingma & Ba) for every parameter; `step` counts from 1.
fn adam(params: &mut [&mut Param], step: i32, lr: f32) {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;
    // Bias corrections for the zero-initialised moments, folded into the step size.
    let lr_t = lr * (1.0 - BETA2.powi(step)).sqrt() / (1.0 - BETA1.powi(step));
    for p in params.iter_mut() {
        let Param { value, grad, m, v } = &mut **p;
        for (((w, &g), m), v) in value.iter_mut().zip(&*grad).zip(m).zip(v) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *v = BETA2 * *v + (1.0 - BETA2) * g * g;
            *w -= lr_t * *m / (v.sqrt() + EPS);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generation: one step at a time, feeding each sampled character back in.
// ---------------------------------------------------------------------------------------------

/// Continues `prompt` by `count` characters. `temperature` 0 means greedy (always the most
/// likely character); otherwise sample from `softmax(logits / temperature)`.
fn generate(
    rnn: &Rnn<f32>,
    out: &OutputLayer<f32>,
    vocab: &Vocab,
    prompt: &str,
    count: usize,
    temperature: f32,
    rng: &mut StdRng,
) -> rnn_kernels::Result<String> {
    let v = vocab.len();
    // A "batch" of one sequence of one step: T = B = 1.
    let seq = Sequences::new(1, 1);
    let mut x = vec![0.0f32; v];
    let mut h = vec![0.0f32; HIDDEN]; // the state carried from step to step
    let mut h_next = vec![0.0f32; HIDDEN];
    let mut logits = vec![0.0f32; v];
    let mut probs = vec![0.0f32; v];

    // Reads character `c`: advances the state and leaves the next-character logits.
    let mut feed = |c: usize, h: &mut Vec<f32>, logits: &mut [f32]| {
        x.fill(0.0);
        x[c] = 1.0;
        rnn.forward(&seq, &x, Some(h.as_slice()), &mut h_next, None)?;
        std::mem::swap(h, &mut h_next);
        out.forward(&seq, h, logits)
    };

    let mut text = String::from(prompt);
    for c in vocab.encode(prompt) {
        feed(c, &mut h, &mut logits)?;
    }
    for _ in 0..count {
        let next = if temperature <= 0.0 {
            argmax(&logits)
        } else {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for (p, &z) in probs.iter_mut().zip(&logits) {
                *p = ((z - max) / temperature).exp();
            }
            let sum: f32 = probs.iter().sum();
            // Walk the cumulative distribution up to a uniform draw.
            let mut r = rng.random_range(0.0..sum);
            probs
                .iter()
                .position(|&p| {
                    r -= p;
                    r < 0.0
                })
                .unwrap_or(v - 1)
        };
        text.push(vocab.chars[next]);
        feed(next, &mut h, &mut logits)?;
    }
    Ok(text)
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

// ---------------------------------------------------------------------------------------------
// Putting it together.
// ---------------------------------------------------------------------------------------------

struct Args {
    iters: usize,
    seed: u64,
    temperature: f32,
}

fn parse_args() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        iters: DEFAULT_ITERS,
        seed: 42,
        temperature: 0.5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--iters" => args.iters = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--temperature" => args.temperature = value()?.parse()?,
            _ => {
                return Err(format!(
                    "unknown argument {flag:?}; usage: char_rnn [--iters N] [--seed S] \
                     [--temperature T]"
                )
                .into());
            }
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let mut rng = StdRng::seed_from_u64(args.seed);

    let vocab = Vocab::new(TEXT);
    let ids = vocab.encode(TEXT);
    let v = vocab.len();
    let uniform_loss = (v as f32).ln();
    println!(
        "text: {} chars, vocabulary {v}; model: one-hot {v} -> tanh RNN {HIDDEN} -> {v} logits",
        ids.len(),
    );
    println!(
        "training: {} iterations of {BATCH} windows x {STEPS} steps, Adam lr {LEARNING_RATE}, \
         grad-norm clip {CLIP_NORM}",
        args.iters
    );
    println!(
        "a uniform guess scores ln({v}) = {uniform_loss:.3} nats ({:.2} bits/char)",
        uniform_loss / std::f32::consts::LN_2
    );

    let mut model = Model::new(v, &mut rng);
    // Everything the loop touches is allocated here, once: the batch buffers, and one
    // workspace shared by both backward calls (each takes what it needs at its start and
    // grows it only on the first iteration).
    let mut batch = Batch::new(STEPS, BATCH, v);
    let mut ws = Workspace::new();
    let mut starts = vec![0usize; BATCH];

    let started = Instant::now();
    let (mut rnn, mut out) = model.layers()?;
    let mut loss_sum = 0.0f32;
    let mut max_norm_seen = 0.0f32;
    let mut clipped = 0;
    for iter in 1..=args.iters {
        // 1. A batch of windows at random places (each needs STEPS + 1 characters).
        for s in &mut starts {
            *s = rng.random_range(0..ids.len() - STEPS);
        }
        batch.load(&ids, &starts, v);

        // 2. Forward and loss.
        let loss = batch.forward(&rnn, &out)?;

        // 3. Backward: zero the (accumulating) gradients, then BPTT.
        for p in model.params_mut() {
            p.grad.fill(0.0);
        }
        batch.backward(&rnn, &out, &mut model, &mut ws)?;

        // 4. Clip, step, and rebuild the prepared layers from the new weights.
        let mut params = model.params_mut();
        let norm = clip_grad_norm(&mut params, CLIP_NORM);
        adam(&mut params, iter as i32, LEARNING_RATE);
        (rnn, out) = model.layers()?; // plan boundary: new weights -> new prepared layers

        // 5. Report.
        max_norm_seen = max_norm_seen.max(norm);
        clipped += usize::from(norm > CLIP_NORM);
        loss_sum += loss;
        if iter == 1 {
            println!(
                "iter {iter:5}  loss {loss:.3}  (bits/char {:.2})",
                loss / std::f32::consts::LN_2
            );
        }
        if iter % REPORT_EVERY == 0 || iter == args.iters {
            let n = match iter % REPORT_EVERY {
                0 => REPORT_EVERY,
                r => r,
            };
            let mean = loss_sum / n as f32;
            println!(
                "iter {iter:5}  loss {mean:.3}  (bits/char {:.2})  \
                 grad norm max {max_norm_seen:.2}, clipped {clipped}/{n}",
                mean / std::f32::consts::LN_2
            );
            loss_sum = 0.0;
            max_norm_seen = 0.0;
            clipped = 0;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "trained in {elapsed:.1} s ({:.1} ms/iter); loss = mean over the batches since the last line",
        1e3 * elapsed / args.iters.max(1) as f64
    );

    // Loss over the whole text: every non-overlapping window at once, as one big batch.
    let windows = (ids.len() - 1) / STEPS;
    let all_starts: Vec<usize> = (0..windows).map(|w| w * STEPS).collect();
    let mut whole = Batch::new(STEPS, windows, v);
    whole.load(&ids, &all_starts, v);
    let loss = whole.forward(&rnn, &out)?;
    println!(
        "whole text ({windows} windows of {STEPS}): loss {loss:.3}  (bits/char {:.2}), \
         {:.0}% of the uniform guess",
        loss / std::f32::consts::LN_2,
        100.0 * loss / uniform_loss
    );

    let sample = generate(
        &rnn,
        &out,
        &vocab,
        PROMPT,
        GENERATE,
        args.temperature,
        &mut rng,
    )?;
    println!(
        "\nsample (temperature {}, prompt {PROMPT:?}):\n{sample}",
        args.temperature
    );
    Ok(())
}
