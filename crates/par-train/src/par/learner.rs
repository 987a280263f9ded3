//! PAR's part of the `Learner` setup ([`crate::learner`] has the shared part): the run's
//! settings and journal ([`ParRun`]), its batches ([`ParBatches`]), its validation pass
//! ([`ParValidation`]) and its `state.json` ([`State`]).

use std::sync::{Arc, Mutex, MutexGuard};

use burn::prelude::*;
use burn::tensor::TensorData;
use par_model::{ParTransformer, ParTransformerConfig, TransformerInput};
use par_order::TokenOrder;
use serde::{Deserialize, Serialize};

use super::data::{CodeBatch, CodeDataset};
use super::lr_schedule::WarmupCosine;
use super::step::ParItem;
use super::trainer::{ParLog, ParTrainConfig, Precision, ValLog};
use crate::learner::{Batches, Run, Validation, first_non_finite};

/// `checkpoint/state.json`: the journal at the checkpoint and the settings it was made with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub step: usize,
    /// f64 values as bit patterns (exact through JSON).
    pub history: Vec<(usize, [u64; 4])>,
    pub validation: Vec<(usize, u64)>,
    /// The unfinished logging window (loss, grad norm) as bit patterns.
    #[serde(default)]
    pub window: Vec<[u64; 2]>,
    /// Fingerprints of the training and validation data.
    pub data: [u64; 2],
    pub model: ParTransformerConfig,
    pub train: ParTrainConfig,
    /// The device's float dtype.
    #[serde(default = "f32_name")]
    pub dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

/// Settings a checkpoint records and a resume must match.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    pub data: [u64; 2],
    pub model: ParTransformerConfig,
    pub train: ParTrainConfig,
    pub dtype: String,
}

/// PAR's journal.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// Weighted loss of the step in progress, summed over the devices' parts.
    pub step_loss: f64,
    pub window: Vec<(f64, f64)>,
    pub history: Vec<ParLog>,
    pub validation: Vec<ValLog>,
    /// Validation loss sum (× samples) and samples of the running validation pass.
    pub val: (f64, usize),
}

/// A PAR training run: the shared [`Run`], PAR's settings and journal.
pub(crate) struct ParRun {
    pub run: Arc<Run>,
    pub seed: u64,
    pub precision: Precision,
    pub grad_clip: f64,
    pub ema_decay: Option<f64>,
    pub schedule: WarmupCosine,
    pub steps_per_epoch: usize,
    pub log_every: usize,
    pub val_every: usize,
    pub fixed: Fixed,
    pub journal: Mutex<Journal>,
}

impl core::fmt::Debug for ParRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ParRun({:?})", self.run)
    }
}

impl ParRun {
    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a device's weighted loss of the step in progress.
    pub fn add_loss(&self, loss: f64) {
        self.journal().step_loss += loss;
    }

    /// Adds a validation batch's mean loss over `samples` samples.
    pub fn add_validation(&self, loss: f64, samples: usize) {
        let mut j = self.journal();
        j.val.0 += loss * samples as f64;
        j.val.1 += samples;
    }

    /// Whether the step's loss and gradient norm are finite; if not, the run records the
    /// divergence and stops the `Learner` before the update.
    pub fn accept_norm(&self, norm: f64) -> bool {
        let loss = self.journal().step_loss;
        self.run.check_finite(&[("loss", loss), ("gradient norm", norm)])
    }

    /// Journals an applied update: the stop question, the weight check before a checkpoint
    /// (at checkpoint steps and at a stop), history windows, progress.
    pub fn finish_step(&self, norm: f64, model: &ParTransformer) {
        let done = self.run.done() + 1;
        let stop = self.run.asks_stop();
        if !self.run.weights_ok(stop, || first_non_finite(model)) {
            return;
        }
        let lr = self.schedule.lr(done - 1);
        let loss = {
            let mut j = self.journal();
            let loss = std::mem::take(&mut j.step_loss);
            j.window.push((loss, norm));
            if done.is_multiple_of(self.log_every) || done == self.run.total {
                let n = j.window.len() as f64;
                let (l, g) = j.window.drain(..).fold((0.0, 0.0), |(a, b), (l, g)| (a + l, b + g));
                j.history.push(ParLog {
                    step: done,
                    epoch: done as f64 / self.steps_per_epoch as f64,
                    lr,
                    loss: l / n,
                    grad_norm: g / n,
                });
            }
            loss
        };
        self.run.step_done(&format!("loss {loss:.4} lr {lr:.2e}"), stop);
    }

    /// The journal as `state.json` after `done` steps.
    pub fn state(&self, done: usize) -> State {
        let j = self.journal();
        State {
            step: done,
            history: j
                .history
                .iter()
                .map(|h| (h.step, [h.epoch, h.lr, h.loss, h.grad_norm].map(f64::to_bits)))
                .collect(),
            validation: j.validation.iter().map(|v| (v.step, v.loss.to_bits())).collect(),
            window: j.window.iter().map(|w| [w.0.to_bits(), w.1.to_bits()]).collect(),
            data: self.fixed.data,
            model: self.fixed.model.clone(),
            train: self.fixed.train.clone(),
            dtype: self.fixed.dtype.clone(),
        }
    }

    /// Loads the journal of a checkpoint.
    pub fn restore_journal(&self, state: &State) {
        let mut j = self.journal();
        j.history = state
            .history
            .iter()
            .map(|(step, b)| {
                let v = b.map(f64::from_bits);
                ParLog { step: *step, epoch: v[0], lr: v[1], loss: v[2], grad_norm: v[3] }
            })
            .collect();
        j.validation = state
            .validation
            .iter()
            .map(|(s, b)| ValLog { step: *s, loss: f64::from_bits(*b) })
            .collect();
        j.window =
            state.window.iter().map(|w| (f64::from_bits(w[0]), f64::from_bits(w[1]))).collect();
    }
}

fn input(batch: &CodeBatch, tokens: usize, device: &Device) -> TransformerInput {
    let b = batch.classes.len();
    TransformerInput {
        tokens: Tensor::from_data(TensorData::new(batch.tokens.clone(), [b, tokens]), device),
        classes: Tensor::from_data(TensorData::new(batch.classes.clone(), [b]), device),
    }
}

/// PAR's training batches: `BatchPlan`'s samples of step `s`, a view each, class dropout.
pub(crate) struct ParBatches {
    pub codes: Arc<CodeDataset>,
    pub order: TokenOrder,
    pub batch_size: usize,
    pub class_dropout: f64,
    pub num_classes: usize,
    pub seed: u64,
}

impl Batches for ParBatches {
    type Item = ParItem;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn batch(&self, step: usize, (lo, hi): (usize, usize), device: &Device) -> ParItem {
        let plan = crate::plan::BatchPlan::new(self.codes.len(), self.batch_size, self.seed);
        let full = self.codes.train_batch(
            &plan,
            step,
            &self.order,
            self.class_dropout,
            self.num_classes,
            self.seed,
        );
        let n = self.codes.tokens;
        let part = CodeBatch {
            tokens: full.tokens[lo * n..hi * n].to_vec(),
            classes: full.classes[lo..hi].to_vec(),
        };
        ParItem {
            input: input(&part, n, device),
            step,
            weight: (hi - lo) as f64 / self.batch_size as f64,
        }
    }
}

/// PAR's validation pass (view 0, true classes, no dropout) at the run's validation points
/// ([`Run::validates_at`] of `val_every`).
pub(crate) struct ParValidation {
    pub par: Arc<ParRun>,
    pub codes: Arc<CodeDataset>,
    pub order: TokenOrder,
    pub batch_size: usize,
}

impl Validation for ParValidation {
    type Item = ParItem;

    fn batches(&self, done: usize) -> usize {
        if self.par.run.validates_at(done, self.par.val_every) {
            self.codes.len().div_ceil(self.batch_size)
        } else {
            0
        }
    }

    fn batch(&self, k: usize, device: &Device) -> ParItem {
        let start = k * self.batch_size;
        let end = (start + self.batch_size).min(self.codes.len());
        let b = self.codes.eval_batch(start..end, &self.order);
        ParItem { input: input(&b, self.codes.tokens, device), step: 0, weight: 1.0 }
    }

    fn finish(&self, done: usize) {
        let mut j = self.par.journal();
        let (sum, n) = std::mem::take(&mut j.val);
        if n > 0 {
            j.validation.push(ValLog { step: done, loss: sum / n as f64 });
        }
    }
}
