//! `par sample`: checkpoint(s) → images in one command: one PNG per image (named by index,
//! class and seed), a grid with a labelled row per class, and optionally the ADM evaluator's
//! `.npz`. Resumable: a killed 50,000-image job continues without redoing finished batches and
//! writes the same files as an uninterrupted one.

use std::path::{Path, PathBuf};

use anyhow::Context;
use par_app::limits::MAX_IMAGES;
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
    /// Fingerprints of the checkpoint, the tokenizer and the config files: a resumed job
    /// refuses a file that changed since it started (par_store::fingerprint).
    #[serde(default)]
    inputs: par_store::InputFingerprints,
}

fn png_name(index: usize, class: usize, seed: u64) -> String {
    format!("{index:06}_class{class:04}_seed{seed}.png")
}

fn read_png(path: &Path) -> anyhow::Result<PixelImage> {
    let image = image::open(path).with_context(|| {
        format!(
            "{}: not a readable image; delete it and run the job again to regenerate it",
            path.display()
        )
    })?;
    Ok(PixelImage::from_dynamic(&image, if image.color().has_color() { 3 } else { 1 }))
}

/// Whether `path` holds a whole PNG (a finished image; a damaged or truncated one is made
/// again): its header parses and it ends with the `IEND` chunk. Cheap: the header and the last
/// 8 bytes are read, not the pixels.
fn png_ok(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const IEND: [u8; 8] = [b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    let header_ok = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .is_ok_and(|r| r.format() == Some(image::ImageFormat::Png) && r.into_dimensions().is_ok());
    let mut tail = [0u8; 8];
    header_ok
        && std::fs::File::open(path)
            .and_then(|mut f| {
                f.seek(SeekFrom::End(-8))?;
                f.read_exact(&mut tail)
            })
            .is_ok_and(|()| tail == IEND)
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
    for (flag, value) in [("image-size", args.image_size), ("npz-size", args.npz_size)] {
        if let Some(v) = value {
            par_app::limits::check_at_most(flag, v, par_data::MAX_IMAGE_SIZE, "pixels per side")?;
        }
    }
    par_app::limits::check_at_most("batch-size", args.batch_size, MAX_IMAGES, "images per job")?;
    let inputs = [
        ("--checkpoint", Some(args.checkpoint.as_path())),
        ("--model-config", args.model.model_config.as_deref()),
        ("--tokenizer", Some(args.tokenizer.tokenizer.as_path())),
        ("--tokenizer-config", args.tokenizer.tokenizer_config.as_deref()),
    ];
    let out = OutputDir::check(&args.out, "--out", &inputs)?;
    let backend = args.device.sampling_backend()?;
    let device = args.device.with_backend(backend).device()?;
    let tokenizer = args.tokenizer.load(&device)?;
    let factor = tokenizer.config().downsample_factor();
    // Zero-shot higher resolution: the grid follows --image-size.
    let model_args = match args.image_size {
        Some(px) if px % factor != 0 => {
            invalid!("--image-size {px} is not a multiple of the tokenizer's factor {factor}")
        }
        Some(px) if px / factor > par_model::MAX_GRID_SIZE => invalid!(
            "--image-size {px} is a grid of {} codes with the tokenizer's factor {factor}, above the supported {}",
            px / factor,
            par_model::MAX_GRID_SIZE
        ),
        Some(px) if args.model.grid.is_some_and(|g| g != px / factor) => invalid!(
            "--image-size {px} is a grid of {} codes with the tokenizer's factor {factor}, but --grid is {}; give one of them",
            px / factor,
            args.model.grid.unwrap_or(0)
        ),
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
            let n = config.num_classes.checked_mul(k).filter(|&n| n <= MAX_IMAGES);
            if n.is_none() {
                invalid!(
                    "--per-class {k}: {k} images of each of {} classes is more than the {MAX_IMAGES} images one job makes; split the set over several jobs",
                    config.num_classes
                );
            }
            (0..config.num_classes).flat_map(|c| std::iter::repeat_n(c, k)).collect()
        }
        (None, None) => invalid!("give --classes C1,C2,… or --per-class K"),
    };
    if classes.is_empty() {
        invalid!("--classes: no class ids");
    }
    par_app::limits::check_at_most("classes", classes.len(), MAX_IMAGES, "images per job")?;
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
    check_sizes(args, backend, &config, &tokenizer, classes.len())?;
    let settings = Settings {
        checkpoint: args.checkpoint.clone(),
        tokenizer: args.tokenizer.tokenizer.clone(),
        classes: classes.clone(),
        sampling: sampling.clone(),
        batch_size: args.batch_size,
        grid: config.grid_size,
        parallel: config.parallel,
        npz_size: args.npz_size,
        inputs: par_store::InputFingerprints::of(inputs.iter().map(|(f, p)| (*f, *p))).input()?,
    };
    let job = Job { args, dir: out.path().to_path_buf(), settings, factor };
    match job.claim()? {
        Claim::Finished => {
            out.keep();
            eprintln!(
                "the sampling job in {} is already finished ({} images); nothing to do",
                job.dir.display(),
                classes.len()
            );
            Ok(())
        }
        Claim::Go { fresh } => {
            let result = job.generate(backend, &model, &tokenizer);
            if result.is_err() && !job.has_images() {
                // Nothing usable was made: leave nothing this job created.
                job.discard(fresh);
            } else {
                out.keep();
            }
            result
        }
    }
}

/// Sizes the flags imply, against the machine, before anything is allocated or computed: the
/// decode's KV cache and scores for a batch, the tokenizer's activations for a decoder batch (and
/// the resized copy), and the `.npz` on the output's disk.
fn check_sizes(
    args: &SampleArgs,
    backend: par_device::Backend,
    config: &par_model::ParTransformerConfig,
    tokenizer: &par_tokenizer::VqTokenizer,
    images: usize,
) -> anyhow::Result<()> {
    let batch = args.batch_size.min(images);
    let rows = if args.sampling.cfg_scale > 1.0 { 2 * batch } else { batch };
    par_app::limits::check_device_memory(
        backend,
        "--batch-size/--image-size",
        &format!("sampling {batch} image(s) of {0}×{0} codes at once", config.grid_size),
        config.sampling_bytes(rows),
    )?;
    let tok = tokenizer.config();
    let side = config.grid_size * tok.downsample_factor();
    let decode = tok.activation_bytes(DECODE_BATCH.min(images), side);
    let resize = args.npz_size.map_or(0.0, |s| 12.0 * (DECODE_BATCH.min(images) * s * s) as f64);
    par_app::limits::check_device_memory(
        backend,
        if args.npz_size.is_some() { "--image-size/--npz-size" } else { "--image-size" },
        &format!("decoding images of {side}×{side} px"),
        decode + resize,
    )?;
    if args.npz {
        let s = args.npz_size.unwrap_or(side);
        let bytes = images as f64 * (s * s * tok.image_channels.max(3)) as f64;
        par_app::limits::check_disk(
            "--npz-size/--per-class",
            &format!("samples.npz ({images} images of {s}×{s} px)"),
            bytes,
            &args.out,
        )?;
        eprintln!("samples.npz will hold {} of images", par_app::limits::human_bytes(bytes));
    }
    Ok(())
}

/// Images the tokenizer decodes per forward.
const DECODE_BATCH: usize = 16;

/// A sampling job in its output folder.
struct Job<'a> {
    args: &'a SampleArgs,
    dir: PathBuf,
    settings: Settings,
    factor: usize,
}

/// What [`Job::claim`] found.
enum Claim {
    /// Every output of these settings is there: nothing to do.
    Finished,
    /// Generate (`fresh`: this job created the manifest and the image folders).
    Go { fresh: bool },
}

impl Job<'_> {
    fn manifest(&self) -> PathBuf {
        self.dir.join("sample.json")
    }

    fn images_dir(&self) -> PathBuf {
        self.dir.join("images")
    }

    fn npz_dir(&self) -> PathBuf {
        self.dir.join("images_npz")
    }

    fn has_images(&self) -> bool {
        std::fs::read_dir(self.images_dir()).is_ok_and(|mut d| d.next().is_some())
    }

    fn names(&self) -> Vec<String> {
        let classes = &self.settings.classes;
        (0..classes.len()).map(|i| png_name(i, classes[i], self.args.seed)).collect()
    }

    /// Checks the folder against a job already there and writes the manifest: another job's
    /// settings or a changed input are refused (exit 2), a finished job with these settings is
    /// left untouched.
    fn claim(&self) -> anyhow::Result<Claim> {
        let manifest = self.manifest();
        let fresh = !manifest.is_file();
        if !fresh {
            let previous: Settings = serde_json::from_slice(&std::fs::read(&manifest).input()?)
                .with_context(|| format!("{}: not a sample job", manifest.display()))
                .input()?;
            if self.has_images() {
                // The inputs by content: a file given under another spelling, or moved, is the
                // same input; one retrained in place is not.
                let comparable = if previous.inputs.is_recorded() {
                    previous.inputs.check_unchanged(&self.settings.inputs, &self.dir).input()?;
                    Settings {
                        checkpoint: self.settings.checkpoint.clone(),
                        tokenizer: self.settings.tokenizer.clone(),
                        inputs: self.settings.inputs.clone(),
                        ..previous.clone()
                    }
                } else {
                    eprintln!(
                        "warning: {} was started by an earlier version that recorded no input fingerprints; its inputs are compared by path only",
                        manifest.display()
                    );
                    Settings { inputs: self.settings.inputs.clone(), ..previous.clone() }
                };
                par_train::checkpoint::same_settings(&self.dir, "", &comparable, &self.settings)
                    .map_err(|e| match e {
                        par_train::TrainError::ResumeMismatch { field, checkpoint, now, .. } => {
                            par_app::InvalidInput(format!(
                                "{} holds a sampling job made with {field} = {checkpoint} (this job: {now}); run it with the same flags to finish it, or choose another --out",
                                self.dir.display()
                            ))
                        }
                        other => par_app::InvalidInput(other.to_string()),
                    })?;
                if self.finished() {
                    return Ok(Claim::Finished);
                }
            }
        }
        std::fs::create_dir_all(self.images_dir()).input()?;
        par_store::write_atomic(&manifest, &serde_json::to_vec_pretty(&self.settings)?)
            .with_context(|| format!("writing {}", manifest.display()))?;
        Ok(Claim::Go { fresh })
    }

    /// Whether every file of the job is there: the images, the grid and, with `--npz`, the
    /// `.npz` (written last, atomically; once it is there the resized copies it was built from
    /// are not needed).
    fn finished(&self) -> bool {
        let images = self.images_dir();
        self.dir.join("grid.png").is_file()
            && (!self.args.npz || self.dir.join("samples.npz").is_file())
            && self.names().iter().all(|f| png_ok(&images.join(f)))
    }

    /// After a failure that left no image: removes what the job created (the manifest and the
    /// image folders; `OutputDir` then removes the output folder if it made it).
    fn discard(&self, fresh: bool) {
        for dir in [self.npz_dir(), self.images_dir()] {
            let _ = std::fs::remove_dir(dir);
        }
        if fresh {
            let _ = std::fs::remove_file(self.manifest());
        }
    }

    fn generate(
        &self,
        backend: par_device::Backend,
        model: &par_model::ParTransformer,
        tokenizer: &par_tokenizer::VqTokenizer,
    ) -> anyhow::Result<()> {
        let args = self.args;
        let (dir, images_dir, npz_dir) = (&self.dir, self.images_dir(), self.npz_dir());
        let classes = &self.settings.classes;
        let sampling = &self.settings.sampling;
        let names = self.names();
        // Batches of fixed composition: a batch whose files all exist is done; any other is
        // generated whole, so a resumed job writes the same bytes as an uninterrupted one.
        let sampler = par_app::Sampler::for_backend(backend, model);
        let n = classes.len();
        let grid = self.settings.grid;
        let progress = bar(n as u64, "sample");
        let mut done_here = 0usize;
        let t0 = std::time::Instant::now();
        for start in (0..n).step_by(args.batch_size) {
            let end = (start + args.batch_size).min(n);
            let names = &names[start..end];
            let finished = names.iter().all(|f| {
                png_ok(&images_dir.join(f)) && (args.npz_size.is_none() || png_ok(&npz_dir.join(f)))
            });
            if finished {
                progress.inc((end - start) as u64);
                continue;
            }
            if let Some(f) =
                names.iter().find(|f| images_dir.join(f).is_file() && !png_ok(&images_dir.join(f)))
            {
                let path = images_dir.join(f);
                progress.suspend(|| {
                    eprintln!(
                        "warning: {} is not a readable PNG; its batch is made again",
                        path.display()
                    )
                });
            }
            if stop_flag().load(std::sync::atomic::Ordering::SeqCst) {
                return Err(par_train::TrainError::Interrupted { step: start }.into());
            }
            let streams: Vec<u64> = (start as u64..end as u64).collect();
            let codes = sampler.sample(&classes[start..end], &streams, sampling)?;
            let flat: Vec<i64> = codes.iter().flatten().map(|&c| c as i64).collect();
            // One decoder pass: the PNGs at the decoder's size and, with --npz-size, the resized
            // copy.
            let sizes: Vec<Option<usize>> =
                std::iter::once(None).chain(args.npz_size.map(Some)).collect();
            let sets =
                tokenizer.decode_images_at(&flat, end - start, grid, grid, DECODE_BATCH, &sizes)?;
            for (image, name) in sets[0].iter().zip(names) {
                let path = images_dir.join(name);
                par_store::write_atomic(&path, &image.to_png()?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(resized) = sets.get(1) {
                std::fs::create_dir_all(&npz_dir)?;
                for (image, name) in resized.iter().zip(names) {
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
        self.write_grid(model)?;
        if args.npz {
            // Streamed image by image from the PNGs: a 50,000-image set never sits in memory.
            let source = if args.npz_size.is_some() { &npz_dir } else { &images_dir };
            let path = dir.join("samples.npz");
            let mut writer: Option<par_data::npz::NpzImageWriter> = None;
            for name in &names {
                let image = read_png(&source.join(name))?;
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
            grid * self.factor,
            grid * self.factor,
            done_here,
            model.schedule().num_steps(),
            dir.display()
        );
        Ok(())
    }

    /// The grid: a labelled row per class (at most 8 images each), tiles enlarged to ≥ 96 px.
    fn write_grid(&self, model: &par_model::ParTransformer) -> anyhow::Result<()> {
        let (args, config) = (self.args, model.config());
        let class_names: Vec<String> = match &args.class_names {
            Some(names) => names.clone(),
            None => (0..config.num_classes).map(|c| format!("class {c}")).collect(),
        };
        let mut rows: Vec<(String, Vec<PixelImage>)> = Vec::new();
        for (&c, name) in self.settings.classes.iter().zip(self.names()) {
            let label = &class_names[c];
            let slot = rows.iter().position(|(l, _)| l == label);
            let wanted = match slot {
                Some(r) => rows[r].1.len() < 8,
                None => rows.len() < 32,
            };
            if !wanted {
                continue;
            }
            let image = read_png(&self.images_dir().join(name))?;
            match slot {
                Some(r) => rows[r].1.push(image),
                None => rows.push((label.clone(), vec![image])),
            }
        }
        let side = rows[0].1[0].width.max(1);
        let scale = 96usize.div_ceil(side).max(1);
        par_app::plot::labelled_grid_png(
            &self.dir.join("grid.png"),
            &format!(
                "{}: {} image(s), guidance {}, {} steps per image",
                args.checkpoint.file_name().unwrap_or_default().to_string_lossy(),
                self.settings.classes.len(),
                args.sampling.cfg_scale,
                model.schedule().num_steps()
            ),
            &rows,
            scale,
        )?;
        Ok(())
    }
}
