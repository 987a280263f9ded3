//! Pre-tokenization (`par tokenize`, docs/spec.md §5.1): images → views (ten-crop or centre +
//! flip) → VQ codes, written as a compact store and/or the LlamaGen layout; and clips → video
//! codes ([`tokenize_clips`], docs/video.md) through the same resumable job.
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
use par_data::{
    Augmentation, ClipSet, DataError, IdxImages, ImageFolder, PixelImage, VideoClip, augment,
    decode_image,
};
use par_store::{FileFingerprint, InputFingerprints};
use par_tokenizer::VqTokenizer;
use par_tokenizer::video::VideoTokenizer;
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

    /// Image `i` with `channels` channels and its label, and the fingerprint of its file (an
    /// image of a folder, under its path relative to the folder: read once, so what is hashed
    /// is what is decoded).
    fn load(
        &self,
        i: usize,
        channels: usize,
    ) -> (Result<(PixelImage, u32), DataError>, Option<FileFingerprint>) {
        match self {
            Source::Folder(f) => {
                let (path, label) = &f.samples[i];
                let bytes = match std::fs::read(path) {
                    Ok(b) => b,
                    Err(source) => {
                        return (Err(DataError::Io { path: path.clone(), source }), None);
                    }
                };
                let print = FileFingerprint::of_bytes(&relative(&f.root, path), &bytes);
                (decode_image(path, bytes, channels).map(|im| (im, *label)), Some(print))
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
                (Ok((im, images.labels[i] as u32)), None)
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
    /// Fingerprints of the job's input files that are not images of a folder (the tokenizer
    /// checkpoint and config, the IDX files): a resumed or re-run job refuses a changed one.
    /// The images of a folder are fingerprinted chunk by chunk as they are read.
    #[serde(default)]
    pub inputs: InputFingerprints,
    /// XXH3 of the source's file list (every file's path and size; empty for sources without
    /// files): a re-run of a finished job refuses files added, removed or resized since. Filled
    /// in by the job.
    #[serde(default)]
    pub source_listing: String,
}

/// One skipped image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// `tokenize.json`: what the job wrote (`S`: [`TokenizeSettings`] for images,
/// [`ClipTokenizeSettings`] for clips).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeReport<S = TokenizeSettings> {
    /// The job's settings.
    pub settings: S,
    /// Samples (images or clips) written.
    pub num_images: usize,
    /// Views per sample.
    pub views: usize,
    /// Code grid of one latent frame.
    pub grid: [usize; 2],
    /// Latent frames per view (1 for images).
    #[serde(default = "one")]
    pub frames: usize,
    /// Codebook entries.
    pub codebook_size: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Unreadable images or videos left out (warned and counted).
    pub skipped: Vec<Skipped>,
    /// XXH3-128 of the content fingerprints of every source file read, in order (empty for
    /// sources without files, e.g. IDX, whose files are in the settings' `inputs`).
    #[serde(default)]
    pub source_xxh3: String,
    /// Wall time of this process, seconds.
    pub seconds: f64,
    /// Images per second of this process.
    pub images_per_second: f64,
}

fn one() -> usize {
    1
}

/// What a pre-tokenization call did.
#[derive(Debug, Clone)]
pub enum Tokenized<S = TokenizeSettings> {
    /// The job ran (or finished after a resume): its report.
    Done(TokenizeReport<S>),
    /// The output folder already held this job, finished, with the same settings and inputs:
    /// nothing was read or written; its report.
    AlreadyFinished(TokenizeReport<S>),
}

impl<S> Tokenized<S> {
    /// The job's report.
    pub fn report(&self) -> &TokenizeReport<S> {
        match self {
            Tokenized::Done(r) | Tokenized::AlreadyFinished(r) => r,
        }
    }

    /// The job's report, owned.
    pub fn into_report(self) -> TokenizeReport<S> {
        match self {
            Tokenized::Done(r) | Tokenized::AlreadyFinished(r) => r,
        }
    }

    /// Whether the job was finished before this call.
    pub fn already_finished(&self) -> bool {
        matches!(self, Tokenized::AlreadyFinished(_))
    }
}

/// Settings of a clip pre-tokenization job (all must match to resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipTokenizeSettings {
    /// Frames per clip (17 in the paper).
    pub frames: usize,
    /// Frame rate the videos are resampled to (8 in the paper; 0 for clips made in memory).
    pub fps: f64,
    /// Side of the square frames in pixels (128 in the paper).
    pub size: usize,
    /// Seed of the random clip of each video.
    pub seed: u64,
    /// Clips per resumable chunk.
    pub chunk_size: usize,
    /// Source description (path).
    pub source: String,
    /// Clips in the source.
    pub source_clips: usize,
    /// The tokenizer checkpoint.
    pub tokenizer: PathBuf,
    /// Fingerprint of the tokenizer's weights; filled in by [`tokenize_clips`].
    #[serde(default)]
    pub tokenizer_fingerprint: u64,
    /// Fingerprints of the tokenizer checkpoint (and other input files besides the videos,
    /// which are fingerprinted chunk by chunk as they are read).
    #[serde(default)]
    pub inputs: InputFingerprints,
    /// XXH3 of the source's file list (every file's path and size; empty for sources without
    /// files): a re-run of a finished job refuses files added, removed or resized since. Filled
    /// in by the job.
    #[serde(default)]
    pub source_listing: String,
}

/// The settings of a job, as the resumable loop compares them.
trait JobSettings: Serialize + serde::de::DeserializeOwned + Clone + PartialEq {
    /// The fingerprints of the job's input files.
    fn inputs(&self) -> &InputFingerprints;
    /// These settings with the source's file-list fingerprint.
    fn with_listing(&self, listing: String) -> Self;
    /// The source's file-list fingerprint.
    fn listing(&self) -> &str;
    /// These settings with the paths (the source's, the tokenizer's and those inside the input
    /// fingerprints) of `other`: what is compared when the inputs were already compared by
    /// content.
    fn with_paths_of(&self, other: &Self) -> Self;
}

/// `JobSettings` for settings structs with `inputs`, `source_listing`, `source` and `tokenizer`
/// fields (images and clips alike).
macro_rules! job_settings {
    ($($settings:ty),*) => {$(
        impl JobSettings for $settings {
            fn inputs(&self) -> &InputFingerprints {
                &self.inputs
            }

            fn with_listing(&self, listing: String) -> Self {
                Self { source_listing: listing, ..self.clone() }
            }

            fn listing(&self) -> &str {
                &self.source_listing
            }

            fn with_paths_of(&self, other: &Self) -> Self {
                Self {
                    source: other.source.clone(),
                    tokenizer: other.tokenizer.clone(),
                    inputs: other.inputs.clone(),
                    ..self.clone()
                }
            }
        }
    )*};
}

job_settings!(TokenizeSettings, ClipTokenizeSettings);

/// Where the clips come from.
#[derive(Debug)]
pub enum ClipSource {
    /// One random clip of every video of a UCF-101-layout folder, decoded by ffmpeg (the clip of
    /// video `i` is drawn with `ClipSet::clip_seed(i, 0)`).
    Videos(ClipSet),
    /// Clips made in memory (e.g. moving Fashion-MNIST), with their class names and a
    /// description for the report.
    Memory {
        /// What they are.
        name: String,
        /// The clips; `class` indexes `classes`.
        clips: Vec<VideoClip>,
        /// Class names.
        classes: Vec<String>,
    },
}

const WORK_DIR: &str = ".tokenize";

/// One job's inputs and tokenizer, as the resumable chunk loop sees them.
trait Job: Sync {
    type Settings: JobSettings;
    /// Samples in the source.
    fn len(&self) -> usize;
    fn classes(&self) -> Vec<String>;
    /// The sample's file (or description), for warnings and the report.
    fn path_of(&self, i: usize) -> String;
    /// The sample's own file, if it has one (images of a folder, videos).
    fn file_of(&self, i: usize) -> Option<&Path>;
    /// The folder the samples' files are in (`None` for sources without files): the job records
    /// and lists them relative to it, so the same set given under another spelling of the
    /// folder is the same input.
    fn root(&self) -> Option<&Path>;
    /// Sample `i`'s views (flat tensors) and label, and the fingerprint of its file (when it has
    /// one and could be read; fingerprinted with its chunk, so a resumed job refuses a file
    /// changed since).
    fn load(&self, i: usize) -> Loaded;
    /// Codes of `views`, `batch` views per forward.
    fn encode(
        &self,
        views: &[Vec<f32>],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<u32>, TrainError>;
    fn views(&self) -> usize;
    /// Latent frames and the side of one frame's grid.
    fn grid(&self) -> (usize, usize);
    fn codebook_size(&self) -> usize;
    /// What goes into the store's header `meta` besides the skips.
    fn meta(&self, settings: &Self::Settings) -> serde_json::Value;
    /// Whether `codes.parc` is written, and the LlamaGen folders' prefix if they are.
    fn outputs(&self) -> (bool, Option<String>);
    /// Whether a job that is not strict skips an input failing with `e` (instead of stopping).
    fn skips(&self, e: &DataError) -> bool;
    /// The source, in words (errors name it).
    fn source(&self) -> String;
    /// The setting (flag) that names the source: `images` or `videos`.
    fn input_field(&self) -> &'static str;
}

/// A sample's views and label, or why it could not be read; and its file's fingerprint.
type Loaded = (Result<(Vec<Vec<f32>>, u32), DataError>, Option<FileFingerprint>);

/// `path` relative to `root` (as the job records it).
fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

fn chunk_file(out: &Path, i: usize) -> PathBuf {
    out.join(WORK_DIR).join(format!("chunk-{i:06}.parc"))
}

fn data_err(e: DataError) -> TrainError {
    TrainError::Config(e.to_string())
}

/// A fingerprint of every weight of `model` (FNV-style over the f32 bit patterns).
fn weights_fingerprint<M: burn::module::Module>(model: &M) -> Result<u64, TrainError> {
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

/// The image job: ten-crop or centre + flip views of each image, encoded by the VQ tokenizer.
struct ImageJob<'a> {
    source: &'a Source,
    model: VqTokenizer,
    settings: &'a TokenizeSettings,
}

impl Job for ImageJob<'_> {
    type Settings = TokenizeSettings;

    fn len(&self) -> usize {
        self.source.len()
    }

    fn classes(&self) -> Vec<String> {
        self.source.classes()
    }

    fn path_of(&self, i: usize) -> String {
        self.source.path_of(i)
    }

    fn file_of(&self, i: usize) -> Option<&Path> {
        match self.source {
            Source::Folder(f) => Some(&f.samples[i].0),
            Source::Idx { .. } => None,
        }
    }

    fn root(&self) -> Option<&Path> {
        match self.source {
            Source::Folder(f) => Some(&f.root),
            Source::Idx { .. } => None,
        }
    }

    fn load(&self, i: usize) -> Loaded {
        let (loaded, print) = self.source.load(i, self.model.config().image_channels);
        let views = loaded.map(|(im, label)| {
            let views = augment(&im, self.settings.image_size, self.settings.augmentation);
            (views.iter().map(PixelImage::to_chw_signed).collect(), label)
        });
        (views, print)
    }

    fn encode(
        &self,
        views: &[Vec<f32>],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<u32>, TrainError> {
        let (c, s) = (self.model.config().image_channels, self.settings.image_size);
        let mut codes = Vec::new();
        for part in views.chunks(batch.max(1)) {
            let data: Vec<f32> = part.concat();
            let x = Tensor::<4>::from_data(TensorData::new(data, [part.len(), c, s, s]), device);
            let ids = self.model.encode(x).into_data().try_into_vec_as::<i64>().expect("int codes");
            codes.extend(ids.into_iter().map(|v| v as u32));
        }
        Ok(codes)
    }

    fn views(&self) -> usize {
        self.settings.augmentation.views()
    }

    fn grid(&self) -> (usize, usize) {
        (1, self.settings.image_size / self.model.config().downsample_factor())
    }

    fn codebook_size(&self) -> usize {
        self.model.config().codebook_size
    }

    fn outputs(&self) -> (bool, Option<String>) {
        let format = self.settings.format;
        (
            matches!(format, OutputFormat::Compact | OutputFormat::Both),
            matches!(format, OutputFormat::Llamagen | OutputFormat::Both)
                .then(|| self.settings.name.clone()),
        )
    }

    /// Every unreadable image.
    fn skips(&self, _: &DataError) -> bool {
        true
    }

    fn source(&self) -> String {
        self.settings.source.clone()
    }

    fn input_field(&self) -> &'static str {
        match self.source {
            Source::Folder(_) => "images",
            Source::Idx { .. } => "idx",
        }
    }

    fn meta(&self, settings: &TokenizeSettings) -> serde_json::Value {
        serde_json::json!({
            "source": settings.source,
            "image_size": settings.image_size,
            "augmentation": settings.augmentation,
            "tokenizer": settings.tokenizer,
            "tokenizer_config": self.model.config(),
        })
    }
}

/// The clip job: one clip per video (or per in-memory clip), encoded by the video tokenizer.
struct ClipJob<'a> {
    source: &'a ClipSource,
    model: VideoTokenizer,
    settings: &'a ClipTokenizeSettings,
}

impl Job for ClipJob<'_> {
    type Settings = ClipTokenizeSettings;

    fn len(&self) -> usize {
        match self.source {
            ClipSource::Videos(set) => set.len(),
            ClipSource::Memory { clips, .. } => clips.len(),
        }
    }

    fn classes(&self) -> Vec<String> {
        match self.source {
            ClipSource::Videos(set) => set.folder().classes.clone(),
            ClipSource::Memory { classes, .. } => classes.clone(),
        }
    }

    fn path_of(&self, i: usize) -> String {
        match self.source {
            ClipSource::Videos(set) => set.folder().samples[i].0.display().to_string(),
            ClipSource::Memory { name, .. } => format!("{name} clip {i}"),
        }
    }

    fn file_of(&self, i: usize) -> Option<&Path> {
        match self.source {
            ClipSource::Videos(set) => Some(&set.folder().samples[i].0),
            ClipSource::Memory { .. } => None,
        }
    }

    fn root(&self) -> Option<&Path> {
        match self.source {
            ClipSource::Videos(set) => Some(&set.folder().root),
            ClipSource::Memory { .. } => None,
        }
    }

    /// The video is fingerprinted by a read of its own (ffmpeg reads it separately).
    fn load(&self, i: usize) -> Loaded {
        let (clip, print) = match self.source {
            ClipSource::Videos(set) => {
                let path = &set.folder().samples[i].0;
                let print = FileFingerprint::of(path)
                    .ok()
                    .map(|f| FileFingerprint { path: relative(&set.folder().root, path), ..f });
                (set.decode(i, 0).map(|d| d.clip), print)
            }
            ClipSource::Memory { clips, .. } => (Ok(clips[i].clone()), None),
        };
        (clip.map(|c| (vec![c.to_cthw_signed()], c.class as u32)), print)
    }

    fn encode(
        &self,
        views: &[Vec<f32>],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<u32>, TrainError> {
        let (t, s) = (self.settings.frames, self.settings.size);
        let mut codes = Vec::new();
        for part in views.chunks(batch.max(1)) {
            let x = Tensor::<5>::from_data(
                TensorData::new(part.concat(), [part.len(), 3, t, s, s]),
                device,
            );
            let ids = self.model.encode(x).map_err(|e| TrainError::Config(e.to_string()))?;
            let ids = ids.into_data().try_into_vec_as::<i64>().expect("int codes");
            codes.extend(ids.into_iter().map(|v| v as u32));
        }
        Ok(codes)
    }

    fn views(&self) -> usize {
        1
    }

    fn grid(&self) -> (usize, usize) {
        let [t, h, _] = self
            .model
            .config()
            .latent_shape(self.settings.frames, self.settings.size, self.settings.size)
            .expect("checked by tokenize_clips");
        (t, h)
    }

    fn codebook_size(&self) -> usize {
        self.model.config().codebook_size()
    }

    fn outputs(&self) -> (bool, Option<String>) {
        (true, None)
    }

    /// Videos ffmpeg cannot read; a missing ffmpeg stops the job.
    fn skips(&self, e: &DataError) -> bool {
        matches!(e, DataError::Video { .. })
    }

    fn source(&self) -> String {
        self.settings.source.clone()
    }

    fn input_field(&self) -> &'static str {
        "videos"
    }

    fn meta(&self, settings: &ClipTokenizeSettings) -> serde_json::Value {
        serde_json::json!({
            "source": settings.source,
            "frames": settings.frames,
            "fps": settings.fps,
            "size": settings.size,
            "tokenizer": settings.tokenizer,
            "tokenizer_config": self.model.config(),
        })
    }
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
) -> Result<Tokenized, TrainError> {
    let settings = &TokenizeSettings {
        tokenizer_fingerprint: weights_fingerprint(model)?,
        ..settings.clone()
    };
    let f = model.config().downsample_factor();
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
    let job = ImageJob { source, model: model.valid(), settings };
    run_job(&job, settings, settings.chunk_size, out, batch_size, strict, device, monitor)
}

/// Runs (or resumes) a clip pre-tokenization job into `out` (docs/video.md): the same resumable
/// chunks, outputs and rules as [`tokenize`], with one view per clip and `frames` latent frames
/// per view in the store's header. An unreadable video is skipped with a warning naming it and
/// counted in the report (unless `strict`).
///
/// # Errors
///
/// As [`tokenize`]; clips that do not fit the tokenizer (`frames − 1` not a multiple of its
/// temporal factor, `size` not of its spatial one) are [`TrainError::Setting`] naming the field.
#[allow(clippy::too_many_arguments)]
pub fn tokenize_clips(
    source: &ClipSource,
    model: &VideoTokenizer,
    settings: &ClipTokenizeSettings,
    out: &Path,
    batch_size: usize,
    strict: bool,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<Tokenized<ClipTokenizeSettings>, TrainError> {
    let settings = &ClipTokenizeSettings {
        tokenizer_fingerprint: weights_fingerprint(model)?,
        ..settings.clone()
    };
    if let Err(e) = model.config().latent_shape(settings.frames, settings.size, settings.size) {
        let field = if e.field() == "frames" { "frames" } else { "size" };
        return Err(TrainError::Setting {
            field,
            reason: format!(
                "{} frames of {}² do not fit the tokenizer: {e}",
                settings.frames, settings.size
            ),
        });
    }
    match source {
        ClipSource::Memory { clips, .. } => {
            if let Some((i, c)) = clips.iter().enumerate().find(|(_, c)| {
                (c.frames, c.height, c.width) != (settings.frames, settings.size, settings.size)
                    || !c.is_consistent()
            }) {
                return Err(TrainError::Config(format!(
                    "clip {i} is {}×{}×{} with {} bytes, the job's clips are {}×{}×{} RGB",
                    c.frames,
                    c.height,
                    c.width,
                    c.data.len(),
                    settings.frames,
                    settings.size,
                    settings.size
                )));
            }
        }
        ClipSource::Videos(set) => {
            // The settings are the job's record (manifest, report, resume check): they must be
            // the clips actually decoded.
            let spec = set.spec();
            for (field, same) in [
                ("frames", spec.frames == settings.frames),
                ("fps", spec.fps == settings.fps),
                ("size", spec.size == settings.size),
                ("seed", set.seed() == settings.seed),
            ] {
                if !same {
                    return Err(TrainError::Setting {
                        field,
                        reason: format!(
                            "differs between the clip set ({:?}) and the job's settings",
                            spec
                        ),
                    });
                }
            }
        }
    }
    let job = ClipJob { source, model: model.valid(), settings };
    run_job(&job, settings, settings.chunk_size, out, batch_size, strict, device, monitor)
}

#[allow(clippy::too_many_arguments)]
fn run_job<J: Job>(
    job: &J,
    settings: &J::Settings,
    chunk_size: usize,
    out: &Path,
    batch_size: usize,
    strict: bool,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<Tokenized<J::Settings>, TrainError> {
    let settings = &settings.with_listing(listing(job)?);
    let result = run_job_in(job, settings, chunk_size, out, batch_size, strict, device, monitor);
    if result.is_err() && !has_chunks(out) {
        let _ = std::fs::remove_dir_all(out.join(WORK_DIR));
    }
    result
}

/// XXH3-64 of the source's file list (each file's path relative to the source folder and its
/// size, in order), hex; empty for a source without files.
fn listing<J: Job>(job: &J) -> Result<String, TrainError> {
    let Some(root) = job.root() else { return Ok(String::new()) };
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for i in 0..job.len() {
        let path = job.file_of(i).expect("a source with a folder has a file for every sample");
        // A missing file is the job's to skip or refuse; it lists with size 0.
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        h.update(relative(root, path).as_os_str().as_encoded_bytes());
        h.update(&[0]);
        h.update(&size.to_le_bytes());
    }
    Ok(format!("{:016x}", h.digest()))
}

/// Whether an unfinished job in `out` has finished at least one chunk.
fn has_chunks(out: &Path) -> bool {
    std::fs::read_dir(out.join(WORK_DIR)).is_ok_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("chunk-"))
    })
}

/// Checks a finished chunk's files (paths relative to `root`) against the fingerprints it was
/// made with, reading them in parallel.
fn verify_chunk(recorded: &[FileFingerprint], root: &Path, out: &Path) -> Result<(), TrainError> {
    let changed = recorded.par_iter().find_any(|f| {
        FileFingerprint::of(&root.join(&f.path)).map_or(true, |now| !now.same_content(f))
    });
    match changed {
        None => Ok(()),
        Some(f) => Err(TrainError::Config(format!(
            "{} changed since it was tokenized into {} (it is gone, or its content differs from the {} bytes read then); give the original files, or delete {} to start afresh",
            root.join(&f.path).display(),
            out.display(),
            f.bytes,
            out.join(WORK_DIR).display()
        ))),
    }
}

/// Compares a job's settings with those of the job already in `out` (`finished`: its report's;
/// else the unfinished job's manifest): the inputs by content first (naming the one that
/// changed), then every setting but the paths they were given under (a folder or tokenizer
/// spelled otherwise, or moved, is the same input). An unfinished job is not compared on its
/// file list: its finished chunks' files are checked one by one, and a file fixed in place in
/// an unfinished chunk (a `--strict` stop) is simply read.
fn same_job<S: JobSettings>(
    previous: &S,
    now: &S,
    out: &Path,
    finished: bool,
    monitor: &dyn Monitor,
) -> Result<(), TrainError> {
    if previous.inputs().is_recorded() {
        previous
            .inputs()
            .check_unchanged(now.inputs(), out)
            .map_err(|e| TrainError::Config(e.to_string()))?;
    } else {
        monitor.warn(&format!(
            "the job in {} was started by an earlier version that recorded no input fingerprints; its inputs are compared by path only",
            out.display()
        ));
    }
    let mut comparable = now.with_paths_of(previous);
    if !finished {
        comparable = comparable.with_listing(previous.listing().to_string());
    }
    if !previous.inputs().is_recorded() {
        comparable = now.clone();
    }
    par_train::checkpoint::same_settings(out, "", previous, &comparable).map_err(|e| match e {
        TrainError::ResumeMismatch { field, checkpoint, now, .. } => {
            let what = if field == "source_listing" {
                "another file list (files added, removed or resized since)".to_string()
            } else {
                format!("{field} = {checkpoint} (this job: {now})")
            };
            TrainError::Config(if finished {
                format!(
                    "{} already holds a finished job made with {what}; choose another output folder",
                    out.display()
                )
            } else {
                format!(
                    "{} holds an unfinished job made with {what}; run it again with its settings to finish it, or delete {} to start afresh",
                    out.display(),
                    out.join(WORK_DIR).display()
                )
            })
        }
        other => other,
    })
}

#[allow(clippy::too_many_arguments)]
fn run_job_in<J: Job>(
    job: &J,
    settings: &J::Settings,
    chunk_size: usize,
    out: &Path,
    batch_size: usize,
    strict: bool,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<Tokenized<J::Settings>, TrainError> {
    for (field, value) in [("chunk_size", chunk_size), ("batch_size", batch_size)] {
        if value == 0 {
            return Err(TrainError::Setting { field, reason: "must be at least 1, got 0".into() });
        }
    }
    if job.len() == 0 {
        return Err(TrainError::Config(format!("{}: no images or clips", job.source())));
    }
    let report_path = out.join(par_data::REPORT_FILE);
    if report_path.is_file() {
        // A finished job: the same one again is nothing to do; another is refused.
        let done: TokenizeReport<J::Settings> = read_json(&report_path)?;
        same_job(&done.settings, settings, out, true, monitor)?;
        return Ok(Tokenized::AlreadyFinished(done));
    }
    let work = out.join(WORK_DIR);
    let manifest = work.join("manifest.json");
    if manifest.is_file() && has_chunks(out) {
        let previous: J::Settings = read_json(&manifest)?;
        same_job(&previous, settings, out, false, monitor)?;
    } else {
        std::fs::create_dir_all(&work).map_err(|e| TrainError::io(&work, e))?;
        write_json(&manifest, settings)?;
    }
    let (frames, grid) = job.grid();
    let views = job.views();
    let classes = job.classes();
    let codebook_size = job.codebook_size();
    let per = views * frames * grid * grid;
    let n = job.len();
    let chunks = n.div_ceil(chunk_size);
    let header = |num_images: usize, meta: serde_json::Value| CompactHeader {
        version: compact::VERSION,
        num_images,
        views,
        grid: [grid, grid],
        frames,
        codebook_size,
        code_dtype: CompactHeader::dtype_for(codebook_size).into(),
        classes: classes.clone(),
        meta,
    };
    let (compact_out, llamagen_out) = job.outputs();
    let dirs = llamagen_out.map(|name| LlamaGenDirs::new(out, &name));
    monitor.start(0, n);
    let t0 = std::time::Instant::now();
    let (mut written, mut encoded_here) = (0usize, 0usize);
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut source_digest = xxhash_rust::xxh3::Xxh3::new();
    for c in 0..chunks {
        let range = c * chunk_size..((c + 1).saturating_mul(chunk_size)).min(n);
        let file = chunk_file(out, c);
        if file.is_file() {
            let r = CompactReader::open(&file).map_err(data_err)?;
            let meta = &r.header().meta;
            let recorded: Vec<FileFingerprint> =
                serde_json::from_value(meta["inputs"].clone()).unwrap_or_default();
            if let Some(root) = job.root() {
                verify_chunk(&recorded, root, out)?;
            }
            recorded.iter().for_each(|f| source_digest.update(f.xxh3.as_bytes()));
            written += r.header().num_images;
            skipped.extend(
                serde_json::from_value::<Vec<Skipped>>(meta["skipped"].clone()).unwrap_or_default(),
            );
            monitor.update(range.end, "");
            continue;
        }
        if monitor.should_stop(range.start) {
            return Err(TrainError::Interrupted { step: c });
        }
        let loaded: Vec<(usize, Loaded)> =
            range.clone().into_par_iter().map(|i| (i, job.load(i))).collect();
        let mut kept_views = Vec::new();
        let mut labels = Vec::new();
        let mut new_skips = Vec::new();
        let mut inputs = Vec::new();
        for (i, (r, print)) in loaded {
            inputs.extend(print);
            match r {
                Ok((v, l)) => {
                    kept_views.extend(v);
                    labels.push(l);
                }
                Err(e) if !strict && job.skips(&e) => {
                    monitor.warn(&format!("skipping {e}"));
                    new_skips.push(Skipped { path: job.path_of(i), reason: e.to_string() });
                }
                Err(e) if !strict => return Err(data_err(e)),
                Err(e) if job.skips(&e) => {
                    return Err(TrainError::Config(format!(
                        "{e} (a job that is not strict would skip it)"
                    )));
                }
                Err(e) => return Err(data_err(e)),
            }
        }
        let codes = job.encode(&kept_views, batch_size.saturating_mul(views), device)?;
        // The chunk's unreadable inputs travel with it, so a resumed job reports each once; its
        // files' fingerprints too, so a resumed job refuses a file changed since.
        inputs.iter().for_each(|f| source_digest.update(f.xxh3.as_bytes()));
        let chunk_header =
            header(labels.len(), serde_json::json!({ "skipped": new_skips, "inputs": inputs }));
        if let Some(dirs) = &dirs {
            for (k, l) in labels.iter().enumerate() {
                dirs.write(written + k, &codes[k * per..(k + 1) * per], views, *l)
                    .map_err(data_err)?;
            }
        }
        let bytes = compact::encode(&file, &chunk_header, &labels, &codes).map_err(data_err)?;
        par_store::write_atomic(&file, &bytes).map_err(|e| TrainError::io(&file, e))?;
        written += labels.len();
        skipped.extend(new_skips);
        encoded_here += range.len();
        monitor.update(range.end, "");
    }
    if written == 0 {
        // Nothing usable: the job fails as a whole and leaves nothing (the same rule in every
        // command), instead of an empty store that a corrected rerun would have to clear.
        // (No LlamaGen file was written: they are written per image read.)
        let _ = std::fs::remove_dir_all(&work);
        return Err(TrainError::NoUsableInput {
            field: job.input_field(),
            input: job.source(),
            count: n,
            first: skipped.first().map_or(String::new(), |s| s.reason.clone()),
        });
    }
    if compact_out {
        // Streamed chunk by chunk: labels first (small), then each chunk's codes.
        let mut labels = Vec::with_capacity(written);
        for c in 0..chunks {
            labels.extend_from_slice(
                CompactReader::open(&chunk_file(out, c)).map_err(data_err)?.labels(),
            );
        }
        let path = out.join(par_data::COMPACT_FILE);
        let mut writer =
            compact::StreamWriter::create(&path, &header(written, job.meta(settings)), &labels)
                .map_err(data_err)?;
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
        frames,
        codebook_size,
        classes,
        skipped,
        source_xxh3: if job.root().is_some() {
            format!("{:032x}", source_digest.digest128())
        } else {
            String::new()
        },
        seconds,
        images_per_second: if seconds > 0.0 { encoded_here as f64 / seconds } else { 0.0 },
    };
    write_json(&report_path, &report)?;
    std::fs::remove_dir_all(&work).map_err(|e| TrainError::io(&work, e))?;
    Ok(Tokenized::Done(report))
}
