//! Video clips for the video setting (docs/spec.md §8): a UCF-101-layout index ([`VideoFolder`]),
//! random clips of `frames` frames at `fps`, `size × size` ([`ClipSpec`], the paper's 17 frames
//! at 8 fps and 128 × 128 [paper Supp. A, §4.1]), decoded by a spawned `ffmpeg`
//! ([`decode_clip`]), and a reader over a whole folder that skips unreadable videos
//! ([`ClipSet`]).
//!
//! The paper releases no video code: the decoding pipeline below (resize so that the short side
//! is `size`, centre crop, a uniformly random start among the frames at `fps`, padding of short
//! videos) is our choice, documented on each item.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use rayon::prelude::*;

use crate::{DataError, MAX_IMAGE_SIZE, PixelImage};

/// The video file extensions a [`VideoFolder`] indexes (matched case-insensitively).
pub const VIDEO_EXTENSIONS: [&str; 6] = ["avi", "mp4", "mkv", "mov", "webm", "mpg"];

/// The environment variable naming the ffmpeg program to run (default `ffmpeg`, looked up in
/// `PATH`).
pub const FFMPEG_ENV: &str = "PAR_FFMPEG";

/// UCF-101's class list (`1 ApplyEyeMakeup` per line, ids from 1).
pub const CLASS_INDEX_FILE: &str = "classInd.txt";

/// UCF-101's first training split (`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1` per line),
/// the split [`VideoFolder::scan`] uses when it finds one.
pub const DEFAULT_SPLIT_FILE: &str = "trainlist01.txt";

/// The folder of UCF-101's split lists inside its archive (`UCF101TrainTestSplits-…zip`), looked
/// up under the video root when the lists are not in the root itself.
pub const SPLIT_LIST_FOLDER: &str = "ucfTrainTestlist";

// ---------------------------------------------------------------------------------------------
// Seeded randomness.

/// SplitMix64's output function: a well-mixed hash of a counter (Steele et al. 2014).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The SplitMix64 generator.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0.wrapping_sub(0x9e37_79b9_7f4a_7c15))
    }

    /// Uniform in `0..n` (`n ≥ 1`) by Lemire's multiply-shift (bias below `n / 2⁶⁴`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

// ---------------------------------------------------------------------------------------------
// The index.

/// The videos of a UCF-101-layout folder, `ROOT/CLASS/VIDEO` (e.g.
/// `UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi`), with class ids `0..C`:
///
/// - from UCF-101's lists when they exist ([`VideoFolder::scan`], [`VideoFolder::scan_split`]):
///   `classInd.txt` gives the classes (id in the file − 1) and a split list such as
///   `trainlist01.txt` the videos, in the list's order;
/// - otherwise from the folders ([`VideoFolder::scan_folders`]): classes are the sub-folders of
///   the root sorted by name (class id = index, as torchvision's `ImageFolder`), videos are the
///   files with a [`VIDEO_EXTENSIONS`] extension below each, walked in sorted order.
///
/// For UCF-101 both give the same class ids (`classInd.txt` is alphabetical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFolder {
    /// The root folder.
    pub root: PathBuf,
    /// Class names; the class id is the index.
    pub classes: Vec<String>,
    /// `(video path, class id)` per video.
    pub samples: Vec<(PathBuf, usize)>,
    /// The split list the videos came from (`None`: the folders were walked).
    pub split: Option<PathBuf>,
}

fn extensions() -> String {
    VIDEO_EXTENSIONS.join(", ")
}

fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

/// All video files under `dir`, recursively: a folder's files (sorted) before its sub-folders.
fn walk_videos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let (dirs, files): (Vec<_>, Vec<_>) =
        read_dir_sorted(dir)?.into_iter().partition(|p| p.is_dir());
    out.extend(files.into_iter().filter(|p| has_video_extension(p)));
    for d in dirs {
        walk_videos(&d, out)?;
    }
    Ok(())
}

/// The file `name` in `root`, else in `root/ucfTrainTestlist`, if either exists.
fn find_list(root: &Path, name: &Path) -> Option<PathBuf> {
    [root.join(name), root.join(SPLIT_LIST_FOLDER).join(name)].into_iter().find(|p| p.is_file())
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| DataError::ListLine {
        path: path.into(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        reason: "not UTF-8 text".into(),
    })
}

/// `(line number from 1, trimmed line)` of the non-empty lines (UCF-101's lists end lines with
/// CR LF).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty())
}

/// Parses `classInd.txt`: `ID NAME` per line, ids counting up from 1.
fn parse_class_index(path: &Path) -> Result<Vec<(String, usize)>, DataError> {
    let text = read_text(path)?;
    let mut classes: Vec<(String, usize)> = Vec::new();
    for (line, l) in lines(&text) {
        let bad = |reason: String| DataError::ListLine { path: path.into(), line, reason };
        let fields: Vec<&str> = l.split_whitespace().collect();
        let [id, name] = fields[..] else {
            return Err(bad(format!("expected `ID CLASS_NAME`, got `{l}`")));
        };
        let id: usize =
            id.parse().map_err(|_| bad(format!("class id `{id}` is not a whole number")))?;
        if id != classes.len() + 1 {
            return Err(bad(format!(
                "class id {id}, expected {} (ids count up from 1)",
                classes.len() + 1
            )));
        }
        if let Some((_, first)) = classes.iter().find(|(n, _)| n == name) {
            return Err(bad(format!("class `{name}` already listed at line {first}")));
        }
        classes.push((name.to_string(), line));
    }
    if classes.is_empty() {
        return Err(DataError::ListLine {
            path: path.into(),
            line: 1,
            reason: "no classes listed".into(),
        });
    }
    Ok(classes)
}

impl VideoFolder {
    /// Indexes `root`: with UCF-101's lists when both `classInd.txt` and `trainlist01.txt` are
    /// found (in `root` or in `root/ucfTrainTestlist`, as [`VideoFolder::scan_split`] with
    /// [`DEFAULT_SPLIT_FILE`]), otherwise by walking the class folders
    /// ([`VideoFolder::scan_folders`]).
    ///
    /// # Errors
    ///
    /// Those of the two methods.
    pub fn scan(root: &Path) -> Result<Self, DataError> {
        let lists = find_list(root, Path::new(CLASS_INDEX_FILE))
            .zip(find_list(root, Path::new(DEFAULT_SPLIT_FILE)));
        match lists {
            Some((index, split)) if index.parent() == split.parent() => {
                Self::scan_split(root, &split)
            }
            _ => Self::scan_folders(root),
        }
    }

    /// Indexes the class folders of `root` (see the type's docs); lists are ignored, and so is
    /// a `ucfTrainTestlist` folder.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] if `root` or a folder below it cannot be read (missing, not a folder);
    /// [`DataError::NoVideos`] naming `root` when it has no class folders, or naming the class
    /// folder that holds no video (an empty class would shift no ids but would never be
    /// sampled, so it is refused, as torchvision refuses empty classes).
    pub fn scan_folders(root: &Path) -> Result<Self, DataError> {
        let dirs: Vec<PathBuf> = read_dir_sorted(root)?
            .into_iter()
            .filter(|p| p.is_dir() && !p.ends_with(SPLIT_LIST_FOLDER))
            .collect();
        if dirs.is_empty() {
            return Err(DataError::NoVideos { path: root.into(), extensions: extensions() });
        }
        let mut classes = Vec::with_capacity(dirs.len());
        let mut samples = Vec::new();
        for (id, dir) in dirs.iter().enumerate() {
            let mut files = Vec::new();
            walk_videos(dir, &mut files)?;
            if files.is_empty() {
                return Err(DataError::NoVideos { path: dir.clone(), extensions: extensions() });
            }
            samples.extend(files.into_iter().map(|f| (f, id)));
            classes.push(
                dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            );
        }
        Ok(Self { root: root.into(), classes, samples, split: None })
    }

    /// Indexes the videos of split list `split` (e.g. `trainlist01.txt`, `testlist02.txt`)
    /// with the classes of the `classInd.txt` next to it. A relative `split` is looked up in
    /// `root`, then in `root/ucfTrainTestlist`. Each line of the split list is
    /// `CLASS/VIDEO_FILE` relative to `root`, optionally followed by the class id of
    /// `classInd.txt` (the training lists have it, the test lists do not); the class is the
    /// path's first component.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] naming a list that cannot be read (a missing `classInd.txt` or split
    /// list); [`DataError::ListLine`] naming the list and line number of a malformed line (not
    /// `ID NAME`; ids not counting up from 1; a duplicated class; a video path that is absolute,
    /// leaves `root`, names a class not in `classInd.txt` or a file that does not exist; an id
    /// that contradicts the path's class); [`DataError::MissingClassFolder`] for a listed class
    /// without its folder; [`DataError::NoVideos`] naming a split list without videos.
    pub fn scan_split(root: &Path, split: &Path) -> Result<Self, DataError> {
        let split = if split.is_absolute() {
            split.to_path_buf()
        } else {
            find_list(root, split).unwrap_or_else(|| root.join(split))
        };
        let text = read_text(&split)?;
        let list_dir = split.parent().unwrap_or(Path::new("."));
        let index = list_dir.join(CLASS_INDEX_FILE);
        let classes = parse_class_index(&index)?;
        for (name, line) in &classes {
            let dir = root.join(name);
            if !dir.is_dir() {
                return Err(DataError::MissingClassFolder {
                    path: dir,
                    class: name.clone(),
                    list: index.clone(),
                    line: *line,
                });
            }
        }
        let mut samples = Vec::new();
        for (line, l) in lines(&text) {
            let bad = |reason: String| DataError::ListLine { path: split.clone(), line, reason };
            let fields: Vec<&str> = l.split_whitespace().collect();
            let (file, label) = match fields[..] {
                [file] => (file, None),
                [file, label] => (file, Some(label)),
                _ => return Err(bad(format!("expected `CLASS/VIDEO [CLASS_ID]`, got `{l}`"))),
            };
            let rel = Path::new(file);
            let mut parts = rel.components();
            let class = match (parts.next(), rel.components().count()) {
                (Some(Component::Normal(c)), n) if n >= 2 => c.to_string_lossy().into_owned(),
                _ => return Err(bad(format!("`{file}` is not of the form CLASS/VIDEO"))),
            };
            if !parts.all(|c| matches!(c, Component::Normal(_))) {
                return Err(bad(format!("`{file}` leaves the video root")));
            }
            let Some(id) = classes.iter().position(|(n, _)| *n == class) else {
                return Err(bad(format!("class `{class}` is not listed in {}", index.display())));
            };
            if let Some(label) = label
                && label.parse::<usize>().ok() != Some(id + 1)
            {
                return Err(bad(format!(
                    "class id `{label}`, but `{class}` is class {} in {}",
                    id + 1,
                    index.display()
                )));
            }
            let path = root.join(rel);
            if !path.is_file() {
                return Err(bad(format!("no such video: {}", path.display())));
            }
            samples.push((path, id));
        }
        if samples.is_empty() {
            return Err(DataError::NoVideos { path: split, extensions: extensions() });
        }
        Ok(Self {
            root: root.into(),
            classes: classes.into_iter().map(|(n, _)| n).collect(),
            samples,
            split: Some(split),
        })
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no videos (never, for a folder from one of the scans).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Clips.

/// The highest frame rate a clip is resampled to (ffmpeg's frame-rate filter takes any; a rate
/// far above what cameras record only multiplies the frames decoded per clip).
pub const MAX_FPS: f64 = 1000.0;

/// What a clip is: `frames` frames sampled at `fps` frames per second, `size × size` pixels. The
/// default is the paper's UCF-101 setting: 17 frames at 8 fps, 128 × 128 (docs/spec.md §8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipSpec {
    /// Frames per clip (≥ 1; 17 in the paper: 1 + 16, MAGVIT-v2's causal first frame).
    pub frames: usize,
    /// The rate the video is resampled to before a clip is cut (finite, in (0, [`MAX_FPS`]];
    /// 8 in the paper).
    pub fps: f64,
    /// The side of the square frames (1 ..= [`MAX_IMAGE_SIZE`]; 128 in the paper).
    pub size: usize,
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self::PAPER
    }
}

impl ClipSpec {
    /// The paper's UCF-101 clips: 17 frames at 8 fps, 128 × 128.
    pub const PAPER: Self = Self { frames: 17, fps: 8.0, size: 128 };

    /// A checked spec.
    ///
    /// # Errors
    ///
    /// As [`ClipSpec::validate`].
    pub fn new(frames: usize, fps: f64, size: usize) -> Result<Self, DataError> {
        let spec = Self { frames, fps, size };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the ranges in the field docs.
    ///
    /// # Errors
    ///
    /// [`DataError::Setting`] naming the field.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.frames == 0 {
            return Err(DataError::Setting {
                field: "frames",
                reason: "must be ≥ 1, got 0".into(),
            });
        }
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= MAX_FPS) {
            return Err(DataError::Setting {
                field: "fps",
                reason: format!("must be a finite number in (0, {MAX_FPS}], got {}", self.fps),
            });
        }
        if self.size == 0 || self.size > MAX_IMAGE_SIZE {
            return Err(DataError::Setting {
                field: "size",
                reason: format!("must be in 1..={MAX_IMAGE_SIZE}, got {}", self.size),
            });
        }
        Ok(())
    }

    /// Bytes of one RGB frame (`size² · 3`).
    pub fn frame_bytes(&self) -> usize {
        self.size * self.size * 3
    }

    /// ffmpeg's video filter: `fps=F,scale=S:S:force_original_aspect_ratio=increase,crop=S:S`
    /// — resample to `fps` (ffmpeg's `fps` filter drops or repeats frames, timestamps rounded to
    /// the nearest output frame), scale with ffmpeg's default bicubic filter so the *short* side
    /// is `size` (aspect ratio kept; pixels taken as square), then cut the centred
    /// `size × size` window.
    pub fn filter(&self) -> String {
        let s = self.size;
        format!("fps={},scale={s}:{s}:force_original_aspect_ratio=increase,crop={s}:{s}", self.fps)
    }
}

/// An RGB clip: `frames` frames of `height × width` pixels, `data` laid out `[T, H, W, 3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoClip {
    /// The class id.
    pub class: usize,
    /// Frames `T`.
    pub frames: usize,
    /// Frame height `H`.
    pub height: usize,
    /// Frame width `W`.
    pub width: usize,
    /// `T · H · W · 3` bytes, frame-major, pixels row-major, RGB interleaved.
    pub data: Vec<u8>,
}

impl VideoClip {
    /// Bytes of one frame.
    fn frame_bytes(&self) -> usize {
        self.height * self.width * 3
    }

    /// Whether `data` holds exactly `frames · height · width · 3` bytes.
    pub fn is_consistent(&self) -> bool {
        self.frames.checked_mul(self.frame_bytes()) == Some(self.data.len())
    }

    /// Frame `t` as an RGB [`PixelImage`], `None` when `t ≥ frames` (or `data` is short).
    pub fn frame(&self, t: usize) -> Option<PixelImage> {
        let n = self.frame_bytes();
        let data = self.data.get(t.checked_mul(n)?..t.checked_add(1)?.checked_mul(n)?)?;
        (t < self.frames).then(|| PixelImage {
            width: self.width,
            height: self.height,
            channels: 3,
            data: data.to_vec(),
        })
    }

    /// Every frame as an RGB [`PixelImage`] (for strips and GIFs).
    pub fn frame_images(&self) -> Vec<PixelImage> {
        (0..self.frames).map_while(|t| self.frame(t)).collect()
    }

    /// The pixels as `[3, T, H, W]` floats in `[−1, 1]`: `x / 127.5 − 1`.
    ///
    /// # Shapes
    ///
    /// `data` `[T, H, W, 3]` u8 → `[3, T, H, W]` f32, channel-major as the video tokenizer's
    /// 3D convolutions take it.
    pub fn to_cthw_signed(&self) -> Vec<f32> {
        let thw = self.frames * self.height * self.width;
        let mut out = vec![0.0; 3 * thw];
        for (i, px) in self.data.chunks_exact(3).take(thw).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                out[c * thw + i] = v as f32 / 127.5 - 1.0;
            }
        }
        out
    }

    /// [`VideoClip::to_cthw_signed`] as Burn [`burn::tensor::TensorData`], ready for
    /// `Tensor::from_data` on any device.
    ///
    /// # Shapes
    ///
    /// `[3, T, H, W]` f32 in `[−1, 1]`.
    pub fn to_tensor_data(&self) -> burn::tensor::TensorData {
        burn::tensor::TensorData::new(
            self.to_cthw_signed(),
            [3, self.frames, self.height, self.width],
        )
    }

    /// The clip from `[3, T, H, W]` floats in `[−1, 1]` (a decoded sample), converted as
    /// [`PixelImage::from_chw_signed`]: `clamp(127.5·x + 128, 0, 255)` truncated to u8. `None`
    /// when `values` does not hold `3 · frames · height · width` numbers.
    ///
    /// # Shapes
    ///
    /// `values` `[3, T, H, W]` → `data` `[T, H, W, 3]`.
    pub fn from_cthw_signed(
        values: &[f32],
        class: usize,
        frames: usize,
        height: usize,
        width: usize,
    ) -> Option<Self> {
        let thw = frames.checked_mul(height)?.checked_mul(width)?;
        if thw.checked_mul(3)? != values.len() {
            return None;
        }
        let mut data = vec![0; 3 * thw];
        for c in 0..3 {
            for i in 0..thw {
                data[i * 3 + c] = (values[c * thw + i] * 127.5 + 128.0).clamp(0.0, 255.0) as u8;
            }
        }
        Some(Self { class, frames, height, width, data })
    }
}

// ---------------------------------------------------------------------------------------------
// ffmpeg.

/// The ffmpeg program: the value of [`FFMPEG_ENV`] (`PAR_FFMPEG`) when set and non-empty,
/// otherwise `ffmpeg` (looked up in `PATH`).
pub fn ffmpeg_program() -> PathBuf {
    std::env::var_os(FFMPEG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ffmpeg"))
}

fn missing(program: &Path, source: std::io::Error) -> DataError {
    DataError::FfmpegMissing { program: program.into(), source }
}

/// Checks that ffmpeg runs (`ffmpeg -version`) and returns its first line (`ffmpeg version
/// 5.1.6-0+deb12u1 …`). Jobs call it before their first video, so a missing ffmpeg fails at once
/// rather than as one skipped video after another.
///
/// # Errors
///
/// [`DataError::FfmpegMissing`] when the program cannot be started or does not answer like
/// ffmpeg (non-zero exit).
pub fn check_ffmpeg() -> Result<String, DataError> {
    let program = ffmpeg_program();
    let out = Command::new(&program)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(&program, e))?;
    if !out.status.success() {
        return Err(missing(
            &program,
            std::io::Error::other(format!("`-version` exited with {}", out.status)),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_string())
}

/// The last few lines of ffmpeg's messages, on one line (at most ~500 characters).
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
    let chars: Vec<char> = tail.chars().collect();
    if chars.len() > 500 {
        format!("…{}", chars[chars.len() - 500..].iter().collect::<String>())
    } else {
        tail
    }
}

/// Where a clip was cut from its video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedClip {
    /// The clip (`class` 0 from [`decode_clip`], the video's class from [`ClipSet`]).
    pub clip: VideoClip,
    /// The index of the clip's first frame among the video's frames at `fps`.
    pub start: usize,
    /// How many frames the video has at `fps`.
    pub available: usize,
}

impl DecodedClip {
    /// Frames that repeat the video's last frame because the video is shorter than the clip
    /// (`frames − available`, or 0).
    pub fn padded(&self) -> usize {
        self.clip.frames.saturating_sub(self.available)
    }
}

/// The window a reader keeps: its frames, its start and the number of frames read.
#[derive(Debug)]
struct Window {
    frames: Vec<u8>,
    start: usize,
    available: usize,
}

/// Reads `frame_bytes`-byte frames from `reader` until its end and keeps one window of `frames`
/// consecutive frames, its start uniform over all `available − frames + 1` starts, by reservoir
/// sampling over the windows (window `k` replaces the kept one with probability `1 / (k + 1)`):
/// memory stays at two windows however long the video. With fewer than `frames` frames, all are
/// kept and the last is repeated. Deterministic for a `seed`.
fn read_window(
    mut reader: impl Read,
    frame_bytes: usize,
    frames: usize,
    seed: u64,
) -> Result<Window, String> {
    let mut rng = SplitMix::new(seed);
    let mut recent: VecDeque<Vec<u8>> = VecDeque::with_capacity(frames + 1);
    let mut kept: Option<(Vec<u8>, usize)> = None;
    let mut available = 0usize;
    loop {
        let mut frame = vec![0u8; frame_bytes];
        let mut filled = 0;
        while filled < frame_bytes {
            match reader.read(&mut frame[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading ffmpeg's output: {e}")),
            }
        }
        if filled == 0 {
            break;
        }
        if filled < frame_bytes {
            return Err(format!(
                "ffmpeg's output ends inside frame {available} ({filled} of {frame_bytes} bytes)"
            ));
        }
        available += 1;
        recent.push_back(frame);
        if recent.len() > frames {
            recent.pop_front();
        }
        if recent.len() == frames {
            let k = (available - frames) as u64;
            if k == 0 || rng.below(k + 1) == 0 {
                kept = Some((recent.iter().flatten().copied().collect(), available - frames));
            }
        }
    }
    if let Some((frames, start)) = kept {
        return Ok(Window { frames, start, available });
    }
    let mut data: Vec<u8> = recent.iter().flatten().copied().collect();
    if let Some(last) = recent.back() {
        for _ in available..frames {
            data.extend_from_slice(last);
        }
    }
    Ok(Window { frames: data, start: 0, available })
}

/// Kills and reaps the child when dropped before it was waited for.
struct Reaper(Option<std::process::Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The ffmpeg command line of [`decode_clip`] (without its pipes).
fn ffmpeg_command(program: &Path, path: &Path, spec: &ClipSpec) -> Command {
    // `file:` keeps a relative path such as `pipe:1.avi` or `http:x.mp4` from being read as a
    // protocol.
    let mut input = OsString::from("file:");
    input.push(path.as_os_str());
    let mut command = Command::new(program);
    command
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(&input)
        .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", &spec.filter()])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    command
}

/// Decodes one random clip of `spec` from the video at `path` with a spawned ffmpeg (no shell):
///
/// ```text
/// ffmpeg -nostdin -v error -i file:PATH -map 0:v:0
///        -vf fps=F,scale=S:S:force_original_aspect_ratio=increase,crop=S:S
///        -f rawvideo -pix_fmt rgb24 -
/// ```
///
/// i.e. the first video stream resampled to `spec.fps`, resized so the short side is
/// `spec.size` and centre-cropped to `size × size` ([`ClipSpec::filter`]). The clip starts at a
/// frame drawn uniformly among the `available − frames + 1` possible starts (the paper's
/// "random 8 fps clips"), deterministically for `seed`. A video with fewer than `spec.frames`
/// frames at `fps` (under 2.1 s for the paper's 17 frames at 8 fps; no UCF-101 video is that
/// short) is **padded** by repeating its last frame; [`DecodedClip::padded`] says how many
/// frames were repeated. The whole video is decoded (ffmpeg's output is read to its end) but only
/// two clips' worth of frames are held in memory.
///
/// # Shapes
///
/// The clip's `data` is `[spec.frames, spec.size, spec.size, 3]` RGB bytes.
///
/// # Errors
///
/// [`DataError::Setting`] for an invalid `spec`; [`DataError::FfmpegMissing`] when ffmpeg
/// cannot be started; [`DataError::Video`] naming the file when ffmpeg fails (a missing,
/// corrupt or non-video file: non-zero exit, with the tail of its messages) or decodes no frame.
pub fn decode_clip(path: &Path, spec: &ClipSpec, seed: u64) -> Result<DecodedClip, DataError> {
    spec.validate()?;
    let program = ffmpeg_program();
    let mut child = ffmpeg_command(&program, path, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| missing(&program, e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut reaper = Reaper(Some(child));
    // ffmpeg's messages are drained on a thread: a full stderr pipe would stall it.
    let messages = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_end(&mut bytes);
        }
        bytes
    });
    let video = |reason: String| DataError::Video { path: path.into(), reason };
    let window = match stdout {
        Some(out) => read_window(out, spec.frame_bytes(), spec.frames, seed),
        None => Err("ffmpeg's output pipe is missing".into()),
    };
    let status = reaper.0.take().map(|mut c| c.wait());
    let messages = stderr_tail(&messages.join().unwrap_or_default());
    match status {
        Some(Ok(s)) if s.success() => {}
        Some(Ok(s)) => return Err(video(format!("ffmpeg exited with {s}: {messages}"))),
        Some(Err(e)) => return Err(video(format!("waiting for ffmpeg: {e}"))),
        None => return Err(video("ffmpeg was not started".into())),
    }
    let window = window.map_err(|e| video(format!("{e}; ffmpeg said: {messages}")))?;
    if window.available == 0 {
        let said = if messages.is_empty() { String::new() } else { format!(": {messages}") };
        return Err(video(format!("ffmpeg decoded no frames{said}")));
    }
    Ok(DecodedClip {
        clip: VideoClip {
            class: 0,
            frames: spec.frames,
            height: spec.size,
            width: spec.size,
            data: window.frames,
        },
        start: window.start,
        available: window.available,
    })
}

// ---------------------------------------------------------------------------------------------
// A dataset of clips.

/// What a pass over a [`ClipSet`] did: clips decoded, clips padded, videos skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClipReport {
    /// Clips decoded.
    pub decoded: usize,
    /// Decoded clips that were padded (their video is shorter than a clip).
    pub padded: usize,
    /// Videos skipped because they could not be decoded, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Random clips of the videos of a [`VideoFolder`]. An unreadable video
/// ([`DataError::Video`]) is **skipped**: it is recorded in the [`ClipReport`] and passed to the
/// skip callback (the binary prints the warning), and the pass goes on. Other errors (no ffmpeg)
/// end the pass.
///
/// The clip of video `i` in epoch `e` is drawn with seed [`ClipSet::clip_seed`]`(i, e)`: the same
/// for the same `(seed, i, e)` whatever the order, batch or thread it is decoded in.
#[derive(Debug, Clone)]
pub struct ClipSet {
    folder: VideoFolder,
    spec: ClipSpec,
    seed: u64,
}

impl ClipSet {
    /// Clips of `spec` from `folder`, drawn from `seed`.
    ///
    /// # Errors
    ///
    /// [`DataError::Setting`] for an invalid `spec`.
    pub fn new(folder: VideoFolder, spec: ClipSpec, seed: u64) -> Result<Self, DataError> {
        spec.validate()?;
        Ok(Self { folder, spec, seed })
    }

    /// The index.
    pub fn folder(&self) -> &VideoFolder {
        &self.folder
    }

    /// The clip spec.
    pub fn spec(&self) -> &ClipSpec {
        &self.spec
    }

    /// The seed the clips are drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.folder.len()
    }

    /// Whether there are no videos.
    pub fn is_empty(&self) -> bool {
        self.folder.is_empty()
    }

    /// The seed of video `index`'s clip in `epoch`.
    pub fn clip_seed(&self, index: usize, epoch: u64) -> u64 {
        mix(mix(self.seed ^ mix(epoch)) ^ index as u64)
    }

    /// The clip of video `index` in `epoch`, with its class.
    ///
    /// # Errors
    ///
    /// [`DataError::Setting`] naming `index` when it is out of range; those of
    /// [`decode_clip`].
    pub fn decode(&self, index: usize, epoch: u64) -> Result<DecodedClip, DataError> {
        let Some((path, class)) = self.folder.samples.get(index) else {
            return Err(DataError::Setting {
                field: "index",
                reason: format!("{index} is out of range for {} videos", self.len()),
            });
        };
        let mut decoded = decode_clip(path, &self.spec, self.clip_seed(index, epoch))?;
        decoded.clip.class = *class;
        Ok(decoded)
    }

    /// The clips of videos `indices` in `epoch`, decoded in parallel (one ffmpeg per rayon
    /// thread), in the order of `indices` with the skipped videos left out; each skipped video
    /// is added to `report` and passed to `on_skip`.
    ///
    /// # Errors
    ///
    /// The first error that is not an unreadable video (no ffmpeg, an index out of range).
    pub fn decode_batch(
        &self,
        indices: &[usize],
        epoch: u64,
        report: &mut ClipReport,
        mut on_skip: impl FnMut(&Path, &DataError),
    ) -> Result<Vec<(usize, DecodedClip)>, DataError> {
        let results: Vec<Result<DecodedClip, DataError>> =
            indices.par_iter().map(|&i| self.decode(i, epoch)).collect();
        let mut out = Vec::with_capacity(indices.len());
        for (&i, result) in indices.iter().zip(results) {
            if let Some(clip) = self.account(i, result, report, &mut on_skip)? {
                out.push((i, clip));
            }
        }
        Ok(out)
    }

    /// Records one result in `report`: `Some` clip, `None` for a skipped video, `Err` for an
    /// error that ends the pass.
    fn account(
        &self,
        index: usize,
        result: Result<DecodedClip, DataError>,
        report: &mut ClipReport,
        on_skip: &mut impl FnMut(&Path, &DataError),
    ) -> Result<Option<DecodedClip>, DataError> {
        match result {
            Ok(clip) => {
                report.decoded += 1;
                report.padded += usize::from(clip.padded() > 0);
                Ok(Some(clip))
            }
            Err(e @ DataError::Video { .. }) => {
                let path = &self.folder.samples[index].0;
                on_skip(path, &e);
                report.skipped.push((path.clone(), e.to_string()));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A sequential pass over every video in index order for `epoch`: yields `(index, clip)`,
    /// skipping unreadable videos (see [`ClipIter::report`] and [`ClipIter::on_skip`]); an
    /// error that ends the pass is yielded once, then the iterator ends.
    pub fn iter(&self, epoch: u64) -> ClipIter<'_> {
        ClipIter {
            set: self,
            epoch,
            next: 0,
            done: false,
            report: ClipReport::default(),
            on_skip: None,
        }
    }
}

/// The callback a [`ClipIter`] calls for a skipped video.
type SkipCallback<'a> = Box<dyn FnMut(&Path, &DataError) + 'a>;

/// The iterator of [`ClipSet::iter`].
pub struct ClipIter<'a> {
    set: &'a ClipSet,
    epoch: u64,
    next: usize,
    done: bool,
    report: ClipReport,
    on_skip: Option<SkipCallback<'a>>,
}

impl<'a> ClipIter<'a> {
    /// Calls `f` with the path and error of each skipped video (e.g. to print a warning).
    pub fn on_skip(mut self, f: impl FnMut(&Path, &DataError) + 'a) -> Self {
        self.on_skip = Some(Box::new(f));
        self
    }

    /// What the pass did so far.
    pub fn report(&self) -> &ClipReport {
        &self.report
    }
}

impl Iterator for ClipIter<'_> {
    type Item = Result<(usize, DecodedClip), DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.next < self.set.len() {
            let i = self.next;
            self.next += 1;
            let result = self.set.decode(i, self.epoch);
            let mut skip = |p: &Path, e: &DataError| {
                if let Some(f) = self.on_skip.as_mut() {
                    f(p, e);
                }
            };
            match self.set.account(i, result, &mut self.report, &mut skip) {
                Ok(Some(clip)) => return Some(Ok((i, clip))),
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates empty files (and their folders) under `root`.
    fn touch(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
    }

    fn rel(folder: &VideoFolder) -> Vec<(String, usize)> {
        folder
            .samples
            .iter()
            .map(|(p, c)| (p.strip_prefix(&folder.root).unwrap().display().to_string(), *c))
            .collect()
    }

    #[test]
    fn ucf_lists_give_classes_and_videos_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(
            root,
            &[
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
                "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
                "Archery/v_Archery_g08_c02.avi",
                "Archery/notes.txt",
                "BabyCrawling/v_BabyCrawling_g01_c01.mp4",
            ],
        );
        let lists = root.join(SPLIT_LIST_FOLDER);
        std::fs::create_dir(&lists).unwrap();
        // UCF-101's lists end their lines with CR LF.
        std::fs::write(
            lists.join(CLASS_INDEX_FILE),
            "1 ApplyEyeMakeup\r\n2 Archery\r\n3 BabyCrawling\r\n",
        )
        .unwrap();
        std::fs::write(
            lists.join(DEFAULT_SPLIT_FILE),
            "Archery/v_Archery_g08_c02.avi 2\r\nApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n",
        )
        .unwrap();
        std::fs::write(
            lists.join("testlist01.txt"),
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n",
        )
        .unwrap();

        let train = VideoFolder::scan(root).unwrap();
        assert_eq!(train.classes, ["ApplyEyeMakeup", "Archery", "BabyCrawling"]);
        assert_eq!(
            rel(&train),
            [
                ("Archery/v_Archery_g08_c02.avi".to_string(), 1),
                ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi".to_string(), 0)
            ]
        );
        assert_eq!(train.split.as_deref(), Some(lists.join(DEFAULT_SPLIT_FILE).as_path()));
        let test = VideoFolder::scan_split(root, Path::new("testlist01.txt")).unwrap();
        assert_eq!(rel(&test), [("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi".to_string(), 0)]);
        // The folders, without lists: the same ids, every video.
        let walked = VideoFolder::scan_folders(root).unwrap();
        assert_eq!(walked.classes, train.classes);
        assert_eq!(walked.len(), 4);
        assert_eq!(walked.split, None);

        let line_error = |split: &str, text: &str| {
            std::fs::write(lists.join(split), text).unwrap();
            match VideoFolder::scan_split(root, Path::new(split)) {
                Err(DataError::ListLine { path, line, reason }) => {
                    assert!(path.ends_with(split), "{}", path.display());
                    (line, reason)
                }
                other => panic!("{other:?}"),
            }
        };
        // A label that contradicts the path's class, at line 3 (a blank line counts).
        let (line, reason) = line_error(
            "bad1.txt",
            "Archery/v_Archery_g08_c02.avi 2\n\nApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\n",
        );
        assert_eq!(line, 3);
        assert!(reason.contains("class 1"), "{reason}");
        assert!(line_error("bad2.txt", "Archery/missing.avi 2\n").1.contains("no such"));
        assert!(line_error("bad3.txt", "Skiing/v_Skiing.avi\n").1.contains("`Skiing`"));
        assert!(line_error("bad4.txt", "Archery/../../etc.avi\n").1.contains("leaves"));
        assert!(line_error("bad5.txt", "v_Archery_g08_c02.avi 2\n").1.contains("CLASS/VIDEO"));
        assert!(
            line_error("bad6.txt", "Archery/v_Archery_g08_c02.avi 2 x\n").1.contains("expected")
        );
        let e = VideoFolder::scan_split(root, Path::new("nope.txt")).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("nope.txt"), "{e}");
        std::fs::write(lists.join("empty.txt"), "\r\n").unwrap();
        let e = VideoFolder::scan_split(root, Path::new("empty.txt")).unwrap_err();
        assert!(matches!(e, DataError::NoVideos { .. }), "{e}");

        // classInd.txt: a malformed id at line 2, then a class without its folder.
        std::fs::write(lists.join(CLASS_INDEX_FILE), "1 ApplyEyeMakeup\nx Archery\n").unwrap();
        match VideoFolder::scan(root) {
            Err(DataError::ListLine { path, line: 2, reason }) => {
                assert!(path.ends_with(CLASS_INDEX_FILE) && reason.contains("`x`"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(lists.join(CLASS_INDEX_FILE), "1 ApplyEyeMakeup\n3 Archery\n").unwrap();
        let e = VideoFolder::scan(root).unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("expected 2"), "{e}");
        std::fs::write(lists.join(CLASS_INDEX_FILE), "1 ApplyEyeMakeup\n2 Archery\n3 Bowling\n")
            .unwrap();
        match VideoFolder::scan(root) {
            Err(DataError::MissingClassFolder { path, class, line: 3, .. }) => {
                assert!(path.ends_with("Bowling") && class == "Bowling")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn class_folders_without_lists() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["b/2.MKV", "b/sub/1.webm", "a/x.avi", "a/x.jpg", "c/clip.mov"]);
        let folder = VideoFolder::scan(dir.path()).unwrap();
        assert_eq!(folder.classes, ["a", "b", "c"]);
        let expect = [("a/x.avi", 0), ("b/2.MKV", 1), ("b/sub/1.webm", 1), ("c/clip.mov", 2)];
        assert_eq!(rel(&folder), expect.map(|(p, c)| (p.to_string(), c)));
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let e = VideoFolder::scan(dir.path()).unwrap_err();
        assert!(matches!(&e, DataError::NoVideos { path, .. } if path.ends_with("d")), "{e}");
        let e = VideoFolder::scan(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("missing"), "{e}");
        let flat = tempfile::tempdir().unwrap();
        touch(flat.path(), &["v.avi"]);
        assert!(matches!(VideoFolder::scan(flat.path()), Err(DataError::NoVideos { .. })));
    }

    #[test]
    fn reservoir_window_is_contiguous_uniform_and_pads_short_videos() {
        // 10 one-byte frames 0..10, windows of 4: 7 starts.
        let frames: Vec<u8> = (0..10).collect();
        let mut counts = [0usize; 7];
        for seed in 0..7000 {
            let w = read_window(&frames[..], 1, 4, seed).unwrap();
            assert_eq!(w.available, 10);
            let s = w.start;
            assert_eq!(w.frames, [s as u8, s as u8 + 1, s as u8 + 2, s as u8 + 3]);
            counts[s] += 1;
        }
        assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
        let again = read_window(&frames[..], 1, 4, 42).unwrap();
        assert_eq!(again.start, read_window(&frames[..], 1, 4, 42).unwrap().start);
        // 3 frames for a window of 5: padded with the last.
        let short = read_window(&[7u8, 8, 9][..], 1, 5, 0).unwrap();
        assert_eq!((short.frames, short.start, short.available), (vec![7, 8, 9, 9, 9], 0, 3));
        assert!(read_window(&[1u8, 2, 3][..], 2, 1, 0).unwrap_err().contains("inside frame 1"));
    }

    #[test]
    fn clip_spec_is_validated_by_field() {
        assert!(ClipSpec::PAPER.validate().is_ok());
        assert_eq!(ClipSpec::default(), ClipSpec { frames: 17, fps: 8.0, size: 128 });
        for (spec, field) in [
            (ClipSpec { frames: 0, ..ClipSpec::PAPER }, "frames"),
            (ClipSpec { fps: f64::NAN, ..ClipSpec::PAPER }, "fps"),
            (ClipSpec { fps: 0.0, ..ClipSpec::PAPER }, "fps"),
            (ClipSpec { fps: f64::INFINITY, ..ClipSpec::PAPER }, "fps"),
            (ClipSpec { size: 0, ..ClipSpec::PAPER }, "size"),
        ] {
            let e = spec.validate().unwrap_err();
            assert!(matches!(e, DataError::Setting { field: f, .. } if f == field), "{e}");
        }
        assert_eq!(
            ClipSpec::PAPER.filter(),
            "fps=8,scale=128:128:force_original_aspect_ratio=increase,crop=128:128"
        );
        let command =
            ffmpeg_command(Path::new("ffmpeg"), Path::new("pipe:1.avi"), &ClipSpec::PAPER);
        let args: Vec<String> =
            command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let input = args.iter().position(|a| a == "-i").unwrap() + 1;
        assert_eq!(args[input], "file:pipe:1.avi", "a file, not ffmpeg's pipe protocol");
        assert_eq!(args[args.len() - 5..], ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    }

    #[test]
    fn clip_tensor_layout_and_range() {
        // T=2, H=1, W=2: pixel (t, x) has RGB (t·2+x, 255, 0).
        let data = vec![0, 255, 0, 1, 255, 0, 2, 255, 0, 255, 255, 0];
        let clip = VideoClip { class: 3, frames: 2, height: 1, width: 2, data };
        assert!(clip.is_consistent());
        let v = clip.to_cthw_signed();
        assert_eq!(v.len(), 12);
        assert_eq!(v[0], -1.0);
        assert_eq!(v[3], 1.0); // R of (t=1, x=1)
        assert!(v[4..8].iter().all(|&x| x == 1.0)); // G
        assert!(v[8..].iter().all(|&x| x == -1.0)); // B
        let td = clip.to_tensor_data();
        assert_eq!(td.shape().to_vec(), vec![3, 2, 1, 2]);
        assert_eq!(td.try_to_vec::<f32>().unwrap(), v);
        let back = VideoClip::from_cthw_signed(&v, 3, 2, 1, 2).unwrap();
        assert_eq!(back, clip);
        assert!(VideoClip::from_cthw_signed(&v[1..], 3, 2, 1, 2).is_none());
        assert_eq!(clip.frame(1).unwrap().data, [2, 255, 0, 255, 255, 0]);
        assert!(clip.frame(2).is_none());
        assert_eq!(clip.frame_images().len(), 2);
    }
}
