//! Sampling from a [`par_model::ParTransformer`] (docs/spec.md §3): classifier-free guidance
//! ([`guided_logits`]), temperature, top-k / top-p filtering with the reference's semantics
//! ([`filter_top_k_top_p`]), seeded categorical draws, and the KV-cached decode loop
//! ([`generate`]): prefill → `n − 1` sequential steps → transition step → parallel steps, returning
//! codes in raster order.
#![warn(missing_docs)]

mod config;
mod generate;
mod logits;
mod step_model;

pub use config::{MAX_CFG_SCALE, SampleConfig, SampleConfigError};
pub use generate::{SampleError, generate, generate_streams};
pub use logits::{NonFiniteLogit, Sampler, filter_top_k_top_p, guide_into, guided_logits};
pub use step_model::StepModel;
