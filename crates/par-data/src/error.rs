//! [`DataError`].

use std::path::PathBuf;

/// Why a dataset or code store could not be read or written. Every variant names the file.
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
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn store(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Store { path: path.into(), reason: reason.into() }
    }
}
