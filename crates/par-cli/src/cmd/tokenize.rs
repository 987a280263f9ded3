//! `par tokenize`: pre-tokenizes an ImageFolder tree or IDX split with ten-crop (or centre +
//! flip) into a compact code store and/or the LlamaGen layout; resumable.

use std::path::PathBuf;

use par_app::{InputResult, OutputDir, invalid};
use par_data::{Augmentation, IdxImages, IdxSplit, ImageFolder};
use par_device::DeviceArgs;
use par_tokenize::{OutputFormat, Source, TokenizeSettings, tokenize};

use super::decode::TokenizerArgs;
use crate::progress::BarMonitor;

use par_data::FASHION_MNIST_CLASSES;

/// IDX split names.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Split {
    Train,
    Test,
}

/// Arguments of `par tokenize`.
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// ImageFolder tree: ROOT/CLASS/…/IMAGE, class id = index of the sorted folder name.
    #[arg(long, conflicts_with = "idx", required_unless_present = "idx")]
    images: Option<PathBuf>,
    /// MNIST-style directory of IDX files.
    #[arg(long)]
    idx: Option<PathBuf>,
    /// IDX split.
    #[arg(long, value_enum, default_value = "train", requires = "idx")]
    split: Split,
    /// Class names of an IDX set (comma-separated) [default: Fashion-MNIST's, or 0–9 for a path
    /// without "fashion"].
    #[arg(long, value_delimiter = ',', requires = "idx")]
    class_names: Option<Vec<String>>,
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// Side of the encoded views [default: 32 for 1-channel tokenizers, 256 otherwise].
    #[arg(long)]
    image_size: Option<usize>,
    /// Ten views per image (4 corners + centre, and mirrored) of the ADM centre crop to
    /// image_size · crop_range; without it: centre crop + mirror (2 views).
    #[arg(long)]
    ten_crop: bool,
    /// Crop range of --ten-crop.
    #[arg(long, default_value_t = 1.1)]
    crop_range: f64,
    /// Output files.
    #[arg(long, value_parser = par_app::choice::<par_tokenize::OutputFormat>(&par_tokenize::OutputFormat::NAMES), default_value = "compact")]
    format: OutputFormat,
    /// Prefix of the LlamaGen folders ({name}_codes, {name}_labels) [default: imagenet{size} for
    /// --images, {split}{size} for --idx].
    #[arg(long)]
    name: Option<String>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Images encoded per forward (each with its views).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Images per resumable chunk.
    #[arg(long, default_value_t = 1024)]
    chunk_size: usize,
    /// Use only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Keep class folders without images (their ids stay reserved).
    #[arg(long)]
    allow_empty_classes: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par tokenize`.
pub fn run(args: &TokenizeArgs) -> anyhow::Result<()> {
    par_app::check_positive("batch-size", args.batch_size)?;
    par_app::check_positive("chunk-size", args.chunk_size)?;
    par_app::check_float("crop-range", args.crop_range, Some(1.0), Some(4.0))?;
    for (flag, value) in [("image-size", args.image_size), ("limit", args.limit)] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let inputs = [
        ("--images", args.images.as_deref()),
        ("--idx", args.idx.as_deref()),
        ("--tokenizer", Some(args.tokenizer.tokenizer.as_path())),
        ("--tokenizer-config", args.tokenizer.tokenizer_config.as_deref()),
    ];
    let out = OutputDir::check(&args.out, "--out", &inputs)?;
    let device = args.device.device()?;
    let model = args.tokenizer.load(&device)?;
    let channels = model.config().image_channels;
    let factor = model.config().downsample_factor();
    let size = args.image_size.unwrap_or(if channels == 1 { 32 } else { 256 });
    if size > par_data::MAX_IMAGE_SIZE {
        invalid!("--image-size {size} is above the supported {} px", par_data::MAX_IMAGE_SIZE);
    }
    if !size.is_multiple_of(factor) {
        invalid!(
            "--image-size {size} is not a multiple of the tokenizer's down-sampling factor {factor}"
        );
    }
    let (source, default_name) = match (&args.images, &args.idx) {
        (Some(root), _) => {
            let mut folder = ImageFolder::scan(root, args.allow_empty_classes).input()?;
            if let Some(n) = args.limit {
                folder.samples.truncate(n);
            }
            (Source::Folder(folder), format!("imagenet{size}"))
        }
        (None, Some(dir)) => {
            let split = match args.split {
                Split::Train => IdxSplit::Train,
                Split::Test => IdxSplit::Test,
            };
            let images =
                IdxImages::open(dir, split).input()?.take(args.limit.unwrap_or(usize::MAX));
            let classes = match &args.class_names {
                Some(c) => c.clone(),
                None if dir.to_string_lossy().to_lowercase().contains("fashion") => {
                    FASHION_MNIST_CLASSES.map(String::from).to_vec()
                }
                None => (0..10).map(|i| i.to_string()).collect(),
            };
            if let Some(l) = images.labels.iter().find(|&&l| l as usize >= classes.len()) {
                invalid!("{}: label {l} but {} class names", dir.display(), classes.len());
            }
            let split_name = if matches!(args.split, Split::Train) { "train" } else { "test" };
            (Source::Idx { dir: dir.clone(), images, classes }, format!("{split_name}{size}"))
        }
        (None, None) => invalid!("give --images DIR or --idx DIR"),
    };
    let augmentation = if args.ten_crop {
        Augmentation::TenCrop { crop_range: args.crop_range }
    } else {
        Augmentation::CenterFlip
    };
    let n = match &source {
        Source::Folder(f) => f.samples.len(),
        Source::Idx { images, .. } => images.len(),
    };
    // What the chunk and batch sizes imply: a chunk's views sit in memory, a batch of views
    // goes through the encoder at once.
    let views = augmentation.views();
    let chunk = args.chunk_size.min(n.max(1));
    par_app::limits::check_memory(
        "--chunk-size/--image-size",
        &format!("a chunk of {chunk} images × {views} views of {size}×{size} px"),
        (chunk * views) as f64 * (channels * size * size) as f64 * 4.0,
    )?;
    // The store on disk: its chunks and the final file exist together before the chunks go.
    let grid = size / factor;
    let code_bytes = if model.config().codebook_size <= 1 << 16 { 2.0 } else { 4.0 };
    let store = n as f64 * views as f64 * (grid * grid) as f64 * code_bytes;
    let copies = if matches!(args.format, OutputFormat::Compact) { 2.0 } else { 6.0 };
    par_app::limits::check_disk(
        "--out",
        &format!("the code store of {n} images × {views} views of {grid}×{grid} codes"),
        copies * store,
        &args.out,
    )?;
    let batch = args.batch_size.min(chunk);
    par_app::limits::check_device_memory(
        args.device.backend()?,
        "--batch-size/--image-size",
        &format!("encoding {batch} images × {views} views of {size}×{size} px at once"),
        model.config().activation_bytes(batch * views, size),
    )?;
    // The IDX files and the tokenizer's files, by content (a folder's images are fingerprinted
    // chunk by chunk as they are read).
    let idx_files = match &args.idx {
        Some(dir) => {
            let split =
                if matches!(args.split, Split::Train) { IdxSplit::Train } else { IdxSplit::Test };
            IdxImages::files(dir, split).input()?.to_vec()
        }
        None => Vec::new(),
    };
    let fingerprints = par_store::InputFingerprints::of(
        inputs[2..].iter().map(|(f, p)| (*f, *p)).chain(
            idx_files
                .iter()
                .zip(["--idx images", "--idx labels"])
                .map(|(p, f)| (f, Some(p.as_path()))),
        ),
    )
    .input()?;
    let settings = TokenizeSettings {
        image_size: size,
        augmentation,
        format: args.format,
        name: args.name.clone().unwrap_or(default_name),
        chunk_size: args.chunk_size,
        source: match &source {
            Source::Folder(f) => f.root.display().to_string(),
            Source::Idx { dir, .. } => format!("{} ({:?})", dir.display(), args.split),
        },
        source_images: match &source {
            Source::Folder(f) => f.samples.len(),
            Source::Idx { images, .. } => images.len(),
        },
        tokenizer: args.tokenizer.tokenizer.clone(),
        tokenizer_fingerprint: 0, // filled in by the job
        inputs: fingerprints,
        source_listing: String::new(), // filled in by the job
    };
    let monitor = BarMonitor::new("tokenize");
    let done = tokenize(
        &source,
        &model,
        &settings,
        &args.out,
        args.batch_size,
        args.strict,
        &device,
        &monitor,
    )
    .map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<TokenizeArgs>()))?;
    monitor.bar().finish();
    out.keep();
    if done.already_finished() {
        eprintln!(
            "the job in {} is already finished with these settings and inputs; nothing to do",
            args.out.display()
        );
    }
    let report = done.report();
    eprintln!(
        "{} images × {} views of {}×{} codes → {} ({} skipped; {:.1} images/s)",
        report.num_images,
        report.views,
        report.grid[0],
        report.grid[1],
        args.out.display(),
        report.skipped.len(),
        report.images_per_second
    );
    Ok(())
}
