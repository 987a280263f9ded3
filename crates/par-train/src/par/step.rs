//! The PAR model as burn-train's `LearnerModel`: [`TrainStep`] / [`InferenceStep`] on
//! [`ParItem`]s, and [`TrainStep::optimize`] overridden with what the paper's optimizer step
//! adds to AdamW — global gradient-norm clipping, a divergence check and the optional EMA — so
//! that burn-train's `Learner` runs the whole Table 5 step (docs/training.md).

use std::sync::Arc;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::DType;
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use par_model::{ParTransformer, TransformerInput};

use super::data::mix;
use super::learner::ParRun;
use super::trainer::Precision;
use crate::grad::clip_grad_norm;
use crate::learner::LossOutput;

/// One (part of a) training or validation batch.
#[derive(Debug, Clone)]
pub struct ParItem {
    /// PAR-order tokens `[b, N]` and classes `[b]`.
    pub input: TransformerInput,
    /// The training step this batch belongs to (0-based); seeds the dropout masks.
    pub step: usize,
    /// This part's share of the global batch (`b / batch_size`; 1 on one device): the loss is
    /// scaled by it, so the gradients summed over the devices are those of the global batch mean.
    pub weight: f64,
}

/// The transformer as a burn-train model, with an optional EMA copy of its weights (updated in
/// [`TrainStep::optimize`], checkpointed with the model).
///
/// Several devices run burn-train's multi-device strategy with the optimizer on the first device
/// (`MultiDeviceOptim::OptimMainDevice`), which sums the parts' gradients there and calls
/// `optimize`; the sharded variant (`optimize_multi`, not overridden here) is not used.
#[derive(Module, Debug)]
pub struct ParStep {
    /// The model.
    pub model: ParTransformer,
    /// `ema ← d·ema + (1 − d)·w` after every update, when the run has an EMA decay `d`.
    pub ema: Option<ParTransformer>,
    /// The training run this step belongs to (precision, clipping, the journal); `None` for a
    /// bare model (validation of a finished model).
    #[module(skip)]
    pub(crate) run: Option<Arc<ParRun>>,
}

impl ParStep {
    /// A bare model (no run: f32, no journal).
    pub fn new(model: ParTransformer) -> Self {
        Self { model, ema: None, run: None }
    }

    /// Teacher-forced mean cross-entropy of a batch.
    ///
    /// # Panics
    ///
    /// If the batch does not fit the model (the trainer checks the data against the config
    /// before the first step).
    pub fn loss(&self, input: TransformerInput) -> Tensor<1> {
        let targets = input.tokens.clone();
        let logits = self.model.forward(input).expect("batch checked against the model");
        let [b, n, v] = logits.dims();
        burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.reshape([b * n, v]), targets.reshape([b * n]))
    }
}

impl TrainStep for ParStep {
    type Input = ParItem;
    type Output = LossOutput;

    fn step(&self, item: ParItem) -> TrainOutput<LossOutput> {
        let device = item.input.tokens.device();
        let precision = self.run.as_ref().map_or(Precision::F32, |r| r.precision);
        if let Some(run) = &self.run {
            // Dropout masks: the generator reseeded from (seed, step) before every step. Burn's
            // generator is global per backend, so with several devices the workers draw from it
            // concurrently and the masks (only they) depend on thread timing.
            device.seed(mix(run.seed ^ mix(item.step as u64)));
        }
        let loss = match precision {
            Precision::F32 => self.loss(item.input),
            // The casts are in the graph: the backward pass ends at the f32 master weights.
            Precision::Bf16 => {
                ParStep::new(self.model.clone().map(&mut CastParams(DType::BF16))).loss(item.input)
            }
        };
        let scaled = if item.weight == 1.0 { loss.clone() } else { loss.clone() * item.weight };
        if let Some(run) = &self.run {
            run.add_loss(scaled.clone().into_scalar::<f64>());
        }
        TrainOutput::new(self, scaled.backward(), LossOutput { loss })
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> Self {
        let norm = self.run.as_ref().map(|r| clip_grad_norm(&self.model, &mut grads, r.grad_clip));
        self.finish_update(norm, |s| optim.step(lr, s, grads))
    }
}

impl ParStep {
    /// The common end of both `optimize` paths: refuse a non-finite gradient norm (no update,
    /// the run stops), update, blend the EMA, check the weights at checkpoint steps, journal.
    fn finish_update(self, norm: Option<f64>, update: impl FnOnce(Self) -> Self) -> Self {
        let (Some(run), Some(norm)) = (self.run.clone(), norm) else {
            return update(self);
        };
        if !run.accept_norm(norm) {
            return self;
        }
        let mut next = update(self);
        if let (Some(ema), Some(decay)) = (next.ema.take(), run.ema_decay) {
            next.ema = Some(blend(ema, &next.model, decay));
        }
        run.finish_step(norm, &next.model);
        next
    }
}

impl InferenceStep for ParStep {
    type Input = ParItem;
    type Output = LossOutput;

    fn step(&self, item: ParItem) -> LossOutput {
        let b = item.input.classes.dims()[0];
        let loss = self.loss(item.input);
        if let Some(run) = &self.run {
            run.add_validation(loss.clone().into_scalar::<f64>(), b);
        }
        LossOutput { loss }
    }
}

/// `ema ← d·ema + (1 − d)·w`, parameter by parameter (matched by module path order; the EMA is a
/// copy of the model with its own parameter ids and no gradients).
fn blend(ema: ParTransformer, model: &ParTransformer, decay: f64) -> ParTransformer {
    struct Collect(Vec<Tensor<1>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val().inner();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    struct Blend(std::vec::IntoIter<Tensor<1>>, f64);
    impl ModuleMapper for Blend {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, old, mapper) = param.consume();
            let dims: [usize; D] = old.dims();
            let w = self.0.next().expect("the EMA mirrors the model").reshape(dims);
            let new = Tensor::from_inner(old.inner() * self.1 + w * (1.0 - self.1));
            Param::from_mapped_value(id, new, mapper)
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    ema.map(&mut Blend(c.0.into_iter(), decay))
}

/// A copy of `model` with fresh parameter ids and no gradient tracking: the EMA's start.
pub(crate) fn ema_copy(model: &ParTransformer) -> ParTransformer {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, _) = param.consume();
            Param::initialized(ParamId::new(), Tensor::from_inner(value.inner()))
        }
    }
    model.clone().map(&mut Fresh)
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
