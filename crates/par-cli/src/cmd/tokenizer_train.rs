//! `par tokenizer train`: trains a VQ tokenizer on an IDX set (MNIST, Fashion-MNIST) or an
//! ImageFolder tree.

use std::path::PathBuf;

use anyhow::Context;
use par_app::{InputResult, OutputDir, invalid};
use par_data::{
    IdxImages, IdxSplit, ImageFolder, ImageSet, PixelImage, adm_center_crop, load_image,
};
use par_device::DeviceArgs;
use par_tokenizer::{TokenizerPreset, VqTokenizerConfig};
use par_train::vq::{VqTrainConfig, train_tokenizer};
use par_train::{TrainError, Trained};
use rayon::prelude::*;

use crate::progress::BarMonitor;

/// Arguments of `par tokenizer train`.
#[derive(Debug, clap::Args)]
pub struct TokenizerTrainArgs {
    /// MNIST-style directory (`train-images-idx3-ubyte[.gz]`, …): trains on the train split,
    /// evaluates on the first --held-out test images.
    #[arg(long, conflicts_with = "images", required_unless_present = "images")]
    idx: Option<PathBuf>,
    /// ImageFolder tree (ROOT/CLASS/IMAGE): the last --held-out images (in folder order) are
    /// held out.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Run directory: config.json, checkpoint/, tokenizer.safetensors, report.json,
    /// reconstructions.png.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// Tokenizer size.
    #[arg(long, value_parser = par_app::choice::<par_tokenizer::TokenizerPreset>(&par_tokenizer::TokenizerPreset::NAMES), default_value = "vq-small-16", conflicts_with = "config")]
    preset: TokenizerPreset,
    /// Tokenizer config as JSON (`VqTokenizerConfig`), instead of a preset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training image side in pixels (ADM centre crop) [default: 32 for 1-channel tokenizers,
    /// 256 otherwise].
    #[arg(long)]
    image_size: Option<usize>,
    /// Use only the first N training images.
    #[arg(long)]
    train_images: Option<usize>,
    /// Held-out images for PSNR and codebook usage.
    #[arg(long, default_value_t = 1000)]
    held_out: usize,
    /// Training settings as JSON (`VqTrainConfig`); the flags below override it.
    #[arg(long)]
    train_config: Option<PathBuf>,
    /// Optimizer steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Images per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Turn on the PatchGAN loss from this step (LlamaGen: 20000).
    #[arg(long)]
    disc_start: Option<usize>,
    /// Adversarial weight.
    #[arg(long)]
    disc_weight: Option<f64>,
    /// Discriminator stride-2 stages (3 upstream; 2 for 32 px).
    #[arg(long)]
    disc_layers: Option<usize>,
    /// Discriminator base filters (64 upstream).
    #[arg(long)]
    disc_channels: Option<usize>,
    /// Codebook entropy loss weight.
    #[arg(long)]
    entropy_loss_ratio: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Seed of weights, data order and flips.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    device: DeviceArgs,
}

fn read_json<T: serde::Serialize + serde::de::DeserializeOwned>(
    path: &std::path::Path,
    defaults: &T,
    what: &str,
) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .input()?;
    match par_store::from_json_with_defaults(defaults, &text) {
        Ok(v) => Ok(v),
        Err(e) => invalid!("{}: not a {what}: {e}", path.display()),
    }
}

/// What to lower after a divergence at `step` (1-based): the learning rate, and the loss weights
/// in force at that step (the adversarial weight once the discriminator is on, the codebook
/// entropy weight when it is not 0), each with its value.
fn divergence_hint(cfg: &VqTrainConfig, tokenizer: &VqTokenizerConfig, step: usize) -> String {
    let mut flags = vec![format!("--lr (now {:e})", cfg.lr)];
    if cfg.disc_start.is_some_and(|start| step >= start) {
        flags.insert(
            0,
            format!(
                "--disc-weight (now {:e}; the discriminator is on from step {})",
                cfg.disc_weight,
                cfg.disc_start.unwrap_or(0)
            ),
        );
    }
    if tokenizer.entropy_loss_ratio > 0.0 {
        flags.push(format!("--entropy-loss-ratio (now {:e})", tokenizer.entropy_loss_ratio));
    }
    format!("lower {}", flags.join(" or "))
}

/// Runs `par tokenizer train`.
pub fn run(args: &TokenizerTrainArgs) -> anyhow::Result<()> {
    par_app::check_inputs_exist(&[
        ("--idx", args.idx.as_deref()),
        ("--images", args.images.as_deref()),
        ("--config", args.config.as_deref()),
        ("--train-config", args.train_config.as_deref()),
    ])?;
    let flags = par_app::long_flags::<TokenizerTrainArgs>();
    let named = |e: anyhow::Error| par_app::name_flag(e, &flags);
    let mut tokenizer: VqTokenizerConfig = match &args.config {
        Some(p) => read_json(p, &VqTokenizerConfig::new(), "tokenizer config")?,
        None => args.preset.config(),
    };
    if let Some(r) = args.entropy_loss_ratio {
        tokenizer.entropy_loss_ratio = r;
    }
    tokenizer.validate().map_err(|e| named(e.into()))?;
    let mut cfg: VqTrainConfig = match &args.train_config {
        Some(p) => read_json(p, &VqTrainConfig::new(), "training config")?,
        None => VqTrainConfig::new(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = args.$f { cfg.$f = v; } )* };
    }
    set!(steps, batch_size, lr, disc_weight, disc_layers, disc_channels, checkpoint_every, seed);
    if args.disc_start.is_some() {
        cfg.disc_start = args.disc_start;
    }
    cfg.validate().map_err(|e| named(e.into()))?;
    for (flag, value) in [("image-size", args.image_size), ("train-images", args.train_images)] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let size = args.image_size.unwrap_or(if tokenizer.image_channels == 1 { 32 } else { 256 });
    if size > par_data::MAX_IMAGE_SIZE {
        invalid!("--image-size {size} is above the supported {} px", par_data::MAX_IMAGE_SIZE);
    }
    if !size.is_multiple_of(tokenizer.downsample_factor()) {
        invalid!(
            "--image-size {size} is not a multiple of the down-sampling factor {}",
            tokenizer.downsample_factor()
        );
    }
    // A step's batch is built on the host and its activations kept for the backward pass.
    let batch = cfg.batch_size as f64;
    par_app::limits::check_memory(
        "--batch-size/--image-size",
        &format!("a batch of {} images of {size}×{size} px", cfg.batch_size),
        batch * (tokenizer.image_channels * size * size) as f64 * 4.0,
    )?;
    par_app::limits::check_device_memory(
        args.device.backend()?,
        "--batch-size/--image-size",
        &format!("training on batches of {} images of {size}×{size} px", cfg.batch_size),
        tokenizer.training_bytes(cfg.batch_size, size),
    )?;
    let out = OutputDir::check(
        &args.out,
        "--out",
        &[
            ("--idx", args.idx.as_deref()),
            ("--images", args.images.as_deref()),
            ("--config", args.config.as_deref()),
            ("--train-config", args.train_config.as_deref()),
        ],
    )?;
    if args.resume && par_train::checkpoint::latest(&args.out).is_none() {
        // Before the images are read: a mistyped run directory must not start a new run.
        return Err(anyhow::Error::from(TrainError::NothingToResume { path: args.out.clone() })
            .context("--resume"));
    }
    let channels = tokenizer.image_channels;
    let (train, held_out) = if let Some(dir) = &args.idx {
        let train = IdxImages::open(dir, IdxSplit::Train).input()?;
        let train = train.take(args.train_images.unwrap_or(usize::MAX));
        let test = IdxImages::open(dir, IdxSplit::Test).input()?.take(args.held_out);
        let convert = |set: &IdxImages| {
            let mut s = ImageSet::from_idx(set, size);
            if channels == 3 {
                s.pixels = s.pixels.iter().flat_map(|&v| [v, v, v]).collect();
                s.channels = 3;
            }
            s
        };
        (convert(&train), convert(&test))
    } else {
        let root = args.images.as_ref().expect("clap requires --idx or --images");
        let folder = ImageFolder::scan(root, false).input()?;
        let images: Vec<PixelImage> = folder
            .samples
            .par_iter()
            .map(|(p, _)| load_image(p, channels).map(|im| adm_center_crop(&im, size)))
            .collect::<Result<_, _>>()
            .input()?;
        let labels: Vec<u32> = folder.samples.iter().map(|s| s.1).collect();
        // Held-out images drawn across all classes: a seeded permutation of the folder.
        let order = par_train::plan::BatchPlan::new(images.len().max(1), 1, cfg.seed ^ 0x4E1D)
            .permutation(0);
        let cut = images.len().saturating_sub(args.held_out);
        let pick = |idx: &[usize]| {
            let ims: Vec<PixelImage> = idx.iter().map(|&i| images[i].clone()).collect();
            ImageSet::from_images(&ims, idx.iter().map(|&i| labels[i]).collect())
        };
        let (train, held) = (pick(&order[..cut]), pick(&order[cut..]));
        (train.take(args.train_images.unwrap_or(usize::MAX)), held)
    };
    if train.is_empty() {
        invalid!("no training images");
    }
    let device = args.device.device()?;
    eprintln!(
        "training a {}-parameter tokenizer on {} images ({} held out), {} steps of {}",
        {
            use burn::module::Module;
            tokenizer.init(&device)?.num_params()
        },
        train.len(),
        held_out.len(),
        cfg.steps,
        cfg.batch_size
    );
    let monitor = BarMonitor::new("train");
    let trained = train_tokenizer(
        &args.out,
        &tokenizer,
        &cfg,
        &train,
        &held_out,
        &device,
        args.resume,
        std::sync::Arc::new(monitor.clone()),
    )
    .map_err(|e| match e {
        TrainError::NonFinite { step, .. } => {
            anyhow::Error::from(e).context(divergence_hint(&cfg, &tokenizer, step))
        }
        e => named(e.into()),
    })?;
    monitor.bar().finish();
    out.keep();
    let finished = matches!(trained, Trained::AlreadyFinished(_));
    let h = &trained.report().held_out;
    if finished {
        eprintln!(
            "the run in {} is already finished at step {}; nothing to do",
            args.out.display(),
            cfg.steps
        );
    }
    match h.psnr_db {
        Some(psnr) => eprintln!(
            "held-out ({} images): PSNR {psnr:.2} dB, codebook usage {:.1} % ({} codes), perplexity {:.1}; {} → tokenizer.safetensors, report.json, reconstructions.png",
            h.images,
            100.0 * h.codebook_usage,
            h.codes_used,
            h.perplexity,
            args.out.display(),
        ),
        None => eprintln!(
            "no held-out images (--held-out 0): no PSNR or codebook figures; {} → tokenizer.safetensors, report.json",
            args.out.display()
        ),
    }
    Ok(())
}
