//! The shared driver of the `train_par_*` binaries: the paper's Table 5 presets on pre-tokenized
//! image codes, and its Table 6 (video, docs/spec.md §8) for `train_par_video` on clip codes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use par_app::{InputResult, OutputDir};
use par_data::CodeStore;
use par_device::DeviceArgs;
use par_model::{ParTransformerConfig, Preset};
use par_train::par::{CodeDataset, ParData, ParTrainConfig, Precision, train_par};
use par_train::{TrainError, Trained};

/// Flags of `train_par_l`, `train_par_xl`, `train_par_xxl`, `train_par_3b`.
#[derive(Debug, clap::Parser)]
#[command(allow_negative_numbers = true)]
pub struct TrainParArgs {
    /// Pre-tokenized codes: a `par tokenize` output folder (codes.parc) or a LlamaGen dump
    /// (`…_codes/` + `…_labels/`).
    #[arg(long)]
    pub codes: PathBuf,
    /// Validation codes (same formats) [default: no validation loss].
    #[arg(long)]
    pub val_codes: Option<PathBuf>,
    /// Run directory: config.json, checkpoint/, model.safetensors, report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Training settings as JSON (`ParTrainConfig`, missing fields = the preset's Table 5
    /// values); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model config as JSON (`ParTransformerConfig`), instead of the preset.
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Parallel degree n (regions); 1 = LlamaGen.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Device indices for data parallelism, e.g. 0,1,2,3 (GPU ordinals) [default: 0].
    #[arg(long, value_delimiter = ',')]
    pub devices: Option<Vec<usize>>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Global batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Stop after N steps (the schedule still spans the epochs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// EMA decay (off by default).
    #[arg(long)]
    pub ema: Option<f64>,
    /// Compute precision [default: bf16 on cuda, f32 elsewhere].
    #[arg(long, value_parser = par_app::choice::<par_train::par::Precision>(&par_train::par::Precision::NAMES))]
    pub precision: Option<Precision>,
    /// Steps between checkpoints.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend, device index (when --devices is not given) and dtype.
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Which of the paper's training tables a binary follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Table 5: class-conditional ImageNet, image code grids.
    Images,
    /// Table 6: class-conditional UCF-101 clips, video code grids (`frames > 1`).
    Video,
}

fn tokenize_hint(path: &std::path::Path, table: Table) -> String {
    match table {
        Table::Images => format!(
            "no pre-tokenized codes at {}; make them with\n  par tokenize --images /data/imagenet/train --tokenizer vq_ds16_c2i.pt --tokenizer-preset vq-16 --image-size 384 --ten-crop --crop-range 1.1 --out {}",
            path.display(),
            path.display()
        ),
        Table::Video => format!(
            "no pre-tokenized clip codes at {}; make them with\n  par tokenize-clips --videos /data/UCF-101 --tokenizer video_tokenizer.safetensors --out {}",
            path.display(),
            path.display()
        ),
    }
}

/// Runs a `train_par_*` binary for `preset`.
///
/// # Errors
///
/// A missing or empty code folder (with the `par tokenize` command that makes it), bad configs,
/// and the training errors.
pub fn run(preset: Preset, args: &TrainParArgs) -> anyhow::Result<()> {
    run_table(preset, args, Table::Images)
}

/// Runs a training binary for `preset` on `table`'s settings: Table 5 needs image codes
/// (`frames = 1`), Table 6 clip codes (`frames > 1`); the other kind is refused before any
/// training. A video run also writes `sampling.json`, Table 6's sampling settings (temperature
/// 1.0, guidance 1.15, top-k 8000), next to its model.
///
/// # Errors
///
/// As [`run`], and codes of the wrong kind.
pub fn run_table(preset: Preset, args: &TrainParArgs, table: Table) -> anyhow::Result<()> {
    let flags = par_app::long_flags::<TrainParArgs>();
    let named = |e: anyhow::Error| par_app::name_flag(e, &flags);
    // The flags first, before any data is read (the assembled config is checked again below).
    if let Some(lr) = args.lr {
        par_app::check_float("lr", lr, Some(f64::MIN_POSITIVE), None)?;
    }
    if let Some(decay) = args.ema
        && !(0.0..1.0).contains(&decay)
    {
        par_app::invalid!("--ema must be a decay in [0, 1), got {decay}");
    }
    for (flag, value) in [
        ("epochs", args.epochs),
        ("batch-size", args.batch_size),
        ("max-steps", args.max_steps),
        ("checkpoint-every", args.checkpoint_every),
    ] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let out = OutputDir::check(&args.out, "--out")?;
    if args.resume && par_train::checkpoint::latest(&args.out).is_none() {
        return Err(anyhow::Error::from(TrainError::NothingToResume { path: args.out.clone() })
            .context("--resume"));
    }
    let store = match CodeStore::open(&args.codes) {
        Ok(s) if s.info().num_images > 0 => s,
        Ok(_) => par_app::invalid!("{}", tokenize_hint(&args.codes, table)),
        // Missing or empty: say how to make the codes; damaged: the reader's error names the file.
        Err(e)
            if !args.codes.exists()
                || e.to_string().contains("no code dump")
                || e.to_string().contains("no samples") =>
        {
            par_app::invalid!("{e}; {}", tokenize_hint(&args.codes, table))
        }
        Err(e) => return Err(e).input(),
    };
    let info = store.info().clone();
    match (table, info.frames > 1) {
        (Table::Images, true) => par_app::invalid!(
            "{}: clip codes ({} latent frames); train video models with train_par_video",
            store.path().display(),
            info.frames
        ),
        (Table::Video, false) => par_app::invalid!(
            "{}: image codes (1 frame); train_par_video needs clip codes (par tokenize-clips)",
            store.path().display()
        ),
        _ => {}
    }
    eprintln!(
        "loading {} samples × {} views of {}×{}×{} codes (frames × rows × columns) from {}",
        info.num_images,
        info.views,
        info.frames,
        info.grid[0],
        info.grid[1],
        store.path().display()
    );
    let train = CodeDataset::load(&store, 0..info.num_images).input()?;
    let val = match &args.val_codes {
        Some(p) => {
            let s = CodeStore::open(p).input()?;
            CodeDataset::load(&s, 0..s.info().num_images).input()?
        }
        None => {
            CodeDataset { codes: vec![], labels: vec![], views: info.views, tokens: info.tokens() }
        }
    };
    let mut model: ParTransformerConfig = match &args.model_config {
        Some(p) => par_store::from_json_with_defaults(
            &ParTransformerConfig::new(),
            &std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))
                .input()?,
        )
        .with_context(|| format!("{}: not a model config", p.display()))
        .input()?,
        None => match table {
            Table::Images => preset.config(info.grid[0], args.parallel),
            Table::Video => preset.video_config(info.frames, info.grid[0], args.parallel),
        }
        .with_attn_dropout(0.1)
        .with_token_dropout(0.1)
        .with_resid_dropout(0.1)
        .with_ffn_dropout(0.1),
    };
    if (model.frames, model.grid_size) != (info.frames, info.grid[0])
        || info.grid[0] != info.grid[1]
    {
        par_app::invalid!(
            "{}: codes of {}×{}×{} (frames × rows × columns), but the model config is for {}×{g}×{g}",
            store.path().display(),
            info.frames,
            info.grid[0],
            info.grid[1],
            model.frames,
            g = model.grid_size
        );
    }
    if let Some(k) = info.codebook_size {
        model.vocab_size = k;
    }
    if !info.classes.is_empty() {
        model.num_classes = info.classes.len();
    }
    let defaults = match table {
        Table::Images => ParTrainConfig::table5(preset),
        Table::Video => ParTrainConfig::table6(),
    };
    let mut cfg = match &args.config {
        Some(p) => par_store::from_json_with_defaults(
            &defaults,
            &std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))
                .input()?,
        )
        .with_context(|| format!("{}: not a training config", p.display()))
        .input()?,
        None => defaults,
    };
    macro_rules! set {
        ($($f:ident => $g:ident),*) => { $( if let Some(v) = args.$f { cfg.$g = v; } )* };
    }
    set!(epochs => epochs, batch_size => batch_size, lr => lr, checkpoint_every => checkpoint_every, seed => seed);
    if args.max_steps.is_some() {
        cfg.max_steps = args.max_steps;
    }
    if args.ema.is_some() {
        cfg.ema_decay = args.ema;
    }
    cfg.validate().map_err(|e| named(e.into()))?;
    model.validate().map_err(|e| named(e.into()))?;
    let backend = args.device.backend()?;
    cfg.precision = args.precision.unwrap_or(if backend.trains_in_bf16() {
        Precision::Bf16
    } else {
        Precision::F32
    });
    let indices =
        args.devices.clone().unwrap_or_else(|| vec![args.device.device_index.unwrap_or(0)]);
    let devices = indices
        .iter()
        .map(|&i| DeviceArgs { device_index: Some(i), ..args.device.clone() }.device())
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "{:?} n = {}: {} parameters, {} steps/epoch × {} epochs, batch {} over {} device(s), lr {:.1e}, {:?}",
        preset,
        model.parallel,
        model.num_parameters(),
        cfg.steps_per_epoch(train.len()),
        cfg.epochs,
        cfg.batch_size,
        devices.len(),
        cfg.lr,
        cfg.precision
    );
    let monitor = crate::BarMonitor::new("train");
    let data = ParData::new(train, val);
    let trained =
        train_par(&args.out, &model, &cfg, &data, &devices, args.resume, Arc::new(monitor.clone()))
            .map_err(|e| match e {
                TrainError::NonFinite { .. } => {
                    anyhow::Error::from(e).context(format!("lower --lr (now {:e})", cfg.lr))
                }
                e => named(e.into()),
            })?;
    monitor.bar().finish();
    if table == Table::Video {
        let path = args.out.join("sampling.json");
        par_store::write_atomic(
            &path,
            &serde_json::to_vec_pretty(&par_sample::SampleConfig::video_table6())?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    out.keep();
    if matches!(trained, Trained::AlreadyFinished(_)) {
        eprintln!("the run in {} is already finished; nothing to do", args.out.display());
    }
    let report = trained.report();
    eprintln!(
        "{} steps, {:.0} image tokens/s → {}",
        report.steps,
        report.tokens_per_second,
        args.out.display()
    );
    Ok(())
}
