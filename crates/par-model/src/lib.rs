//! The PAR / LlamaGen class-conditional decoder on Burn: RMSNorm, fused-`wqkv` attention with
//! LlamaGen's 2D RoPE (3D RoPE or learned 3D positions for video, docs/spec.md §8), SwiGLU, a class token with a null class for classifier-free guidance, and
//! PAR's `n − 1` transition tokens under the group attention mask (docs/spec.md §2–§4;
//! Wang et al., arXiv 2412.15119). `n = 1` is LlamaGen's model.
//!
//! Two forward paths and no hidden state: [`ParTransformer::forward`] (teacher forcing, logits for
//! every image token) and [`ParTransformer::forward_step`] (one KV-cached decode step, cache passed
//! by `&mut`). Ordering, layout, mask and RoPE positions all come from `par_order`.
#![warn(missing_docs)]

pub mod block;
mod cache;
mod checkpoint;
mod config;
pub mod rope;
mod transformer;

pub use cache::{KvCache, ModelCache};
pub use checkpoint::{
    CONFIG_METADATA_KEY, CheckpointError, CheckpointKind, StateDict, WRAPPER_KEYS, WeightTensor,
    expected_keys, stored_config,
};
pub use config::{
    ConfigError, MAX_FRAMES, MAX_GRID_SIZE, ParTransformerConfig, PositionEmbedding, Preset,
    UCF101_CLASSES, UCF101_CODEBOOK_SIZE,
};
pub use rope::{RopeAxes, RopeTable};
pub use transformer::{
    ClassEmbedding, ForwardError, LearnedPositions, ParTransformer, StepInput, TransformerInput,
    TransitionEmbedding,
};
