//! LlamaGen's VQ image tokenizer (`vq_ds16_c2i`, PAR-SPEC.md §6.1) on Burn: a convolutional
//! encoder with ResNet and attention blocks, an l2-normalised codebook quantizer, and the mirror
//! decoder. `encode(images) → codes [B, h, w]`, `decode(codes) → images` in `[−1, 1]`.
//!
//! Status: architecture, quantizer, presets and import of `vq_ds16_c2i.pt`-layout checkpoints.
//! Training and pre-tokenization follow (open issue).
#![warn(missing_docs)]

mod blocks;
mod config;
mod import;
mod quantizer;
mod tokenizer;

pub use blocks::{AttnBlock, Decoder, Downsample, Encoder, Level, Mid, ResnetBlock, Upsample};
pub use config::{TokenizerConfigError, TokenizerPreset, VqTokenizerConfig};
pub use import::{CheckpointError, StateDict, expected_keys};
pub use quantizer::{VectorQuantizer, VqLosses, VqOutput};
pub use tokenizer::VqTokenizer;
