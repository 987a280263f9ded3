//! PAR training (docs/spec.md §5): code datasets, the Table 5 schedule and optimizer, the
//! training loop.

mod data;
mod schedule;
mod step;
mod trainer;

pub use data::{CodeBatch, CodeDataset, mix, uniform};
pub use schedule::WarmupCosine;
pub use step::{CastParams, ParStep};
pub use trainer::{
    ParLog, ParReport, ParTrainConfig, Precision, ValLog, optimizer, train_par, validation_loss,
    weight_decay_split,
};
