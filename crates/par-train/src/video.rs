//! Video tokenizer training on burn-train's `Learner` (docs/spec.md §8, docs/video.md): the
//! MAGVIT-v2-style causal tokenizer (`par_tokenizer::video`) learns to reconstruct clips with the
//! reconstruction loss of its config (MSE or L1) plus its quantizer's auxiliary loss (zero for
//! FSQ; commitment + entropy for LFQ). No GAN: the issue makes it optional and the CPU runs do
//! not need it (docs/video.md says what that costs). Adam (0.9, 0.95), constant lr, global
//! gradient-norm clipping, checkpoints with exact resume, the same run skeleton
//! ([`crate::learner`]) as the image tokenizer and PAR.
//!
//! The held-out report gives the mean PSNR of the 8-bit reconstructions per frame position
//! (frame 0 is encoded on its own by the causal encoder, so its quality is reported apart).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::config::Config;
use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn_train::{ExecutionStrategy, InferenceStep, Learner, TrainOutput, TrainStep};
use par_data::VideoClip;
use par_tokenizer::video::{VideoTokenizer, VideoTokenizerConfig};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, write_json};
use crate::grad::clip_grad_norm;
use crate::learner::{
    self, Batches, LossOutput, NoValidation, PeriodEnd, Records, Run, StepLoader, first_non_finite,
};
use crate::module_state::snapshot;
use crate::monitor::Monitor;
use crate::plan::BatchPlan;
use crate::{TrainError, Trained};

/// Settings of a video tokenizer run (defaults suit a CPU run; MAGVIT-v2 trains far longer with a
/// GAN and LPIPS, docs/video.md).
#[derive(Config, Debug, PartialEq)]
pub struct VideoTrainConfig {
    /// Optimizer steps.
    #[config(default = 2000)]
    pub steps: usize,
    /// Clips per step.
    #[config(default = 8)]
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
    /// Maximum global gradient norm.
    #[config(default = 1.0)]
    pub grad_clip: f64,
    /// Steps between checkpoints.
    #[config(default = 500)]
    pub checkpoint_every: usize,
    /// Steps between log entries in the report.
    #[config(default = 50)]
    pub log_every: usize,
    /// Seed of the initial weights and the data order.
    #[config(default = 0)]
    pub seed: u64,
}

impl VideoTrainConfig {
    /// Checks every setting's range before any work.
    ///
    /// # Errors
    ///
    /// [`TrainError::Setting`] naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field, reason: String| Err(TrainError::Setting { field, reason });
        for (field, value) in [
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("checkpoint_every", self.checkpoint_every),
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
            ("beta1", self.beta1, unit(self.beta1), "in [0, 1)"),
            ("beta2", self.beta2, unit(self.beta2), "in [0, 1)"),
        ] {
            if !(value.is_finite() && ok) {
                return bad(field, format!("must be finite and {range}, got {value}"));
            }
        }
        Ok(())
    }
}

/// Averages of one logging window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoStepLog {
    /// Steps done at the end of the window.
    pub step: usize,
    /// Total loss.
    pub loss: f64,
    /// Reconstruction loss (the config's MSE or L1 on `[−1, 1]` pixels).
    pub reconstruction: f64,
    /// The quantizer's auxiliary loss (0 for FSQ).
    pub aux: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Reconstruction quality on held-out clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoHeldOut {
    /// Clips evaluated.
    pub clips: usize,
    /// Mean PSNR (dB, 8-bit, peak 255) over every frame of every clip; `None` (JSON `null`)
    /// with no held-out clips.
    pub psnr_db: Option<f64>,
    /// Mean PSNR (dB) of frame `t` over the clips, `t = 0 … T − 1` (empty with no clips).
    pub per_frame_psnr_db: Vec<f64>,
    /// Mean squared error on `[−1, 1]`; `None` with no held-out clips.
    pub mse: Option<f64>,
    /// Distinct codes used by the held-out clips.
    pub codes_used: usize,
    /// `codes_used / codebook_size`.
    pub codebook_usage: f64,
}

/// What [`train_video_tokenizer`] writes to `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoTokenizerReport {
    /// Steps of the run.
    pub steps: usize,
    /// Training clips.
    pub train_clips: usize,
    /// Wall time of this process, seconds.
    pub seconds: f64,
    /// Clips per second of this process.
    pub clips_per_second: f64,
    /// Logged windows.
    pub history: Vec<VideoStepLog>,
    /// Held-out reconstruction quality.
    pub held_out: VideoHeldOut,
}

/// A batch of clips `[b, 3, T, H, W]` in `[−1, 1]`.
#[derive(Debug, Clone)]
pub struct VideoItem {
    /// The clips.
    pub clips: Tensor<5>,
}

/// `checkpoint/state.json` of a video tokenizer run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VideoState {
    step: usize,
    /// History as f64 bit patterns (exact through JSON).
    history: Vec<(usize, [u64; 4])>,
    window: Vec<[u64; 4]>,
    data: u64,
    tokenizer: VideoTokenizerConfig,
    train: VideoTrainConfig,
    dtype: String,
}

#[derive(Debug, Default)]
struct Journal {
    /// loss, reconstruction, aux, grad norm of the step in progress.
    row: [f64; 4],
    window: Vec<[f64; 4]>,
    history: Vec<VideoStepLog>,
}

/// A video tokenizer run: the shared [`Run`], its settings and journal.
pub(crate) struct VideoRun {
    run: Arc<Run>,
    cfg: VideoTrainConfig,
    tokenizer: VideoTokenizerConfig,
    data: u64,
    dtype: String,
    journal: Mutex<Journal>,
}

impl core::fmt::Debug for VideoRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VideoRun({:?})", self.run)
    }
}

impl VideoRun {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self, done: usize) -> VideoState {
        let j = self.journal();
        let bits = |r: &[f64; 4]| r.map(f64::to_bits);
        VideoState {
            step: done,
            history: j
                .history
                .iter()
                .map(|h| (h.step, bits(&[h.loss, h.reconstruction, h.aux, h.grad_norm])))
                .collect(),
            window: j.window.iter().map(bits).collect(),
            data: self.data,
            tokenizer: self.tokenizer.clone(),
            train: self.cfg.clone(),
            dtype: self.dtype.clone(),
        }
    }

    fn restore(&self, state: &VideoState) {
        let mut j = self.journal();
        j.history = state
            .history
            .iter()
            .map(|(step, b)| {
                let v = b.map(f64::from_bits);
                VideoStepLog {
                    step: *step,
                    loss: v[0],
                    reconstruction: v[1],
                    aux: v[2],
                    grad_norm: v[3],
                }
            })
            .collect();
        j.window = state.window.iter().map(|w| w.map(f64::from_bits)).collect();
    }

    fn finish_step(&self, row: [f64; 4], stop: bool) {
        let done = self.run.done() + 1;
        {
            let mut j = self.journal();
            j.window.push(row);
            if done.is_multiple_of(self.cfg.log_every) || done == self.run.total {
                let w = std::mem::take(&mut j.window);
                let m = |k: usize| w.iter().map(|r| r[k]).sum::<f64>() / w.len() as f64;
                j.history.push(VideoStepLog {
                    step: done,
                    loss: m(0),
                    reconstruction: m(1),
                    aux: m(2),
                    grad_norm: m(3),
                });
            }
        }
        self.run.step_done(&format!("loss {:.4}", row[0]), stop);
    }
}

/// The video tokenizer as burn-train's model.
#[derive(Module, Debug)]
pub struct VideoStep {
    /// The tokenizer.
    pub tokenizer: VideoTokenizer,
    #[module(skip)]
    run: Option<Arc<VideoRun>>,
}

impl VideoStep {
    /// A bare tokenizer (no run).
    pub fn new(tokenizer: VideoTokenizer) -> Self {
        Self { tokenizer, run: None }
    }

    /// `(total, reconstruction, aux)` losses of a batch.
    fn losses(&self, clips: Tensor<5>) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        // Shapes were checked against the tokenizer before training.
        let out =
            self.tokenizer.forward(clips.clone()).expect("clip shapes checked before training");
        let recon = self.tokenizer.reconstruction_loss(clips, out.reconstruction);
        (recon.clone() + out.aux_loss.clone(), recon, out.aux_loss)
    }
}

impl TrainStep for VideoStep {
    type Input = VideoItem;
    type Output = LossOutput;

    fn step(&self, item: VideoItem) -> TrainOutput<LossOutput> {
        let (loss, recon, aux) = self.losses(item.clips);
        let scalar = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
        if let Some(run) = &self.run {
            run.journal().row = [scalar(&loss), scalar(&recon), scalar(&aux), 0.0];
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.tokenizer);
        TrainOutput { grads, item: LossOutput { loss: recon } }
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
        let mut row = run.journal().row;
        row[3] = clip_grad_norm(&self.tokenizer, &mut grads, run.cfg.grad_clip);
        if !run.run.check_finite(&[("loss", row[0]), ("gradient norm", row[3])]) {
            return self;
        }
        let next = optim.step(lr, self, grads);
        let stop = run.run.asks_stop();
        if !run.run.weights_ok(stop, || first_non_finite(&next.tokenizer)) {
            return next;
        }
        run.finish_step(row, stop);
        next
    }
}

impl InferenceStep for VideoStep {
    type Input = VideoItem;
    type Output = LossOutput;

    /// The reconstruction loss (no validation pass runs during training; the held-out clips are
    /// evaluated at the end).
    fn step(&self, item: VideoItem) -> LossOutput {
        LossOutput { loss: self.losses(item.clips).1 }
    }
}

/// `clips[indices]` as `[b, 3, T, H, W]` in `[−1, 1]`.
fn clips_tensor(clips: &[VideoClip], indices: &[usize], device: &Device) -> Tensor<5> {
    let c = &clips[indices[0]];
    let data: Vec<f32> = indices.iter().flat_map(|&i| clips[i].to_cthw_signed()).collect();
    Tensor::from_data(
        TensorData::new(data, [indices.len(), 3, c.frames, c.height, c.width]),
        device,
    )
}

struct ClipBatches {
    clips: Arc<Vec<VideoClip>>,
    batch_size: usize,
    seed: u64,
}

impl Batches for ClipBatches {
    type Item = VideoItem;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn batch(&self, step: usize, (lo, hi): (usize, usize), device: &Device) -> VideoItem {
        let plan = BatchPlan::new(self.clips.len(), self.batch_size, self.seed);
        let (indices, _) = plan.batch(step, false);
        VideoItem { clips: clips_tensor(&self.clips, &indices[lo..hi], device) }
    }
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let e = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>()
        / a.len().max(1) as f64;
    if e == 0.0 { 100.0 } else { 10.0 * (255.0f64 * 255.0 / e).log10() }
}

/// Reconstructs `clips` (batches of `batch_size`, no gradients): per-frame PSNR of the 8-bit
/// reconstructions, MSE on `[−1, 1]`, codebook use; returns the report and the reconstructions.
///
/// # Errors
///
/// [`TrainError::Config`] if the clips do not fit the tokenizer (frames, sides) or differ in
/// shape.
pub fn evaluate_clips(
    model: &VideoTokenizer,
    clips: &[VideoClip],
    batch_size: usize,
    device: &Device,
) -> Result<(VideoHeldOut, Vec<VideoClip>), TrainError> {
    check_clips(model.config(), clips)?;
    let codebook = model.config().codebook_size();
    let mut used = vec![false; codebook];
    let frames = clips.first().map_or(0, |c| c.frames);
    let (mut per_frame, mut mse, mut recons) = (vec![0.0; frames], 0.0, Vec::new());
    let all: Vec<usize> = (0..clips.len()).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let x = clips_tensor(clips, chunk, device);
        let out = model.forward(x.clone()).map_err(|e| TrainError::Config(e.to_string()))?;
        for c in out.codes.into_data().try_into_vec_as::<i64>().expect("int codes") {
            if let Some(u) = used.get_mut(c as usize) {
                *u = true;
            }
        }
        let y = out.reconstruction.clamp(-1.0, 1.0);
        let orig = x.into_data().try_into_vec_as::<f32>().expect("f32 clips");
        let rec = y.into_data().try_into_vec_as::<f32>().expect("f32 clips");
        let per = orig.len() / chunk.len();
        for (k, (o, r)) in orig.chunks(per).zip(rec.chunks(per)).enumerate() {
            mse += o.iter().zip(r).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / per as f64;
            let source = &clips[chunk[k]];
            let clip = VideoClip::from_cthw_signed(
                r,
                source.class,
                source.frames,
                source.height,
                source.width,
            )
            .expect("the reconstruction has the clip's shape");
            let frame_bytes = source.height * source.width * 3;
            for (t, acc) in per_frame.iter_mut().enumerate() {
                let range = t * frame_bytes..(t + 1) * frame_bytes;
                *acc += psnr(&source.data[range.clone()], &clip.data[range]);
            }
            recons.push(clip);
        }
    }
    let n = clips.len() as f64;
    let per_frame: Vec<f64> =
        if clips.is_empty() { Vec::new() } else { per_frame.iter().map(|p| p / n).collect() };
    let codes_used = used.iter().filter(|&&u| u).count();
    Ok((
        VideoHeldOut {
            clips: clips.len(),
            psnr_db: (!per_frame.is_empty())
                .then(|| per_frame.iter().sum::<f64>() / per_frame.len() as f64),
            per_frame_psnr_db: per_frame,
            mse: (n > 0.0).then(|| mse / n),
            codes_used,
            codebook_usage: codes_used as f64 / codebook.max(1) as f64,
        },
        recons,
    ))
}

/// Every clip fits `config` (3 channels; `(T − 1)` a multiple of the temporal factor; sides of
/// the spatial factor) and all have one shape.
fn check_clips(config: &VideoTokenizerConfig, clips: &[VideoClip]) -> Result<(), TrainError> {
    let Some(first) = clips.first() else { return Ok(()) };
    if let Some((i, c)) = clips.iter().enumerate().find(|(_, c)| {
        (c.frames, c.height, c.width) != (first.frames, first.height, first.width)
            || !c.is_consistent()
    }) {
        return Err(TrainError::Config(format!(
            "clip {i} is {}×{}×{} (or its pixels do not match its shape); clip 0 is {}×{}×{}",
            c.frames, c.height, c.width, first.frames, first.height, first.width
        )));
    }
    config.latent_shape(first.frames, first.height, first.width).map_err(|e| {
        TrainError::Config(format!(
            "clips of {}×{}×{}: {e}",
            first.frames, first.height, first.width
        ))
    })?;
    Ok(())
}

fn fingerprint(clips: &[VideoClip]) -> u64 {
    let mut h = clips.len() as u64;
    for c in clips {
        h = crate::par::mix(h ^ c.class as u64);
        for chunk in c.data.chunks(4096) {
            h = crate::par::mix(
                h ^ chunk.iter().fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64)),
            );
        }
    }
    h
}

/// Writes `tokenizer.safetensors` from a checkpoint's model record.
fn export(run: &Path, tokenizer: &VideoTokenizerConfig, device: &Device) -> learner::Export {
    let (dir, tok, device) = (run.to_path_buf(), tokenizer.clone(), device.clone());
    Box::new(move |record: &Path| {
        let template =
            VideoStep::new(tok.init(&device).map_err(|e| TrainError::Config(e.to_string()))?);
        let loaded = burn::store::ModuleRecord::load(record)
            .map_err(|e| TrainError::Failed { path: record.into(), reason: e.to_string() })?;
        let step = Records::load_model(template, loaded, record.parent().unwrap_or(&dir))?;
        step.tokenizer.save(&dir.join("tokenizer.safetensors")).map_err(|e| TrainError::Failed {
            path: dir.join("tokenizer.safetensors"),
            reason: e.to_string(),
        })
    })
}

/// Trains a video tokenizer in `run` on burn-train's `Learner` (single device), as
/// `vq::train_tokenizer` does for images: `checkpoint/` every `checkpoint_every` steps
/// (records + `state.json`), `tokenizer.safetensors` after each, then `report.json` with the
/// held-out per-frame PSNR. With `resume`, continues exactly (the data order is a function of
/// (seed, step)); only `steps` may change, not below the steps done; a finished run is left as
/// it is ([`Trained::AlreadyFinished`]). Ctrl-C (`monitor.should_stop`) checkpoints and returns
/// [`TrainError::Interrupted`]. The first non-finite loss, gradient norm or weight stops the run
/// before anything of that step is saved. A run that fails before its first checkpoint leaves no
/// files in `run`.
///
/// # Shapes
///
/// Every clip is `T × H × W` RGB with `(T − 1)` a multiple of the tokenizer's temporal factor
/// and `H`, `W` multiples of its spatial factor (17 × 64 × 64 for the CPU presets).
///
/// # Errors
///
/// [`TrainError`]: invalid settings or clips, an existing run without `resume`, `resume` without
/// a checkpoint or with other settings, divergence, I/O.
#[allow(clippy::too_many_arguments)]
pub fn train_video_tokenizer(
    run: &Path,
    tokenizer: &VideoTokenizerConfig,
    cfg: &VideoTrainConfig,
    train: &[VideoClip],
    held_out: &[VideoClip],
    device: &Device,
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<VideoTokenizerReport>, TrainError> {
    let created = !run.exists();
    let result = train_in(run, tokenizer, cfg, train, held_out, device, resume, monitor);
    if result.is_err() {
        checkpoint::discard_unstarted(run, created);
        if matches!(result, Err(TrainError::Failed { .. })) {
            learner::remove_pending(run);
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn train_in(
    run: &Path,
    tokenizer: &VideoTokenizerConfig,
    cfg: &VideoTrainConfig,
    train: &[VideoClip],
    held_out: &[VideoClip],
    device: &Device,
    resume: bool,
    monitor: Arc<dyn Monitor>,
) -> Result<Trained<VideoTokenizerReport>, TrainError> {
    cfg.validate()?;
    tokenizer.validate().map_err(|e| TrainError::Config(e.to_string()))?;
    if train.is_empty() {
        return Err(TrainError::Config("no training clips".into()));
    }
    check_clips(tokenizer, train)?;
    check_clips(tokenizer, held_out)?;
    let data = fingerprint(train);
    let dtype = checkpoint::device_dtype(device);
    let resumed = checkpoint::resume_state::<VideoState>(run, resume, |s| s.step)?;
    if let Some((dir, state)) = &resumed {
        let same = checkpoint::SameRun {
            data: (state.data == data, "clips"),
            dtype: (&state.dtype, &dtype),
            model: ("tokenizer", checkpoint::json(&state.tokenizer), checkpoint::json(tokenizer)),
            train: (
                checkpoint::json(&VideoTrainConfig { steps: cfg.steps, ..state.train.clone() }),
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
    ad.seed(cfg.seed);
    let model = tokenizer.init(&ad).map_err(|e| TrainError::Config(e.to_string()))?;
    snapshot(&model)?;
    let start = resumed.as_ref().map_or(0, |(_, s)| s.step);
    let core =
        Arc::new(Run::new(run, cfg.steps, cfg.checkpoint_every, None, start, monitor.clone()));
    let video_run = Arc::new(VideoRun {
        run: core.clone(),
        cfg: cfg.clone(),
        tokenizer: tokenizer.clone(),
        data,
        dtype: dtype.clone(),
        journal: Default::default(),
    });
    let snap = video_run.clone();
    core.set_snapshot(Box::new(move || {
        serde_json::to_value(snap.state(snap.run.done())).expect("serialisable")
    }));
    core.set_export(export(run, tokenizer, device));
    let mut step = VideoStep { tokenizer: model, run: Some(video_run.clone()) };
    let mut records = None;
    if let Some((dir, state)) = &resumed {
        let r = Records::read(dir)?;
        step = Records::load_model(step, r.model, dir)?;
        records = Some((r.optim, r.scheduler));
        video_run.restore(state);
    }
    let adam = AdamConfig::new()
        .with_beta_1(cfg.beta1 as f32)
        .with_beta_2(cfg.beta2 as f32)
        .with_epsilon(cfg.epsilon as f32)
        .init();
    let mut learner = Learner::new(step.clone(), adam, cfg.lr);
    if let Some((optim, lr)) = records {
        learner.load_optim(optim);
        learner.load_scheduler(lr);
    }
    write_json(
        &run.join("config.json"),
        &serde_json::json!({ "tokenizer": tokenizer, "train": cfg, "dtype": dtype }),
    )?;
    let batches =
        ClipBatches { clips: Arc::new(train.to_vec()), batch_size: cfg.batch_size, seed: cfg.seed };
    monitor.start(start, cfg.steps);
    let t0 = std::time::Instant::now();
    let trained = learner::launch(
        &core,
        learner,
        StepLoader::new(core.clone(), Arc::new(batches), ad.clone()),
        PeriodEnd {
            run: core.clone(),
            validation: Arc::new(NoValidation::<VideoItem>::default()),
            device: device.clone(),
        },
        ExecutionStrategy::SingleDevice(ad.clone()),
    )?;
    let seconds = t0.elapsed().as_secs_f64();
    let model = match trained {
        Some(step) => step.tokenizer.valid(),
        None => {
            let dir = resumed
                .as_ref()
                .map_or_else(|| checkpoint::checkpoint_dir(run), |(d, _)| d.clone());
            export(run, tokenizer, device)(&dir.join("model.bpk"))?;
            step.valid().tokenizer
        }
    };
    let history = video_run.journal().history.clone();
    let stepped = cfg.steps.saturating_sub(start);
    let (held, _) = evaluate_clips(&model, held_out, cfg.batch_size, device)?;
    let report = VideoTokenizerReport {
        steps: cfg.steps,
        train_clips: train.len(),
        seconds,
        clips_per_second: if seconds > 0.0 {
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
