//! [`TrainError`].

use std::path::PathBuf;

/// Why a training run stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint or snapshot could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] par_store::CheckpointError),
    /// A file of the run could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The optimizer state could not be saved or loaded.
    #[error("{path}: optimizer state: {reason}")]
    Optimizer {
        /// The file.
        path: PathBuf,
        /// Burn's message.
        reason: String,
    },
    /// Invalid settings, or a resume whose settings differ from the run's.
    #[error("{0}")]
    Config(String),
    /// The run directory already holds a run and `--resume` was not given.
    #[error(
        "{path} already holds a run (checkpoint at step {step}); pass --resume to continue it or choose another output directory"
    )]
    Exists {
        /// The run directory.
        path: PathBuf,
        /// The checkpoint's step.
        step: usize,
    },
    /// Stopped on request (Ctrl-C) with its progress saved (a training checkpoint, or the
    /// finished chunks of `par tokenize`).
    #[error(
        "interrupted at step/chunk {step}; progress saved: run the same command again (training runs: add --resume)"
    )]
    Interrupted {
        /// Steps done.
        step: usize,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
