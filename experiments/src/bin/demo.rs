//! The main job on real images, with no arguments: on the embedded Fashion-MNIST subset
//! (`data/fashion-mnist`), train a small VQ tokenizer, pre-tokenize, train a small PAR-4× model on
//! the 8×8 code grid (`--grid 16`: 16×16), sample 32 images of every class with guidance, and
//! score them: class fidelity with a Fashion-MNIST classifier, FD-FMNIST and precision/recall
//! against the held-out real images, and the same scores of the tokenizer's reconstructions (the
//! ceiling a perfect generator of these codes would reach).
//!
//! `cargo run --release -p experiments --bin demo [-- [--out DIR] [--grid 16] [--resume] [--smoke]]`
//!
//! Writes `config.json`, the stages' run folders (`tokenizer/`, `codes/`, `par/` with their
//! checkpoints), `reconstructions.png`, `samples.png` (a row per class), `loss.png` (training and
//! validation loss) and `report.json`. Every stage resumes: Ctrl-C, then `--resume`.
#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use burn::module::Module;
use clap::Parser;
use experiments::plot::{Curve, loss_png};
use experiments::{BarMonitor, stop_flag, write_atomic};
use par_app::{InputResult, OutputDir};
use par_data::{CodeStore, IdxImages, IdxSplit, ImageSet, PixelImage};
use par_device::DeviceArgs;
use par_eval::classifier::{Classifier, train_classifier};
use par_model::Preset;
use par_sample::SampleConfig;
use par_tokenize::{OutputFormat, Source, TokenizeSettings, tokenize};
use par_tokenizer::{TokenizerPreset, VqTokenizer};
use par_train::module_state::{restore, snapshot};
use par_train::par::{CodeDataset, ParData, ParTrainConfig, train_par};
use par_train::vq::{VqTrainConfig, train_tokenizer};
use serde::{Deserialize, Serialize};

use par_data::FASHION_MNIST_CLASSES as CLASSES;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "PAR end to end on Fashion-MNIST: tokenizer, codes, PAR-4×, samples, scores"
)]
struct Args {
    /// MNIST-style IDX directory [default: the embedded subset, data/fashion-mnist].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run directory.
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Continue an interrupted run in --out.
    #[arg(long)]
    resume: bool,
    /// Every stage on a tiny slice (a minute or two; CI and docs use it).
    #[arg(long)]
    smoke: bool,
    /// Training images [default: 8,000, or the data's whole train split when smaller].
    #[arg(long)]
    train_images: Option<usize>,
    /// Tokenizer steps.
    #[arg(long)]
    tokenizer_steps: Option<usize>,
    /// PAR training steps [default: 12 epochs (6,000 steps of 16) on the 8×8 grid, 3 epochs
    /// (1,500) on the 16×16 grid: about 12 minutes on 2 cores either way].
    #[arg(long)]
    par_steps: Option<usize>,
    /// Samples per class.
    #[arg(long)]
    per_class: Option<usize>,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 3.0)]
    cfg_scale: f32,
    /// Sampling temperature (≥ 0; the sampler clamps it at 1e-5, so 0 is the argmax).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Top-k filter of the sampler (0 = off).
    #[arg(long, default_value_t = 2)]
    top_k: usize,
    /// Code grid side: 8 (4×4 pixels per code: `vq-tiny-16` with one more down-sampling level;
    /// 67-token sequences, 19 decode steps) or 16 (2×2 pixels per code, `vq-tiny-16`; 259
    /// tokens, 67 steps). 8 is the default because a PAR step then costs a quarter as much, so
    /// the 20-minute budget buys 4× the training steps (docs/training.md).
    #[arg(long, default_value_t = 8)]
    grid: usize,
    /// Tokenizer codebook entries [default: 64 on the 8×8 grid, 16 on the 16×16 grid]. Small on
    /// purpose: at 2×2 pixels per code a large codebook spreads the black background over many
    /// near-identical codes, and the transformer then spends the CPU budget on that noise (256
    /// entries: 3.2 nats of per-position entropy, 16: 1.6, at the same held-out PSNR within
    /// 1 dB); a 4×4-pixel code needs more entries for the same detail.
    #[arg(long)]
    codebook_size: Option<usize>,
    /// PAR peak learning rate (cosine decay to 0 at the end of the last epoch, no warm-up).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// PAR dropout (token, attention, residual, feed-forward). 0: the demo's few epochs
    /// under-fit, and dropout only slows them down.
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    /// Data-parallel workers on the one device (burn-train's multi-device strategy over copies of
    /// the device: one thread each, gradients summed, one optimizer step). Burn's CPU
    /// backends run element-wise ops on the calling thread, so two workers keep both cores of a
    /// small machine busy (1.6× the tokens/s of one on 2 cores). With `--dropout` > 0 and several
    /// workers the dropout masks depend on thread timing (Burn's generator is shared), so runs
    /// are no longer bit-reproducible.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Classifier weights (trained and saved there when missing).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Seed of every stage.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Everything the run was made with (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DemoConfig {
    data: PathBuf,
    smoke: bool,
    train_images: usize,
    val_images: usize,
    tokenizer: par_tokenizer::VqTokenizerConfig,
    tokenizer_train: VqTrainConfig,
    model: par_model::ParTransformerConfig,
    par_train: ParTrainConfig,
    per_class: usize,
    cfg_scale: f32,
    #[serde(default)]
    temperature: f32,
    #[serde(default)]
    top_k: usize,
    #[serde(default)]
    workers: usize,
    seed: u64,
    device: DeviceArgs,
    /// Fingerprints of the IDX files and of the classifier (when it existed at the start): a
    /// resumed demo refuses a changed one (par_store::fingerprint).
    #[serde(default)]
    inputs: par_store::InputFingerprints,
}

fn read_report<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// An `f32` flag as the decimal the user typed (`0.8`, not `0.800000011920929`) for JSON.
fn decimal(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// Decodes raster code grids (`[n·grid²]` ids) to 32 px gray tiles.
fn decode_tiles(
    tok: &VqTokenizer,
    grid: usize,
    raster: Vec<i64>,
) -> anyhow::Result<Vec<PixelImage>> {
    let n = raster.len() / (grid * grid);
    Ok(tok.decode_images(&raster, n, grid, grid, 64, None)?)
}

fn stage(name: &str) {
    eprintln!("\n== {name}");
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    experiments::finish_job(&args.out.clone(), || run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let t_start = std::time::Instant::now();
    let plan = plan(&args)?;
    if claim_output(&args, &plan)? {
        return Ok(());
    }
    stop_flag(); // Ctrl-C now checkpoints the running stage
    // ---- images (ADM centre crop, a bicubic up-scale of the 28 px originals)
    let side = plan.image_side();
    let train_set =
        ImageSet::from_idx(&plan.train_idx.clone().take(plan.config.train_images), side);
    let val_set = ImageSet::from_idx(&plan.test_idx.clone().take(plan.config.val_images), side);
    stage("classifier");
    let (classifier, classifier_accuracy) = classifier_stage(&args, &plan)?;
    stage("tokenizer");
    let (tok_report, tok, tok_ckpt) = tokenizer_stage(&plan, &train_set, &val_set)?;
    stage("tokenize");
    let par_data = tokenize_stage(&plan, &tok, &tok_ckpt)?;
    stage("PAR-4× training");
    let par_report = par_stage(&plan, &par_data)?;
    stage("sampling");
    let samples = sampling_stage(&args, &plan, &tok)?;
    stage("scores");
    let scored = Scored { classifier, classifier_accuracy, tok_report, par_report, samples };
    scores_stage(&args, &plan, &tok, &par_data, scored, t_start)
}

/// The demo's data, folders and settings, all checked before anything is written.
struct Plan {
    data: PathBuf,
    out: PathBuf,
    device: burn::prelude::Device,
    train_idx: IdxImages,
    test_idx: IdxImages,
    config: DemoConfig,
    sample: SampleConfig,
}

impl Plan {
    /// The code grid side.
    fn grid(&self) -> usize {
        self.config.model.grid_size
    }

    /// Side of the images the tokenizer reads: the grid times its down-sampling (32 px).
    fn image_side(&self) -> usize {
        self.grid() * self.config.tokenizer.downsample_factor()
    }

    /// Tokens per image (the raster decode's step count).
    fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }
}

/// Reads the images' headers and derives every setting from the flags (nothing is written).
fn plan(args: &Args) -> anyhow::Result<Plan> {
    for (flag, value) in [
        ("per-class", args.per_class),
        ("par-steps", args.par_steps),
        ("tokenizer-steps", args.tokenizer_steps),
        ("train-images", args.train_images),
    ] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let flags = par_app::long_flags::<Args>();
    let named = |e: anyhow::Error| par_app::name_flag(e, &flags);
    let data = args.data.clone().unwrap_or_else(|| repo().join("data/fashion-mnist"));
    let out = args.out.clone();
    let device = args.device.device()?;
    let smoke = args.smoke;

    // ---- configuration
    let train_idx = IdxImages::open(&data, IdxSplit::Train)
        .with_context(|| format!("--data {}: reading the training images", data.display()))
        .input()?;
    let test_idx = IdxImages::open(&data, IdxSplit::Test)
        .with_context(|| format!("--data {}: reading the test images", data.display()))
        .input()?;
    // 8,000 training images, 500 steps of 16 per epoch: PAR training gets about 12 of the 20
    // minutes on 2 cores (12 epochs on the 8×8 grid, 3 on the 16×16 grid).
    let train_images =
        args.train_images.unwrap_or(if smoke { 256 } else { 8000 }).min(train_idx.len());
    // The held-out images (the tokenizer's PSNR, PAR's validation codes) come first in the test
    // split; the rest are the scores' reference set, which needs at least MIN_IMAGES: checked
    // here, not after the training stages.
    let min = par_eval::MIN_IMAGES;
    if test_idx.len() < 2 * min {
        par_app::invalid!(
            "--data {}: {} test image(s); the demo needs at least {} (held-out images for the tokenizer, and a reference set of {min} for the scores)",
            data.display(),
            test_idx.len(),
            2 * min
        );
    }
    let val_images = if smoke { 64 } else { 256 }.min(test_idx.len() - min);
    let grid = args.grid;
    if grid != 8 && grid != 16 {
        par_app::invalid!("--grid must be 8 or 16 (got {grid})");
    }
    let codebook_size = args.codebook_size.unwrap_or(if grid == 8 { 64 } else { 16 });
    if codebook_size < 2 {
        par_app::invalid!("--codebook-size must be at least 2 (got {codebook_size})");
    }
    let mut tokenizer = TokenizerPreset::VqTiny16.config().with_codebook_size(codebook_size);
    if grid == 8 {
        tokenizer = tokenizer.with_channel_mult(vec![1, 2, 4]);
    }
    let tokenizer_train = VqTrainConfig::new()
        .with_steps(args.tokenizer_steps.unwrap_or(if smoke { 4 } else { 150 }))
        .with_batch_size(if smoke { 8 } else { 32 })
        .with_lr(if smoke { 1e-3 } else { 2e-3 })
        .with_checkpoint_every(250)
        .with_seed(args.seed);
    let model = Preset::GptSmall
        .config(grid, 4)
        .with_vocab_size(tokenizer.codebook_size)
        .with_num_classes(10)
        .with_token_dropout(args.dropout)
        .with_resid_dropout(args.dropout)
        .with_ffn_dropout(args.dropout)
        .with_attn_dropout(args.dropout)
        // Head dim 64, as in every LlamaGen/PAR model; 4 heads of 32 cost 1.4× the time per
        // step on the CPU (the [batch, heads, S, S] attention scores dominate at S = 259,
        // `--grid 16`).
        .with_n_heads(2);
    // 12 epochs (8×8 grid) or 3 (16×16) by default, cosine decay to 0 at the last step, no warm-up.
    let par_batch = if smoke { 8 } else { 16 };
    let steps_per_epoch = (train_images / par_batch).max(1);
    let epochs = if grid == 8 { 12 } else { 3 };
    let par_steps = args.par_steps.unwrap_or(if smoke { 4 } else { epochs * steps_per_epoch });
    let epochs = par_steps.div_ceil(steps_per_epoch);
    let par_train = ParTrainConfig::new()
        .with_epochs(epochs)
        .with_warmup_epochs(0)
        .with_max_steps(Some(par_steps))
        .with_batch_size(par_batch)
        .with_lr(args.lr)
        .with_checkpoint_every(250)
        .with_val_every(if smoke { 2 } else { 125 })
        .with_log_every(if smoke { 1 } else { 5 })
        .with_seed(args.seed);
    let config = DemoConfig {
        data: data.clone(),
        smoke,
        train_images,
        val_images,
        tokenizer: tokenizer.clone(),
        tokenizer_train: tokenizer_train.clone(),
        model: model.clone(),
        par_train: par_train.clone(),
        per_class: {
            let per_class = args.per_class.unwrap_or(if smoke { 4 } else { 32 });
            // Tiles of 32² f32 pixels, their codes and classifier features.
            experiments::check_per_class(per_class, 32.0 * 32.0 * 8.0)?;
            per_class
        },
        cfg_scale: args.cfg_scale,
        temperature: args.temperature,
        top_k: args.top_k,
        workers: args.workers,
        seed: args.seed,
        device: args.device.clone(),
        inputs: input_fingerprints(&data, args.classifier.as_deref())?,
    };
    // Every setting checked before anything is written, so a bad flag never reaches config.json.
    let sample = SampleConfig {
        cfg_scale: args.cfg_scale,
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
        ..SampleConfig::default()
    };
    sample.validate().map_err(|e| named(e.into()))?;
    // The tokenizer first: its codebook size is the demo's --codebook-size.
    tokenizer.validate().map_err(|e| named(e.into()))?;
    model.validate().map_err(|e| named(e.into()))?;
    par_app::check_float("lr", args.lr, Some(f64::MIN_POSITIVE), None)?;
    if !(0.0..1.0).contains(&args.dropout) {
        par_app::invalid!("--dropout must be in [0, 1) (got {})", args.dropout);
    }
    if args.workers == 0 || args.workers > par_batch {
        par_app::invalid!(
            "--workers must be between 1 and the batch size {par_batch} (got {})",
            args.workers
        );
    }
    tokenizer_train.validate().map_err(|e| named(e.into()))?;
    par_train.validate().map_err(|e| named(e.into()))?;
    Ok(Plan { data, out, device, train_idx, test_idx, config, sample })
}

/// The classifier the demo scores with: `--classifier`, or the committed one.
fn classifier_path(flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(|| repo().join("data/classifier/fashion_cnn.safetensors"), Path::to_path_buf)
}

/// Fingerprints of the demo's input files: the four IDX files of `data`, and the classifier if it
/// exists (one the demo trains itself is its own output, not an input).
fn input_fingerprints(
    data: &Path,
    classifier: Option<&Path>,
) -> anyhow::Result<par_store::InputFingerprints> {
    let [train_images, train_labels] = IdxImages::files(data, IdxSplit::Train).input()?;
    let [test_images, test_labels] = IdxImages::files(data, IdxSplit::Test).input()?;
    let classifier = classifier_path(classifier);
    par_store::InputFingerprints::of([
        ("--data training images", Some(train_images.as_path())),
        ("--data training labels", Some(train_labels.as_path())),
        ("--data test images", Some(test_images.as_path())),
        ("--data test labels", Some(test_labels.as_path())),
        ("--classifier", classifier.is_file().then_some(classifier.as_path())),
    ])
    .input()
}

/// Claims `--out` for the run: refuses a folder holding another demo (or, without `--resume`,
/// this one), writes `config.json`. `true`: the demo there is finished and `--resume` has only
/// reported it.
fn claim_output(args: &Args, plan: &Plan) -> anyhow::Result<bool> {
    let flags = par_app::long_flags::<Args>();
    let named = |e: anyhow::Error| par_app::name_flag(e, &flags);
    let (out, config) = (&plan.out, &plan.config);
    // Resume: `--resume` continues an interrupted demo with the same settings, and on a
    // finished one only prints its result (nothing is re-sampled or rewritten); without it, a
    // folder holding a demo is refused.
    // The classifier is an input when it exists, and an output (trained and saved) when not.
    let classifier = classifier_path(args.classifier.as_deref());
    let existing = classifier.is_file().then_some(classifier.as_path());
    let output = OutputDir::check(
        out,
        "--out",
        &[("--data", Some(plan.data.as_path())), ("--classifier", existing)],
    )?;
    if existing.is_none() {
        par_app::OutputFile::check(&classifier, "--classifier", &[("--data", Some(&plan.data))])?;
    }
    let config_path = out.join("config.json");
    let report_path = out.join("report.json");
    match (config_path.is_file(), args.resume) {
        (false, true) => {
            return Err(anyhow::Error::from(par_train::TrainError::NothingToResume {
                path: out.to_path_buf(),
            })
            .context("--resume"));
        }
        (true, false) if report_path.is_file() => {
            par_app::invalid!("{} holds a finished demo; choose another --out", out.display())
        }
        (true, false) => par_app::invalid!(
            "{} holds an unfinished demo; continue it with --resume or choose another --out",
            out.display()
        ),
        (true, true) => {
            let previous: DemoConfig = read_report(&config_path).input()?;
            // The inputs by content (the data folder spelled otherwise, or moved, is the same
            // input); a classifier the demo trained itself (none at the start) is not an input.
            let config = if previous.inputs.is_recorded() {
                let mut now = config.inputs.clone();
                if !previous.inputs.0.contains_key("--classifier") {
                    now.0.remove("--classifier");
                }
                previous.inputs.check_unchanged(&now, out).input()?;
                DemoConfig {
                    inputs: previous.inputs.clone(),
                    data: previous.data.clone(),
                    ..config.clone()
                }
            } else {
                eprintln!(
                    "warning: {} was started by an earlier version that recorded no input fingerprints; its inputs are compared by path only",
                    out.display()
                );
                DemoConfig { inputs: previous.inputs.clone(), ..config.clone() }
            };
            par_train::checkpoint::same_settings(out, "", &previous, &config)
                .map_err(|e| named(e.into()))?;
            if report_path.is_file() {
                let report: serde_json::Value = read_report(&report_path).input()?;
                eprintln!(
                    "the demo in {} is already finished: {:.1} % of the samples classified as their class; nothing to do",
                    out.display(),
                    100.0 * report["class_fidelity"].as_f64().unwrap_or(f64::NAN)
                );
                output.keep();
                return Ok(true);
            }
        }
        (false, false) => {}
    }
    write_atomic(&config_path, serde_json::to_string_pretty(config)?.as_bytes())?;
    // From here on the folder holds the run (resumable), whatever happens.
    output.keep();
    eprintln!(
        "demo on {} ({} training / {} held-out images, backend {:?}) → {}",
        plan.data.display(),
        config.train_images,
        config.val_images,
        args.device.backend()?,
        out.display()
    );
    Ok(false)
}

/// The classifier that scores the samples (cached at `--classifier`) and its test accuracy.
fn classifier_stage(args: &Args, plan: &Plan) -> anyhow::Result<(Classifier, f64)> {
    let (device, smoke, side) = (&plan.device, plan.config.smoke, plan.image_side());
    let classifier_path = classifier_path(args.classifier.as_deref());
    let classifier = if classifier_path.is_file() {
        let state = par_store::StateDict::read(&classifier_path)?;
        restore(Classifier::new(CLASSES.len(), device), &state)?
    } else {
        eprintln!(
            "no classifier at {}; training one on the {} training images",
            classifier_path.display(),
            plan.train_idx.len()
        );
        let full = ImageSet::from_idx(&plan.train_idx, side);
        let monitor = BarMonitor::new("classifier");
        let c = train_classifier(&full, if smoke { 1 } else { 3 }, args.seed, device, &monitor)?;
        monitor.bar().finish();
        snapshot(&c)?.write_safetensors(&classifier_path)?;
        c
    };
    let classifier_accuracy =
        classifier.accuracy(&ImageSet::from_idx(&plan.test_idx, side), device);
    eprintln!(
        "classifier accuracy on the {} test images: {:.2} %",
        plan.test_idx.len(),
        100.0 * classifier_accuracy
    );

    Ok((classifier, classifier_accuracy))
}

/// Trains (or resumes, or reuses) the tokenizer: its report, the model and its file.
fn tokenizer_stage(
    plan: &Plan,
    train_set: &ImageSet,
    val_set: &ImageSet,
) -> anyhow::Result<(par_train::vq::VqReport, VqTokenizer, PathBuf)> {
    let (out, device) = (&plan.out, &plan.device);
    let tok_dir = out.join("tokenizer");
    let tok_ckpt = tok_dir.join("tokenizer.safetensors");
    let tok_report = if tok_dir.join("report.json").is_file() {
        read_report::<par_train::vq::VqReport>(&tok_dir.join("report.json"))?
    } else {
        let monitor = BarMonitor::new("tokenizer");
        let resume = par_train::checkpoint::latest(&tok_dir).is_some();
        let r = train_tokenizer(
            &tok_dir,
            &plan.config.tokenizer,
            &plan.config.tokenizer_train,
            train_set,
            val_set,
            device,
            resume,
            Arc::new(monitor.clone()),
        )?
        .report();
        monitor.bar().finish();
        r
    };
    std::fs::copy(tok_dir.join("reconstructions.png"), out.join("reconstructions.png"))
        .with_context(|| format!("copying {}", tok_dir.join("reconstructions.png").display()))?;
    eprintln!(
        "tokenizer: held-out PSNR {:.2} dB, codebook usage {:.1} %",
        tok_report.held_out.psnr_db.unwrap_or(f64::NAN),
        100.0 * tok_report.held_out.codebook_usage
    );
    let tok = VqTokenizer::load(&tok_ckpt, None, device)?;

    Ok((tok_report, tok, tok_ckpt))
}

/// Pre-tokenizes the training and held-out images (centre crop + mirror: 2 views per image).
fn tokenize_stage(plan: &Plan, tok: &VqTokenizer, tok_ckpt: &Path) -> anyhow::Result<ParData> {
    let (out, data, device) = (&plan.out, &plan.data, &plan.device);
    let (train_images, val_images) = (plan.config.train_images, plan.config.val_images);
    let mut codes = Vec::new();
    for (name, split, count) in
        [("codes", IdxSplit::Train, train_images), ("codes_val", IdxSplit::Test, val_images)]
    {
        let dir = out.join(name);
        if !dir.join(par_data::REPORT_FILE).is_file() {
            let images = IdxImages::open(data, split)?.take(count);
            let settings = TokenizeSettings {
                image_size: plan.image_side(),
                augmentation: par_data::Augmentation::CenterFlip,
                format: OutputFormat::Compact,
                name: name.into(),
                chunk_size: 2048,
                source: data.display().to_string(),
                source_images: images.len(),
                tokenizer: tok_ckpt.to_path_buf(),
                tokenizer_fingerprint: 0,
                inputs: Default::default(),
                source_listing: String::new(),
            };
            let source = Source::Idx {
                dir: data.clone(),
                images,
                classes: CLASSES.map(String::from).to_vec(),
            };
            let monitor = BarMonitor::new(name);
            tokenize(&source, tok, &settings, &dir, 64, true, device, &monitor)?;
            monitor.bar().finish();
        }
        let store = CodeStore::open(&dir)?;
        codes.push(CodeDataset::load(&store, 0..store.info().num_images)?);
    }
    Ok(ParData::new(codes.remove(0), codes.remove(0)))
}

/// Trains (or resumes, or reuses) the PAR model; writes `loss.png`.
fn par_stage(plan: &Plan, par_data: &ParData) -> anyhow::Result<par_train::par::ParReport> {
    let (out, grid) = (&plan.out, plan.grid());
    let par_dir = out.join("par");
    let par_report = if par_dir.join("report.json").is_file() {
        read_report::<par_train::par::ParReport>(&par_dir.join("report.json"))?
    } else {
        let monitor = BarMonitor::new("PAR");
        let resume = par_train::checkpoint::latest(&par_dir).is_some();
        let r = train_par(
            &par_dir,
            &plan.config.model,
            &plan.config.par_train,
            par_data,
            &vec![plan.device.clone(); plan.config.workers],
            resume,
            Arc::new(monitor.clone()),
        )?
        .report();
        monitor.bar().finish();
        r
    };
    loss_png(
        &out.join("loss.png"),
        &format!("PAR-4x on Fashion-MNIST codes ({grid}x{grid} grid)"),
        "step",
        &[
            Curve {
                label: "training",
                points: par_report.history.iter().map(|h| (h.step as f64, h.loss)).collect(),
            },
            Curve {
                label: "validation",
                points: par_report.validation.iter().map(|v| (v.step as f64, v.loss)).collect(),
            },
        ],
    )?;

    Ok(par_report)
}

/// The samples: `per_class` of every class, decoded.
struct Samples {
    model: par_model::ParTransformer,
    classes: Vec<usize>,
    tiles: Vec<PixelImage>,
    seconds: f64,
}

/// Samples every class with guidance, decodes them, writes `samples.png`.
fn sampling_stage(args: &Args, plan: &Plan, tok: &VqTokenizer) -> anyhow::Result<Samples> {
    let (out, device, grid) = (&plan.out, &plan.device, plan.grid());
    let par_model =
        par_model::ParTransformer::load(&out.join("par/model.safetensors"), None, device)?;
    let per_class = plan.config.per_class;
    let classes: Vec<usize> =
        (0..CLASSES.len()).flat_map(|c| std::iter::repeat_n(c, per_class)).collect();
    let t0 = std::time::Instant::now();
    let grids =
        par_app::sample_codes(args.device.sampling_backend()?, &par_model, &classes, &plan.sample)?;
    let sample_seconds = t0.elapsed().as_secs_f64();
    let tiles = decode_tiles(tok, grid, grids.iter().flatten().map(|&c| c as i64).collect())?;
    // A labelled row per class (its first 8 samples), tiles enlarged 3× (nearest neighbour).
    let rows: Vec<(String, Vec<PixelImage>)> = CLASSES
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let first = c * per_class;
            (name.to_string(), tiles[first..first + per_class.min(8)].to_vec())
        })
        .collect();
    par_app::plot::labelled_grid_png(
        &out.join("samples.png"),
        &format!(
            "PAR-4x samples, guidance {}, {} steps per image",
            decimal(args.cfg_scale),
            par_model.schedule().num_steps()
        ),
        &rows,
        3,
    )?;

    Ok(Samples { model: par_model, classes, tiles, seconds: sample_seconds })
}

/// What the scores stage reports on.
struct Scored {
    classifier: Classifier,
    classifier_accuracy: f64,
    tok_report: par_train::vq::VqReport,
    par_report: par_train::par::ParReport,
    samples: Samples,
}

/// Class fidelity, FD-FMNIST and precision/recall of the samples and of the tokenizer's
/// reconstructions; writes `report.json`.
fn scores_stage(
    args: &Args,
    plan: &Plan,
    tok: &VqTokenizer,
    par_data: &ParData,
    scored: Scored,
    t_start: std::time::Instant,
) -> anyhow::Result<()> {
    let Scored { classifier, classifier_accuracy, tok_report, par_report, samples } = scored;
    let Samples { model: par_model, classes, tiles, seconds: sample_seconds } = samples;
    let (out, device, grid, tokens) = (&plan.out, &plan.device, plan.grid(), plan.tokens());
    let per_class = plan.config.per_class;
    let sampled = ImageSet::from_images(&tiles, classes.iter().map(|&c| c as u32).collect());
    let predicted = classifier.predict(&sampled, device);
    // FD-FMNIST and precision/recall against the real test images the tokenizer never saw (all
    // but the held-out ones, whose reconstructions are scored against the same set below).
    let reference =
        ImageSet::from_idx(&plan.test_idx, plan.image_side()).skip(plan.config.val_images);
    let quality = par_eval::evaluate(&classifier, &sampled, true, &reference, device)?;
    let mut per_class_fidelity = serde_json::Map::new();
    for (c, name) in CLASSES.iter().enumerate() {
        let hits =
            (0..classes.len()).filter(|&i| classes[i] == c && predicted[i] as usize == c).count();
        per_class_fidelity
            .insert(name.to_string(), serde_json::json!(hits as f64 / per_class as f64));
    }
    let overall = predicted.iter().zip(&classes).filter(|(p, c)| **p as usize == **c).count()
        as f64
        / classes.len() as f64;
    // The ceiling: the classifier on the tokenizer's reconstructions of the held-out images
    // (their codes, decoded), i.e. what a perfect generator of these codes would score.
    let order = par_model.schedule().order();
    let val_codes = &par_data.val;
    let held_out = val_codes.eval_batch(0..val_codes.len(), order);
    let raster: Vec<i64> = held_out
        .tokens
        .chunks(tokens)
        .flat_map(|t| order.unpermute(t).expect("grid² tokens per image"))
        .collect();
    let reconstructed = ImageSet::from_images(
        &decode_tiles(tok, grid, raster)?,
        held_out.classes.iter().map(|&c| c as u32).collect(),
    );
    let reconstruction_accuracy = classifier.accuracy(&reconstructed, device);
    let reconstruction_quality =
        par_eval::evaluate(&classifier, &reconstructed, true, &reference, device)?;
    let steps_per_image = par_model.schedule().num_steps();
    let report = serde_json::json!({
        "classifier_test_accuracy": classifier_accuracy,
        "class_fidelity": overall,
        "class_fidelity_per_class": per_class_fidelity,
        "fd_fmnist": quality.fd_fmnist,
        "precision": quality.precision,
        "recall": quality.recall,
        "reference_images": quality.reference_images,
        "classifier_accuracy_on_reconstructions": reconstruction_accuracy,
        // The same scores for the tokenizer's reconstructions of the held-out images (both
        // centre views): what a perfect generator of these codes would reach.
        "reconstructions": {
            "fd_fmnist": reconstruction_quality.fd_fmnist,
            "precision": reconstruction_quality.precision,
            "recall": reconstruction_quality.recall,
            "images": reconstruction_quality.images,
        },
        "tokenizer": { "held_out": tok_report.held_out, "steps": tok_report.steps, "final": tok_report.history.last() },
        "par": {
            "parameters": par_model.num_params(),
            "steps": par_report.steps,
            "final_train_loss": par_report.history.last().map(|h| h.loss),
            "final_val_loss": par_report.validation.last().map(|v| v.loss),
            "training_tokens_per_second": par_report.tokens_per_second,
            "history": par_report.history,
            "validation": par_report.validation,
        },
        "sampling": {
            "images": classes.len(),
            "cfg_scale": decimal(args.cfg_scale),
            "temperature": decimal(args.temperature),
            "top_k": args.top_k,
            "steps_per_image": steps_per_image,
            "raster_steps_per_image": tokens,
            "seconds": sample_seconds,
            "seconds_per_image": sample_seconds / classes.len() as f64,
            "tokens_per_second": (classes.len() * tokens) as f64 / sample_seconds,
        },
        "wall_seconds": t_start.elapsed().as_secs_f64(),
    });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    eprintln!(
        "\nsamples classified as their class: {:.1} % (classifier test accuracy {:.1} %, on the tokenizer's reconstructions {:.1} %); against {} real test images: FD-FMNIST {:.2}, precision {:.3}, recall {:.3} (the reconstructions: {:.2}, {:.3}, {:.3}); {} decode steps per image instead of {}, {:.3} s per image; {} → samples.png, reconstructions.png, loss.png, report.json",
        100.0 * overall,
        100.0 * classifier_accuracy,
        100.0 * reconstruction_accuracy,
        quality.reference_images,
        quality.fd_fmnist,
        quality.precision,
        quality.recall,
        reconstruction_quality.fd_fmnist,
        reconstruction_quality.precision,
        reconstruction_quality.recall,
        steps_per_image,
        tokens,
        sample_seconds / classes.len() as f64,
        out.display()
    );
    Ok(())
}
