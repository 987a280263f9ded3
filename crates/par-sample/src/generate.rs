//! [`generate`]: the KV-cached PAR decode loop.

use par_model::ForwardError;
use par_order::Slot;

use rayon::prelude::*;

use crate::{SampleConfig, SampleConfigError, Sampler, StepModel, guide_into};

/// Why sampling failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A class id outside `0 … num_classes` (the null class `num_classes` is allowed).
    #[error(
        "class id {class} is out of range: the model has {num_classes} classes (ids 0..={num_classes}, {num_classes} = null class)"
    )]
    ClassOutOfRange {
        /// The offending id.
        class: usize,
        /// The model's class count.
        num_classes: usize,
    },
    /// Nothing to generate.
    #[error("no class ids given")]
    Empty,
    /// Bad sampling settings.
    #[error(transparent)]
    Config(#[from] SampleConfigError),
    /// The model refused a step (a bug if it happens: the loop follows the model's own schedule).
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// Logits could not be read back from the device.
    #[error("reading logits from the device: {0}")]
    Readback(String),
    /// The model produced NaN or ±∞ logits: its weights or activations overflow (weights saved
    /// from a diverged run, or a precision too low for them).
    #[error(
        "non-finite logits at decode step {step} of {steps} (sample {sample}, token {token}: {value}); the model's weights or activations overflow"
    )]
    NonFiniteLogits {
        /// The decode step, 1-based (1 = the prefill).
        step: usize,
        /// Decode steps in all.
        steps: usize,
        /// The sample in the batch (0-based).
        sample: usize,
        /// The code id whose logit is non-finite.
        token: usize,
        /// The value.
        value: f32,
    },
}

impl SampleError {
    /// Whether the error lies in the caller's input (class ids, settings) rather than in the
    /// model or the device.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            SampleError::ClassOutOfRange { .. } | SampleError::Empty | SampleError::Config(_)
        )
    }
}

/// Generates one code grid per class id (spec §3): prefill → `n − 1` sequential steps →
/// transition step → parallel steps, with classifier-free guidance (batch doubled with the null
/// class when `cfg_scale > 1`), temperature, top-k/top-p and seeded draws. `model` is the Burn
/// transformer on its device, or any other [`StepModel`] (the CPU engine of `par-cpu`).
///
/// Returns the codes in **raster order**, one `Vec` of `N` code ids per class id. Random draws
/// happen on the host, sample `b` drawing from stream `b` of the seeded generator, so the same
/// seed and the same logits give the same tokens on every backend, and a sample's tokens do not
/// depend on the other classes in the call.
///
/// # Errors
///
/// [`SampleError`] for empty or out-of-range class ids, invalid settings, a device read failure,
/// or non-finite logits (naming the decode step).
pub fn generate<M: StepModel>(
    model: &M,
    classes: &[usize],
    config: &SampleConfig,
) -> Result<Vec<Vec<u32>>, SampleError> {
    let streams: Vec<u64> = (0..classes.len() as u64).collect();
    generate_streams(model, classes, &streams, config)
}

/// [`generate`] with the random stream of every sample given: sample `b` draws from stream
/// `streams[b]` of the seeded generator, so a long job can number its images globally and any
/// image can be regenerated alone or in another batch with the same draws (e.g. stream = the
/// image's index in a 50,000-image run).
///
/// # Errors
///
/// As [`generate`]; [`SampleError::Empty`] if `streams` and `classes` differ in length.
pub fn generate_streams<M: StepModel>(
    model: &M,
    classes: &[usize],
    streams: &[u64],
    config: &SampleConfig,
) -> Result<Vec<Vec<u32>>, SampleError> {
    config.validate()?;
    if streams.len() != classes.len() {
        return Err(SampleError::Empty);
    }
    if classes.is_empty() {
        return Err(SampleError::Empty);
    }
    let num_classes = model.config().num_classes;
    if let Some(&class) = classes.iter().find(|&&c| c > num_classes) {
        return Err(SampleError::ClassOutOfRange { class, num_classes });
    }
    let batch_size = classes.len();
    let schedule = model.schedule();
    let n_tokens = schedule.decode_seq_length();
    // Guidance doubles the batch with the null class while it is on (a prefix of the steps).
    let guided = config.guided_at(0);
    let mut rows = if guided { 2 * batch_size } else { batch_size };
    let mut class_ids: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
    if guided {
        class_ids.extend(std::iter::repeat_n(num_classes as i64, batch_size));
    }

    let mut par_tokens = vec![vec![0u32; n_tokens]; batch_size];
    let mut samplers: Vec<Sampler> = streams.iter().map(|&b| Sampler::new(config, b)).collect();
    let mut cache = model.new_cache();
    let steps = schedule.steps();
    let num_steps = steps.len();
    let mut logits = Vec::new();
    for (index, step) in steps.into_iter().enumerate() {
        let guide = config.guided_at(index);
        if rows > batch_size && !guide {
            // Guidance is over for good: drop the null half from the batch and the KV cache.
            rows = batch_size;
            class_ids.truncate(batch_size);
            model.truncate_batch(&mut cache, batch_size);
        }
        let fed: Vec<usize> = step
            .slots
            .clone()
            .filter_map(|s| match schedule.slot(s) {
                Some(Slot::Token(k)) => Some(k),
                _ => None,
            })
            .collect();
        let mut tokens = Vec::with_capacity(rows * fed.len());
        for r in 0..rows {
            tokens.extend(fed.iter().map(|&k| par_tokens[r % batch_size][k] as i64));
        }
        model.step(&step, &class_ids, &tokens, &mut cache, &mut logits)?; // [rows, len, vocab]
        let len = step.slots.len();
        let vocab = model.config().vocab_size;
        // Each sample's numbers in token order from its own stream (as drawing token by token
        // would take them), then the tokens picked in parallel: a 16× step picks 16 per sample.
        let mut uniforms = Vec::with_capacity(batch_size * len);
        for sampler in samplers.iter_mut() {
            uniforms.extend((0..len).map(|_| sampler.next_uniform()));
        }
        let (logits, samplers) = (&logits, &samplers);
        let picks: Vec<Result<usize, SampleError>> = (0..batch_size * len)
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(row, weights), t| {
                    let (b, j) = (t / len, t % len);
                    let at = |r: usize| &logits[(r * len + j) * vocab..(r * len + j + 1) * vocab];
                    // Guidance mixes the null row in: a non-finite logit there is refused as well.
                    if guide {
                        guide_into(at(b), at(b + batch_size), config.cfg_scale, row);
                    } else {
                        row.clear();
                        row.extend_from_slice(at(b));
                    }
                    samplers[b].pick(row, uniforms[t], weights).map_err(|e| {
                        SampleError::NonFiniteLogits {
                            step: index + 1,
                            steps: num_steps,
                            sample: b,
                            token: e.index,
                            value: e.value,
                        }
                    })
                },
            )
            .collect();
        for (t, pick) in picks.into_iter().enumerate() {
            par_tokens[t / len][step.slots.start + t % len] = pick? as u32;
        }
    }
    let order = schedule.order();
    Ok(par_tokens.iter().map(|t| order.unpermute(t).expect("N tokens per sample")).collect())
}
