//! [`StepModel`]: what the decode loop needs from a model, so the same loop drives the Burn
//! transformer on any device and the CPU decode engine (`par-cpu`).

use burn::prelude::*;
use burn::tensor::TensorData;
use par_model::{ModelCache, ParTransformer, ParTransformerConfig, StepInput};
use par_order::{ParSchedule, Step};

use crate::SampleError;

/// A decoder that runs one KV-cached decode step at a time (spec §3.2).
pub trait StepModel {
    /// The KV cache of one decode (all layers, all sequences of the batch).
    type Cache;

    /// The model's configuration.
    fn config(&self) -> &ParTransformerConfig;

    /// The ordering, layout and decode steps of the model's grid.
    fn schedule(&self) -> &ParSchedule;

    /// An empty cache for one decode.
    fn new_cache(&self) -> Self::Cache;

    /// Runs `step` for `rows` sequences: embeds the step's slots (the class token of
    /// `classes[r]`, the PAR tokens `tokens[r]`, the transition tokens), attends to the cache plus
    /// the step, appends the step to the cache, and writes the logits of the step's slots on the
    /// host into `logits` (resized; the decode loop reuses one buffer for every step).
    ///
    /// # Shapes
    ///
    /// - classes: `[rows]` class ids (only the prefill reads them; `num_classes` = null class)
    /// - tokens: `[rows, k]` row-major, the PAR tokens the step feeds in slot order (`k` = token
    ///   slots of the step)
    /// - logits: `[rows, step.slots.len(), vocab_size]` row-major f32
    ///
    /// # Errors
    ///
    /// [`SampleError::Forward`] if the step does not continue the cache or the shapes disagree;
    /// [`SampleError::Readback`] if the logits cannot be read from the device.
    fn step(
        &self,
        step: &Step,
        classes: &[i64],
        tokens: &[i64],
        cache: &mut Self::Cache,
        logits: &mut Vec<f32>,
    ) -> Result<(), SampleError>;

    /// Keeps only the first `rows` sequences in the cache (the conditional half, once
    /// classifier-free guidance stops).
    fn truncate_batch(&self, cache: &mut Self::Cache, rows: usize);
}

/// The Burn transformer on the device its weights live on.
impl StepModel for ParTransformer {
    type Cache = ModelCache;

    fn config(&self) -> &ParTransformerConfig {
        ParTransformer::config(self)
    }

    fn schedule(&self) -> &ParSchedule {
        ParTransformer::schedule(self)
    }

    fn new_cache(&self) -> ModelCache {
        ParTransformer::new_cache(self)
    }

    fn step(
        &self,
        step: &Step,
        classes: &[i64],
        tokens: &[i64],
        cache: &mut ModelCache,
        logits: &mut Vec<f32>,
    ) -> Result<(), SampleError> {
        let device = self.norm.weight.device();
        let rows = classes.len();
        let k = tokens.len().checked_div(rows).unwrap_or(0);
        let input = StepInput {
            step: step.clone(),
            classes: Tensor::from_data(TensorData::new(classes.to_vec(), [rows]), &device),
            tokens: Tensor::from_data(TensorData::new(tokens.to_vec(), [rows, k]), &device),
        };
        *logits = self
            .forward_step(input, cache)?
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| SampleError::Readback(format!("{e:?}")))?;
        Ok(())
    }

    fn truncate_batch(&self, cache: &mut ModelCache, rows: usize) {
        cache.truncate_batch(rows);
    }
}
