//! The tokenizer training loop: MSE + codebook + commitment (+ entropy) losses, optional PatchGAN
//! hinge loss from a start step, Adam β = (0.9, 0.95), global gradient-norm clipping per network,
//! checkpoints with exact resume, held-out PSNR and codebook usage.

use std::path::Path;

use burn::config::Config;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn_train::{ExecutionStrategy, Learner};
use par_data::{ImageSet, PixelImage};
use par_tokenizer::{CodebookUsage, VqTokenizer, VqTokenizerConfig};
use serde::{Deserialize, Serialize};

use super::PatchDiscriminator;
use super::step::{VqBatches, VqItem, VqRun, VqState, VqStep};
use crate::checkpoint::{self, write_json};
use crate::learner::{self, NoValidation, PeriodEnd, Records, Run, StepLoader};
use crate::module_state::snapshot;
use crate::monitor::Monitor;
use crate::{TrainError, Trained};

/// Settings of a tokenizer training run (defaults: LlamaGen `vq_train.py`, except the step count
/// and batch size, which suit a CPU run; LPIPS and the random-crop augmentation of `vq_train.py`
/// are not reproduced, see docs/training.md).
#[derive(Config, Debug, PartialEq)]
pub struct VqTrainConfig {
    /// Optimizer steps.
    #[config(default = 2000)]
    pub steps: usize,
    /// Images per step.
    #[config(default = 32)]
    pub batch_size: usize,
    /// Adam learning rate (constant).
    #[config(default = 1e-4)]
    pub lr: f64,
    /// Adam β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Adam β₂.
    #[config(default = 0.95)]
    pub beta2: f64,
    /// Adam ε (PyTorch's default; Burn's is 1e-5).
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// Maximum global gradient norm, per network.
    #[config(default = 1.0)]
    pub grad_clip: f64,
    /// Adversarial weight λ once the discriminator is on.
    #[config(default = 0.5)]
    pub disc_weight: f64,
    /// Step from which the PatchGAN loss is used (`global_step = step + 1 ≥ disc_start`,
    /// LlamaGen 20000); `None` trains without a discriminator.
    pub disc_start: Option<usize>,
    /// Filters of the discriminator's first stage (64 upstream).
    #[config(default = 64)]
    pub disc_channels: usize,
    /// Stride-2 stages of the discriminator (3 upstream; 2 suits 32 px images).
    #[config(default = 3)]
    pub disc_layers: usize,
    /// Random horizontal flips of training images.
    #[config(default = true)]
    pub random_flip: bool,
    /// Steps between checkpoints.
    #[config(default = 500)]
    pub checkpoint_every: usize,
    /// Steps between log entries in the report.
    #[config(default = 50)]
    pub log_every: usize,
    /// Seed of the initial weights, the data order and the flips.
    #[config(default = 0)]
    pub seed: u64,
}

/// Averages of one logging window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    /// Steps done at the end of the window.
    pub step: usize,
    /// Generator loss.
    pub loss: f64,
    /// Reconstruction MSE on `[−1, 1]` images.
    pub mse: f64,
    /// Codebook loss.
    pub codebook: f64,
    /// Commitment loss (weighted).
    pub commitment: f64,
    /// Entropy loss (weighted).
    pub entropy: f64,
    /// Generator adversarial loss (unweighted; 0 before the discriminator starts).
    pub g_adv: f64,
    /// Discriminator hinge loss (unweighted; 0 before it starts).
    pub d_loss: f64,
    /// Generator gradient norm before clipping.
    pub grad_norm: f64,
}

/// Reconstruction quality on held-out images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutReport {
    /// Images evaluated.
    pub images: usize,
    /// Mean per-image PSNR in dB of the 8-bit reconstructions (peak 255); `None` (JSON `null`)
    /// with no held-out images.
    pub psnr_db: Option<f64>,
    /// Mean squared error on `[−1, 1]`; `None` with no held-out images.
    pub mse: Option<f64>,
    /// Fraction of codebook entries used by the held-out codes.
    pub codebook_usage: f64,
    /// Entries used.
    pub codes_used: usize,
    /// Perplexity of the held-out code distribution.
    pub perplexity: f64,
}

/// What `train_tokenizer` writes to `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VqReport {
    /// Steps done.
    pub steps: usize,
    /// Training images.
    pub train_images: usize,
    /// Wall time of this process's steps, seconds.
    pub seconds: f64,
    /// Images per second of this process's steps.
    pub images_per_second: f64,
    /// Loss history.
    pub history: Vec<StepLog>,
    /// Held-out evaluation at the end.
    pub held_out: HeldOutReport,
}

impl VqTrainConfig {
    /// Checks every setting's range before any work.
    ///
    /// # Errors
    ///
    /// [`TrainError::Setting`] naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field, reason: String| Err(TrainError::Setting { field, reason });
        let mut counts = vec![
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
        ];
        if self.disc_start.is_some() {
            counts
                .extend([("disc_channels", self.disc_channels), ("disc_layers", self.disc_layers)]);
        }
        for (field, value) in counts {
            if value == 0 {
                return bad(field, "must be at least 1, got 0".into());
            }
        }
        for (field, value, ok, range) in [
            ("lr", self.lr, self.lr > 0.0, "> 0"),
            ("epsilon", self.epsilon, self.epsilon > 0.0, "> 0"),
            ("grad_clip", self.grad_clip, self.grad_clip > 0.0, "> 0"),
            ("disc_weight", self.disc_weight, self.disc_weight >= 0.0, "≥ 0"),
            ("beta1", self.beta1, (0.0..1.0).contains(&self.beta1), "in [0, 1)"),
            ("beta2", self.beta2, (0.0..1.0).contains(&self.beta2), "in [0, 1)"),
        ] {
            if !(value.is_finite() && ok) {
                return bad(field, format!("must be finite and {range}, got {value}"));
            }
        }
        Ok(())
    }
}

impl StepLog {
    pub(crate) fn to_bits(&self) -> (usize, [u64; 8]) {
        let v = [
            self.loss,
            self.mse,
            self.codebook,
            self.commitment,
            self.entropy,
            self.g_adv,
            self.d_loss,
            self.grad_norm,
        ];
        (self.step, v.map(f64::to_bits))
    }

    pub(crate) fn from_bits((step, b): &(usize, [u64; 8])) -> Self {
        let v = b.map(f64::from_bits);
        Self {
            step: *step,
            loss: v[0],
            mse: v[1],
            codebook: v[2],
            commitment: v[3],
            entropy: v[4],
            g_adv: v[5],
            d_loss: v[6],
            grad_norm: v[7],
        }
    }
}

pub(crate) fn images_tensor(
    set: &ImageSet,
    indices: &[usize],
    flips: &[bool],
    device: &Device,
) -> Tensor<4> {
    let s = set.size;
    Tensor::from_data(
        TensorData::new(set.batch_chw(indices, flips), [indices.len(), set.channels, s, s]),
        device,
    )
}

fn to_pixels(values: &[f32], channels: usize, size: usize) -> Vec<PixelImage> {
    values
        .chunks(channels * size * size)
        .map(|v| PixelImage::from_chw_signed(v, channels, size, size))
        .collect()
}

/// Reconstructs `held_out` (batches of `batch_size`, no gradients) and measures PSNR of the
/// 8-bit images and codebook usage; returns the report and the reconstructions.
pub fn evaluate(
    model: &VqTokenizer,
    held_out: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> (HeldOutReport, Vec<PixelImage>) {
    let model = model.valid();
    let mut usage = CodebookUsage::new(model.config().codebook_size);
    let (mut psnr, mut mse, mut recons) = (0.0, 0.0, Vec::new());
    let all: Vec<usize> = (0..held_out.len()).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let x = images_tensor(held_out, chunk, &vec![false; chunk.len()], device);
        let out = model.quantize_images(x.clone());
        let codes = out.indices.into_data().try_into_vec_as::<i64>().expect("int codes");
        usage.add(codes.into_iter().map(|c| c as usize));
        let y = model.decode_latent(out.quantized).clamp(-1.0, 1.0);
        let orig = x.into_data().try_into_vec_as::<f32>().expect("f32 images");
        let rec = y.into_data().try_into_vec_as::<f32>().expect("f32 images");
        let per = orig.len() / chunk.len();
        for (o, r) in orig.chunks(per).zip(rec.chunks(per)) {
            mse += o.iter().zip(r).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / per as f64;
        }
        let images = to_pixels(&rec, held_out.channels, held_out.size);
        for (k, im) in images.iter().enumerate() {
            let reference = held_out.image(chunk[k]);
            let e: f64 = reference
                .data
                .iter()
                .zip(&im.data)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>()
                / im.data.len() as f64;
            psnr += if e == 0.0 { 100.0 } else { 10.0 * (255.0f64 * 255.0 / e).log10() };
        }
        recons.extend(images);
    }
    let n = held_out.len() as f64;
    let report = HeldOutReport {
        images: held_out.len(),
        psnr_db: (n > 0.0).then(|| psnr / n),
        mse: (n > 0.0).then(|| mse / n),
        codebook_usage: usage.usage(),
        codes_used: usage.used(),
        perplexity: usage.perplexity(),
    };
    (report, recons)
}

fn adam(cfg: &VqTrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(cfg.beta1 as f32)
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(cfg.epsilon as f32)
        .init()
}

/// Trains a tokenizer in `run` on burn-train's `Learner` (single device): `checkpoint/` every
/// `checkpoint_every` steps (`model.bpk` with the tokenizer and the discriminator, `optim.bpk`,
/// `scheduler.bpk`, `state.json` with the step, history and settings), then `tokenizer.safetensors` (our
/// self-describing format), `report.json` and `reconstructions.png` (held-out originals above
/// their reconstructions). With `resume`, continues the run's checkpoint exactly: the data order
/// and flips are functions of (seed, step), so the continued run takes the same steps as an
/// uninterrupted one; only `steps` may change, and not below the steps done; a run already at
/// `steps` with its report is left as it is ([`Trained::AlreadyFinished`]). `monitor` hears of every
/// step and is asked after each whether to stop (Ctrl-C): the run writes a checkpoint and returns
/// [`TrainError::Interrupted`].
///
/// Training stops at the first non-finite loss, gradient norm or weight
/// ([`TrainError::NonFinite`]) before anything from that step is saved. A run that fails before
/// its first checkpoint leaves no files in `run`.
///
/// # Errors
///
/// [`TrainError`]: invalid settings, an existing run without `resume`, `resume` without a
/// checkpoint or with different settings, divergence, I/O.
#[allow(clippy::too_many_arguments)]
pub fn train_tokenizer(
    run: &Path,
    tokenizer: &VqTokenizerConfig,
    cfg: &VqTrainConfig,
    train: &ImageSet,
    held_out: &ImageSet,
    device: &Device,
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<VqReport>, TrainError> {
    let created = !run.exists();
    let result = train_tokenizer_in(run, tokenizer, cfg, train, held_out, device, resume, monitor);
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

/// Writes `tokenizer.safetensors` (our format) from a checkpoint's model record.
fn export(
    run: &Path,
    tokenizer: &VqTokenizerConfig,
    cfg: &VqTrainConfig,
    device: &Device,
) -> learner::Export {
    let (dir, tok, cfg, device) =
        (run.to_path_buf(), tokenizer.clone(), cfg.clone(), device.clone());
    Box::new(move |record: &Path| {
        let template = VqStep {
            tokenizer: tok.init(&device).map_err(|e| TrainError::Config(e.to_string()))?,
            disc: cfg.disc_start.map(|_| {
                PatchDiscriminator::new(
                    tok.image_channels,
                    cfg.disc_channels,
                    cfg.disc_layers,
                    &device,
                )
            }),
            run: None,
        };
        let loaded = burn::store::ModuleRecord::load(record)
            .map_err(|e| TrainError::Failed { path: record.into(), reason: e.to_string() })?;
        let step = Records::load_model(template, loaded, record.parent().unwrap_or(&dir))?;
        step.tokenizer.save(&dir.join("tokenizer.safetensors"))?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
fn train_tokenizer_in(
    run: &Path,
    tokenizer: &VqTokenizerConfig,
    cfg: &VqTrainConfig,
    train: &ImageSet,
    held_out: &ImageSet,
    device: &Device,
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<VqReport>, TrainError> {
    cfg.validate()?;
    tokenizer.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    if train.is_empty() {
        return Err(TrainError::Config("no training images".into()));
    }
    if train.channels != tokenizer.image_channels
        || !train.size.is_multiple_of(tokenizer.downsample_factor())
    {
        return Err(TrainError::Config(format!(
            "images of {} channel(s), {} px do not fit the tokenizer ({} channel(s), sides a multiple of {})",
            train.channels,
            train.size,
            tokenizer.image_channels,
            tokenizer.downsample_factor()
        )));
    }
    if cfg.disc_start.is_some() && train.size >> cfg.disc_layers.min(63) < 4 {
        return Err(TrainError::Setting {
            field: "disc_layers",
            reason: format!(
                "is {}: too many stride-2 stages for {} px images (each halves the side; a side ≥ 4 must remain), and the discriminator is on (disc_start = {})",
                cfg.disc_layers,
                train.size,
                cfg.disc_start.unwrap_or(0)
            ),
        });
    }
    let fingerprint = {
        let mut h = train.len() as u64;
        for chunk in train.pixels.chunks(4096) {
            h = crate::par::mix(
                h ^ chunk.iter().fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64)),
            );
        }
        h
    };
    let dtype = checkpoint::device_dtype(device);
    let resumed = checkpoint::resume_state::<VqState>(run, resume, |s| s.step)?;
    if let Some((dir, state)) = &resumed {
        let same = checkpoint::SameRun {
            data: (state.data == fingerprint, "images"),
            dtype: (&state.dtype, &dtype),
            model: ("tokenizer", checkpoint::json(&state.tokenizer), checkpoint::json(tokenizer)),
            train: (
                checkpoint::json(&VqTrainConfig { steps: cfg.steps, ..state.train.clone() }),
                checkpoint::json(cfg),
            ),
            steps: (state.step, cfg.steps, "steps"),
        };
        if let Some(report) = checkpoint::check_resume(run, dir, same)? {
            return Ok(Trained::AlreadyFinished(report));
        }
    }
    std::fs::create_dir_all(run).map_err(|e| TrainError::io(run, e))?;
    learner::remove_pending(run);
    let ad = device.clone().autodiff();
    // Initial weights are a function of the seed: seed, then materialise every (lazily
    // initialised) parameter at once, in visiting order.
    ad.seed(cfg.seed);
    let model = tokenizer.init(&ad).map_err(|e| TrainError::Config(e.to_string()))?;
    snapshot(&model)?;
    let disc = cfg.disc_start.map(|_| {
        PatchDiscriminator::new(tokenizer.image_channels, cfg.disc_channels, cfg.disc_layers, &ad)
    });
    if let Some(d) = &disc {
        snapshot(d)?;
    }
    let start = resumed.as_ref().map_or(0, |(_, s)| s.step);
    let core =
        Arc::new(Run::new(run, cfg.steps, cfg.checkpoint_every, None, start, monitor.clone()));
    let vq_run = Arc::new(VqRun {
        run: core.clone(),
        cfg: cfg.clone(),
        tokenizer: tokenizer.clone(),
        data: fingerprint,
        dtype: dtype.clone(),
        journal: Default::default(),
    });
    let snap = vq_run.clone();
    core.set_snapshot(Box::new(move || {
        serde_json::to_value(snap.state(snap.run.done())).expect("serialisable")
    }));
    core.set_export(export(run, tokenizer, cfg, device));
    let mut step = VqStep { tokenizer: model, disc, run: Some(vq_run.clone()) };
    let mut records = None;
    if let Some((dir, state)) = &resumed {
        let r = Records::read(dir)?;
        step = Records::load_model(step, r.model, dir)?;
        records = Some((r.optim, r.scheduler));
        vq_run.restore_journal(state);
    }
    let mut learner = Learner::new(step.clone(), adam(cfg), cfg.lr);
    if let Some((optim, lr)) = records {
        learner.load_optim(optim);
        learner.load_scheduler(lr);
    }
    write_json(
        &run.join("config.json"),
        &serde_json::json!({ "tokenizer": tokenizer, "train": cfg, "dtype": dtype }),
    )?;
    let batches = VqBatches {
        images: Arc::new(train.clone()),
        batch_size: cfg.batch_size,
        random_flip: cfg.random_flip,
        seed: cfg.seed,
    };
    monitor.start(start, cfg.steps);
    let t0 = std::time::Instant::now();
    let trained = learner::launch(
        &core,
        learner,
        StepLoader::new(core.clone(), Arc::new(batches), ad.clone()),
        PeriodEnd {
            run: core.clone(),
            validation: Arc::new(NoValidation::<VqItem>::default()),
            device: device.clone(),
        },
        ExecutionStrategy::SingleDevice(ad.clone()),
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    // `tokenizer.safetensors` was exported from the last checkpoint (the last step always is
    // one); a run with nothing left to train exports it again from that checkpoint.
    let model = match trained {
        Some(step) => step.tokenizer,
        None => {
            let dir = resumed
                .as_ref()
                .map_or_else(|| checkpoint::checkpoint_dir(run), |(d, _)| d.clone());
            export(run, tokenizer, cfg, device)(&dir.join("model.bpk"))?;
            step.valid().tokenizer
        }
    };
    let history = vq_run.journal().history.clone();
    let stepped = cfg.steps.saturating_sub(start);
    let (held, recons) = evaluate(&model, held_out, 64, device);
    let show = held_out.len().min(16);
    if show > 0 {
        let originals: Vec<PixelImage> = (0..show).map(|i| held_out.image(i)).collect();
        let tiles: Vec<PixelImage> =
            originals.into_iter().chain(recons.into_iter().take(show)).collect();
        let png = PixelImage::grid(&tiles, show, 2, 255)
            .to_png()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        let path = run.join("reconstructions.png");
        par_store::write_atomic(&path, &png).map_err(|e| TrainError::io(&path, e))?;
    }
    let report = VqReport {
        steps: cfg.steps,
        train_images: train.len(),
        seconds,
        images_per_second: if seconds > 0.0 {
            (stepped * cfg.batch_size) as f64 / seconds
        } else {
            0.0
        },
        history,
        held_out: held,
    };
    write_json(&run.join("report.json"), &report)?;
    Ok(Trained::Done(report))
}
