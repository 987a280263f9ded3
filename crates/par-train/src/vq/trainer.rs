//! The tokenizer training loop: MSE + codebook + commitment (+ entropy) losses, optional PatchGAN
//! hinge loss from a start step, Adam β = (0.9, 0.95), global gradient-norm clipping per network,
//! checkpoints with exact resume, held-out PSNR and codebook usage.

use std::path::Path;

use burn::config::Config;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use par_data::{ImageSet, PixelImage};
use par_tokenizer::{CodebookUsage, VqTokenizer, VqTokenizerConfig};
use serde::{Deserialize, Serialize};

use super::{PatchDiscriminator, hinge_d_loss, hinge_g_loss};
use crate::checkpoint::{self, load_optimizer, read_json, save_optimizer, write_json};
use crate::grad::clip_grad_norm;
use crate::module_state::{restore, snapshot};
use crate::plan::BatchPlan;
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
    /// Mean per-image PSNR in dB of the 8-bit reconstructions (peak 255).
    pub psnr_db: f64,
    /// Mean squared error on `[−1, 1]`.
    pub mse: f64,
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

#[derive(Serialize, Deserialize)]
struct State {
    step: usize,
    /// The history as f64 bit patterns: JSON's decimal floats do not round-trip exactly through
    /// serde_json's default parser, and a resumed run must report the same losses.
    history: Vec<(usize, [u64; 8])>,
    /// The unfinished logging window as bit patterns.
    #[serde(default)]
    window: Vec<[u64; 8]>,
    /// Fingerprint of the training images.
    data: u64,
    tokenizer: VqTokenizerConfig,
    train: VqTrainConfig,
    /// The device's float dtype (`f32`, `bf16`, `f16`); checkpoints from before it was recorded
    /// were all f32.
    #[serde(default = "f32_name")]
    dtype: String,
}

fn f32_name() -> String {
    "f32".into()
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
    fn to_bits(&self) -> (usize, [u64; 8]) {
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

    fn from_bits((step, b): &(usize, [u64; 8])) -> Self {
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

fn images_tensor(set: &ImageSet, indices: &[usize], flips: &[bool], device: &Device) -> Tensor<4> {
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
    let n = held_out.len().max(1) as f64;
    let report = HeldOutReport {
        images: held_out.len(),
        psnr_db: psnr / n,
        mse: mse / n,
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

/// Trains a tokenizer in `run`: `checkpoint/` every `checkpoint_every` steps (model,
/// discriminator, both optimizer states, step and history), then `tokenizer.safetensors` (our
/// self-describing format), `report.json` and `reconstructions.png` (held-out originals above
/// their reconstructions). With `resume`, continues the run's checkpoint exactly: the data order
/// and flips are functions of (seed, step), so the continued run takes the same steps as an
/// uninterrupted one; only `steps` may change, and not below the steps done; a run already at
/// `steps` with its report is left as it is ([`Trained::AlreadyFinished`]). `monitor` hears of every
/// step and is asked before each whether to stop (Ctrl-C): the run writes a checkpoint and returns
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
    monitor: &dyn Monitor,
) -> Result<Trained<VqReport>, TrainError> {
    let result =
        train_tokenizer_in(run, tokenizer, cfg, train, held_out, device, resume, monitor);
    if result.is_err() {
        checkpoint::discard_unstarted(run);
    }
    result
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
    monitor: &dyn Monitor,
) -> Result<Trained<VqReport>, TrainError> {
    cfg.validate()?;
    tokenizer.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    if train.is_empty() {
        return Err(TrainError::Config("no training images".into()));
    }
    if train.channels != tokenizer.image_channels || train.size % tokenizer.downsample_factor() != 0
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
                "is {}: too many stride-2 stages for {} px images (each halves the side; a side ≥ 4 must remain)",
                cfg.disc_layers, train.size
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
    let resumed = checkpoint::resume_state::<State>(run, resume, |s| s.step)?;
    if let Some((dir, state)) = &resumed {
        if state.data != fingerprint {
            return Err(TrainError::Config(format!(
                "{}: the checkpoint was trained on other images",
                dir.display()
            )));
        }
        checkpoint::same_settings(dir, "dtype", &state.dtype, &dtype)?;
        checkpoint::same_settings(dir, "tokenizer", &state.tokenizer, tokenizer)?;
        let same = VqTrainConfig { steps: cfg.steps, ..state.train.clone() };
        checkpoint::same_settings(dir, "", &same, cfg)?;
        if cfg.steps < state.step {
            return Err(TrainError::StepsBehind {
                path: run.into(),
                done: state.step,
                asked: cfg.steps,
                field: "steps",
            });
        }
        let report = run.join("report.json");
        if cfg.steps == state.step && report.is_file() {
            return Ok(Trained::AlreadyFinished(read_json(&report)?));
        }
    }
    std::fs::create_dir_all(run).map_err(|e| TrainError::io(run, e))?;
    let ad = device.clone().autodiff();
    // Initial weights are a function of the seed: seed, then materialise every (lazily
    // initialised) parameter at once, in visiting order.
    ad.seed(cfg.seed);
    let mut model = tokenizer.init(&ad).map_err(|e| TrainError::Config(e.to_string()))?;
    snapshot(&model)?;
    let mut disc = cfg.disc_start.map(|_| {
        PatchDiscriminator::new(tokenizer.image_channels, cfg.disc_channels, cfg.disc_layers, &ad)
    });
    if let Some(d) = &disc {
        snapshot(d)?;
    }
    let (mut optim_g, mut optim_d) = (adam(cfg), adam(cfg));
    let mut start = 0;
    let mut history = Vec::new();
    let mut window: Vec<[f64; 8]> = Vec::new();
    let mut last_checkpoint = None;
    if let Some((dir, state)) = resumed {
        model = restore(model, &par_store::StateDict::read(&dir.join("tokenizer.safetensors"))?)?;
        optim_g = load_optimizer(optim_g, &dir.join("optim_g.bpk"))?;
        if let Some(d) = disc.take() {
            disc = Some(restore(
                d,
                &par_store::StateDict::read(&dir.join("discriminator.safetensors"))?,
            )?);
            optim_d = load_optimizer(optim_d, &dir.join("optim_d.bpk"))?;
        }
        start = state.step;
        last_checkpoint = Some(start);
        history = state.history.iter().map(StepLog::from_bits).collect();
        window = state.window.iter().map(|w| w.map(f64::from_bits)).collect();
    }
    write_json(
        &run.join("config.json"),
        &serde_json::json!({ "tokenizer": tokenizer, "train": cfg, "dtype": dtype }),
    )?;

    let save = |step: usize,
                model: &VqTokenizer,
                disc: &Option<PatchDiscriminator>,
                og: &ModuleOptimizer,
                od: &ModuleOptimizer,
                history: &[StepLog],
                window: &[[f64; 8]],
                last_checkpoint: Option<usize>| {
        // Weights are read back once, checked, and written from the same snapshot.
        let weights = snapshot(model)?;
        checkpoint::finite_weights(&weights, step, last_checkpoint)?;
        let disc_weights = disc.as_ref().map(snapshot).transpose()?;
        if let Some(d) = &disc_weights {
            checkpoint::finite_weights(d, step, last_checkpoint)?;
        }
        checkpoint::write(run, |dir| {
            weights.write_safetensors(&dir.join("tokenizer.safetensors"))?;
            save_optimizer(og, &dir.join("optim_g.bpk"))?;
            if let Some(d) = &disc_weights {
                d.write_safetensors(&dir.join("discriminator.safetensors"))?;
                save_optimizer(od, &dir.join("optim_d.bpk"))?;
            }
            write_json(
                &dir.join("state.json"),
                &State {
                    step,
                    history: history.iter().map(StepLog::to_bits).collect(),
                    window: window.iter().map(|w| w.map(f64::to_bits)).collect(),
                    data: fingerprint,
                    tokenizer: tokenizer.clone(),
                    train: cfg.clone(),
                    dtype: dtype.clone(),
                },
            )
        })?;
        model.valid().save(&run.join("tokenizer.safetensors"))?;
        Ok::<(), TrainError>(())
    };

    let plan = BatchPlan::new(train.len(), cfg.batch_size, cfg.seed);
    monitor.start(start, cfg.steps);
    let t0 = std::time::Instant::now();
    for step in start..cfg.steps {
        if monitor.should_stop(step) {
            save(step, &model, &disc, &optim_g, &optim_d, &history, &window, last_checkpoint)?;
            return Err(TrainError::Interrupted { step });
        }
        let (indices, flips) = plan.batch(step, cfg.random_flip);
        let x = images_tensor(train, &indices, &flips, &ad);
        let out = model.quantize_images(x.clone());
        let recon = model.decode_latent(out.quantized);
        let mse = (recon.clone() - x.clone()).square().mean();
        let gan_on = cfg.disc_start.is_some_and(|s| step + 1 >= s);
        let mut loss = mse.clone() + out.losses.total();
        let g_adv = match (&disc, gan_on) {
            (Some(d), true) => {
                let g = hinge_g_loss(d.forward(recon.clone()));
                loss = loss + g.clone() * cfg.disc_weight;
                Some(g)
            }
            _ => None,
        };
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
        let diverged = |quantity: &str, value: f64| {
            Err(TrainError::NonFinite {
                step: step + 1,
                quantity: quantity.into(),
                value,
                last_checkpoint,
            })
        };
        if !row[0].is_finite() {
            return diverged("loss", row[0]);
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        row[7] = clip_grad_norm(&model, &mut grads, cfg.grad_clip);
        if !row[7].is_finite() {
            return diverged("gradient norm", row[7]);
        }
        model = optim_g.step(cfg.lr, model, grads);
        if let Some(d) = disc.take_if(|_| gan_on) {
            let d_loss = hinge_d_loss(d.forward(x.detach()), d.forward(recon.detach()));
            row[6] = scalar(&d_loss);
            if !row[6].is_finite() {
                return diverged("discriminator loss", row[6]);
            }
            let mut grads = GradientsParams::from_grads((d_loss * cfg.disc_weight).backward(), &d);
            let norm = clip_grad_norm(&d, &mut grads, cfg.grad_clip);
            if !norm.is_finite() {
                return diverged("discriminator gradient norm", norm);
            }
            disc = Some(optim_d.step(cfg.lr, d, grads));
        }
        window.push(row);
        let done = step + 1;
        if done % cfg.log_every == 0 || done == cfg.steps {
            let m = |k: usize| window.iter().map(|r| r[k]).sum::<f64>() / window.len() as f64;
            history.push(StepLog {
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
            window.clear();
        }
        monitor.update(step + 1, &format!("loss {:.4} mse {:.4}", row[0], row[1]));
        if done % cfg.checkpoint_every == 0 || done == cfg.steps {
            save(done, &model, &disc, &optim_g, &optim_d, &history, &window, last_checkpoint)?;
            last_checkpoint = Some(done);
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
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
