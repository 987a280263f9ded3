//! PAR training (docs/spec.md §5) on burn-train's `Learner`: code datasets, the Table 5
//! schedule and optimizer, the model's step, the loaders and checkpointers of a run.

mod data;
mod learner;
mod lr_schedule;
mod step;
mod trainer;

pub use data::{CodeBatch, CodeDataset, mix, uniform};
pub use lr_schedule::{WarmupCosine, WarmupCosineScheduler};
pub use step::{CastParams, ParItem, ParStep};
pub use trainer::{
    ParData, ParLog, ParReport, ParTrainConfig, Precision, ValLog, optimizer, train_par,
    validation_loss, weight_decay_split,
};
