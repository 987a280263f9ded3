//! Pre-tokenization (`par tokenize`, docs/spec.md §5.1): images → views (ten-crop or centre +
//! flip) → VQ codes, written as a compact store and/or the LlamaGen layout.
//!
//! The job runs in chunks of `chunk_size` images. A finished chunk is a compact file in
//! `{out}/.tokenize/` (and, for the LlamaGen layout, its `.npy` files); a killed run skips the
//! finished chunks when started again with the same settings, and the final files are identical to
//! an uninterrupted run's (each chunk's content depends only on its images). Images are decoded in
//! parallel (rayon), views encoded in batches on the chosen device.
//!
//! Errors are `par_train::TrainError`, the error of every long job (settings, resume, I/O,
//! interruption), and progress goes to a `par_train::Monitor`.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use par_data::compact::{self, CompactHeader, CompactReader};
use par_data::llamagen::LlamaGenDirs;
use par_data::{Augmentation, DataError, IdxImages, ImageFolder, PixelImage, augment, load_image};
use par_tokenizer::VqTokenizer;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use par_train::checkpoint::{read_json, write_json};
use par_train::{Monitor, TrainError};

/// Where the images come from.
#[derive(Debug)]
pub enum Source {
    /// An ImageFolder tree.
    Folder(ImageFolder),
    /// An IDX split in memory (MNIST, Fashion-MNIST) with its class names.
    Idx {
        /// The directory, for the report.
        dir: PathBuf,
        /// The images.
        images: IdxImages,
        /// Class names (10 for (Fashion-)MNIST).
        classes: Vec<String>,
    },
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Folder(f) => f.samples.len(),
            Source::Idx { images, .. } => images.len(),
        }
    }

    fn classes(&self) -> Vec<String> {
        match self {
            Source::Folder(f) => f.classes.clone(),
            Source::Idx { classes, .. } => classes.clone(),
        }
    }

    /// Image `i` with `channels` channels and its label.
    fn load(&self, i: usize, channels: usize) -> Result<(PixelImage, u32), DataError> {
        match self {
            Source::Folder(f) => {
                let (path, label) = &f.samples[i];
                Ok((load_image(path, channels)?, *label))
            }
            Source::Idx { images, .. } => {
                let im = images.image(i);
                let im = if channels == 3 {
                    PixelImage {
                        channels: 3,
                        data: im.data.iter().flat_map(|&v| [v, v, v]).collect(),
                        ..im
                    }
                } else {
                    im
                };
                Ok((im, images.labels[i] as u32))
            }
        }
    }

    fn path_of(&self, i: usize) -> String {
        match self {
            Source::Folder(f) => f.samples[i].0.display().to_string(),
            Source::Idx { dir, .. } => format!("{} image {i}", dir.display()),
        }
    }
}

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputFormat {
    /// `{out}/codes.parc` (docs/data.md).
    Compact,
    /// `{out}/{name}_codes/{idx}.npy` + `{out}/{name}_labels/{idx}.npy` (reference layout).
    Llamagen,
    /// Both.
    Both,
}

impl OutputFormat {
    /// Every value, in declaration order.
    pub const ALL: [OutputFormat; 3] =
        [OutputFormat::Compact, OutputFormat::Llamagen, OutputFormat::Both];
    /// Their names (as [`OutputFormat::name`] gives them; what `FromStr` accepts).
    pub const NAMES: [&'static str; 3] = ["compact", "llamagen", "both"];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Compact => "compact",
            OutputFormat::Llamagen => "llamagen",
            OutputFormat::Both => "both",
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    /// Parses a name of [`OutputFormat::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!("unknown OutputFormat `{s}` (one of {})", Self::NAMES.join(", "))
        })
    }
}

/// Settings of a pre-tokenization job (all but `batch_size` and `strict` must match to resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeSettings {
    /// Side of the encoded views in pixels.
    pub image_size: usize,
    /// Ten-crop or centre + flip.
    pub augmentation: Augmentation,
    /// Files to write.
    pub format: OutputFormat,
    /// Prefix of the LlamaGen folders (`{name}_codes`).
    pub name: String,
    /// Images per resumable chunk.
    pub chunk_size: usize,
    /// Source description (path).
    pub source: String,
    /// Images in the source.
    pub source_images: usize,
    /// The tokenizer checkpoint.
    pub tokenizer: PathBuf,
    /// Fingerprint of the tokenizer's weights (a resumed job refuses a retrained tokenizer);
    /// filled in by [`tokenize`].
    #[serde(default)]
    pub tokenizer_fingerprint: u64,
}

/// One skipped image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// `tokenize.json`: what the job wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeReport {
    /// The job's settings.
    pub settings: TokenizeSettings,
    /// Samples written.
    pub num_images: usize,
    /// Views per sample.
    pub views: usize,
    /// Code grid.
    pub grid: [usize; 2],
    /// Codebook entries.
    pub codebook_size: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Unreadable images left out (warned and counted).
    pub skipped: Vec<Skipped>,
    /// Wall time of this process, seconds.
    pub seconds: f64,
    /// Images per second of this process.
    pub images_per_second: f64,
}

const WORK_DIR: &str = ".tokenize";

/// An image's index and its views and label, or why it could not be read.
type Loaded = (usize, Result<(Vec<PixelImage>, u32), DataError>);

fn chunk_file(out: &Path, i: usize) -> PathBuf {
    out.join(WORK_DIR).join(format!("chunk-{i:06}.parc"))
}

fn data_err(e: DataError) -> TrainError {
    TrainError::Config(e.to_string())
}

/// A fingerprint of every weight of `model` (FNV-style over the f32 bit patterns).
fn weights_fingerprint(model: &VqTokenizer) -> Result<u64, TrainError> {
    let state = par_train::module_state::snapshot(model)?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (key, t) in &state.tensors {
        for b in key.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        for v in &t.values {
            h = (h ^ v.to_bits() as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    Ok(h)
}

/// Encodes views `[n, C, S, S]` (as `PixelImage`s) in batches; returns `n · h · w` codes.
fn encode_views(
    model: &VqTokenizer,
    views: &[PixelImage],
    batch: usize,
    device: &Device,
) -> Vec<u32> {
    let mut codes = Vec::new();
    for part in views.chunks(batch.max(1)) {
        let (c, s) = (part[0].channels, part[0].width);
        let data: Vec<f32> = part.iter().flat_map(|v| v.to_chw_signed()).collect();
        let x = Tensor::<4>::from_data(TensorData::new(data, [part.len(), c, s, s]), device);
        let ids = model.encode(x).into_data().try_into_vec_as::<i64>().expect("int codes");
        codes.extend(ids.into_iter().map(|v| v as u32));
    }
    codes
}

/// Runs (or resumes) a pre-tokenization job into `out`.
///
/// `strict` makes an unreadable image fatal; otherwise it is skipped with a warning on the
/// monitor and listed in the report. `batch_size` is in images (each contributes its views).
///
/// # Errors
///
/// [`TrainError`]: an output folder holding another job or a finished one, a fatal image error,
/// I/O; [`TrainError::Interrupted`] (step = chunks done) when `monitor.should_stop(images done)`
/// returns true before a chunk
/// (Ctrl-C; finished chunks are kept).
///
/// A job whose settings differ from an unfinished one in `out` is refused, naming the setting,
/// unless that job finished no chunk yet: then it is simply replaced (e.g. a `strict` run that
/// stopped at a corrupt image, rerun after the image was removed). A job that fails before
/// finishing a chunk leaves nothing in `out`.
#[allow(clippy::too_many_arguments)]
pub fn tokenize(
    source: &Source,
    model: &VqTokenizer,
    settings: &TokenizeSettings,
    out: &Path,
    batch_size: usize,
    strict: bool,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<TokenizeReport, TrainError> {
    let result = tokenize_in(source, model, settings, out, batch_size, strict, device, monitor);
    if result.is_err() && !has_chunks(out) {
        let _ = std::fs::remove_dir_all(out.join(WORK_DIR));
    }
    result
}

/// Whether an unfinished job in `out` has finished at least one chunk.
fn has_chunks(out: &Path) -> bool {
    std::fs::read_dir(out.join(WORK_DIR)).is_ok_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("chunk-"))
    })
}

#[allow(clippy::too_many_arguments)]
fn tokenize_in(
    source: &Source,
    model: &VqTokenizer,
    settings: &TokenizeSettings,
    out: &Path,
    batch_size: usize,
    strict: bool,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<TokenizeReport, TrainError> {
    let config = model.config().clone();
    let settings = &TokenizeSettings {
        tokenizer_fingerprint: weights_fingerprint(model)?,
        ..settings.clone()
    };
    let f = config.downsample_factor();
    if settings.image_size == 0
        || !settings.image_size.is_multiple_of(f)
        || settings.image_size > par_data::MAX_IMAGE_SIZE
    {
        return Err(TrainError::Setting {
            field: "image_size",
            reason: format!(
                "is {}: not a positive multiple of the tokenizer's down-sampling factor {f} up to {}",
                settings.image_size,
                par_data::MAX_IMAGE_SIZE
            ),
        });
    }
    for (field, value) in [("chunk_size", settings.chunk_size), ("batch_size", batch_size)] {
        if value == 0 {
            return Err(TrainError::Setting { field, reason: "must be at least 1, got 0".into() });
        }
    }
    if source.len() == 0 {
        return Err(TrainError::Config(format!("{}: no images", settings.source)));
    }
    let report_path = out.join(par_data::REPORT_FILE);
    if report_path.is_file() {
        return Err(TrainError::Config(format!(
            "{} already holds a finished job ({}); choose another output folder",
            out.display(),
            report_path.display()
        )));
    }
    let work = out.join(WORK_DIR);
    let manifest = work.join("manifest.json");
    if manifest.is_file() && has_chunks(out) {
        let previous: TokenizeSettings = read_json(&manifest)?;
        par_train::checkpoint::same_settings(&work, "", &previous, settings).map_err(|e| match e {
            TrainError::ResumeMismatch { field, checkpoint, now, .. } => TrainError::Config(format!(
                "{} holds an unfinished job made with {field} = {checkpoint} (this job: {now}); run it again with its settings to finish it, or delete {} to start afresh",
                out.display(),
                work.display()
            )),
            other => other,
        })?;
    } else {
        std::fs::create_dir_all(&work).map_err(|e| TrainError::io(&work, e))?;
        write_json(&manifest, settings)?;
    }
    let grid = settings.image_size / config.downsample_factor();
    let views = settings.augmentation.views();
    let classes = source.classes();
    let dirs = LlamaGenDirs::new(out, &settings.name);
    let n = source.len();
    let chunks = n.div_ceil(settings.chunk_size);
    let model = model.valid();
    monitor.start(0, n);
    let t0 = std::time::Instant::now();
    let (mut written, mut encoded_here) = (0usize, 0usize);
    let mut skipped: Vec<Skipped> = Vec::new();
    for c in 0..chunks {
        let range = c * settings.chunk_size..((c + 1) * settings.chunk_size).min(n);
        let file = chunk_file(out, c);
        if file.is_file() {
            let r = CompactReader::open(&file).map_err(data_err)?;
            written += r.header().num_images;
            skipped.extend(
                serde_json::from_value::<Vec<Skipped>>(r.header().meta["skipped"].clone())
                    .unwrap_or_default(),
            );
            monitor.update(range.end, "");
            continue;
        }
        if monitor.should_stop(range.start) {
            return Err(TrainError::Interrupted { step: c });
        }
        let loaded: Vec<Loaded> = range
            .clone()
            .into_par_iter()
            .map(|i| {
                (
                    i,
                    source.load(i, config.image_channels).map(|(im, l)| {
                        (augment(&im, settings.image_size, settings.augmentation), l)
                    }),
                )
            })
            .collect();
        let mut kept_views = Vec::new();
        let mut labels = Vec::new();
        let mut new_skips = Vec::new();
        for (i, r) in loaded {
            match r {
                Ok((v, l)) => {
                    kept_views.extend(v);
                    labels.push(l);
                }
                Err(e) if !strict => {
                    monitor.warn(&format!("skipping {e}"));
                    new_skips.push(Skipped { path: source.path_of(i), reason: e.to_string() });
                }
                Err(e) => {
                    return Err(TrainError::Config(format!(
                        "{e} (a job that is not strict would skip it)"
                    )));
                }
            }
        }
        let codes = encode_views(&model, &kept_views, batch_size * views, device);
        let header = CompactHeader {
            version: compact::VERSION,
            num_images: labels.len(),
            views,
            grid: [grid, grid],
            codebook_size: config.codebook_size,
            code_dtype: CompactHeader::dtype_for(config.codebook_size).into(),
            classes: classes.clone(),
            // The chunk's unreadable images travel with it, so a resumed job reports each once.
            meta: serde_json::json!({ "skipped": new_skips }),
        };
        if matches!(settings.format, OutputFormat::Llamagen | OutputFormat::Both) {
            let per = views * grid * grid;
            for (k, l) in labels.iter().enumerate() {
                dirs.write(written + k, &codes[k * per..(k + 1) * per], views, *l)
                    .map_err(data_err)?;
            }
        }
        let bytes = compact::encode(&file, &header, &labels, &codes).map_err(data_err)?;
        par_store::write_atomic(&file, &bytes).map_err(|e| TrainError::io(&file, e))?;
        written += labels.len();
        skipped.extend(new_skips);
        encoded_here += range.len();
        monitor.update(range.end, "");
    }
    if matches!(settings.format, OutputFormat::Compact | OutputFormat::Both) {
        // Streamed chunk by chunk: labels first (small), then each chunk's codes.
        let mut labels = Vec::with_capacity(written);
        for c in 0..chunks {
            labels.extend_from_slice(
                CompactReader::open(&chunk_file(out, c)).map_err(data_err)?.labels(),
            );
        }
        let header = CompactHeader {
            version: compact::VERSION,
            num_images: written,
            views,
            grid: [grid, grid],
            codebook_size: config.codebook_size,
            code_dtype: CompactHeader::dtype_for(config.codebook_size).into(),
            classes: classes.clone(),
            meta: serde_json::json!({
                "source": settings.source,
                "image_size": settings.image_size,
                "augmentation": settings.augmentation,
                "tokenizer": settings.tokenizer,
                "tokenizer_config": config,
            }),
        };
        let path = out.join(par_data::COMPACT_FILE);
        let mut writer =
            compact::StreamWriter::create(&path, &header, &labels).map_err(data_err)?;
        for c in 0..chunks {
            let r = CompactReader::open(&chunk_file(out, c)).map_err(data_err)?;
            writer
                .append(&r.read_range(0, r.header().num_images).map_err(data_err)?)
                .map_err(data_err)?;
        }
        writer.finish().map_err(data_err)?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let report = TokenizeReport {
        settings: settings.clone(),
        num_images: written,
        views,
        grid: [grid, grid],
        codebook_size: config.codebook_size,
        classes,
        skipped,
        seconds,
        images_per_second: if seconds > 0.0 { encoded_here as f64 / seconds } else { 0.0 },
    };
    write_json(&report_path, &report)?;
    std::fs::remove_dir_all(&work).map_err(|e| TrainError::io(&work, e))?;
    Ok(report)
}
