//! The PAR training loop on the paper's Table 5 settings (docs/spec.md §5.3): AdamW β = (0.9,
//! 0.95), ε = 1e-8, weight decay on ≥ 2-dimensional parameters only, linear warm-up then cosine
//! decay to 0, global gradient-norm clipping, optional EMA, f32 or bf16-with-f32-masters,
//! data-parallel over several devices, step-exact checkpoints and resume.

use std::collections::HashMap;
use std::path::Path;

use burn::config::Config;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use burn_train::TrainStep;
use indicatif::ProgressBar;
use par_model::{ParTransformer, ParTransformerConfig, TransformerInput};
use par_order::TokenOrder;
use serde::{Deserialize, Serialize};

use super::data::{CodeBatch, CodeDataset, mix};
use super::schedule::WarmupCosine;
use super::step::{CastParams, ParStep};
use crate::checkpoint::{self, load_optimizer, read_json, save_optimizer, write_json};
use crate::grad::clip_grad_norm;
use crate::module_state::{restore, snapshot};
use crate::plan::BatchPlan;
use crate::{TrainError, Trained};

/// Compute precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Precision {
    /// Everything f32 (CPU default).
    F32,
    /// bf16 weights and activations in the forward/backward pass, cast from f32 master weights
    /// inside the autodiff graph, so gradients, optimizer state and updates stay f32 (the
    /// paper's bf16 autocast; Burn has no autocast). RMSNorm, RoPE, softmax and the loss run in
    /// f32 inside the model either way.
    Bf16,
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
    /// Steps between checkpoints.
    #[config(default = 1000)]
    pub checkpoint_every: usize,
    /// Steps between validation losses.
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
            warmup_steps: self.warmup_epochs * spe,
            total_steps: self.epochs * spe,
        }
    }

    /// Steps this run takes.
    pub fn total_steps(&self, samples: usize) -> usize {
        let all = self.epochs * self.steps_per_epoch(samples);
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

#[derive(Serialize, Deserialize)]
struct State {
    step: usize,
    /// f64 values as bit patterns (exact through JSON).
    history: Vec<(usize, [u64; 4])>,
    validation: Vec<(usize, u64)>,
    /// The unfinished logging window (loss, grad norm) as bit patterns.
    #[serde(default)]
    window: Vec<[u64; 2]>,
    /// Fingerprints of the training and validation data.
    data: [u64; 2],
    model: ParTransformerConfig,
    train: ParTrainConfig,
    /// The device's float dtype; checkpoints from before it was recorded were all f32.
    #[serde(default = "f32_name")]
    dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

fn history_bits(h: &ParLog) -> (usize, [u64; 4]) {
    (h.step, [h.epoch, h.lr, h.loss, h.grad_norm].map(f64::to_bits))
}

fn history_from_bits((step, b): &(usize, [u64; 4])) -> ParLog {
    let v = b.map(f64::from_bits);
    ParLog { step: *step, epoch: v[0], lr: v[1], loss: v[2], grad_norm: v[3] }
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

fn input(batch: &CodeBatch, tokens: usize, device: &Device) -> TransformerInput {
    let b = batch.classes.len();
    TransformerInput {
        tokens: Tensor::from_data(TensorData::new(batch.tokens.clone(), [b, tokens]), device),
        classes: Tensor::from_data(TensorData::new(batch.classes.clone(), [b]), device),
    }
}

/// Loss and gradients of one (part of a) batch on `device`, in `precision`.
fn loss_and_grads(
    model: &ParTransformer,
    batch: &CodeBatch,
    tokens: usize,
    precision: Precision,
    device: &Device,
) -> (f64, GradientsParams) {
    let x = input(batch, tokens, device);
    match precision {
        Precision::F32 => {
            let out = TrainStep::step(&ParStep { model: model.clone() }, x);
            (out.item.loss.into_scalar::<f64>(), out.grads)
        }
        Precision::Bf16 => {
            // The casts are in the graph: the backward pass ends at the f32 master weights.
            let compute = ParStep { model: model.clone().map(&mut CastParams(DType::BF16)) };
            let out = compute.classify(x);
            let loss = out.loss.clone().into_scalar::<f64>();
            (loss, GradientsParams::from_grads(out.loss.backward(), model))
        }
    }
}

/// Weighted sum of per-device gradients on `device` (the all-reduce of data parallelism).
fn reduce_grads<M: Module>(
    model: &M,
    parts: Vec<(f64, GradientsParams)>,
    device: &Device,
) -> GradientsParams {
    struct V<'a> {
        parts: &'a mut [(f64, GradientsParams)],
        out: GradientsParams,
        device: &'a Device,
    }
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let mut sum: Option<Tensor<D>> = None;
            for (w, g) in self.parts.iter_mut() {
                if let Some(t) = g.remove::<D>(param.id) {
                    let t = t.to_device(self.device) * *w;
                    sum = Some(match sum {
                        Some(s) => s + t,
                        None => t,
                    });
                }
            }
            if let Some(s) = sum {
                self.out.register(param.id, s);
            }
        }
    }
    let mut parts = parts;
    let mut v = V { parts: &mut parts, out: GradientsParams::new(), device };
    model.visit(&mut v);
    v.out
}

/// An exponential moving average of the weights, `ema ← d·ema + (1 − d)·w` after every step.
struct Ema {
    decay: f64,
    model: ParTransformer,
}

impl Ema {
    fn update(&mut self, model: &ParTransformer) {
        struct Collect(HashMap<ParamId, Tensor<1>>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let t = param.val().inner();
                let n = t.shape().num_elements();
                self.0.insert(param.id, t.reshape([n]));
            }
        }
        struct Blend(HashMap<ParamId, Tensor<1>>, f64);
        impl ModuleMapper for Blend {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let (id, old, mapper) = param.consume();
                let dims: [usize; D] = old.dims();
                let new = match self.0.remove(&id) {
                    Some(w) => old * self.1 + w.reshape(dims) * (1.0 - self.1),
                    None => old,
                };
                Param::from_mapped_value(id, new, mapper)
            }
        }
        let mut c = Collect(HashMap::new());
        model.visit(&mut c);
        self.model = self.model.clone().map(&mut Blend(c.0, self.decay));
    }
}

/// Mean validation cross-entropy (view 0, true classes, no dropout), in batches of `batch`.
pub fn validation_loss(
    model: &ParTransformer,
    val: &CodeDataset,
    order: &TokenOrder,
    batch: usize,
    device: &Device,
) -> f64 {
    let model = ParStep { model: model.valid() };
    let (mut total, mut count) = (0.0, 0);
    let mut start = 0;
    while start < val.len() {
        let end = (start + batch.max(1)).min(val.len());
        let b = val.eval_batch(start..end, order);
        let out = burn_train::InferenceStep::step(&model, input(&b, val.tokens, device));
        total += out.loss.into_scalar::<f64>() * (end - start) as f64;
        count += end - start;
        start = end;
    }
    if count == 0 { f64::NAN } else { total / count as f64 }
}

/// Trains a PAR model in `run` and writes `checkpoint/` every `checkpoint_every` steps,
/// `model.safetensors` (our format: upstream keys + config; the EMA weights in
/// `model_ema.safetensors` when on), `config.json` before the first step and `report.json`.
///
/// `devices`: one or more devices; the global batch is split evenly over them (data parallel),
/// the gradients are summed on the first, weighted by the share of the batch, and one optimizer
/// step is taken there. Every random choice is a function of (seed, step), so `resume` continues
/// a run exactly; only `max_steps` may change on resume, and not below the steps done; a run
/// already at its last step with its report is left as it is ([`Trained::AlreadyFinished`]).
/// `stop(step)` is asked before each step (Ctrl-C).
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
#[allow(clippy::too_many_arguments)]
pub fn train_par(
    run: &Path,
    model_cfg: &ParTransformerConfig,
    cfg: &ParTrainConfig,
    train: &CodeDataset,
    val: &CodeDataset,
    devices: &[Device],
    resume: bool,
    progress: &ProgressBar,
    stop: &dyn Fn(usize) -> bool,
) -> Result<Trained<ParReport>, TrainError> {
    let result = train_par_in(run, model_cfg, cfg, train, val, devices, resume, progress, stop);
    if result.is_err() {
        checkpoint::discard_unstarted(run);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn train_par_in(
    run: &Path,
    model_cfg: &ParTransformerConfig,
    cfg: &ParTrainConfig,
    train: &CodeDataset,
    val: &CodeDataset,
    devices: &[Device],
    resume: bool,
    progress: &ProgressBar,
    stop: &dyn Fn(usize) -> bool,
) -> Result<Trained<ParReport>, TrainError> {
    let bad = |m: String| Err(TrainError::Config(m));
    cfg.validate()?;
    if devices.is_empty() || train.is_empty() || cfg.batch_size < devices.len() {
        return bad(format!(
            "training needs samples ({}), devices ({}) and a batch size ({}) of at least one sample per device",
            train.len(),
            devices.len(),
            cfg.batch_size
        ));
    }
    model_cfg.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    let n_tokens = model_cfg.grid_size * model_cfg.grid_size;
    let (codes, classes) = train.extents();
    if train.tokens != n_tokens {
        return bad(format!(
            "the codes hold {} tokens per view; the model's {g}×{g} grid has {n_tokens}",
            train.tokens,
            g = model_cfg.grid_size
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
    let fingerprint = [train.fingerprint(), val.fingerprint()];
    // The token order of the model's schedule (PAR, or the raster order of an ablation).
    let order =
        model_cfg.schedule().map_err(|e| TrainError::Config(e.to_string()))?.order().clone();
    let total = cfg.total_steps(train.len());
    let dtype = checkpoint::device_dtype(&devices[0]);
    let resumed = checkpoint::resume_state::<State>(run, resume, |s| s.step)?;
    if let Some((dir, state)) = &resumed {
        if state.data != fingerprint {
            return bad(format!(
                "{}: the checkpoint was trained on other data (training or validation codes differ)",
                dir.display()
            ));
        }
        checkpoint::same_settings(dir, "dtype", &state.dtype, &dtype)?;
        checkpoint::same_settings(dir, "model", &state.model, model_cfg)?;
        let same = ParTrainConfig { max_steps: cfg.max_steps, ..state.train.clone() };
        checkpoint::same_settings(dir, "", &same, cfg)?;
        if total < state.step {
            return Err(TrainError::StepsBehind {
                path: run.into(),
                done: state.step,
                asked: total,
                field: "max_steps",
            });
        }
        let report = run.join("report.json");
        if total == state.step && report.is_file() {
            return Ok(Trained::AlreadyFinished(read_json(&report)?));
        }
    }
    std::fs::create_dir_all(run).map_err(|e| TrainError::io(run, e))?;
    let main = devices[0].clone().autodiff();
    main.seed(cfg.seed);
    let mut model = model_cfg.init(&main).map_err(|e| TrainError::Config(e.to_string()))?;
    snapshot(&model)?; // materialise the lazily initialised weights now, in a fixed order
    let mut optim = optimizer(cfg, &model);
    let mut ema = cfg.ema_decay.map(|decay| Ema { decay, model: model.valid() });
    let (mut start, mut history, mut validation) = (0, Vec::new(), Vec::new());
    let mut window: Vec<(f64, f64)> = Vec::new();
    let mut last_checkpoint = None;
    if let Some((dir, state)) = resumed {
        model = restore(model, &par_store::StateDict::read(&dir.join("model.safetensors"))?)?;
        // The parameter groups are id sets: build them from the restored ids.
        optim = load_optimizer(optimizer(cfg, &model), &dir.join("optim.bpk"))?;
        if let Some(e) = ema.as_mut() {
            e.model = restore(
                e.model.clone(),
                &par_store::StateDict::read(&dir.join("ema.safetensors"))?,
            )?;
        }
        start = state.step;
        last_checkpoint = Some(start);
        history = state.history.iter().map(history_from_bits).collect();
        validation = state
            .validation
            .iter()
            .map(|(s, b)| ValLog { step: *s, loss: f64::from_bits(*b) })
            .collect();
        window =
            state.window.iter().map(|w| (f64::from_bits(w[0]), f64::from_bits(w[1]))).collect();
    }
    write_json(
        &run.join("config.json"),
        &serde_json::json!({ "model": model_cfg, "train": cfg, "devices": devices.len(), "dtype": dtype, "train_samples": train.len(), "val_samples": val.len() }),
    )?;

    let save = |step: usize,
                model: &ParTransformer,
                optim: &ModuleOptimizer,
                ema: &Option<Ema>,
                history: &[ParLog],
                validation: &[ValLog],
                window: &[(f64, f64)],
                last_checkpoint: Option<usize>| {
        // Weights are read back once, checked, and written from the same snapshot.
        let weights = snapshot(model)?;
        checkpoint::finite_weights(&weights, step, last_checkpoint)?;
        let ema_weights = ema.as_ref().map(|e| snapshot(&e.model)).transpose()?;
        checkpoint::write(run, |dir| {
            weights.write_safetensors(&dir.join("model.safetensors"))?;
            save_optimizer(optim, &dir.join("optim.bpk"))?;
            if let Some(e) = &ema_weights {
                e.write_safetensors(&dir.join("ema.safetensors"))?;
            }
            write_json(
                &dir.join("state.json"),
                &State {
                    step,
                    history: history.iter().map(history_bits).collect(),
                    validation: validation.iter().map(|v| (v.step, v.loss.to_bits())).collect(),
                    window: window.iter().map(|w| [w.0.to_bits(), w.1.to_bits()]).collect(),
                    data: fingerprint,
                    model: model_cfg.clone(),
                    train: cfg.clone(),
                    dtype: dtype.clone(),
                },
            )
        })?;
        model.valid().save(&run.join("model.safetensors"))?;
        if let Some(e) = ema {
            e.model.save(&run.join("model_ema.safetensors"))?;
        }
        Ok::<(), TrainError>(())
    };

    let schedule = cfg.schedule(train.len());
    let plan = BatchPlan::new(train.len(), cfg.batch_size, cfg.seed);
    let spe = cfg.steps_per_epoch(train.len());
    progress.set_length(total as u64);
    progress.set_position(start as u64);
    let t0 = std::time::Instant::now();
    for step in start..total {
        if stop(step) {
            save(step, &model, &optim, &ema, &history, &validation, &window, last_checkpoint)?;
            return Err(TrainError::Interrupted { step });
        }
        let batch = train.train_batch(
            &plan,
            step,
            &order,
            cfg.class_dropout,
            model_cfg.num_classes,
            cfg.seed,
        );
        // Dropout masks: the generator reseeded from (seed, step) before every step. Burn's
        // generator is global per backend, so with several devices the workers draw from it
        // concurrently and the masks (only they) depend on thread timing.
        main.seed(mix(cfg.seed ^ mix(step as u64)));
        let (loss, mut grads) = if devices.len() == 1 {
            loss_and_grads(&model, &batch, n_tokens, cfg.precision, &main)
        } else {
            let k = devices.len();
            let b = batch.classes.len();
            let parts: Vec<(f64, f64, GradientsParams)> = std::thread::scope(|scope| {
                let handles: Vec<_> = devices
                    .iter()
                    .enumerate()
                    .map(|(d, device)| {
                        let (lo, hi) = (d * b / k, (d + 1) * b / k);
                        let part = CodeBatch {
                            tokens: batch.tokens[lo * n_tokens..hi * n_tokens].to_vec(),
                            classes: batch.classes[lo..hi].to_vec(),
                        };
                        let replica = model.clone().fork(&device.clone().autodiff());
                        let dev = device.clone().autodiff();
                        let precision = cfg.precision;
                        scope.spawn(move || {
                            let (l, g) = loss_and_grads(&replica, &part, n_tokens, precision, &dev);
                            ((hi - lo) as f64 / b as f64, l, g)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("device worker")).collect()
            });
            let loss = parts.iter().map(|(w, l, _)| w * l).sum();
            (loss, reduce_grads(&model, parts.into_iter().map(|(w, _, g)| (w, g)).collect(), &main))
        };
        let grad_norm = clip_grad_norm(&model, &mut grads, cfg.grad_clip);
        for (quantity, value) in [("loss", loss), ("gradient norm", grad_norm)] {
            if !value.is_finite() {
                return Err(TrainError::NonFinite {
                    step: step + 1,
                    quantity: quantity.into(),
                    value,
                    last_checkpoint,
                });
            }
        }
        let lr = schedule.lr(step);
        model = optim.step(lr, model, grads);
        if let Some(e) = ema.as_mut() {
            e.update(&model);
        }
        window.push((loss, grad_norm));
        let done = step + 1;
        if done % cfg.log_every == 0 || done == total {
            let n = window.len() as f64;
            history.push(ParLog {
                step: done,
                epoch: done as f64 / spe as f64,
                lr,
                loss: window.iter().map(|w| w.0).sum::<f64>() / n,
                grad_norm: window.iter().map(|w| w.1).sum::<f64>() / n,
            });
            window.clear();
        }
        if (done % cfg.val_every == 0 || done == total) && !val.is_empty() {
            validation.push(ValLog {
                step: done,
                loss: validation_loss(&model, val, &order, cfg.batch_size, &devices[0]),
            });
        }
        progress.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
        progress.inc(1);
        if done % cfg.checkpoint_every == 0 || done == total {
            save(done, &model, &optim, &ema, &history, &validation, &window, last_checkpoint)?;
            last_checkpoint = Some(done);
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let stepped = total.saturating_sub(start);
    let report = ParReport {
        steps: total,
        train_samples: train.len(),
        seconds,
        tokens_per_second: if seconds > 0.0 {
            (stepped * cfg.batch_size * n_tokens) as f64 / seconds
        } else {
            0.0
        },
        history,
        validation,
    };
    write_json(&run.join("report.json"), &report)?;
    Ok(Trained::Done(report))
}
