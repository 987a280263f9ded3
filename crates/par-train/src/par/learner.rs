//! The pieces that put PAR training on burn-train's `Learner` (docs/training.md, "Training on
//! burn-train"):
//!
//! - [`Run`]: what one run shares between the model's step, the data loaders and the
//!   checkpointers — its settings, the [`Monitor`], and the journal (steps done, loss history,
//!   validation losses, a divergence or a stop request).
//! - [`TrainLoader`] / [`ValidLoader`]: burn-train `DataLoader`s. One `Learner` epoch is one
//!   *checkpoint period* of `checkpoint_every` steps (the last one may be shorter, and a stop
//!   ends the current one early); the batches are [`BatchPlan`]'s, a function of (seed, step),
//!   so a resumed run draws exactly what an uninterrupted one would. `slice` (burn-train's
//!   multi-device split) takes a share of every batch, not a share of the batches, so two devices
//!   see the global batch of one.
//! - [`RunFiles`]: burn-train `Checkpointer`s that write the model, optimizer and scheduler
//!   records and the journal into `checkpoint.epoch-K/` and move the folder to `checkpoint/` once
//!   all four are there (a crash leaves the old checkpoint or the new one, never a mix).
//! - [`StopAsked`]: an early-stopping strategy that ends training after the checkpoint of a
//!   period cut short by [`Monitor::should_stop`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn_train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use burn_train::logger::MetricLogger;
use burn_train::metric::store::{EpochSummary, EventStoreClient, MetricsUpdate, Split};
use burn_train::metric::{MetricDefinition, NumericEntry};
use burn_train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn_train::{EarlyStoppingStrategy, Interrupter, LearnerSummary};
use par_model::{ParTransformer, ParTransformerConfig, TransformerInput};
use par_order::TokenOrder;
use serde::{Deserialize, Serialize};

use super::data::{CodeBatch, CodeDataset};
use super::lr_schedule::WarmupCosine;
use super::step::ParItem;
use super::trainer::{ParLog, ParTrainConfig, Precision, ValLog};
use crate::checkpoint;
use crate::monitor::Monitor;
use crate::plan::BatchPlan;
use crate::TrainError;

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

/// The mutable record of a run.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// Optimizer updates done.
    pub done: usize,
    /// Weighted loss of the step in progress, summed over the devices' parts.
    pub step_loss: f64,
    pub window: Vec<(f64, f64)>,
    pub history: Vec<ParLog>,
    pub validation: Vec<ValLog>,
    /// Validation loss sum (× samples) and samples of the running validation pass.
    pub val: (f64, usize),
    /// `Learner` epochs (checkpoint periods) finished in this process.
    pub epoch: usize,
    pub stop_asked: bool,
    pub failure: Option<TrainError>,
    pub last_checkpoint: Option<usize>,
    /// Journal snapshots awaiting their checkpoint, by `Learner` epoch.
    pending: BTreeMap<usize, State>,
    /// Files written per pending checkpoint (model + state, optimizer, scheduler).
    written: BTreeMap<usize, (usize, usize)>,
}

/// One training run, shared (behind an `Arc`) by the model's step, the loaders and the
/// checkpointers.
pub(crate) struct Run {
    pub dir: PathBuf,
    pub seed: u64,
    pub precision: Precision,
    pub grad_clip: f64,
    pub ema_decay: Option<f64>,
    pub schedule: WarmupCosine,
    pub steps_per_epoch: usize,
    pub total: usize,
    pub period: usize,
    pub log_every: usize,
    pub val_every: usize,
    pub fixed: Fixed,
    pub interrupter: Interrupter,
    pub monitor: Arc<dyn Monitor>,
    pub journal: Mutex<Journal>,
}

impl core::fmt::Debug for Run {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Run({})", self.dir.display())
    }
}

impl Run {
    pub fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a device's weighted loss of step `step`.
    pub fn add_loss(&self, step: usize, loss: f64) {
        let mut j = self.journal();
        debug_assert_eq!(step, j.done, "the loaders run in step with the optimizer");
        j.step_loss += loss;
    }

    /// Adds a validation batch's mean loss over `samples` samples.
    pub fn add_validation(&self, loss: f64, samples: usize) {
        let mut j = self.journal();
        j.val.0 += loss * samples as f64;
        j.val.1 += samples;
    }

    fn fail(&self, j: &mut Journal, quantity: String, value: f64) {
        if j.failure.is_none() {
            j.failure = Some(TrainError::NonFinite {
                step: j.done + 1,
                quantity,
                value,
                last_checkpoint: j.last_checkpoint,
            });
        }
        self.interrupter.stop(Some("non-finite training value"));
    }

    /// Whether the step's loss and gradient norm are finite; if not, records the divergence and
    /// stops the `Learner` before the update.
    pub fn accept_norm(&self, norm: f64) -> bool {
        let mut j = self.journal();
        let loss = j.step_loss;
        for (quantity, value) in [("loss", loss), ("gradient norm", norm)] {
            if !value.is_finite() {
                self.fail(&mut j, quantity.into(), value);
                return false;
            }
        }
        true
    }

    /// Journals an applied update: history windows, the weight check at checkpoint steps,
    /// progress, and the stop question.
    pub fn finish_step(&self, norm: f64, model: &ParTransformer) {
        let done = {
            let mut j = self.journal();
            let loss = std::mem::take(&mut j.step_loss);
            j.window.push((loss, norm));
            j.done += 1;
            let done = j.done;
            if done % self.log_every == 0 || done == self.total {
                let n = j.window.len() as f64;
                let (l, g) =
                    j.window.drain(..).fold((0.0, 0.0), |(a, b), (l, g)| (a + l, b + g));
                j.history.push(ParLog {
                    step: done,
                    epoch: done as f64 / self.steps_per_epoch as f64,
                    lr: self.schedule.lr(done - 1),
                    loss: l / n,
                    grad_norm: g / n,
                });
            }
            done
        };
        if self.ends_period(done)
            && let Some((key, value)) = first_non_finite(model)
        {
            let mut j = self.journal();
            j.done -= 1; // the error names the step that produced the weights
            self.fail(&mut j, format!("weight `{key}`"), value);
            j.done += 1;
            return;
        }
        let lr = self.schedule.lr(done - 1);
        let loss = self.journal().window.last().map_or(f64::NAN, |w| w.0);
        self.monitor.update(done, &format!("loss {loss:.4} lr {lr:.2e}"));
        if done < self.total && self.monitor.should_stop(done) {
            self.journal().stop_asked = true;
        }
    }

    /// A checkpoint period (a `Learner` epoch) ends after `done` steps.
    pub fn ends_period(&self, done: usize) -> bool {
        done % self.period == 0 || done == self.total
    }

    /// The steps of the period that starts after `done` steps.
    fn period_end(&self, done: usize) -> usize {
        ((done / self.period + 1) * self.period).min(self.total)
    }

    /// `Learner` epochs needed from `done` steps to the end.
    pub fn periods_left(&self, done: usize) -> usize {
        let (mut n, mut at) = (0, done);
        while at < self.total {
            at = self.period_end(at);
            n += 1;
        }
        n
    }

    /// Validation runs at the end of a full period (or the last) in which a multiple of
    /// `val_every` was reached — never after a period cut short by a stop, so an interrupted and
    /// resumed run validates at the same steps as an uninterrupted one.
    fn validates_at(&self, done: usize) -> bool {
        if done == 0 || !self.ends_period(done) {
            return false;
        }
        let start = (done - 1) / self.period * self.period;
        done == self.total || done / self.val_every > start / self.val_every
    }

    /// Closes the period's validation pass and snapshots the journal for its checkpoint.
    fn end_epoch(&self) {
        let mut j = self.journal();
        if j.val.1 > 0 {
            let (sum, n) = std::mem::take(&mut j.val);
            let step = j.done;
            j.validation.push(ValLog { step, loss: sum / n as f64 });
        }
        j.epoch += 1;
        let state = State {
            step: j.done,
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
        };
        let epoch = j.epoch;
        j.pending.insert(epoch, state);
    }

    /// Loads the journal of a checkpoint.
    pub fn restore_journal(&self, state: &State) {
        let mut j = self.journal();
        j.done = state.step;
        j.last_checkpoint = Some(state.step);
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

/// The first parameter with a non-finite value, by module path, and that value.
fn first_non_finite(model: &ParTransformer) -> Option<(String, f64)> {
    struct V {
        path: Vec<String>,
        found: Option<(String, f64)>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_some() {
                return;
            }
            let t = param.val().inner();
            let finite = t.clone().is_finite().all().into_scalar::<bool>();
            if !finite {
                let values = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
                let bad = values.into_iter().find(|v| !v.is_finite()).unwrap_or(f32::NAN);
                self.found = Some((self.path.join("."), bad as f64));
            }
        }
    }
    let mut v = V { path: Vec::new(), found: None };
    model.visit(&mut v);
    v.found
}

/// What the training loader draws from.
pub(crate) struct TrainData {
    pub codes: Arc<CodeDataset>,
    pub order: TokenOrder,
    pub batch_size: usize,
    pub class_dropout: f64,
    pub num_classes: usize,
    pub seed: u64,
}

/// burn-train `DataLoader` of the training steps: one `iter()` per checkpoint period; the samples
/// `range` of every batch (all of it on one device, a share after `slice`).
#[derive(Clone)]
pub(crate) struct TrainLoader {
    pub run: Arc<Run>,
    pub data: Arc<TrainData>,
    pub range: (usize, usize),
    pub device: Device,
}

fn input(batch: &CodeBatch, tokens: usize, device: &Device) -> TransformerInput {
    let b = batch.classes.len();
    TransformerInput {
        tokens: Tensor::from_data(TensorData::new(batch.tokens.clone(), [b, tokens]), device),
        classes: Tensor::from_data(TensorData::new(batch.classes.clone(), [b]), device),
    }
}

struct TrainIter<'a> {
    loader: &'a TrainLoader,
    plan: BatchPlan,
    next: usize,
    start: usize,
    end: usize,
}

impl Iterator for TrainIter<'_> {
    type Item = Result<ParItem, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let run = &self.loader.run;
        {
            let j = run.journal();
            if self.next >= self.end || j.stop_asked || j.failure.is_some() {
                return None;
            }
        }
        let d = &self.loader.data;
        let full = d.codes.train_batch(
            &self.plan,
            self.next,
            &d.order,
            d.class_dropout,
            d.num_classes,
            d.seed,
        );
        let (lo, hi) = self.loader.range;
        let n = d.codes.tokens;
        let part = CodeBatch {
            tokens: full.tokens[lo * n..hi * n].to_vec(),
            classes: full.classes[lo..hi].to_vec(),
        };
        let item = ParItem {
            input: input(&part, n, &self.loader.device),
            step: self.next,
            weight: (hi - lo) as f64 / d.batch_size as f64,
        };
        self.next += 1;
        Some(Ok(item))
    }
}

impl DataLoaderIterator<ParItem> for TrainIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.next - self.start, self.end - self.start, Some("steps".into()))
    }
}

impl DataLoader<ParItem> for TrainLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ParItem> + 'a> {
        let start = self.run.journal().done;
        let d = &self.data;
        Box::new(TrainIter {
            loader: self,
            plan: BatchPlan::new(d.codes.len(), d.batch_size, d.seed),
            next: start,
            start,
            end: self.run.period_end(start),
        })
    }

    /// The samples of one batch this loader yields (burn-train's multi-device split divides
    /// this range).
    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ParItem>> {
        Arc::new(Self { device: device.clone(), ..self.clone() })
    }

    /// Samples `start..end` of every batch.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ParItem>> {
        let lo = self.range.0;
        Arc::new(Self { range: (lo + start, (lo + end).min(self.range.1)), ..self.clone() })
    }
}

/// burn-train `DataLoader` of the validation pass that follows each period: the validation
/// samples (view 0, true classes, no dropout) when [`Run::validates_at`], nothing otherwise;
/// at its end the journal is snapshotted for the period's checkpoint.
#[derive(Clone)]
pub(crate) struct ValidLoader {
    pub run: Arc<Run>,
    pub codes: Arc<CodeDataset>,
    pub order: TokenOrder,
    pub batch_size: usize,
    pub device: Device,
}

struct ValidIter<'a> {
    loader: &'a ValidLoader,
    next: usize,
    end: usize,
    closed: bool,
}

impl Iterator for ValidIter<'_> {
    type Item = Result<ParItem, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            if !self.closed {
                self.closed = true;
                self.loader.run.end_epoch();
            }
            return None;
        }
        let l = self.loader;
        let stop = (self.next + l.batch_size).min(self.end);
        let b = l.codes.eval_batch(self.next..stop, &l.order);
        self.next = stop;
        Some(Ok(ParItem { input: input(&b, l.codes.tokens, &l.device), step: 0, weight: 1.0 }))
    }
}

impl DataLoaderIterator<ParItem> for ValidIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.next, self.end, Some("samples".into()))
    }
}

impl DataLoader<ParItem> for ValidLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ParItem> + 'a> {
        let done = self.run.journal().done;
        let end = if self.run.validates_at(done) { self.codes.len() } else { 0 };
        Box::new(ValidIter { loader: self, next: 0, end, closed: false })
    }

    fn num_items(&self) -> usize {
        self.codes.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ParItem>> {
        Arc::new(Self { device: device.clone(), ..self.clone() })
    }

    fn slice(&self, _start: usize, _end: usize) -> Arc<dyn DataLoader<ParItem>> {
        Arc::new(self.clone())
    }
}

/// A burn-train `Checkpointer` for one of the run's records (`model`, `optim`, `scheduler`).
pub(crate) struct RunFiles {
    pub run: Arc<Run>,
    pub name: &'static str,
}

const PARTS: usize = 3;

impl RunFiles {
    fn pending(&self, epoch: usize) -> PathBuf {
        self.run.dir.join(format!("checkpoint.epoch-{epoch}"))
    }

    fn write<R: Checkpoint>(&self, epoch: usize, record: R) -> Result<(), TrainError> {
        let dir = self.pending(epoch);
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let path = dir.join(format!("{}.bpk", self.name));
        record.save(path.clone()).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        let step = if self.name == "model" {
            let state = self.run.journal().pending.remove(&epoch);
            let state = state.ok_or_else(|| {
                TrainError::Config(format!("no journal for checkpoint period {epoch}"))
            })?;
            checkpoint::write_json(&dir.join("state.json"), &state)?;
            Some(state.step)
        } else {
            None
        };
        let mut j = self.run.journal();
        let entry = j.written.entry(epoch).or_insert((0, usize::MAX));
        entry.0 += 1;
        if let Some(s) = step {
            entry.1 = s;
        }
        if entry.0 == PARTS {
            let step = entry.1;
            j.written.remove(&epoch);
            // Promoted under the journal lock: periods are promoted one at a time, in order.
            checkpoint::promote(&self.run.dir, &dir)?;
            j.last_checkpoint = Some(step);
        }
        Ok(())
    }
}

impl<R: Checkpoint> Checkpointer<R> for RunFiles {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        self.write(epoch, record).map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    /// Nothing: each checkpoint replaces the previous one when it is complete.
    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, _epoch: usize) -> Result<R, CheckpointerError> {
        let dir = checkpoint::latest(&self.run.dir)
            .ok_or_else(|| CheckpointerError::Unknown("no checkpoint".into()))?;
        R::load(dir.join(format!("{}.bpk", self.name)))
    }
}

/// Ends training after the checkpoint of a period cut short by a stop request.
#[derive(Clone)]
pub(crate) struct StopAsked(pub Arc<Run>);

impl EarlyStoppingStrategy for StopAsked {
    fn should_stop(&mut self, _epoch: usize, _store: &EventStoreClient) -> bool {
        self.0.journal().stop_asked
    }
}

/// The `Learner`'s renderer: silent. Progress goes to the run's [`Monitor`] (from the optimizer
/// step, which knows the global step), and the metrics to `report.json`.
pub(crate) struct Quiet;

impl MetricsRendererTraining for Quiet {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for Quiet {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl burn_train::logger::TrainingProgressLogger for Quiet {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _: usize) {}
    fn start_split(&mut self, _: &str, _: usize) {}
    fn update_split(&mut self, _: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl burn_train::logger::EvaluationProgressLogger for Quiet {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, _: &str, _: usize) {}
    fn update_test_progress(&mut self, _: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRenderer for Quiet {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// The `Learner`'s metric logger: none (the journal is the run's record, in `report.json`).
pub(crate) struct NoMetricLog;

impl MetricLogger for NoMetricLog {
    fn log(&mut self, _update: MetricsUpdate, _epoch: usize, _split: &Split) {}
    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Ok(Vec::new())
    }
    fn log_metric_definition(&mut self, _definition: MetricDefinition) {}
    fn log_epoch_summary(&mut self, _summary: EpochSummary) {}
}

/// The pending folders a run left behind (a crash between a period's files).
pub(crate) fn remove_pending(run: &Path) {
    if let Ok(entries) = std::fs::read_dir(run) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("checkpoint.epoch-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
