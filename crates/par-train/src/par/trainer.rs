//! The PAR training loop on the paper's Table 5 settings (docs/spec.md §5.3): AdamW β = (0.9,
//! 0.95), ε = 1e-8, weight decay on ≥ 2-dimensional parameters only, linear warm-up then cosine
//! decay to 0, global gradient-norm clipping, optional EMA, f32 or bf16-with-f32-masters,
//! data-parallel over several devices, step-exact checkpoints and resume.

use std::path::Path;
use std::sync::Arc;

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn_train::{ExecutionStrategy, Learner, MultiDeviceOptim};
use par_model::{ParTransformer, ParTransformerConfig, Preset, TransformerInput};
use par_order::TokenOrder;
use serde::{Deserialize, Serialize};

use super::data::CodeDataset;
use super::learner::{Fixed, ParBatches, ParRun, ParValidation, State};
use super::lr_schedule::{WarmupCosine, WarmupCosineScheduler};
use super::step::{self, ParStep};
use crate::checkpoint::{self, write_json};
use crate::learner::{self, PeriodEnd, Records, Run, StepLoader};
use crate::module_state::snapshot;
use crate::monitor::Monitor;
use crate::{TrainError, Trained};

/// Compute precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// Everything f32 (CPU default).
    F32,
    /// bf16 weights and activations in the forward/backward pass, cast from f32 master weights
    /// inside the autodiff graph, so gradients, optimizer state and updates stay f32 (the
    /// paper's bf16 autocast; Burn has no autocast). RMSNorm, RoPE, softmax and the loss run in
    /// f32 inside the model either way.
    Bf16,
}

impl Precision {
    /// Every value, in declaration order.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::Bf16];
    /// Their names (as [`Precision::name`] gives them; what `FromStr` accepts).
    pub const NAMES: [&'static str; 2] = ["f32", "bf16"];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    /// Parses a name of [`Precision::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown Precision `{s}` (one of {})", Self::NAMES.join(", ")))
    }
}

/// Settings of a PAR training run; defaults are the paper's Table 5 for PAR-L / XL.
#[derive(Config, Debug, PartialEq)]
pub struct ParTrainConfig {
    /// Epochs the schedule spans (300).
    #[config(default = 300)]
    pub epochs: usize,
    /// Linear warm-up epochs (15).
    #[config(default = 15)]
    pub warmup_epochs: usize,
    /// Stop after this many steps (smoke runs, benchmarks); the schedule still spans `epochs`.
    pub max_steps: Option<usize>,
    /// Global batch size (256 for L / XL, 512 for XXL / 3B), split over the devices.
    #[config(default = 256)]
    pub batch_size: usize,
    /// Peak learning rate (1e-4 for L / XL, 2e-4 for XXL / 3B).
    #[config(default = 1e-4)]
    pub lr: f64,
    /// AdamW β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// AdamW β₂.
    #[config(default = 0.95)]
    pub beta2: f64,
    /// AdamW ε: PyTorch's 1e-8 (Burn's default is 1e-5).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// Decoupled weight decay of parameters with ≥ 2 dimensions; norms and other vectors get
    /// none (0.05).
    #[config(default = 0.05)]
    pub weight_decay: f64,
    /// Maximum global gradient norm (1.0).
    #[config(default = 1.0)]
    pub grad_clip: f64,
    /// Probability that a sample's class becomes the null class (0.1).
    #[config(default = 0.1)]
    pub class_dropout: f64,
    /// EMA decay of a copy of the weights (e.g. 0.9999), off when `None`.
    pub ema_decay: Option<f64>,
    /// Compute precision.
    #[config(default = "Precision::F32")]
    pub precision: Precision,
    /// Steps between checkpoints (and the last step, and a stop).
    #[config(default = 1000)]
    pub checkpoint_every: usize,
    /// Steps between validation losses (and the last step). A `Learner` epoch is
    /// gcd(`checkpoint_every`, `val_every`) steps, so both fall on epoch ends.
    #[config(default = 1000)]
    pub val_every: usize,
    /// Steps between history entries.
    #[config(default = 50)]
    pub log_every: usize,
    /// Seed of the initial weights, data order, views, class dropout and dropout masks.
    #[config(default = 0)]
    pub seed: u64,
}

impl ParTrainConfig {
    /// The paper's Table 5 settings for `preset` (docs/spec.md §5.3): peak lr 1e-4 and batch
    /// 256 for gpt-l and gpt-xl (also used for gpt-tiny, gpt-small, gpt-b), 2e-4 and 512 for
    /// gpt-xxl and gpt-3b (also used for gpt-1b, gpt-xxxl);
    /// everything else is the [`ParTrainConfig::new`] default (300 epochs, 15 warm-up, AdamW
    /// (0.9, 0.95), wd 0.05, clip 1.0, class dropout 0.1). This and
    /// [`super::WarmupCosine`] are the places to change the optimizer's schedule.
    pub fn table5(preset: Preset) -> Self {
        let (lr, batch) = match preset {
            Preset::GptXxl | Preset::GptXxxl | Preset::Gpt3b | Preset::Gpt1b => (2e-4, 512),
            _ => (1e-4, 256),
        };
        Self::new().with_lr(lr).with_batch_size(batch)
    }

    /// The paper's Table 6 settings for video (UCF-101, docs/spec.md §8): peak lr 1e-4, batch
    /// 256, 3000 epochs with 150 warm-up epochs and a cosine decay to 0; AdamW (0.9, 0.95), weight
    /// decay 0.05, clip 1.0 and class dropout 0.1 as for images (the [`ParTrainConfig::new`]
    /// defaults). The model's dropouts (token, residual, feed-forward, attention: 0.1) are in
    /// `par_model::Preset::video_config`.
    pub fn table6() -> Self {
        Self::new().with_lr(1e-4).with_batch_size(256).with_epochs(3000).with_warmup_epochs(150)
    }

    /// Checks every setting's range before any work.
    ///
    /// # Errors
    ///
    /// [`TrainError::Setting`] naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field, reason: String| Err(TrainError::Setting { field, reason });
        for (field, value) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("max_steps", self.max_steps.unwrap_or(1)),
            ("checkpoint_every", self.checkpoint_every),
            ("val_every", self.val_every),
            ("log_every", self.log_every),
        ] {
            if value == 0 {
                return bad(field, "must be at least 1, got 0".into());
            }
        }
        let unit = |x: f64| (0.0..1.0).contains(&x);
        for (field, value, ok, range) in [
            ("lr", self.lr, self.lr > 0.0, "> 0"),
            ("epsilon", self.epsilon, self.epsilon > 0.0, "> 0"),
            ("grad_clip", self.grad_clip, self.grad_clip > 0.0, "> 0"),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0.0, "≥ 0"),
            ("beta1", self.beta1, unit(self.beta1), "in [0, 1)"),
            ("beta2", self.beta2, unit(self.beta2), "in [0, 1)"),
            ("class_dropout", self.class_dropout, unit(self.class_dropout), "in [0, 1)"),
            (
                "ema_decay",
                self.ema_decay.unwrap_or(0.5),
                unit(self.ema_decay.unwrap_or(0.5)),
                "in [0, 1)",
            ),
        ] {
            if !(value.is_finite() && ok) {
                return bad(field, format!("must be finite and {range}, got {value}"));
            }
        }
        Ok(())
    }

    /// Steps per epoch for `samples` training samples (`⌊samples / batch⌋`, drop-last, ≥ 1).
    pub fn steps_per_epoch(&self, samples: usize) -> usize {
        (samples / self.batch_size.max(1)).max(1)
    }

    /// The learning-rate schedule for `samples` training samples.
    pub fn schedule(&self, samples: usize) -> WarmupCosine {
        let spe = self.steps_per_epoch(samples);
        WarmupCosine {
            base_lr: self.lr,
            warmup_steps: self.warmup_epochs.saturating_mul(spe),
            total_steps: self.epochs.saturating_mul(spe),
        }
    }

    /// Steps this run takes.
    pub fn total_steps(&self, samples: usize) -> usize {
        // Saturating: an epoch count of 2⁶⁴ − 1 is a run that stops only when asked.
        let all = self.epochs.saturating_mul(self.steps_per_epoch(samples));
        self.max_steps.map_or(all, |m| m.min(all))
    }
}

/// One history entry (means over the logging window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParLog {
    /// Steps done.
    pub step: usize,
    /// Epoch (fractional) at the end of the window.
    pub epoch: f64,
    /// Learning rate of the window's last step.
    pub lr: f64,
    /// Mean training loss.
    pub loss: f64,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
}

/// A validation measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValLog {
    /// Steps done.
    pub step: usize,
    /// Mean cross-entropy on the validation samples (view 0, true classes, no dropout).
    pub loss: f64,
}

/// `report.json` of a PAR training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParReport {
    /// Steps done.
    pub steps: usize,
    /// Training samples.
    pub train_samples: usize,
    /// Wall time of this process's steps, seconds.
    pub seconds: f64,
    /// Image tokens per second of this process's steps.
    pub tokens_per_second: f64,
    /// Training loss history.
    pub history: Vec<ParLog>,
    /// Validation losses.
    pub validation: Vec<ValLog>,
}

/// Parameters with fewer than two dimensions (norm weights; the model has no biases): no decay.
fn no_decay_ids<M: Module>(module: &M) -> Vec<ParamId> {
    struct V(Vec<ParamId>);
    impl ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if D < 2 {
                self.0.push(param.id);
            }
        }
    }
    let mut v = V(Vec::new());
    module.visit(&mut v);
    v.0
}

/// AdamW with decay on ≥ 2-D parameters only (the model's parameter ids fix the groups).
pub fn optimizer(cfg: &ParTrainConfig, model: &ParTransformer) -> ModuleOptimizer {
    let adamw = |wd: f64| {
        AdamWConfig::new()
            .with_beta_1(cfg.beta1 as f32)
            .with_beta_2(cfg.beta2 as f32)
            .with_epsilon(cfg.epsilon as f32)
            .with_weight_decay(wd as f32)
    };
    adamw(cfg.weight_decay).init().with_group(
        ParamGroup::from_ids(no_decay_ids(model)),
        adamw(0.0).build(),
        None,
    )
}

/// Which parameters get weight decay, by module path (for reports and tests).
pub fn weight_decay_split(model: &ParTransformer) -> (Vec<String>, Vec<String>) {
    let no: std::collections::HashSet<ParamId> = no_decay_ids(model).into_iter().collect();
    let state = snapshot(model).expect("readable weights");
    let ids: std::collections::BTreeMap<String, u64> =
        state.stored_json(crate::module_state::PARAM_IDS_KEY).ok().flatten().unwrap_or_default();
    let (mut decay, mut none) = (Vec::new(), Vec::new());
    for (path, id) in ids {
        if no.contains(&ParamId::from(id)) { none.push(path) } else { decay.push(path) }
    }
    (decay, none)
}

/// Mean validation cross-entropy (view 0, true classes, no dropout), in batches of `batch`.
pub fn validation_loss(
    model: &ParTransformer,
    val: &CodeDataset,
    order: &TokenOrder,
    batch: usize,
    device: &Device,
) -> f64 {
    let model = ParStep::new(model.valid());
    let (mut total, mut count) = (0.0, 0);
    let mut start = 0;
    while start < val.len() {
        let end = (start + batch.max(1)).min(val.len());
        let b = val.eval_batch(start..end, order);
        let n = b.classes.len();
        let input = TransformerInput {
            tokens: Tensor::from_data(TensorData::new(b.tokens, [n, val.tokens]), device),
            classes: Tensor::from_data(TensorData::new(b.classes, [n]), device),
        };
        total += model.loss(input).into_scalar::<f64>() * (end - start) as f64;
        count += end - start;
        start = end;
    }
    if count == 0 { f64::NAN } else { total / count as f64 }
}

/// Trains a PAR model in `run` on burn-train's `Learner` and writes `checkpoint/` at the end of
/// every checkpoint period of `checkpoint_every` steps, `model.safetensors` (our format: upstream
/// keys + config; the EMA weights in `model_ema.safetensors` when on), `config.json` before the
/// first step and `report.json`.
///
/// `devices`: one device (burn-train's single-device strategy) or several (its multi-device
/// strategy with the optimizer on the first device): every global batch is split evenly over the
/// devices, each part's loss weighted by its share, and the parts' gradients summed, so the
/// update is that of the global batch. Every random choice is a function of (seed, step), so
/// `resume` continues a run exactly; only `max_steps` may change on resume, and not below the
/// steps done; a run already at its last step with its report is left as it is
/// ([`Trained::AlreadyFinished`]). `monitor` hears of every step and is asked after each whether
/// to stop: the period then ends early and is checkpointed.
///
/// Training stops at the first non-finite loss, gradient norm or weight
/// ([`TrainError::NonFinite`]) before anything from that step is saved. A run that fails before
/// its first checkpoint leaves no files in `run`.
///
/// # Errors
///
/// [`TrainError`]: invalid settings, data that does not fit the model, an existing run without
/// `resume`, `resume` without a checkpoint or with other settings, divergence, I/O;
/// [`TrainError::Interrupted`] after a stop (checkpoint written).
pub fn train_par(
    run: &Path,
    model_cfg: &ParTransformerConfig,
    cfg: &ParTrainConfig,
    data: &ParData,
    devices: &[Device],
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<ParReport>, TrainError> {
    let created = !run.exists();
    let result = train_par_in(run, model_cfg, cfg, data, devices, resume, monitor);
    if result.is_err() {
        checkpoint::discard_unstarted(run, created);
        // Only this process's own half-written checkpoint: never another run's (e.g. a second
        // start refused because the folder is training).
        if matches!(result, Err(TrainError::Failed { .. })) {
            learner::remove_pending(run);
        }
    }
    result
}

/// The codes a PAR run trains and validates on (shared with the data loaders' threads).
#[derive(Debug, Clone)]
pub struct ParData {
    /// Training codes.
    pub train: Arc<CodeDataset>,
    /// Validation codes (may be empty).
    pub val: Arc<CodeDataset>,
}

impl ParData {
    /// Wraps the two sets.
    pub fn new(train: CodeDataset, val: CodeDataset) -> Self {
        Self { train: Arc::new(train), val: Arc::new(val) }
    }
}

fn check_data(
    model_cfg: &ParTransformerConfig,
    cfg: &ParTrainConfig,
    data: &ParData,
    devices: usize,
) -> Result<(), TrainError> {
    let bad = |m: String| Err(TrainError::Config(m));
    let (train, val) = (&data.train, &data.val);
    if devices == 0 || train.is_empty() || cfg.batch_size < devices {
        return bad(format!(
            "training needs samples ({}), devices ({devices}) and a batch size ({}) of at least one sample per device",
            train.len(),
            cfg.batch_size
        ));
    }
    let grid = model_cfg.region_grid().map_err(|e| TrainError::Config(e.to_string()))?;
    let n_tokens = grid.num_image_tokens();
    let (codes, classes) = train.extents();
    if train.tokens != n_tokens {
        return bad(format!(
            "the codes hold {} tokens per view; the model's {}×{g}×{g} grid (frames × rows × columns) has {n_tokens}",
            train.tokens,
            grid.frames(),
            g = grid.grid_size()
        ));
    }
    if codes > model_cfg.vocab_size || classes > model_cfg.num_classes {
        return bad(format!(
            "the codes use ids < {codes} and classes < {classes}; the model has vocab_size {} and num_classes {}",
            model_cfg.vocab_size, model_cfg.num_classes
        ));
    }
    if !val.is_empty() {
        let (vc, vl) = val.extents();
        if val.tokens != n_tokens || vc > model_cfg.vocab_size || vl > model_cfg.num_classes {
            return bad(format!(
                "the validation codes ({} tokens per view, ids < {vc}, classes < {vl}) do not fit the model ({n_tokens} tokens, vocab_size {}, num_classes {})",
                val.tokens, model_cfg.vocab_size, model_cfg.num_classes
            ));
        }
    }
    Ok(())
}

/// Writes `model.safetensors` (and `model_ema.safetensors`) from a checkpoint's model record:
/// our format, loadable by `par sample` while the run goes on.
fn export(
    run_dir: &Path,
    model_cfg: &ParTransformerConfig,
    ema: bool,
    device: &Device,
) -> learner::Export {
    let (dir, cfg, device) = (run_dir.to_path_buf(), model_cfg.clone(), device.clone());
    Box::new(move |record: &Path| {
        let init = || cfg.init(&device).map_err(|e| TrainError::Config(e.to_string()));
        let template =
            ParStep { model: init()?, ema: if ema { Some(init()?) } else { None }, run: None };
        let loaded = burn::store::ModuleRecord::load(record)
            .map_err(|e| TrainError::Failed { path: record.into(), reason: e.to_string() })?;
        let step = Records::load_model(template, loaded, record.parent().unwrap_or(&dir))?;
        step.model.save(&dir.join("model.safetensors"))?;
        if let Some(e) = &step.ema {
            e.save(&dir.join("model_ema.safetensors"))?;
        }
        Ok(())
    })
}

fn train_par_in(
    run_dir: &Path,
    model_cfg: &ParTransformerConfig,
    cfg: &ParTrainConfig,
    data: &ParData,
    devices: &[Device],
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<ParReport>, TrainError> {
    cfg.validate()?;
    model_cfg.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    check_data(model_cfg, cfg, data, devices.len())?;
    let (train, val) = (&data.train, &data.val);
    let n_tokens =
        model_cfg.region_grid().map_err(|e| TrainError::Config(e.to_string()))?.num_image_tokens();
    let fingerprint = [train.fingerprint(), val.fingerprint()];
    // The token order of the model's schedule (PAR, or the raster order of an ablation).
    let order =
        model_cfg.schedule().map_err(|e| TrainError::Config(e.to_string()))?.order().clone();
    let total = cfg.total_steps(train.len());
    let dtype = checkpoint::device_dtype(&devices[0]);
    let resumed = checkpoint::resume_state::<State>(run_dir, resume, |s| s.step)?;
    if let Some((dir, state)) = &resumed {
        let same = checkpoint::SameRun {
            data: (state.data == fingerprint, "data (training or validation codes differ)"),
            dtype: (&state.dtype, &dtype),
            model: ("model", checkpoint::json(&state.model), checkpoint::json(model_cfg)),
            train: (
                checkpoint::json(&ParTrainConfig {
                    max_steps: cfg.max_steps,
                    ..state.train.clone()
                }),
                checkpoint::json(cfg),
            ),
            steps: (state.step, total, "max_steps"),
        };
        if let Some(report) = checkpoint::check_resume(run_dir, dir, same)? {
            return Ok(Trained::AlreadyFinished(report));
        }
    }
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    learner::remove_pending(run_dir);
    let main = devices[0].clone().autodiff();
    main.seed(cfg.seed);
    let model = model_cfg.init(&main).map_err(|e| TrainError::Config(e.to_string()))?;
    snapshot(&model)?; // materialise the lazily initialised weights now, in a fixed order
    let ema = cfg.ema_decay.map(|_| step::ema_copy(&model));

    let start = resumed.as_ref().map_or(0, |(_, s)| s.step);
    let val_every = (!val.is_empty()).then_some(cfg.val_every);
    let run =
        Arc::new(Run::new(run_dir, total, cfg.checkpoint_every, val_every, start, monitor.clone()));
    let par_run = Arc::new(ParRun {
        run: run.clone(),
        seed: cfg.seed,
        precision: cfg.precision,
        grad_clip: cfg.grad_clip,
        ema_decay: cfg.ema_decay,
        schedule: cfg.schedule(train.len()),
        steps_per_epoch: cfg.steps_per_epoch(train.len()),
        log_every: cfg.log_every,
        val_every: cfg.val_every,
        fixed: Fixed {
            data: fingerprint,
            model: model_cfg.clone(),
            train: cfg.clone(),
            dtype: dtype.clone(),
        },
        journal: Default::default(),
    });
    let snap = par_run.clone();
    run.set_snapshot(Box::new(move || {
        serde_json::to_value(snap.state(snap.run.done())).expect("serialisable")
    }));
    run.set_export(export(run_dir, model_cfg, cfg.ema_decay.is_some(), &devices[0]));
    let mut par = ParStep { model, ema, run: Some(par_run.clone()) };
    let scheduler = WarmupCosineScheduler { schedule: par_run.schedule, steps: 0 };
    let mut records = None;
    if let Some((dir, state)) = &resumed {
        let r = Records::read(dir)?;
        par = Records::load_model(par, r.model, dir)?;
        records = Some((r.optim, r.scheduler));
        par_run.restore_journal(state);
    }
    // The parameter groups are id sets: build them from the (restored) model's ids.
    let optim = optimizer(cfg, &par.model);
    let mut learner = Learner::new(par.clone(), optim, scheduler);
    if let Some((optim, lr)) = records {
        learner.load_optim(optim);
        learner.load_scheduler(lr);
    }
    write_json(
        &run_dir.join("config.json"),
        &serde_json::json!({ "model": model_cfg, "train": cfg, "devices": devices.len(), "dtype": dtype, "train_samples": train.len(), "val_samples": val.len() }),
    )?;

    let batches = ParBatches {
        codes: train.clone(),
        order: order.clone(),
        batch_size: cfg.batch_size,
        class_dropout: cfg.class_dropout,
        num_classes: model_cfg.num_classes,
        seed: cfg.seed,
    };
    let validation = ParValidation {
        par: par_run.clone(),
        codes: val.clone(),
        order,
        batch_size: cfg.batch_size,
    };
    let strategy = if devices.len() == 1 {
        ExecutionStrategy::SingleDevice(main.clone())
    } else {
        ExecutionStrategy::MultiDevice(devices.to_vec(), MultiDeviceOptim::OptimMainDevice)
    };
    monitor.start(start, total);
    let t0 = std::time::Instant::now();
    let trained = learner::launch(
        &run,
        learner,
        StepLoader::new(run.clone(), Arc::new(batches), main.clone()),
        PeriodEnd {
            run: run.clone(),
            validation: Arc::new(validation),
            device: devices[0].clone(),
        },
        strategy,
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    if trained.is_none() {
        // Nothing was left to train (a run that stopped after its last checkpoint): the files
        // come from that checkpoint.
        let dir = resumed
            .as_ref()
            .map_or_else(|| checkpoint::checkpoint_dir(run_dir), |(d, _)| d.clone());
        export(run_dir, model_cfg, cfg.ema_decay.is_some(), &devices[0])(&dir.join("model.bpk"))?;
    }
    let stepped = total.saturating_sub(start);
    let j = par_run.journal();
    let report = ParReport {
        steps: total,
        train_samples: train.len(),
        seconds,
        tokens_per_second: if seconds > 0.0 {
            (stepped * cfg.batch_size * n_tokens) as f64 / seconds
        } else {
            0.0
        },
        history: j.history.clone(),
        validation: j.validation.clone(),
    };
    drop(j);
    write_json(&run_dir.join("report.json"), &report)?;
    Ok(Trained::Done(report))
}
