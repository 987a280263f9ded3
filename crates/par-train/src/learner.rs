//! What PAR training and tokenizer training share to run on burn-train's `Learner`
//! (docs/training.md, "burn-train"):
//!
//! - [`Run`]: one run's folder, step budget, period, checkpoint interval, [`Monitor`], the
//!   `Learner`'s `Interrupter`, and the steps done / stop request / divergence of the run.
//! - [`StepLoader`]: a burn-train `DataLoader` of training steps. One `Learner` epoch is one
//!   *period* of `period` steps — the greatest common divisor of the checkpoint and validation
//!   intervals, so both fall on epoch ends — (the last one may be shorter, and a stop ends the
//!   current one early); the job's [`Batches`] make step `s`'s batch as a function of (seed, s),
//!   so a resumed run draws exactly what an uninterrupted one would. `slice` (burn-train's
//!   multi-device split) takes a share of every batch, not a share of the batches.
//! - [`PeriodEnd`]: the validation split that follows each period: the job's validation batches
//!   when it asks for them, and then, at a checkpoint step, the snapshot of the run's journal.
//! - [`RunFiles`]: burn-train `Checkpointer`s that write the model, optimizer and scheduler
//!   records (the model's thread also the journal) into `checkpoint.epoch-K/` and move the folder
//!   to `checkpoint/` once all three have written (a crash leaves the old checkpoint or the new
//!   one, never a mix); then the job's export (e.g. `model.safetensors`).
//! - [`AtCheckpointSteps`]: burn-train's checkpointing strategy: save at the epochs that end on a
//!   checkpoint step (a multiple of the interval, the last step, or a stop).
//! - [`StopAsked`]: an early-stopping strategy that ends training after the checkpoint of a
//!   period cut short by [`Monitor::should_stop`]; [`Quiet`] and [`NoMetricLog`]: the `Learner`'s
//!   renderer and metric logger, both silent (progress goes to the `Monitor`, history to the
//!   job's `report.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn_train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn_train::logger::MetricLogger;
use burn_train::metric::store::{EpochSummary, EventStoreClient, MetricsUpdate, Split};
use burn_train::metric::{Adaptor, ItemLazy, LossInput, MetricDefinition, NumericEntry};
use burn_train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn_train::{EarlyStoppingStrategy, Interrupter, LearnerSummary};

use crate::TrainError;
use crate::checkpoint;
use crate::monitor::Monitor;

/// The run-wide record every job keeps.
#[derive(Debug, Default)]
pub(crate) struct Core {
    /// Optimizer updates done.
    pub done: usize,
    /// `Learner` epochs (checkpoint periods) finished in this process.
    pub epoch: usize,
    pub stop_asked: bool,
    pub failure: Option<TrainError>,
    pub last_checkpoint: Option<usize>,
    /// Journal snapshots (`state.json`) awaiting their checkpoint, by `Learner` epoch.
    pending: BTreeMap<usize, (usize, serde_json::Value)>,
    /// Records written per pending checkpoint.
    written: BTreeMap<usize, usize>,
}

/// The job's `state.json` at a period end, from its own journal.
pub(crate) type Snapshot = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The job's export of a promoted checkpoint (its `model.bpk`) to the run folder.
pub(crate) type Export = Box<dyn Fn(&Path) -> Result<(), TrainError> + Send + Sync>;

/// One training run on the `Learner`, shared (behind an `Arc`) by the job's model step, the
/// loaders and the checkpointers.
pub(crate) struct Run {
    pub dir: PathBuf,
    pub total: usize,
    /// Steps per `Learner` epoch.
    pub period: usize,
    /// Steps between checkpoints (a multiple of `period`).
    pub checkpoint_every: usize,
    pub interrupter: Interrupter,
    pub monitor: Arc<dyn Monitor>,
    core: Mutex<Core>,
    snapshot: OnceLock<Snapshot>,
    export: OnceLock<Export>,
    /// Serialises the promotions (and keeps them off the journal's lock).
    promoting: Mutex<()>,
}

impl core::fmt::Debug for Run {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Run({})", self.dir.display())
    }
}

impl Run {
    /// A run in `dir` of `total` steps, checkpointed every `checkpoint_every` and validated
    /// every `val_every` (`None`: no validation), starting at `done` (its last checkpoint, when
    /// resumed).
    pub fn new(
        dir: &Path,
        total: usize,
        checkpoint_every: usize,
        val_every: Option<usize>,
        done: usize,
        monitor: Arc<dyn Monitor>,
    ) -> Self {
        let period = val_every.map_or(checkpoint_every, |v| gcd(checkpoint_every, v));
        let core = Core { done, last_checkpoint: (done > 0).then_some(done), ..Default::default() };
        Self {
            dir: dir.to_path_buf(),
            total,
            period,
            checkpoint_every,
            interrupter: Interrupter::new(),
            monitor,
            core: Mutex::new(core),
            snapshot: OnceLock::new(),
            export: OnceLock::new(),
            promoting: Mutex::new(()),
        }
    }

    /// Sets how the job's journal becomes `state.json` (once, before the `Learner` starts).
    pub fn set_snapshot(&self, snapshot: Snapshot) {
        let _ = self.snapshot.set(snapshot);
    }

    /// Sets what the job writes from each promoted checkpoint (once, before the `Learner`
    /// starts).
    pub fn set_export(&self, export: Export) {
        let _ = self.export.set(export);
    }

    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Steps done.
    pub fn done(&self) -> usize {
        self.core().done
    }

    /// Records a divergence at the coming step (the first one is kept) and stops the `Learner`
    /// before the update.
    pub fn fail(&self, quantity: impl Into<String>, value: f64) {
        let mut c = self.core();
        if c.failure.is_none() {
            c.failure = Some(TrainError::NonFinite {
                step: c.done + 1,
                quantity: quantity.into(),
                value,
                last_checkpoint: c.last_checkpoint,
            });
        }
        drop(c);
        self.interrupter.stop(Some("non-finite training value"));
    }

    /// Whether every value is finite; at the first that is not, [`Run::fail`].
    pub fn check_finite(&self, values: &[(&str, f64)]) -> bool {
        for &(quantity, value) in values {
            if !value.is_finite() {
                self.fail(quantity, value);
                return false;
            }
        }
        true
    }

    /// Asks the monitor whether to stop after the coming step: `true` when the run will stop
    /// there (its period ends early and is checkpointed).
    pub fn asks_stop(&self) -> bool {
        let done = self.done() + 1;
        done < self.total && self.monitor.should_stop(done)
    }

    /// Whether the coming step (the `stop` answer of [`Run::asks_stop`] given) will be
    /// checkpointed.
    fn checkpoints_next(&self, stop: bool) -> bool {
        let done = self.done() + 1;
        stop || done.is_multiple_of(self.checkpoint_every) || done == self.total
    }

    /// Before the coming step's update is journalled: when that step will be checkpointed, the
    /// first non-finite weight `find` reports fails the run (nothing from the step is saved).
    /// `false` when it failed.
    pub fn weights_ok(&self, stop: bool, find: impl FnOnce() -> Option<(String, f64)>) -> bool {
        if !self.checkpoints_next(stop) {
            return true;
        }
        match find() {
            Some((key, value)) => {
                self.fail(format!("weight `{key}`"), value);
                false
            }
            None => true,
        }
    }

    /// Counts an applied update, reports it, and records a stop request.
    pub fn step_done(&self, message: &str, stop: bool) -> usize {
        let done = {
            let mut c = self.core();
            c.done += 1;
            c.stop_asked |= stop;
            c.done
        };
        self.monitor.update(done, message);
        done
    }

    /// A period (a `Learner` epoch) ends after `done` steps.
    pub fn ends_period(&self, done: usize) -> bool {
        done.is_multiple_of(self.period) || done == self.total
    }

    /// The end of the period that starts after `done` steps.
    fn period_end(&self, done: usize) -> usize {
        (done / self.period + 1).saturating_mul(self.period).min(self.total)
    }

    /// `Learner` epochs needed from `done` steps to the end: one per multiple of the period in
    /// `(done, total)`, plus the one ending at `total`, i.e. `⌈total/period⌉ − ⌊done/period⌋`
    /// (closed form: a step budget of 2⁶⁴ − 1 must not be counted one period at a time).
    pub fn periods_left(&self, done: usize) -> usize {
        periods_between(done, self.total, self.period)
    }

    /// Whether `done` is a validation point: a multiple of `every` (on the period grid, since
    /// the period divides `every`) or the last step, the same whether or not the run was
    /// interrupted (a stop off the grid is never one).
    pub fn validates_at(&self, done: usize, every: usize) -> bool {
        done > 0 && self.ends_period(done) && (done.is_multiple_of(every) || done == self.total)
    }

    /// At the end of a `Learner` epoch: when it ends on a checkpoint step, snapshots the
    /// journal for that checkpoint (and [`AtCheckpointSteps`] saves it).
    fn end_epoch(&self) {
        let mut c = self.core();
        c.epoch += 1;
        let done = c.done;
        let save = c.stop_asked || done.is_multiple_of(self.checkpoint_every) || done == self.total;
        if save {
            drop(c);
            let value = self.snapshot.get().map_or(serde_json::Value::Null, |f| f());
            let mut c = self.core();
            let epoch = c.epoch;
            c.pending.insert(epoch, (done, value));
        }
    }

    /// After `launch` (its checkpointer threads joined): the divergence, if any, naming the last
    /// checkpoint kept; then an interruption by a stop request.
    pub fn outcome(&self) -> Result<(), TrainError> {
        let mut c = self.core();
        let kept = c.last_checkpoint;
        if let Some(mut e) = c.failure.take() {
            if let TrainError::NonFinite { last_checkpoint, .. } = &mut e {
                *last_checkpoint = kept;
            }
            return Err(e);
        }
        if c.stop_asked && c.done < self.total {
            return Err(TrainError::Interrupted { step: c.done });
        }
        Ok(())
    }
}

/// The first parameter with a non-finite value, by module path, and that value.
pub(crate) fn first_non_finite<M: Module>(model: &M) -> Option<(String, f64)> {
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
            if !t.clone().is_finite().all().into_scalar::<bool>() {
                let values =
                    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
                let bad = values.into_iter().find(|v| !v.is_finite()).unwrap_or(f32::NAN);
                self.found = Some((self.path.join("."), bad as f64));
            }
        }
    }
    let mut v = V { path: Vec::new(), found: None };
    model.visit(&mut v);
    v.found
}

/// The output of a training or validation step: its loss, `[1]` (burn-train's loss metric reads
/// it). Unlike burn-train's `ClassificationOutput` it does not keep the `[b·N, V]` logits
/// alive until the metric thread has seen them.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The step's loss (PAR: mean cross-entropy over the batch's tokens, nats; the tokenizer:
    /// the generator's loss).
    pub loss: Tensor<1>,
}

impl ItemLazy for LossOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(LossOutput { loss: self.loss.without_autodiff() })
    }
}

impl Adaptor<LossInput> for LossOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// How a job makes its batches.
pub(crate) trait Batches: Send + Sync + 'static {
    /// The item burn-train hands to the model's step.
    type Item: Send + 'static;

    /// Samples per batch.
    fn batch_size(&self) -> usize;

    /// Samples `range` of step `step`'s batch, on `device`.
    fn batch(&self, step: usize, range: (usize, usize), device: &Device) -> Self::Item;
}

/// burn-train `DataLoader` of the training steps: one `iter()` per checkpoint period; the samples
/// `range` of every batch (all of it on one device, a share after `slice`).
pub(crate) struct StepLoader<B: Batches> {
    pub run: Arc<Run>,
    pub batches: Arc<B>,
    pub range: (usize, usize),
    pub device: Device,
}

impl<B: Batches> Clone for StepLoader<B> {
    fn clone(&self) -> Self {
        Self {
            run: self.run.clone(),
            batches: self.batches.clone(),
            range: self.range,
            device: self.device.clone(),
        }
    }
}

impl<B: Batches> StepLoader<B> {
    /// All of every batch, on `device`.
    pub fn new(run: Arc<Run>, batches: Arc<B>, device: Device) -> Self {
        let range = (0, batches.batch_size());
        Self { run, batches, range, device }
    }
}

struct StepIter<'a, B: Batches> {
    loader: &'a StepLoader<B>,
    next: usize,
    start: usize,
    end: usize,
}

impl<B: Batches> Iterator for StepIter<'_, B> {
    type Item = Result<B::Item, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        {
            let c = self.loader.run.core();
            if self.next >= self.end || c.stop_asked || c.failure.is_some() {
                return None;
            }
        }
        let l = self.loader;
        let item = l.batches.batch(self.next, l.range, &l.device);
        self.next += 1;
        Some(Ok(item))
    }
}

impl<B: Batches> DataLoaderIterator<B::Item> for StepIter<'_, B> {
    fn progress(&self) -> Progress {
        Progress::new(self.next - self.start, self.end - self.start, Some("steps".into()))
    }
}

impl<B: Batches> DataLoader<B::Item> for StepLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<B::Item> + 'a> {
        let start = self.run.done();
        Box::new(StepIter { loader: self, next: start, start, end: self.run.period_end(start) })
    }

    /// The samples of one batch this loader yields (burn-train's multi-device split divides
    /// this range).
    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<B::Item>> {
        Arc::new(Self { device: device.clone(), ..self.clone() })
    }

    /// Samples `start..end` of every batch.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B::Item>> {
        let lo = self.range.0;
        Arc::new(Self { range: (lo + start, (lo + end).min(self.range.1)), ..self.clone() })
    }
}

/// What a job validates on after a period.
pub(crate) trait Validation: Send + Sync + 'static {
    /// The item burn-train hands to the model's inference step.
    type Item: Send + 'static;

    /// Batches to run after `done` steps (empty: no validation this time).
    fn batches(&self, done: usize) -> usize;

    /// Validation batch `k` on `device`.
    fn batch(&self, k: usize, device: &Device) -> Self::Item;

    /// The pass after `done` steps is over (all its batches were stepped).
    fn finish(&self, done: usize);
}

/// No validation (tokenizer training evaluates its held-out images at the end).
pub(crate) struct NoValidation<I>(std::marker::PhantomData<fn() -> I>);

impl<I> Default for NoValidation<I> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<I: Send + 'static> Validation for NoValidation<I> {
    type Item = I;
    fn batches(&self, _done: usize) -> usize {
        0
    }
    fn batch(&self, _k: usize, _device: &Device) -> I {
        unreachable!("no validation batches")
    }
    fn finish(&self, _done: usize) {}
}

/// burn-train `DataLoader` of the validation split that follows each period; its end snapshots
/// the journal for the period's checkpoint.
pub(crate) struct PeriodEnd<V: Validation> {
    pub run: Arc<Run>,
    pub validation: Arc<V>,
    pub device: Device,
}

impl<V: Validation> Clone for PeriodEnd<V> {
    fn clone(&self) -> Self {
        Self {
            run: self.run.clone(),
            validation: self.validation.clone(),
            device: self.device.clone(),
        }
    }
}

struct PeriodEndIter<'a, V: Validation> {
    loader: &'a PeriodEnd<V>,
    next: usize,
    end: usize,
    closed: bool,
}

impl<V: Validation> Iterator for PeriodEndIter<'_, V> {
    type Item = Result<V::Item, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let l = self.loader;
        if self.next >= self.end {
            if !self.closed {
                self.closed = true;
                if self.end > 0 {
                    l.validation.finish(l.run.done());
                }
                l.run.end_epoch();
            }
            return None;
        }
        let item = l.validation.batch(self.next, &l.device);
        self.next += 1;
        Some(Ok(item))
    }
}

impl<V: Validation> DataLoaderIterator<V::Item> for PeriodEndIter<'_, V> {
    fn progress(&self) -> Progress {
        Progress::new(self.next, self.end, Some("batches".into()))
    }
}

impl<V: Validation> DataLoader<V::Item> for PeriodEnd<V> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<V::Item> + 'a> {
        let end = self.validation.batches(self.run.done());
        Box::new(PeriodEndIter { loader: self, next: 0, end, closed: false })
    }

    fn num_items(&self) -> usize {
        0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<V::Item>> {
        Arc::new(Self { device: device.clone(), ..self.clone() })
    }

    fn slice(&self, _start: usize, _end: usize) -> Arc<dyn DataLoader<V::Item>> {
        Arc::new(self.clone())
    }
}

/// A burn-train `Checkpointer` for one of the run's records (`model`, `optim`, `scheduler`).
pub(crate) struct RunFiles {
    pub run: Arc<Run>,
    pub name: &'static str,
}

/// The records of a checkpoint besides `state.json`.
pub(crate) const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

impl RunFiles {
    fn write<R: Checkpoint>(&self, epoch: usize, record: R) -> Result<(), TrainError> {
        let run = &self.run;
        let dir = run.dir.join(format!("checkpoint.epoch-{epoch}"));
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let path = dir.join(format!("{}.bpk", self.name));
        record.save(path.clone()).map_err(|e| TrainError::Failed {
            path: path.clone(),
            reason: format!("writing the checkpoint record: {e}"),
        })?;
        if self.name == "model" {
            let state = run.core().pending.get(&epoch).map(|(_, v)| v.clone());
            let state = state.ok_or_else(|| TrainError::Failed {
                path: dir.clone(),
                reason: format!("no journal for checkpoint period {epoch}"),
            })?;
            checkpoint::write_json(&dir.join("state.json"), &state)?;
        }
        let step = {
            let mut c = run.core();
            let written = c.written.entry(epoch).or_insert(0);
            *written += 1;
            if *written < RECORDS.len() {
                return Ok(());
            }
            c.written.remove(&epoch);
            c.pending.remove(&epoch).map(|(s, _)| s)
        };
        // The last writer promotes. Periods complete in order (each checkpointer thread writes
        // its records in order), and the promotions are serialised.
        let _promoting = run.promoting.lock().unwrap_or_else(|e| e.into_inner());
        checkpoint::promote(&run.dir, &dir)?;
        run.core().last_checkpoint = step;
        if let Some(export) = run.export.get() {
            export(&checkpoint::checkpoint_dir(&run.dir).join("model.bpk"))?;
        }
        Ok(())
    }
}

/// Saves at the `Learner` epochs that end on a checkpoint step (the journal snapshot of
/// [`PeriodEnd`] marks them); never deletes (each checkpoint replaces the previous one).
pub(crate) struct AtCheckpointSteps(pub Arc<Run>);

impl CheckpointingStrategy for AtCheckpointSteps {
    fn checkpointing(
        &mut self,
        epoch: usize,
        _store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        if self.0.core().pending.contains_key(&epoch) {
            vec![CheckpointingAction::Save]
        } else {
            Vec::new()
        }
    }
}

impl<R: Checkpoint> Checkpointer<R> for RunFiles {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        // A panic here (an export that runs out of memory) would kill burn-train's checkpointer
        // thread and then abort the process from the training thread: make it an error.
        let written =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(epoch, record)))
                .unwrap_or_else(|panic| {
                    let reason = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "the checkpointer panicked".into());
                    Err(TrainError::Failed { path: self.run.dir.clone(), reason })
                });
        written.map_err(|e| {
            // Kept for `outcome`: burn-train's own error keeps only the text.
            let text = e.to_string();
            let mut c = self.run.core();
            if c.failure.is_none() {
                c.failure = Some(e);
            }
            CheckpointerError::Unknown(text)
        })
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
        self.0.core().stop_asked
    }
}

/// The `Learner`'s renderer: silent (progress goes to the run's [`Monitor`]).
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

/// The `Learner`'s metric logger: none (the job's journal is the run's record).
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

/// A checkpoint's records, read before the `Learner` starts, so that a damaged file is an
/// error naming it (burn-train's own restore panics).
pub(crate) struct Records {
    pub model: burn::store::ModuleRecord,
    pub optim: burn::optim::OptimizerRecord,
    pub scheduler: burn::optim::lr_scheduler::LrSchedulerRecord,
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{}: not a readable training record: {e}", path.display()))
}

impl Records {
    /// Reads `model.bpk`, `optim.bpk` and `scheduler.bpk` of checkpoint folder `dir`.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join("model.bpk");
        let model = burn::store::ModuleRecord::load(&path).map_err(|e| record_error(&path, e))?;
        let path = dir.join("optim.bpk");
        let optim =
            burn::optim::OptimizerRecord::load(&path).map_err(|e| record_error(&path, e))?;
        let path = dir.join("scheduler.bpk");
        let scheduler = burn::optim::lr_scheduler::LrSchedulerRecord::load(&path)
            .map_err(|e| record_error(&path, e))?;
        Ok(Self { model, optim, scheduler })
    }

    /// The model record applied to `module` (a record whose tensors do not fit is an error
    /// naming `dir`'s `model.bpk`).
    pub fn load_model<M: Module>(
        module: M,
        record: burn::store::ModuleRecord,
        dir: &Path,
    ) -> Result<M, TrainError> {
        module.try_load_record(record).map_err(|e| record_error(&dir.join("model.bpk"), e))
    }
}

/// The pending folders a run left behind (a crash between a period's records).
pub(crate) fn remove_pending(run: &Path) {
    if let Ok(entries) = std::fs::read_dir(run) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("checkpoint.epoch-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The `Learner` setup both jobs use: `strategy`, the run's checkpointers and checkpointing
/// strategy, the stop strategy, its interrupter, silent renderer and metric log, the periods
/// left. Returns the trained model (`None` when no period was left), or the run's failure.
pub(crate) fn launch<M, B, V>(
    run: &Arc<Run>,
    learner: burn_train::Learner<M>,
    batches: StepLoader<B>,
    validation: PeriodEnd<V>,
    strategy: burn_train::ExecutionStrategy,
) -> Result<Option<M>, TrainError>
where
    M: burn_train::LearnerModel
        + burn_train::TrainStep<Input = B::Item>
        + burn_train::InferenceStep<Input = V::Item>,
    B: Batches,
    V: Validation,
    <M as burn_train::TrainStep>::Output:
        burn_train::metric::Adaptor<burn_train::metric::LossInput>,
    <M as burn_train::InferenceStep>::Output:
        burn_train::metric::Adaptor<burn_train::metric::LossInput>,
{
    let epochs = run.periods_left(run.done());
    if epochs == 0 {
        return Ok(None);
    }
    let files = |name| RunFiles { run: run.clone(), name };
    let result =
        burn_train::SupervisedTraining::new(&run.dir, Arc::new(batches), Arc::new(validation))
            .with_training_strategy(strategy.into())
            .with_custom_checkpointers(files("model"), files("optim"), files("scheduler"))
            .with_checkpointing_strategy(AtCheckpointSteps(run.clone()))
            .early_stopping(StopAsked(run.clone()))
            .with_interrupter(run.interrupter.clone())
            .with_application_logger(None)
            .with_metric_logger(NoMetricLog)
            .renderer(Box::new(Quiet))
            .metrics((burn_train::metric::LossMetric::new(),))
            .num_epochs(epochs)
            .launch(learner);
    run.outcome()?;
    if let Some(e) = result.error {
        return Err(TrainError::Failed { path: run.dir.clone(), reason: e.to_string() });
    }
    Ok(Some(result.model))
}

/// Periods of `period` steps (the last one cut at `total`) that end after `done`.
fn periods_between(done: usize, total: usize, period: usize) -> usize {
    if done >= total {
        return 0;
    }
    total.div_ceil(period) - done / period
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_left_counts_period_ends_in_closed_form() {
        // Against the period-by-period walk it replaces.
        for period in 1..7 {
            for total in 0..30 {
                for done in 0..=total + 2 {
                    let (mut n, mut at) = (0, done);
                    while at < total {
                        at = ((at / period + 1) * period).min(total);
                        n += 1;
                    }
                    assert_eq!(
                        super::periods_between(done, total, period),
                        n,
                        "{done} {total} {period}"
                    );
                }
            }
        }
        // A budget of 2⁶⁴ − 1 steps: counted at once, no overflow.
        assert_eq!(super::periods_between(0, usize::MAX, 1000), usize::MAX / 1000 + 1);
    }
}
