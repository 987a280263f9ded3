//! The tokenizer (and its PatchGAN discriminator) as burn-train's `LearnerModel`: one
//! [`TrainStep::step`] computes the generator's loss and, once the discriminator is on, the
//! discriminator's hinge loss on the same (detached) images, and returns both networks' gradients;
//! [`TrainStep::optimize`] clips each network's gradients to its own global norm, refuses
//! non-finite values and takes the Adam step of both (one `ModuleOptimizer`, the same settings
//! for both networks, as LlamaGen's two Adam optimizers).

use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn_train::{InferenceStep, TrainOutput, TrainStep};
use par_data::ImageSet;
use par_tokenizer::{VqTokenizer, VqTokenizerConfig};
use serde::{Deserialize, Serialize};

use super::trainer::{StepLog, VqTrainConfig};
use super::{PatchDiscriminator, hinge_d_loss, hinge_g_loss};
use crate::grad::clip_grad_norm;
use crate::learner::{Batches, LossOutput, Run, first_non_finite};
use crate::plan::BatchPlan;

/// A batch of training images, `[b, C, H, W]` in `[−1, 1]`, and its step.
#[derive(Debug, Clone)]
pub struct VqItem {
    /// The images.
    pub images: Tensor<4>,
    /// The training step (0-based): the discriminator is on from `disc_start`.
    pub step: usize,
}

/// The tokenizer and the optional discriminator as one burn-train model.
#[derive(Module, Debug)]
pub struct VqStep {
    /// The tokenizer.
    pub tokenizer: VqTokenizer,
    /// The PatchGAN discriminator, when the run uses one.
    pub disc: Option<PatchDiscriminator>,
    #[module(skip)]
    pub(crate) run: Option<Arc<VqRun>>,
}

/// `checkpoint/state.json` of a tokenizer run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VqState {
    pub step: usize,
    /// The history as f64 bit patterns: JSON's decimal floats do not round-trip exactly through
    /// serde_json's default parser, and a resumed run must report the same losses.
    pub history: Vec<(usize, [u64; 8])>,
    /// The unfinished logging window as bit patterns.
    #[serde(default)]
    pub window: Vec<[u64; 8]>,
    /// Fingerprint of the training images.
    pub data: u64,
    pub tokenizer: VqTokenizerConfig,
    pub train: VqTrainConfig,
    /// The device's float dtype (`f32`, `bf16`, `f16`).
    #[serde(default = "f32_name")]
    pub dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

/// The journal of a tokenizer run.
#[derive(Debug, Default)]
pub(crate) struct VqJournal {
    /// The step in progress: loss, mse, codebook, commitment, entropy, g_adv, d_loss, grad norm.
    pub row: [f64; 8],
    pub window: Vec<[f64; 8]>,
    pub history: Vec<StepLog>,
}

/// A tokenizer training run: the shared [`Run`], the settings the step needs, the journal.
pub(crate) struct VqRun {
    pub run: Arc<Run>,
    pub cfg: VqTrainConfig,
    pub tokenizer: VqTokenizerConfig,
    pub data: u64,
    pub dtype: String,
    pub journal: Mutex<VqJournal>,
}

impl core::fmt::Debug for VqRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VqRun({:?})", self.run)
    }
}

impl VqRun {
    pub fn journal(&self) -> MutexGuard<'_, VqJournal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The journal as `state.json` after `done` steps.
    pub fn state(&self, done: usize) -> VqState {
        let j = self.journal();
        VqState {
            step: done,
            history: j.history.iter().map(StepLog::to_bits).collect(),
            window: j.window.iter().map(|w| w.map(f64::to_bits)).collect(),
            data: self.data,
            tokenizer: self.tokenizer.clone(),
            train: self.cfg.clone(),
            dtype: self.dtype.clone(),
        }
    }

    /// Loads the journal of a checkpoint.
    pub fn restore_journal(&self, state: &VqState) {
        let mut j = self.journal();
        j.history = state.history.iter().map(StepLog::from_bits).collect();
        j.window = state.window.iter().map(|w| w.map(f64::from_bits)).collect();
    }

    /// Journals an applied update and reports it.
    fn finish_step(&self, row: [f64; 8], stop: bool) {
        let done = self.run.done() + 1;
        {
            let mut j = self.journal();
            j.window.push(row);
            if done.is_multiple_of(self.cfg.log_every) || done == self.run.total {
                let w = std::mem::take(&mut j.window);
                let m = |k: usize| w.iter().map(|r| r[k]).sum::<f64>() / w.len() as f64;
                j.history.push(StepLog {
                    step: done,
                    loss: m(0),
                    mse: m(1),
                    codebook: m(2),
                    commitment: m(3),
                    entropy: m(4),
                    g_adv: m(5),
                    d_loss: m(6),
                    grad_norm: m(7),
                });
            }
        }
        self.run.step_done(&format!("loss {:.4} mse {:.4}", row[0], row[1]), stop);
    }
}

impl VqStep {
    /// A bare tokenizer (no discriminator, no run).
    pub fn new(tokenizer: VqTokenizer) -> Self {
        Self { tokenizer, disc: None, run: None }
    }
}

impl TrainStep for VqStep {
    type Input = VqItem;
    type Output = LossOutput;

    fn step(&self, item: VqItem) -> TrainOutput<LossOutput> {
        let x = item.images;
        let out = self.tokenizer.quantize_images(x.clone());
        let recon = self.tokenizer.decode_latent(out.quantized);
        let mse = (recon.clone() - x.clone()).square().mean();
        let (disc_start, disc_weight) =
            self.run.as_ref().map_or((None, 0.0), |r| (r.cfg.disc_start, r.cfg.disc_weight));
        let gan_on = disc_start.is_some_and(|s| item.step + 1 >= s);
        let mut loss = mse.clone() + out.losses.total();
        let disc = self.disc.as_ref().filter(|_| gan_on);
        let g_adv = disc.map(|d| hinge_g_loss(d.forward(recon.clone())));
        if let Some(g) = &g_adv {
            loss = loss + g.clone() * disc_weight;
        }
        let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
        let mut row = [
            scalar(&loss),
            scalar(&mse),
            scalar(&out.losses.codebook),
            scalar(&out.losses.commitment),
            scalar(&out.losses.entropy),
            g_adv.as_ref().map_or(0.0, scalar),
            0.0,
            0.0,
        ];
        // The generator's gradients only: the discriminator is not trained by the generator's
        // adversarial loss.
        let mut grads = GradientsParams::from_grads(loss.clone().backward(), &self.tokenizer);
        if let Some(d) = disc {
            let d_loss = hinge_d_loss(d.forward(x.detach()), d.forward(recon.detach()));
            row[6] = scalar(&d_loss);
            let mut d_grads = GradientsParams::from_grads((d_loss * disc_weight).backward(), d);
            move_grads(d, &mut d_grads, &mut grads);
        }
        if let Some(run) = &self.run {
            run.journal().row = row;
        }
        TrainOutput { grads, item: LossOutput { loss } }
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> Self {
        let Some(run) = self.run.clone() else {
            return optim.step(lr, self, grads);
        };
        let clip = run.cfg.grad_clip;
        let mut row = run.journal().row;
        row[7] = clip_grad_norm(&self.tokenizer, &mut grads, clip);
        let gan_on = run.cfg.disc_start.is_some_and(|s| run.run.done() + 1 >= s);
        let d_norm = match (&self.disc, gan_on) {
            (Some(d), true) => clip_grad_norm(d, &mut grads, clip),
            _ => 0.0,
        };
        if !run.run.check_finite(&[
            ("loss", row[0]),
            ("gradient norm", row[7]),
            ("discriminator loss", row[6]),
            ("discriminator gradient norm", d_norm),
        ]) {
            return self;
        }
        let next = optim.step(lr, self, grads);
        let stop = run.run.asks_stop();
        let bad = || {
            first_non_finite(&next.tokenizer)
                .or_else(|| next.disc.as_ref().and_then(first_non_finite))
        };
        if !run.run.weights_ok(stop, bad) {
            return next;
        }
        run.finish_step(row, stop);
        next
    }
}

/// Moves the gradients of `module`'s parameters from `from` to `to`.
fn move_grads<M: Module>(module: &M, from: &mut GradientsParams, to: &mut GradientsParams) {
    struct Move<'a>(&'a mut GradientsParams, &'a mut GradientsParams);
    impl burn::module::ModuleVisitor for Move<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if let Some(g) = self.0.remove::<D>(param.id) {
                self.1.register(param.id, g);
            }
        }
    }
    module.visit(&mut Move(from, to));
}

impl InferenceStep for VqStep {
    type Input = VqItem;
    type Output = LossOutput;

    /// The reconstruction MSE (tokenizer training runs no validation pass; the held-out images
    /// are evaluated at the end).
    fn step(&self, item: VqItem) -> LossOutput {
        let x = item.images;
        let out = self.tokenizer.quantize_images(x.clone());
        let recon = self.tokenizer.decode_latent(out.quantized);
        LossOutput { loss: (recon - x).square().mean() }
    }
}

/// The training batches: `BatchPlan`'s images of step `s`, flipped by its coins.
pub(crate) struct VqBatches {
    pub images: Arc<ImageSet>,
    pub batch_size: usize,
    pub random_flip: bool,
    pub seed: u64,
}

impl Batches for VqBatches {
    type Item = VqItem;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn batch(&self, step: usize, (lo, hi): (usize, usize), device: &Device) -> VqItem {
        let plan = BatchPlan::new(self.images.len(), self.batch_size, self.seed);
        let (indices, flips) = plan.batch(step, self.random_flip);
        let images =
            super::trainer::images_tensor(&self.images, &indices[lo..hi], &flips[lo..hi], device);
        VqItem { images, step }
    }
}
