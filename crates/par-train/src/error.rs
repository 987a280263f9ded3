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
    /// Invalid settings, or data that does not fit them.
    #[error("{0}")]
    Config(String),
    /// A setting out of its range.
    #[error("training setting `{field}` {reason}")]
    Setting {
        /// The config field.
        field: &'static str,
        /// What is wrong, with the value.
        reason: String,
    },
    /// Resume was asked for but the run directory holds no checkpoint.
    #[error(
        "{path}: nothing to resume (no checkpoint there); start the run without resuming, or point at the run's directory"
    )]
    NothingToResume {
        /// The run directory.
        path: PathBuf,
    },
    /// A resume whose step budget ends before the steps already done.
    #[error(
        "{path}: the run is already at step {done}, beyond the {asked} steps asked for ({field}); ask for at least {done} to continue it"
    )]
    StepsBehind {
        /// The run directory.
        path: PathBuf,
        /// Steps done.
        done: usize,
        /// Steps asked for.
        asked: usize,
        /// The config field that sets the step budget.
        field: &'static str,
    },
    /// A resume whose settings differ from those the checkpoint was made with.
    #[error(
        "{path}: the checkpoint was made with {field} = {checkpoint}, this run asks for {now}; resume with the same settings or choose another output directory"
    )]
    ResumeMismatch {
        /// The checkpoint folder.
        path: PathBuf,
        /// The setting (dotted path into the run's config, or `dtype`).
        field: String,
        /// Its value in the checkpoint.
        checkpoint: String,
        /// Its value now.
        now: String,
    },
    /// The loss, a gradient norm or a weight became NaN or ±∞.
    #[error(
        "training diverged at step {step}: the {quantity} became non-finite ({value}); {kept}. Likely cause: a learning rate or loss weight too large for the model"
    , kept = kept(.last_checkpoint))]
    NonFinite {
        /// The step (1-based) whose loss, gradient or update was non-finite.
        step: usize,
        /// What became non-finite (`loss`, `gradient norm`, `weight \`key\``).
        quantity: String,
        /// Its value.
        value: f64,
        /// The step of the checkpoint left in place, if any.
        last_checkpoint: Option<usize>,
    },
    /// The run directory already holds a run and `--resume` was not given.
    #[error(
        "{path} already holds a run (checkpoint at step {step}); resume it to continue, or choose another output directory"
    )]
    Exists {
        /// The run directory.
        path: PathBuf,
        /// The checkpoint's step.
        step: usize,
    },
    /// The run failed while running (a checkpoint that could not be written, a worker that
    /// panicked): not the caller's settings.
    #[error("{path}: training stopped: {reason}")]
    Failed {
        /// The run directory or the file at fault.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Stopped on request (Ctrl-C) with its progress saved (a training checkpoint, or the
    /// finished chunks of `par tokenize`).
    #[error(
        "interrupted at step, chunk or batch {step}; the progress so far is saved: run the same command again (a training run or a demo: with --resume)"
    )]
    Interrupted {
        /// Steps done.
        step: usize,
    },
    /// A job found not one usable input (every image or video unreadable): it fails as a whole
    /// and writes nothing.
    #[error(
        "{input}: none of the {count} inputs could be read (first: {first}); nothing was written"
    )]
    NoUsableInput {
        /// The setting that names the source (`images`, `idx`, `videos`).
        field: &'static str,
        /// The source, in words.
        input: String,
        /// Inputs tried.
        count: usize,
        /// Why the first one could not be read.
        first: String,
    },
    /// Stopped on request (Ctrl-C) by a short job that keeps no checkpoint (e.g. the
    /// classifier's training): nothing was saved.
    #[error(
        "interrupted at step {step}; this job keeps no checkpoint, so nothing was saved: run it again"
    )]
    StoppedUnsaved {
        /// Steps done.
        step: usize,
    },
}

impl TrainError {
    /// [`TrainError::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// The setting at fault, for errors that have one (a config field, `steps`, `dtype`).
    pub fn field(&self) -> Option<&str> {
        match self {
            TrainError::Setting { field, .. } | TrainError::StepsBehind { field, .. } => {
                Some(field)
            }
            TrainError::ResumeMismatch { field, .. } => Some(field),
            TrainError::NoUsableInput { field, .. } => Some(field),
            // The binaries name the flag that resumes (`--resume`) where they have one.
            TrainError::Exists { .. } | TrainError::NothingToResume { .. } => Some("resume"),
            _ => None,
        }
    }

    /// Whether the error lies in the caller's settings or files rather than in the run itself
    /// (I/O failures, divergence, interruption).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            TrainError::Config(_)
                | TrainError::NoUsableInput { .. }
                | TrainError::Setting { .. }
                | TrainError::Exists { .. }
                | TrainError::NothingToResume { .. }
                | TrainError::StepsBehind { .. }
                | TrainError::ResumeMismatch { .. }
        ) || matches!(self, TrainError::Checkpoint(e) if !matches!(e, par_store::CheckpointError::Io { .. }))
    }
}

fn kept(last_checkpoint: &Option<usize>) -> String {
    match last_checkpoint {
        Some(s) => format!("the checkpoint of step {s} is kept and nothing later was saved"),
        None => "no checkpoint was written".to_string(),
    }
}
