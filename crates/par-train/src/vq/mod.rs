//! Training of the VQ tokenizer (`par tokenizer train`, docs/spec.md §6.2).

mod discriminator;
mod step;
mod trainer;

pub use discriminator::{PatchDiscriminator, Stage, hinge_d_loss, hinge_g_loss};
pub use step::{VqItem, VqStep};
pub use trainer::{HeldOutReport, StepLog, VqReport, VqTrainConfig, evaluate, train_tokenizer};
