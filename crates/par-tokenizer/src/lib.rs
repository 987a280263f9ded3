//! LlamaGen's VQ image tokenizer (`vq_ds16_c2i`, docs/spec.md §6.1) on Burn: a convolutional
//! encoder with ResNet and attention blocks, an l2-normalised codebook quantizer, and the mirror
//! decoder. `encode(images) → codes [B, h, w]`, `decode(codes) → images` in `[−1, 1]`.
//!
//! Checkpoints: `vq_ds16_c2i.pt`-layout imports ([`VqTokenizer::load`]) and our self-describing
//! safetensors ([`VqTokenizer::save`]: upstream keys + the config as metadata). Training lives
//! in `par-train`, pre-tokenization in `par-data`.
//!
//! Video (docs/spec.md §8): the MAGVIT-v2-style causal 3D tokenizer in [`video`] (clips
//! `[B, 3, 17, 128, 128]` ↔ codes `[B, 5, 16, 16]`, FSQ or LFQ).
#![warn(missing_docs)]

mod blocks;
mod config;
mod import;
mod quantizer;
mod tokenizer;
pub mod video;

pub use blocks::{AttnBlock, Decoder, Downsample, Encoder, Level, Mid, ResnetBlock, Upsample};
pub use config::{MAX_CODEBOOK_SIZE, TokenizerConfigError, TokenizerPreset, VqTokenizerConfig};
pub use import::{CONFIG_METADATA_KEY, CheckpointError, StateDict, expected_keys, stored_config};
pub use quantizer::{
    CodebookUsage, ENTROPY_TEMPERATURE, VectorQuantizer, VqLosses, VqOutput, entropy_loss,
};
pub use tokenizer::{DecodeImagesError, VqTokenizer};
pub use video::{
    VideoQuantizerConfig, VideoTokenizer, VideoTokenizerConfig, VideoTokenizerConfigError,
    VideoTokenizerPreset,
};
