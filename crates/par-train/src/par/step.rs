//! One PAR training step through burn-train's [`TrainStep`] / [`InferenceStep`] traits: the
//! model wrapped as a classifier of `batch · N` tokens, so burn-train's metrics (loss, accuracy)
//! and `Learner` apply to it; plus the mixed-precision cast.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;
use burn_train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use par_model::{ParTransformer, TransformerInput};

/// The transformer as a burn-train model: input = PAR-order tokens + classes, output = the
/// per-token classification (logits `[batch · N, V]`, targets `[batch · N]`, mean CE loss).
#[derive(Module, Debug)]
pub struct ParStep {
    /// The model.
    pub model: ParTransformer,
}

impl ParStep {
    /// Teacher-forced logits and mean cross-entropy of a batch.
    ///
    /// # Panics
    ///
    /// If the batch does not fit the model (the trainer checks the data against the config
    /// before the first step).
    pub fn classify(&self, input: TransformerInput) -> ClassificationOutput {
        let targets = input.tokens.clone();
        let logits = self.model.forward(input).expect("batch checked against the model");
        let [b, n, v] = logits.dims();
        let output = logits.reshape([b * n, v]);
        let targets = targets.reshape([b * n]);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), targets.clone());
        ClassificationOutput { loss, output, targets }
    }
}

impl TrainStep for ParStep {
    type Input = TransformerInput;
    type Output = ClassificationOutput;

    fn step(&self, item: TransformerInput) -> TrainOutput<ClassificationOutput> {
        let out = self.classify(item);
        TrainOutput::new(self, out.loss.backward(), out)
    }
}

impl InferenceStep for ParStep {
    type Input = TransformerInput;
    type Output = ClassificationOutput;

    fn step(&self, item: TransformerInput) -> ClassificationOutput {
        self.classify(item)
    }
}

/// Casts every float parameter to `dtype` **through the autodiff graph**, keeping parameter ids:
/// gradients of a loss computed with the cast module flow back, through the casts, to the f32
/// master weights of the original module (Burn has no autocast; this is its equivalent for
/// weights: bf16 storage and matmuls, f32 master weights and optimizer state).
pub struct CastParams(pub DType);

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, mapper) = param.consume();
        Param::from_mapped_value(id, value.cast(self.0), mapper)
    }
}
