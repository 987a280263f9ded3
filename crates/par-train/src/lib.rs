//! Training on burn-train's `Learner`: the VQ tokenizer ([`vq`]), the video tokenizer
//! ([`video`]) and PAR (the paper's Table 5
//! schedule), with the pieces both share — the `Learner` plumbing ([`learner`]: step loaders,
//! checkpointers, stop strategy), global gradient-norm clipping ([`grad`]), data order as a
//! function of (seed, step) ([`plan`]), whole-folder checkpoints and resume checks
//! ([`checkpoint`]), the progress/stop callback of long jobs ([`Monitor`]), weight snapshots
//! ([`module_state`]).
#![warn(missing_docs)]

pub mod checkpoint;
mod error;
pub mod grad;
pub mod learner;
pub mod module_state;
pub mod monitor;
pub mod par;
pub mod plan;
pub mod video;
pub mod vq;

pub use error::TrainError;
pub use learner::LossOutput;
pub use monitor::{Monitor, Silent, StopAt};

/// The result of a training call.
#[derive(Debug, Clone, PartialEq)]
pub enum Trained<R> {
    /// The run trained (from scratch or from its checkpoint) and wrote its report.
    Done(R),
    /// `resume` found the run finished at the asked step count: nothing was trained or
    /// rewritten; the report is the one on disk.
    AlreadyFinished(R),
}

impl<R> Trained<R> {
    /// The report either way.
    pub fn report(self) -> R {
        match self {
            Trained::Done(r) | Trained::AlreadyFinished(r) => r,
        }
    }
}
