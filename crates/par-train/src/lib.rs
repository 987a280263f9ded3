//! Training: the VQ tokenizer ([`vq`]) and PAR (the paper's Table 5 schedule), with the pieces
//! both share — exact module snapshots for resume ([`module_state`]), global gradient-norm
//! clipping ([`grad`]), data order as a function of (seed, step) ([`plan`]), whole-folder
//! checkpoints ([`checkpoint`]).
#![warn(missing_docs)]

pub mod checkpoint;
pub mod classifier;
mod error;
pub mod grad;
pub mod module_state;
pub mod par;
pub mod plan;
pub mod progress;
pub mod tokenize;
pub mod vq;

pub use error::TrainError;
