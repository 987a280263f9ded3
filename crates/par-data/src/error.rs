//! [`DataError`].

use std::path::PathBuf;

/// Why a dataset or code store could not be read or written. Every variant names the file (or,
/// for [`DataError::Setting`], the setting; for [`DataError::FfmpegMissing`], the program).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The OS refused (missing file or directory, permissions, disk full).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An image that cannot be decoded (corrupt, truncated, unknown format).
    #[error("{path}: cannot decode image: {reason}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A malformed IDX file.
    #[error("{path}: not a valid IDX file: {reason}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An ImageFolder tree without class folders.
    #[error("{path}: no class folders (expected ROOT/CLASS_NAME/IMAGE files)")]
    NoClasses {
        /// The root.
        path: PathBuf,
    },
    /// A class folder without image files (torchvision refuses these too; pass
    /// `--allow-empty-classes` to keep the class id).
    #[error("{path}: class folder holds no image files ({extensions})")]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
        /// The accepted extensions.
        extensions: String,
    },
    /// A malformed `.npy` or code-store file.
    #[error("{path}: {reason}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A code id outside the codebook.
    #[error(
        "{path}: code id {code} at position {position} is not below the codebook size {codebook_size}"
    )]
    CodeRange {
        /// The file.
        path: PathBuf,
        /// The offending id.
        code: i64,
        /// Its flat position in the file's array.
        position: usize,
        /// The codebook size.
        codebook_size: usize,
    },
    /// A line of a UCF-101 list file (`classInd.txt`, `trainlist01.txt`) that cannot be used.
    #[error("{path}: line {line}: {reason}")]
    ListLine {
        /// The list file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A class named in `classInd.txt` without its folder under the video root.
    #[error("{path}: folder of class `{class}` not found (listed at line {line} of {list})")]
    MissingClassFolder {
        /// The folder that should exist (`ROOT/CLASS`).
        path: PathBuf,
        /// The class name.
        class: String,
        /// The class list.
        list: PathBuf,
        /// The line of the class list, from 1.
        line: usize,
    },
    /// A video folder, class folder or split list without video files.
    #[error("{path}: no video files ({extensions})")]
    NoVideos {
        /// The folder or list.
        path: PathBuf,
        /// The accepted extensions.
        extensions: String,
    },
    /// The `ffmpeg` program cannot be run (not installed, not executable).
    #[error(
        "cannot run `{program}`: {source}; decoding videos needs ffmpeg: install Debian's `ffmpeg` \
         package (apt-get install ffmpeg) or set {env} to the program's path",
        env = crate::FFMPEG_ENV
    )]
    FfmpegMissing {
        /// The program that was tried (`ffmpeg`, or the value of `PAR_FFMPEG`).
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A video that ffmpeg cannot decode (corrupt, truncated, not a video, no frames).
    #[error("{path}: cannot decode video: {reason}")]
    Video {
        /// The video file.
        path: PathBuf,
        /// What went wrong, with the tail of ffmpeg's messages.
        reason: String,
    },
    /// A clip or moving-object setting out of range.
    #[error("clip setting `{field}` {reason}")]
    Setting {
        /// The setting's field name (`frames`, `fps`, `size`, `frame_size`).
        field: &'static str,
        /// What is wrong, with the value.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn store(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Store { path: path.into(), reason: reason.into() }
    }
}
