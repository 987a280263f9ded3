//! `par tokenize-clips`: pre-tokenizes a UCF-101-layout video folder (one random clip per video,
//! decoded by ffmpeg) with a video tokenizer into a compact code store; the same resumable job as
//! `par tokenize` (docs/video.md).

use std::path::PathBuf;

use par_app::{InputResult, OutputDir};
use par_data::{ClipSet, ClipSpec, VideoFolder};
use par_device::DeviceArgs;
use par_tokenize::{ClipSource, ClipTokenizeSettings, tokenize_clips};
use par_tokenizer::video::VideoTokenizer;

use crate::progress::BarMonitor;

/// Arguments of `par tokenize-clips`.
#[derive(Debug, clap::Args)]
pub struct TokenizeClipsArgs {
    /// UCF-101-layout folder: ROOT/CLASS/VIDEO, or ROOT with classInd.txt and a split list
    /// (ucfTrainTestlist/trainlist01.txt, or --split).
    #[arg(long)]
    videos: PathBuf,
    /// The split list to read instead of the default (lines "Class/video.avi [label]").
    #[arg(long)]
    split: Option<PathBuf>,
    /// Video tokenizer checkpoint (our safetensors, `par_tokenizer::video`).
    #[arg(long)]
    tokenizer: PathBuf,
    /// Frames per clip.
    #[arg(long, default_value_t = 17)]
    frames: usize,
    /// Frame rate the videos are resampled to before a clip is cut.
    #[arg(long, default_value_t = 8.0)]
    fps: f64,
    /// Side of the square frames (short side resized, then centre crop).
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Seed of each video's random clip.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (codes.parc, tokenize.json).
    #[arg(long)]
    out: PathBuf,
    /// Clips encoded per forward.
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Clips per resumable chunk.
    #[arg(long, default_value_t = 256)]
    chunk_size: usize,
    /// Use only the first N videos.
    #[arg(long)]
    limit: Option<usize>,
    /// Stop at the first unreadable video instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par tokenize-clips`.
pub fn run(args: &TokenizeClipsArgs) -> anyhow::Result<()> {
    par_app::check_positive("batch-size", args.batch_size)?;
    par_app::check_positive("chunk-size", args.chunk_size)?;
    if let Some(n) = args.limit {
        par_app::check_positive("limit", n)?;
    }
    let spec = ClipSpec::new(args.frames, args.fps, args.size).input()?;
    let inputs = [
        ("--videos", Some(args.videos.as_path())),
        ("--split", args.split.as_deref()),
        ("--tokenizer", Some(args.tokenizer.as_path())),
    ];
    let out = OutputDir::check(&args.out, "--out", &inputs)?;
    let mut folder = match &args.split {
        Some(split) => VideoFolder::scan_split(&args.videos, split),
        None => VideoFolder::scan(&args.videos),
    }
    .input()?;
    if let Some(n) = args.limit {
        folder.samples.truncate(n);
    }
    par_data::check_ffmpeg().input()?;
    let device = args.device.device()?;
    let model = VideoTokenizer::load(&args.tokenizer, &device).input()?;
    let set = ClipSet::new(folder, spec, args.seed).input()?;
    // What the chunk and batch sizes imply: a chunk's clips sit in memory (as f32 for the
    // encoder), a batch goes through it at once.
    let clip_bytes = args.frames as f64 * 3.0 * (args.size as f64).powi(2) * 4.0;
    let chunk = args.chunk_size.min(set.len().max(1));
    par_app::limits::check_memory(
        "--chunk-size/--frames/--size",
        &format!("a chunk of {chunk} clips of {} frames of {}² px", args.frames, args.size),
        chunk as f64 * clip_bytes,
    )?;
    let batch = args.batch_size.min(chunk) as f64;
    par_app::limits::check_device_memory(
        args.device.backend()?,
        "--batch-size/--frames/--size",
        &format!("encoding {batch} clips at once"),
        batch * clip_bytes * 4.0 * model.config().base_channels as f64,
    )?;
    let settings = ClipTokenizeSettings {
        frames: args.frames,
        fps: args.fps,
        size: args.size,
        seed: args.seed,
        chunk_size: args.chunk_size,
        // The split is part of the source: resuming with another split is refused.
        source: match &args.split {
            Some(split) => format!("{} ({})", args.videos.display(), split.display()),
            None => match &set.folder().split {
                Some(split) => format!("{} ({})", args.videos.display(), split.display()),
                None => args.videos.display().to_string(),
            },
        },
        source_clips: set.len(),
        tokenizer: args.tokenizer.clone(),
        tokenizer_fingerprint: 0, // filled in by the job
        inputs: par_store::InputFingerprints::of(inputs[1..].iter().map(|(f, p)| (*f, *p)))
            .input()?,
        source_listing: String::new(), // filled in by the job
    };
    let monitor = BarMonitor::new("tokenize-clips");
    let done = tokenize_clips(
        &ClipSource::Videos(set),
        &model,
        &settings,
        &args.out,
        args.batch_size,
        args.strict,
        &device,
        &monitor,
    )
    .map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<TokenizeClipsArgs>()))?;
    monitor.bar().finish();
    out.keep();
    if done.already_finished() {
        eprintln!(
            "the job in {} is already finished with these settings and inputs; nothing to do",
            args.out.display()
        );
    }
    // Each skipped video was already warned about, naming it; tokenize.json lists them.
    let report = done.report();
    eprintln!(
        "{} clips of {}×{}×{} codes → {} ({} video(s) skipped; {:.2} clips/s)",
        report.num_images,
        report.frames,
        report.grid[0],
        report.grid[1],
        args.out.display(),
        report.skipped.len(),
        report.images_per_second
    );
    Ok(())
}
