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
    /// Parallel degree n (regions); 1 = LlamaGen [default: 4, or the --model-config's].
    #[arg(long)]
    pub parallel: Option<usize>,
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
    if !args.codes.exists() {
        // Missing codes: say how to make them.
        par_app::invalid!("--codes: {}", tokenize_hint(&args.codes, table));
    }
    let out = OutputDir::check(
        &args.out,
        "--out",
        &[
            ("--codes", Some(&args.codes)),
            ("--val-codes", args.val_codes.as_deref()),
            ("--config", args.config.as_deref()),
            ("--model-config", args.model_config.as_deref()),
        ],
    )?;
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
    // An explicit setting is used or refused, never replaced: the fields a --model-config
    // writes out must agree with the codes and with --parallel; the preset's ImageNet sizes are
    // taken from the codes.
    let (mut model, explicit): (ParTransformerConfig, Vec<String>) = match &args.model_config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))
                .input()?;
            let config = par_store::from_json_with_defaults(&ParTransformerConfig::new(), &text)
                .with_context(|| format!("{}: not a model config", p.display()))
                .input()?;
            let mut config: ParTransformerConfig = config;
            let keys = par_store::json_keys(&text);
            if let Some(n) = args.parallel {
                if keys.iter().any(|k| k == "parallel") && config.parallel != n {
                    par_app::invalid!(
                        "--parallel {n} disagrees with {}, which sets parallel = {}; drop one of them",
                        p.display(),
                        config.parallel
                    );
                }
                config.parallel = n;
            }
            (config, keys)
        }
        None => (
            match table {
                Table::Images => preset.config(info.grid[0], args.parallel.unwrap_or(4)),
                Table::Video => {
                    preset.video_config(info.frames, info.grid[0], args.parallel.unwrap_or(4))
                }
            }
            .with_attn_dropout(0.1)
            .with_token_dropout(0.1)
            .with_resid_dropout(0.1)
            .with_ffn_dropout(0.1),
            Vec::new(),
        ),
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
    for (field, data) in [
        ("vocab_size", info.codebook_size),
        ("num_classes", Some(info.classes.len()).filter(|&c| c > 0)),
    ] {
        let Some(data) = data else { continue };
        let value =
            if field == "vocab_size" { &mut model.vocab_size } else { &mut model.num_classes };
        if explicit.iter().any(|k| k == field) && *value != data {
            par_app::invalid!(
                "--model-config {} sets {field} = {}, but the codes in {} have {data} ({}); make them agree or leave {field} out to take the codes'",
                args.model_config.as_ref().expect("explicit fields come from a file").display(),
                value,
                store.path().display(),
                if field == "vocab_size" { "codebook entries" } else { "classes" }
            );
        }
        *value = data;
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
    // What the batch implies, before the data is batched: the host buffers of a batch, and per
    // device the weights, gradients and AdamW moments (f32) and the activations kept for the
    // backward pass (weighed on the CPU backends, where they live in host memory).
    let tokens = info.tokens() as f64;
    par_app::limits::check_memory(
        "--batch-size",
        &format!("a batch of {} sequences of {} tokens", cfg.batch_size, info.tokens()),
        cfg.batch_size as f64 * tokens * 16.0,
    )?;
    let per_device = cfg.batch_size.div_ceil(devices.len());
    par_app::limits::check_device_memory(
        backend,
        "--batch-size",
        &format!(
            "training {} parameters on {per_device} sequence(s) per device",
            model.num_parameters()
        ),
        model.training_bytes(per_device) + 16.0 * model.num_parameters() as f64,
    )?;
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
    let already = matches!(trained, Trained::AlreadyFinished(_));
    let path = args.out.join("sampling.json");
    // A finished run resumed again changes nothing (unless it stopped before this file).
    if table == Table::Video && !(already && path.is_file()) {
        par_store::write_atomic(
            &path,
            &serde_json::to_vec_pretty(&par_sample::SampleConfig::video_table6())?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    out.keep();
    if already {
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
