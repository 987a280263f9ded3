//! `par sample`: checkpoint(s) → images in one command: one PNG per image (named by index,
//! class and seed), a grid with a labelled row per class, and optionally the ADM evaluator's
//! `.npz`. Resumable: a killed 50,000-image job continues without redoing finished batches and
//! writes the same files as an uninterrupted one.

use std::path::{Path, PathBuf};

use anyhow::Context;
use par_app::{InputResult, OutputDir, invalid};
use par_data::PixelImage;
use par_device::DeviceArgs;
use par_sample::SampleConfig;
use serde::{Deserialize, Serialize};

use super::decode::TokenizerArgs;
use super::model::ModelArgs;
use crate::progress::{bar, stop_flag};

/// Arguments of `par sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Model checkpoint: ours (config inside) or an official PAR / LlamaGen `.pt` with
    /// --preset; the parallel degree is read from it (--parallel must match it).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// Class ids, comma-separated: one image each, in this order.
    #[arg(long, value_delimiter = ',', conflicts_with = "per_class")]
    classes: Option<Vec<usize>>,
    /// Images per class, for every class of the model (class-major order; the paper's FID runs
    /// take 50 of each of 1000 classes).
    #[arg(long)]
    per_class: Option<usize>,
    /// Seed: image `i` draws from stream `i` of this seed, so any image can be regenerated.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    sampling: super::sampling::SamplingArgs,
    /// Images per decode batch (part of the settings: a batch is the unit a resumed job redoes).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Pixels per side [default: the model's grid × the tokenizer's factor]; above the training
    /// size this is PAR's zero-shot higher resolution (the RoPE tables and the PAR schedule are
    /// built for the larger grid, e.g. 384 → 512 px: grid 24 → 32, 259 steps at 4×).
    #[arg(long)]
    image_size: Option<usize>,
    /// Names of the classes for the grid's row labels, comma-separated [default: "class N"].
    #[arg(long, value_delimiter = ',')]
    class_names: Option<Vec<String>>,
    /// Also write `samples.npz` for the ADM evaluator (`arr_0`, uint8, NHWC).
    #[arg(long)]
    npz: bool,
    /// Side of the `.npz` images: a bicubic resize of the decoded floats (PyTorch's, as the paper
    /// does for 384 px models: 256) [default: no resize].
    #[arg(long, requires = "npz")]
    npz_size: Option<usize>,
    /// Output folder: images/, grid.png, samples.npz, sample.json.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Everything that decides the images (`sample.json`); a resumed job must match it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    checkpoint: PathBuf,
    tokenizer: PathBuf,
    classes: Vec<usize>,
    sampling: SampleConfig,
    batch_size: usize,
    grid: usize,
    parallel: usize,
    npz_size: Option<usize>,
}

fn png_name(index: usize, class: usize, seed: u64) -> String {
    format!("{index:06}_class{class:04}_seed{seed}.png")
}

fn read_png(path: &Path) -> Option<PixelImage> {
    let image = image::open(path).ok()?;
    Some(PixelImage::from_dynamic(&image, if image.color().has_color() { 3 } else { 1 }))
}

/// Runs `par sample`.
pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    let sampling = args.sampling.config(args.seed);
    sampling
        .validate()
        .map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<SampleArgs>()))?;
    par_app::check_positive("batch-size", args.batch_size)?;
    for (flag, value) in [
        ("per-class", args.per_class),
        ("image-size", args.image_size),
        ("npz-size", args.npz_size),
    ] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let out = OutputDir::check(&args.out, "--out")?;
    let backend = args.device.sampling_backend()?;
    let device = args.device.with_backend(backend).device()?;
    let tokenizer = args.tokenizer.load(&device)?;
    let factor = tokenizer.config().downsample_factor();
    // Zero-shot higher resolution: the grid follows --image-size.
    let model_args = match args.image_size {
        Some(px) if px % factor != 0 => {
            invalid!("--image-size {px} is not a multiple of the tokenizer's factor {factor}")
        }
        Some(px) => ModelArgs { grid: Some(px / factor), ..args.model.clone() },
        None => args.model.clone(),
    };
    let model = model_args.load(&args.checkpoint, &device)?;
    // The image tokenizer decodes L×L grids: a video model's frames must not be dropped.
    model.config().expect_image("par sample (it decodes with the image tokenizer)")?;
    let config = model.config().clone();
    if config.vocab_size != tokenizer.config().codebook_size {
        invalid!(
            "{} has {} codes, the tokenizer {} entries",
            args.checkpoint.display(),
            config.vocab_size,
            tokenizer.config().codebook_size
        );
    }
    let classes: Vec<usize> = match (&args.classes, args.per_class) {
        (Some(c), _) => c.clone(),
        (None, Some(k)) => {
            (0..config.num_classes).flat_map(|c| std::iter::repeat_n(c, k)).collect()
        }
        (None, None) => invalid!("give --classes C1,C2,… or --per-class K"),
    };
    if classes.is_empty() {
        invalid!("--classes: no class ids");
    }
    if let Some(names) = args.class_names.as_ref().filter(|n| n.len() != config.num_classes) {
        invalid!(
            "--class-names: {} names for a model of {} classes",
            names.len(),
            config.num_classes
        );
    }
    if let Some(&c) = classes.iter().find(|&&c| c >= config.num_classes) {
        invalid!("--classes: class {c} is outside the model's {} classes", config.num_classes);
    }
    let settings = Settings {
        checkpoint: args.checkpoint.clone(),
        tokenizer: args.tokenizer.tokenizer.clone(),
        classes: classes.clone(),
        sampling: sampling.clone(),
        batch_size: args.batch_size,
        grid: config.grid_size,
        parallel: config.parallel,
        npz_size: args.npz_size,
    };
    let (dir, manifest) = (out.path().to_path_buf(), out.path().join("sample.json"));
    let images_dir = dir.join("images");
    let npz_dir = dir.join("images_npz");
    if manifest.is_file() {
        let previous: Settings = serde_json::from_slice(&std::fs::read(&manifest).input()?)
            .with_context(|| format!("{}: not a sample job", manifest.display()))
            .input()?;
        let started = std::fs::read_dir(&images_dir).is_ok_and(|mut d| d.next().is_some());
        if previous != settings && started {
            par_app::invalid!(
                "{} holds a sampling job with other settings ({}); run it with the same flags to finish it, or choose another --out",
                dir.display(),
                manifest.display()
            );
        }
    }
    std::fs::create_dir_all(&images_dir).input()?;
    par_store::write_atomic(&manifest, &serde_json::to_vec_pretty(&settings)?)
        .with_context(|| format!("writing {}", manifest.display()))?;
    out.keep();

    // Batches of fixed composition: a batch whose files all exist is done; any other is
    // generated whole, so a resumed job writes the same bytes as an uninterrupted one.
    let sampler = par_app::Sampler::for_backend(backend, &model);
    let n = classes.len();
    let grid = config.grid_size;
    let progress = bar(n as u64, "sample");
    let mut done_here = 0usize;
    let t0 = std::time::Instant::now();
    for start in (0..n).step_by(args.batch_size) {
        let end = (start + args.batch_size).min(n);
        let names: Vec<String> = (start..end).map(|i| png_name(i, classes[i], args.seed)).collect();
        let finished = names.iter().all(|f| {
            images_dir.join(f).is_file() && (args.npz_size.is_none() || npz_dir.join(f).is_file())
        });
        if finished {
            progress.inc((end - start) as u64);
            continue;
        }
        if stop_flag().load(std::sync::atomic::Ordering::SeqCst) {
            return Err(par_train::TrainError::Interrupted { step: start }.into());
        }
        let streams: Vec<u64> = (start as u64..end as u64).collect();
        let codes = sampler.sample(&classes[start..end], &streams, &sampling)?;
        let flat: Vec<i64> = codes.iter().flatten().map(|&c| c as i64).collect();
        // One decoder pass: the PNGs at the decoder's size and, with --npz-size, the resized copy.
        let sizes: Vec<Option<usize>> =
            std::iter::once(None).chain(args.npz_size.map(Some)).collect();
        let sets = tokenizer.decode_images_at(&flat, end - start, grid, grid, 16, &sizes)?;
        for (image, name) in sets[0].iter().zip(&names) {
            let path = images_dir.join(name);
            par_store::write_atomic(&path, &image.to_png()?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(resized) = sets.get(1) {
            std::fs::create_dir_all(&npz_dir)?;
            for (image, name) in resized.iter().zip(&names) {
                let path = npz_dir.join(name);
                par_store::write_atomic(&path, &image.to_png()?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        done_here += end - start;
        progress.inc((end - start) as u64);
    }
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();

    // The grid: a labelled row per class (at most 8 images each), tiles enlarged to ≥ 96 px.
    let class_names: Vec<String> = match &args.class_names {
        Some(names) => names.clone(),
        None => (0..config.num_classes).map(|c| format!("class {c}")).collect(),
    };
    let mut rows: Vec<(String, Vec<PixelImage>)> = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let image = read_png(&images_dir.join(png_name(i, c, args.seed)))
            .with_context(|| format!("reading image {i}"))?;
        match rows.iter().position(|(label, _)| *label == class_names[c]) {
            Some(r) if rows[r].1.len() < 8 => rows[r].1.push(image),
            Some(_) => {}
            None if rows.len() < 32 => rows.push((class_names[c].clone(), vec![image])),
            None => {}
        }
    }
    let side = rows[0].1[0].width.max(1);
    let scale = 96usize.div_ceil(side).max(1);
    par_app::plot::labelled_grid_png(
        &dir.join("grid.png"),
        &format!(
            "{}: {} image(s), guidance {}, {} steps per image",
            args.checkpoint.file_name().unwrap_or_default().to_string_lossy(),
            n,
            args.sampling.cfg_scale,
            model.schedule().num_steps()
        ),
        &rows,
        scale,
    )?;
    if args.npz {
        // Streamed image by image from the PNGs: a 50,000-image set never sits in memory.
        let source = if args.npz_size.is_some() { &npz_dir } else { &images_dir };
        let path = dir.join("samples.npz");
        let mut writer: Option<par_data::npz::NpzImageWriter> = None;
        for (i, &c) in classes.iter().enumerate() {
            let image = read_png(&source.join(png_name(i, c, args.seed)))
                .with_context(|| format!("reading image {i}"))?;
            if writer.is_none() {
                writer = Some(par_data::npz::NpzImageWriter::create(
                    &path,
                    n,
                    image.height,
                    image.width,
                )?);
            }
            writer.as_mut().expect("created above").push(&image)?;
        }
        if let Some(w) = writer {
            w.finish()?;
        }
    }
    eprintln!(
        "{n} image(s) of {}×{} px ({} generated now in {seconds:.1} s, {} decode steps each, backend {backend}) → {}",
        grid * factor,
        grid * factor,
        done_here,
        model.schedule().num_steps(),
        dir.display()
    );
    Ok(())
}
